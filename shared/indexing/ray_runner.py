"""``index(..., ray=...)``: the same batches as in-process, fanned out on Ray Data.

The pipeline: the source's parts (files) -> a read step (Ray tasks, one file each, streamed in
batches) -> an actor pool of encoders (``map_batches`` with :class:`IndexEncoder`: one encoder
per actor, loaded once, ``cpus_per_worker``/``gpus_per_worker`` each) that runs
:func:`~shared.indexing.run.process_batch` -> the driver, which only counts what each batch
did (written, skipped, bad records) and shows progress.

Writes: to a Qdrant server each actor writes its own batches (upserts with the store's
retry policy); a directory store (embedded or ``local:``) admits one process, so one
:class:`IndexWriter` actor, pinned to the driver's node, holds it and answers every actor's
"which of these ids exist" and "write these" calls. Either way an actor blocks until its
batch is written, so Ray's streaming executor bounds the memory in flight (backpressure),
whatever the corpus size. Actors that die are restarted by Ray and their batch retried;
writes are upserts of deterministic ids, so a retry leaves no duplicate.

Ray is imported here only, when asked for (``pip install "m3-hybrid[ray]"``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError, MissingDependencyError, StoreLockedError
from ..types import Record
from .run import (
    BatchStats,
    DescribedEncoder,
    IndexResult,
    RecordError,
    SourceSpec,
    StoreSink,
    TargetSpec,
    process_batch,
    track,
)
from .sources import Chunker, Fields, Row, SourcePart, chunk_rows, plan_parts, read_part, row_from_mapping

__all__ = ["IndexEncoder", "IndexWriter", "import_ray", "run_on_ray"]

logger = logging.getLogger(__name__)

_COLUMNS = ("where", "id", "text", "metadata", "ref_doc_id", "error")
#: How long a new writer waits for a directory store that a killed run's writer still holds.
LOCK_WAIT_S = 60.0


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or an error saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError('running on Ray needs Ray Data: pip install "m3-hybrid[ray]"') from None
    return ray


# ---------------------------------------------------------------------------
# rows as Arrow tables (what travels between the Ray steps)
# ---------------------------------------------------------------------------


def _rows_table(rows: Sequence[Row]) -> Any:
    import pyarrow as pa

    schema = pa.schema([(name, pa.string()) for name in _COLUMNS])
    return pa.table(
        {
            "where": [r.where for r in rows],
            "id": [r.id for r in rows],
            "text": [r.text for r in rows],
            # JSON, not pickle: metadata was checked to be JSON when the row was read.
            "metadata": [json.dumps(r.metadata) for r in rows],
            "ref_doc_id": [r.ref_doc_id for r in rows],
            "error": [r.error for r in rows],
        },
        schema=schema,
    )


def _table_rows(table: Any) -> list[Row]:
    cols = {name: table.column(name).to_pylist() for name in _COLUMNS}
    return [
        Row(
            where=cols["where"][i],
            id=cols["id"][i],
            text=cols["text"][i],
            metadata=json.loads(cols["metadata"][i]),
            ref_doc_id=cols["ref_doc_id"][i],
            error=cols["error"][i],
        )
        for i in range(table.num_rows)
    ]


def _read_parts(batch: Any, fields: Fields, batch_size: int, chunker: Chunker | None) -> Iterator[Any]:
    """Read step: each input row names one file; yields its rows ``batch_size`` at a time."""
    for path, fmt, name in zip(
        batch.column("path").to_pylist(),
        batch.column("format").to_pylist(),
        batch.column("name").to_pylist(),
        strict=True,
    ):
        for rows in read_part(SourcePart(path, fmt, name), fields, batch_size):
            yield _rows_table(chunk_rows(rows, chunker))


def _dataset_rows(batch: Any, fields: Fields, chunker: Chunker | None) -> Any:
    """Read step for a ``ray.data.Dataset``: its rows as records (an id field is required:
    a dataset has no stable row numbers to derive ids from)."""
    rows = []
    for obj in batch.to_pylist():
        rid = obj.get(fields.id) if fields.id is not None else None
        if rid is None or rid == "":
            rows.append(
                Row("a dataset row", error=f"no id: a Ray Dataset row needs its id field {fields.id!r}")
            )
            continue
        rows.append(row_from_mapping(obj, fields, f"dataset row {str(rid)[:80]!r}"))
    return _rows_table(chunk_rows(rows, chunker))


# ---------------------------------------------------------------------------
# actors
# ---------------------------------------------------------------------------


class IndexWriter:
    """The one holder of a directory store in a Ray run (a Ray actor on the driver's node)."""

    def __init__(self, target: TargetSpec, described: Mapping[str, Any]) -> None:
        self._sink = _open_waiting(target, DescribedEncoder.from_json(described))

    def present(self, ids: Sequence[str]) -> list[str]:
        return self._sink.present(ids)

    def write(self, records: Sequence[Record], wheres: Sequence[str]) -> list[RecordError]:
        return self._sink.write(records, wheres)

    def count(self) -> int:
        return self._sink.count()

    def close(self) -> None:
        self._sink.close()


def _open_waiting(target: TargetSpec, encoder: DescribedEncoder) -> StoreSink:
    """The target's sink; a directory store still locked by a killed run's writer is waited for
    (Ray ends a dead driver's actors within seconds, and their lock goes with them)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return StoreSink(target, encoder)
        except StoreLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class _WriterProxy:
    """A worker's view of the :class:`IndexWriter` actor (blocking calls: backpressure)."""

    def __init__(self, ray: Any, writer: Any) -> None:
        self._ray, self._writer = ray, writer

    def present(self, ids: Sequence[str]) -> list[str]:
        return list(self._ray.get(self._writer.present.remote(list(ids))))

    def write(self, records: Sequence[Record], wheres: Sequence[str]) -> list[RecordError]:
        return list(self._ray.get(self._writer.write.remote(list(records), list(wheres))))


class IndexEncoder:
    """One actor of the encoding pool: loads its encoder once, then runs ``process_batch``."""

    def __init__(
        self,
        model: Any,
        encoder_options: Mapping[str, Any],
        target: TargetSpec,
        outputs: Sequence[str],
        writer: Any,
    ) -> None:
        from ..encoders import load_encoder

        self._encoder = load_encoder(model, **encoder_options)
        self._outputs = list(outputs)
        self._sink: Any
        if writer is None:  # a server: every actor writes its own batches
            self._sink = StoreSink(target, self._encoder)
        else:
            self._sink = _WriterProxy(import_ray(), writer)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        stats = process_batch(_table_rows(batch), self._encoder, self._outputs, self._sink)
        return pa.table({"stats": [json.dumps(stats.to_json())]})


def _describe(model: Any, encoder_options: Mapping[str, Any]) -> dict[str, Any]:
    """Load the encoder once (in a worker, not the driver) and return what the writer needs."""
    from ..encoders import load_encoder

    return DescribedEncoder.of(load_encoder(model, **encoder_options)).to_json()


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


def run_on_ray(
    source: SourceSpec,
    spec: TargetSpec,
    *,
    model: Any,
    encoder_options: Mapping[str, Any],
    max_errors: int | None,
    address: str | None,
    workers: int,
    cpus_per_worker: float | None,
    gpus_per_worker: float,
    show_progress: bool,
    progress: Callable[[IndexResult], None] | None,
) -> IndexResult:
    ray = import_ray()
    options = dict(encoder_options)
    cpus = float(cpus_per_worker if cpus_per_worker is not None else options.get("threads") or 1)
    # One intra-op thread per CPU Ray gives the actor (not every core of the machine).
    options.setdefault("threads", max(1, int(cpus)))
    kind = spec.kind
    if kind not in ("embedded", "local", "server"):
        raise InvalidInputError(f"a Ray run cannot write to {spec.describe()}")
    dataset = _source_dataset(ray, source)

    started = False
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        started = True
    context = ray.data.DataContext.get_current()
    saved = (context.enable_progress_bars, context.target_max_block_size)
    try:
        context.enable_progress_bars = False
        # Blocks of about one batch: the actor pool hands out whole blocks, so a block holding
        # the whole file would keep every actor but one idle.
        context.target_max_block_size = _batch_bytes(source)
        described = ray.get(
            ray.remote(max_calls=1, num_cpus=cpus, num_gpus=gpus_per_worker)(_describe).remote(model, options)
        )
        # Open the target once here: a guard mismatch fails before anything is encoded, and a
        # new collection is created once (not raced by the workers).
        first = _open_waiting(spec, DescribedEncoder.from_json(described))
        try:
            outputs = first.outputs(described["outputs"])
        finally:
            first.close()
        writer = None
        if kind != "server":
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            writer = (
                ray.remote(IndexWriter)
                .options(
                    num_cpus=0,
                    max_restarts=-1,
                    max_task_retries=-1,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
                )
                .remote(spec, described)
            )
        encoded = dataset(ray).map_batches(
            IndexEncoder,
            fn_constructor_kwargs={
                "model": model,
                "encoder_options": options,
                "target": spec,
                "outputs": outputs,
                "writer": writer,
            },
            batch_size=source.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus,
            num_gpus=gpus_per_worker or None,
        )
        result = IndexResult(spec.describe(), spec.collection, ray=True)
        track(
            result,
            (
                BatchStats.from_json(json.loads(text))
                for out in encoded.iter_batches(batch_size=None, batch_format="pyarrow")
                for text in out.column("stats").to_pylist()
            ),
            show_progress=show_progress,
            progress=progress,
            max_errors=max_errors,
        )
        if writer is not None:
            result.count = ray.get(writer.count.remote())
            ray.get(writer.close.remote())
            ray.kill(writer)
        else:
            sink = StoreSink(spec, DescribedEncoder.from_json(described))
            try:
                result.count = sink.count()
            finally:
                sink.close()
        return result
    finally:
        context.enable_progress_bars, context.target_max_block_size = saved
        if started:
            ray.shutdown()


def _batch_bytes(spec: SourceSpec) -> int:
    """About the Arrow size of a batch of the source's rows (from its first batch; 64 KiB if unknown)."""
    import os

    source, size = spec.source, spec.batch_size
    if isinstance(source, (str, os.PathLike)):
        first = next(read_part(plan_parts(source, spec.format)[0], spec.fields, size), [])
        if first:
            table = _rows_table(chunk_rows(first, spec.chunker))
            return max(1024, int(table.nbytes / table.num_rows * size))
    return 64 * 1024


def _source_dataset(ray_module: Any, spec: SourceSpec) -> Callable[[Any], Any]:
    """A function building the rows dataset (checked now, built once Ray is up)."""
    import os

    source, fields, chunker = spec.source, spec.fields, spec.chunker
    if isinstance(source, (str, os.PathLike)):
        parts = plan_parts(source, spec.format)

        def from_files(ray: Any) -> Any:
            items = [{"path": p.path, "format": p.format, "name": p.name} for p in parts]
            return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                _read_parts,
                fn_kwargs={"fields": fields, "batch_size": spec.batch_size, "chunker": chunker},
                batch_size=1,
                batch_format="pyarrow",
                # Reading is light next to encoding: it must not wait for a CPU the encoders hold.
                num_cpus=0,
            )

        return from_files
    if isinstance(source, ray_module.data.Dataset):

        def from_dataset(ray: Any) -> Any:
            return source.map_batches(
                _dataset_rows,
                fn_kwargs={"fields": fields, "chunker": chunker},
                batch_size=spec.batch_size,
                batch_format="pyarrow",
                num_cpus=0,
            )

        return from_dataset
    raise InvalidInputError(
        "with ray= the source must be a file, a directory or a ray.data.Dataset "
        f"(got {type(source).__name__}; index a Python iterable in-process, or ray.data.from_items(...) it)"
    )
