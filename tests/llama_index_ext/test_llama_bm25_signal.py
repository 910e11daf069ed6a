"""LlamaIndex: BM25 as a third signal beside a learned sparse model (``bm25=``), both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding, HybridQdrantVectorStore
from shared.encoders.bm25 import bm25_for_corpus
from tests.support.bm25 import QUERIES, verses


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "edge":
        return {"path": str(tmp_path / "edge")}
    return {"client": QdrantClient(path=str(tmp_path / "local"))}


def test_bm25_beside_splade(where: dict[str, Any], minilm_dir: Path, splade_dir: Path) -> None:
    rows = verses(0, 60)
    nodes = [TextNode(text=r["text"], id_=r["id"]) for r in rows]
    bm25 = bm25_for_corpus(r["text"] for r in rows)
    dense = BGEM3Embedding(model_name=str(minilm_dir))
    vs = HybridQdrantVectorStore(
        "docs",
        embed_model=dense,
        sparse_embed_model=BGEM3SparseEmbedding(model_name=str(splade_dir)),
        bm25=bm25,
        **where,
    )
    try:
        index = VectorStoreIndex(
            nodes, storage_context=StorageContext.from_defaults(vector_store=vs), embed_model=dense
        )
        store = vs.store
        assert store.schema.vector_names == ("dense", "sparse", "bm25")
        retriever = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=5)
        for query in QUERIES:
            got = [(n.node.node_id, n.score) for n in retriever.retrieve(query)]
            want = [(h.id, h.score) for h in store.query(query, limit=5)]
            assert [i for i, _ in got] == [i for i, _ in want]
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
        # A field set after construction is the store's query default from then on.
        before = store.query(QUERIES[0], limit=5)
        vs.bm25_weight = 0.0
        after = store.query(QUERIES[0], limit=5)
        assert [h.score for h in after] != [h.score for h in before]
        assert [h.score for h in after] == pytest.approx(
            [h.score for h in store.query(QUERIES[0], limit=5, bm25_weight=0.0)], rel=1e-6
        )
    finally:
        vs.close()
