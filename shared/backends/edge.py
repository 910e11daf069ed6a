"""Embedded backend: one Qdrant Edge shard per collection, at ``<path>/<collection_name>``.

* Persistent: reopening the same path finds the points without re-ingesting.
  Without a path the shard lives in a temporary directory removed on close.
* The guard record is a JSON sidecar ``m3_hybrid.json`` in the shard directory,
  written atomically (temporary file + ``os.replace``) before the shard itself
  is created, so a crash never leaves a shard without its guard.
* Locking: Qdrant Edge locks the shard's write-ahead log while it is open. A
  second process opening the same shard gets :class:`StoreLockedError` naming
  the path (the engine's raw ``WouldBlock`` error is translated). Within one
  process a second open of the same path is refused the same way before the
  engine is touched; close the first store (or reuse it) instead.
  An ``fcntl`` lock on ``.m3_hybrid.lock`` in the shard directory is held for the
  whole life of the store, so the shard stays ours while it is briefly closed for
  a compaction (below).
* ``add`` calls :meth:`finish_bulk` once at the end, which runs ``optimize()``
  so HNSW indexes and quantized codes are built for the new points (a large add: in a
  writer process, after the add returns; below).
* Bounded memory (``compact_every``): Qdrant Edge keeps ~1.5-2.5 KB of heap per
  point written since the shard was opened, and ``optimize()`` does not give it
  back; only closing the shard does. So every ``compact_every`` points written the
  backend optimizes, flushes, closes and reloads the shard. With ``on_disk=True``
  the shard is laid out for this (HNSW graphs and the sparse index memory-mapped,
  no merging of segments below 64), and compaction is on by default every
  :data:`DEFAULT_COMPACT_EVERY` points.
* qdrant-edge-py 0.9 holds the GIL inside its calls (``optimize()`` included), so
  no other Python thread runs while the engine indexes in this process. An index build of
  at least ``background_index_min`` unindexed points (an ``add``'s :meth:`finish_bulk`, or a
  compaction) therefore runs in a writer process on a copy of the shard, and the indexed
  copy is swapped in (:mod:`shared.backends.edge_build`): queries keep being answered from
  the current shard meanwhile, and pause only for the swap (the close of the current shard,
  then the load of the indexed one, its files cached and, in the default layout,
  memory-mapped: :data:`DEFAULT_MEMORY`, and the replay of the writes made meanwhile). An
  add's build runs on the backend's index thread after the add has returned (:meth:`EdgeBackend.finish_bulk`);
  :meth:`EdgeBackend.wait_indexed` and ``close`` wait for it. Smaller builds stay in-process.
  While the store serves queries (:data:`WINDOWS_WHILE_QUERIED_S`), a large add is indexed in
  windows as it writes (:data:`WINDOW_FACTOR`): every point is
  searchable as soon as it is written, and a query searches at most about two windows of
  unindexed points exactly, not the whole add. Upserts go to the engine in slices of
  :data:`UPSERT_SLICE` points and the shard is flushed every :data:`FLUSH_EVERY` points, so no
  single GIL hold of a write is long. A gate keeps operations off the shard between its close
  and reload.
* Every operation is one blocking engine call declared with :func:`shared.steps.one_step`:
  the store runs it in place, or (async) in a worker thread, so an event loop never waits
  on the engine. Nothing is retried: in-process calls have no transient failures.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import qdrant_edge as qe

try:  # POSIX; elsewhere only the engine's own lock protects the shard (not during a compaction)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..errors import (
    BackendError,
    InvalidInputError,
    InvalidTypeError,
    M3HybridError,
    StoreLockedError,
    UnsupportedOperationError,
)
from ..quantization import (
    BINARY_ENCODINGS,
    DATATYPES,
    PRODUCT_COMPRESSIONS,
    TURBO_BITS,
    QuantizationPreset,
)
from ..query.groups import Group, fill_groups
from ..query.plan import (
    DbsfFusion,
    MmrQuery,
    Nearest,
    QueryPlan,
    RrfFusion,
    SearchOptions,
    SparseQuery,
    Stage,
    VectorRef,
    WeightedSum,
    per_tree,
)
from ..schema import BM25, COLBERT, DENSE, DENSE_MRL, REF_DOC_ID_KEY, SPARSE, CollectionSchema
from ..steps import one_step
from ..tenancy import TENANT_GRAPH_M
from . import edge_build
from .base import PointData, PointId, ResultPoint
from .edge_filters import to_edge_filter

if TYPE_CHECKING:
    from ..layouts import CollectionInfo
    from ..tenancy import IndexSpec

logger = logging.getLogger(__name__)

GUARD_FILE = "m3_hybrid.json"
LOCK_FILE = ".m3_hybrid.lock"
EDGE_MARKER = "edge_config.json"

#: Points written between two compactions of an ``on_disk=True`` store (the memory window:
#: ~2.5 KB per point of 384-d dense + 50-term sparse, so ~250 MB at most).
DEFAULT_COMPACT_EVERY = 100_000
#: Qdrant's default indexing threshold (10,000 KB of vectors per segment): only a window
#: larger than this is turned into an indexed, memory-mapped segment by ``optimize()``;
#: a smaller one stays in the appendable segment, which a reload reads back into RAM.
_INDEXING_THRESHOLD_BYTES = 10_000 * 1024
#: ``on_disk=True`` layout: segments are merged only beyond this many, so a compaction
#: indexes only the new window instead of rewriting everything stored (quadratic time).
ON_DISK_SEGMENT_NUMBER = 64
#: Points per engine upsert call: each call holds the GIL, so other threads run between slices.
UPSERT_SLICE = 64
#: While index builds run apart, the shard is flushed every this many points written: a flush
#: holds the GIL for a time that grows with what it writes, and the flush before a build's copy
#: then has little left to write.
FLUSH_EVERY = 2048
#: An add indexes apart a window of this many times ``background_index_min`` points as soon as
#: it has written one, while it goes on writing (and waits when the next window is full before
#: the previous one is swapped in): queries search at most about two windows exactly, and each
#: build's fixed costs (the copy of the shard, the load of the indexed one) are paid once per
#: window, not once per threshold's worth of points.
WINDOW_FACTOR = 2
#: An add is indexed in windows only while the store serves queries (one in the last this many
#: seconds): the windows keep those queries off long exact scans of the add's points, but each
#: copies and reloads the shard, which a bulk load with no one querying would pay for nothing
#: (benchmarks/store.py, RESULTS.md).
WINDOWS_WHILE_QUERIED_S = 10.0
#: ``background_index_min`` of a collection without dense vectors (the sparse index's build).
SPARSE_BACKGROUND_INDEX_MIN = 10_000

# Paths of shards open in this process (the engine's own lock is per process).
_OPEN_PATHS: set[str] = set()
_OPEN_LOCK = threading.Lock()

# The engine's value of each word of the presets' vocabulary (shared.quantization), in its order:
# zip(strict=True) fails at import when the vocabulary gains a word the engine table lacks.
_E, _T, _C, _D = (
    qe.BinaryQuantizationEncoding,
    qe.TurboQuantBitSize,
    qe.CompressionRatio,
    qe.VectorStorageDatatype,
)
_BINARY_ENCODING = dict(zip(BINARY_ENCODINGS, (_E.OneBit, _E.OneAndHalfBits, _E.TwoBits), strict=True))
_TURBO_BITS = dict(zip(TURBO_BITS, (_T.Bits1, _T.Bits1_5, _T.Bits2, _T.Bits4, _T.Bits8), strict=True))
_COMPRESSION = dict(zip(PRODUCT_COMPRESSIONS, (_C.X4, _C.X8, _C.X16, _C.X32, _C.X64), strict=True))
_DATATYPE = dict(zip(DATATYPES, (_D.Float32, _D.Float16, _D.Uint8), strict=True))


#: ``indexed_fields`` kinds -> the engine's payload schema types.
_INDEX_KINDS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
    "datetime": qe.PayloadSchemaType.Datetime,
    "uuid": qe.PayloadSchemaType.Uuid,
    "text": qe.PayloadSchemaType.Text,
}


# An HNSW graph with m=0 is never built: for vectors only used to re-score candidates.
def _required_filter(flt: Any) -> qe.Filter:
    edge = to_edge_filter(flt)
    if edge is None:  # never let a missing filter turn into "delete everything"
        raise InvalidInputError("delete by filter needs a filter")
    return edge


def _no_hnsw() -> qe.HnswIndexConfig:
    return qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)


class _EngineErrors:
    """Translate the engine's untyped exceptions into our error classes.

    A class, not a generator context manager: it wraps every engine call, queries included.
    """

    __slots__ = ("path", "what")

    def __init__(self, what: str, path: str) -> None:
        self.what, self.path = what, path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        # Already typed (e.g. UnsupportedOperationError from the filter conversion), or not an error.
        if exc is None or isinstance(exc, M3HybridError) or not isinstance(exc, Exception):
            return
        msg = str(exc)  # the engine raises plain Exception
        if "WouldBlock" in msg:
            raise StoreLockedError(_locked_message(self.path)) from None
        if "dimension error" in msg.lower():
            raise InvalidInputError(f"{self.what}: {msg}") from None
        raise BackendError(f"{self.what} failed on the embedded store at {self.path}: {msg}") from exc


def _engine_errors(what: str, path: str) -> _EngineErrors:
    return _EngineErrors(what, path)


#: Where the default layout (``on_disk`` off) keeps the originals, the quantized codes, the
#: HNSW graphs, the sparse index and the id tracker: memory-mapped files, which the store keeps
#: in the page cache (:func:`shared.backends.edge_build.warm_page_cache`, when it opens the
#: shard and after an index build). A load then maps them instead of copying them into the
#: heap, and the swap of a writer-built shard holds the serving process's GIL for less
#: (``benchmarks/edge_load.py``, 200,000 points of 384-d int8 + sparse, files cached: 61 ms
#: against 124 ms with the engine's in-heap defaults; 82 against 375 ms when the engine's close
#: has just dropped them), queries as fast (interleaved: p50 1.05 against 1.16 ms, p99 6.0
#: against 5.7 ms). None: the engine's defaults (the layout of stores created before; they
#: keep it).
DEFAULT_MEMORY: qe.Memory | None = qe.Memory.Cold


def quantization_config(preset: QuantizationPreset, on_disk: bool) -> Any:
    """The qdrant_edge quantization config of a preset (None when not quantized)."""
    # Codes stay in RAM whenever the originals are on disk, else searches would page them in.
    memory = qe.Memory.Pinned if on_disk else DEFAULT_MEMORY
    if preset.method == "scalar":
        return qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=preset.scalar_quantile, memory=memory)
    if preset.method == "binary":
        return qe.BinaryQuantizationConfig(
            encoding=_BINARY_ENCODING[preset.binary_encoding or "one_bit"], memory=memory
        )
    if preset.method == "product":
        return qe.ProductQuantizationConfig(_COMPRESSION[preset.product_compression or "x16"], memory=memory)
    if preset.method == "turbo":
        return qe.TurboQuantQuantizationConfig(bits=_TURBO_BITS[preset.turbo_bits or 4.0], memory=memory)
    return None


def edge_config(schema: CollectionSchema, *, wal: bool = True) -> qe.EdgeConfig:
    """The shard configuration of a schema (``wal=False`` for throw-away temporary stores).

    Default: every large structure is a memory-mapped file kept in the page cache
    (:data:`DEFAULT_MEMORY`). ``on_disk``: originals, HNSW graphs and the sparse index are
    memory-mapped and only what queries touch is cached, quantized codes stay in RAM, and
    segments are not merged (see :data:`ON_DISK_SEGMENT_NUMBER`).
    """
    memory = qe.Memory.Cold if schema.on_disk else DEFAULT_MEMORY
    # The engine's default graph (m=16, ef_construct=100), memory-mapped but for the engine's defaults.
    graph = (
        qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000, memory=memory)
        if memory
        else None
    )
    if schema.tenant_key is not None:
        # Tenants: one graph per tenant (built from the tenant index) and no global graph; a
        # tenant's search walks its own graph, exact for tenants under full_scan_threshold.
        graph = qe.HnswIndexConfig(
            m=0, payload_m=TENANT_GRAPH_M, ef_construct=100, full_scan_threshold=10_000, memory=memory
        )

    def dense(size: int, preset: QuantizationPreset, hnsw: qe.HnswIndexConfig | None) -> qe.EdgeVectorParams:
        return qe.EdgeVectorParams(
            size=size,
            distance=qe.Distance.Cosine,
            datatype=_DATATYPE[preset.datatype],
            quantization_config=quantization_config(preset, schema.on_disk),
            hnsw_config=hnsw,
            memory=memory,
        )

    vectors: dict[str, qe.EdgeVectorParams] = {}
    if schema.dense_dim is not None:
        # With the MRL funnel the full vector only re-scores candidates: no graph needed.
        full_graph = _no_hnsw() if schema.mrl_dim is not None else graph
        vectors[DENSE] = dense(schema.dense_dim, schema.quantization, full_graph)
        if schema.mrl_dim is not None:
            vectors[DENSE_MRL] = dense(schema.mrl_dim, schema.mrl_quantization, graph)
    if schema.colbert and schema.colbert_dim is not None:
        vectors[COLBERT] = qe.EdgeVectorParams(
            size=schema.colbert_dim,
            distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
            hnsw_config=_no_hnsw(),
            memory=memory,
        )
    sparse: dict[str, qe.EdgeSparseVectorParams] = {}
    if schema.sparse:
        sparse[SPARSE] = qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf if schema.sparse_idf else None,
            datatype=_DATATYPE[schema.sparse_datatype],
            # on_disk: the inverted index is mmapped too (the page cache keeps its hot lists).
            memory=memory,
        )
    if schema.bm25 is not None:
        # BM25 term weights: the engine supplies the IDF.
        sparse[BM25] = qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf, datatype=_DATATYPE[schema.sparse_datatype], memory=memory
        )
    optimizers = (
        qe.EdgeOptimizersConfig(default_segment_number=ON_DISK_SEGMENT_NUMBER) if schema.on_disk else None
    )
    return qe.EdgeConfig(
        vectors=vectors or None,
        sparse_vectors=sparse or None,
        optimizers=optimizers,
        wal_enabled=wal,
        id_tracker_memory=memory,
    )


# ---------------------------------------------------------------------------
# plan -> qdrant_edge request
# ---------------------------------------------------------------------------


def _edge_vector(value: Any) -> Any:
    if isinstance(value, SparseQuery):
        return qe.SparseVector(indices=list(value.indices), values=list(value.values))
    if isinstance(value, np.ndarray):
        return _dense_buffer(value)  # the engine reads the buffer: no list of floats per query
    return value


def _edge_params(p: SearchOptions | None) -> qe.SearchParams | None:
    if p is None:
        return None
    return _cached_params(p)


# A handful of distinct values per store: built once, not per query (the engine only reads them).
@functools.lru_cache(maxsize=256)
def _cached_params(p: SearchOptions) -> qe.SearchParams:
    q = p.quantization
    quant = None if q is None else qe.QuantizationSearchParams(**q)
    # Live IDF: statistics over the points matching the corpus filter (empty: every stored point).
    idf = qe.IdfParams(corpus=_corpus_filter(p.idf_corpus)) if p.idf_live else None
    acorn = qe.AcornSearchParams(enable=True) if p.acorn else None
    return qe.SearchParams(hnsw_ef=p.hnsw_ef, exact=p.exact, quantization=quant, idf=idf, acorn=acorn)


def _corpus_filter(pairs: tuple[tuple[str, str], ...]) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key=k, match=qe.MatchValue(v)) for k, v in pairs] or None)


#: What builds one part of a request from a plan's vectors (ref name -> value).
_Part = Callable[[Mapping[str, Any]], Any]


def _vector_part(value: Any) -> _Part:
    if isinstance(value, VectorRef):
        name = value.name
        return lambda vectors: _edge_vector(vectors[name])
    fixed = _edge_vector(value)
    return lambda vectors: fixed


def _query_part(q: Any) -> _Part:
    if isinstance(q, Nearest):
        vector, using = _vector_part(q.vector), q.using
        return lambda vectors: qe.Query.Nearest(vector(vectors), using=using)
    if isinstance(q, (RrfFusion, DbsfFusion, WeightedSum)):
        fused = _fusion_query(q)
        return lambda vectors: fused
    if isinstance(q, MmrQuery):
        vector, lam, pool, using = _vector_part(q.vector), q.lambda_mult, q.candidates_limit, q.using
        return lambda vectors: qe.Mmr(vector(vectors), lambda_=lam, candidates_limit=pool, using=using)
    raise TypeError(f"unknown plan query {type(q).__name__}")


@functools.lru_cache(maxsize=256)
def _fusion_query(q: RrfFusion | DbsfFusion | WeightedSum) -> Any:
    """The engine's fusion query (no vectors in it: built once per distinct value)."""
    if isinstance(q, RrfFusion):
        return qe.Fusion.Rrf(k=q.k, weights=list(q.weights) if q.weights is not None else None)
    if isinstance(q, DbsfFusion):
        return qe.Fusion.Dbsf()
    e = qe.Expression
    terms = [e.Mult([e.Constant(w), e.Variable(f"$score[{i}]")]) for i, w in enumerate(q.weights)]
    # A point missing from one re-scored side has no overlap with it: its score there is 0.
    defaults = {f"$score[{i}]": 0.0 for i in range(len(q.weights))}
    return qe.Formula(e.Sum(terms), defaults=defaults)


def _prefetch_part(stage: Stage) -> _Part:
    query, subs = _query_part(stage.query), [_prefetch_part(p) for p in stage.prefetches]
    limit, params, flt, threshold = (
        stage.limit,
        _edge_params(stage.params),
        to_edge_filter(stage.filter),
        stage.score_threshold,
    )

    def build(vectors: Mapping[str, Any]) -> qe.Prefetch:
        return qe.Prefetch(
            limit=limit,
            query=query(vectors),
            prefetches=[sub(vectors) for sub in subs] or None,
            params=params,
            filter=flt,
            score_threshold=threshold,
        )

    return build


_Request = Callable[[QueryPlan, "int | None"], qe.QueryRequest]


@per_tree
def _request_builder(root: Stage) -> _Request:
    """The request of every plan with this stage tree: everything but the vectors and the
    page translated once (a store reuses one tree for all queries with the same options)."""
    query, subs = _query_part(root.query), [_prefetch_part(p) for p in root.prefetches]
    params, flt, threshold, root_limit = (
        _edge_params(root.params),
        to_edge_filter(root.filter),
        root.score_threshold,
        root.limit,
    )

    def build(plan: QueryPlan, limit: int | None) -> qe.QueryRequest:
        vectors = plan.vectors
        return qe.QueryRequest(
            limit=root_limit if limit is None else limit,
            offset=plan.offset or None,
            query=query(vectors),
            prefetches=[sub(vectors) for sub in subs] or None,
            with_vector=list(plan.with_vectors) if plan.with_vectors else False,
            with_payload=True,
            filter=flt,
            score_threshold=threshold,
            params=params,
        )

    return build


def edge_request(plan: QueryPlan, limit: int | None = None) -> qe.QueryRequest:
    """The one qdrant_edge request that runs ``plan`` (its root's top ``limit`` when given)."""
    return _request_builder(plan.root)(plan, limit)


_SPARSE_NAMES = frozenset({SPARSE, BM25})


def _edge_point(p: PointData) -> qe.Point:
    vectors: dict[str, Any] = {}
    for name, value in p.vectors.items():
        if name in _SPARSE_NAMES:
            indices, values = value
            vectors[name] = qe.SparseVector(indices=indices, values=values)
        elif isinstance(value, np.ndarray):
            vectors[name] = _dense_buffer(value)
        else:
            vectors[name] = value
    return qe.Point(p.id, vectors, p.payload)


def _dense_buffer(row: np.ndarray) -> Any:
    """A float32 row as the engine reads it fastest: a memoryview (its floats are read as the
    list's would be, without a list of Python floats per point: ~3x cheaper with the list's
    conversion counted, and nothing for the garbage collector to track)."""
    if row.dtype == np.float32 and row.ndim == 1 and row.flags.c_contiguous:
        return row.data
    return np.asarray(row, dtype=np.float32).tolist()


def _payload(point: Any) -> Any:
    return point.payload or {}


def _result(point: Any, score: float | None) -> ResultPoint:
    """A raw point read back. Its point id is built only when read (the engine's UUID object
    costs more than the rest of a result); a point without vectors takes the short path."""
    raw = point.vector
    vectors: dict[str, Any] | None = None
    if raw:
        vectors = {}
        for name, value in raw.items():
            if isinstance(value, qe.SparseVector):
                vectors[name] = dict(zip(value.indices, value.values, strict=True))
            else:
                vectors[name] = value
    return ResultPoint(None, score, point.payload or {}, vectors, point)


# ---------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------


class _SwapGate:
    """Any number of shard operations at once, or one shard swap (close + reload) alone.

    A waiting swap stops new operations from starting, so a steady stream of queries
    cannot starve it; operations wait only for the swap itself.
    """

    def __init__(self) -> None:
        # Every query enters and leaves the gate: its lock is taken directly (C-level), not
        # through the Condition's ``with`` (two Python-level calls at each end).
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._swapping = False
        self._waiting = 0

    def operation(self) -> _SwapGate:
        """Context manager around one shard operation: the gate itself."""
        return self

    def __enter__(self) -> None:
        with self._lock:
            while self._swapping or self._waiting:
                self._cond.wait()
            self._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if not self._active and self._waiting:  # only a waiting swap waits for the count
                self._cond.notify_all()

    @contextmanager
    def swap(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._swapping or self._active:
                self._cond.wait()
            self._waiting -= 1
            self._swapping = True
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (looked up once: ``find_library`` runs ``ldconfig``)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


def _return_freed_heap() -> None:
    """Ask glibc to give freed heap back to the OS; a no-op elsewhere.

    The engine frees a closed shard's memory, but glibc keeps freed blocks in its arenas:
    the next window reuses them, yet resident memory would not show the release.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _lock_file(directory: Path) -> IO[str] | None:
    """Take the store's process lock (``fcntl.flock`` on ``directory/LOCK_FILE``), or raise."""
    if fcntl is None:
        return None
    try:
        fh = open(directory / LOCK_FILE, "a", encoding="utf-8")  # noqa: SIM115 - held until close
    except OSError as exc:
        raise BackendError(f"cannot open the lock file of the embedded store at {directory}: {exc}") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise StoreLockedError(_locked_message(str(directory))) from None
    except OSError as exc:  # e.g. no lock support on a network file system
        fh.close()
        raise BackendError(f"cannot lock the embedded store at {directory}: {exc}") from None
    return fh


def _points_option(value: int | None, name: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidTypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value is not None and value < 0:
        raise InvalidInputError(f"{name} must be >= 0 (0: never), got {value}")


def _locked_message(path: str) -> str:
    return (
        f"the embedded store at {path} is locked: another process holds it open. "
        "Only one process may open an embedded store at a time; close it there, "
        "or use a Qdrant server (url=...) to share a collection."
    )


class EdgeBackend:
    """A Qdrant Edge shard holding one collection."""

    is_remote = False
    can_sync = True

    def __init__(
        self,
        collection_name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        compact_every: int | None = None,
        background_index_min: int | None = None,
    ) -> None:
        _points_option(compact_every, "compact_every")
        _points_option(background_index_min, "background_index_min")
        if (
            not collection_name
            or "/" in collection_name
            or "\\" in collection_name
            or collection_name
            in (
                ".",
                "..",
            )
        ):
            raise InvalidInputError(f"invalid collection_name {collection_name!r} (used as a directory name)")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="m3-hybrid-")
            path = self._tmp.name
        self.path = Path(path).expanduser().resolve() / collection_name
        self.location = str(self.path)
        self._shard: qe.EdgeShard | None = None
        self._closed = False
        self._failed: str | None = None
        self._lock_fh: IO[str] | None = None
        self._gate = _SwapGate()
        self._compact_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._requested_compact_every = compact_every
        self.compact_every = 0  # resolved once the layout is known (create or open)
        self._written = 0
        # Index builds in a writer process (edge_build): writes are serialised with the
        # copy and the swap, and logged while a build runs, to be replayed onto its copy.
        self._requested_background_min = background_index_min
        self.background_index_min = 0  # resolved with compact_every; 0: always in-process
        self._write_lock = threading.Lock()
        self._log: list[Any] | None = None
        self._writer: edge_build.Writer | None = None
        self._writer_lock = threading.Lock()
        self._closing = False  # set first by close/drop: a running build is abandoned
        self._previous_at: Path | None = None  # where a swap in progress put the previous shard
        self._unindexed = 0
        # When a query last ran (monotonic): an add is indexed in windows while queries come in.
        self._last_query = -math.inf
        self._unflushed = 0
        # Notified when a build apart ends (swapped in, failed or abandoned): an add waiting for
        # its window (see _wait_for_window) goes on.
        self._window = threading.Condition()
        # An add's index build runs after the add returns (see finish_bulk): one thread at a
        # time builds whatever is due, and a failure is kept until wait_indexed/close reports it.
        self._index_lock = threading.Lock()
        self._index_thread: threading.Thread | None = None
        self._index_due = False
        self._index_error: BackendError | None = None
        #: Index builds run in a writer process and swapped in; the last one's phases and the
        #: time queries waited for its swap, in seconds (benchmarks/serving.py reports them).
        self.background_builds = 0
        self.last_build_s: dict[str, float] = {}
        self.last_swap_s = 0.0
        #: Compactions run by this backend (each is logged at INFO with its timings).
        self.compactions = 0
        with _OPEN_LOCK:
            if self.location in _OPEN_PATHS:
                if self._tmp is not None:
                    self._tmp.cleanup()
                raise StoreLockedError(
                    f"the embedded store at {self.location} is already open in this process; close the "
                    "other HybridStore first (or reuse it): an embedded store has one owner at a time"
                )
            _OPEN_PATHS.add(self.location)
        try:
            has_shard = (self.path / EDGE_MARKER).exists()
            has_guard = (self.path / GUARD_FILE).exists()
            if has_shard or has_guard:
                # Take the locks right away, before any guard check or write.
                self._lock_fh = _lock_file(self.path)
                if edge_build.recover(self.path):
                    # A swap was cut short: the previous shard is back, with its own lock file.
                    self._relock(_lock_file(self.path))
            schema = self._guard_schema()
            if has_shard:
                if schema is None or not schema.on_disk:
                    # The default layout lives in memory: its files are read into the page cache
                    # here (the GIL is free during each read), not by the engine's load (which
                    # holds it, and reads a page at a time).
                    edge_build.warm_page_cache(self.path)
                with _engine_errors("opening the shard", self.location):
                    self._shard = qe.EdgeShard.load(str(self.path))
            elif has_guard:
                self._finish_interrupted_create()
            self._resolve_compaction(schema)
        except BaseException:
            self._release()
            raise

    def __repr__(self) -> str:
        return f"EdgeBackend(path={self.location!r})"

    # -- lifecycle ---------------------------------------------------------

    def _release(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()  # closing the file releases the flock
            self._lock_fh = None
        with _OPEN_LOCK:
            _OPEN_PATHS.discard(self.location)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _relock(self, fh: IO[str] | None) -> None:
        """Hold ``fh`` (a lock on the store's lock file) instead of the current lock."""
        if self._lock_fh is not None:
            self._lock_fh.close()
        self._lock_fh = fh

    def _require(self) -> qe.EdgeShard:
        if self._closed:
            raise BackendError(f"the embedded store at {self.location} is closed")
        if self._failed is not None:
            raise BackendError(self._failed)
        if self._shard is None:
            raise BackendError(f"the collection at {self.location} does not exist yet")
        return self._shard

    def _current(self) -> qe.EdgeShard | None:
        """The shard; None while the collection does not exist (or after close).

        Raises after a failed reopen, which would otherwise read as an empty store.
        """
        if self._failed is not None:
            raise BackendError(self._failed)
        return self._shard

    def _finish_interrupted_create(self) -> None:
        """Complete a creation that was killed after the guard was written but before the shard was.

        The guard is written first and Qdrant Edge writes ``edge_config.json`` last, so a
        guard without that marker means ``create`` never returned and no point was stored.
        The shard is created now with the recorded schema over the ``wal/``/``segments/``
        the interrupted creation may have left (``EdgeShard.load`` with a config accepts
        them; ``EdgeShard.create`` would refuse them and leave the store unwritable).
        """
        try:
            with open(self.path / GUARD_FILE, encoding="utf-8") as fh:
                schema = CollectionSchema.from_guard(json.load(fh))
        except (KeyError, TypeError, ValueError):
            return  # not our guard: read_guard/check_guard report it
        with _engine_errors("completing the interrupted creation of the shard", self.location):
            self._shard = qe.EdgeShard.load(str(self.path), edge_config(schema))
            self._index_payload()

    def _index_payload(self) -> None:
        # Keyword index for delete(ref_doc_ids=...); ids are looked up by point id.
        assert self._shard is not None
        self._shard.update(
            qe.UpdateOperation.create_field_index(REF_DOC_ID_KEY, qe.PayloadSchemaType.Keyword)
        )

    def _guard_schema(self) -> CollectionSchema | None:
        try:
            guard = self._guard()
            return CollectionSchema.from_guard(guard) if guard else None
        except (KeyError, TypeError, ValueError):
            return None  # not our guard: read_guard/check_guard report it

    def _merges_segments(self) -> bool:
        """Whether the existing shard was laid out with the engine's merging optimizer.

        ``on_disk`` stores created before compaction existed have it; compacting them
        would re-merge (and re-index) everything stored at every window.
        """
        try:
            with open(self.path / EDGE_MARKER, encoding="utf-8") as fh:
                optimizers = json.load(fh).get("optimizers") or {}
        except (OSError, ValueError, AttributeError):
            return False  # no shard yet: it will get the layout of its schema
        return optimizers.get("default_segment_number") is None

    def _resolve_compaction(self, schema: CollectionSchema | None) -> None:
        requested = self._requested_compact_every
        on_disk = schema is not None and schema.on_disk
        if requested is None and on_disk and self._merges_segments():
            logger.info(
                "the embedded store at %s predates the compaction layout: not compacting it by "
                "default (pass compact_every= to force it; each compaction would re-index everything)",
                self.location,
            )
            on_disk = False
        self.compact_every = requested if requested is not None else (DEFAULT_COMPACT_EVERY if on_disk else 0)
        dim = schema.dense_dim if schema is not None else None
        self._resolve_background(dim)
        if self.compact_every and dim and self.compact_every * dim * 4 < _INDEXING_THRESHOLD_BYTES:
            least = -(-_INDEXING_THRESHOLD_BYTES // (dim * 4))
            logger.warning(
                "compact_every=%d is too small to release memory for %d-d vectors: the engine only "
                "indexes (and memory-maps) windows of at least ~%d points; use compact_every >= %d",
                self.compact_every,
                dim,
                least,
                least,
            )

    def _resolve_background(self, dim: int | None) -> None:
        requested = self._requested_background_min
        if requested is None:
            # The engine builds an index for a segment of at least its indexing threshold only.
            requested = -(-_INDEXING_THRESHOLD_BYTES // (dim * 4)) if dim else SPARSE_BACKGROUND_INDEX_MIN
        self.background_index_min = requested

    def _builds_apart(self, points: int) -> bool:
        """Whether an index build of ``points`` unindexed points runs in a writer process."""
        return (
            bool(self.background_index_min)
            and points >= self.background_index_min
            and edge_build.can_exchange(self.path)
        )

    def _guard(self) -> dict[str, Any] | None:
        guard_path = self.path / GUARD_FILE
        if guard_path.exists():
            with open(guard_path, encoding="utf-8") as fh:
                data: dict[str, Any] = json.load(fh)
            return data
        if self._shard is not None:
            return {}  # an Edge shard we did not create
        return None

    read_guard = one_step(_guard)

    @one_step
    def inspect(self) -> CollectionInfo:
        """The embedded store holds only m3-hybrid's layout: there is no foreign collection to read."""
        raise UnsupportedOperationError(f"{self.location} is not a Qdrant server collection")

    @one_step
    def write_guard(self, schema: CollectionSchema) -> None:
        raise UnsupportedOperationError(f"{self.location} is not a Qdrant server collection")

    @one_step
    def create(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if self._lock_fh is None:
            self._lock_fh = _lock_file(self.path)
        self._resolve_compaction(schema)
        tmp = self.path / f".{GUARD_FILE}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(guard if guard is not None else schema.guard_dict(), fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / GUARD_FILE)
        if self._shard is None:
            with _engine_errors("creating the shard", self.location):
                # A temporary store is deleted on close: a write-ahead log would only cost fsyncs.
                self._shard = qe.EdgeShard.create(str(self.path), edge_config(schema, wal=self._tmp is None))
                self._index_payload()

    def _cancel_build(self) -> None:
        """Abandon a running index build (its writer process is killed; the shard is untouched)."""
        self._closing = True
        with self._writer_lock:
            if self._writer is not None:
                self._writer.kill()

    @one_step
    def index_fields(self, specs: Sequence[IndexSpec]) -> None:
        with self._write_lock:  # a write like any other: logged while an index build runs apart
            with self._gate.operation(), _engine_errors("creating payload indexes", self.location):
                if (shard := self._current()) is None:
                    return
                existing = shard.info().payload_schema
            for spec in specs:
                if spec.key not in existing:
                    kind = qe.KeywordIndexParams(is_tenant=True) if spec.tenant else _INDEX_KINDS[spec.kind]
                    self._update(
                        qe.UpdateOperation.create_field_index(spec.key, kind), "creating payload indexes"
                    )

    @one_step
    def drop(self) -> None:
        self._cancel_build()
        self._join_index()
        with self._compact_lock, self._gate.swap():  # a cancelled build cleans up first
            self._closing = False
            if self._shard is not None:
                self._shard.close()
                self._shard = None
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None
            if self.path.exists():
                shutil.rmtree(self.path)

    @one_step
    def close(self) -> None:
        """Close the shard. An index build an add started is finished and swapped in first
        (a temporary store, deleted now, abandons it); its failure is raised once closed."""
        if self._closed:
            return
        failure = None
        if self._tmp is None:
            self._join_index()
            with self._index_lock:
                failure, self._index_error = self._index_error, None
        self._cancel_build()
        self._join_index()  # an abandoned build's thread cleans up its copy
        try:
            with self._gate.swap():  # never under a running query or a compaction's reload
                self._closed = True
                if self._shard is not None:
                    with _engine_errors("closing the shard", self.location):
                        if self._tmp is None:
                            self._shard.flush()
                        self._shard.close()
        finally:
            self._closed = True
            self._shard = None
            self._release()
        if failure is not None:
            raise failure

    # -- writes ------------------------------------------------------------

    def _update(self, op: Any, what: str) -> bool:
        """Apply one write to the shard (call with the write lock held); False without a shard.

        Every write to the shard goes through here: while an index build runs apart, the
        write is also logged, to be replayed onto the indexed copy before it is swapped in
        (a write made around it would be lost by the swap).
        """
        with self._gate.operation(), _engine_errors(what, self.location):
            if (shard := self._current()) is None:
                return False
            shard.update(op)
        if self._log is not None:
            self._log.append(op)
        return True

    @one_step
    def upsert(self, points: Sequence[PointData]) -> None:
        window = self.background_index_min * WINDOW_FACTOR
        apart = self._builds_apart(window) and time.monotonic() - self._last_query < WINDOWS_WHILE_QUERIED_S
        if apart:
            self._wait_for_window(window)
        with self._write_lock:
            self._require()
            for lo in range(0, len(points), UPSERT_SLICE):
                batch = [_edge_point(p) for p in points[lo : lo + UPSERT_SLICE]]
                self._update(qe.UpdateOperation.upsert_points(batch), "upsert")
                self._unindexed += len(batch)
            if apart:
                self._unflushed += len(points)
                if self._unflushed >= FLUSH_EVERY:
                    with self._gate.operation(), _engine_errors("flush", self.location):
                        self._require().flush()
                    self._unflushed = 0
        if apart and self._unindexed >= window:
            # A window of the add is due: indexed apart while the add goes on, so that queries
            # never search more than about two windows of unindexed points exactly.
            self._index_in_background()
        if self.compact_every:
            with self._count_lock:
                self._written += len(points)
                due = self._written >= self.compact_every
                if due:
                    self._written = 0
            if due:
                self.compact()

    @one_step
    def finish_bulk(self) -> None:
        """The end of an add: index what it wrote.

        A build of at least ``background_index_min`` points is started in a writer process
        and the add returns at once, as a Qdrant server acknowledges upserts before its
        optimizers index them: queries meanwhile are answered from the current shard, which
        holds every point (the new ones unindexed: searched exactly, by a full scan), and
        the indexed copy is swapped in when it is ready (:meth:`wait_indexed` waits for it;
        :meth:`close` does). Smaller windows are optimized in-process, unless a build is
        under way: its swap replays them, and its thread builds again if enough are due.
        A large add has had its earlier windows indexed while it wrote (:meth:`upsert`):
        what is left here is its last window.
        """
        if self._builds_apart(self._unindexed) or self._indexing():
            self._index_in_background()
            return
        with self._write_lock:
            with self._gate.operation(), _engine_errors("optimize", self.location):
                self._require().optimize()
            self._unindexed = 0

    def _wait_for_window(self, window: int) -> None:
        """Hold a write while a build runs apart and a whole window has been written since its
        copy: the points written during a build are searched exactly until the next build, and
        replayed onto the copy at its swap, so both stay bounded by about one window."""
        with self._window:
            while (
                self._log is not None and self._unindexed >= window and not self._closing and self._indexing()
            ):
                self._window.wait(1.0)

    def _indexing(self) -> bool:
        with self._index_lock:
            return self._index_thread is not None

    def _index_in_background(self) -> None:
        """Have the index thread build what is due (started here when none runs)."""
        with self._index_lock:
            self._index_due = True
            if self._index_thread is None:
                thread = threading.Thread(
                    target=self._index_loop, name=f"m3-hybrid index build {self.path.name}"
                )
                self._index_thread = thread
                thread.start()

    def _index_loop(self) -> None:
        """The index thread: one build after the other while adds leave enough unindexed points."""
        while True:
            with self._index_lock:
                if not self._index_due or self._closing:
                    self._index_thread = None
                    return
                self._index_due = False
            try:
                with self._compact_lock:
                    if self._builds_apart(self._unindexed) and not self._closing:
                        self._build_apart()
            except BaseException as exc:  # kept for wait_indexed / close, and logged
                with self._index_lock:
                    self._index_thread = None
                    if self._closing:
                        return  # an abandoned build (drop, or a temporary store closed)
                    error = (
                        exc
                        if isinstance(exc, BackendError)
                        else BackendError(
                            f"index build of the embedded store at {self.location} failed: {exc!r}; "
                            "every point written is stored (unindexed until the next build)"
                        )
                    )
                    self._index_error = error
                logger.error("%s", error)
                return

    @one_step
    def wait_indexed(self) -> None:
        """Wait until the index builds that adds started are swapped in; raises the failure of
        one that failed (every point is stored: the next add builds again)."""
        self._join_index()
        with self._index_lock:
            error, self._index_error = self._index_error, None
        if error is not None:
            raise error

    def _join_index(self) -> None:
        while True:
            with self._index_lock:
                thread = self._index_thread
            if thread is None or thread is threading.current_thread():
                return
            thread.join()

    def compact(self) -> None:
        """Index what was written, then close and reload the shard to give back the engine's heap.

        Operations from other threads never see the shard closed: they wait for the
        close + reload (and, as the engine holds the GIL, for an in-process optimize).
        Everything is flushed before the close, and the write-ahead log covers a kill at any
        point: nothing acknowledged is lost. A window of at least ``background_index_min``
        points is indexed in a writer process instead (its swap is the reload).
        """
        with self._compact_lock:
            t0 = time.perf_counter()
            if self._builds_apart(self._unindexed):
                self._build_apart()
                self.compactions += 1
                built = self.last_build_s
                # The same fields as an in-process compaction (its swap is the reload).
                logger.info(
                    "compacted the embedded store at %s in a writer process: optimize %.1f s, "
                    "close + reload %.2f s",
                    self.location,
                    built["copy"] + built["build"],
                    built["swap"],
                )
                return
            with self._write_lock:
                with self._gate.operation(), _engine_errors("compaction (optimize)", self.location):
                    shard = self._require()
                    shard.flush()
                    shard.optimize()
                self._unindexed = 0
            t1 = time.perf_counter()
            with self._gate.swap():
                shard = self._require()
                with _engine_errors("compaction (flush and close)", self.location):
                    shard.flush()
                    shard.close()
                self._shard = None
                self._reload(self.path, "compaction (reopen)")
            _return_freed_heap()
            t2 = time.perf_counter()
            self.compactions += 1
            logger.info(
                "compacted the embedded store at %s: optimize %.1f s, close + reload %.2f s",
                self.location,
                t1 - t0,
                t2 - t1,
            )

    def _reload(self, path: Path, what: str) -> None:
        """Load the shard at ``path`` as the store's shard (with the swap gate held)."""
        try:
            with _engine_errors(what, self.location):
                self._shard = qe.EdgeShard.load(str(path))
        except M3HybridError as exc:
            # Everything written is on disk; a new HybridStore on the path reopens it.
            self._failed = f"the embedded store at {self.location} could not be reopened: {exc}"
            raise

    def _build_apart(self) -> None:
        """Index the shard in a writer process on a copy, then swap the copy in (compaction lock held).

        Other threads keep querying the current shard during the build (the writer has
        its own GIL); writes made meanwhile go to the current shard and to the log that is
        replayed onto the copy. A failed or cancelled build leaves the current shard as it is
        (every write is there, unindexed) and raises :class:`BackendError`.
        """
        copy = edge_build.build_dir(self.path)
        pending = 0
        t0 = time.perf_counter()
        try:
            with self._write_lock:
                # The copy must hold every point in its segments, with nothing left for the
                # writer's load to replay from the write-ahead log: replaying upserts of points
                # that an earlier optimize() moved into an indexed segment leaves stale second
                # copies of them in the indexed copy (measured: 570k stored entries for 100k
                # points after five builds, nine segments instead of two, 5-20x slower
                # filtered queries, slower swaps). The flush holds the GIL (0.4 s for 8,000
                # unindexed points under load); the stale copies cost far more.
                with self._gate.operation(), _engine_errors("flush before the build", self.location):
                    self._require().flush()
                try:
                    edge_build.copy_shard(self.path, copy)
                except OSError as exc:
                    raise BackendError(f"cannot copy the embedded store at {self.location}: {exc}") from None
                self._log = []
                pending, self._unindexed = self._unindexed, 0
                self._unflushed = 0
            with self._writer_lock:
                if self._closing:
                    raise BackendError(f"the embedded store at {self.location} was closed")
                writer = self._writer = edge_build.Writer(copy)
            t1 = time.perf_counter()
            failure = writer.wait()
            if self._closing:
                failure = "the store was closed during the index build"
            if failure is not None:
                raise BackendError(
                    f"index build of the embedded store at {self.location} failed: {failure}; "
                    "every point written is stored (unindexed until the next build)"
                )
            t2 = time.perf_counter()
            self.last_swap_s = self._swap_in(copy)
        except BaseException:
            with self._write_lock:
                self._log = None
                self._unindexed += pending
            if self._previous_at != copy:  # never the previous shard a failed swap left there
                shutil.rmtree(copy, ignore_errors=True)
            raise
        finally:
            with self._writer_lock:
                self._writer = None
            with self._window:
                self._window.notify_all()
        self.background_builds += 1
        shutil.rmtree(copy, ignore_errors=True)  # now the previous shard
        _return_freed_heap()
        self.last_build_s = {"copy": t1 - t0, "build": t2 - t1, "swap": time.perf_counter() - t2}
        logger.info(
            "indexed the embedded store at %s in a writer process: copy %.2f s, build %.1f s, "
            "swap %.2f s (queries paused for %.2f s)",
            self.location,
            t1 - t0,
            t2 - t1,
            self.last_build_s["swap"],
            self.last_swap_s,
        )

    def _swap_in(self, copy: Path) -> float:
        """Exchange the indexed ``copy`` with the shard directory and load it (see edge_build).

        Under the swap gate (queries wait; no write reaches the shard, the write lock is
        held): the current shard is closed while its files are still at the store's path,
        the directories are exchanged, the indexed shard is loaded and the writes made during
        the build are replayed onto it. The close must come first: the engine writes a
        shard's state (write-ahead log, segments) at the paths it was loaded from, so a
        previous shard closed after the exchange wrote over the swapped-in shard's files,
        and the writes replayed at the swap came back, at the next load, attached to other
        points' payloads (``test_writes_made_during_a_build_keep_their_payloads``).
        Until the marker is removed, a reopened store exchanges the previous shard back; a
        failure here puts it back at once and reloads it.
        """
        with self._write_lock:
            lock = _lock_file(copy)  # the lock the directory will carry once it is the store's
            try:
                edge_build.mark_swapping(copy)
                with self._gate.swap():
                    paused = time.perf_counter()
                    if self._closing:
                        raise BackendError(f"the embedded store at {self.location} was closed")
                    old = self._require()
                    with _engine_errors("closing the shard for the swap", self.location):
                        old.flush()  # a temporary store has no write-ahead log: its points on disk
                        old.close()
                    self._shard = None
                    try:
                        edge_build.exchange(self.path, copy)
                    except OSError as exc:
                        self._reload(self.path, "reopening the shard after a failed swap")
                        raise BackendError(f"cannot swap the indexed shard in: {exc}") from None
                    self._previous_at = copy
                    try:
                        self._shard = self._load_swapped()
                        edge_build.commit_swap(self.path)
                        self._previous_at = None
                    except BaseException:
                        self._swap_back(copy)
                        raise
                    self._log = None
                    self._relock(lock)  # inside the gate: a close waiting for it releases this lock
                    paused = time.perf_counter() - paused
                with self._count_lock:
                    self._written = 0  # the swap is a reload: the engine's heap is given back
            except BaseException:
                if lock is not None and lock is not self._lock_fh:
                    lock.close()
                raise
        return paused

    def _load_swapped(self) -> qe.EdgeShard:
        """The indexed shard now at the store's path, with the writes made during the build
        replayed and flushed (write lock and gate held)."""
        with _engine_errors("loading the indexed shard", self.location):
            shard = qe.EdgeShard.load(str(self.path))
        try:
            with _engine_errors("replaying the writes made during the build", self.location):
                for op in self._log or ():
                    shard.update(op)
                shard.flush()
        except BaseException:
            with contextlib.suppress(Exception):
                shard.close()
            raise
        return shard

    def _swap_back(self, copy: Path) -> None:
        """Put the previous shard's directory back after a failed swap and reload it (write lock
        and gate held; it was flushed and closed, so it holds every write). If even that fails
        the store is unusable and a reopen finishes the job (the marker is still there)."""
        try:
            edge_build.exchange(self.path, copy)
        except OSError as exc:
            self._failed = (
                f"the embedded store at {self.location} could not be restored after a failed swap "
                f"({exc}); open it again to recover the previous shard"
            )
            self._shard = None
            raise
        self._previous_at = None
        self._reload(self.path, "reopening the shard after a failed swap")

    @one_step
    def delete_ids(self, ids: Sequence[PointId]) -> None:
        if not ids:
            return
        with self._write_lock:
            self._update(qe.UpdateOperation.delete_points(list(ids)), "delete")

    @one_step
    def delete_filter(self, flt: Any) -> None:
        with self._write_lock:
            op = qe.UpdateOperation.delete_points_by_filter(_required_filter(flt))
            self._update(op, "delete by filter")

    @one_step
    def clear(self) -> None:
        with self._write_lock:
            # An empty filter matches every point.
            if self._update(qe.UpdateOperation.delete_points_by_filter(qe.Filter()), "clear"):
                with self._gate.operation(), _engine_errors("clear", self.location):
                    self._require().optimize()

    # -- reads -------------------------------------------------------------

    @one_step
    def query(self, plan: QueryPlan) -> list[ResultPoint]:
        self._last_query = time.monotonic()
        request = edge_request(plan)
        with self._gate.operation(), _engine_errors("query", self.location):
            if (shard := self._current()) is None:
                return []
            points = shard.query(request)
        return [_result(p, p.score) for p in points]

    @one_step
    def query_groups(self, plan: QueryPlan) -> list[Group[ResultPoint]]:
        """A grouped plan: the engine has no group query, so the plan's ranking is read
        from the top and grouped here, over-fetching until the groups are full
        (:func:`shared.query.groups.fill_groups`)."""
        spec = plan.group
        assert spec is not None
        self._last_query = time.monotonic()

        def fetch(n: int) -> list[Any]:
            request = edge_request(plan, n)
            with self._gate.operation(), _engine_errors("query", self.location):
                if (shard := self._current()) is None:
                    return []
                return list(shard.query(request))

        groups = fill_groups(fetch, _payload, spec, plan.root.limit)
        return [Group(g.id, [_result(p, p.score) for p in g.hits]) for g in groups]

    @one_step
    def query_batch(self, plans: Sequence[QueryPlan]) -> list[list[ResultPoint]]:
        """The plans as one engine batch (it shares one pass over the segments)."""
        self._last_query = time.monotonic()
        request = qe.QueryBatchRequest([edge_request(p) for p in plans])
        with self._gate.operation(), _engine_errors("query batch", self.location):
            if (shard := self._current()) is None:
                return [[] for _ in plans]
            batches = shard.query_batch(request)
        return [[_result(p, p.score) for p in points] for points in batches]

    @one_step
    def retrieve(self, ids: Sequence[PointId], vector_names: Sequence[str]) -> list[ResultPoint]:
        if not ids:
            return []
        with_vector: Any = list(vector_names) if vector_names else False
        with self._gate.operation(), _engine_errors("retrieve", self.location):
            if (shard := self._current()) is None:
                return []
            points = shard.retrieve(list(ids), with_payload=True, with_vector=with_vector)
        return [_result(p, None) for p in points]

    @one_step
    def scroll(
        self, flt: Any, offset: PointId | None, limit: int, vector_names: Sequence[str]
    ) -> tuple[list[ResultPoint], PointId | None]:
        request = qe.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=to_edge_filter(flt),
            with_payload=True,
            with_vector=list(vector_names) if vector_names else False,
        )
        with self._gate.operation(), _engine_errors("scroll", self.location):
            if (shard := self._current()) is None:
                return [], None
            points, next_offset = shard.scroll(request)
        return [_result(p, None) for p in points], None if next_offset is None else str(next_offset)

    @one_step
    def count(self, flt: Any) -> int:
        with self._gate.operation(), _engine_errors("count", self.location):
            if (shard := self._current()) is None:
                return 0
            return int(shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt))))
