"""HybridFusionRetriever: the replacement for QueryFusionRetriever([vector retriever, BM25Retriever])."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from llama_index_ext import BGEM3Embedding, HybridFusionRetriever
from shared.encoders import Bm25Encoder
from shared.errors import UnsupportedOperationError
from tests.support.bm25 import QUERIES, bm25_reference, verses


def _nodes(start: int, n: int) -> list[TextNode]:
    return [TextNode(text=r["text"], id_=r["id"]) for r in verses(start, n)]


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    if request.param == "edge":
        return {"path": str(tmp_path / "edge")}
    return {"client": QdrantClient(":memory:")}


def test_bm25_scores_through_adds_and_deletes(where: dict) -> None:
    nodes = _nodes(0, 250)
    retriever = HybridFusionRetriever.from_nodes(nodes, similarity_top_k=1000, **where)
    vs = retriever.vector_store
    enc = vs.store.encoder
    assert isinstance(enc, Bm25Encoder)
    live = {n.node_id: n.text for n in nodes}

    def check() -> None:
        for query in QUERIES:
            got = {n.node.node_id: n.score for n in retriever.retrieve(query)}
            want = bm25_reference(enc, live, query)
            assert set(got) == set(want)
            assert all(got[i] == pytest.approx(want[i], rel=2e-5) for i in want)

    check()
    gone = [n.node_id for n in nodes[::7]]
    vs.delete_nodes(gone)
    for i in gone:
        del live[i]
    more = _nodes(250, 40)
    vs.add(more)
    live.update({n.node_id: n.text for n in more})
    check()
    vs.close()


def test_query_fusion_modes_with_dense_model(minilm_dir: Path, tmp_path: Path) -> None:
    nodes = _nodes(0, 150)
    embed = BGEM3Embedding(model_name=str(minilm_dir))
    retriever = HybridFusionRetriever.from_nodes(
        nodes, embed, mode="dist_based_score", similarity_top_k=3, path=str(tmp_path / "a")
    )
    store = retriever.vector_store.store
    assert store.query_defaults.fusion.value == "dbsf" and store.schema.sparse_idf
    found = retriever.retrieve("God said, Let there be light, and there was light.")
    assert len(found) == 3 and found[0].node.node_id == "Gen.1.3"
    retriever.vector_store.close()
    rrf = HybridFusionRetriever.from_nodes(
        nodes, embed, mode="reciprocal_rerank", retriever_weights=[0.7, 0.3], path=str(tmp_path / "b")
    )
    opts = rrf.vector_store.store.query_defaults
    assert (opts.fusion.value, opts.rrf_k, opts.dense_weight, opts.sparse_weight) == ("rrf", 60, 0.7, 0.3)
    rrf.vector_store.close()
    with pytest.raises(UnsupportedOperationError, match="retriever_weights"):
        HybridFusionRetriever.from_nodes(nodes, embed, mode="relative_score", retriever_weights=[0.7, 0.3])
