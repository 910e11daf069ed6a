"""Remote backend: a Qdrant server (or qdrant-client local mode) through qdrant-client.

* Clients: built from ``url``/``api_key``/``timeout`` (a sync and an async one),
  or passed in (``client`` and/or ``aclient``). With only a sync client the async
  methods run it in a worker thread; with only an async client the sync methods
  raise :class:`UnsupportedOperationError`.
* New collections get ``shard_number``, ``replication_factor`` and
  ``write_consistency_factor`` when given.
* The guard record lives in the collection's metadata under ``"m3_hybrid"``
  (``create_collection(metadata=...)``; qdrant-client local mode keeps it too). A collection
  another client created (langchain-qdrant, llama-index) gets it on our first write
  (``update_collection(metadata=...)``); :meth:`RemoteBackend.inspect` describes such a
  collection (vector config and one payload) so the store can tell its layout.
* Every operation is one generator of client calls, run by the store (the one driver,
  :mod:`shared.steps`) on the sync client or awaited on the async one. Each client call
  is declared once (:class:`ClientCall`: the sync method, its async twin, whether it may
  be retried) in the table below, next to where the calls are made.
* The api key is never part of a repr, log line or error message.
* Transient failures (refused/reset connections, 429/502/503/504) of idempotent
  calls are retried with exponential backoff (:mod:`shared.retry`); a timeout is
  not retried, so ``timeout=`` bounds each call.
* qdrant-client local mode (``QdrantClient(":memory:")`` / ``path=``) is not
  thread-safe: calls on one local client are serialised by a lock shared by every
  backend using that client.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, NoReturn, ParamSpec, TypeVar

import numpy as np
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from ..errors import BackendError, InvalidInputError, M3HybridError, UnsupportedOperationError
from ..layouts import CollectionInfo, collection_info
from ..quantization import BINARY_ENCODINGS, DATATYPES, TURBO_BITS, QuantizationPreset
from ..query import plan as qp
from ..query.groups import Group
from ..retry import RetryPolicy, describe_error
from ..schema import BM25, COLBERT, DENSE, DENSE_MRL, SPARSE, CollectionSchema
from ..steps import Call, Steps
from ..tenancy import TENANT_GRAPH_M, IndexSpec
from .base import BackendOptions, Connection, PointData, PointId, ResultPoint

if TYPE_CHECKING:
    from typing_extensions import Unpack

METADATA_GUARD_KEY = "m3_hybrid"

P = ParamSpec("P")
R = TypeVar("R")

# One lock per local-mode client object (its in-process engine is not thread-safe).
_LOCAL_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCAL_LOCKS_GUARD = threading.Lock()


def _no_sync_client(name: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise UnsupportedOperationError(
        f"{name}: this store was given only an async client; use the a* methods or pass client="
    )


def _locked(lock: threading.Lock, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    with lock:
        return fn(*args, **kwargs)


def _nothing_sync() -> None:
    return None


def _local_lock(client: Any) -> threading.Lock:
    with _LOCAL_LOCKS_GUARD:
        lock = _LOCAL_LOCKS.get(client)
        if lock is None:
            lock = _LOCAL_LOCKS[client] = threading.Lock()
        return lock


# qdrant-client's value of each word of the presets' vocabulary (shared.quantization), in its
# order: zip(strict=True) fails at import when the vocabulary gains a word this table lacks.
_E, _T, _D = models.BinaryQuantizationEncoding, models.TurboQuantBitSize, models.Datatype
_DATATYPE = dict(zip(DATATYPES, (_D.FLOAT32, _D.FLOAT16, _D.UINT8), strict=True))
_BINARY_ENCODING = dict(zip(BINARY_ENCODINGS, (_E.ONE_BIT, _E.ONE_AND_HALF_BITS, _E.TWO_BITS), strict=True))
_TURBO_BITS = dict(zip(TURBO_BITS, (_T.BITS1, _T.BITS1_5, _T.BITS2, _T.BITS4, _T.BITS8), strict=True))


def quantization_config(preset: QuantizationPreset, on_disk: bool) -> Any:
    """The qdrant_client quantization config of a preset (None when not quantized)."""
    always_ram = True if on_disk else None
    if preset.method == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=preset.scalar_quantile, always_ram=always_ram
            )
        )
    if preset.method == "binary":
        return models.BinaryQuantization(
            binary=models.BinaryQuantizationConfig(
                always_ram=always_ram, encoding=_BINARY_ENCODING[preset.binary_encoding or "one_bit"]
            )
        )
    if preset.method == "product":
        return models.ProductQuantization(
            product=models.ProductQuantizationConfig(
                compression=models.CompressionRatio(preset.product_compression or "x16"),
                always_ram=always_ram,
            )
        )
    if preset.method == "turbo":
        return models.TurboQuantization(
            turbo=models.TurboQuantQuantizationConfig(
                bits=_TURBO_BITS[preset.turbo_bits or 4.0], always_ram=always_ram
            )
        )
    return None


def collection_config(schema: CollectionSchema) -> dict[str, Any]:
    """``create_collection`` keyword arguments for a schema (vectors and sparse vectors)."""
    on_disk = True if schema.on_disk else None
    no_hnsw = models.HnswConfigDiff(m=0)
    vectors: dict[str, models.VectorParams] = {}
    layout = schema.stored_layout
    if schema.dense_dim is not None:
        q = schema.quantization
        vectors[layout.vector_name(DENSE)] = models.VectorParams(
            size=schema.dense_dim,
            distance=models.Distance.COSINE,
            on_disk=on_disk,
            datatype=_DATATYPE[q.datatype],
            quantization_config=quantization_config(q, schema.on_disk),
            # With the MRL funnel the full vector only re-scores candidates: no graph needed.
            hnsw_config=no_hnsw if schema.mrl_dim is not None else None,
        )
        if schema.mrl_dim is not None:
            mq = schema.mrl_quantization
            vectors[DENSE_MRL] = models.VectorParams(
                size=schema.mrl_dim,
                distance=models.Distance.COSINE,
                on_disk=on_disk,
                datatype=_DATATYPE[mq.datatype],
                quantization_config=quantization_config(mq, schema.on_disk),
            )
    if schema.colbert and schema.colbert_dim is not None:
        vectors[COLBERT] = models.VectorParams(
            size=schema.colbert_dim,
            distance=models.Distance.COSINE,
            on_disk=on_disk,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=no_hnsw,
        )
    sparse: dict[str, models.SparseVectorParams] = {}
    if schema.sparse:
        sparse[layout.vector_name(SPARSE)] = models.SparseVectorParams(
            index=models.SparseIndexParams(datatype=_DATATYPE[schema.sparse_datatype]),
            modifier=models.Modifier.IDF if schema.sparse_idf else None,
        )
    if schema.bm25 is not None:
        # BM25 term weights: the engine supplies the IDF.
        sparse[layout.vector_name(BM25)] = models.SparseVectorParams(
            index=models.SparseIndexParams(datatype=_DATATYPE[schema.sparse_datatype]),
            modifier=models.Modifier.IDF,
        )
    config: dict[str, Any] = {"vectors_config": vectors, "sparse_vectors_config": sparse or None}
    if schema.tenant_key is not None:
        # Tenants: one graph per tenant (built from the tenant index), no global graph.
        config["hnsw_config"] = models.HnswConfigDiff(m=0, payload_m=TENANT_GRAPH_M)
    return config


#: ``indexed_fields`` kinds -> Qdrant's payload schema types.
_INDEX_KINDS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
    "datetime": models.PayloadSchemaType.DATETIME,
    "uuid": models.PayloadSchemaType.UUID,
    "text": models.PayloadSchemaType.TEXT,
}


def index_schema(spec: IndexSpec) -> Any:
    """The ``field_schema`` of a payload index (the tenant's: a keyword index with ``is_tenant``)."""
    if spec.tenant:
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    return _INDEX_KINDS[spec.kind]


# ---------------------------------------------------------------------------
# plan -> qdrant_client request
# ---------------------------------------------------------------------------


def _vector(value: Any) -> Any:
    if isinstance(value, qp.SparseQuery):
        return models.SparseVector(indices=list(value.indices), values=list(value.values))
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _idf(p: qp.SearchOptions) -> models.IdfCorpusParams | None:
    """Live IDF over the stage's corpus (a tenant's points; empty: every point). A server's
    collection-wide IDF counts deleted points until a vacuum."""
    if not p.idf_live:
        return None
    corpus: list[models.Condition] = [
        models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in p.idf_corpus
    ]
    return models.IdfCorpusParams(corpus=models.Filter(must=corpus or None))


def _params(p: qp.SearchOptions | None, full: bool = True) -> models.SearchParams | None:
    """The search parameters of a stage; ``full=False`` (local mode: exact search, live IDF): only
    a tenant's IDF corpus, the one parameter local mode honours (the others it warns about)."""
    if p is None:
        return None
    if not full:
        return models.SearchParams(idf=_idf(p)) if p.idf_corpus else None
    q = p.quantization
    quant = None if q is None else models.QuantizationSearchParams(**q)
    acorn = models.AcornSearchParams(enable=True) if p.acorn else None
    return models.SearchParams(hnsw_ef=p.hnsw_ef, exact=p.exact, quantization=quant, idf=_idf(p), acorn=acorn)


def _query(q: Any, plan: qp.QueryPlan) -> tuple[Any, str | None]:
    """(query, using) of a plan query (its vector read from ``plan``)."""
    if isinstance(q, qp.Nearest):
        return _vector(plan.vector(q.vector)), q.using
    if isinstance(q, qp.RrfFusion):
        weights = list(q.weights) if q.weights is not None else None
        return models.RrfQuery(rrf=models.Rrf(k=q.k, weights=weights)), None
    if isinstance(q, qp.DbsfFusion):
        return models.FusionQuery(fusion=models.Fusion.DBSF), None
    if isinstance(q, qp.WeightedSum):
        terms: list[Any] = [models.MultExpression(mult=[w, f"$score[{i}]"]) for i, w in enumerate(q.weights)]
        # A point missing from one re-scored side has no overlap with it: its score there is 0.
        defaults = {f"$score[{i}]": 0.0 for i in range(len(q.weights))}
        return models.FormulaQuery(formula=models.SumExpression(sum=terms), defaults=defaults), None
    if isinstance(q, qp.MmrQuery):
        # Qdrant's API takes diversity = 1 - lambda (the engine's internal lambda).
        mmr = models.Mmr(diversity=1.0 - q.lambda_mult, candidates_limit=q.candidates_limit)
        return models.NearestQuery(nearest=_vector(plan.vector(q.vector)), mmr=mmr), q.using
    raise TypeError(f"unknown plan query {type(q).__name__}")


def _prefetch(stage: qp.Stage, plan: qp.QueryPlan, with_params: bool) -> models.Prefetch:
    query, using = _query(stage.query, plan)
    return models.Prefetch(
        prefetch=[_prefetch(p, plan, with_params) for p in stage.prefetches] or None,
        query=query,
        using=using,
        filter=stage.filter,
        params=_params(stage.params, with_params),
        score_threshold=stage.score_threshold,
        limit=stage.limit,
    )


def query_kwargs(
    collection_name: str, plan: qp.QueryPlan, with_params: bool = True, shard_key: str | None = None
) -> dict[str, Any]:
    """``query_points`` keyword arguments that run ``plan`` in one request.

    ``with_params=False`` leaves out the search parameters (local mode ignores them and warns).
    ``shard_key``: the custom shard the request is routed to (None: every shard).
    """
    root = plan.root
    query, using = _query(root.query, plan)
    return {
        "collection_name": collection_name,
        "query": query,
        "using": using,
        "prefetch": [_prefetch(p, plan, with_params) for p in root.prefetches] or None,
        "query_filter": root.filter,
        "search_params": _params(root.params, with_params),
        "limit": root.limit,
        "offset": plan.offset or None,
        "with_payload": True,
        "with_vectors": list(plan.with_vectors) if plan.with_vectors else False,
        "score_threshold": root.score_threshold,
        "shard_key_selector": shard_key,
    }


def _point(p: PointData) -> models.PointStruct:
    vectors: dict[str, Any] = {}
    for name, value in p.vectors.items():
        if isinstance(value, tuple):  # a sparse vector (indices, values), whatever its name
            indices, values = value
            vectors[name] = models.SparseVector(indices=list(indices), values=list(values))
        elif isinstance(value, np.ndarray):  # a dense row of a batch's float32 matrix
            vectors[name] = value.tolist()
        else:
            vectors[name] = value
    return models.PointStruct(id=p.id, vector=vectors, payload=p.payload)


def _result(point: Any, score: float | None) -> ResultPoint:
    vectors: dict[str, Any] = {}
    if isinstance(point.vector, dict):
        for name, value in point.vector.items():
            if isinstance(value, models.SparseVector):
                vectors[name] = dict(zip(value.indices, value.values, strict=True))
            else:
                vectors[name] = value
    elif isinstance(point.vector, list):
        vectors[""] = point.vector  # the unnamed vector of a collection that has only it
    return ResultPoint(point.id, score, point.payload or {}, vectors)


# ---------------------------------------------------------------------------
# the client calls, each declared once
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCall(Generic[P, R]):
    """One qdrant-client call: the sync method, its async twin, and whether a repeat is harmless.

    ``retry=True`` only where repeating the call leaves the collection as one success would
    (see :mod:`shared.retry`); those calls get the backend's retry policy.
    """

    fn: Callable[Concatenate[QdrantClient, P], R]
    afn: Callable[Concatenate[AsyncQdrantClient, P], Awaitable[R]]
    retry: bool

    def __post_init__(self) -> None:
        if self.afn.__name__ != self.fn.__name__:  # mypy checks the arguments, not the twins
            raise TypeError(f"client call {self.fn.__name__} paired with {self.afn.__name__}")

    @property
    def name(self) -> str:
        return self.fn.__name__


Q, AQ = QdrantClient, AsyncQdrantClient


# ---------------------------------------------------------------------------
# backend
# ---------------------------------------------------------------------------


class RemoteBackend:
    """One collection on a Qdrant server or in qdrant-client local mode."""

    is_remote = True

    def __init__(
        self,
        collection_name: str,
        connection: Connection,
        *,
        shard_key: str | None = None,
        **options: Unpack[BackendOptions],
    ) -> None:
        if options.get("compact_every") is not None:
            # A server manages its own segments and memory.
            raise InvalidInputError("compact_every is only used with the embedded store (path=)")
        if options.get("background_index_min") is not None:
            raise InvalidInputError("background_index_min is only used with the embedded store (path=)")
        self.collection_name = collection_name
        url, api_key, timeout = connection.url, connection.api_key, connection.timeout
        client, aclient = connection.client, connection.aclient
        self._retry = connection.retry if connection.retry is not None else RetryPolicy()
        self._owns_clients = client is None and aclient is None
        int_timeout = None if timeout is None else max(1, math.ceil(timeout))
        if self._owns_clients:
            try:
                client = QdrantClient(url=url, api_key=api_key, timeout=int_timeout)
                aclient = AsyncQdrantClient(url=url, api_key=api_key, timeout=int_timeout)
            except Exception as exc:
                raise BackendError(f"cannot create a Qdrant client for {url}: {type(exc).__name__}") from None
        self._client = client
        self._aclient = aclient
        # qdrant-client local mode: exact search only, no payload indexes (it warns about both).
        inner = getattr(client if client is not None else aclient, "_client", None)
        self._local = type(inner).__name__ in ("QdrantLocal", "AsyncQdrantLocal")
        self._lock = _local_lock(client) if self._local and client is not None else None
        self._url = url
        self.location = f"collection {collection_name!r} on {url or 'the given Qdrant client'}"
        # A new collection's shard_number, replication_factor, write_consistency_factor.
        self._distribution: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        #: Custom sharding: every point request is routed to this shard key (the tiered pattern).
        self._shard_key = shard_key
        if shard_key is not None:
            self._distribution["sharding_method"] = models.ShardingMethod.CUSTOM

    def __repr__(self) -> str:
        # Never the api key.
        return f"RemoteBackend(collection={self.collection_name!r}, url={self._url!r})"

    @property
    def can_sync(self) -> bool:
        return self._client is not None

    # -- one client call ----------------------------------------------------

    def _call(self, what: str, op: ClientCall[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Steps[R]:
        """Step: the client call ``op`` (on the async client when the runner is async), with
        this backend's retry policy where ``op`` may be retried; failures become
        :class:`BackendError` naming ``what`` and where.

        The methods are looked up on the clients by name, so a client subclass's override
        (or a test's stand-in) is the one called.
        """
        name = op.name
        client, aclient = self._client, self._aclient
        if client is None:
            fn: Callable[..., Any] = functools.partial(_no_sync_client, what)
        elif self._lock is not None:
            fn = functools.partial(_locked, self._lock, getattr(client, name))
        else:
            fn = getattr(client, name)
        step = Call(
            fn,
            args,
            kwargs,
            None if aclient is None else getattr(aclient, name),
            self._retry if op.retry else None,
            name,
        )
        try:
            result: R = yield step
        except M3HybridError:
            raise
        except Exception as exc:
            raise BackendError(f"{what} failed on {self.location}: {describe_error(exc)}") from exc
        return result

    def _col(self, **kwargs: Any) -> dict[str, Any]:
        return {"collection_name": self.collection_name, **kwargs}

    def _routed(self, **kwargs: Any) -> dict[str, Any]:
        """:meth:`_col` for a point request: routed to the store's shard key when it has one."""
        if self._shard_key is not None:
            kwargs["shard_key_selector"] = self._shard_key
        return self._col(**kwargs)

    CREATE_SHARD_KEY = ClientCall(Q.create_shard_key, AQ.create_shard_key, retry=False)

    def _ensure_shard_key(self) -> Steps[None]:
        """Create the store's shard key unless the collection has it (a tenant's first store)."""
        try:
            yield from self._call(
                "creating the shard key", self.CREATE_SHARD_KEY, **self._col(shard_key=self._shard_key)
            )
        except BackendError as exc:
            if "already exists" not in str(exc):
                raise

    # -- operations (Backend) ------------------------------------------------

    EXISTS = ClientCall(Q.collection_exists, AQ.collection_exists, retry=True)
    GET_COLLECTION = ClientCall(Q.get_collection, AQ.get_collection, retry=True)

    def read_guard(self) -> Steps[dict[str, Any] | None]:
        what = "reading the collection"
        if not (yield from self._call(what, self.EXISTS, **self._col())):
            return None
        info = yield from self._call(what, self.GET_COLLECTION, **self._col())
        metadata = getattr(info.config, "metadata", None) or {}
        guard = metadata.get(METADATA_GUARD_KEY)
        if self._shard_key is not None:
            yield from self._ensure_shard_key()
        return dict(guard) if isinstance(guard, dict) else {}

    SCROLL = ClientCall(Q.scroll, AQ.scroll, retry=True)

    def inspect(self) -> Steps[CollectionInfo]:
        """Vector config, guard and one payload of the existing collection (to detect its layout)."""
        what = "reading the collection"
        info = yield from self._call(what, self.GET_COLLECTION, **self._col())
        points, _ = yield from self._call(
            what, self.SCROLL, **self._col(limit=1, with_payload=True, with_vectors=False)
        )
        sample = points[0].payload if points else None
        return collection_info(info, sample, METADATA_GUARD_KEY)

    UPDATE_COLLECTION = ClientCall(Q.update_collection, AQ.update_collection, retry=False)

    def write_guard(self, schema: CollectionSchema) -> Steps[None]:
        """Record the guard of ``schema`` on an existing collection (one created by another client)."""
        metadata = {METADATA_GUARD_KEY: schema.guard_dict()}
        yield from self._call("recording the guard", self.UPDATE_COLLECTION, **self._col(metadata=metadata))

    # A repeat after a lost answer would fail on the collection the first try created.
    CREATE_COLLECTION = ClientCall(Q.create_collection, AQ.create_collection, retry=False)
    CREATE_PAYLOAD_INDEX = ClientCall(Q.create_payload_index, AQ.create_payload_index, retry=True)

    def create(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> Steps[None]:
        what = "creating the collection"
        yield from self._call(
            what,
            self.CREATE_COLLECTION,
            **self._col(
                **collection_config(schema),
                metadata={METADATA_GUARD_KEY: guard if guard is not None else schema.guard_dict()},
                **self._distribution,
            ),
        )
        if self._shard_key is not None:
            yield from self._ensure_shard_key()
        for key in () if self._local else schema.stored_layout.index_keys:
            yield from self._call(
                what,
                self.CREATE_PAYLOAD_INDEX,
                **self._col(field_name=key, field_schema=models.PayloadSchemaType.KEYWORD, wait=True),
            )

    def index_fields(self, specs: Sequence[IndexSpec]) -> Steps[None]:
        # Created in local mode too (it accepts them, warns and searches exactly anyway), so a
        # collection's request is the same wherever it runs; a server in strict mode needs them.
        what = "creating payload indexes"
        info = yield from self._call(what, self.GET_COLLECTION, **self._col())
        existing = info.payload_schema or {}
        for spec in specs:
            if spec.key not in existing:
                yield from self._call(
                    what,
                    self.CREATE_PAYLOAD_INDEX,
                    **self._col(field_name=spec.key, field_schema=index_schema(spec), wait=True),
                )

    DELETE_COLLECTION = ClientCall(Q.delete_collection, AQ.delete_collection, retry=False)

    def drop(self) -> Steps[None]:
        yield from self._call("dropping the collection", self.DELETE_COLLECTION, **self._col())

    UPSERT = ClientCall(Q.upsert, AQ.upsert, retry=True)  # point ids are deterministic

    def upsert(self, points: Sequence[PointData]) -> Steps[None]:
        yield from self._call(
            "upsert", self.UPSERT, **self._routed(points=[_point(p) for p in points], wait=True)
        )

    def finish_bulk(self) -> Steps[None]:
        """Nothing to do: the server indexes in the background."""
        return
        yield  # a generator with no step

    def wait_indexed(self) -> Steps[None]:
        """Nothing to wait for here: the server's optimizers index on their own."""
        return
        yield  # a generator with no step

    QUERY_POINTS = ClientCall(Q.query_points, AQ.query_points, retry=True)

    def query(self, plan: qp.QueryPlan) -> Steps[list[ResultPoint]]:
        response = yield from self._call(
            "query",
            self.QUERY_POINTS,
            **query_kwargs(self.collection_name, plan, not self._local, self._shard_key),
        )
        return [_result(p, p.score) for p in response.points]

    QUERY_POINTS_GROUPS = ClientCall(Q.query_points_groups, AQ.query_points_groups, retry=True)

    def query_groups(self, plan: qp.QueryPlan) -> Steps[list[Group[ResultPoint]]]:
        """A grouped plan, run by Qdrant's group query (one request)."""
        spec = plan.group
        assert spec is not None
        kwargs = query_kwargs(self.collection_name, plan, not self._local)
        del kwargs["offset"]  # a group query has none: the store pages the groups
        kwargs.update(group_by=spec.key, group_size=spec.size, limit=spec.limit)
        response = yield from self._call("query groups", self.QUERY_POINTS_GROUPS, **kwargs)
        return [Group(g.id, [_result(p, p.score) for p in g.hits]) for g in response.groups]

    QUERY_BATCH_POINTS = ClientCall(Q.query_batch_points, AQ.query_batch_points, retry=True)

    def query_batch(self, plans: Sequence[qp.QueryPlan]) -> Steps[list[list[ResultPoint]]]:
        requests = []
        for plan in plans:
            kwargs = query_kwargs(self.collection_name, plan, not self._local, self._shard_key)
            del kwargs["collection_name"]
            kwargs["shard_key"] = kwargs.pop("shard_key_selector")
            kwargs["filter"] = kwargs.pop("query_filter")
            kwargs["params"] = kwargs.pop("search_params")
            kwargs["with_vector"] = kwargs.pop("with_vectors")
            requests.append(models.QueryRequest(**kwargs))
        responses = yield from self._call(
            "query batch", self.QUERY_BATCH_POINTS, **self._col(requests=requests)
        )
        return [[_result(p, p.score) for p in r.points] for r in responses]

    RETRIEVE = ClientCall(Q.retrieve, AQ.retrieve, retry=True)

    def retrieve(self, ids: Sequence[PointId], vector_names: Sequence[str]) -> Steps[list[ResultPoint]]:
        if not ids:
            return []
        with_vectors: Any = list(vector_names) if vector_names else False
        points = yield from self._call(
            "retrieve",
            self.RETRIEVE,
            **self._routed(ids=list(ids), with_payload=True, with_vectors=with_vectors),
        )
        return [_result(p, None) for p in points]

    def scroll(
        self, flt: Any, offset: PointId | None, limit: int, vector_names: Sequence[str]
    ) -> Steps[tuple[list[ResultPoint], PointId | None]]:
        with_vectors: Any = list(vector_names) if vector_names else False
        points, next_offset = yield from self._call(
            "scroll",
            self.SCROLL,
            **self._routed(
                scroll_filter=flt, limit=limit, offset=offset, with_payload=True, with_vectors=with_vectors
            ),
        )
        # The next point id as Qdrant gave it (an int in a collection with integer ids).
        cursor: Any = next_offset
        return [_result(p, None) for p in points], cursor

    DELETE = ClientCall(Q.delete, AQ.delete, retry=True)  # by ids or filter: a repeat deletes no more

    def delete_ids(self, ids: Sequence[PointId]) -> Steps[None]:
        if ids:
            selector = models.PointIdsList(points=list(ids))
            yield from self._call("delete", self.DELETE, **self._routed(points_selector=selector, wait=True))

    def delete_filter(self, flt: Any) -> Steps[None]:
        if flt is None:  # never let a missing filter turn into "delete everything"
            raise BackendError("delete by filter needs a filter")
        selector = models.FilterSelector(filter=flt)
        yield from self._call(
            "delete by filter", self.DELETE, **self._routed(points_selector=selector, wait=True)
        )

    COUNT = ClientCall(Q.count, AQ.count, retry=True)

    def count(self, flt: Any) -> Steps[int]:
        result = yield from self._call("count", self.COUNT, **self._routed(count_filter=flt, exact=True))
        return int(result.count)

    def clear(self) -> Steps[None]:
        # An empty filter matches every point; the collection and its guard stay.
        selector = models.FilterSelector(filter=models.Filter())
        yield from self._call("clear", self.DELETE, **self._routed(points_selector=selector, wait=True))

    CLOSE = ClientCall(Q.close, AQ.close, retry=False)

    def close(self) -> Steps[None]:
        """Close the clients this backend created (never a client it was given)."""
        if not self._owns_clients:
            return
        client, aclient = self._client, self._aclient
        try:
            name = self.CLOSE.name
            if aclient is not None:
                # The async runner closes the async client too; the sync one cannot.
                yield Call(_nothing_sync, afn=getattr(aclient, name), name=name)
            if client is not None:
                yield Call(getattr(client, name), name=name)
        except Exception as exc:
            raise BackendError(f"close failed on {self.location}: {describe_error(exc)}") from exc
