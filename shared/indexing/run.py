"""The indexing steps: read records, skip those already stored, encode the rest, write them
(what :func:`shared.indexing.index` runs, in this process or fanned out on Ray Data).

Both ways run the same per-batch step, :func:`process_batch`: the rows of one batch are
checked (bad ones become :class:`RecordError`s naming id and place), the ids already in the
collection are skipped (checked in bounded batches *before* encoding, so a rerun after an
interruption re-encodes nothing that was written), the rest are encoded with
``encoder.encode(texts, "document")`` exactly as ``HybridStore.add`` would, and written
through ``HybridStore.add`` with the vectors given, so ids (``uuid5`` of the record id),
payloads, the guard and the preset are the store's own. Writes are upserts of
deterministic ids: a batch written twice (a retried Ray task) leaves no duplicate.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, InvalidTypeError, M3HybridError, UnsupportedOperationError
from ..retry import RetryPolicy
from ..types import EncodeOptions, Encoder, EncodeResult, EncoderIdentity, Record, TextKind
from .sources import Chunker, Fields, Row, chunk_rows, plan_parts, read_part, rows_from_items

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "BatchStats",
    "IndexResult",
    "ProgressBar",
    "RecordError",
    "SourceSpec",
    "StoreSink",
    "TargetSpec",
    "process_batch",
    "run_in_process",
    "source_batches",
]

logger = logging.getLogger(__name__)

#: Records checked, encoded and written per step (bounds the memory of a worker and of a write).
DEFAULT_BATCH_SIZE = 64
#: Bad records kept (with id, place and reason) in a result; all are counted.
MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class RecordError:
    """A record that was not indexed: its id (None when it has none), where it came from, why."""

    id: str | None
    where: str
    message: str

    def __str__(self) -> str:
        who = f"record {self.id!r}" if self.id is not None else "a record"
        return f"{self.where}: {who}: {self.message}"


@dataclass
class BatchStats:
    """What one :func:`process_batch` did."""

    written: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    #: Wall-clock time (``time.time()``) its write finished; None when it wrote nothing. On Ray a
    #: batch's figures reach the driver later than that, in bursts: rates come from this time.
    written_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "skipped": self.skipped,
            "errors": [[e.id, e.where, e.message] for e in self.errors],
            "written_at": self.written_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchStats:
        return cls(
            int(data["written"]),
            int(data["skipped"]),
            [RecordError(*e) for e in data["errors"]],
            data.get("written_at"),
        )


@dataclass
class IndexResult:
    """What :func:`index` did (``failed`` counts every bad record; ``errors`` keeps the first 1,000)."""

    target: str
    collection: str
    written: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0
    #: True when the run stopped early because more than ``max_errors`` records failed.
    aborted: bool = False
    ray: bool = False
    count: int | None = None
    #: When the latest write so far finished (wall clock), for rates that exclude start-up.
    last_written_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.aborted

    def add(self, stats: BatchStats) -> None:
        self.written += stats.written
        self.skipped += stats.skipped
        self.failed += len(stats.errors)
        if stats.written_at is not None:
            self.last_written_at = max(self.last_written_at or 0.0, stats.written_at)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(stats.errors[:room])


# ---------------------------------------------------------------------------
# the target
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """What to read: the source (a path, an iterable or a ``ray.data.Dataset``), its fields and
    file format, the chunker that splits each document, and the rows read per batch."""

    source: Any
    fields: Fields
    format: str | None
    chunker: Chunker | None
    batch_size: int


@dataclass(frozen=True)
class TargetSpec:
    """Where to write (an endpoint string ``migrate`` understands) and how to open the store there.

    Plain data, so a Ray worker can open the same store: ``store_options`` are
    :class:`~shared.store.HybridStore` keywords (``quantization``, ``shard_number``, ...).
    """

    endpoint: str
    collection: str
    store_options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    retry: RetryPolicy | None = None

    @property
    def kind(self) -> str:
        from ..migrate import parse_endpoint

        return parse_endpoint(self.endpoint).kind

    def describe(self) -> str:
        from ..migrate import parse_endpoint

        return f"collection {self.collection!r} in {parse_endpoint(self.endpoint).describe()}"

    def open(self, encoder: Encoder) -> tuple[Any, Callable[[], None]]:
        """The :class:`~shared.store.HybridStore` of the target (created if new) and its closer."""
        from ..migrate import parse_endpoint
        from ..store import HybridStore

        ep = parse_endpoint(self.endpoint)
        options = dict(self.store_options)
        if ep.kind == "embedded":
            store = HybridStore(self.collection, encoder=encoder, path=ep.location, **options)
            return store, store.close
        if ep.kind == "server":
            store = HybridStore(
                self.collection,
                encoder=encoder,
                url=ep.location,
                api_key=self.api_key,
                timeout=self.timeout,
                retry=self.retry,
                **options,
            )
            return store, store.close
        if ep.kind == "local":
            from qdrant_client import QdrantClient

            client = QdrantClient(path=ep.location)
            try:
                store = HybridStore(self.collection, encoder=encoder, client=client, **options)
            except BaseException:
                client.close()
                raise

            def close() -> None:
                store.close()
                client.close()

            return store, close
        raise InvalidInputError(f"cannot index into {ep.describe()}")  # pragma: no cover


class StoreSink:
    """The store side of a batch: which ids exist, what to encode, and the write.

    One per process that holds the store: the in-process run, each Ray worker writing to a
    server, or the one Ray writer actor of a directory store (which only one process may open).
    """

    def __init__(self, target: TargetSpec, encoder: Encoder) -> None:
        self._store, self._close = target.open(encoder)

    def outputs(self, made: Iterable[str]) -> list[str]:
        """The vectors to compute for a record without any (what ``HybridStore.add`` would encode)."""
        schema = self._store.schema
        made = set(made)
        wanted = []
        if "dense" in made and (schema.has_dense or not schema.complete):
            wanted.append("dense")
        if "sparse" in made and schema.sparse:
            wanted.append("sparse")
        if "colbert" in made and schema.colbert:
            wanted.append("colbert")
        return sorted(wanted)

    def present(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` already stored (one bounded read)."""
        return [r.id for r in self._store.get(list(ids))]

    def write(self, records: Sequence[Record], wheres: Sequence[str]) -> list[RecordError]:
        """Upsert ``records`` (vectors given); a batch the store refuses is retried record by record
        so that only the bad ones are reported."""
        if not records:
            return []
        try:
            self._store.add(records, batch_size=len(records))
            return []
        except (InvalidInputError, InvalidTypeError):
            pass
        errors = []
        for rec, where in zip(records, wheres, strict=True):
            try:
                self._store.add([rec])
            except (InvalidInputError, InvalidTypeError) as exc:
                errors.append(RecordError(rec.id, where, _strip_record_prefix(str(exc))))
        return errors

    def count(self) -> int:
        return int(self._store.count())

    def close(self) -> None:
        self._close()


def _strip_record_prefix(message: str) -> str:
    # The store names "record 'x' (index 0): ..."; the report names the record already.
    if message.startswith("record ") and "): " in message:
        return message.split("): ", 1)[1]
    return message


@dataclass(frozen=True, eq=False)
class DescribedEncoder:
    """An encoder's identity without its model: what the one writer of a directory store needs
    (the workers encode; every record it writes carries its vectors)."""

    identity: EncoderIdentity
    dense_dim: int | None
    outputs: frozenset[str]
    #: It never runs a model.
    forward_passes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", frozenset(self.outputs))

    @classmethod
    def of(cls, encoder: Encoder) -> DescribedEncoder:
        return cls(encoder.identity, encoder.dense_dim, encoder.outputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity.to_dict(),
            "dense_dim": self.dense_dim,
            "outputs": sorted(self.outputs),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DescribedEncoder:
        return cls(EncoderIdentity.from_dict(data["identity"]), data["dense_dim"], data["outputs"])

    def encode(
        self, texts: Sequence[str], kind: TextKind = "document", **options: Unpack[EncodeOptions]
    ) -> EncodeResult:
        raise UnsupportedOperationError(
            f"the index writer does not encode ({len(texts)} texts arrived without vectors)"
        )


# ---------------------------------------------------------------------------
# one batch
# ---------------------------------------------------------------------------


def process_batch(rows: Sequence[Row], encoder: Encoder, outputs: Sequence[str], sink: Any) -> BatchStats:
    """Check, skip what is stored, encode and write one batch of rows (see the module docstring)."""
    stats = BatchStats()
    good: list[Row] = []
    for row in rows:
        if row.error is not None or row.id is None:
            stats.errors.append(RecordError(row.id, row.where, row.error or "no id"))
        else:
            good.append(row)
    if not good:
        return stats
    stored = set(sink.present(list(dict.fromkeys(r.id for r in good))))
    todo = [r for r in good if r.id not in stored]
    stats.skipped = len(good) - len(todo)
    if not todo:
        return stats
    records, wheres = _encode(todo, encoder, outputs, stats.errors)
    errors = sink.write(records, wheres)
    stats.errors.extend(errors)
    stats.written = len(records) - len(errors)
    if stats.written:
        stats.written_at = time.time()
    return stats


def _encode(
    rows: Sequence[Row], encoder: Encoder, outputs: Sequence[str], errors: list[RecordError]
) -> tuple[list[Record], list[str]]:
    """``rows`` as records with their vectors; a batch the encoder refuses is encoded row by row."""
    try:
        result = encoder.encode([r.text or "" for r in rows], "document", outputs=list(outputs))
        return [_with_vectors(r, result, i) for i, r in enumerate(rows)], [r.where for r in rows]
    except M3HybridError:
        if len(rows) == 1:
            raise
    records, wheres = [], []
    for r in rows:
        try:
            one = encoder.encode([r.text or ""], "document", outputs=list(outputs))
        except M3HybridError as exc:
            errors.append(RecordError(r.id, r.where, f"encoding failed: {exc}"))
            continue
        records.append(_with_vectors(r, one, 0))
        wheres.append(r.where)
    return records, wheres


def _with_vectors(row: Row, result: EncodeResult, i: int) -> Record:
    rec = row.to_record()
    if result.dense is not None:
        rec.dense = result.dense[i]
    if result.sparse is not None:
        rec.sparse = result.sparse[i]
    if result.colbert is not None:
        rec.colbert = result.colbert[i]
    return rec


# ---------------------------------------------------------------------------
# index
# ---------------------------------------------------------------------------


def run_in_process(
    batches: Iterable[list[Row]],
    spec: TargetSpec,
    encoder: Encoder,
    max_errors: int | None,
    show_progress: bool,
    progress: Callable[[IndexResult], None] | None,
) -> IndexResult:
    result = IndexResult(spec.describe(), spec.collection)
    sink = StoreSink(spec, encoder)
    try:
        outputs = sink.outputs(encoder.outputs)
        track(
            result,
            (process_batch(rows, encoder, outputs, sink) for rows in batches),
            show_progress=show_progress,
            progress=progress,
            max_errors=max_errors,
        )
        result.count = sink.count()
    finally:
        sink.close()
    return result


def track(
    result: IndexResult,
    batches: Iterable[BatchStats],
    *,
    show_progress: bool,
    progress: Callable[[IndexResult], None] | None,
    max_errors: int | None,
) -> None:
    """Add each batch's stats to ``result``, show progress, stop past ``max_errors`` failures.

    The one loop of both runners (in-process and Ray); stopping closes ``batches``.
    """
    with ProgressBar(show_progress) as bar:
        for stats in batches:
            result.add(stats)
            bar.update(result)
            if progress is not None:
                progress(result)
            if max_errors is not None and result.failed > max_errors:
                result.aborted = True
                break


def source_batches(spec: SourceSpec) -> Iterator[list[Row]]:
    """Batches of chunked rows from a file/directory source or a Python iterable (in this
    process); a bad source fails here, each batch is read and chunked when it is taken."""
    source, fields = spec.source, spec.fields
    if isinstance(source, (str, os.PathLike)):
        parts = plan_parts(source, spec.format)
        batches: Iterable[list[Row]] = (
            rows for part in parts for rows in read_part(part, fields, spec.batch_size)
        )
    elif type(source).__module__.startswith("ray.data"):
        raise InvalidInputError("a ray.data.Dataset source needs ray= (Ray Data)")
    elif not isinstance(source, Iterable):
        raise InvalidTypeError(
            "source must be a path, an iterable of records or a ray.data.Dataset, "
            f"got {type(source).__name__}"
        )
    else:
        batches = rows_from_items(source, fields, spec.batch_size)
    return (chunk_rows(rows, spec.chunker) for rows in batches)


class ProgressBar:
    """A tqdm counter of records done (written, skipped, failed) on stderr."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="index", unit="rec", file=sys.stderr, mininterval=0.2)

    def update(self, result: IndexResult) -> None:
        if self._bar is None:
            return
        done = result.written + result.skipped + result.failed
        self._bar.update(done - self._bar.n)
        self._bar.set_postfix(
            written=result.written, skipped=result.skipped, failed=result.failed, refresh=False
        )

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
