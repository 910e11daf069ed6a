"""HybridEnsembleRetriever: the one-line replacement for EnsembleRetriever([BM25Retriever, dense])."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from qdrant_client import QdrantClient

from langchain_ext import BGEM3Embeddings, HybridEnsembleRetriever
from shared.encoders import Bm25Encoder
from tests.support.bm25 import QUERIES, bm25_reference, verses


def _docs(start: int, n: int) -> list[Document]:
    rows = verses(start, n)
    return [Document(page_content=r["text"], id=r["id"], metadata={"book": r["book"]}) for r in rows]


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    if request.param == "edge":
        return {"path": tmp_path / "edge"}
    return {"client": QdrantClient(":memory:")}


def test_bm25_retriever_replacement_scores_bm25_through_adds_and_deletes(where: dict) -> None:
    docs = _docs(0, 250)
    retriever = HybridEnsembleRetriever.from_documents(docs, k=5, **where)
    vs = retriever.vectorstore
    enc = vs.store.encoder
    assert isinstance(enc, Bm25Encoder)
    # avg_len is the corpus' mean length, as BM25Retriever.from_documents measures it.
    assert enc.avg_len == pytest.approx(Bm25Encoder().mean_length([d.page_content for d in docs]), abs=0.05)
    live = {d.id: d.page_content for d in docs}

    def check() -> None:
        for query in QUERIES:
            got = {d.id: s for d, s in vs.similarity_search_with_score(query, k=1000)}
            want = bm25_reference(enc, live, query)
            assert set(got) == set(want)
            assert all(got[i] == pytest.approx(want[i], rel=2e-5) for i in want)
            top = [d.id for d in retriever.invoke(query)]
            assert top == sorted(want, key=lambda i: -want[i])[:5] or len(set(want.values())) < len(want)

    check()
    gone = [d.id for d in docs[::7]]
    vs.delete(gone)
    for i in gone:
        del live[i]
    more = _docs(250, 40)
    vs.add_documents(more)
    live.update({d.id: d.page_content for d in more})
    check()
    vs.close()


def test_one_line_replacement_with_dense_model(minilm_dir: Path, tmp_path: Path) -> None:
    docs = _docs(0, 150)
    embeddings = BGEM3Embeddings(model_name=str(minilm_dir), show_progress=False)
    retriever = HybridEnsembleRetriever.from_documents(
        docs, embeddings, k=4, weights=[0.4, 0.6], c=60, path=tmp_path
    )
    store = retriever.vectorstore.store
    assert store.schema.has_dense and store.schema.sparse_idf
    opts = store.query_defaults
    assert (opts.fusion.value, opts.rrf_k, opts.dense_weight, opts.sparse_weight) == ("rrf", 61, 0.6, 0.4)
    found = retriever.invoke("God said, Let there be light, and there was light.")
    assert len(found) == 4 and found[0].id == "Gen.1.3"
    assert found[0].metadata == {"book": "Gen"}
    retriever.vectorstore.close()
