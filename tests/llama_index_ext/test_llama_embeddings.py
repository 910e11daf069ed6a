"""BGEM3Embedding / BGEM3SparseEmbedding on real small models and the tiny BGE-M3 checkpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding
from shared.errors import InvalidInputError, InvalidTypeError
from shared.mrl import MRLWarning

PASSAGES = [
    "Plants need sunlight for photosynthesis to turn water and carbon dioxide into sugar.",
    "Reciprocal rank fusion combines rankings by summing the inverse ranks of each document.",
    "Scalar quantization stores every vector component as an eight bit integer.",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> BGEM3Embedding:
    return BGEM3Embedding(model_name=str(minilm_dir))


@pytest.fixture(scope="module")
def splade(splade_dir: Path) -> BGEM3SparseEmbedding:
    return BGEM3SparseEmbedding(model_name=str(splade_dir))


def test_dense_vectors_rank_the_relevant_passage_first(minilm: BGEM3Embedding) -> None:
    docs = np.array(minilm.get_text_embedding_batch(PASSAGES))
    query = np.array(minilm.get_query_embedding("why do plants need light?"))
    assert docs.shape == (3, 384) and minilm.dimension == 384
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(docs @ query)) == 0
    assert all(isinstance(x, float) for x in minilm.get_text_embedding(PASSAGES[1]))


def test_batch_equals_single_texts(minilm: BGEM3Embedding) -> None:
    batch = minilm.get_text_embedding_batch(PASSAGES)
    single = [minilm.get_text_embedding(p) for p in PASSAGES]
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_sparse_vectors_weigh_the_query_terms(splade: BGEM3SparseEmbedding) -> None:
    docs = splade.get_text_embedding_batch(PASSAGES)
    query = splade.get_query_embedding("photosynthesis sunlight")
    assert all(isinstance(k, int) and isinstance(v, float) and v > 0 for k, v in query.items())

    def dot(a: dict[int, float], b: dict[int, float]) -> float:
        return sum(w * b.get(t, 0.0) for t, w in a.items())

    scores = [dot(query, d) for d in docs]
    assert int(np.argmax(scores)) == 0 and scores[0] > 0


async def test_async_methods_match_sync_and_run_off_the_event_loop(minilm: BGEM3Embedding) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = minilm.encoder.encode

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(threading.get_ident())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    object.__setattr__(minilm.encoder, "encode", spy)
    try:
        query = await minilm.aget_query_embedding("sunlight")
        batch = await minilm.aget_text_embedding_batch(PASSAGES)
    finally:
        object.__delattr__(minilm.encoder, "encode")
    np.testing.assert_allclose(query, minilm.get_query_embedding("sunlight"), atol=1e-5)
    np.testing.assert_allclose(batch, minilm.get_text_embedding_batch(PASSAGES), atol=1e-5)
    # One encode per call (the whole batch at once), never on the event loop's thread.
    assert len(seen) == 2 and loop_thread not in seen


async def test_async_sparse_matches_sync(splade: BGEM3SparseEmbedding) -> None:
    got = await asyncio.gather(
        splade.aget_query_embedding("sunlight"), splade.aget_text_embedding_batch(PASSAGES)
    )
    assert got[0] == splade.get_query_embedding("sunlight")
    assert got[1] == splade.get_text_embedding_batch(PASSAGES)


def test_dense_and_sparse_of_one_bge_m3_model_share_one_forward_pass(tiny_bge_m3_dir: Path) -> None:
    dense = BGEM3Embedding(model_name=str(tiny_bge_m3_dir), embed_batch_size=8)
    sparse = BGEM3SparseEmbedding(model_name=str(tiny_bge_m3_dir), embed_batch_size=8)
    assert dense.encoder is sparse.encoder
    texts = [f"shared pass number {i} about search engines" for i in range(5)]
    before = dense.encoder.forward_passes
    dense.get_text_embedding_batch(texts)
    after_dense = dense.encoder.forward_passes
    vectors = sparse.get_text_embedding_batch(texts)
    assert after_dense - before == 1
    assert dense.encoder.forward_passes == after_dense  # sparse came from the same pass
    assert len(vectors) == 5 and all(vectors)
    # A query is encoded once for both sides too.
    dense.get_query_embedding("search engines")
    passes = dense.encoder.forward_passes
    sparse.get_query_embedding("search engines")
    assert dense.encoder.forward_passes == passes


def test_from_dense_shares_the_encoder_even_with_truncation(tiny_bge_m3_dir: Path) -> None:
    with pytest.warns(MRLWarning, match="not known to be Matryoshka-trained"):
        dense = BGEM3Embedding(model_name=str(tiny_bge_m3_dir), truncate_dim=16)
    sparse = BGEM3SparseEmbedding.from_dense(dense)
    assert sparse.encoder is dense.encoder and sparse.model_name == dense.model_name
    vec = dense.get_text_embedding("truncated vectors stay unit length")
    assert len(vec) == 16 == dense.dimension
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    passes = dense.encoder.forward_passes
    assert sparse.get_text_embedding("truncated vectors stay unit length")
    assert dense.encoder.forward_passes == passes


def test_instructions_none_default_and_empty_disables(tiny_bge_m3_dir: Path) -> None:
    default = BGEM3Embedding(model_name=str(tiny_bge_m3_dir))
    custom = BGEM3Embedding(model_name=str(tiny_bge_m3_dir), query_instruction="Represent this question: ")
    disabled = BGEM3Embedding(model_name=str(tiny_bge_m3_dir), query_instruction="")
    assert custom.encoder.identity.query_prompt == "Represent this question: "
    assert default.encoder.identity.query_prompt == ""  # BGE-M3 takes no prompt
    assert disabled.encoder is default.encoder or disabled.encoder.identity.query_prompt == ""
    q_custom = custom.get_query_embedding("capital of france")
    q_plain = default.get_query_embedding("capital of france")
    assert not np.allclose(q_custom, q_plain)
    # The instruction applies to queries only: documents are unchanged.
    np.testing.assert_allclose(
        custom.get_text_embedding("Paris"), default.get_text_embedding("Paris"), atol=1e-6
    )


def test_bad_inputs_are_named(minilm: BGEM3Embedding) -> None:
    with pytest.raises(InvalidTypeError, match=r"texts\[1\]"):
        minilm.get_text_embedding_batch(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="str"):
        minilm.get_query_embedding(None)  # type: ignore[arg-type]


def test_a_model_without_the_output_is_refused(splade_dir: Path, minilm_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="no dense vectors"):
        BGEM3Embedding(model_name=str(splade_dir))
    with pytest.raises(InvalidInputError, match="no sparse vectors"):
        BGEM3SparseEmbedding(model_name=str(minilm_dir))


def test_serialises_settings_not_the_model(minilm: BGEM3Embedding) -> None:
    data = minilm.to_dict()
    assert data["class_name"] == "BGEM3Embedding"
    assert data["model_name"] == minilm.model_name and data["embed_batch_size"] == 32
    assert "_encoder" not in data and "encoder" not in data


def test_bad_settings_raise_our_errors_naming_the_field(minilm_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="embed_batch_size"):
        BGEM3Embedding(model_name=str(minilm_dir), embed_batch_size=0)
    with pytest.raises(InvalidTypeError, match="query_instruction"):
        BGEM3Embedding(model_name=str(minilm_dir), query_instruction=3)  # type: ignore[arg-type]
