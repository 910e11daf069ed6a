"""Query options: what a query may say (:class:`QueryArgs`), and the one resolver that
makes every default decision of a query once (:class:`QueryResolver`).

The resolver turns a call's arguments plus the store's defaults (``StoreConfig``) and the
collection's schema into a frozen :class:`QueryOptions`: the mode (the store's default
adapted to what the collection and the query have), the fusion and its weights, every
candidate size (hybrid prefetches, LlamaIndex's ``alpha`` and per-side top-k's, the ColBERT
window), the ColBERT re-rank default and the sparse scale. :func:`shared.query.plan.plan_query`
only reads them; the adapters only forward arguments (they decide nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from ..validation import non_negative_number, positive_int
from .groups import DEFAULT_GROUP_SIZE, check_group_key, check_group_size
from .modes import (
    DEFAULT_CANDIDATE_K,
    DEFAULT_MMR_PREFETCH_FACTOR,
    DEFAULT_RRF_K,
    DEFAULT_SPARSE_WEIGHT,
    UNITS,
    FusionMethod,
    RetrievalMode,
    SparseNormalization,
    parse_fusion,
    parse_mode,
    parse_sparse_normalization,
)

if TYPE_CHECKING:
    from ..schema import CollectionSchema

__all__ = [
    "QUERY_ARGUMENTS",
    "QUERY_ARGUMENT_DEFAULTS",
    "SEARCH_OPTIONS",
    "QueryArgs",
    "QueryOptions",
    "QueryResolver",
    "choose_mode",
    "mmr_fetch_k",
    "resolve_options",
    "resolve_sparse_normalization",
    "side_candidates",
    "uses_dense_query",
    "weighted_hybrid",
]


@dataclass(frozen=True)
class QueryOptions:
    """Everything about a query except its vectors (already resolved to store defaults)."""

    mode: RetrievalMode = RetrievalMode.HYBRID
    limit: int = 10
    offset: int = 0
    filter: Any = None
    fusion: FusionMethod = FusionMethod.M3
    rrf_k: int = DEFAULT_RRF_K
    dense_weight: float = 1.0
    sparse_weight: float | None = None
    candidate_k: int = DEFAULT_CANDIDATE_K
    colbert_rerank: bool = False
    exact: bool = False
    hnsw_ef: int | None = None
    rescore: bool | None = None
    oversampling: float | None = None
    score_threshold: float | None = None
    with_vectors: bool = False
    #: Candidates the MRL funnel takes from ``dense_mrl`` (None: MRL_FUNNEL_FACTOR x the candidates).
    mrl_candidates: int | None = None
    #: Hybrid only: size of the dense / sparse prefetch (None: :meth:`prefetch_sizes` decides).
    dense_candidates: int | None = None
    sparse_candidates: int | None = None
    #: m3 only: the sparse term's scale (resolved: NONE or QUERY; AUTO is treated as NONE).
    sparse_normalization: SparseNormalization = SparseNormalization.NONE
    #: Hybrid only: whether BM25 is fused as a third signal (the collection keeps a BM25
    #: vector beside the learned sparse one, and there is a query text to weight).
    bm25: bool = False
    #: Its weight (None: the sparse side's default for the fusion) and, for m3, its scale.
    bm25_weight: float | None = None
    bm25_normalization: SparseNormalization = SparseNormalization.QUERY
    #: Grouped query (:mod:`shared.query.groups`): the payload key whose value makes a group
    #: (None: not grouped); ``limit`` / ``offset`` then count groups of ``group_size`` hits.
    group_by: str | None = None
    group_size: int = DEFAULT_GROUP_SIZE
    #: Hierarchical collections (:mod:`shared.hierarchy`): the levels searched, one prefetch
    #: each under a filter on ``level_key`` (the store's payload key), fused by RRF.
    levels: tuple[str, ...] | None = None
    level_key: str | None = None
    #: ``chunk``: the best chunks; ``parent``: their parents.
    unit: str = "chunk"
    #: Context read with the hits: this many chunks on each side, and the parent's record.
    context_window: int = 0
    with_parent: bool = False

    @property
    def window(self) -> int:
        """Hits the engine has to rank: the page plus the ones the offset skips (a grouped
        query: as many hits as the groups of the page and the offset hold at most)."""
        n = self.limit + self.offset
        return n if self.group_by is None else n * self.group_size

    @property
    def candidates(self) -> int:
        """Candidates a first stage hands on (to fusion, to a ColBERT re-rank)."""
        return side_candidates(self.window, self.candidate_k)

    def prefetch_sizes(self) -> tuple[int, int]:
        """Hybrid: the dense and the sparse prefetch sizes (a given size is used as is)."""
        n = self.candidates
        return (
            self.dense_candidates if self.dense_candidates is not None else n,
            self.sparse_candidates if self.sparse_candidates is not None else n,
        )

    @property
    def weights(self) -> tuple[float, float]:
        """Hybrid: the dense and the sparse weight (the sparse one per fusion unless given)."""
        sparse = self.sparse_weight if self.sparse_weight is not None else DEFAULT_SPARSE_WEIGHT[self.fusion]
        return self.dense_weight, sparse

    @property
    def signal_weights(self) -> tuple[float, ...]:
        """Hybrid: the weight of each fused signal: dense, sparse, then BM25 when :attr:`bm25`
        (a lexical signal like the sparse one: the same default per fusion unless given)."""
        if not self.bm25:
            return self.weights
        lexical = self.bm25_weight if self.bm25_weight is not None else DEFAULT_SPARSE_WEIGHT[self.fusion]
        return (*self.weights, lexical)


def side_candidates(k: int, candidate_k: int) -> int:
    """Candidates one side of a hybrid query fetches for ``k`` wanted hits: at least
    ``candidate_k``, since fusing a handful per side throws away most of what hybrid adds."""
    return max(k, candidate_k)


def resolve_options(
    *,
    mode: str | RetrievalMode,
    limit: Any,
    offset: Any,
    fusion: str | FusionMethod,
    rrf_k: Any,
    dense_weight: Any,
    sparse_weight: Any,
    candidate_k: Any,
    **rest: Any,
) -> QueryOptions:
    """Validate the raw query arguments into :class:`QueryOptions`."""
    limit = positive_int(limit, "limit")
    if not isinstance(offset, (int, np.integer)) or isinstance(offset, bool):
        raise InvalidTypeError(f"offset must be an int, got {type(offset).__name__}")
    if offset < 0:
        raise InvalidInputError(f"offset must be >= 0, got {offset}")
    if not isinstance(rrf_k, (int, np.integer)) or isinstance(rrf_k, bool) or rrf_k < 0:
        raise InvalidInputError(f"rrf_k must be an int >= 0, got {rrf_k!r}")
    fusion_m = parse_fusion(fusion)
    sw = None if sparse_weight is None else non_negative_number(sparse_weight, "sparse_weight")
    if rest.get("bm25_weight") is not None:
        rest["bm25_weight"] = non_negative_number(rest["bm25_weight"], "bm25_weight")
    if rest.get("hnsw_ef") is not None:
        rest["hnsw_ef"] = positive_int(rest["hnsw_ef"], "hnsw_ef")
    for name in ("sparse_normalization", "bm25_normalization"):
        if name in rest:
            rest[name] = parse_sparse_normalization(rest[name])
    for name in ("mrl_candidates", "dense_candidates", "sparse_candidates"):
        if rest.get(name) is not None:
            rest[name] = positive_int(rest[name], name)
    if rest.get("oversampling") is not None:
        ov = non_negative_number(rest["oversampling"], "oversampling")
        if ov < 1.0:
            raise InvalidInputError(f"oversampling must be >= 1, got {ov}")
        rest["oversampling"] = ov
    _hierarchy_options(rest)
    # unit="parent" is a query grouped by the parent key (the store names it).
    grouped = rest.get("group_by") is not None or rest.get("unit") == "parent"
    if rest.get("group_by") is not None:
        rest["group_by"] = check_group_key(rest["group_by"])
    size = rest.get("group_size")
    if size is None:
        rest.pop("group_size", None)
    elif grouped:
        rest["group_size"] = check_group_size(size)
    else:
        raise InvalidInputError("group_size needs group_by (the payload key whose value makes a group)")
    st = rest.get("score_threshold")
    if st is not None and not (isinstance(st, (int, float)) and math.isfinite(float(st))):
        raise InvalidInputError(f"score_threshold must be a finite number, got {st!r}")
    return QueryOptions(
        mode=parse_mode(mode),
        limit=limit,
        offset=int(offset),
        fusion=fusion_m,
        rrf_k=int(rrf_k),
        dense_weight=non_negative_number(dense_weight, "dense_weight"),
        sparse_weight=sw,
        candidate_k=positive_int(candidate_k, "candidate_k"),
        **rest,
    )


def _hierarchy_options(rest: dict[str, Any]) -> None:
    """Check the hierarchy options of :func:`resolve_options` in place (:mod:`shared.hierarchy`)."""
    levels = rest.get("levels")
    if levels is not None:
        if isinstance(levels, str) or not isinstance(levels, (list, tuple)):
            raise InvalidTypeError(f"levels must be a list of level names, got {levels!r}")
        if not levels or any(not isinstance(v, str) or not v for v in levels):
            raise InvalidInputError(f"levels must be a non-empty list of level names, got {levels!r}")
        rest["levels"] = tuple(dict.fromkeys(levels))
    unit = rest.get("unit")
    if unit is not None and unit not in UNITS:
        raise InvalidInputError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    window = rest.get("context_window")
    if window is not None:
        if not isinstance(window, (int, np.integer)) or isinstance(window, bool):
            raise InvalidTypeError(f"context_window must be an int, got {type(window).__name__}")
        if window < 0:
            raise InvalidInputError(f"context_window must be >= 0, got {window}")
        rest["context_window"] = int(window)
    for name in ("unit", "context_window", "with_parent", "levels", "level_key"):
        if rest.get(name) is None:
            rest.pop(name, None)
    if "with_parent" in rest:
        rest["with_parent"] = bool(rest["with_parent"])


class QueryArgs(TypedDict, total=False):
    """The keyword arguments of ``HybridStore.query`` / ``aquery`` (all optional).

    ``None`` (or leaving one out) means the store's default for it. Validated into
    :class:`QueryOptions` by the store; the adapters take their allowed search
    keywords from here (:data:`SEARCH_OPTIONS`).
    """

    dense: Any
    sparse: Mapping[int, float] | None
    colbert: Any
    mode: str | RetrievalMode | None
    limit: int
    offset: int
    filter: Any
    fusion: str | FusionMethod | None
    rrf_k: int | None
    dense_weight: float | None
    sparse_weight: float | None
    bm25_weight: float | None
    candidate_k: int | None
    colbert_rerank: bool | None
    exact: bool
    hnsw_ef: int | None
    rescore: bool | None
    oversampling: float | None
    score_threshold: float | None
    with_vectors: bool
    mrl_candidates: int | None
    dense_candidates: int | None
    sparse_candidates: int | None
    sparse_normalization: str | SparseNormalization | None
    #: Hybrid queries in LlamaIndex's terms (its adapter maps ``VectorStoreQuery`` onto these):
    #: ``alpha`` the dense share (0 sparse only, 1 dense only, else weights alpha / 1 - alpha);
    #: ``dense_k`` / ``sparse_k`` the hits each side contributes, widened to ``candidate_k``.
    alpha: float | None
    dense_k: int | None
    sparse_k: int | None
    #: One hit per document (:mod:`shared.query.groups`): group the hits by this payload key
    #: (``ref_doc_id``, ``metadata.<key>``); ``limit`` / ``offset`` count groups, each of
    #: at most ``group_size`` hits (default 1).
    group_by: str | None
    group_size: int | None
    #: Hierarchical collections (:mod:`shared.hierarchy`): search these levels (one prefetch
    #: each, fused by RRF); return ``unit`` "chunk" (default) or "parent" (the best chunks'
    #: parents); with each hit, ``context_window`` chunks on each side and ``with_parent``
    #: its parent's record.
    levels: Sequence[str] | None
    unit: str | None
    context_window: int | None
    with_parent: bool | None


#: The long-document options (:mod:`shared.query.groups`, :mod:`shared.hierarchy`).
LONG_DOCUMENT_ARGS: tuple[str, ...] = (
    "group_by",
    "group_size",
    "levels",
    "unit",
    "context_window",
    "with_parent",
)
#: Every keyword ``HybridStore.query`` takes besides the query text.
QUERY_ARGUMENTS: frozenset[str] = frozenset(QueryArgs.__annotations__)
#: The search options a framework passes through untouched: everything but the query
#: vectors, the mode, the page size, the filter and returned vectors, which each adapter
#: maps from its own framework's arguments.
SEARCH_OPTIONS: frozenset[str] = QUERY_ARGUMENTS - {
    "dense",
    "sparse",
    "colbert",
    "mode",
    "limit",
    "filter",
    "with_vectors",
    "alpha",
    "dense_k",
    "sparse_k",
}
#: Arguments whose value differs per query; the options depend only on whether each is given
#: (the filter arrives checked, apart).
_PER_QUERY_VALUES: tuple[str, ...] = ("dense", "sparse", "colbert", "filter")
#: Defaults of the per-call arguments that are not "the store's default" (None).
QUERY_ARGUMENT_DEFAULTS: Mapping[str, Any] = {"limit": 10, "offset": 0, "exact": False, "with_vectors": False}


class QueryResolver:
    """A store's query defaults, and the one place every default of a query is decided.

    :meth:`resolve` is called once per query; the validation of the argument values is
    cached per distinct arguments (it is pure, and measurable per query).
    """

    def __init__(self, defaults: QueryOptions, sparse_normalization: str | SparseNormalization) -> None:
        self.defaults = defaults
        self._sparse_normalization = parse_sparse_normalization(sparse_normalization)
        # Resolved options per distinct call (argument values and types, which vectors and
        # text are given), for the schema they were resolved against: one lookup per query.
        self._cache: dict[tuple[Any, ...], QueryOptions] = {}
        self._cache_schema: CollectionSchema | None = None

    def resolve(
        self,
        args: Mapping[str, Any],
        schema: CollectionSchema,
        *,
        text: str | None,
        can_encode_colbert: bool,
        filter: Any = None,
    ) -> QueryOptions:
        """``args`` (:class:`QueryArgs`) validated, with the store's defaults where left out or None.

        ``text``: the query text (None: vectors only); ``can_encode_colbert``: whether the
        store's encoder makes ColBERT query vectors; ``filter``: the checked engine filter.
        The result depends on the vectors and the text only through whether they are given,
        so it is cached per distinct call (the resolution is pure; a schema change clears it).
        """
        if schema is not self._cache_schema:
            self._cache.clear()
            self._cache_schema = schema
        key: tuple[Any, ...] | None
        try:
            # Types are part of the key: 1 == True == 1.0, but only one of them is a valid limit.
            key = (
                text is None,
                can_encode_colbert,
                *[(k, v, type(v)) for k, v in args.items() if k not in _PER_QUERY_VALUES],
                *[k for k in _PER_QUERY_VALUES if args.get(k) is not None],
            )
            opts = self._cache.get(key)
        except TypeError:  # an unhashable argument (a list): resolved every time
            key, opts = None, None
        if opts is None:
            opts = self._resolve(args, schema, text, can_encode_colbert)
            if key is not None:
                if len(self._cache) >= 256:
                    self._cache.clear()
                self._cache[key] = opts
        return opts if filter is None else replace(opts, filter=filter)

    def _resolve(
        self, args: Mapping[str, Any], schema: CollectionSchema, text: str | None, can_encode_colbert: bool
    ) -> QueryOptions:
        unknown = sorted(set(args) - QUERY_ARGUMENTS)
        if unknown:
            raise InvalidTypeError(f"unknown query arguments {unknown}; known: {sorted(QUERY_ARGUMENTS)}")
        a = {**QUERY_ARGUMENT_DEFAULTS, **{k: v for k, v in args.items() if v is not None}}
        d = self.defaults
        mode = a.get("mode")
        if mode is None:
            mode = self.default_mode(text, a.get("dense"), a.get("sparse"), schema)
        # LlamaIndex's terms (None when none is given), sized with this query's candidate_k.
        weighted = None
        if "alpha" in a or "dense_k" in a or "sparse_k" in a:
            weights_given = "dense_weight" in a or "sparse_weight" in a or "bm25_weight" in a
            weighted = (a.get("alpha"), a.get("dense_k"), a.get("sparse_k"), weights_given)
        opts = _checked(
            weighted,
            mode=mode,
            limit=a["limit"],
            offset=a["offset"],
            fusion=a.get("fusion", d.fusion),
            rrf_k=a.get("rrf_k", d.rrf_k),
            dense_weight=a.get("dense_weight", d.dense_weight),
            sparse_weight=a.get("sparse_weight", d.sparse_weight),
            bm25_weight=a.get("bm25_weight", d.bm25_weight),
            candidate_k=a.get("candidate_k", d.candidate_k),
            colbert_rerank=self.default_rerank(
                a.get("colbert_rerank"), schema, text, a.get("colbert"), can_encode_colbert
            ),
            exact=bool(a["exact"]),
            hnsw_ef=a.get("hnsw_ef"),
            rescore=a.get("rescore"),
            oversampling=a.get("oversampling"),
            score_threshold=a.get("score_threshold"),
            with_vectors=bool(a["with_vectors"]),
            mrl_candidates=a.get("mrl_candidates"),
            dense_candidates=a.get("dense_candidates"),
            sparse_candidates=a.get("sparse_candidates"),
            # Only when given: most queries have none, and each value is part of the cache key.
            **(
                {}
                if a.keys().isdisjoint(LONG_DOCUMENT_ARGS)
                else {k: a[k] for k in LONG_DOCUMENT_ARGS if k in a}
            ),
            sparse_normalization=resolve_sparse_normalization(
                a.get("sparse_normalization", self._sparse_normalization),
                schema.identity.sparse_kind if schema.identity is not None else None,
            ),
            # BM25 beside the learned sparse vector: fused in hybrid queries that have a text
            # to weight (a query of vectors only fuses what it gives).
            bm25=schema.bm25 is not None and mode == RetrievalMode.HYBRID and text is not None,
            bm25_normalization=resolve_sparse_normalization(
                a.get("sparse_normalization", self._sparse_normalization), "bm25"
            ),
        )
        return opts

    def default_mode(self, text: Any, dense: Any, sparse: Any, schema: CollectionSchema) -> RetrievalMode:
        """A query's mode when none is given: what the vectors given without text allow, else
        the store's default, a hybrid default adapted to what the collection stores."""
        if text is None:
            if dense is None and sparse is None:
                raise InvalidInputError("query needs text or query vectors (dense=/sparse=)")
            if sparse is None:
                return RetrievalMode.DENSE
            if dense is None:
                return RetrievalMode.SPARSE
        mode = self.defaults.mode
        if mode is RetrievalMode.HYBRID:
            # The store default adapts (an explicit mode= does not); a size not yet known
            # (no add yet) may still be dense.
            return choose_mode(
                None, has_dense=schema.has_dense or not schema.complete, has_sparse=bool(schema.sparse)
            )
        return mode

    @staticmethod
    def default_rerank(
        rerank: Any, schema: CollectionSchema, text: Any, colbert: Any, can_encode_colbert: bool
    ) -> bool:
        """ColBERT rerank by default on a ColBERT collection when query ColBERT vectors are at hand."""
        if rerank is not None:
            return bool(rerank)
        if not schema.colbert:
            return False
        return colbert is not None or (text is not None and can_encode_colbert)


def _checked(weighted: tuple[Any, ...] | None, **kwargs: Any) -> QueryOptions:
    """:func:`resolve_options` (then :func:`_weighted` for LlamaIndex's terms)."""
    opts = resolve_options(**kwargs)
    return opts if weighted is None else _weighted(opts, *weighted)


def _weighted(
    opts: QueryOptions, alpha: Any, dense_k: Any, sparse_k: Any, weights_given: bool
) -> QueryOptions:
    """``opts`` sized and weighed the LlamaIndex way (:func:`weighted_hybrid`), with this
    query's ``candidate_k``; an explicit ``dense_candidates`` / ``sparse_candidates`` wins."""
    if opts.mode is not RetrievalMode.HYBRID:
        raise InvalidInputError(f"alpha, dense_k and sparse_k apply to hybrid queries, not {opts.mode.value}")
    w = weighted_hybrid(
        alpha,
        limit=opts.limit,
        dense_k=opts.window if dense_k is None else dense_k,
        sparse_k=opts.window if sparse_k is None else sparse_k,
        candidate_k=opts.candidate_k,
        fusion=opts.fusion,
        weights_given=weights_given,
    )
    if opts.dense_candidates is not None:
        w.pop("dense_candidates", None)
    if opts.sparse_candidates is not None:
        w.pop("sparse_candidates", None)
    return replace(opts, **w)


def resolve_sparse_normalization(
    value: str | SparseNormalization, sparse_kind: str | None
) -> SparseNormalization:
    """``auto`` -> ``none`` for BGE-M3 lexical weights (the paper's weights assume their
    scale), ``query`` for any other or unknown sparse model; other values as given."""
    norm = parse_sparse_normalization(value)
    if norm is SparseNormalization.AUTO:
        return SparseNormalization.NONE if sparse_kind == "bge-m3" else SparseNormalization.QUERY
    return norm


def choose_mode(requested: str | RetrievalMode | None, *, has_dense: bool, has_sparse: bool) -> RetrievalMode:
    """A store's default retrieval mode from the vectors its models make.

    ``requested`` (checked against those models), else hybrid when there are dense and
    sparse vectors, else the one kind there is.
    """
    if requested is None:
        if has_dense and has_sparse:
            return RetrievalMode.HYBRID
        return RetrievalMode.DENSE if has_dense else RetrievalMode.SPARSE
    mode = parse_mode(requested)
    if mode is not RetrievalMode.SPARSE and not has_dense:
        raise InvalidInputError(
            f"retrieval_mode {mode.value!r} needs dense vectors, but no dense model was given"
        )
    if mode is not RetrievalMode.DENSE and not has_sparse:
        raise InvalidInputError(
            f"retrieval_mode {mode.value!r} needs sparse vectors: give a sparse model "
            "(e.g. the sparse embedding class, or a BGE-M3 model: its sparse output comes with the dense)"
        )
    return mode


def uses_dense_query(mode: str | RetrievalMode, alpha: float | None = None) -> bool:
    """Whether a query in ``mode`` searches with a dense query vector.

    Dense and hybrid queries do, except a hybrid query weighed all to sparse
    (``alpha=0``, see :func:`weighted_hybrid`).
    """
    m = parse_mode(mode)
    return m is RetrievalMode.DENSE or (m is RetrievalMode.HYBRID and alpha != 0.0)


def weighted_hybrid(
    alpha: float | None,
    *,
    limit: int,
    dense_k: int,
    sparse_k: int,
    candidate_k: int,
    fusion: str | FusionMethod,
    weights_given: bool,
) -> dict[str, Any]:
    """Mode, limit, weights and prefetch sizes of a hybrid query in LlamaIndex's terms (``alpha``,
    per-side ``dense_k`` / ``sparse_k``), as :class:`QueryResolver` applies them.

    ``alpha`` is the dense share: 0 is sparse only and 1 dense only, exactly (that
    side's ``dense_k``/``sparse_k`` candidates cut to ``limit``); in between the fused
    weights are ``alpha`` / ``1 - alpha``; None keeps the store's weights. Each side
    fetches ``max(its k, candidate_k)`` candidates: fusing a handful of candidates per
    side throws away most of what hybrid adds (``candidate_k=1`` gives the exact sizes).
    """
    limit = positive_int(limit, "limit")
    dense_candidates = side_candidates(positive_int(dense_k, "dense_k"), candidate_k)
    sparse_candidates = side_candidates(positive_int(sparse_k, "sparse_k"), candidate_k)
    sizes = {"dense_candidates": dense_candidates, "sparse_candidates": sparse_candidates}
    if alpha is None:
        return {"mode": RetrievalMode.HYBRID, "limit": limit, **sizes}
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise InvalidInputError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if weights_given:
        raise InvalidInputError("give either alpha or dense_weight/sparse_weight, not both")
    alpha = float(alpha)
    if alpha == 0.0:
        return {"mode": RetrievalMode.SPARSE, "limit": min(limit, sparse_candidates)}
    if alpha == 1.0:
        return {"mode": RetrievalMode.DENSE, "limit": min(limit, dense_candidates)}
    if parse_fusion(fusion) is FusionMethod.DBSF:
        raise UnsupportedOperationError(
            f"alpha={alpha} needs per-side weights, which dbsf fusion does not have; use rrf or m3"
        )
    return {
        "mode": RetrievalMode.HYBRID,
        "limit": limit,
        "dense_weight": alpha,
        # The lexical share goes to each lexical signal (the sparse one, and BM25 beside it).
        "sparse_weight": 1.0 - alpha,
        "bm25_weight": 1.0 - alpha,
        **sizes,
    }


def mmr_fetch_k(limit: int, *, prefetch_k: Any = None, prefetch_factor: Any = None) -> int:
    """Dense candidates an MMR query diversifies: ``prefetch_k``, else ``limit x prefetch_factor``."""
    limit = positive_int(limit, "limit")
    if prefetch_k is not None:
        return positive_int(prefetch_k, "mmr_prefetch_k")
    factor = DEFAULT_MMR_PREFETCH_FACTOR if prefetch_factor is None else prefetch_factor
    factor = non_negative_number(factor, "mmr_prefetch_factor")
    return max(limit, math.ceil(limit * factor))
