"""``HybridStore``: dense + sparse (+ ColBERT) hybrid retrieval on Qdrant, the class both adapters wrap.

Backends: an embedded Qdrant Edge shard (default; ``path`` or a temporary
directory) or a Qdrant server / qdrant-client local mode (``url``, ``client``,
``aclient``). Both store the same layout (:mod:`shared.schema`) and answer the
same one-request query plans (:mod:`shared.query.plan`).

The store is the one step driver (:mod:`shared.steps`): every operation is written
once, as a generator of steps (CPU work, or a backend operation taken in with
``yield from``: backends are libraries of steps); :func:`~shared.steps.run` executes it
synchronously and :func:`~shared.steps.arun` asynchronously (CPU work and embedded calls
in a worker thread, remote calls on the async client), so sync and async share one code
path. The collection's layout (:mod:`shared.layouts`) turns records into stored points
and back; the store never asks which format it is.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

import numpy as np
from qdrant_client import models

from .backends import Connection, open_backend
from .backends.base import Backend, PointData, ResultPoint
from .config import ADD_BATCH_SIZE, StoreConfig, connection_from
from .encoders.bm25 import Bm25Encoder, bm25_encoder, bm25_model, needs_idf
from .encoders.late import require_late_chunking
from .errors import (
    BackendError,
    InvalidInputError,
    InvalidTypeError,
    ModelMismatchError,
    UnsupportedOperationError,
)
from .filters import any_of, check_filter, resolve_ids
from .hierarchy import Hierarchy, parse_hierarchy, record_value
from .ingest import add_mrl_vectors, batched, check_all, missing_outputs, prepare_batch
from .late_chunking import late_chunk_records
from .layouts import CollectionInfo, Layout, detect_layout, get_layout, schema_fields
from .lifecycle import Closing
from .options import check_options, refuse_unknown_keywords
from .quantization import QuantizationPreset
from .query.modes import DEFAULT_MMR_LAMBDA, FusionMethod, RetrievalMode, SparseNormalization
from .query.options import QueryArgs, QueryOptions, QueryResolver
from .query.plan import (
    QueryPlan,
    SparseQuery,
    bind_vectors,
    plan_mmr,
    plan_template,
    rename_vectors,
    sparse_query,
    tune_filtered,
)
from .query.relevance import relevance_function
from .readonly import ReadOnly
from .retry import RetryPolicy
from .schema import (
    COLBERT,
    DENSE,
    REF_DOC_ID_KEY,
    SPARSE,
    CollectionSchema,
    validate_collection_name,
)
from .serving import MicroBatcher, query_encoder, shared_batcher
from .steps import Steps, arun, arun_method, call, call_async, run, run_method
from .tenancy import ALL, TenantScope, check_indexed_fields, index_specs, shard_key_of
from .types import ChunkOf, Encoder, EncodeResult, EncoderIdentity, Hit, Record
from .validation import check_utf8, colbert_vectors, dense_query, id_list, positive_int, text_list

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger(__name__)

#: The ``StoreConfig`` options that are query defaults (every query may override them).
QUERY_DEFAULT_OPTIONS = frozenset(
    {
        "retrieval_mode",
        "fusion",
        "rrf_k",
        "dense_weight",
        "sparse_weight",
        "bm25_weight",
        "candidate_k",
        "sparse_normalization",
    }
)

_MISSING: Any = object()
#: Points read per request when collecting the chunks around hits (``context_window``).
_WINDOW_PAGE = 4096


def _position(value: Any) -> float:
    """A chunk's position as a sort key (a number; anything else sorts last)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.inf


_DEFAULT = StoreConfig()


class DocumentOptions(TypedDict, total=False):
    """The keyword options of :meth:`HybridStore.add_document`."""

    document_id: str | None
    ids: Sequence[str] | None
    metadatas: Sequence[Mapping[str, Any]] | None
    batch_size: int


_T = TypeVar("_T")


class _Shared(Generic[_T]):
    """A store attribute kept in its ``_CollectionState`` (``_schema`` -> ``state.schema``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name.lstrip("_")

    def __get__(self, store: Any, owner: type | None = None) -> _T:
        value: _T = getattr(store._state, self.field)
        return value

    def __set__(self, store: Any, value: _T) -> None:
        setattr(store._state, self.field, value)


class _CollectionState:
    """What a store knows of its collection: one object for a store and its tenants' views
    (:meth:`HybridStore.for_tenant`), so a collection one of them creates exists for all."""

    __slots__ = ("guard_pending", "opened", "schema")

    def __init__(self) -> None:
        #: The collection's schema (None until it exists).
        self.schema: CollectionSchema | None = None
        self.opened = False
        #: A collection written by another client gets our guard on the first write.
        self.guard_pending = False


#: A plan template with the options object and schema it was made for (HybridStore._plan).
_Template = tuple[QueryOptions, CollectionSchema, QueryPlan]


class HybridStore(Closing):
    """Hybrid dense + sparse retrieval over one Qdrant collection (see docs/DESIGN.md)."""

    @refuse_unknown_keywords
    def __init__(
        self,
        collection_name: str = "m3_hybrid",
        *,
        encoder: Encoder | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        aclient: Any = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        dense_dim: int | None = _DEFAULT.dense_dim,
        sparse: bool | None = _DEFAULT.sparse,
        sparse_idf: bool = _DEFAULT.sparse_idf,
        sparse_datatype: str | None = _DEFAULT.sparse_datatype,
        colbert: bool = _DEFAULT.colbert,
        quantization: str | QuantizationPreset | Any = _DEFAULT.quantization,
        on_disk: bool | None = _DEFAULT.on_disk,
        compact_every: int | None = _DEFAULT.compact_every,
        background_index_min: int | None = _DEFAULT.background_index_min,
        mrl_dim: int | None = _DEFAULT.mrl_dim,
        bm25: bool | str | Bm25Encoder = _DEFAULT.bm25,
        mrl_quantization: str | QuantizationPreset | Any = _DEFAULT.mrl_quantization,
        retrieval_mode: str | RetrievalMode = _DEFAULT.retrieval_mode,
        fusion: str | FusionMethod = _DEFAULT.fusion,
        rrf_k: int = _DEFAULT.rrf_k,
        dense_weight: float = _DEFAULT.dense_weight,
        sparse_weight: float | None = _DEFAULT.sparse_weight,
        bm25_weight: float | None = _DEFAULT.bm25_weight,
        candidate_k: int = _DEFAULT.candidate_k,
        sparse_normalization: str | SparseNormalization = _DEFAULT.sparse_normalization,
        shard_number: int | None = _DEFAULT.shard_number,
        replication_factor: int | None = _DEFAULT.replication_factor,
        write_consistency_factor: int | None = _DEFAULT.write_consistency_factor,
        layout: str | Layout | None = _DEFAULT.layout,
        recreate: bool = _DEFAULT.recreate,
        late_chunking: bool = _DEFAULT.late_chunking,
        hierarchy: Hierarchy | Mapping[str, Any] | None = _DEFAULT.hierarchy,
        query_batch_wait_ms: float = _DEFAULT.query_batch_wait_ms,
        query_batch_size: int = _DEFAULT.query_batch_size,
        tenant: str | Any = _DEFAULT.tenant,
        tenant_key: str = _DEFAULT.tenant_key,
        indexed_fields: Mapping[str, str] | None = _DEFAULT.indexed_fields,
        acorn: bool = _DEFAULT.acorn,
        shard_key: str | Any = _DEFAULT.shard_key,
        config: StoreConfig | None = None,
    ) -> None:
        """Open (or prepare) ``collection_name``; options: :class:`shared.config.StoreConfig`.

        Options come either as keywords or as one ``config=``, not both.
        """
        validate_collection_name(collection_name)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidTypeError(
                f"retry must be a shared.retry.RetryPolicy (or None), got {type(retry).__name__}"
            )
        if encoder is not None and not isinstance(encoder, Encoder):
            raise InvalidTypeError(
                f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}"
            )
        # The keywords above are StoreConfig's fields (tests/shared/test_options.py checks
        # names and defaults against it); they are read back by name, not listed again.
        given = StoreConfig.from_values(locals())
        if config is not None:
            if not isinstance(config, StoreConfig):
                raise InvalidTypeError(
                    f"config must be a shared.config.StoreConfig, got {type(config).__name__}"
                )
            if given != _DEFAULT:
                raise InvalidInputError("pass the store options either as keywords or as config=, not both")
            given = config
        #: The options this store was opened with (:class:`shared.config.StoreConfig`).
        self.config = given
        self._hierarchy = parse_hierarchy(given.hierarchy)
        self.collection_name = collection_name
        if given.late_chunking:
            require_late_chunking(encoder)
        self._encoder = encoder
        # Every id, filter and payload of a tenant's store goes through its scope (shared.tenancy).
        self._scope = TenantScope(given.tenant, given.tenant_key)
        self._indexed_fields = check_indexed_fields(given.indexed_fields)
        # Query texts go through a micro-batcher: concurrent queries share one forward pass.
        self._query_encoder = query_encoder(encoder, given.query_batch_wait_ms, given.query_batch_size)
        # BM25 beside the learned sparse model (None: none asked for; a collection that keeps
        # one gets its encoder back from its guard record, see _bm25_encoder).
        self._bm25 = bm25_encoder(given.bm25)
        if self._bm25 is not None and encoder is not None and needs_idf(encoder.identity.sparse_kind):
            raise InvalidInputError(
                "bm25: the store's sparse model is BM25 already; bm25= adds BM25 beside a learned "
                "sparse model (SPLADE, BGE-M3)"
            )
        self._requested: CollectionSchema = replace(
            self._requested_schema(given, encoder, self._bm25), tenant_key=self._scope.collection_key
        )
        # Layout options left at their defaults follow an existing collection instead of
        # contradicting it (reopen with just a path); explicit values are checked.
        self._shape_from_collection = given.shape_from_collection()
        # Every default of a query is decided there (shared.query.options).
        self._queries = QueryResolver(given.query_defaults(), given.sparse_normalization)
        # Plan templates by options object (see _plan).
        self._templates: dict[tuple[int, frozenset[str]], _Template] = {}
        # Storage options given explicitly (None = "none"/False/"binary"/"float32" for a new
        # collection, or whatever an existing collection uses, without a warning).
        self._explicit_storage = given.explicit_storage()
        self._recreate = given.recreate
        # What is known about the collection (shared with the store's tenant views).
        self._state = _CollectionState()
        self._closed = False
        # False for a tenant's view (for_tenant): the store it came from closes the backend.
        self._owns_backend = True
        # None: detected from an existing collection (this package's layout for a new one).
        self._layout_request = get_layout(given.layout) if given.layout is not None else None
        if self._layout_request is not None:
            self._layout_request.check_schema_options(self._requested)
            self._requested = replace(self._requested, layout=self._layout_request)

        self._backend: Backend = open_backend(
            collection_name,
            Connection(**connection_from(locals())),
            layout=self._layout_request,
            shard_key=shard_key_of(given.shard_key, given.tenant),
            **given.backend_options(),
        )
        # Open now when a sync path exists, so a mismatching collection fails here.
        if self._backend.can_sync:
            try:
                run(self._open_steps())
            except BaseException:
                run(self._backend.close())
                raise

    @staticmethod
    def _requested_schema(
        cfg: StoreConfig, encoder: Encoder | None, bm25: Bm25Encoder | None = None
    ) -> CollectionSchema:
        """The schema the store asks for (a new collection's; an existing one is checked against it)."""
        identity = encoder.identity if encoder is not None else None
        if cfg.colbert and encoder is not None and "colbert" not in encoder.outputs:
            raise InvalidInputError("colbert=True but the encoder does not produce ColBERT vectors")
        return CollectionSchema.build(
            identity,
            dense_dim=cfg.dense_dim
            if cfg.dense_dim is not None
            else (encoder.dense_dim if encoder is not None else None),
            sparse=cfg.sparse,
            # BM25's vectors hold term frequencies only: the engine keeps their IDF.
            sparse_idf=cfg.sparse_idf or needs_idf(identity.sparse_kind if identity is not None else None),
            sparse_datatype=cfg.sparse_datatype if cfg.sparse_datatype is not None else "float32",
            colbert=cfg.colbert,
            mrl_dim=cfg.mrl_dim,
            mrl_quantization=cfg.mrl_quantization if cfg.mrl_quantization is not None else "binary",
            quantization=cfg.quantization if cfg.quantization is not None else "none",
            on_disk=bool(cfg.on_disk),
            late_chunking=cfg.late_chunking,
            bm25=bm25.config() if bm25 is not None else None,
        )

    def _bm25_encoder(self) -> Bm25Encoder | None:
        """The BM25 encoder of a collection that keeps BM25 beside its sparse vector: the one
        given, or for a collection reopened without it, the one its guard records."""
        spec = self.schema.bm25
        if spec is None:
            return None
        if self._bm25 is None or self._bm25.config() != dict(spec):
            self._bm25 = Bm25Encoder.from_config(spec)
        return self._bm25

    def __repr__(self) -> str:
        return (
            f"HybridStore(collection_name={self.collection_name!r}, backend={self._backend!r}, "
            f"encoder={self.identity.model_id if self.identity else None!r})"
        )

    # -- properties --------------------------------------------------------

    # What is known about the collection lives in the state a store shares with its views.
    _schema: _Shared[CollectionSchema | None] = _Shared()
    _opened: _Shared[bool] = _Shared()
    _guard_pending: _Shared[bool] = _Shared()

    @property
    def identity(self) -> EncoderIdentity | None:
        """Identity of the encoder the collection was built with (or will be)."""
        if self._schema is not None and self._schema.identity is not None:
            return self._schema.identity
        return self._requested.identity

    @property
    def schema(self) -> CollectionSchema:
        """The collection's schema (the requested one until the collection exists)."""
        schema = self._state.schema  # the state itself: read on every query, one lookup not two
        return schema if schema is not None else self._requested

    query_defaults: ReadOnly[QueryOptions] = ReadOnly(
        "_queries.defaults",
        doc="What every query starts from (the store's ``retrieval_mode``, ``fusion``, weights, sizes).",
    )

    def set_query_defaults(self, **options: Any) -> None:
        """Change the store's query defaults (the ``StoreConfig`` query options: ``retrieval_mode``,
        ``fusion``, ``rrf_k``, ``dense_weight``, ``sparse_weight``, ``candidate_k``,
        ``sparse_normalization``), checked now; the collection is not touched."""
        unknown = sorted(set(options) - QUERY_DEFAULT_OPTIONS)
        if unknown:
            raise InvalidTypeError(
                f"{unknown} are not query defaults; the query defaults are {sorted(QUERY_DEFAULT_OPTIONS)}"
            )
        config = replace(self.config, **options)
        self._queries = QueryResolver(config.query_defaults(), config.sparse_normalization)
        self.config = config

    hierarchy: ReadOnly[Hierarchy] = ReadOnly(
        "_hierarchy",
        doc="How this collection's chunks relate "
        "(the ``hierarchy`` option, parsed: :mod:`shared.hierarchy`).",
    )
    is_remote: ReadOnly[bool] = ReadOnly("_backend.is_remote")
    encoder: ReadOnly[Encoder | None] = ReadOnly("_encoder")

    def for_tenant(self, tenant: str) -> HybridStore:
        """A store scoped to ``tenant`` over this store's open collection and connection.

        How one process serves many tenants of one collection: the embedded shard is opened
        once (it is locked to one store object) and a server's clients are shared; each view
        is scoped like ``HybridStore(..., tenant=tenant)`` (same options otherwise). Closing a
        view releases nothing; closing this store closes the backend under every view.
        """
        scope = TenantScope(tenant, self._scope.key)
        if not scope.scoped:
            raise InvalidInputError("for_tenant needs a tenant id (open the store itself for tenant=ALL)")
        if self._scope.tenant is None:
            # An unscoped store would go on writing untenanted points next to its views' ones.
            raise InvalidInputError(
                "for_tenant is for a store opened with tenant= (a tenant id, or shared.ALL for a "
                "service's own handle on the collection)"
            )
        if self._schema is not None:
            scope.check_open(self._schema.tenant_key, f"collection {self.collection_name!r}")
        view = copy.copy(self)
        view._scope = scope
        view.config = replace(self.config, tenant=tenant)
        view._requested = replace(self._requested, tenant_key=scope.collection_key)
        view._owns_backend = False
        return view

    # -- opening -----------------------------------------------------------

    def _open_steps(self) -> Steps[None]:
        where = (
            self._backend.location
            if self._backend.is_remote
            else f"collection {self.collection_name!r} at {self._backend.location}"
        )
        backend = self._backend
        guard = yield from backend.read_guard()
        if guard is not None and self._recreate:
            logger.warning("recreate=True: dropping %s", where)
            yield from backend.drop()
            guard = None
        if guard is None:
            # A tenant=ALL store never creates a collection (it cannot add to it either).
            if self._requested.complete and self._scope.tenant is not ALL:
                yield from self._create(self._requested)
        elif not guard:
            # A collection another client created (langchain-qdrant, llama-index, ...).
            if not backend.is_remote:
                raise ModelMismatchError(
                    f"{where} holds a Qdrant Edge shard without m3-hybrid's guard record; "
                    "it was left untouched (open another path)"
                )
            info = yield from backend.inspect()
            self._schema = self._unguarded_schema(info, where)
            self._guard_pending = True
            yield from self._index_fields()
        else:
            storage = self._requested.check_guard(guard, where, loose=self._shape_from_collection)
            storage = {k: v for k, v in storage.items() if k in self._explicit_storage}
            if storage:
                logger.warning(
                    "%s keeps its own storage settings %s (recreate=True to rebuild with the new ones)",
                    where,
                    {k: a for k, (a, _) in storage.items()},
                )
            self._schema = CollectionSchema.from_guard(guard)
            self._scope.check_open(self._schema.tenant_key, where)
            if self._indexed_fields:
                yield from self._index_fields()
            if self._layout_request is not None and self._layout_request != self._schema.stored_layout:
                raise InvalidInputError(
                    f"{where} is in the {self._schema.stored_layout.name} layout "
                    f"{self._schema.stored_layout}, not the layout= given ({self._layout_request})"
                )
        self._opened = True

    def _unguarded_schema(self, info: CollectionInfo, where: str) -> CollectionSchema:
        """The schema of a collection without a guard record, from its own vector config.

        The layout is the one given (``layout=``) or detected. Whatever the store asks for
        that the collection cannot hold, or a dense size that differs from the collection's,
        is refused here, before anything is written.
        """
        layout = self._layout_request if self._layout_request is not None else detect_layout(info, where)
        layout.check_schema_options(self._requested)
        found = schema_fields(info, layout)
        if found["dense_dim"] is not None and found["distance"] != "cosine":
            raise UnsupportedOperationError(
                f"{where} compares dense vectors by {found['distance']} distance; m3-hybrid stores "
                "unit-length vectors under cosine only"
            )
        req = self._requested
        if (
            req.dense_dim is not None
            and found["dense_dim"] is not None
            and req.dense_dim != found["dense_dim"]
        ):
            raise ModelMismatchError(
                f"{where} stores {found['dense_dim']}-d dense vectors (vector "
                f"{layout.dense_vector!r}), the store's encoder makes {req.dense_dim}-d ones; "
                "open it with the model that wrote it"
            )
        if req.dense_dim is not None and found["dense_dim"] is None:
            raise ModelMismatchError(
                f"{where} has no dense vector {layout.dense_vector!r}; open it without a dense model"
            )
        if "sparse" not in self._shape_from_collection and req.sparse and not found["sparse"]:
            raise ModelMismatchError(
                f"{where} has no sparse vector {layout.sparse_vector!r}; open it without a sparse model"
            )
        return CollectionSchema(
            dense_dim=found["dense_dim"],
            sparse=found["sparse"],
            sparse_idf=found["sparse_idf"],
            sparse_datatype=req.sparse_datatype,
            quantization=req.quantization,
            on_disk=req.on_disk,
            identity=req.identity,
            complete=True,
            layout=layout,
            tenant_key=req.tenant_key,
        )

    layout: ReadOnly[Layout] = ReadOnly(
        "schema.stored_layout",
        doc="The collection's layout (:mod:`shared.layouts`): ours, langchain-qdrant's or llama-index's.",
    )

    def _resolve(self, flt: Any) -> Any:
        """A checked filter in the collection's terms: caller ids -> point ids, payload keys of its
        layout, AND the tenant's scope (a tenant's store sends no filter without it)."""
        layout = self.layout
        scope = self._scope
        if not scope.scoped:  # the untenanted path, as it was
            return resolve_ids(flt, layout.point_id, layout.key_of)
        return scope.restrict(resolve_ids(flt, scope.point_id, layout.key_of), layout)

    def _create(self, schema: CollectionSchema) -> Steps[None]:
        """Create the collection (and its payload indexes: the tenant's, the declared fields')."""
        yield from self._backend.create(schema)
        self._schema = schema
        yield from self._index_fields()

    def _index_fields(self) -> Steps[None]:
        specs = index_specs(self.layout, self.schema.tenant_key, self._indexed_fields)
        if specs:
            yield from self._backend.index_fields(specs)

    def _filtered(self, plan: QueryPlan) -> QueryPlan:
        """A filtered query's plan with the engine's filtered-search options (ACORN, a tenant's IDF)."""
        return tune_filtered(plan, acorn=self.config.acorn, idf_corpus=self._scope.idf_corpus(self.layout))

    def _hits(self, results: Sequence[ResultPoint], layout: Layout) -> list[Hit]:
        hits = [self._hit(r, layout) for r in results]
        scope = self._scope
        if scope.tenant is not None and scope.strips_metadata(layout):
            # Another framework's layout keeps the tenant in the metadata: the caller never wrote it.
            hits = [replace(h, metadata=scope.clean(h.metadata)) for h in hits]
        return hits

    def _ready(self) -> Steps[None]:
        if self._closed:
            raise BackendError(f"HybridStore {self.collection_name!r} is closed")
        if not self._state.opened:
            yield from self._open_steps()

    # -- add ---------------------------------------------------------------

    def _add_document_steps(
        self, text: str, spans: Sequence[tuple[int, int]], **options: Unpack[DocumentOptions]
    ) -> Steps[list[str]]:
        """Store the chunks ``text[start:end]`` of one document (late-chunked when the store is).

        Options (:class:`DocumentOptions`): ``document_id`` (every chunk's ``ref_doc_id``; a
        random key when None), ``ids``, ``metadatas`` (one per span), ``batch_size``.
        """
        check_options(options, DocumentOptions.__annotations__, "add_document")
        document_id = options.get("document_id")
        records = _document_records(text, spans, document_id, options.get("ids"), options.get("metadatas"))
        documents = {_document_key(document_id): text}
        batch_size = options.get("batch_size", ADD_BATCH_SIZE)
        return (yield from self._add_steps(records, batch_size=batch_size, documents=documents))

    add_document = run_method(_add_document_steps)
    aadd_document = arun_method(_add_document_steps)

    def _add_texts_steps(
        self,
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None = None,
        ids: Iterable[str] | None = None,
        ref_doc_ids: Iterable[str | None] | None = None,
        *,
        batch_size: int = ADD_BATCH_SIZE,
        show_progress: bool = False,
    ) -> Steps[list[str]]:
        """Encode and store texts; ids default to random UUIDs (pass ids to make re-adding idempotent)."""
        records = self._records_from_texts(texts, metadatas, ids, ref_doc_ids)
        return (yield from self._add_steps(records, batch_size=batch_size, show_progress=show_progress))

    add_texts = run_method(_add_texts_steps)
    aadd_texts = arun_method(_add_texts_steps)

    @staticmethod
    def _records_from_texts(
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None,
        ids: Iterable[str] | None,
        ref_doc_ids: Iterable[str | None] | None,
    ) -> Iterator[Record]:
        if isinstance(texts, str):
            raise InvalidTypeError("texts must be an iterable of str, not a single str")
        import uuid

        def column(values: Iterable[Any] | None, name: str) -> Iterator[Any]:
            if values is None:
                while True:
                    yield None
            it = iter(values)
            yield from it
            while True:
                yield _MISSING

        md_it, id_it, ref_it = column(metadatas, "metadatas"), column(ids, "ids"), column(ref_doc_ids, "ref")
        count = 0
        for i, text in enumerate(texts):
            md, rid, ref = next(md_it), next(id_it), next(ref_it)
            for name, value in (("metadatas", md), ("ids", rid), ("ref_doc_ids", ref)):
                if value is _MISSING:
                    raise InvalidInputError(f"{name} is shorter than texts (no item for text {i})")
            yield Record(
                id=rid if rid is not None else str(uuid.uuid4()),
                text=text,
                metadata=dict(md) if md is not None else {},
                ref_doc_id=ref,
            )
            count += 1
        for name, it in (("metadatas", metadatas), ("ids", ids), ("ref_doc_ids", ref_doc_ids)):
            if isinstance(it, Sequence) and len(it) > count:
                raise InvalidInputError(f"{name} is longer than texts ({len(it)} > {count})")

    def _add_steps(
        self,
        records: Iterable[Record],
        *,
        batch_size: int = ADD_BATCH_SIZE,
        show_progress: bool = False,
        documents: Mapping[str, str] | None = None,
    ) -> Steps[list[str]]:
        """Store records (upsert by id); returns their ids. Vectors left None are encoded.

        With ``late_chunking`` every record is a chunk (``Record.chunk_of``) and its vectors
        come from one pass over its document (:mod:`shared.late_chunking`); ``documents``
        (document key -> text) gives the documents' texts, otherwise rebuilt from the chunks.
        """
        positive_int(batch_size, "batch_size")
        if isinstance(records, (Record, str)):
            raise InvalidTypeError("add() takes an iterable of Record, not a single item")
        yield from self._ready()
        scope = self._scope
        scope.check_writable(self.schema.tenant_key)
        self.schema.check_writer(self.config.late_chunking, f"collection {self.collection_name!r}")
        if self.config.late_chunking or documents is not None:
            records = yield from self._late_chunked(list(records), documents, batch_size)
        if isinstance(records, Sequence):
            # A materialised input is checked whole before anything is written.
            scope.check_records(records)
            yield call(check_all, records, batch_size, self.schema, self._encoder)
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(records) if isinstance(records, Sequence) else None, desc="add", unit="rec")
        ids: list[str] = []
        try:
            for chunk in batched(records, batch_size):
                start = len(ids)
                try:
                    scope.check_records(chunk, start)
                    points = yield call(
                        prepare_batch,
                        chunk,
                        start,
                        self.schema,
                        self._encoder,
                        self._bm25_encoder(),
                        scope.to_point(self.layout),
                    )
                except InvalidInputError as exc:
                    if start:
                        raise type(exc)(
                            f"{exc} (the {start} records before this batch were stored)"
                        ) from None
                    raise
                if self._schema is None:
                    # Another store (another tenant's) may have created it since this one opened.
                    yield from self._open_steps()
                if self._schema is None:
                    yield from self._create_from_points(points)
                if self._guard_pending:
                    # First write to a collection another client created: record who writes.
                    yield from self._backend.write_guard(self.schema)
                    self._guard_pending = False
                yield from self._backend.upsert(points)
                ids.extend(r.id for r in chunk)
                if bar is not None:
                    bar.update(len(chunk))
        except Exception:
            if ids:
                # Index what was stored before the failure, then report it.
                yield from self._backend.finish_bulk()
            raise
        finally:
            if bar is not None:
                bar.close()
            # Corpus weights measured up front (bm25_for_corpus) are for this add: whatever it
            # did not take is not kept for the store's life.
            for enc in (bm25_model(self._encoder), self._bm25):
                if enc is not None:
                    enc.forget_corpus()
        if ids:
            # Build indexes / quantized codes once for the whole call.
            yield from self._backend.finish_bulk()
        return ids

    add = run_method(_add_steps)
    aadd = arun_method(_add_steps)

    def _late_chunked(
        self, records: list[Record], documents: Mapping[str, str] | None, batch_size: int
    ) -> Steps[list[Record]]:
        """Records with their vectors late-chunked (a store that late-chunks); documents are
        only for one."""
        if not self.config.late_chunking:
            raise InvalidInputError("documents= is for late chunking; this store has late_chunking=False")
        needs = missing_outputs(Record(id="-"), self.schema, self._encoder)
        done: list[Record] = yield call(
            late_chunk_records, records, documents, self._encoder, needs, batch_size
        )
        return done

    def _create_from_points(self, points: Sequence[PointData]) -> Steps[None]:
        dense_dim = next((len(p.vectors[DENSE]) for p in points if DENSE in p.vectors), None)
        colbert_dim = next((len(p.vectors[COLBERT][0]) for p in points if COLBERT in p.vectors), None)
        schema = self._requested.with_sizes(dense_dim, colbert_dim)
        yield from self._create(schema)
        if schema.mrl_dim is not None:
            add_mrl_vectors(points, schema.mrl_dim)

    # -- query -------------------------------------------------------------

    def query(self, text: str | None = None, **options: Unpack[QueryArgs]) -> list[Hit]:
        """Search by text (encoded with the store's encoder) and/or explicit query vectors.

        Keyword options: :class:`shared.query.options.QueryArgs`; each left out (or None)
        follows the store's default (:class:`shared.config.StoreConfig`).
        ``dense`` / ``sparse`` / ``colbert``: query vectors (those not given are encoded from
        ``text``). ``mode`` defaults to the store's ``retrieval_mode``; with vectors and no text
        it follows what is given (dense only -> dense, sparse only -> sparse). Score
        semantics per mode: see :mod:`shared.query.modes`. ``exact=True`` searches
        brute force with the float originals (no HNSW, no quantized codes).
        ``mrl_candidates``: how many truncated-vector candidates the MRL funnel re-scores
        with the full vector (default 4 x the candidates).
        ``dense_candidates`` / ``sparse_candidates`` (hybrid only): the size of the dense and of
        the sparse prefetch fused into the result (default each ``max(limit + offset,
        candidate_k)``); a given size is used as is, so the fused list holds at most their sum.
        ``sparse_normalization`` (m3 fusion only; default the store's, ``"auto"``): the scale
        of the sparse term, see :mod:`shared.query.modes`.
        ``group_by`` / ``group_size``: one hit per document (:mod:`shared.query.groups`):
        ``limit`` groups of up to ``group_size`` hits, each hit's ``group`` set. ``levels``,
        ``unit``, ``context_window``, ``with_parent``: chunks of several granularities, their
        parents and their context (:mod:`shared.hierarchy`).
        """
        return run(self._query_steps(text, dict(options)))

    async def aquery(self, text: str | None = None, **options: Unpack[QueryArgs]) -> list[Hit]:
        return await arun(self._query_steps(text, dict(options)))

    def query_batch(self, texts: Sequence[str], **options: Unpack[QueryArgs]) -> list[list[Hit]]:
        """Search several query texts with the same options, as one batch.

        The texts are encoded in one pass and the engine gets one batch request (Qdrant
        Edge's ``query_batch``, qdrant-client's ``query_batch_points``). Returns one hit
        list per text, in order: each is what ``query(text, **options)`` returns. The options
        are :meth:`query`'s except the query vectors (``dense``/``sparse``/``colbert``), which
        are made from each text.
        """
        return run(self._query_batch_steps(texts, dict(options)))

    async def aquery_batch(self, texts: Sequence[str], **options: Unpack[QueryArgs]) -> list[list[Hit]]:
        return await arun(self._query_batch_steps(texts, dict(options)))

    def _query_batch_steps(self, texts: Sequence[str], args: dict[str, Any]) -> Steps[list[list[Hit]]]:
        items = text_list(texts, "texts")
        given = [k for k in ("dense", "sparse", "colbert") if args.get(k) is not None]
        if given:
            raise InvalidInputError(
                f"query_batch makes the query vectors from each text; {'/'.join(given)} cannot be given "
                "(use query() for a query with its own vectors)"
            )
        yield from self._ready()
        if not items:
            return []
        schema = self.schema
        opts = self._query_options("", args, schema)
        if self._schema is None:
            return [[] for _ in items]
        vectors = yield call(self._batch_vectors, items, opts)
        plans = [self._plan(schema, opts, v) for v in vectors]
        layout = schema.stored_layout
        if opts.group_by is not None:  # no batched group query: one request per text
            batches = []
            for plan in plans:
                batches.append((yield from self._grouped_hits(plan, opts.offset, layout)))
        else:
            results = yield from self._backend.query_batch(plans)
            batches = [self._hits(points, layout) for points in results]
        if opts.unit != "chunk" or opts.with_parent or opts.context_window:
            batches = yield from self._hierarchy_steps(batches, opts)
        return batches

    def _batch_vectors(self, texts: list[str], opts: QueryOptions) -> list[dict[str, Any]]:
        """Each text's query vectors, all encoded in one call."""
        missing = self._missing_vectors("", None, None, None, opts)
        encoded = None
        if missing:
            assert self._encoder is not None  # _missing_vectors refuses a store without one
            encoded = self._encoder.encode(texts, "query", outputs=missing, show_progress=False)
        bm25 = self._bm25_queries(texts, opts)
        return [
            self._vectors(encoded, i, missing, None, None, None, opts, bm25[i] if bm25 else None)
            for i in range(len(texts))
        ]

    def _bm25_queries(self, texts: list[str], opts: QueryOptions) -> list[SparseQuery] | None:
        """The BM25 queries of ``texts`` when the query fuses BM25 (None: it does not)."""
        bm25 = self._bm25_encoder() if opts.bm25 else None
        if bm25 is None:
            return None
        encoded = bm25.encode(texts, "query").sparse
        assert encoded is not None  # BM25 makes sparse vectors only
        return [sparse_query(v, "BM25 query vector", checked=True) for v in encoded]

    def relevance_function(self, **options: Unpack[QueryArgs]) -> Callable[[float], float]:
        """Maps the scores of a text query with ``options`` onto [0, 1] (1 = most relevant).

        The options are resolved as :meth:`query` resolves them (the store's defaults
        for those left out); see :func:`shared.query.relevance.relevance_function`.
        """
        args = dict(options)
        text = None if args.get("dense") is not None or args.get("sparse") is not None else ""
        return relevance_function(self._query_options(text, args, self.schema))

    def _query_options(
        self, text: str | None, args: dict[str, Any], schema: CollectionSchema
    ) -> QueryOptions:
        """``args`` (:class:`QueryArgs`) resolved against the store's defaults (the one resolver)."""
        encoder = self._encoder
        opts = self._queries.resolve(
            args,
            schema,
            text=text,
            can_encode_colbert=encoder is not None and "colbert" in encoder.outputs,
            filter=self._resolve(check_filter(args.get("filter"))),
        )
        if opts.group_by is None and opts.levels is None and opts.unit == "chunk":
            return opts
        # Payload keys in the collection's layout, as filters are.
        key = schema.stored_layout.payload_key
        h = self._hierarchy
        if opts.unit == "parent":
            if opts.group_by is not None:
                raise InvalidInputError(
                    "unit='parent' groups the chunks by their parent already; leave group_by out"
                )
            opts = replace(opts, group_by=h.parent_key)
        if opts.levels is not None:
            h.check_levels(opts.levels)
            opts = replace(opts, level_key=key(h.level_key))
        assert opts.group_by is not None or opts.levels is not None
        return opts if opts.group_by is None else replace(opts, group_by=key(opts.group_by))

    # -- hierarchy: parents and context read with the hits (shared.hierarchy) -----------

    def _hierarchy_steps(self, batches: list[list[Hit]], opts: QueryOptions) -> Steps[list[list[Hit]]]:
        """The hits of a query batch turned into their parents (``unit="parent"``) and given
        their context (``with_parent``, ``context_window``): one read per need, for the batch."""
        h = self._hierarchy
        if opts.unit == "parent":
            hits = [hit for batch in batches for hit in batch]
            parents = yield from self._records_by_id({str(hit.group) for hit in hits})
            out = []
            for batch in batches:
                unit: list[Hit] = []
                for hit in batch:
                    parent = parents.get(str(hit.group))
                    if parent is None:
                        raise InvalidInputError(
                            f"unit='parent': the parent {hit.group!r} of hit {hit.id!r} is not stored in "
                            f"this collection (its {h.parent_key!r} names no stored record)"
                        )
                    if unit and unit[-1].id == parent.id:  # group_size > 1: its further chunks
                        unit[-1].children = [*(unit[-1].children or ()), hit]
                        continue
                    unit.append(
                        Hit(
                            parent.id,
                            hit.score,
                            parent.text,
                            parent.metadata,
                            parent.ref_doc_id,
                            children=[hit],
                        )
                    )
                out.append(unit)
            batches = out
        hits = [hit for batch in batches for hit in batch]
        if opts.with_parent:
            ids = {str(p) for p in (record_value(hit, h.parent_key) for hit in hits) if p is not None}
            parents = yield from self._records_by_id(ids)
            for hit in hits:
                p = record_value(hit, h.parent_key)
                hit.parent = None if p is None else parents.get(str(p))
        if opts.context_window:
            yield from self._add_windows(hits, opts.context_window)
        return batches

    def _records_by_id(self, ids: set[str]) -> Steps[dict[str, Record]]:
        """The stored records of ``ids`` (one engine read), by id; ids not stored are left out."""
        if not ids:
            return {}
        layout, scope = self.layout, self._scope
        id_of = scope.id_of(layout)
        points = yield from self._backend.retrieve([id_of(i) for i in sorted(ids)], [])
        owned = [p for p in points if scope.owns(p.payload, layout)]  # all of them when unscoped
        return {r.id: r for r in map(self._record, owned)}

    def _add_windows(self, hits: list[Hit], n: int) -> Steps[None]:
        """Give each hit the ``n`` chunks before and after it in its parent, in position order
        (the hits' parents read with one filtered scroll)."""
        h = self._hierarchy
        docs: dict[Any, None] = {}
        for hit in hits:
            for key in (h.parent_key, h.position_key):
                if record_value(hit, key) is None:
                    raise InvalidInputError(
                        f"context_window needs each hit's parent ({h.parent_key!r}) and position "
                        f"({h.position_key!r}); hit {hit.id!r} has no {key!r}"
                    )
            docs[record_value(hit, h.parent_key)] = None
        if not hits:
            return
        flt = self._resolve(models.Filter(must=[any_of(h.parent_key, list(docs), "context_window parents")]))
        siblings: dict[Any, list[Record]] = {}
        cursor: Any = None
        while True:  # one request unless the parents hold more chunks than a page
            points, cursor = yield from self._backend.scroll(flt, cursor, _WINDOW_PAGE, [])
            for r in map(self._record, points):
                siblings.setdefault(record_value(r, h.parent_key), []).append(r)
            if cursor is None:
                break
        for chunks in siblings.values():
            chunks.sort(key=lambda r: (_position(record_value(r, h.position_key)), r.id))
        for hit in hits:
            chunks = siblings.get(record_value(hit, h.parent_key), [])
            at = next((i for i, r in enumerate(chunks) if r.id == hit.id), None)
            hit.window = [] if at is None else chunks[max(0, at - n) : at + n + 1]

    def _query_steps(self, text: str | None, args: dict[str, Any]) -> Steps[list[Hit]]:
        if text is not None and not isinstance(text, str):
            raise InvalidTypeError(f"query text must be str, got {type(text).__name__}")
        if text is not None:
            check_utf8(text, "query text")
        yield from self._ready()
        schema = self.schema
        opts = self._query_options(text, args, schema)
        if self._state.schema is None:
            return []  # nothing stored yet: the collection is created by the first add
        dense, sparse, colbert = args.get("dense"), args.get("sparse"), args.get("colbert")
        if text is None:
            # The query's own vectors, nothing to encode: checked here, no step (and so no worker
            # thread under asyncio for a few microseconds of checks).
            vectors = self._query_vectors(None, dense, sparse, colbert, opts)
        else:
            vectors = yield call_async(
                self._query_vectors,
                self._aquery_vectors if isinstance(self._query_encoder, MicroBatcher) else None,
                text,
                dense,
                sparse,
                colbert,
                opts,
            )
        plan = self._plan(schema, opts, vectors)
        layout = schema.stored_layout
        if plan.group is not None:
            hits = yield from self._grouped_hits(plan, opts.offset, layout)
        else:
            results = yield from self._backend.query(plan)
            hits = self._hits(results, layout)
        if opts.unit != "chunk" or opts.with_parent or opts.context_window:
            hits = (yield from self._hierarchy_steps([hits], opts))[0]
        return hits

    def _plan(self, schema: CollectionSchema, opts: QueryOptions, vectors: dict[str, Any]) -> QueryPlan:
        """The query's plan: the template of its options, bound to its vectors. A template is
        made once per options object (the resolver returns the same one for the same call), so
        the backend translates its stage tree once too; a filtered query's options are new each
        time (the filter is the query's), its template too."""
        given = frozenset(vectors)
        key = (id(opts), given)
        known = self._templates.get(key)
        if known is None or known[0] is not opts or known[1] is not schema:
            template = plan_template(schema, opts, given)
            if opts.filter is not None:
                template = self._filtered(template)
            layout = schema.stored_layout
            if layout.renames_vectors:
                template = rename_vectors(template, layout.vector_name)
            known = (opts, schema, template)
            if opts.filter is None:
                if len(self._templates) >= 256:
                    self._templates.clear()
                self._templates[key] = known
        return bind_vectors(known[2], schema, **vectors)

    def _grouped_hits(self, plan: QueryPlan, offset: int, layout: Layout) -> Steps[list[Hit]]:
        """A grouped plan's hits, group after group (``offset`` groups skipped), each hit
        carrying its group id. A query whose hits all lack the key is refused (a probe of
        one hit, only when no group came back, tells that apart from an empty result)."""
        groups = yield from self._backend.query_groups(plan)
        spec = plan.group
        assert spec is not None
        if not groups:
            probe = replace(plan, group=None, root=replace(plan.root, limit=1))
            found = yield from self._backend.query(probe)
            if found:
                raise InvalidInputError(
                    f"group_by key {spec.key!r} is on none of the hits (e.g. hit "
                    f"{self._hit(found[0], layout).id!r}); group by a payload key the points carry "
                    "(ref_doc_id, metadata.<key>) with a str or int value"
                )
        hits = []
        for group in groups[offset:]:
            for h in self._hits(group.hits, layout):
                h.group = group.id
                hits.append(h)
        return hits

    def _query_vectors(
        self, text: str | None, dense: Any, sparse: Any, colbert: Any, opts: QueryOptions
    ) -> dict[str, Any]:
        missing = self._missing_vectors(text, dense, sparse, colbert, opts)
        encoded = None
        if missing:
            assert text is not None and self._query_encoder is not None  # _missing_vectors checked
            encoded = self._query_encoder.encode([text], "query", outputs=missing)
        bm25 = self._bm25_queries([text], opts) if text is not None else None
        return self._vectors(encoded, 0, missing, dense, sparse, colbert, opts, bm25[0] if bm25 else None)

    async def _aquery_vectors(
        self, text: str | None, dense: Any, sparse: Any, colbert: Any, opts: QueryOptions
    ) -> dict[str, Any]:
        """:meth:`_query_vectors` for a coroutine: it waits for its micro-batch without a thread."""
        missing = self._missing_vectors(text, dense, sparse, colbert, opts)
        batcher = self._query_encoder
        assert isinstance(batcher, MicroBatcher)  # only stepped into when batching is on
        encoded = None
        if missing:
            assert text is not None  # _missing_vectors checked
            encoded = await batcher.aencode([text], "query", outputs=missing)
        bm25 = self._bm25_queries([text], opts) if text is not None else None
        return self._vectors(encoded, 0, missing, dense, sparse, colbert, opts, bm25[0] if bm25 else None)

    def _missing_vectors(
        self, text: str | None, dense: Any, sparse: Any, colbert: Any, opts: QueryOptions
    ) -> list[str]:
        """The query vectors the encoder must make from ``text`` (refused when it cannot)."""
        missing = []
        if opts.mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID) and dense is None:
            missing.append("dense")
        if opts.mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID) and sparse is None:
            missing.append("sparse")
        if opts.colbert_rerank and colbert is None:
            missing.append("colbert")
        if missing:
            if text is None:
                raise InvalidInputError(
                    f"{opts.mode.value} query needs {'/'.join(missing)} query vectors or text"
                )
            if self._encoder is None:
                raise InvalidInputError(
                    f"query text given but the store has no encoder; pass {'/'.join(missing)} query vectors"
                )
            unmade = [m for m in missing if m not in self._encoder.outputs]
            if unmade:
                raise InvalidInputError(
                    f"{opts.mode.value} query needs a {'/'.join(unmade)} query vector: pass one, or give "
                    f"the store a model that makes it ({self._encoder.identity.model_id} does not)"
                )
        return missing

    def _vectors(
        self,
        encoded: EncodeResult | None,
        row: int,
        missing: Sequence[str],
        dense: Any,
        sparse: Any,
        colbert: Any,
        opts: QueryOptions,
        bm25: SparseQuery | None = None,
    ) -> dict[str, Any]:
        """The plan's query vectors: those given, row ``row`` of ``encoded`` for the ``missing``,
        and the BM25 query when the query fuses BM25."""
        if encoded is not None:
            if "dense" in missing:
                dense = None if encoded.dense is None else encoded.dense[row]
            if "sparse" in missing:
                sparse = None if encoded.sparse is None else encoded.sparse[row]
            if "colbert" in missing:
                colbert = None if encoded.colbert is None else encoded.colbert[row]
        schema = self.schema
        out: dict[str, Any] = {}
        if opts.mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID) and dense is not None:
            if schema.dense_dim is None:
                raise UnsupportedOperationError("this collection has no dense vector")
            # An MRL collection also cuts the vector's head (an array op): it gets the array.
            out["dense"] = dense_query(
                dense, "dense query vector", schema.dense_dim, keep_list=schema.mrl_dim is None
            )
        if opts.mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID) and sparse is not None:
            out["sparse"] = sparse_query(sparse, checked=encoded is not None and "sparse" in missing)
        if opts.colbert_rerank and colbert is not None:
            out["colbert"] = colbert_vectors(colbert, schema.colbert_dim)
        if bm25 is not None:
            out["bm25"] = bm25
        return out

    @staticmethod
    def _hit(r: ResultPoint, layout: Layout) -> Hit:
        """A hit from a point read back (the layout reads the record out of the payload)."""
        parts = layout.record(r)
        score = r.score
        vectors = parts.vectors
        if not vectors:  # the common case: a query without with_vectors
            return Hit(
                parts.id, 0.0 if score is None else float(score), parts.text, parts.metadata, parts.ref_doc_id
            )
        dense, sparse = vectors.get(DENSE), vectors.get(SPARSE)
        return Hit(
            parts.id,
            0.0 if score is None else float(score),
            parts.text,
            parts.metadata,
            parts.ref_doc_id,
            dense=np.asarray(dense, dtype=np.float32) if dense is not None else None,
            sparse={int(k): float(v) for k, v in sparse.items()} if sparse is not None else None,
        )

    # -- mmr ---------------------------------------------------------------

    def _mmr_steps(
        self,
        text: str | None = None,
        *,
        dense: Any = None,
        limit: int = 4,
        fetch_k: int = 20,
        lambda_mult: float | None = DEFAULT_MMR_LAMBDA,
        filter: Any = None,
    ) -> Steps[list[Hit]]:
        """Maximal marginal relevance on the dense vectors (Qdrant's MMR).

        ``lambda_mult`` 1 = relevance only, 0 = maximal diversity (None: the default, 0.5).
        """
        if text is not None and not isinstance(text, str):
            raise InvalidTypeError(f"mmr text must be str, got {type(text).__name__}")
        if text is not None:
            check_utf8(text, "mmr text")
        yield from self._ready()
        flt = self._resolve(check_filter(filter))
        if self._schema is None:
            return []
        opts = QueryOptions(mode=RetrievalMode.DENSE)
        vectors = yield call(self._query_vectors, text, dense, None, None, opts)
        lam = DEFAULT_MMR_LAMBDA if lambda_mult is None else lambda_mult
        plan = plan_mmr(
            self.schema, vectors["dense"], limit=limit, fetch_k=fetch_k, lambda_mult=lam, filter=flt
        )
        if flt is not None:
            plan = self._filtered(plan)
        layout = self.layout
        if layout.renames_vectors:
            plan = rename_vectors(plan, layout.vector_name)
        results = yield from self._backend.query(plan)
        return self._hits(results, layout)

    mmr = run_method(_mmr_steps)
    ammr = arun_method(_mmr_steps)

    # -- get / delete / count / clear --------------------------------------

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """Records of ``ids`` in the order given; ids not stored are skipped."""
        return run(self._get_steps(ids, with_vectors))

    async def aget(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        return await arun(self._get_steps(ids, with_vectors))

    def _get_steps(self, ids: Sequence[str], with_vectors: bool) -> Steps[list[Record]]:
        wanted = id_list(ids)
        yield from self._ready()
        if not wanted or self._schema is None:
            return []
        names = self._vector_names(with_vectors)
        layout = self.layout
        scope = self._scope
        id_of = scope.id_of(layout)
        pids = {i: id_of(i) for i in wanted}
        found = yield from self._backend.retrieve(list(dict.fromkeys(pids.values())), names)
        # Matched by point id: another framework's ids may be spelled differently (UUID hex).
        by_pid = {str(r.point_id): r for r in found if scope.owns(r.payload, layout)}
        return [self._record(by_pid[str(pids[i])]) for i in wanted if str(pids[i]) in by_pid]

    def _record(self, r: ResultPoint) -> Record:
        (h,) = self._hits([r], self.layout)
        return Record(
            id=h.id, text=h.text, metadata=h.metadata, ref_doc_id=h.ref_doc_id, dense=h.dense, sparse=h.sparse
        )

    def _vector_names(self, with_vectors: bool) -> list[str]:
        assert self._schema is not None
        if not with_vectors:
            return []
        layout = self._schema.stored_layout
        return [layout.vector_name(n) for n in (DENSE, SPARSE) if n in self._schema.vector_names]

    # -- scroll ------------------------------------------------------------

    #: Points read from the engine per scroll request (bounds each request's memory).
    scroll_page_size: int = 256

    def _scroll_steps(
        self,
        filter: Any = None,
        *,
        limit: int | None = None,
        offset: str | None = None,
        with_vectors: bool = False,
    ) -> Steps[list[Record]]:
        """Every stored record matching ``filter`` (all of them without one), in the engine's point order.

        Read from the engine a page of at most :attr:`scroll_page_size` points at a time.
        ``limit``: at most this many records (None: all). ``offset`` is a cursor: the id of
        the last record of the previous page; the scroll resumes right after it (None: from
        the start). So ``page = store.scroll(f, limit=n, offset=page[-1].id)`` walks a
        collection page by page; an empty or short page means the end.
        """
        flt = check_filter(filter)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise InvalidTypeError(f"scroll limit must be an int or None, got {type(limit).__name__}")
        if limit is not None and limit <= 0:
            raise InvalidInputError(f"scroll limit must be > 0, got {limit}")
        if offset is not None:
            if not isinstance(offset, str):
                raise InvalidTypeError(
                    f"scroll offset must be a record id (str) or None, got {type(offset).__name__}"
                )
            if not offset:
                raise InvalidInputError("scroll offset must be a non-empty record id (or None)")
            check_utf8(offset, "scroll offset")
        yield from self._ready()
        if self._schema is None:
            return []
        flt = self._resolve(flt)
        names = self._vector_names(bool(with_vectors))
        page_size = max(1, int(self.scroll_page_size))
        # The engine's cursor is inclusive: start at the offset's own point and skip it.
        cursor = self._scope.id_of(self.layout)(offset) if offset is not None else None
        skip = offset
        out: list[Record] = []
        while limit is None or len(out) < limit:
            # One more on the first page when the cursor's own point may come back first.
            extra = 1 if skip is not None else 0
            want = page_size if limit is None else min(page_size, limit - len(out) + extra)
            first = cursor
            points, cursor = yield from self._backend.scroll(flt, cursor, want, names)
            if skip is not None and points and str(points[0].point_id) == str(first):
                points = points[1:]
            skip = None
            out.extend(self._record(r) for r in points)
            if cursor is None:
                break
        return out if limit is None else out[:limit]

    scroll = run_method(_scroll_steps)
    ascroll = arun_method(_scroll_steps)

    def _delete_steps(
        self,
        ids: Sequence[str] | None = None,
        *,
        ref_doc_ids: Sequence[str] | None = None,
        filter: Any = None,
    ) -> Steps[None]:
        """Delete the points of ``ids``, of ``ref_doc_ids``, and matching ``filter`` (each given one)."""
        if ids is None and ref_doc_ids is None and filter is None:
            raise InvalidInputError(
                "delete() needs ids, ref_doc_ids or filter (use clear() to delete everything)"
            )
        ids_given = id_list(ids) if ids is not None else []
        refs = id_list(ref_doc_ids, "ref_doc_ids") if ref_doc_ids is not None else []
        flt = check_filter(filter)
        yield from self._ready()
        if self._schema is None:
            return
        # Only a filter given is resolved: a tenant's scope alone would match all its points.
        flt = self._resolve(flt) if flt is not None else None
        if ids_given:
            layout, scope = self.layout, self._scope
            id_of = scope.id_of(layout)
            pids = [id_of(i) for i in ids_given]
            if scope.scoped:
                # By id AND tenant: another tenant's point is never deleted, whatever its id.
                yield from self._backend.delete_filter(scope.ids_filter(pids, layout))
            else:
                yield from self._backend.delete_ids(pids)
        if refs:
            from qdrant_client import models

            ref_filter = models.Filter(
                must=[models.FieldCondition(key=REF_DOC_ID_KEY, match=models.MatchAny(any=refs))]
            )
            yield from self._backend.delete_filter(self._resolve(ref_filter))
        if flt is not None:
            yield from self._backend.delete_filter(flt)

    delete = run_method(_delete_steps)
    adelete = arun_method(_delete_steps)

    def count(self, filter: Any = None) -> int:
        """Number of stored points (matching ``filter`` when given)."""
        return run(self._count_steps(filter))

    async def acount(self, filter: Any = None) -> int:
        return await arun(self._count_steps(filter))

    def _count_steps(self, flt: Any) -> Steps[int]:
        flt = check_filter(flt)
        yield from self._ready()
        if self._schema is None:
            return 0
        flt = self._resolve(flt)
        n = yield from self._backend.count(flt)
        return int(n)

    def wait_indexed(self) -> None:
        """Wait for the index builds that adds left running, and raise the failure of one.

        The embedded store indexes a large add in a writer process, in windows while the add
        writes and its last window after the add returns (queries meanwhile search the points
        not yet indexed exactly: every point is searchable once written); ``close`` waits for
        it too. A
        failed build loses nothing: every point is stored, and the next add builds again.
        A Qdrant server indexes on its own: nothing to wait for.
        """
        run(self._backend.wait_indexed())

    async def await_indexed(self) -> None:
        """Async :meth:`wait_indexed` (the wait runs in a worker thread)."""
        await arun(self._backend.wait_indexed())

    def clear(self) -> None:
        """Delete every point (the collection and its guard stay); a tenant's store: the tenant's points."""
        run(self._clear_steps())

    async def aclear(self) -> None:
        await arun(self._clear_steps())

    def _clear_steps(self) -> Steps[None]:
        yield from self._ready()
        if self._schema is not None:
            if self._scope.scoped:
                yield from self._backend.delete_filter(self._resolve(None))  # this tenant's points only
            else:
                yield from self._backend.clear()

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Release the backend (the embedded shard's lock; a temporary store is deleted)."""
        run(self._close_steps())

    async def aclose(self) -> None:
        await arun(self._close_steps())

    def _close_steps(self) -> Steps[None]:
        if self._closed:
            return
        self._closed = True
        batcher = self._query_encoder
        if not self._owns_backend:
            return  # a tenant's view: the store it came from owns the backend and the batcher
        if isinstance(batcher, MicroBatcher) and batcher is not shared_batcher(batcher.inner):
            batcher.close()  # the store's own (the shared one serves other stores and embeddings)
        yield from self._backend.close()

    def __del__(self) -> None:
        # Best effort: release the embedded lock of a store that was never closed.
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:
            pass


__all__ = ["FusionMethod", "HybridStore", "RetrievalMode"]


def _document_key(document_id: str | None) -> str:
    return document_id if document_id is not None else "\0document"


def _document_records(
    text: str,
    spans: Sequence[tuple[int, int]],
    document_id: str | None,
    ids: Sequence[str] | None,
    metadatas: Sequence[Mapping[str, Any]] | None,
) -> list[Record]:
    """One record per span of ``text`` (``add_document``); spans are checked by the encoder's rules."""
    import uuid

    from .encoders.late import check_spans

    (checked,) = check_spans(text_list([text], "text"), [spans])
    for name, column in (("ids", ids), ("metadatas", metadatas)):
        if column is not None and len(column) != len(checked):
            raise InvalidInputError(f"{name} has {len(column)} items for {len(checked)} spans")
    key = _document_key(document_id)
    return [
        Record(
            id=ids[c] if ids is not None else str(uuid.uuid4()),
            text=text[a:b],
            metadata=dict(metadatas[c]) if metadatas is not None else {},
            ref_doc_id=document_id,
            chunk_of=ChunkOf(key, a, b),
        )
        for c, (a, b) in enumerate(checked)
    ]
