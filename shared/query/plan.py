"""The query plan: a pure function from query vectors and resolved options to one engine request.

:func:`plan_query` turns validated query vectors and a resolved
:class:`~shared.query.options.QueryOptions` into a :class:`QueryPlan`, a tree of
:class:`Stage` objects that mirrors Qdrant's Query API (a stage = a query over the union of
its prefetches' results). Each backend translates the tree to its own request types and
runs it in one call. The plan decides no default (the resolver did); what each mode's
scores mean is in :mod:`shared.query.modes`. Filters are applied inside every prefetch and
at the final stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from qdrant_client import models

from ..errors import InvalidInputError, UnsupportedOperationError
from ..filters import and_filters, equals
from ..mrl import truncate
from ..schema import BM25, COLBERT, DENSE, DENSE_MRL, SPARSE, CollectionSchema
from ..types import FloatArray
from ..validation import non_negative_number, positive_int, sparse_arrays
from .groups import GroupSpec
from .modes import FusionMethod, RetrievalMode, SparseNormalization
from .options import QueryOptions

T = TypeVar("T")

__all__ = [
    "MIN_HNSW_EF",
    "MRL_FUNNEL_FACTOR",
    "DbsfFusion",
    "MmrQuery",
    "Nearest",
    "QueryKind",
    "QueryPlan",
    "RrfFusion",
    "SearchOptions",
    "SparseQuery",
    "Stage",
    "VectorRef",
    "WeightedSum",
    "bind_vectors",
    "iter_stages",
    "per_tree",
    "plan_mmr",
    "plan_query",
    "plan_template",
    "rename_vectors",
    "self_normalised",
    "sparse_query",
    "tune_filtered",
]

MIN_HNSW_EF = 128
#: The MRL funnel re-scores this many times the stage's candidates with the full vector
#: (measured on 1024-d data cut to 256-d binary: recall@10 0.94 at 1x, 0.98 at 4x).
MRL_FUNNEL_FACTOR = 4


@dataclass(frozen=True)
class SearchOptions:
    """Search parameters of one stage (None: engine default)."""

    hnsw_ef: int | None = None
    #: Brute force instead of HNSW; on a quantized vector also skips the quantized codes,
    #: so ``exact=True`` means exact float scores on every backend.
    exact: bool = False
    rescore: bool | None = None
    oversampling: float | None = None
    ignore_quantization: bool = False
    #: Sparse vectors with the IDF modifier: IDF over the points stored now. The engine's
    #: collection-wide IDF counts deleted points until a vacuum rewrites their segment
    #: (Qdrant Edge and the server); a corpus matching every point counts live ones only.
    idf_live: bool = False
    #: With ``idf_live``: the IDF corpus is the points whose payload matches these
    #: ``(key, value)`` pairs (a tenant's points: :mod:`shared.tenancy`); empty: every point.
    idf_corpus: tuple[tuple[str, str], ...] = ()
    #: Filtered HNSW search with ACORN (the engine uses it only for a selective filter).
    acorn: bool = False

    @property
    def quantization(self) -> dict[str, Any] | None:
        """The quantization search parameters as keywords, the same for every engine (None: defaults)."""
        if self.ignore_quantization:
            return {"ignore": True}
        if self.rescore is not None or self.oversampling is not None:
            return {"rescore": self.rescore, "oversampling": self.oversampling}
        return None


#: The search options of a sparse stage of a collection whose sparse vector has the IDF modifier.
LIVE_IDF = SearchOptions(idf_live=True)


@dataclass(frozen=True)
class SparseQuery:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class VectorRef:
    """A query vector of a plan by name; the plan's ``vectors`` holds its value.

    The stage tree then depends on the options only, not on the query: a store reuses one
    tree for every query with the same options and a backend translates it once.
    """

    name: str


#: The query vectors a plan can refer to, each derived from a given vector (:func:`bind_vectors`).
DENSE_LIST, MRL_HEAD, SPARSE_RAW, SPARSE_SELF, BM25_RAW, BM25_SELF, COLBERT_ROWS = (
    VectorRef("dense"),
    VectorRef("dense_mrl"),
    VectorRef("sparse"),
    VectorRef("sparse_self_normalised"),
    VectorRef("bm25"),
    VectorRef("bm25_self_normalised"),
    VectorRef("colbert"),
)


@dataclass(frozen=True)
class Nearest:
    """Score by similarity to ``vector`` on the named vector ``using``."""

    using: str
    #: A :class:`VectorRef` into the plan's vectors (or the value itself: a list of floats
    #: (dense), SparseQuery, or list of rows (colbert multivector)).
    vector: Any


@dataclass(frozen=True)
class RrfFusion:
    k: int
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DbsfFusion:
    pass


@dataclass(frozen=True)
class WeightedSum:
    """``sum_i weights[i] * score of prefetch i``; a point absent from prefetch i counts 0."""

    weights: tuple[float, ...]


@dataclass(frozen=True)
class MmrQuery:
    using: str
    vector: Any
    lambda_mult: float
    candidates_limit: int


QueryKind = Nearest | RrfFusion | DbsfFusion | WeightedSum | MmrQuery


@dataclass(frozen=True)
class Stage:
    """One stage: ``query`` over the union of the ``prefetches`` results (or the whole collection)."""

    query: QueryKind
    limit: int
    prefetches: tuple[Stage, ...] = ()
    filter: Any = None
    params: SearchOptions | None = None
    score_threshold: float | None = None


@dataclass(frozen=True)
class QueryPlan:
    """A whole query: the root stage plus the request-level options."""

    root: Stage
    offset: int = 0
    #: vector names to return with the hits (empty: none).
    with_vectors: tuple[str, ...] = ()
    #: A grouped query (:mod:`shared.query.groups`): the root ranks the hits, the backend
    #: groups them (the root's limit is where an over-fetching backend starts).
    group: GroupSpec | None = None
    #: The values of the :class:`VectorRef` s in the stages (ref name -> value: a float32 array
    #: or a checked list of numbers for a dense vector, a :class:`SparseQuery`, a list of rows
    #: for ColBERT). Not compared: plans are equal when their stages are (the vectors are the
    #: query's).
    vectors: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def vector(self, value: Any) -> Any:
        """A stage's query vector: the plan's value of a :class:`VectorRef`, else ``value``."""
        return self.vectors[value.name] if isinstance(value, VectorRef) else value


def sparse_query(
    vector: Mapping[int, float] | Any, what: str = "sparse query vector", *, checked: bool = False
) -> SparseQuery:
    """A checked sparse query (:func:`shared.validation.sparse_arrays`; zero weights dropped).

    ``checked``: ``vector`` is an encoder's output (a dict token id -> weight, checked when
    the encoder made it), taken as is.
    """
    if checked and type(vector) is dict:
        return SparseQuery(tuple(vector), tuple(vector.values()))
    indices, values = sparse_arrays(vector, what)
    return SparseQuery(tuple(indices), tuple(values))


def self_normalised(sparse: SparseQuery) -> SparseQuery:
    """``sparse`` divided by its own dot product, so ``score(d) = q . d / q . q``."""
    qq = math.fsum(v * v for v in sparse.values)
    if qq <= 0.0:
        return sparse
    return SparseQuery(sparse.indices, tuple(v / qq for v in sparse.values))


def _search_options(
    schema: CollectionSchema,
    preset_quantized: bool,
    rescore: bool | None,
    oversampling: float | None,
    opts: QueryOptions,
    stage_limit: int,
) -> SearchOptions:
    hnsw_ef = opts.hnsw_ef if opts.hnsw_ef is not None else max(MIN_HNSW_EF, 2 * stage_limit)
    if not preset_quantized:
        return SearchOptions(hnsw_ef=hnsw_ef, exact=opts.exact)
    if opts.exact:
        return SearchOptions(hnsw_ef=hnsw_ef, exact=True, ignore_quantization=True)
    return SearchOptions(
        hnsw_ef=hnsw_ef,
        exact=opts.exact,
        rescore=opts.rescore if opts.rescore is not None else rescore,
        oversampling=opts.oversampling if opts.oversampling is not None else oversampling,
    )


def _dense_stage(
    schema: CollectionSchema,
    limit: int,
    opts: QueryOptions,
    flt: Any,
    pool: int,
) -> Stage:
    """Dense retrieval of ``limit`` points: direct, or the MRL funnel when mrl_dim is set.

    ``pool``: the candidate count the funnel widens (MRL_FUNNEL_FACTOR x) unless
    ``mrl_candidates`` is given.
    """
    q = schema.quantization
    if schema.mrl_dim is None:
        return Stage(
            Nearest(DENSE, DENSE_LIST),
            limit,
            filter=flt,
            params=_search_options(schema, q.quantized, q.rescore, q.oversampling, opts, limit),
        )
    mq = schema.mrl_quantization
    # The truncated vector is a coarse proxy: the funnel hands MRL_FUNNEL_FACTOR times more
    # candidates than the stage returns to the full-vector re-score (cheap: no index search).
    wide = opts.mrl_candidates if opts.mrl_candidates is not None else MRL_FUNNEL_FACTOR * pool
    wide = max(wide, limit)
    funnel = Stage(
        Nearest(DENSE_MRL, MRL_HEAD),
        wide,
        filter=flt,
        params=_search_options(schema, mq.quantized, mq.rescore, mq.oversampling, opts, wide),
    )
    # The full-vector stage only re-scores the funnel's candidates (no index search).
    return Stage(
        Nearest(DENSE, DENSE_LIST),
        limit,
        prefetches=(funnel,),
        filter=flt,
        params=_search_options(schema, q.quantized, q.rescore, q.oversampling, opts, limit),
    )


def _sparse_params(schema: CollectionSchema, using: str = SPARSE) -> SearchOptions | None:
    # The BM25 vector always has the IDF modifier.
    return LIVE_IDF if schema.sparse_idf or using == BM25 else None


def _sparse_stage(schema: CollectionSchema, limit: int, flt: Any, using: str = SPARSE) -> Stage:
    ref = BM25_RAW if using == BM25 else SPARSE_RAW
    return Stage(Nearest(using, ref), limit, filter=flt, params=_sparse_params(schema, using))


def plan_query(
    schema: CollectionSchema,
    opts: QueryOptions,
    *,
    dense: FloatArray | list[float] | None = None,
    sparse: SparseQuery | None = None,
    colbert: FloatArray | None = None,
    bm25: SparseQuery | None = None,
) -> QueryPlan:
    """Build the one-request plan of a query (pure; vectors already validated).

    ``bm25``: the BM25 query of a collection that keeps BM25 beside its learned sparse
    vector; a hybrid query with ``opts.bm25`` fuses it as a third signal. The same as
    :func:`plan_template` for the vectors given, bound to them (:func:`bind_vectors`).
    """
    given = {"dense": dense, "sparse": sparse, "colbert": colbert, "bm25": bm25}
    template = plan_template(schema, opts, frozenset(k for k, v in given.items() if v is not None))
    return bind_vectors(template, schema, dense=dense, sparse=sparse, colbert=colbert, bm25=bm25)


def plan_template(schema: CollectionSchema, opts: QueryOptions, given: frozenset[str]) -> QueryPlan:
    """The plan of every query with options ``opts`` and the query vectors named in ``given``
    (``dense``, ``sparse``, ``colbert``, ``bm25``): its stages refer to the vectors by
    :class:`VectorRef`, so one template serves every such query (bind it to each one's
    vectors with :func:`bind_vectors`). Pure; refuses what the options cannot run."""
    flt = opts.filter
    window = opts.window
    candidates = opts.candidates
    mode = opts.mode
    if mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID) and "dense" not in given:
        raise InvalidInputError(
            f"{mode.value} retrieval needs a dense query vector (or query text and an encoder)"
        )
    if mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID) and "sparse" not in given:
        raise InvalidInputError(
            f"{mode.value} retrieval needs a sparse query vector (or query text and an encoder)"
        )
    if mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID) and not schema.has_dense:
        raise UnsupportedOperationError(f"{mode.value} retrieval: this collection stores no dense vectors")
    if mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID) and not schema.sparse:
        raise UnsupportedOperationError(f"{mode.value} retrieval: this collection stores no sparse vectors")
    with_bm25 = bool(opts.bm25) and opts.mode is RetrievalMode.HYBRID
    if with_bm25:
        if schema.bm25 is None:
            raise UnsupportedOperationError("bm25: this collection stores no BM25 vectors")
        if "bm25" not in given:
            raise InvalidInputError("hybrid retrieval with BM25 needs a BM25 query vector (or query text)")
    if opts.colbert_rerank:
        if not schema.colbert:
            raise UnsupportedOperationError("colbert_rerank: this collection stores no ColBERT vectors")
        if "colbert" not in given:
            raise InvalidInputError(
                "colbert_rerank needs ColBERT query vectors (or query text and an encoder)"
            )

    # With a ColBERT rerank the first stage hands over a candidate window, not the final page.
    first_limit = candidates if opts.colbert_rerank else window
    if opts.levels is not None:
        first = _levels_stage(schema, opts, first_limit, given)
    elif mode is RetrievalMode.DENSE:
        first = _dense_stage(schema, first_limit, opts, flt, candidates)
    elif mode is RetrievalMode.SPARSE:
        first = _sparse_stage(schema, first_limit, flt)
    else:
        first = _hybrid_stage(schema, opts, with_bm25, first_limit)

    root = first
    if opts.colbert_rerank:
        root = Stage(Nearest(COLBERT, COLBERT_ROWS), window, (first,), filter=flt)
    threshold = root.score_threshold if opts.score_threshold is None else float(opts.score_threshold)
    with_vectors = _returned_vectors(schema, opts.with_vectors)
    if opts.group_by is not None:
        # Groups are paged by the store (a group query has no offset): the page and the skipped groups.
        group = GroupSpec(opts.group_by, opts.group_size, opts.limit + opts.offset)
        root = Stage(root.query, window, root.prefetches, root.filter, root.params, threshold)
        return QueryPlan(root=root, with_vectors=with_vectors, group=group)
    # The engine applies the offset to the root only; its limit must cover the skipped hits.
    # (Rebuilt only when it changes: with no offset and no threshold the root is already that.)
    if root.limit != opts.limit or threshold != root.score_threshold:
        root = Stage(root.query, opts.limit, root.prefetches, root.filter, root.params, threshold)
    return QueryPlan(root=root, offset=opts.offset, with_vectors=with_vectors)


def bind_vectors(
    template: QueryPlan,
    schema: CollectionSchema,
    *,
    dense: FloatArray | list[float] | None = None,
    sparse: SparseQuery | None = None,
    colbert: FloatArray | None = None,
    bm25: SparseQuery | None = None,
) -> QueryPlan:
    """``template`` (:func:`plan_template`) with the values of its vector refs, each derived
    once from the given vectors. A dense value stays what the store checked: a float32 array, or
    the caller's list of numbers (a framework's query embedding, as it came); each backend hands
    it to its engine in the form that engine reads fastest."""
    values: dict[str, Any] = {}
    for name in _ref_names(template.root):
        if name == DENSE_LIST.name:
            assert dense is not None
            values[name] = dense if type(dense) is list else np.asarray(dense, dtype=np.float32)
        elif name == MRL_HEAD.name:
            assert dense is not None and schema.mrl_dim is not None
            values[name] = truncate(dense, schema.mrl_dim)
        elif name in (SPARSE_RAW.name, SPARSE_SELF.name):
            assert sparse is not None
            values[name] = sparse if name == SPARSE_RAW.name else self_normalised(sparse)
        elif name in (BM25_RAW.name, BM25_SELF.name):
            assert bm25 is not None
            values[name] = bm25 if name == BM25_RAW.name else self_normalised(bm25)
        elif name == COLBERT_ROWS.name:
            assert colbert is not None
            values[name] = np.asarray(colbert, dtype=np.float32).tolist()
        else:
            raise TypeError(f"unknown vector ref {name!r}")
    return QueryPlan(
        root=template.root,
        offset=template.offset,
        with_vectors=template.with_vectors,
        group=template.group,
        vectors=values,
    )


def per_tree(make: Callable[[Stage], T]) -> Callable[[Stage], T]:
    """``make`` computed once per stage tree: a store reuses one tree for every query with the same
    options (:meth:`shared.store.HybridStore._plan`). The last 256 trees are held, so each id stays
    its own while it is a key."""
    known: dict[int, tuple[Stage, T]] = {}

    def cached(root: Stage) -> T:
        hit = known.get(id(root))
        if hit is None or hit[0] is not root:
            if len(known) >= 256:
                known.clear()
            hit = known[id(root)] = (root, make(root))
        return hit[1]

    return cached


@per_tree
def _ref_names(root: Stage) -> tuple[str, ...]:
    """The distinct :class:`VectorRef` names in ``root``'s tree, root first."""
    refs = (getattr(stage.query, "vector", None) for stage in iter_stages(root))
    return tuple(dict.fromkeys(r.name for r in refs if isinstance(r, VectorRef)))


def _levels_stage(schema: CollectionSchema, opts: QueryOptions, limit: int, given: frozenset[str]) -> Stage:
    """A hierarchical query's first stage (:mod:`shared.hierarchy`): the query's own first
    stage once per level, under a filter on the level, fused by reciprocal rank."""
    assert opts.levels is not None and opts.level_key is not None
    branches = []
    for level in opts.levels:
        at = f"level {level!r}"
        only = replace(
            opts,
            levels=None,
            filter=and_filters(opts.filter, models.Filter(must=[equals(opts.level_key, level, at)])),
            limit=limit,
            offset=0,
            group_by=None,
            colbert_rerank=False,
            score_threshold=None,
        )
        branches.append(plan_template(schema, only, given - {"colbert"}).root)
    if len(branches) == 1:
        return branches[0]
    return Stage(RrfFusion(opts.rrf_k), limit, tuple(branches), filter=opts.filter)


def _hybrid_stage(schema: CollectionSchema, opts: QueryOptions, with_bm25: bool, limit: int) -> Stage:
    """The fusion of the dense and the sparse side (and BM25 as a third, when given)."""
    flt = opts.filter
    # Each side's own prefetch size (LlamaIndex's similarity_top_k / sparse_top_k); BM25,
    # a lexical side too, takes the sparse side's.
    n_dense, n_sparse = opts.prefetch_sizes()
    sides = [
        _dense_stage(schema, n_dense, opts, flt, n_dense),
        _sparse_stage(schema, n_sparse, flt),
    ]
    if with_bm25:
        sides.append(_sparse_stage(schema, n_sparse, flt, BM25))
    weights = opts.signal_weights
    if opts.fusion is FusionMethod.RRF:
        rrf_weights = None if all(w == 1.0 for w in weights) else weights
        return Stage(RrfFusion(opts.rrf_k, rrf_weights), limit, tuple(sides), filter=flt)
    if opts.fusion is FusionMethod.DBSF:
        if any(w != 1.0 for w in weights):
            raise UnsupportedOperationError(
                "dbsf fusion has no per-side weights in Qdrant; use fusion='rrf' or 'm3' for weights"
            )
        return Stage(DbsfFusion(), limit, tuple(sides), filter=flt)
    # m3: every candidate of the union re-scored on each side, then the weighted sum.
    union = tuple(sides)
    union_size = sum(side.limit for side in sides)  # the most points the prefetches can hold
    query = SPARSE_SELF if opts.sparse_normalization is SparseNormalization.QUERY else SPARSE_RAW
    lexical = [(SPARSE, query)]
    if with_bm25:
        bm25 = BM25_SELF if opts.bm25_normalization is SparseNormalization.QUERY else BM25_RAW
        lexical.append((BM25, bm25))
    rescored = [Stage(Nearest(DENSE, DENSE_LIST), union_size, union, filter=flt)]
    for using, ref in lexical:
        rescored.append(
            Stage(Nearest(using, ref), union_size, union, filter=flt, params=_sparse_params(schema, using))
        )
    return Stage(WeightedSum(weights), limit, tuple(rescored), filter=flt)


def plan_mmr(
    schema: CollectionSchema,
    dense: FloatArray,
    *,
    limit: int,
    fetch_k: int,
    lambda_mult: float,
    filter: Any = None,
    with_vectors: bool = False,
) -> QueryPlan:
    """Maximal marginal relevance on ``dense``: ``lambda_mult`` 1 = pure relevance, 0 = max diversity."""
    limit = positive_int(limit, "limit")
    fetch_k = positive_int(fetch_k, "fetch_k")
    lam = non_negative_number(lambda_mult, "lambda_mult")
    if lam > 1.0:
        raise InvalidInputError(f"lambda_mult must be within [0, 1], got {lam}")
    if not schema.has_dense:
        raise UnsupportedOperationError("mmr: this collection stores no dense vectors")
    candidates = max(fetch_k, limit)
    q = schema.quantization
    params = SearchOptions(
        hnsw_ef=max(MIN_HNSW_EF, 2 * candidates),
        rescore=q.rescore if q.quantized else None,
        oversampling=q.oversampling if q.quantized else None,
    )
    root = Stage(MmrQuery(DENSE, DENSE_LIST, lam, candidates), limit, filter=filter, params=params)
    return QueryPlan(
        root=root,
        with_vectors=_returned_vectors(schema, with_vectors),
        vectors={DENSE_LIST.name: np.asarray(dense, dtype=np.float32)},
    )


def _returned_vectors(schema: CollectionSchema, with_vectors: bool) -> tuple[str, ...]:
    if not with_vectors:
        return ()
    return tuple(n for n in (DENSE, SPARSE) if n in schema.vector_names)


def rename_vectors(plan: QueryPlan, name_of: Callable[[str], str]) -> QueryPlan:
    """``plan`` with every vector name mapped by ``name_of`` (a collection in another layout)."""

    def stage(s: Stage) -> Stage:
        q = s.query
        if isinstance(q, (Nearest, MmrQuery)):
            q = replace(q, using=name_of(q.using))
        return replace(s, query=q, prefetches=tuple(stage(p) for p in s.prefetches))

    return replace(plan, root=stage(plan.root), with_vectors=tuple(name_of(n) for n in plan.with_vectors))


def tune_filtered(plan: QueryPlan, *, acorn: bool, idf_corpus: tuple[tuple[str, str], ...] = ()) -> QueryPlan:
    """``plan`` (whose stages carry a filter) with the engine's filtered-search options.

    ``acorn``: every filtered HNSW stage (dense, not exact) searches with ACORN, which keeps
    a selective filter's recall. ``idf_corpus``: sparse stages with live IDF count document
    frequencies over the points matching it (one tenant's), not the whole collection.
    """

    def stage(s: Stage) -> Stage:
        params = s.params
        q = s.query
        if params is not None and s.filter is not None:
            if acorn and isinstance(q, (Nearest, MmrQuery)) and q.using != SPARSE and not params.exact:
                params = replace(params, acorn=True)
            elif idf_corpus and params.idf_live:
                params = replace(params, idf_corpus=idf_corpus)
        return replace(s, params=params, prefetches=tuple(stage(p) for p in s.prefetches))

    return replace(plan, root=stage(plan.root))


def iter_stages(stage: Stage) -> Sequence[Stage]:
    """All stages of a tree, root first."""
    out = [stage]
    for p in stage.prefetches:
        out.extend(iter_stages(p))
    return out
