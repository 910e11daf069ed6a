"""``index``: the one ingest function (``m3-hybrid index``), in this process or on Ray Data."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..retry import RetryPolicy
from ..types import Encoder
from ..validation import positive_int
from .run import DEFAULT_BATCH_SIZE, IndexResult, SourceSpec, TargetSpec, run_in_process, source_batches
from .sources import Chunker, Fields

__all__ = ["index"]


def index(
    source: Any,
    target: str | os.PathLike[str],
    collection: str,
    *,
    model: str | os.PathLike[str] | None = "BAAI/bge-m3",
    encoder_options: Mapping[str, Any] | None = None,
    encoder: Encoder | None = None,
    store_options: Mapping[str, Any] | None = None,
    fields: Fields | None = None,
    format: str | None = None,
    chunker: Chunker | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_errors: int | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    ray: bool | str | None = None,
    workers: int = 1,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float = 0.0,
    show_progress: bool = False,
    progress: Callable[[IndexResult], None] | None = None,
) -> IndexResult:
    """Index ``source`` into ``collection`` at ``target``; rerunning it resumes (see the module docstring).

    * ``source``: a JSONL/Parquet/CSV file, a directory (text/Markdown files, or every file of
      ``format``), an iterable of :class:`~shared.types.Record` or mappings, or (with ``ray``)
      a ``ray.data.Dataset``. ``fields`` names the text, id and metadata fields.
    * ``target``: a directory (embedded store), ``local:DIR`` or an ``http(s)://`` URL, as for
      ``migrate``. ``store_options``: :class:`~shared.store.HybridStore` keywords for a new
      collection (``quantization=``, ``shard_number=``, ...).
    * ``model`` and ``encoder_options`` are :func:`~shared.encoders.load_encoder`'s arguments
      (``backend="onnx", precision="int8", max_batch_tokens=...``); or pass a built ``encoder``
      (in-process only).
    * ``chunker``: splits each document's text into chunks (ids ``DOC#k``, ``ref_doc_id`` DOC).
    * ``ray``: None/False runs in this process; True joins (or starts) a Ray cluster as
      ``ray.init()`` would; a string is its address. ``workers`` encoders run in an actor
      pool, each with ``cpus_per_worker`` CPUs (default: ``encoder_options["threads"]`` or 1)
      and ``gpus_per_worker`` GPUs.
    * Bad records are reported in the result and do not stop the others, unless more than
      ``max_errors`` fail (then the run stops, ``aborted``).
    """
    positive_int(batch_size, "batch_size")
    positive_int(workers, "workers")
    if max_errors is not None and (
        isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0
    ):
        raise InvalidInputError(f"max_errors must be an int >= 0 or None, got {max_errors!r}")
    source_spec = SourceSpec(source, fields if fields is not None else Fields(), format, chunker, batch_size)
    spec = TargetSpec(
        os.fspath(target) if isinstance(target, os.PathLike) else target,
        collection,
        dict(store_options or {}),
        api_key,
        timeout,
        retry,
    )
    if not isinstance(spec.endpoint, str):
        raise InvalidTypeError(
            f"target must be a directory, 'local:DIR' or an http(s):// URL, got {type(target).__name__}"
        )
    options = {"show_progress": False, **dict(encoder_options or {})}
    t0 = time.perf_counter()
    if ray is not None and ray is not False:
        if encoder is not None:
            raise InvalidInputError(
                "with ray= every worker loads its own encoder: pass model= and encoder_options=, not encoder="
            )
        from .ray_runner import run_on_ray

        result = run_on_ray(
            source_spec,
            spec,
            model=model,
            encoder_options=options,
            max_errors=max_errors,
            address=None if ray is True else str(ray),
            workers=workers,
            cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker,
            show_progress=show_progress,
            progress=progress,
        )
    else:
        if workers != 1 or gpus_per_worker:
            raise InvalidInputError("workers= and gpus_per_worker= need ray= (Ray Data)")
        batches = source_batches(source_spec)  # a bad source fails before the model loads
        if encoder is None:
            from ..encoders import load_encoder

            encoder = load_encoder(model, **options)
        result = run_in_process(batches, spec, encoder, max_errors, show_progress, progress)
    result.seconds = time.perf_counter() - t0
    return result
