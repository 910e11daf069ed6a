"""BGEM3Embeddings / BGEM3SparseEmbeddings: LangChain's standard suite plus our own guarantees."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings, SparseVector
from shared.errors import InvalidInputError, InvalidTypeError
from shared.prompts import resolve_prompts

TEXTS = [
    "Qdrant stores dense and sparse vectors in one collection.",
    "The quick brown fox jumps over the lazy dog.",
    "Water boils at one hundred degrees at sea level.",
]


class TestBGEM3EmbeddingsStandard(EmbeddingsIntegrationTests):
    """LangChain's own embeddings suite on the tiny BGE-M3-format checkpoint."""

    @pytest.fixture(autouse=True)
    def _checkpoint(self, tiny_bge_m3_dir: Path) -> None:
        self.checkpoint = tiny_bge_m3_dir

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return BGEM3Embeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model_name": str(self.checkpoint)}


@pytest.fixture
def tiny(tiny_bge_m3_dir: Path) -> BGEM3Embeddings:
    return BGEM3Embeddings(model_name=str(tiny_bge_m3_dir))


def test_vectors_are_python_floats_of_the_model_size_and_unit_norm(tiny: BGEM3Embeddings) -> None:
    vectors = tiny.embed_documents(TEXTS)
    assert len(vectors) == len(TEXTS)
    for vector in vectors:
        assert type(vector) is list and all(type(x) is float for x in vector)
        assert len(vector) == tiny.dimension == tiny.encoder.dense_dim
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-4)
    query = tiny.embed_query(TEXTS[0])
    assert type(query) is list and all(type(x) is float for x in query)
    # Different texts give different vectors (the model really ran on each text).
    assert vectors[0] != vectors[1]


def test_vectors_match_the_core_encoder(tiny: BGEM3Embeddings) -> None:
    direct = tiny.encoder.encode(TEXTS, "document", outputs=["dense"]).dense
    np.testing.assert_allclose(np.array(tiny.embed_documents(TEXTS)), direct, atol=1e-6)


def test_prompts_registry_default_override_and_disable(minilm_dir: Path) -> None:
    default = BGEM3Embeddings(model_name=str(minilm_dir))
    expected_q, expected_d = resolve_prompts(str(minilm_dir))
    assert default.encoder.identity.query_prompt == expected_q
    assert default.encoder.identity.document_prompt == expected_d

    prefix = "Represent this query: "
    custom = BGEM3Embeddings(model_name=str(minilm_dir), query_instruction=prefix, document_instruction="")
    assert custom.encoder.identity.query_prompt == prefix
    # The query prompt is really prepended: same vector as embedding the prefixed text as a document.
    np.testing.assert_allclose(
        custom.embed_query("solar panels"), custom.embed_documents([prefix + "solar panels"])[0], atol=1e-5
    )
    assert not np.allclose(custom.embed_query("solar panels"), custom.embed_documents(["solar panels"])[0])

    disabled = BGEM3Embeddings(model_name=str(minilm_dir), query_instruction="", document_instruction="")
    np.testing.assert_allclose(
        disabled.embed_query("solar panels"), disabled.embed_documents(["solar panels"])[0], atol=1e-5
    )


def test_truncate_dim_returns_renormalised_leading_dimensions(tiny_bge_m3_dir: Path) -> None:
    full = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny model is not MRL-trained: a warning is expected
        cut = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir), truncate_dim=16)
    assert cut.dimension == 16
    head = np.array(full.embed_documents(TEXTS))[:, :16]
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array(cut.embed_documents(TEXTS)), head, atol=1e-5)


async def test_async_methods_return_the_sync_results(tiny: BGEM3Embeddings) -> None:
    assert await tiny.aembed_documents(TEXTS) == tiny.embed_documents(TEXTS)
    assert await tiny.aembed_query(TEXTS[1]) == tiny.embed_query(TEXTS[1])


def test_empty_input_and_bad_input(tiny: BGEM3Embeddings) -> None:
    assert tiny.embed_documents([]) == []
    with pytest.raises(InvalidTypeError, match="single str"):
        tiny.embed_documents("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"texts\[1\]"):
        tiny.embed_documents(["ok", 42])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="expects a str"):
        tiny.embed_query(["a list"])  # type: ignore[arg-type]


def test_generators_are_accepted(tiny: BGEM3Embeddings) -> None:
    assert tiny.embed_documents(t for t in TEXTS) == tiny.embed_documents(TEXTS)  # type: ignore[arg-type]


def test_unknown_settings_and_a_sparse_only_model_are_refused(
    tiny_bge_m3_dir: Path, splade_dir: Path
) -> None:
    with pytest.raises(ValueError, match="extra"):
        BGEM3Embeddings(model_name=str(tiny_bge_m3_dir), not_a_setting=1)  # type: ignore[call-arg]
    with pytest.raises(InvalidInputError, match="no dense vectors"):
        BGEM3Embeddings(model_name=str(splade_dir))


def test_dense_and_sparse_of_the_same_model_share_one_forward_pass(tiny_bge_m3_dir: Path) -> None:
    dense = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir))
    sparse = BGEM3SparseEmbeddings(model_name=str(tiny_bge_m3_dir))
    assert sparse.encoder is dense.encoder
    texts = [f"shared pass number {i} about vectors" for i in range(3)]
    before = dense.encoder.forward_passes
    dense.embed_documents(texts)
    after_dense = dense.encoder.forward_passes
    assert after_dense > before
    sparse.embed_documents(texts)
    assert dense.encoder.forward_passes == after_dense  # served from the shared pass's cache

    # from_dense shares the encoder even when the settings differ.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cut = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir), truncate_dim=16)
    assert BGEM3SparseEmbeddings.from_dense(cut).encoder is cut.encoder


def test_sparse_vectors_have_sorted_int_indices_and_positive_float_values(tiny_bge_m3_dir: Path) -> None:
    sparse = BGEM3SparseEmbeddings(model_name=str(tiny_bge_m3_dir))
    vectors = sparse.embed_documents(TEXTS)
    core = sparse.encoder.encode(TEXTS, "document", outputs=["sparse"]).sparse
    assert core is not None
    for vector, weights in zip(vectors, core, strict=True):
        assert isinstance(vector, SparseVector)
        assert vector.indices == sorted(weights) and len(vector.indices) == len(vector.values) > 0
        assert all(type(i) is int for i in vector.indices) and all(type(v) is float for v in vector.values)
        assert all(v > 0 for v in vector.values)
        assert vector.to_dict() == pytest.approx(weights)
    # BGE-M3 has no query prompt, so a query's sparse vector equals the same text's document vector.
    assert sparse.embed_query(TEXTS[0]) == vectors[0]


async def test_sparse_async_matches_sync(splade_dir: Path) -> None:
    sparse = BGEM3SparseEmbeddings(model_name=str(splade_dir))
    assert await sparse.aembed_documents(TEXTS) == sparse.embed_documents(TEXTS)
    assert await sparse.aembed_query("boiling water") == sparse.embed_query("boiling water")


def test_splade_sparse_vectors_and_a_dense_only_model_refused(splade_dir: Path, minilm_dir: Path) -> None:
    sparse = BGEM3SparseEmbeddings(model_name=str(splade_dir))
    assert sparse.encoder.outputs == frozenset({"sparse"})
    [doc] = sparse.embed_documents(["Water boils at one hundred degrees."])
    assert len(doc.indices) > 3
    with pytest.raises(InvalidInputError, match="no sparse vectors"):
        BGEM3SparseEmbeddings(model_name=str(minilm_dir))


def test_sparse_class_plugs_into_langchain_qdrant(minilm_dir: Path, splade_dir: Path) -> None:
    """Our sparse class implements langchain-qdrant's SparseEmbeddings interface (duck-typed)."""
    from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings
    from qdrant_client import QdrantClient

    dense = BGEM3Embeddings(model_name=str(minilm_dir))
    sparse = BGEM3SparseEmbeddings(model_name=str(splade_dir))
    assert isinstance(sparse, SparseEmbeddings)
    store = QdrantVectorStore.from_texts(
        TEXTS,
        dense,
        sparse_embedding=sparse,
        retrieval_mode=RetrievalMode.HYBRID,
        location=":memory:",
        collection_name="lcq",
    )
    try:
        [hit] = store.similarity_search("how hot must water be to boil?", k=1)
        assert hit.page_content == TEXTS[2]
        [sparse_hit] = QdrantVectorStore(
            client=store.client,
            collection_name="lcq",
            sparse_embedding=sparse,
            retrieval_mode=RetrievalMode.SPARSE,
        ).similarity_search("fox dog", k=1)
        assert sparse_hit.page_content == TEXTS[1]
    finally:
        if isinstance(store.client, QdrantClient):
            store.client.close()
