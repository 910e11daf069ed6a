"""Per-side hybrid candidate counts (``dense_candidates`` / ``sparse_candidates``): the plan,
the prefetch sizes the engine really uses on both backends (embedded Qdrant Edge and
qdrant-client local mode), and LlamaIndex's similarity_top_k / sparse_top_k / hybrid_top_k.

The corpus makes the fused result set predictable: point ``p{i}`` is the i-th best by
the dense query and the (N-1-i)-th best by the sparse query, so a hybrid query whose
final limit exceeds both prefetches returns exactly top-``dense`` dense points plus
top-``sparse`` sparse points.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import QueryBundle, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from qdrant_client import QdrantClient

from llama_index_ext import HybridQdrantRetriever, HybridQdrantVectorStore
from shared.errors import InvalidInputError, InvalidTypeError
from shared.query.options import resolve_options
from shared.query.plan import Nearest, RrfFusion, WeightedSum, plan_query, sparse_query
from shared.schema import CollectionSchema
from shared.store import HybridStore
from shared.types import Record
from tests.shared.test_store_scroll import WordCounts

DIM = 8
N = 12
TOKEN = 7
QUERY_DENSE = [1.0] + [0.0] * (DIM - 1)
QUERY_SPARSE = {TOKEN: 1.0}


def dense_vec(i: int) -> list[float]:
    # Cosine with QUERY_DENSE is cos(0.1 * i): strictly decreasing with i.
    return [math.cos(0.1 * i), math.sin(0.1 * i)] + [0.0] * (DIM - 2)


def corpus() -> list[Record]:
    # Sparse score with QUERY_SPARSE is i + 1: strictly increasing with i.
    return [
        Record(id=f"p{i}", dense=dense_vec(i), sparse={TOKEN: float(i + 1), 100 + i: 1.0}) for i in range(N)
    ]


def top_dense(k: int) -> set[str]:
    return {f"p{i}" for i in range(k)}


def top_sparse(k: int) -> set[str]:
    return {f"p{N - 1 - i}" for i in range(k)}


BACKENDS = ["edge", "local"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=[None, 4], ids=["plain", "mrl"])
def store(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HybridStore]:
    kwargs: dict[str, Any] = {"dense_dim": DIM, "sparse": True, "mrl_dim": request.param, "candidate_k": 100}
    if backend == "edge":
        s = HybridStore("cands", path=tmp_path_factory.mktemp("cands"), **kwargs)
    else:
        s = HybridStore("cands", client=QdrantClient(":memory:"), **kwargs)
    with s:
        s.add(corpus())
        yield s


def ids(hits: Any) -> set[str]:
    return {h.id for h in hits}


# -- the plan ----------------------------------------------------------------------------------


def opts(**kw: Any) -> Any:
    base: dict[str, Any] = {"mode": "hybrid", "limit": 10, "offset": 0, "fusion": "rrf", "rrf_k": 60}
    base.update({"dense_weight": 1.0, "sparse_weight": None, "candidate_k": 100})
    base.update(kw)
    return resolve_options(**base)


PLAIN = CollectionSchema.build(dense_dim=DIM, sparse=True)
MRL = CollectionSchema.build(dense_dim=DIM, sparse=True, mrl_dim=4)
DENSE = np.asarray(dense_vec(0), dtype=np.float32)
SPARSE = sparse_query(QUERY_SPARSE)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_plan_gives_each_side_its_own_prefetch_size(fusion: str) -> None:
    plan = plan_query(
        PLAIN, opts(fusion=fusion, dense_candidates=7, sparse_candidates=3), dense=DENSE, sparse=SPARSE
    )
    dense_side, sparse_side = plan.root.prefetches
    assert (dense_side.query.using, dense_side.limit) == ("dense", 7)  # type: ignore[union-attr]
    assert (sparse_side.query.using, sparse_side.limit) == ("sparse", 3)  # type: ignore[union-attr]
    assert plan.root.limit == 10
    assert dense_side.params.hnsw_ef == 128  # type: ignore[union-attr]  # max(128, 2 x 7)
    # One side given: the other keeps max(limit + offset, candidate_k).
    plan = plan_query(PLAIN, opts(limit=5, offset=200, sparse_candidates=3), dense=DENSE, sparse=SPARSE)
    assert [p.limit for p in plan.root.prefetches] == [205, 3]
    plan = plan_query(PLAIN, opts(), dense=DENSE, sparse=SPARSE)
    assert [p.limit for p in plan.root.prefetches] == [100, 100]


def test_plan_m3_rescores_the_union_of_the_two_sizes() -> None:
    plan = plan_query(
        PLAIN, opts(fusion="m3", dense_candidates=7, sparse_candidates=3), dense=DENSE, sparse=SPARSE
    )
    assert isinstance(plan.root.query, WeightedSum)
    by_dense, by_sparse = plan.root.prefetches
    # Each re-score stage covers the whole union: at most 7 + 3 points.
    assert by_dense.limit == by_sparse.limit == 10
    for stage in (by_dense, by_sparse):
        dense_side, sparse_side = stage.prefetches
        assert (dense_side.limit, sparse_side.limit) == (7, 3)


def test_plan_mrl_funnel_follows_the_dense_side() -> None:
    plan = plan_query(MRL, opts(dense_candidates=6, sparse_candidates=2), dense=DENSE, sparse=SPARSE)
    dense_side, sparse_side = plan.root.prefetches
    assert (dense_side.query.using, dense_side.limit, sparse_side.limit) == ("dense", 6, 2)  # type: ignore[union-attr]
    (funnel,) = dense_side.prefetches
    assert (funnel.query.using, funnel.limit) == ("dense_mrl", 24)  # type: ignore[union-attr]  # 4 x 6
    plan = plan_query(MRL, opts(dense_candidates=6, mrl_candidates=9), dense=DENSE, sparse=SPARSE)
    assert plan.root.prefetches[0].prefetches[0].limit == 9
    # Dense mode keeps its funnel over max(limit, candidate_k).
    plan = plan_query(MRL, opts(mode="dense", limit=5, candidate_k=40, dense_candidates=2), dense=DENSE)
    assert plan.root.limit == 5 and plan.root.prefetches[0].limit == 160


def test_plan_colbert_rerank_keeps_its_window() -> None:
    schema = CollectionSchema.build(dense_dim=DIM, sparse=True, colbert=True, colbert_dim=4)
    colbert = np.ones((2, 4), dtype=np.float32)
    o = opts(limit=3, candidate_k=30, dense_candidates=5, sparse_candidates=4, colbert_rerank=True)
    plan = plan_query(schema, o, dense=DENSE, sparse=SPARSE, colbert=colbert)
    assert (
        isinstance(plan.root.query, Nearest) and plan.root.query.using == "colbert" and plan.root.limit == 3
    )
    (fused,) = plan.root.prefetches
    assert isinstance(fused.query, RrfFusion) and fused.limit == 30
    assert [p.limit for p in fused.prefetches] == [5, 4]


@pytest.mark.parametrize("name", ["dense_candidates", "sparse_candidates"])
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, InvalidInputError),
        (-3, InvalidInputError),
        ("5", InvalidTypeError),
        (True, InvalidTypeError),
        (2.0, InvalidTypeError),
    ],
)
def test_bad_candidate_counts_are_refused(name: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        opts(**{name: value})
    with HybridStore(dense_dim=DIM, sparse=True) as s:
        s.add(corpus()[:2])
        with pytest.raises(error, match=name):
            s.query(dense=QUERY_DENSE, sparse=QUERY_SPARSE, **{name: value})


# -- the engine uses them ---------------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["rrf", "dbsf", "m3"])
@pytest.mark.parametrize(("n_dense", "n_sparse"), [(3, 2), (1, 5), (6, 1), (12, 12)])
def test_fused_set_is_the_union_of_the_two_prefetches(
    store: HybridStore, fusion: str, n_dense: int, n_sparse: int
) -> None:
    hits = store.query(
        dense=QUERY_DENSE,
        sparse=QUERY_SPARSE,
        limit=N,
        fusion=fusion,
        dense_candidates=n_dense,
        sparse_candidates=n_sparse,
        exact=True,
    )
    assert ids(hits) == top_dense(n_dense) | top_sparse(n_sparse)
    assert len(hits) == len(top_dense(n_dense) | top_sparse(n_sparse))


def test_a_smaller_sparse_side_drops_exactly_the_sparse_only_points(store: HybridStore) -> None:
    def run(**kw: Any) -> set[str]:
        return ids(store.query(dense=QUERY_DENSE, sparse=QUERY_SPARSE, limit=N, exact=True, **kw))

    # The default per side is max(limit + offset, candidate_k): 12 here, every point.
    assert run(candidate_k=3) == top_dense(N)
    wide, narrow = run(dense_candidates=3, sparse_candidates=4), run(dense_candidates=3, sparse_candidates=1)
    assert wide - narrow == {"p10", "p9", "p8"}
    # Given sizes are used as is, even with the store's candidate_k=100 and a larger limit.
    assert run(dense_candidates=2, sparse_candidates=2) == {"p0", "p1", "p10", "p11"}


def test_the_final_limit_and_offset_apply_to_the_fused_list(store: HybridStore) -> None:
    kw: dict[str, Any] = {"dense": QUERY_DENSE, "sparse": QUERY_SPARSE, "fusion": "m3", "exact": True}
    full = store.query(limit=N, dense_candidates=4, sparse_candidates=3, **kw)
    assert len(full) == 7
    page = store.query(limit=3, offset=2, dense_candidates=4, sparse_candidates=3, **kw)
    assert [h.id for h in page] == [h.id for h in full[2:5]]


def test_single_side_modes_ignore_the_other_counts(store: HybridStore) -> None:
    dense = store.query(dense=QUERY_DENSE, mode="dense", limit=5, sparse_candidates=1, dense_candidates=1)
    assert [h.id for h in dense] == [f"p{i}" for i in range(5)]
    sparse = store.query(sparse=QUERY_SPARSE, mode="sparse", limit=4, dense_candidates=1, sparse_candidates=1)
    assert [h.id for h in sparse] == ["p11", "p10", "p9", "p8"]


async def test_async_query_carries_the_counts(store: HybridStore) -> None:
    hits = await store.aquery(
        dense=QUERY_DENSE, sparse=QUERY_SPARSE, limit=N, dense_candidates=2, sparse_candidates=3, exact=True
    )
    assert ids(hits) == top_dense(2) | top_sparse(3)


# -- LlamaIndex: similarity_top_k / sparse_top_k / hybrid_top_k as its own Qdrant store ----------


def node(i: int) -> TextNode:
    # WordCounts gives "zebra" the weight i + 1: the sparse ranking is the reverse of the dense one.
    return TextNode(id_=f"p{i}", text=" ".join(["zebra"] * (i + 1) + [f"w{i}"]), embedding=dense_vec(i))


@pytest.fixture(scope="module")
def llama(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridQdrantVectorStore]:
    # candidate_k=1: LlamaIndex's exact sizes (the default 100 is a floor per side).
    kwargs: dict[str, Any] = {"dense_dim": DIM, "sparse_embed_model": WordCounts(), "candidate_k": 1}
    if backend == "edge":
        s = HybridQdrantVectorStore("cands", path=tmp_path_factory.mktemp("llama-cands"), **kwargs)
    else:
        s = HybridQdrantVectorStore("cands", client=QdrantClient(":memory:"), **kwargs)
    with s:
        s.add([node(i) for i in range(N)])
        yield s


def hybrid(**kw: Any) -> VectorStoreQuery:
    return VectorStoreQuery(
        query_embedding=QUERY_DENSE, query_str="zebra", mode=VectorStoreQueryMode.HYBRID, **kw
    )


@pytest.mark.parametrize("fusion", ["rrf", "m3"])
async def test_llama_top_ks_are_the_prefetch_and_final_sizes(
    llama: HybridQdrantVectorStore, fusion: str
) -> None:
    def run(**kw: Any) -> list[str]:
        return list(llama.query(hybrid(**kw), fusion=fusion, exact=True).ids or [])

    # similarity_top_k dense + sparse_top_k sparse candidates, fused to hybrid_top_k.
    assert set(run(similarity_top_k=3, sparse_top_k=2, hybrid_top_k=N)) == top_dense(3) | top_sparse(2)
    assert set(run(similarity_top_k=1, sparse_top_k=4, hybrid_top_k=N)) == top_dense(1) | top_sparse(4)
    # sparse_top_k defaults to similarity_top_k, hybrid_top_k too.
    assert set(run(similarity_top_k=3, hybrid_top_k=N)) == top_dense(3) | top_sparse(3)
    got = run(similarity_top_k=3, sparse_top_k=5)
    assert len(got) == 3 and set(got) <= top_dense(3) | top_sparse(5)
    # A smaller sparse_top_k removes exactly the sparse-only candidates it no longer fetches.
    wide = set(run(similarity_top_k=2, sparse_top_k=5, hybrid_top_k=N))
    narrow = set(run(similarity_top_k=2, sparse_top_k=2, hybrid_top_k=N))
    assert wide - narrow == {"p9", "p8", "p7"}
    assert llama.candidate_k == 1
    result = await llama.aquery(hybrid(similarity_top_k=2, sparse_top_k=1, hybrid_top_k=N), fusion=fusion)
    assert set(result.ids or []) == {"p0", "p1", "p11"}


def test_llama_alpha_extremes_cut_the_one_side_to_the_final_size(llama: HybridQdrantVectorStore) -> None:
    def run(**kw: Any) -> list[str]:
        return list(llama.query(hybrid(**kw)).ids or [])

    assert run(alpha=0.0, similarity_top_k=3, sparse_top_k=2, hybrid_top_k=N) == ["p11", "p10"]
    assert run(alpha=0.0, similarity_top_k=3, sparse_top_k=6, hybrid_top_k=4) == ["p11", "p10", "p9", "p8"]
    assert run(alpha=1.0, similarity_top_k=3, sparse_top_k=6, hybrid_top_k=N) == ["p0", "p1", "p2"]
    assert run(alpha=1.0, similarity_top_k=5, hybrid_top_k=2) == ["p0", "p1"]
    assert set(run(alpha=0.4, similarity_top_k=2, sparse_top_k=3, hybrid_top_k=N)) == top_dense(
        2
    ) | top_sparse(3)


def test_llama_sparse_and_dense_modes_keep_their_sizes(llama: HybridQdrantVectorStore) -> None:
    sparse = VectorStoreQuery(
        query_str="zebra", mode=VectorStoreQueryMode.SPARSE, similarity_top_k=2, sparse_top_k=3
    )
    assert llama.query(sparse).ids == ["p11", "p10", "p9"]
    dense = VectorStoreQuery(query_embedding=QUERY_DENSE, similarity_top_k=2, sparse_top_k=5, hybrid_top_k=9)
    assert llama.query(dense).ids == ["p0", "p1"]


def test_llama_retriever_passes_the_sizes(llama: HybridQdrantVectorStore) -> None:
    retriever = HybridQdrantRetriever(
        llama, similarity_top_k=2, sparse_top_k=3, hybrid_top_k=N, mode="hybrid"
    )
    got = retriever.retrieve(QueryBundle(query_str="zebra", embedding=QUERY_DENSE))
    assert {n.node.node_id for n in got} == top_dense(2) | top_sparse(3)


def test_llama_candidate_k_is_a_floor_per_side(llama: HybridQdrantVectorStore) -> None:
    """LlamaIndex's default similarity_top_k=2 must not starve hybrid fusion of candidates."""
    query = hybrid(similarity_top_k=2, sparse_top_k=1, hybrid_top_k=N)
    assert set(llama.query(query, exact=True).ids or []) == {"p0", "p1", "p11"}
    llama.candidate_k = 6
    try:
        got = set(llama.query(query, exact=True).ids or [])
    finally:
        llama.candidate_k = 1
    assert got == top_dense(6) | top_sparse(6)
