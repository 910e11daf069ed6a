"""Both adapters only translate: options, encoding and retrieval decisions come from ``shared``.

* every store option an adapter exposes has ``StoreConfig``'s default, and reopening an
  int8 collection with default arguments follows it (no "keeps its own storage settings"
  warning: the adapters used to pass ``quantization="none"``);
* a foreign model is wrapped into a core encoder that calls the framework's own embed
  methods (stored and query vectors equal what the framework model returns, normalised);
* relevance scores are the core's mapping for the store's own defaults;
* LlamaIndex requires ``client``; ``store`` is its alias.
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, FakeEmbeddings
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from langchain_ext import HybridQdrantVectorStore as LangChainStore
from llama_index_ext import HybridQdrantVectorStore as LlamaStore
from shared.config import StoreConfig
from shared.errors import ModelMismatchError
from shared.query.options import SEARCH_OPTIONS
from tests.support.langchain_fakes import LangChainWordSparse
from tests.support.llama_fakes import DIM, HashEmbedding, WordSparse

WARNING = "keeps its own storage settings"


def _unit(v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


# ----------------------------------------------------------------------------- options


def test_llama_index_fields_default_to_store_config() -> None:
    shared = [f for f in fields(StoreConfig) if f.name in LlamaStore.model_fields]
    assert len(shared) >= 15
    for f in shared:
        assert LlamaStore.model_fields[f.name].default == f.default, f.name


def test_langchain_keywords_default_to_store_config() -> None:
    params = inspect.signature(LangChainStore.__init__).parameters
    shared = [f for f in fields(StoreConfig) if f.name in params and f.name != "retrieval_mode"]
    assert len(shared) >= 14
    for f in shared:
        assert params[f.name].default == f.default, f.name


def test_llama_index_int8_collection_reopens_with_defaults_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with LlamaStore("c", path=tmp_path / "s", dense_dim=DIM, sparse=False, quantization="int8") as store:
        vectors = [_unit(np.arange(DIM) + i).tolist() for i in range(4)]
        nodes = [TextNode(id_=f"n{i}", text=f"t{i}", embedding=v) for i, v in enumerate(vectors)]
        store.add(nodes)
    caplog.set_level(logging.WARNING)
    with LlamaStore("c", path=tmp_path / "s") as reopened:
        assert reopened.store.schema.quantization.name == "int8"
        assert reopened.query(VectorStoreQuery(query_embedding=[1.0] * DIM, similarity_top_k=2)).ids
    assert WARNING not in caplog.text


def test_langchain_int8_collection_reopens_with_defaults_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedding = DeterministicFakeEmbedding(size=DIM)
    with LangChainStore(embedding, path=tmp_path / "s", quantization="int8") as store:
        store.add_texts(["alpha", "beta", "gamma"])
    caplog.set_level(logging.WARNING)
    with LangChainStore(embedding, path=tmp_path / "s") as reopened:
        assert reopened.store.schema.quantization.name == "int8"
        assert reopened.similarity_search("alpha", k=1)[0].page_content == "alpha"
    assert WARNING not in caplog.text


# ----------------------------------------------------------------------------- foreign encoders


def test_llama_index_foreign_models_are_called_through_their_own_api(tmp_path: Path) -> None:
    dense, sparse = HashEmbedding(), WordSparse()
    # rrf: only "b" matches the query's word, so it leads whatever the random dense vectors say
    # (m3, the default, adds raw cosines, which random vectors can tip either way).
    with LlamaStore(
        "c", path=tmp_path / "s", embed_model=dense, sparse_embed_model=sparse, fusion="rrf"
    ) as store:
        node = TextNode(id_="a", text="green tea leaves", metadata={"title": "Tea"})
        store.add([node, TextNode(id_="b", text="black coffee beans")])
        [record] = store.store.get(["a"], with_vectors=True)
        embedded = node.get_content(metadata_mode=MetadataMode.EMBED)
        assert embedded != node.get_content(metadata_mode=MetadataMode.NONE)
        # Stored: the framework model's own document vectors of the embed-visible text.
        np.testing.assert_allclose(record.dense, _unit(dense.get_text_embedding(embedded)), atol=1e-6)
        assert record.sparse == pytest.approx(sparse.get_text_embedding(embedded))
        # Queried: its own query vectors (a query by text equals a query by those vectors).
        by_text = store.query(
            VectorStoreQuery(query_str="coffee", mode=VectorStoreQueryMode.HYBRID, similarity_top_k=2)
        )
        by_vectors = store.store.query(
            dense=dense.get_query_embedding("coffee"),
            sparse=sparse.get_query_embedding("coffee"),
            dense_candidates=100,
            sparse_candidates=100,
            limit=2,
        )
        assert by_text.ids == [h.id for h in by_vectors] and by_text.ids[0] == "b"
        assert by_text.similarities == pytest.approx([h.score for h in by_vectors])


def test_langchain_foreign_models_are_called_through_their_own_api(tmp_path: Path) -> None:
    dense, sparse = DeterministicFakeEmbedding(size=DIM), LangChainWordSparse()
    with LangChainStore(dense, sparse_embedding=sparse, path=tmp_path / "s") as store:
        assert store.retrieval_mode == "hybrid"
        store.add_texts(["green tea leaves", "black coffee beans"], ids=["a", "b"])
        [record] = store.store.get(["a"], with_vectors=True)
        np.testing.assert_allclose(
            record.dense, _unit(dense.embed_documents(["green tea leaves"])[0]), atol=1e-6
        )
        expected = sparse.embed_documents(["green tea leaves"])[0]
        assert record.sparse == dict(zip(expected.indices, expected.values, strict=True))
        by_text = store.similarity_search_with_score("coffee beans", k=2)
        q = sparse.embed_query("coffee beans")
        by_vectors = store.similarity_search_with_score_by_vector(
            dense.embed_query("coffee beans"), k=2, sparse_vector=q
        )
        assert [(d.id, s) for d, s in by_text] == [(d.id, pytest.approx(s)) for d, s in by_vectors]
        assert by_text[0][0].id == "b"
    with pytest.raises(ModelMismatchError, match="FakeEmbeddings"):
        # The collection records the models it was built with: another dense model is refused.
        LangChainStore(FakeEmbeddings(size=DIM), sparse_embedding=sparse, path=tmp_path / "s")


# ----------------------------------------------------------------------------- decisions in shared


def test_langchain_relevance_is_the_cores_for_the_stores_defaults(tmp_path: Path) -> None:
    dense, sparse = DeterministicFakeEmbedding(size=DIM), LangChainWordSparse()
    with LangChainStore(dense, sparse_embedding=sparse, path=tmp_path / "s", fusion="rrf", rrf_k=10) as store:
        store.add_texts(["green tea leaves", "black coffee beans"])
        default = store._select_relevance_score_fn()
        assert math.isclose(default(2 / 10), 1.0) and math.isclose(default(1 / 10), 0.5)
        per_call = store._relevance_function_for({"rrf_k": 20, "dense_weight": 3.0})
        assert math.isclose(per_call(4 / 20), 1.0)
        assert store._relevance_function_for({"mode": "dense"})(0.0) == 0.5
        [(doc, score)] = store.similarity_search_with_relevance_scores("green tea leaves", k=1)
        assert doc.page_content == "green tea leaves" and math.isclose(score, 1.0, rel_tol=1e-6)


def test_adapters_pass_the_cores_search_options() -> None:
    from llama_index_ext import vector_store

    assert vector_store._QUERY_OPTIONS < SEARCH_OPTIONS
    assert {"fusion", "rrf_k", "candidate_k", "hnsw_ef"} <= vector_store._QUERY_OPTIONS


def test_llama_index_client_is_required_and_store_is_its_alias(tmp_path: Path) -> None:
    assert "client" in BasePydanticVectorStore.__abstractmethods__
    with LlamaStore("c", path=tmp_path / "s", dense_dim=DIM, sparse=False) as store:
        assert store.client is store.store


# ----------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
async def test_wait_indexed_is_the_stores_on_both_adapters(
    adapter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An add above ``background_index_min`` returns before its index build; the adapters'
    ``wait_indexed``/``await_indexed`` wait for the store's build and raise its failure."""
    from shared.backends.edge import EdgeBackend
    from shared.errors import BackendError

    texts = [f"passage {i} about tea number {i % 7}" for i in range(60)]
    if adapter == "langchain":
        store: Any = LangChainStore(
            DeterministicFakeEmbedding(size=DIM), path=tmp_path, background_index_min=40
        )

        def add(chunk: list[str]) -> None:
            store.add_texts(chunk)
    else:
        store = LlamaStore("c", path=tmp_path, embed_model=HashEmbedding(), background_index_min=40)

        def add(chunk: list[str]) -> None:
            store.add([TextNode(text=t) for t in chunk])

    with store:
        backend = store.store._backend
        assert isinstance(backend, EdgeBackend)
        add(texts[:50])
        store.wait_indexed()
        assert backend.background_builds == 1 and backend._index_thread is None
        add([*texts[50:], *texts[:45]])  # 55 more: a second build
        await store.await_indexed()
        assert backend.background_builds == 2 and backend._index_thread is None

        def fail(self: EdgeBackend) -> None:
            raise BackendError("build failed on purpose")

        monkeypatch.setattr(EdgeBackend, "_build_apart", fail)
        add(texts[:50])
        with pytest.raises(BackendError, match="on purpose"):
            store.wait_indexed()
        store.wait_indexed()  # raised once: every point is stored, the next add builds again
        assert store.store.count() == 155
