"""The one query-options resolver: every default of a query is decided there, once.

Store defaults come from ``StoreConfig``; a query's own arguments win; LlamaIndex-style
sizes (``alpha``, ``dense_k``, ``sparse_k``) are widened with the query's ``candidate_k``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.config import StoreConfig
from shared.errors import InvalidInputError, InvalidTypeError
from shared.query.modes import FusionMethod, RetrievalMode
from shared.query.options import QueryOptions, QueryResolver
from shared.query.plan import plan_query, sparse_query
from shared.schema import CollectionSchema
from shared.validation import dense_vector

HYBRID_SCHEMA = CollectionSchema.build(dense_dim=4)
DENSE_ONLY = CollectionSchema.build(dense_dim=4, sparse=False)
# A sparse-only collection (complete: no dense size left to learn).
SPARSE_ONLY = replace(CollectionSchema.build(dense_dim=None, sparse=True), complete=True)


def resolver(**config: Any) -> QueryResolver:
    cfg = StoreConfig(**config)
    return QueryResolver(cfg.query_defaults(), cfg.sparse_normalization)


def resolve(r: QueryResolver, schema: CollectionSchema = HYBRID_SCHEMA, **args: Any) -> QueryOptions:
    return r.resolve(args, schema, text="q", can_encode_colbert=False)


def test_store_defaults_fill_what_a_query_leaves_out_and_the_query_wins() -> None:
    r = resolver(fusion="m3", candidate_k=40, rrf_k=7)
    opts = resolve(r)
    assert (opts.mode, opts.fusion, opts.candidate_k, opts.rrf_k) == (
        RetrievalMode.HYBRID,
        FusionMethod.M3,
        40,
        7,
    )
    assert opts.weights == (1.0, 0.3)  # m3's sparse weight when none is given
    assert opts.prefetch_sizes() == (40, 40)
    mine = resolve(r, fusion="rrf", candidate_k=3, limit=5, offset=2)
    assert (mine.fusion, mine.candidate_k, mine.weights) == (FusionMethod.RRF, 3, (1.0, 1.0))
    assert mine.prefetch_sizes() == (7, 7)  # limit + offset beats a smaller candidate_k


def test_the_default_mode_follows_the_collection_and_the_vectors_given() -> None:
    r = resolver()
    assert resolve(r).mode is RetrievalMode.HYBRID
    assert resolve(r, DENSE_ONLY).mode is RetrievalMode.DENSE
    assert resolve(r, SPARSE_ONLY).mode is RetrievalMode.SPARSE
    vectors_only = r.resolve({"dense": [1.0, 0, 0, 0]}, HYBRID_SCHEMA, text=None, can_encode_colbert=False)
    assert vectors_only.mode is RetrievalMode.DENSE
    # An explicit mode is not adapted.
    assert resolve(r, DENSE_ONLY, mode="hybrid").mode is RetrievalMode.HYBRID
    with pytest.raises(InvalidInputError, match="text or query vectors"):
        r.resolve({}, HYBRID_SCHEMA, text=None, can_encode_colbert=False)


def test_llama_sizes_are_widened_with_the_querys_own_candidate_k() -> None:
    r = resolver(candidate_k=100)
    llama = {"mode": "hybrid", "limit": 5, "dense_k": 2, "sparse_k": 1}
    assert resolve(r, **llama).prefetch_sizes() == (100, 100)
    assert resolve(r, **llama, candidate_k=3).prefetch_sizes() == (3, 3)
    assert resolve(r, **llama, candidate_k=1).prefetch_sizes() == (2, 1)
    # alpha=0 / 1: one side only, its candidates cut to the final size.
    sparse = resolve(r, **llama, alpha=0.0, candidate_k=1)
    assert (sparse.mode, sparse.limit) == (RetrievalMode.SPARSE, 1)
    dense = resolve(r, **llama, alpha=1.0, candidate_k=4)
    assert (dense.mode, dense.limit) == (RetrievalMode.DENSE, 4)
    mixed = resolve(r, **llama, alpha=0.25)
    assert mixed.weights == (0.25, 0.75)
    # An explicit prefetch size is used as is.
    assert resolve(r, **llama, candidate_k=1, dense_candidates=9).prefetch_sizes() == (9, 1)
    with pytest.raises(InvalidInputError, match="hybrid"):
        resolve(r, mode="dense", alpha=0.5)
    with pytest.raises(InvalidInputError, match="not both"):
        resolve(r, **llama, alpha=0.5, dense_weight=2.0)


def test_the_plan_reads_the_resolved_sizes() -> None:
    opts = resolve(resolver(), mode="hybrid", fusion="rrf", limit=5, dense_k=2, sparse_k=1, candidate_k=1)
    dense = dense_vector([1.0, 0.0, 0.0, 0.0], "q", 4)
    plan = plan_query(HYBRID_SCHEMA, opts, dense=dense, sparse=sparse_query({1: 1.0}))
    assert [p.limit for p in plan.root.prefetches] == [2, 1]


def test_unknown_query_arguments_are_named() -> None:
    with pytest.raises(InvalidTypeError, match="candidate_kk"):
        resolve(resolver(), candidate_kk=3)


def test_resolved_options_are_reused_only_for_the_same_call() -> None:
    """The resolution is cached per call; what may change its outcome is part of the key."""
    r = resolver(fusion="m3")
    first = resolve(r, limit=5)
    assert resolve(r, limit=5) is first  # the same call: one lookup
    # A value of another type is another call: True is refused as a limit even after limit=1.
    assert resolve(r, limit=1).limit == 1
    with pytest.raises((InvalidInputError, InvalidTypeError)):
        resolve(r, limit=True)
    # Which vectors and whether a text is given change the mode: never served from the cache.
    dense = [0.5, 0.5, 0.5, 0.5]
    alone = r.resolve({"dense": dense}, HYBRID_SCHEMA, text=None, can_encode_colbert=False)
    assert alone.mode is RetrievalMode.DENSE
    both = r.resolve({"dense": dense, "sparse": {1: 1.0}}, HYBRID_SCHEMA, text=None, can_encode_colbert=False)
    assert both.mode is RetrievalMode.HYBRID
    # Another schema resolves anew (a dense-only collection: dense mode).
    assert resolve(r, DENSE_ONLY, limit=5).mode is RetrievalMode.DENSE
    assert resolve(r, limit=5).mode is RetrievalMode.HYBRID
    # An unknown argument is refused even when its value is None and a known call was cached.
    resolve(r, limit=5)
    with pytest.raises(InvalidTypeError, match="no_such"):
        resolve(r, limit=5, no_such=None)
    # The filter is per query: each call gets its own.
    filtered = r.resolve({"limit": 5}, HYBRID_SCHEMA, text="q", can_encode_colbert=False, filter="F")
    assert filtered.filter == "F"
    assert resolve(r, limit=5).filter is None
