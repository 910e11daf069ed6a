"""A per-query ``candidate_k`` sizes the LlamaIndex store's hybrid prefetches.

LlamaIndex's hybrid sizes (``similarity_top_k`` dense, ``sparse_top_k`` sparse, fused to
``hybrid_top_k``) are widened to at least ``candidate_k`` per side. That ``candidate_k`` is the
query's when given, else the store's: the core's query resolver decides it, not the adapter.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from llama_index_ext import HybridQdrantVectorStore
from tests.support.llama_fakes import HashEmbedding, WordSparse

N_DOCS = 8


def _store(path: Path, **options: object) -> HybridQdrantVectorStore:
    store = HybridQdrantVectorStore(
        "c", path=path, embed_model=HashEmbedding(), sparse_embed_model=WordSparse(), **options
    )
    store.add([TextNode(id_=f"n{i}", text=f"common word{i} " + "filler " * i) for i in range(N_DOCS)])
    return store


HYBRID = VectorStoreQuery(
    query_str="common", mode=VectorStoreQueryMode.HYBRID, similarity_top_k=1, hybrid_top_k=5
)
SPARSE_ONLY = VectorStoreQuery(
    query_str="common", mode=VectorStoreQueryMode.HYBRID, similarity_top_k=1, hybrid_top_k=5, alpha=0.0
)


def test_a_per_query_candidate_k_narrows_the_hybrid_prefetches(tmp_path: Path) -> None:
    with _store(tmp_path / "s") as store:
        # The store's candidate_k (100): each side fetches 100, so 5 fused results.
        assert len(store.query(HYBRID).ids) == 5
        # The query's candidate_k=1: each side fetches max(similarity_top_k, 1) = 1 point,
        # so the fused list is the union of the dense top 1 and the sparse top 1.
        dense_top = store.query(VectorStoreQuery(query_str="common", similarity_top_k=1)).ids
        sparse_top = store.query(
            VectorStoreQuery(query_str="common", mode=VectorStoreQueryMode.SPARSE, similarity_top_k=1)
        ).ids
        narrow = store.query(HYBRID, candidate_k=1).ids
        assert set(narrow) == set(dense_top) | set(sparse_top)
        # (Both are rank 1 of their side: an RRF tie, in either order.)
        assert set(asyncio.run(store.aquery(HYBRID, candidate_k=1)).ids or []) == set(narrow)
        # alpha=0 is a sparse-only query of the sparse side's candidates: max(1, candidate_k) of them.
        assert len(store.query(SPARSE_ONLY).ids) == 5
        assert store.query(SPARSE_ONLY, candidate_k=1).ids == sparse_top


def test_a_per_query_candidate_k_widens_a_narrow_stores_prefetches(tmp_path: Path) -> None:
    with _store(tmp_path / "s", candidate_k=1) as store:
        assert len(store.query(HYBRID).ids) <= 2
        assert len(store.query(HYBRID, candidate_k=50).ids) == 5
        assert len(store.query(SPARSE_ONLY, candidate_k=50).ids) == 5
