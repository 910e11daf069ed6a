"""Issue 12, part 1: a store with no dense model learns the dense size from the first vectors.

LlamaIndex's canonical pattern (only a sparse model on the store, dense vectors computed by
``VectorStoreIndex`` with its own ``embed_model``) and LangChain with a generic ``Embeddings``,
on the embedded store and on qdrant-client local mode; a different size is refused afterwards,
before anything is written, also after a reopen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core import Document as LlamaDocument
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from langchain_ext import BGEM3SparseEmbeddings
from langchain_ext import HybridQdrantVectorStore as LangChainStore
from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding
from llama_index_ext import HybridQdrantVectorStore as LlamaStore
from shared.errors import InvalidInputError

TEXTS = [
    "The cat sat on the warm windowsill all afternoon.",
    "Stock markets fell sharply after the interest rate decision.",
    "A recipe for sourdough bread needs flour, water, salt and time.",
    "The goalkeeper saved a penalty in the last minute of the match.",
]


@pytest.fixture(scope="module")
def llama_dense(minilm_dir: Path) -> BGEM3Embedding:
    return BGEM3Embedding(model_name=str(minilm_dir))


@pytest.fixture(scope="module")
def llama_sparse(splade_dir: Path) -> BGEM3SparseEmbedding:
    return BGEM3SparseEmbedding(model_name=str(splade_dir))


def _where(kind: str, tmp_path: Path) -> dict[str, Any]:
    if kind == "embedded":
        return {"path": tmp_path / "store"}
    return {"client": QdrantClient(path=str(tmp_path / "local"))}


@pytest.mark.parametrize("kind", ["embedded", "qdrant-client"])
def test_llama_index_sparse_model_on_store_dense_from_the_index(
    kind: str, tmp_path: Path, llama_dense: BGEM3Embedding, llama_sparse: BGEM3SparseEmbedding
) -> None:
    where = _where(kind, tmp_path)
    store = LlamaStore("docs", sparse_embed_model=llama_sparse, **where)
    assert not store.store.schema.complete  # nothing known about the dense side yet
    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=t, id_=f"d{i}") for i, t in enumerate(TEXTS)],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=llama_dense,
    )
    assert store.store.schema.dense_dim == 384 and store.store.schema.sparse
    for mode in ("default", "sparse", "hybrid"):
        nodes = index.as_retriever(similarity_top_k=2, vector_store_query_mode=mode).retrieve(
            "which bread recipe uses flour?"
        )
        assert "sourdough" in nodes[0].node.get_content(), mode
    before = store.count()
    bad = TextNode(text="wrong size", id_="bad", embedding=[0.1] * 8)
    with pytest.raises(InvalidInputError, match=r"size 8, the collection expects 384"):
        store.add([bad])
    assert store.count() == before
    store.close()
    # Reopened with the same sparse model only: the collection's dense size still holds.
    again = LlamaStore("docs", sparse_embed_model=llama_sparse, **where)
    with pytest.raises(InvalidInputError, match=r"size 8, the collection expects 384"):
        again.add([bad])
    assert again.count() == before
    again.close()


def test_llama_index_sparse_only_nodes_still_make_a_sparse_only_collection(
    tmp_path: Path, llama_sparse: BGEM3SparseEmbedding
) -> None:
    store = LlamaStore("sparse", sparse_embed_model=llama_sparse, path=tmp_path / "s")
    store.add([TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)])
    assert store.store.schema.dense_dim is None and store.store.schema.sparse
    assert store.count() == len(TEXTS)
    store.close()


@pytest.mark.parametrize("kind", ["embedded", "qdrant-client"])
def test_langchain_generic_embeddings_learn_the_size(kind: str, tmp_path: Path, splade_dir: Path) -> None:
    where = _where(kind, tmp_path)
    sparse = BGEM3SparseEmbeddings(model_name=str(splade_dir))
    store = LangChainStore(DeterministicFakeEmbedding(size=16), sparse_embedding=sparse, **where)
    store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
    assert store.store.schema.dense_dim == 16
    assert len(store.similarity_search("bread", k=2)) == 2
    store.close()
    other = LangChainStore(DeterministicFakeEmbedding(size=24), sparse_embedding=sparse, **where)
    with pytest.raises(InvalidInputError, match=r"size 24, the collection expects 16"):
        other.add_texts(["one more"], ids=["x"])
    assert other.count() == len(TEXTS)
    other.close()
