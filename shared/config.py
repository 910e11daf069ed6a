"""``StoreConfig``: every option of a :class:`~shared.store.HybridStore`, its default and its check.

The one declaration of the store's options. ``HybridStore.__init__`` takes them as
keywords (or one ``config=``) and both framework adapters take their defaults and
descriptions from here (:func:`option_default`, :func:`option_doc`), so a default is
typed once. ``None`` means "follow the collection": an existing collection keeps its
own settings without a warning, a new one gets the value named in the description.
Connection arguments (``path``, ``url``, ``client``, ...) are not options: they say
where the collection is, not how it is built or searched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast

from .backends.base import BackendOptions, Connection
from .errors import InvalidTypeError
from .hierarchy import Hierarchy, parse_hierarchy
from .layouts import Layout
from .quantization import QuantizationPreset
from .query.modes import (
    DEFAULT_CANDIDATE_K,
    DEFAULT_RRF_K,
    FusionMethod,
    RetrievalMode,
    SparseNormalization,
    parse_sparse_normalization,
)
from .query.options import QueryOptions, resolve_options
from .serving import DEFAULT_BATCH_SIZE, DEFAULT_WAIT_MS
from .tenancy import DEFAULT_TENANT_KEY, check_indexed_fields, check_tenant, check_tenant_key
from .validation import non_negative_number, positive_int

__all__ = ["ADD_BATCH_SIZE", "STORE_OPTIONS", "StoreConfig", "option_default", "option_doc"]

#: Records encoded and written per batch by ``HybridStore.add`` (and the adapters' adds).
ADD_BATCH_SIZE = 256


#: The planner's own defaults: the query defaults below are taken from them, so each is typed once.
_PLANNER = QueryOptions()


def _option(default: Any, doc: str) -> Any:
    """A store option's field: its default and its one-line description (:func:`option_doc`)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class StoreConfig:
    """How a collection is built and searched by default (see the module docstring)."""

    # -- the collection's layout (shape): fixed when it is created ---------------------
    dense_dim: int | None = _option(
        None, "dense size when there is no dense model (None: the model's, or learned)"
    )
    sparse: bool | None = _option(None, "store sparse vectors (None: if a model makes them)")
    sparse_idf: bool = _option(False, "IDF modifier on the sparse vectors (False: follow the collection)")
    colbert: bool = _option(False, "store ColBERT vectors for re-ranking (False: follow the collection)")
    mrl_dim: int | None = _option(None, "size of the Matryoshka funnel's first-stage vectors (None: off)")
    bm25: bool | str | Any = _option(
        False,
        "BM25 as a further signal beside the learned sparse model: True (English), a language, "
        "or a shared.encoders.bm25.Bm25Encoder (False: follow the collection)",
    )
    # -- storage: an existing collection keeps its own ---------------------------------
    quantization: str | QuantizationPreset | Any = _option(
        None, "quantization preset or Qdrant config (None: the collection's, 'none' for a new one)"
    )
    mrl_quantization: str | QuantizationPreset | Any = _option(
        None, "quantization of the MRL copy (None: the collection's, 'binary' for a new one)"
    )
    on_disk: bool | None = _option(
        None, "vectors, HNSW graphs and sparse index on disk (None: the collection's, off for a new one)"
    )
    sparse_datatype: str | None = _option(
        None, "sparse weights' storage type (None: the collection's, float32 for a new one)"
    )
    compact_every: int | None = _option(
        None,
        "embedded store: reopen the shard every this many points written, which bounds the engine's "
        "memory (None: 100,000 with on_disk, else never; 0: never)",
    )
    background_index_min: int | None = _option(
        None,
        "embedded store: an index build of at least this many unindexed points (a large add, "
        "a compaction) runs in a writer process on a copy of the shard, swapped in when done, "
        "so queries and other threads keep running; while queries come in, a large add is indexed "
        "in windows of twice this many points as it writes (its points are searchable once "
        "written); an add returns "
        "before the build of its last window ends (wait_indexed() waits for it) (None: the "
        "engine's indexing threshold, ~6,700 points at 384-d; 0: never, index in this process, "
        "inside add)",
    )
    shard_number: int | None = _option(None, "shards of a new collection on a server (None: the server's)")
    replication_factor: int | None = _option(None, "replicas of a new collection on a server")
    write_consistency_factor: int | None = _option(None, "replicas that must confirm a write on a server")
    layout: str | Layout | None = _option(
        None,
        "collection layout: m3-hybrid, langchain, llama-index or a shared.layouts.Layout "
        "(None: detected from an existing collection, m3-hybrid's for a new one)",
    )
    recreate: bool = _option(False, "drop a collection built by another encoder instead of refusing it")
    # -- tenants and payload indexes (shared.tenancy) ----------------------------------
    tenant: str | Any = _option(
        None,
        "the tenant every operation is scoped to, in a collection shared by tenants "
        "(None: no tenants; shared.ALL: the explicit cross-tenant view)",
    )
    tenant_key: str = _option(DEFAULT_TENANT_KEY, "payload key that holds the tenant of each point")
    indexed_fields: Mapping[str, str] | None = _option(
        None,
        "metadata fields given a payload index, name -> kind (keyword, integer, float, bool, "
        "datetime, uuid, text)",
    )
    acorn: bool = _option(
        True,
        "filtered dense searches use ACORN (the engine applies it to selective filters over a "
        "global graph only: not on a tenanted collection, whose global m is 0)",
    )
    shard_key: str | Any = _option(
        None,
        "Qdrant server: the custom shard key every request is routed to, or a rule tenant -> "
        "shard key (shared.tenancy.TieredShards); None: no custom sharding",
    )
    late_chunking: bool = _option(
        False,
        "late chunking: each chunk's vectors pooled from one pass over its whole document "
        "(recorded by the collection: its writers must all use it or none)",
    )
    hierarchy: Hierarchy | Mapping[str, Any] | None = _option(
        None,
        "how chunks relate (shared.hierarchy.Hierarchy or a dict of its fields: levels, and the "
        "payload keys of a chunk's level, parent id and position); None: the default keys, any level",
    )
    # -- query defaults: every query may override them ---------------------------------
    retrieval_mode: str | RetrievalMode = _option(
        _PLANNER.mode.value, "default retrieval mode: dense, sparse or hybrid"
    )
    fusion: str | FusionMethod = _option(
        _PLANNER.fusion.value, "hybrid fusion: rrf, dbsf or m3 (default chosen by benchmarks/fusion.py)"
    )
    rrf_k: int = _option(DEFAULT_RRF_K, "RRF constant")
    dense_weight: float = _option(_PLANNER.dense_weight, "dense weight in hybrid fusion")
    sparse_weight: float | None = _option(None, "sparse weight in hybrid fusion (None: per fusion)")
    bm25_weight: float | None = _option(None, "BM25 weight in hybrid fusion, with bm25 (None: per fusion)")
    candidate_k: int = _option(
        DEFAULT_CANDIDATE_K, "least candidates per side in hybrid (and the ColBERT re-rank window)"
    )
    sparse_normalization: str | SparseNormalization = _option(
        "auto",
        "m3 fusion: sparse term as is (none) or divided by the query's q.q (query); "
        "auto: none for BGE-M3, query for other sparse models",
    )
    # -- serving -----------------------------------------------------------------------
    query_batch_wait_ms: float = _option(
        DEFAULT_WAIT_MS,
        "concurrent queries' texts are encoded in one pass: the most an idle encoder waits for "
        "company once queries overlap, in ms (0: off; a lone query never waits; a model that embeds "
        "one query text at a time, such as a framework's embed_query, is never batched)",
    )
    query_batch_size: int = _option(DEFAULT_BATCH_SIZE, "most query texts encoded in one joined pass")

    def __post_init__(self) -> None:
        # Checked now, so that a typo fails at construction, not at the first query.
        self.query_defaults()
        parse_sparse_normalization(self.sparse_normalization)
        non_negative_number(self.query_batch_wait_ms, "query_batch_wait_ms")
        positive_int(self.query_batch_size, "query_batch_size")
        check_tenant(self.tenant)
        check_tenant_key(self.tenant_key)
        check_indexed_fields(self.indexed_fields)
        if not isinstance(self.acorn, bool):
            raise InvalidTypeError(f"acorn must be a bool, got {type(self.acorn).__name__}")
        key = self.shard_key
        if key is not None and not callable(key) and (not isinstance(key, str) or not key):
            raise InvalidTypeError(
                f"shard_key must be a non-empty str or a rule tenant -> shard key, got {key!r:.60}"
            )
        parse_hierarchy(self.hierarchy)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **overrides: Any) -> StoreConfig:
        """The options named in ``values`` (e.g. a constructor's ``locals()``), others at their default.

        How a constructor that lists the options as typed keywords (for IDEs and type
        checkers) builds its config without listing them a second time.
        """
        picked = {name: values[name] for name in STORE_OPTIONS if name in values}
        return cls(**{**picked, **overrides})

    def query_defaults(self) -> QueryOptions:
        """The query options every query starts from (validated)."""
        same_name = {name: getattr(self, name) for name in _QUERY_DEFAULTS}
        return resolve_options(mode=self.retrieval_mode, limit=10, offset=0, **same_name)

    def shape_from_collection(self) -> frozenset[str]:
        """Shape fields left at their default: an existing collection's own values are taken."""
        return frozenset(
            name
            for name, unspecified in (
                ("sparse", self.sparse is None),
                ("sparse_idf", not self.sparse_idf),
                ("colbert", not self.colbert),
                ("colbert_dim", not self.colbert),
                ("mrl_dim", self.mrl_dim is None),
                ("bm25", self.bm25 is False or self.bm25 is None),
            )
            if unspecified
        )

    def backend_options(self) -> BackendOptions:
        """The options the backend itself takes (engine upkeep, a server collection's replicas)."""
        return cast(BackendOptions, {name: getattr(self, name) for name in _BACKEND_OPTIONS})

    def explicit_storage(self) -> frozenset[str]:
        """Storage options given explicitly: an existing collection that differs is warned about."""
        return frozenset(
            name
            for name in ("quantization", "mrl_quantization", "on_disk", "sparse_datatype")
            if getattr(self, name) is not None
        )


#: Where the collection lives and how it is reached (not store options: they name no collection property).
CONNECTION_OPTIONS = tuple(f.name for f in fields(Connection))
_BACKEND_OPTIONS = tuple(BackendOptions.__annotations__)
#: The query defaults that are query options of the same name (``retrieval_mode`` is the query's
#: ``mode``; ``sparse_normalization`` goes to the store's ``QueryResolver``).
_QUERY_DEFAULTS = ("fusion", "rrf_k", "dense_weight", "sparse_weight", "candidate_k", "bm25_weight")
_FIELDS = {f.name: f for f in fields(StoreConfig)}
#: The names of the store options, in declaration order.
STORE_OPTIONS: tuple[str, ...] = tuple(_FIELDS)


def connection_from(values: Mapping[str, Any]) -> dict[str, Any]:
    """The connection options named in ``values`` (a constructor's ``locals()``), to pass on."""
    return {name: values[name] for name in CONNECTION_OPTIONS if name in values}


def option_default(name: str) -> Any:
    """The default of store option ``name`` (for an adapter's field or keyword)."""
    return _FIELDS[name].default


def option_doc(name: str) -> str:
    """The one-line description of store option ``name``."""
    return str(_FIELDS[name].metadata["doc"])
