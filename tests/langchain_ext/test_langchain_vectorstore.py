"""HybridQdrantVectorStore: LangChain's standard suite (sync + async) and our own guarantees.

The standard suite runs three times: a generic LangChain embedding (dense mode, size
learned from the first add) on the embedded Qdrant Edge store, the same on a remote
store (qdrant-client local mode), and the tiny BGE-M3 checkpoint in hybrid mode.
Behaviour tests use the real small models (MiniLM dense + SPLADE-tiny sparse).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from qdrant_client import QdrantClient, models

from langchain_ext import (
    BGEM3Embeddings,
    BGEM3SparseEmbeddings,
    FusionMethod,
    HybridQdrantVectorStore,
    RetrievalMode,
)
from shared.errors import (
    InvalidInputError,
    InvalidTypeError,
    M3HybridError,
    ModelMismatchError,
    StoreLockedError,
    UnsupportedOperationError,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = [
    json.loads(line)
    for line in (ROOT / "examples" / "data" / "corpus.jsonl").read_text().splitlines()
    if line
]
TEXTS = [row["text"] for row in CORPUS]
IDS = [row["id"] for row in CORPUS]


# ----------------------------------------------------------------------------- standard suites


class TestStandardGenericEmbeddingEdge(VectorStoreIntegrationTests):
    """A plain LangChain embedding (not ours): dense mode on the embedded Edge store."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        store = HybridQdrantVectorStore(self.get_embeddings(), path=tmp_path / "edge")
        assert store.retrieval_mode == "dense"
        try:
            yield store
        finally:
            store.close()


class TestStandardGenericEmbeddingRemote(VectorStoreIntegrationTests):
    """The same on the remote backend (qdrant-client local mode stands in for a server)."""

    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        client = QdrantClient(":memory:")
        store = HybridQdrantVectorStore(self.get_embeddings(), client=client, collection_name="std")
        try:
            yield store
        finally:
            store.close()
            client.close()


class TestStandardBGEM3Hybrid(VectorStoreIntegrationTests):
    """Our BGE-M3 embedding (tiny checkpoint): dense + sparse from one pass, RRF hybrid search."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path, tiny_bge_m3_dir: Path) -> Iterator[VectorStore]:
        store = HybridQdrantVectorStore(
            BGEM3Embeddings(model_name=str(tiny_bge_m3_dir)), path=tmp_path / "m3"
        )
        assert store.retrieval_mode == "hybrid"
        try:
            yield store
        finally:
            store.close()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dense(minilm_dir: Path) -> BGEM3Embeddings:
    return BGEM3Embeddings(model_name=str(minilm_dir))


@pytest.fixture(scope="module")
def sparse(splade_dir: Path) -> BGEM3SparseEmbeddings:
    return BGEM3SparseEmbeddings(model_name=str(splade_dir))


@pytest.fixture(scope="module")
def corpus_store(
    tmp_path_factory: pytest.TempPathFactory, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> Iterator[HybridQdrantVectorStore]:
    """The example corpus in a hybrid store (read-only for the tests that use it)."""
    store = HybridQdrantVectorStore(
        dense, sparse_embedding=sparse, path=tmp_path_factory.mktemp("corpus"), collection_name="corpus"
    )
    store.add_texts(TEXTS, [{"topic": row["id"], "n": i} for i, row in enumerate(CORPUS)], ids=IDS)
    yield store
    store.close()


@pytest.fixture
def small_store(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> Iterator[HybridQdrantVectorStore]:
    store = HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=tmp_path / "small")
    yield store
    store.close()


# ----------------------------------------------------------------------------- retrieval quality


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("how does reciprocal rank fusion combine rankings?", "rrf"),
        ("why do plants need sunlight?", "photosynthesis"),
        ("who discovered penicillin?", "penicillin"),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_a_clear_query_ranks_the_relevant_passage_first(
    corpus_store: HybridQdrantVectorStore, query: str, expected: str, mode: str
) -> None:
    docs = corpus_store.similarity_search(query, k=3, mode=mode)
    assert len(docs) == 3 and docs[0].id == expected


@pytest.mark.parametrize("fusion", ["rrf", "dbsf", "m3", FusionMethod.RRF])
def test_every_fusion_ranks_the_relevant_passage_first(
    corpus_store: HybridQdrantVectorStore, fusion: Any
) -> None:
    docs = corpus_store.similarity_search(
        "which model makes dense and sparse vectors in one pass?", k=2, fusion=fusion
    )
    assert docs[0].id == "bge-m3"


def test_m3_normalises_the_splade_side_unless_told_not_to(
    corpus_store: HybridQdrantVectorStore,
    dense: BGEM3Embeddings,
    sparse: BGEM3SparseEmbeddings,
    tmp_path: Path,
) -> None:
    query = "which model makes dense and sparse vectors in one pass?"
    norm = corpus_store.similarity_search_with_score(query, k=3, fusion="m3")
    raw = corpus_store.similarity_search_with_score(query, k=3, fusion="m3", sparse_normalization="none")
    # SPLADE's raw dot products dwarf the cosine; normalised, the sparse term is a fraction of one.
    assert norm[0][1] < 1.0 + 0.3 * 1.5 < raw[0][1]
    store = HybridQdrantVectorStore(
        dense, sparse_embedding=sparse, path=tmp_path / "raw", fusion="m3", sparse_normalization="none"
    )
    try:
        store.add_texts(TEXTS, ids=IDS)
        top = store.similarity_search_with_score(query, k=1)[0]
        assert top[0].id == raw[0][0].id and top[1] == pytest.approx(raw[0][1], rel=1e-4)
    finally:
        store.close()


def test_per_side_candidate_counts_reach_the_engine(corpus_store: HybridQdrantVectorStore) -> None:
    query = "how does reciprocal rank fusion combine rankings?"
    dense_top = [d.id for d in corpus_store.similarity_search(query, k=1, mode="dense")]
    sparse_top = [d.id for d in corpus_store.similarity_search(query, k=1, mode="sparse")]
    fused = corpus_store.similarity_search(query, k=10, dense_candidates=1, sparse_candidates=1)
    # One candidate per side: the fused list is exactly the union of the two top hits.
    assert {d.id for d in fused} == set(dense_top) | set(sparse_top)
    assert len(corpus_store.similarity_search(query, k=10)) == 10


def test_hit_documents_carry_caller_ids_and_exact_metadata(corpus_store: HybridQdrantVectorStore) -> None:
    [doc] = corpus_store.similarity_search("Jupiter gas giant", k=1)
    row = next(i for i, r in enumerate(CORPUS) if r["id"] == "jupiter")
    assert doc == Document(id="jupiter", page_content=TEXTS[row], metadata={"topic": "jupiter", "n": row})


# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("dense", {}),
        ("sparse", {}),
        ("hybrid", {"fusion": "rrf"}),
        ("hybrid", {"fusion": "dbsf"}),
        ("hybrid", {"fusion": "m3"}),
    ],
)
def test_relevance_scores_are_in_unit_range_and_keep_the_order(
    corpus_store: HybridQdrantVectorStore, mode: str, extra: dict[str, Any]
) -> None:
    query = "binary quantization with rescoring"
    raw = corpus_store.similarity_search_with_score(query, k=6, mode=mode, **extra)
    rel = corpus_store.similarity_search_with_relevance_scores(query, k=6, mode=mode, **extra)
    assert [d.id for d, _ in raw] == [d.id for d, _ in rel]
    scores = [s for _, s in rel]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]  # the map is not constant


def test_dense_relevance_is_the_cosine_mapped_to_unit_range(corpus_store: HybridQdrantVectorStore) -> None:
    raw = corpus_store.similarity_search_with_score("volcano lava", k=3, mode="dense")
    rel = corpus_store.similarity_search_with_relevance_scores("volcano lava", k=3, mode="dense")
    for (_, cos), (_, r) in zip(raw, rel, strict=True):
        assert -1.0 <= cos <= 1.0 and math.isclose(r, (1 + cos) / 2, rel_tol=1e-6)


def test_rrf_relevance_of_a_passage_ranked_first_on_both_sides_is_one(
    corpus_store: HybridQdrantVectorStore,
) -> None:
    text = TEXTS[IDS.index("volcano")]
    [(doc, score)] = corpus_store.similarity_search_with_relevance_scores(
        text, k=1, mode="hybrid", fusion="rrf"
    )
    assert doc.id == "volcano" and math.isclose(score, 1.0, rel_tol=1e-6)


def test_score_threshold_on_relevance_drops_weak_hits(corpus_store: HybridQdrantVectorStore) -> None:
    everything = corpus_store.similarity_search_with_relevance_scores("volcano", k=10, mode="dense")
    cut = everything[2][1]
    kept = corpus_store.similarity_search_with_relevance_scores(
        "volcano", k=10, mode="dense", score_threshold=cut
    )
    assert [d.id for d, _ in kept] == [d.id for d, s in everything if s >= cut]
    assert 3 <= len(kept) < len(everything)


def test_default_relevance_fn_follows_the_store_mode(dense: BGEM3Embeddings, tmp_path: Path) -> None:
    with HybridQdrantVectorStore(dense, path=tmp_path / "d") as store:
        assert store.retrieval_mode == "dense"
        assert store._select_relevance_score_fn()(0.0) == 0.5  # cosine 0 -> 0.5


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"topic": "volcano"}, {"volcano"}),
        ({"topic": {"$in": ["tea", "coffee"]}}, {"tea", "coffee"}),
        ({"n": {"$lt": 3}}, {"qdrant-hnsw", "qdrant-quant", "binary-quant"}),
        ({"$and": [{"n": {"$gte": 10}}, {"n": {"$lte": 11}}]}, {"volcano", "photosynthesis"}),
        ({"$or": [{"topic": "bm25"}, {"n": 19}]}, {"bm25", "coffee"}),
        ({"$not": {"n": {"$gte": 1}}}, {"qdrant-hnsw"}),
        (
            models.Filter(
                must=[models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="bread"))]
            ),
            {"bread"},
        ),
    ],
)
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_filters_restrict_every_mode(
    corpus_store: HybridQdrantVectorStore, flt: Any, expected: set[str], mode: str
) -> None:
    docs = corpus_store.similarity_search("anything at all about science", k=20, filter=flt, mode=mode)
    # Sparse search only returns passages sharing a term with the query, so it may find fewer.
    assert {d.id for d in docs} <= expected
    if mode != "sparse":
        assert {d.id for d in docs} == expected
    assert corpus_store.count(filter=flt) == len(expected)


def test_boolean_filters_work_remotely_and_are_refused_on_edge(tmp_path: Path) -> None:
    fake = DeterministicFakeEmbedding(size=8)
    metas = [{"flag": True}, {"flag": False}, {"flag": 1}]
    client = QdrantClient(":memory:")
    with HybridQdrantVectorStore(fake, client=client) as remote:
        remote.add_texts(["a", "b", "c"], metas, ids=["a", "b", "c"])
        assert [d.id for d in remote.similarity_search("a", k=5, filter={"flag": True})] == ["a"]
        assert [d.id for d in remote.similarity_search("a", k=5, filter={"flag": False})] == ["b"]
    client.close()
    with HybridQdrantVectorStore(fake, path=tmp_path / "edge") as edge:
        edge.add_texts(["a", "b", "c"], metas, ids=["a", "b", "c"])
        # Qdrant Edge cannot match booleans: a clear error instead of silently matching flag == 1.
        with pytest.raises(UnsupportedOperationError, match="boolean"):
            edge.similarity_search("a", k=5, filter={"flag": True})


def test_bad_filter_and_unknown_search_argument_are_refused(corpus_store: HybridQdrantVectorStore) -> None:
    with pytest.raises(InvalidInputError, match=r"\$regex"):
        corpus_store.similarity_search("x", filter={"topic": {"$regex": "t.*"}})
    with pytest.raises(InvalidInputError, match="top_k"):
        corpus_store.similarity_search("x", top_k=3)
    with pytest.raises(InvalidInputError, match="k must be > 0"):
        corpus_store.similarity_search("x", k=0)


# ----------------------------------------------------------------------------- adding


def test_generator_input_is_consumed_and_stored(small_store: HybridQdrantVectorStore) -> None:
    generated = (f"generated passage number {i} about tea" for i in range(5))
    ids = small_store.add_texts(generated, ids=(f"g{i}" for i in range(5)))  # type: ignore[arg-type]
    assert ids == [f"g{i}" for i in range(5)]
    assert small_store.count() == 5
    assert [d.page_content for d in small_store.get_by_ids(["g3", "g0"])] == [
        "generated passage number 3 about tea",
        "generated passage number 0 about tea",
    ]


def test_caller_ids_are_kept_as_given(small_store: HybridQdrantVectorStore) -> None:
    ids = ["doc-1", "Ünïcode id/with spaces", "550e8400-e29b-41d4-a716-446655440000", "42"]
    assert small_store.add_texts([f"text {i}" for i in range(4)], ids=ids) == ids
    assert [d.id for d in small_store.get_by_ids(ids)] == ids
    assert {d.id for d in small_store.similarity_search("text", k=10)} == set(ids)


def test_document_ids_are_honoured_and_missing_ones_generated(small_store: HybridQdrantVectorStore) -> None:
    docs = [Document(page_content="alpha", id="a-1"), Document(page_content="beta")]
    ids = small_store.add_documents(docs)
    assert ids[0] == "a-1" and ids[1] and ids[1] != "a-1"
    assert docs[1].id is None  # the caller's document is not mutated
    assert sorted(d.page_content for d in small_store.get_by_ids(ids)) == ["alpha", "beta"]
    # ids= wins over Document.id
    assert small_store.add_documents([Document(page_content="gamma", id="ignored")], ids=["g"]) == ["g"]
    assert small_store.get_by_ids(["ignored"]) == []


def test_metadata_is_returned_exactly_without_injected_keys(small_store: HybridQdrantVectorStore) -> None:
    meta = {
        "source": "a.txt",
        "page": 3,
        "tags": ["x", "y"],
        "nested": {"k": 1.5},
        "flag": False,
        "none": None,
    }
    small_store.add_texts(["metadata round trip"], [meta], ids=["m"])
    [doc] = small_store.similarity_search("metadata round trip", k=1)
    assert doc.metadata == meta
    assert small_store.get_by_ids(["m"])[0].metadata == meta


def test_bad_input_is_refused_before_anything_is_written(small_store: HybridQdrantVectorStore) -> None:
    with pytest.raises(InvalidInputError, match="2 metadatas for 3 texts"):
        small_store.add_texts(["a", "b", "c"], [{}, {}])
    with pytest.raises(InvalidInputError, match="1 ids for 2 texts"):
        small_store.add_texts(["a", "b"], ids=["x"])
    with pytest.raises(InvalidInputError, match="duplicate id 'x' at positions 0 and 2"):
        small_store.add_texts(["a", "b", "c"], ids=["x", "y", "x"])
    with pytest.raises(InvalidTypeError, match=r"ids\[1\]"):
        small_store.add_texts(["a", "b"], ids=["x", 7])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match=r"texts\[1\]"):
        small_store.add_texts(["a", None])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match=r"metadatas\[0\]"):
        small_store.add_texts(["a"], ["not a dict"])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="single str"):
        small_store.add_texts("just one string")
    with pytest.raises(InvalidTypeError, match=r"documents\[0\]"):
        small_store.add_documents(["not a document"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="unexpected keyword"):
        small_store.add_texts(["a"], colour="red")
    assert small_store.count() == 0


# ----------------------------------------------------------------------------- delete / get


def test_delete_by_ids_and_by_filter(small_store: HybridQdrantVectorStore) -> None:
    small_store.add_texts(["one", "two", "three"], [{"g": 1}, {"g": 2}, {"g": 2}], ids=["1", "2", "3"])
    assert small_store.delete(["1", "missing"]) is True
    assert small_store.count() == 2
    small_store.delete(filter={"g": 2})
    assert small_store.count() == 0
    with pytest.raises(InvalidInputError, match="clear"):
        small_store.delete()


# ----------------------------------------------------------------------------- by vector / MMR


def test_search_by_vector_matches_search_by_text_in_dense_mode(
    corpus_store: HybridQdrantVectorStore, dense: BGEM3Embeddings
) -> None:
    query = "espresso brewing pressure"
    by_text = corpus_store.similarity_search(query, k=4, mode="dense")
    by_vector = corpus_store.similarity_search_by_vector(dense.embed_query(query), k=4)
    assert [d.id for d in by_vector] == [d.id for d in by_text]
    with pytest.raises(InvalidInputError, match=r"size 2.*384"):
        corpus_store.similarity_search_by_vector([0.1, 0.2], k=1)


def test_hybrid_search_by_dense_and_sparse_vectors(
    corpus_store: HybridQdrantVectorStore, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> None:
    query = "sourdough starter yeast"
    expected = corpus_store.similarity_search(query, k=3, mode="hybrid")
    query_dense, query_sparse = dense.embed_query(query), sparse.embed_query(query)
    got = corpus_store.similarity_search_by_vector(query_dense, k=3, sparse_vector=query_sparse)
    assert [d.id for d in got] == [d.id for d in expected]
    # The sparse vector is checked once, by the store, whatever its form.
    as_dict = dict(zip(query_sparse.indices, query_sparse.values, strict=True))
    got = corpus_store.similarity_search_by_vector(query_dense, k=3, sparse_vector=as_dict)
    assert [d.id for d in got] == [d.id for d in expected]
    for bad, problem in (({3: float("nan")}, "3"), ({-1: 0.5}, "-1"), ("terms", "str")):
        with pytest.raises(M3HybridError, match=problem):
            corpus_store.similarity_search_by_vector(query_dense, k=3, sparse_vector=bad)


def test_mmr_prefers_diverse_results(small_store: HybridQdrantVectorStore) -> None:
    small_store.add_texts(
        [
            "Green tea leaves are steamed after picking.",
            "Green tea leaves are steamed after picking!",
            "Green tea leaves are steamed soon after they are picked.",
            "Coffee beans are roasted before brewing espresso.",
        ],
        ids=["t1", "t2", "t3", "c"],
    )
    plain = [d.id for d in small_store.similarity_search("green tea", k=2, mode="dense")]
    diverse = [
        d.id for d in small_store.max_marginal_relevance_search("green tea", k=2, fetch_k=4, lambda_mult=0.2)
    ]
    assert set(plain) <= {"t1", "t2", "t3"}
    assert diverse[0] in {"t1", "t2", "t3"} and "c" in diverse
    vec = small_store.embeddings.embed_query("green tea")  # type: ignore[union-attr]
    assert [
        d.id
        for d in small_store.max_marginal_relevance_search_by_vector(vec, k=2, fetch_k=4, lambda_mult=0.2)
    ] == diverse


# ----------------------------------------------------------------------------- async = sync


async def test_async_methods_give_the_sync_results(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> None:
    store = await HybridQdrantVectorStore.afrom_texts(
        TEXTS[:8],
        dense,
        metadatas=[{"i": i} for i in range(8)],
        ids=IDS[:8],
        sparse_embedding=sparse,
        path=tmp_path / "a",
    )
    try:
        query = "sparse term weights"

        def scores(pairs: list[tuple[Document, float]]) -> list[float]:
            # Fused (rank-based) scores can tie, and which tied document makes the cut is unspecified.
            return [round(s, 9) for _, s in pairs]

        hybrid = store.similarity_search_with_score(query, k=3)
        assert scores(await store.asimilarity_search_with_score(query, k=3)) == scores(hybrid)
        assert scores(await store.asimilarity_search_with_relevance_scores(query, k=3)) == scores(
            store.similarity_search_with_relevance_scores(query, k=3)
        )
        assert (await store.asimilarity_search_with_score(query, k=1))[0][0] == hybrid[0][0]
        assert await store.asimilarity_search_with_score(query, k=4, mode="dense") == (
            store.similarity_search_with_score(query, k=4, mode="dense")
        )
        assert await store.asimilarity_search(query, k=3, mode="dense") == store.similarity_search(
            query, k=3, mode="dense"
        )
        assert await store.amax_marginal_relevance_search(query, k=2) == store.max_marginal_relevance_search(
            query, k=2
        )
        assert await store.aget_by_ids(["rrf", "mrl"]) == store.get_by_ids(["rrf", "mrl"])
        assert await store.acount(filter={"i": {"$lt": 4}}) == 4
        await store.adelete(["rrf"])
        assert store.get_by_ids(["rrf"]) == []
    finally:
        await store.aclose()


# ----------------------------------------------------------------------------- modes and options


def test_modes_and_fusion_accept_strings_and_enums(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> None:
    for i, (mode, fusion) in enumerate([("sparse", "dbsf"), (RetrievalMode.HYBRID, FusionMethod.M3)]):
        with HybridQdrantVectorStore(
            dense, sparse_embedding=sparse, path=tmp_path / str(i), retrieval_mode=mode, fusion=fusion
        ) as store:
            assert store.retrieval_mode == str(getattr(mode, "value", mode))
    with pytest.raises(InvalidInputError, match="retrieval mode"):
        HybridQdrantVectorStore(
            dense, sparse_embedding=sparse, path=tmp_path / "x", retrieval_mode="semantic"
        )
    with pytest.raises(InvalidInputError, match="fusion"):
        HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=tmp_path / "y", fusion="sum")


def test_generic_embedding_learns_its_size_and_refuses_sparse_modes(tmp_path: Path) -> None:
    fake = DeterministicFakeEmbedding(size=12)
    with pytest.raises(InvalidInputError, match="sparse"):
        HybridQdrantVectorStore(fake, path=tmp_path / "h", retrieval_mode="hybrid")
    with HybridQdrantVectorStore(fake, path=tmp_path / "g") as store:
        assert store.similarity_search("empty store", k=3) == []
        store.add_texts(["alpha", "beta", "gamma"], ids=["a", "b", "c"])
        assert store.similarity_search("beta", k=1)[0].id == "b"
        with pytest.raises(InvalidInputError, match="sparse"):
            store.similarity_search("beta", mode="sparse")


def test_our_dense_model_plus_a_generic_sparse_embedding(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> None:
    class ForeignSparse:
        """Anything with langchain-qdrant's SparseEmbeddings methods (here: plain dict-free objects)."""

        def embed_documents(self, texts: list[str]) -> list[Any]:
            return sparse.embed_documents(texts)

        def embed_query(self, text: str) -> Any:
            return sparse.embed_query(text)

    with HybridQdrantVectorStore(dense, sparse_embedding=ForeignSparse(), path=tmp_path / "f") as store:
        assert store.retrieval_mode == "hybrid"
        store.add_texts(TEXTS, ids=IDS)
        assert store.similarity_search("who discovered penicillin?", k=1)[0].id == "penicillin"
        assert store.similarity_search("penicillin mould", k=1, mode="sparse")[0].id == "penicillin"


def test_quantization_and_mrl_funnel_options(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings
) -> None:
    with HybridQdrantVectorStore(
        dense, sparse_embedding=sparse, path=tmp_path / "q", quantization="int8", mrl_dim=128
    ) as store:
        store.add_texts(TEXTS, ids=IDS)
        assert store.similarity_search("who discovered penicillin?", k=1, mode="dense")[0].id == "penicillin"
        assert store.similarity_search("who discovered penicillin?", k=1)[0].id == "penicillin"


def test_dense_and_sparse_come_from_one_forward_pass(tmp_path: Path, tiny_bge_m3_dir: Path) -> None:
    embedding = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir), batch_size=64)
    with HybridQdrantVectorStore(embedding, path=tmp_path / "one") as store:
        assert store.retrieval_mode == "hybrid"  # sparse derived from BGE-M3 without a sparse class
        encoder = embedding.encoder
        before = encoder.forward_passes
        store.add_texts([f"one forward pass for dense and sparse number {i}" for i in range(10)])
        # One pass per batch for both outputs. The registry shares one encoder per model, and its
        # first caller's batch size applies: another test's may be below 10 (then two batches).
        batches = -(-10 // encoder.batch_size)  # type: ignore[attr-defined]
        assert encoder.forward_passes - before == batches


# ----------------------------------------------------------------------------- persistence


def test_reopening_in_a_new_process_finds_the_data(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings, minilm_dir: Path, splade_dir: Path
) -> None:
    path = tmp_path / "persist"
    with HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=path, collection_name="kb") as store:
        store.add_texts(TEXTS, [{"topic": i} for i in IDS], ids=IDS)

    script = textwrap.dedent(
        f"""
        import json
        from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings, HybridQdrantVectorStore
        with HybridQdrantVectorStore(
            BGEM3Embeddings(model_name={str(minilm_dir)!r}),
            sparse_embedding=BGEM3SparseEmbeddings(model_name={str(splade_dir)!r}),
            path={str(path)!r}, collection_name="kb",
        ) as store:
            docs = store.similarity_search("who discovered penicillin?", k=2)
            found = {{"count": store.count(), "ids": [d.id for d in docs], "meta": docs[0].metadata}}
            print(json.dumps(found))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"count": len(TEXTS), "ids": result["ids"], "meta": {"topic": "penicillin"}}
    assert result["ids"][0] == "penicillin"


def test_the_collection_guard_refuses_a_different_model(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings, tiny_bge_m3_dir: Path
) -> None:
    path = tmp_path / "guard"
    with HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=path, collection_name="kb") as store:
        store.add_texts(TEXTS[:3], ids=IDS[:3])
    with pytest.raises(ModelMismatchError):
        HybridQdrantVectorStore(
            BGEM3Embeddings(model_name=str(tiny_bge_m3_dir)), path=path, collection_name="kb"
        )
    # The data is untouched and the right model still opens it.
    with HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=path, collection_name="kb") as store:
        assert store.count() == 3


def test_a_second_open_of_the_same_path_is_a_clear_lock_error(tmp_path: Path, dense: BGEM3Embeddings) -> None:
    path = tmp_path / "locked"
    with HybridQdrantVectorStore(dense, path=path), pytest.raises(StoreLockedError):
        HybridQdrantVectorStore(dense, path=path)
    with HybridQdrantVectorStore(dense, path=path) as again:  # closing released the lock
        assert again.count() == 0


def test_repr_never_shows_the_api_key(dense: BGEM3Embeddings) -> None:
    client = QdrantClient(":memory:")
    store = HybridQdrantVectorStore(dense, client=client, api_key="s3cret-key")
    try:
        assert "s3cret" not in repr(store)
    finally:
        store.close()
        client.close()


# ----------------------------------------------------------------------------- as_retriever


def test_as_retriever_search_types(corpus_store: HybridQdrantVectorStore) -> None:
    sim = corpus_store.as_retriever(search_kwargs={"k": 2, "filter": {"topic": {"$ne": "volcano"}}})
    docs = sim.invoke("volcano eruption magma")
    assert len(docs) == 2 and all(d.id != "volcano" for d in docs)
    mmr = corpus_store.as_retriever(search_type="mmr", search_kwargs={"k": 3})
    assert len(mmr.invoke("quantization")) == 3
    thr = corpus_store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"k": 5, "score_threshold": 0.99, "mode": "dense"},
    )
    assert thr.invoke("volcano eruption magma") == []


async def test_async_context_manager_releases_the_store(tmp_path: Path, dense: BGEM3Embeddings) -> None:
    path = tmp_path / "as"
    async with HybridQdrantVectorStore(dense, path=path) as store:
        doc = Document(page_content="async doc", metadata={"a": 1}, id="x")
        assert await store.aadd_documents([doc]) == ["x"]
        assert await store.aget_by_ids(["x"]) == [doc]
    async with HybridQdrantVectorStore(dense, path=path) as again:  # the lock was released
        assert await again.acount() == 1


def test_from_documents_without_a_path_uses_a_temporary_store(dense: BGEM3Embeddings) -> None:
    docs = [
        Document(id=i, page_content=t, metadata={"k": i}) for i, t in zip(IDS[:5], TEXTS[:5], strict=True)
    ]
    store = HybridQdrantVectorStore.from_documents(docs, dense, collection_name="tmp", batch_size=2)
    try:
        assert store.collection_name == "tmp" and store.retrieval_mode == "dense"
        assert store.get_by_ids(IDS[:5]) == docs
    finally:
        store.close()


def test_two_model_store_reuses_the_loaded_models_and_opens_core_collections(
    tmp_path: Path, dense: BGEM3Embeddings, sparse: BGEM3SparseEmbeddings, minilm_dir: Path, splade_dir: Path
) -> None:
    from shared.encoders import load_encoder
    from shared.store import HybridStore

    path = tmp_path / "shared"
    # A collection written by the core directly (as the quickstart and the LlamaIndex adapter do) ...
    with HybridStore(
        "kb", encoder=load_encoder(str(minilm_dir), sparse_model=str(splade_dir)), path=path
    ) as core:
        core.add_texts(TEXTS, ids=IDS)
    # ... opens in the LangChain store built from the two embedding classes (same identity, no guard error).
    with HybridQdrantVectorStore(dense, sparse_embedding=sparse, path=path, collection_name="kb") as store:
        pair = store.store.encoder
        assert (
            pair is not None and pair.dense_encoder is dense.encoder and pair.sparse_encoder is sparse.encoder
        )  # type: ignore[attr-defined]
        assert store.count() == len(TEXTS)
        assert store.similarity_search("who discovered penicillin?", k=1)[0].id == "penicillin"
