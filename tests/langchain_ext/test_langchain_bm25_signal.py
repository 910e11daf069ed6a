"""LangChain: BM25 as a third signal beside a learned sparse model (``bm25=``), both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings, HybridQdrantVectorStore
from shared.encoders.bm25 import bm25_for_corpus
from tests.support.bm25 import QUERIES, verses


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "edge":
        return {"path": tmp_path / "edge"}
    return {"client": QdrantClient(path=str(tmp_path / "local"))}


def test_bm25_beside_splade(where: dict[str, Any], minilm_dir: Path, splade_dir: Path) -> None:
    rows = verses(0, 60)
    texts, ids = [r["text"] for r in rows], [r["id"] for r in rows]
    bm25 = bm25_for_corpus(texts)
    with HybridQdrantVectorStore(
        BGEM3Embeddings(model_name=str(minilm_dir)),
        sparse_embedding=BGEM3SparseEmbeddings(model_name=str(splade_dir)),
        bm25=bm25,
        bm25_weight=0.5,
        **where,
    ) as vs:
        vs.add_texts(texts, ids=ids)
        store = vs.store
        assert store.schema.vector_names == ("dense", "sparse", "bm25")
        assert store.schema.bm25 == bm25.config()
        for query in QUERIES:
            got = [(d.id, s) for d, s in vs.similarity_search_with_score(query, k=5)]
            assert got == [(h.id, h.score) for h in store.query(query, limit=5)]
            # The store's bm25_weight is the fused BM25 signal's; a search keyword overrides it.
            without = [(d.id, s) for d, s in vs.similarity_search_with_score(query, k=5, bm25_weight=0.0)]
            assert without == [(h.id, h.score) for h in store.query(query, limit=5, bm25_weight=0.0)]
            assert [s for _, s in without] != [s for _, s in got]
