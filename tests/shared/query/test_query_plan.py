"""plan_query: the backend-neutral plan of one request per query."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import models

from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.query.modes import RetrievalMode, SparseNormalization
from shared.query.options import QueryOptions, resolve_options, resolve_sparse_normalization
from shared.query.plan import (
    DbsfFusion,
    MmrQuery,
    RrfFusion,
    WeightedSum,
    iter_stages,
    plan_mmr,
    plan_query,
    self_normalised,
    sparse_query,
)
from shared.schema import CollectionSchema

SCHEMA = CollectionSchema.build(dense_dim=8, quantization="int8")
MRL = CollectionSchema.build(dense_dim=8, mrl_dim=4, colbert=True, colbert_dim=4)
DENSE = np.arange(1, 9, dtype=np.float32)
SPARSE = sparse_query({3: 1.0, 1: 0.5})
FLT = models.Filter(must=[models.FieldCondition(key="metadata.a", match=models.MatchValue(value=1))])


def opts(**kw) -> QueryOptions:
    base = {
        "mode": "hybrid",
        "limit": 10,
        "offset": 0,
        "fusion": "rrf",
        "rrf_k": 60,
        "dense_weight": 1.0,
        "sparse_weight": None,
        "candidate_k": 100,
    }
    base.update(kw)
    return resolve_options(**base)


def test_hybrid_rrf_plan_shape_and_candidates() -> None:
    plan = plan_query(SCHEMA, opts(limit=30, offset=90, filter=FLT), dense=DENSE, sparse=SPARSE)
    root = plan.root
    assert isinstance(root.query, RrfFusion) and root.query.k == 60 and root.query.weights is None
    assert root.limit == 30 and plan.offset == 90
    dense_side, sparse_side = root.prefetches
    # Candidate limit >= max(limit + offset, candidate_k).
    assert dense_side.limit == sparse_side.limit == 120
    # The stages name the query vectors; the plan holds them (one tree for every such query).
    assert dense_side.query.using == "dense" and sparse_side.query.using == "sparse"  # type: ignore[union-attr]
    np.testing.assert_array_equal(plan.vector(dense_side.query.vector), DENSE)  # type: ignore[union-attr]
    assert plan.vector(sparse_side.query.vector) == SPARSE  # type: ignore[union-attr]
    # Quantization defaults of the preset, hnsw_ef scaled with the candidates.
    assert dense_side.params.rescore is True and dense_side.params.oversampling == 2.0  # type: ignore[union-attr]
    assert dense_side.params.hnsw_ef == 240  # type: ignore[union-attr]
    # The filter is applied in every stage.
    assert all(s.filter is FLT for s in iter_stages(root))


def test_rrf_weights_and_dbsf() -> None:
    plan = plan_query(SCHEMA, opts(dense_weight=2.0, sparse_weight=0.5, rrf_k=5), dense=DENSE, sparse=SPARSE)
    assert plan.root.query == RrfFusion(5, (2.0, 0.5))
    plan = plan_query(SCHEMA, opts(fusion="dbsf"), dense=DENSE, sparse=SPARSE)
    assert isinstance(plan.root.query, DbsfFusion)
    with pytest.raises(UnsupportedOperationError, match="dbsf"):
        plan_query(SCHEMA, opts(fusion="dbsf", sparse_weight=0.3), dense=DENSE, sparse=SPARSE)


def test_m3_plan_rescores_the_union_on_both_sides() -> None:
    plan = plan_query(SCHEMA, opts(fusion="m3", candidate_k=50, filter=FLT), dense=DENSE, sparse=SPARSE)
    root = plan.root
    assert root.query == WeightedSum((1.0, 0.3))
    by_dense, by_sparse = root.prefetches
    assert by_dense.query.using == "dense" and by_sparse.query.using == "sparse"  # type: ignore[union-attr]
    # Both re-score the same union of dense and sparse candidates.
    assert by_dense.prefetches == by_sparse.prefetches
    assert [p.query.using for p in by_dense.prefetches] == ["dense", "sparse"]  # type: ignore[union-attr]
    assert by_dense.limit == by_sparse.limit == 100
    assert all(s.filter is FLT for s in iter_stages(root))


def test_m3_query_normalisation_scales_only_the_rescoring_sparse_vector() -> None:
    norm = opts(fusion="m3", sparse_normalization="query")
    plan = plan_query(SCHEMA, norm, dense=DENSE, sparse=SPARSE)
    _, by_sparse = plan.root.prefetches
    qq = 1.0**2 + 0.5**2
    scaled = plan.vector(by_sparse.query.vector)  # type: ignore[union-attr]
    assert scaled.values == pytest.approx([v / qq for v in SPARSE.values])
    assert scaled.indices == SPARSE.indices
    # The candidate search keeps the raw vector (its ranking does not depend on the scale).
    assert plan.vector(by_sparse.prefetches[1].query.vector) == SPARSE  # type: ignore[union-attr]
    raw = plan_query(SCHEMA, opts(fusion="m3", sparse_normalization="none"), dense=DENSE, sparse=SPARSE)
    assert raw.vector(raw.root.prefetches[1].query.vector) == SPARSE  # type: ignore[union-attr]
    # rrf is rank-based: the option does not touch its plan.
    assert plan_query(SCHEMA, opts(sparse_normalization="query"), dense=DENSE, sparse=SPARSE) == plan_query(
        SCHEMA, opts(sparse_normalization="none"), dense=DENSE, sparse=SPARSE
    )


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("auto", "bge-m3", SparseNormalization.NONE),
        ("auto", "splade", SparseNormalization.QUERY),
        ("auto", None, SparseNormalization.QUERY),
        ("none", "splade", SparseNormalization.NONE),
        ("query", "bge-m3", SparseNormalization.QUERY),
    ],
)
def test_sparse_normalization_auto_depends_on_the_sparse_model(
    value: str, kind: str | None, expected: SparseNormalization
) -> None:
    assert resolve_sparse_normalization(value, kind) is expected


def test_self_normalised_edge_cases() -> None:
    empty = sparse_query({})
    assert self_normalised(empty) == empty
    q = sparse_query({7: 2.0})
    assert self_normalised(q).values == (0.5,)
    with pytest.raises(InvalidInputError, match="unknown sparse_normalization 'L2'"):
        resolve_sparse_normalization("L2", "splade")


def test_mrl_funnel_and_colbert_stage() -> None:
    plan = plan_query(
        MRL,
        opts(mode="dense", limit=5, candidate_k=40, colbert_rerank=True),
        dense=DENSE,
        colbert=np.ones((3, 4), dtype=np.float32),
    )
    root = plan.root
    assert root.query.using == "colbert" and root.limit == 5  # type: ignore[union-attr]
    (dense_stage,) = root.prefetches
    assert dense_stage.query.using == "dense" and dense_stage.limit == 40  # type: ignore[union-attr]
    (funnel,) = dense_stage.prefetches
    # The funnel takes 4x the candidates from the truncated vector (a coarse proxy).
    assert funnel.query.using == "dense_mrl" and funnel.limit == 160  # type: ignore[union-attr]
    head = np.asarray(plan.vector(funnel.query.vector))  # type: ignore[union-attr]
    assert head.shape == (4,) and np.linalg.norm(head) == pytest.approx(1.0)
    # MRL preset defaults (binary): rescore with oversampling 3.
    assert funnel.params.oversampling == 3.0  # type: ignore[union-attr]
    plan = plan_query(MRL, opts(mode="dense", limit=5, candidate_k=40, mrl_candidates=50), dense=DENSE)
    assert plan.root.prefetches[0].limit == 50
    with pytest.raises(InvalidInputError, match="mrl_candidates"):
        opts(mrl_candidates=0)


def test_exact_ignores_quantization_and_overrides_apply() -> None:
    plan = plan_query(SCHEMA, opts(mode="dense", exact=True), dense=DENSE)
    assert plan.root.params.exact and plan.root.params.ignore_quantization  # type: ignore[union-attr]
    plan = plan_query(SCHEMA, opts(mode="dense", rescore=False, oversampling=5.0, hnsw_ef=64), dense=DENSE)
    p = plan.root.params
    assert (p.rescore, p.oversampling, p.hnsw_ef) == (False, 5.0, 64)  # type: ignore[union-attr]


def test_score_threshold_and_vectors() -> None:
    plan = plan_query(SCHEMA, opts(score_threshold=0.5, with_vectors=True), dense=DENSE, sparse=SPARSE)
    assert plan.root.score_threshold == 0.5
    assert plan.with_vectors == ("dense", "sparse")


def test_mmr_plan() -> None:
    plan = plan_mmr(SCHEMA, DENSE, limit=4, fetch_k=20, lambda_mult=0.3, filter=FLT)
    mmr = plan.root.query
    assert isinstance(mmr, MmrQuery)
    assert (mmr.using, mmr.lambda_mult, mmr.candidates_limit) == ("dense", 0.3, 20)
    np.testing.assert_array_equal(plan.vector(mmr.vector), DENSE)
    assert plan.root.limit == 4 and plan.root.filter is FLT
    with pytest.raises(InvalidInputError, match="lambda_mult"):
        plan_mmr(SCHEMA, DENSE, limit=4, fetch_k=20, lambda_mult=1.5)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"offset": -2}, "offset"),
        ({"fusion": "sum"}, "unknown fusion"),
        ({"mode": "bm25"}, "unknown retrieval mode"),
        ({"rrf_k": -1}, "rrf_k"),
        ({"dense_weight": float("nan")}, "dense_weight"),
        ({"candidate_k": -5}, "candidate_k"),
        ({"hnsw_ef": 0}, "hnsw_ef"),
        ({"score_threshold": float("inf")}, "score_threshold"),
    ],
)
def test_bad_options(kw: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        opts(**kw)


def test_missing_vectors_and_unsupported_modes() -> None:
    with pytest.raises(InvalidInputError, match="sparse query vector"):
        plan_query(SCHEMA, opts(), dense=DENSE)
    dense_only = CollectionSchema.build(dense_dim=8, sparse=False)
    with pytest.raises(UnsupportedOperationError, match="no sparse"):
        plan_query(dense_only, opts(), dense=DENSE, sparse=SPARSE)
    with pytest.raises(UnsupportedOperationError, match="ColBERT"):
        plan_query(SCHEMA, opts(mode="dense", colbert_rerank=True), dense=DENSE, colbert=np.ones((1, 4)))
    assert opts().mode is RetrievalMode.HYBRID


def test_sparse_query_validation() -> None:
    assert sparse_query({5: 0.0, 2: 1.5}).indices == (2,)
    with pytest.raises(InvalidInputError, match="token ids"):
        sparse_query({-1: 1.0})
    with pytest.raises(InvalidInputError, match="NaN"):
        sparse_query({1: float("inf")})
