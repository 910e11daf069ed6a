"""Running an evaluation: one index per configuration, every mode on it, rows scored once."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from ..types import Encoder, Record
from .configs import DEFAULT_MODES, EvalConfig, EvalMode, parse_modes, vector_ram_bytes
from .data import BeirDataset
from .metrics import EvalRow, scored_row
from .report import EvalReport
from .vectors import EncodedDataset, EncodedTexts, encode_dataset

if TYPE_CHECKING:
    from ..store import HybridStore


def evaluate(
    encoder: Encoder,
    dataset: BeirDataset,
    configs: Sequence[EvalConfig] = (EvalConfig(),),
    modes: str | Sequence[str | EvalMode] = DEFAULT_MODES,
    *,
    encoded: EncodedDataset | None = None,
    k: int = 100,
    workdir: str | os.PathLike[str] | None = None,
    keep_indexes: bool = False,
    batch_size: int | None = None,
    warmup: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    store_options: Mapping[str, Any] | None = None,
    show_progress: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Index ``dataset`` once per configuration and score every mode on it.

    ``encoded`` reuses vectors from :func:`encode_dataset` (else they are computed here,
    once).  Modes the encoder cannot serve (e.g. ``sparse`` without a sparse model,
    ``colbert`` without a ColBERT configuration) are skipped and listed in the notes.
    The sparse-only mode does not depend on the dense quantization or MRL, so it runs on
    the first configuration only.  ``k`` hits are retrieved per query (>= 100 for
    Recall@100).  Indexes live under ``workdir`` (a temporary folder by default) and are
    deleted afterwards unless ``keep_indexes``.  ``store_options`` go to ``HybridStore``
    (e.g. ``{"candidate_k": 200}``).
    """
    mode_list = _checked_request(encoder, dataset, configs, modes, k)
    want_colbert = any(c.colbert for c in configs)
    encoded = _encoded_vectors(encoder, dataset, encoded, want_colbert, batch_size, show_progress)
    job = _Job(encoder, dataset, encoded, dict(store_options or {}), k, warmup, bootstrap, seed)
    ticker = _Progress(len(configs) * (1 + len(mode_list)), show_progress, progress)
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="m3-eval-"))
    base.mkdir(parents=True, exist_ok=True)
    rows: list[EvalRow] = []
    notes: list[str] = []
    sparse_done: set[str] = set()
    passes_before = encoder.forward_passes
    try:
        for config in configs:
            runnable, skipped = _modes_for(config, mode_list, set(encoder.outputs), want_colbert, sparse_done)
            notes.extend(skipped)
            rows.extend(job.rows_of(config, runnable, base / config.name, keep_indexes, ticker))
            sparse_done.update(m.name for m in runnable if m.retrieval_mode == "sparse")
            for _ in range(len(mode_list) - len(runnable)):
                ticker.tick(f"{config.name}: skipped")
    finally:
        ticker.close()
        if workdir is None and not keep_indexes:
            shutil.rmtree(base, ignore_errors=True)
    if encoder.forward_passes != passes_before:
        # Timings would include model time: a bug in how vectors are handed to the store.
        notes.append(
            f"the encoder ran {encoder.forward_passes - passes_before} forward passes during retrieval"
        )
    report = EvalReport(
        dataset.name,
        dataset.num_docs,
        dataset.num_queries,
        rows=rows,
        meta=_meta(encoder, encoded, k),
        notes=[*dataset.notes, *dict.fromkeys(notes)],
        bootstrap=bootstrap,
        seed=seed,
    )
    report.refresh()  # the comparisons between rows, once every row is in
    return report


def _checked_request(
    encoder: Encoder,
    dataset: BeirDataset,
    configs: Sequence[EvalConfig],
    modes: str | Sequence[str | EvalMode],
    k: int,
) -> list[EvalMode]:
    """The modes to run; every argument error surfaces here, before the (slow) encoding."""
    if not isinstance(encoder, Encoder):
        raise InvalidTypeError(f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}")
    if not isinstance(dataset, BeirDataset):
        raise InvalidTypeError(f"dataset must be a BeirDataset (see load_beir), got {type(dataset).__name__}")
    if not configs:
        raise InvalidInputError("no configuration to evaluate")
    for i, c in enumerate(configs):
        if not isinstance(c, EvalConfig):
            raise InvalidTypeError(f"configs[{i}] must be an EvalConfig, got {type(c).__name__}")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"configuration {next(n for n in names if names.count(n) > 1)!r} is listed twice"
        )
    if k < 100:
        raise InvalidInputError(f"k must be >= 100 to compute Recall@100, got {k}")
    mode_list = parse_modes(modes)
    from ..quantization import get_preset

    for c in configs:
        get_preset(c.quantization)
        if c.mrl_dim and "dense" not in encoder.outputs:
            raise UnsupportedOperationError(f"configuration {c.name}: MRL needs a dense output")
    return mode_list


def _encoded_vectors(
    encoder: Encoder,
    dataset: BeirDataset,
    encoded: EncodedDataset | None,
    want_colbert: bool,
    batch_size: int | None,
    show_progress: bool,
) -> EncodedDataset:
    """``encoded`` once checked against the encoder and the dataset, or the vectors made now."""
    if encoded is None:
        return encode_dataset(
            encoder, dataset, colbert=want_colbert, batch_size=batch_size, show_progress=show_progress
        )
    if encoded.encoder_fingerprint and encoded.encoder_fingerprint != encoder.identity.fingerprint():
        raise InvalidInputError("encoded vectors were made by another encoder (fingerprints differ)")
    if not encoded.matches(dataset):
        raise InvalidInputError(
            "encoded vectors do not match the dataset's document/query ids (order matters)"
        )
    if want_colbert and encoded.docs.colbert is None:
        raise InvalidInputError(
            "a colbert configuration needs encoded ColBERT vectors (encode with colbert=True)"
        )
    return encoded


def _meta(encoder: Encoder, encoded: EncodedDataset, k: int) -> dict[str, Any]:
    return {
        "model": encoder.identity.model_id,
        "sparse model": encoder.identity.sparse_model_id or "",
        "encode docs (s)": round(encoded.doc_seconds, 1),
        "encode queries (s)": round(encoded.query_seconds, 1),
        "k": k,
    }


def _modes_for(
    config: EvalConfig,
    modes: Sequence[EvalMode],
    outputs: set[str],
    want_colbert: bool,
    sparse_done: set[str],
) -> tuple[list[EvalMode], list[str]]:
    """(the modes to run on ``config``, a note for each one skipped for a reason worth telling)."""
    runnable: list[EvalMode] = []
    notes: list[str] = []
    for m in modes:
        missing = {"dense", "sparse"} & m.needs - outputs
        if missing:
            notes.append(f"mode {m.name} skipped: the encoder has no {'/'.join(sorted(missing))} output")
        elif m.colbert_rerank and not config.colbert:
            if not want_colbert:
                notes.append(f"mode {m.name} skipped: no colbert configuration (use --colbert)")
        elif m.retrieval_mode == "sparse" and m.name in sparse_done:
            pass  # identical on every configuration: scored once
        elif m.rescore is False and not _rescore_applies(config):
            notes.append(f"mode {m.name} skipped on {config.name}: nothing is quantized, no rescoring")
        else:
            runnable.append(m)
    return runnable, notes


class _Progress:
    """One step per index built and per mode run (or skipped): a tqdm bar and/or a callback."""

    def __init__(self, total: int, show: bool, callback: Callable[[str, int, int], None] | None) -> None:
        self.total, self.step, self.callback = total, 0, callback
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="evaluate", unit="step")

    def tick(self, what: str) -> None:
        self.step += 1
        if self.bar is not None:
            self.bar.set_postfix_str(what)
            self.bar.update(1)
        if self.callback is not None:
            self.callback(what, self.step, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass(frozen=True)
class _ModeRun:
    mode: EvalMode
    ranked: dict[str, list[str]]
    latencies_s: list[float]


@dataclass(frozen=True)
class _Indexed:
    """What one configuration's index cost, and the runs of its modes."""

    runs: list[_ModeRun]
    index_seconds: float
    rss_delta_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class _Job:
    """What every configuration of one :func:`evaluate` call shares."""

    encoder: Encoder
    dataset: BeirDataset
    encoded: EncodedDataset
    store_options: dict[str, Any]
    k: int
    warmup: int
    bootstrap: int
    seed: int

    def rows_of(
        self, config: EvalConfig, modes: Sequence[EvalMode], path: Path, keep_index: bool, ticker: _Progress
    ) -> list[EvalRow]:
        """Index under ``path``, run ``modes``, and score each run into a finished row."""
        indexed = self.index_and_run(config, modes, path, ticker)
        if not keep_index:
            shutil.rmtree(path, ignore_errors=True)
        return [self.row(config, run, indexed) for run in indexed.runs]

    def index_and_run(
        self, config: EvalConfig, modes: Sequence[EvalMode], path: Path, ticker: _Progress
    ) -> _Indexed:
        if path.exists():
            shutil.rmtree(path)
        gc.collect()
        rss0 = _rss()
        t0 = time.perf_counter()
        store = _open_store(config, self.encoder, path, self.store_options)
        try:
            store.add(_records(self.dataset, self.encoded.docs, config.colbert), batch_size=256)
            index_s = time.perf_counter() - t0
            ticker.tick(f"{config.name}: indexed")
            runs = []
            for m in modes:
                runs.append(_ModeRun(m, *_run_queries(store, m, self.encoded.queries, self.k, self.warmup)))
                ticker.tick(f"{config.name}: {m.name}")
            # Before scoring: ranx's own allocations must not count as the index's memory.
            rss1 = _rss()
        finally:
            store.close()
        return _Indexed(runs, index_s, rss1 - rss0, _dir_size(path))

    @cached_property
    def dense_dim(self) -> int | None:
        dense = self.encoded.docs.dense
        return int(dense.shape[1]) if dense is not None else None

    @cached_property
    def mean_sparse_nnz(self) -> float:
        sparse = self.encoded.docs.sparse
        return float(np.mean([len(s) for s in sparse])) if sparse else 0.0

    def row(self, config: EvalConfig, run: _ModeRun, indexed: _Indexed) -> EvalRow:
        needs = run.mode.needs
        return scored_row(
            self.dataset,
            run.ranked,
            latencies_s=run.latencies_s,
            bootstrap=self.bootstrap,
            seed=self.seed,
            system="m3-hybrid",
            config=config.name,
            mode=run.mode.name,
            config_obj=config,
            mode_obj=run.mode,
            index_seconds=indexed.index_seconds,
            disk_bytes=indexed.disk_bytes,
            rss_delta_bytes=indexed.rss_delta_bytes,
            ram_bytes_per_doc=vector_ram_bytes(
                config,
                self.dense_dim if "dense" in needs else None,
                self.mean_sparse_nnz if "sparse" in needs else 0.0,
            ),
        )


def _rescore_applies(config: EvalConfig) -> bool:
    if config.mrl_dim:
        return True
    from ..quantization import get_preset

    return get_preset(config.quantization).quantized


def _run_queries(
    store: HybridStore, mode: EvalMode, qv: EncodedTexts, k: int, warmup: int
) -> tuple[dict[str, list[str]], list[float]]:
    kwargs = mode.query_kwargs()
    use_dense = "dense" in mode.needs and qv.dense is not None
    use_sparse = "sparse" in mode.needs and qv.sparse is not None
    use_colbert = mode.colbert_rerank and qv.colbert is not None

    def one(i: int) -> list[str]:
        hits = store.query(
            dense=qv.dense[i] if use_dense and qv.dense is not None else None,
            sparse=qv.sparse[i] if use_sparse and qv.sparse is not None else None,
            colbert=qv.colbert[i] if use_colbert and qv.colbert is not None else None,
            limit=k,
            **kwargs,
        )
        # The engine orders exactly tied scores (common under rrf: rank 1 + 3 equals rank 3 + 1)
        # arbitrarily, run to run; ranking ties by id makes a rerun reproduce the same metrics.
        return [h.id for h in sorted(hits, key=lambda h: (-h.score, str(h.id)))]

    n = len(qv.ids)
    for i in range(min(warmup, n)):  # warm caches and lazy initialisation, untimed
        one(i)
    ranked: dict[str, list[str]] = {}
    lat: list[float] = []
    for i, qid in enumerate(qv.ids):
        t0 = time.perf_counter()
        ids = one(i)
        lat.append(time.perf_counter() - t0)
        ranked[qid] = ids
    return ranked, lat


def _dir_size(path: Path) -> int:
    """Bytes the folder really occupies (allocated blocks, like ``du``): preallocated but
    unwritten file tails do not count, where the platform reports blocks."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, f))
                blocks = getattr(st, "st_blocks", None)
                total += blocks * 512 if blocks is not None else st.st_size
    return total


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _records(dataset: BeirDataset, enc: EncodedTexts, with_colbert: bool) -> Iterator[Record]:
    for i, (did, text) in enumerate(zip(dataset.doc_ids, dataset.doc_texts, strict=True)):
        yield Record(
            id=did,
            text=text,
            dense=enc.dense[i] if enc.dense is not None else None,
            sparse=enc.sparse[i] if enc.sparse is not None else None,
            colbert=enc.colbert[i] if with_colbert and enc.colbert is not None else None,
        )


def _open_store(
    config: EvalConfig, encoder: Encoder, path: Path, store_options: Mapping[str, Any]
) -> HybridStore:
    from ..store import HybridStore

    return HybridStore(
        f"eval_{config.name.replace('+', '_').replace('.', '_')}",
        encoder=encoder,
        path=path,
        **config.store_options(),
        **dict(store_options),
    )
