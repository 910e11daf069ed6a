"""HybridQdrantVectorStore inside real LlamaIndex pipelines, on the embedded Qdrant Edge backend.

Every scenario runs with two model setups: the real small models (MiniLM dense +
SPLADE-tiny sparse, where semantic relevance is asserted) and the tiny BGE-M3
checkpoint (dense + sparse from one forward pass, where rankings are checked against
the encoder's own vectors).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import Settings, StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from test_llama_support import METADATA, ModelSetup, assert_same_ranking, documents, embed_text, make_setup

from llama_index_ext import HybridQdrantVectorStore
from shared.errors import InvalidInputError, ModelMismatchError, StoreLockedError, UnsupportedOperationError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["small", "tiny-bge-m3"])
def setup(
    request: pytest.FixtureRequest, minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path
) -> ModelSetup:
    return make_setup(request.param, minilm_dir, splade_dir, tiny_bge_m3_dir)


@pytest.fixture(scope="module")
def indexed(
    setup: ModelSetup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HybridQdrantVectorStore, VectorStoreIndex]]:
    """The corpus indexed once per setup with VectorStoreIndex.from_documents (read-only tests)."""
    store = HybridQdrantVectorStore(
        "corpus", path=tmp_path_factory.mktemp(f"store-{setup.name}"), **setup.store_kwargs()
    )
    index = VectorStoreIndex.from_documents(
        documents(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=setup.embed
    )
    yield store, index
    store.close()


def titles(nodes: Any) -> list[str]:
    return [n.node.metadata["title"] for n in nodes]


def doc_ids(nodes: Any) -> list[str]:
    return [n.node.ref_doc_id for n in nodes]


def sparse_ranking(setup: ModelSetup, query: str) -> list[str]:
    """Doc ids by the dot product of the encoder's own sparse vectors (brute force)."""
    model = setup.sparse_model()
    q = model.get_query_embedding(query)
    scores = {}
    for doc_id in METADATA:
        d = model.get_text_embedding(embed_text(doc_id))
        scores[doc_id] = sum(w * d.get(t, 0.0) for t, w in q.items())
    return sorted((k for k in scores if scores[k] > 0), key=lambda k: -scores[k])


# -- VectorStoreIndex.from_documents + as_retriever ------------------------------------


def test_index_returns_real_nodes_with_metadata_and_relationships(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex],
) -> None:
    store, index = indexed
    assert store.count() == len(METADATA)
    hits = index.as_retriever(similarity_top_k=3).retrieve(embed_text("godfather"))
    top = hits[0].node
    assert isinstance(top, TextNode)
    assert top.ref_doc_id == "godfather"
    assert top.relationships[NodeRelationship.SOURCE].node_id == "godfather"
    assert top.metadata == METADATA["godfather"]
    assert top.text.startswith("The Godfather tells the story")
    assert top.embedding is None


@pytest.mark.parametrize("doc_id", ["photosynthesis", "orwell", "quantization"])
def test_dense_query_finds_the_passage_first(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex], doc_id: str
) -> None:
    _, index = indexed
    hits = index.as_retriever(similarity_top_k=3).retrieve(embed_text(doc_id))
    assert doc_ids(hits)[0] == doc_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)  # cosine of identical texts


def test_sparse_mode_ranks_by_the_sparse_dot_product(
    setup: ModelSetup, indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex]
) -> None:
    _, index = indexed
    query = "prison tunnel banker escapes"
    hits = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=8).retrieve(query)
    expected = sparse_ranking(setup, query)
    assert expected
    assert doc_ids(hits) == expected[: len(hits)] and len(hits) == min(8, len(expected))
    assert doc_ids(hits)[0] == "shawshank" or not setup.trained


RELEVANCE = [
    (mode, query, doc_id)
    for query, doc_id in [
        ("why do plants need sunlight?", "photosynthesis"),
        ("how does reciprocal rank fusion combine rankings?", "rrf"),
        ("a government that spies on its citizens", "orwell"),
    ]
    for mode in ("default", "sparse", "hybrid")
    # No term shared between this query and its passage: a lexical model cannot find it.
    if not (mode == "sparse" and doc_id == "orwell")
]


@pytest.mark.parametrize("setup", ["small"], indirect=True)
@pytest.mark.parametrize(("mode", "query", "doc_id"), RELEVANCE)
def test_small_models_rank_the_relevant_passage_first(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex], mode: str, query: str, doc_id: str
) -> None:
    _, index = indexed
    hits = index.as_retriever(vector_store_query_mode=mode, similarity_top_k=3).retrieve(query)
    assert doc_ids(hits)[0] == doc_id


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.7])
async def test_alpha_extremes_are_exact_in_sync_and_async(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex], alpha: float
) -> None:
    _, index = indexed
    query = "a lawyer defends an innocent man"
    hybrid = index.as_retriever(vector_store_query_mode="hybrid", alpha=alpha, similarity_top_k=5)
    sync_hits = hybrid.retrieve(query)
    async_hits = await hybrid.aretrieve(query)
    assert_same_ranking(sync_hits, async_hits)
    if alpha == 0.0:
        reference = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=5).retrieve(query)
    elif alpha == 1.0:
        reference = index.as_retriever(similarity_top_k=5).retrieve(query)
    else:
        # A mix is a fused ranking: neither the pure dense nor the pure sparse scores.
        dense = index.as_retriever(similarity_top_k=5).retrieve(query)
        assert [n.score for n in sync_hits] != [n.score for n in dense]
        return
    assert_same_ranking(sync_hits, reference)


def test_alpha_weights_dense_against_sparse(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex], setup: ModelSetup
) -> None:
    store, _ = indexed
    query = "a mafia family business in New York"

    def scores(alpha: float) -> dict[str, float]:
        q = VectorStoreQuery(
            query_str=query, mode=VectorStoreQueryMode.HYBRID, alpha=alpha, similarity_top_k=8
        )
        result = store.query(q, fusion="m3")  # m3: the weighted sum of the two similarities
        return dict(zip(result.ids or [], result.similarities or [], strict=True))

    dense, sparse, mixed = scores(1.0), scores(0.0), scores(0.7)
    assert mixed and sparse
    # alpha=0 returns raw sparse scores; inside m3 a SPLADE score is divided by the query's
    # own q.q (sparse_normalization="auto"), a BGE-M3 one is not.
    scale = 1.0
    if setup.name == "small":
        q = setup.sparse_model().get_query_embedding(query)
        scale = 1.0 / sum(w * w for w in q.values())
    for node_id, score in mixed.items():
        expected = 0.7 * dense[node_id] + 0.3 * scale * sparse.get(node_id, 0.0)
        assert score == pytest.approx(expected, abs=1e-4)


def test_m3_sparse_normalization_follows_the_sparse_model(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex], setup: ModelSetup
) -> None:
    store, _ = indexed
    query = "a mafia family business in New York"

    def top(**kw: Any) -> float:
        q = VectorStoreQuery(query_str=query, mode=VectorStoreQueryMode.HYBRID, similarity_top_k=3)
        result = store.query(q, fusion="m3", **kw)
        assert result.similarities
        return result.similarities[0]

    auto, none, query_norm = top(), top(sparse_normalization="none"), top(sparse_normalization="query")
    # auto: raw for BGE-M3's lexical weights, divided by the query's q.q for SPLADE.
    assert auto == pytest.approx(none if setup.name == "tiny-bge-m3" else query_norm, rel=1e-5)
    if setup.name == "small":
        assert none > query_norm + 1.0  # SPLADE's raw scale, which normalisation removes
    with pytest.raises(InvalidInputError, match="unknown sparse_normalization"):
        top(sparse_normalization="max")


def test_bad_alpha_and_modes_are_refused(indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex]) -> None:
    store, _ = indexed
    for alpha in (-0.1, 1.5):
        with pytest.raises(InvalidInputError, match="alpha"):
            store.query(VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.HYBRID, alpha=alpha))
    with pytest.raises(UnsupportedOperationError, match="dbsf"):
        store.query(
            VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.HYBRID, alpha=0.5), fusion="dbsf"
        )
    with pytest.raises(UnsupportedOperationError, match="text_search"):
        store.query(VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.TEXT_SEARCH))
    with pytest.raises(InvalidInputError, match="unknown query options"):
        store.query(VectorStoreQuery(query_str="x"), colour="blue")
    with pytest.raises(InvalidInputError, match="needs sparse query vectors or text"):
        store.query(VectorStoreQuery(mode=VectorStoreQueryMode.SPARSE))


def test_top_k_doc_ids_and_node_ids_are_honoured(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex],
) -> None:
    store, _ = indexed
    q = "stories and notes"

    def run(**kw: Any) -> list[str]:
        result = store.query(VectorStoreQuery(query_str=q, **kw))
        return [n.ref_doc_id for n in result.nodes or []]

    assert len(run(similarity_top_k=3)) == 3
    assert len(run(mode=VectorStoreQueryMode.SPARSE, similarity_top_k=2, sparse_top_k=4)) <= 4
    assert len(run(mode=VectorStoreQueryMode.HYBRID, similarity_top_k=8, hybrid_top_k=5)) == 5
    # Each side fetches at least candidate_k (100) candidates, so 5 results are filled even from
    # LlamaIndex's 2 dense + 2 sparse.
    assert len(run(mode=VectorStoreQueryMode.HYBRID, similarity_top_k=2, hybrid_top_k=5)) == 5
    assert sorted(run(similarity_top_k=8, doc_ids=["orwell", "rrf"])) == ["orwell", "rrf"]
    node_id = store.query(VectorStoreQuery(query_str=embed_text("inception"))).ids
    assert node_id
    assert run(similarity_top_k=8, node_ids=node_id) == ["inception"]
    # as_retriever passes node_ids=[] for "all nodes": it must not restrict anything.
    assert len(run(similarity_top_k=8, node_ids=[])) == 8


def test_mmr_diversifies(indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex]) -> None:
    _, index = indexed
    query = embed_text("rrf")
    relevance_only = index.as_retriever(
        vector_store_query_mode="mmr", similarity_top_k=3, vector_store_kwargs={"mmr_prefetch_k": 8}
    )
    dense = index.as_retriever(similarity_top_k=3).retrieve(query)
    mmr = relevance_only.retrieve(query)
    assert doc_ids(mmr)[0] == "rrf"
    assert len(set(doc_ids(mmr))) == 3
    assert {n.node.node_id for n in dense} >= {mmr[0].node.node_id}


# -- every filter operator on real data -------------------------------------------------

FILTER_CASES: list[tuple[str, Any, FilterOperator]] = [
    ("author", "Harper Lee", FilterOperator.EQ),
    ("year", 1994, FilterOperator.EQ),
    ("rating", 4.5, FilterOperator.EQ),
    ("author", "Search Notes", FilterOperator.NE),
    ("year", 2001, FilterOperator.GT),
    ("year", 2001, FilterOperator.GTE),
    ("rating", 4.2, FilterOperator.LT),
    ("rating", 4.2, FilterOperator.LTE),
    ("date", "1955-01-01", FilterOperator.GT),
    ("author", ["Harper Lee", "George Orwell"], FilterOperator.IN),
    ("year", [1949, 2010], FilterOperator.NIN),
    ("tags", ["law", "biology"], FilterOperator.ANY),
    ("tags", ["classic", "law"], FilterOperator.ALL),
    ("tags", "search", FilterOperator.CONTAINS),
    ("title", "Redemption", FilterOperator.TEXT_MATCH),
    ("title", "rank FUSION", FilterOperator.TEXT_MATCH_INSENSITIVE),
    ("author", None, FilterOperator.IS_EMPTY),
]


def reference(filters: MetadataFilters) -> set[str]:
    fn = build_metadata_filter_fn(lambda doc_id: METADATA[doc_id], filters)
    return {doc_id for doc_id in METADATA if fn(doc_id)}


def test_every_operator_is_exercised() -> None:
    assert {op for _, _, op in FILTER_CASES} == set(FilterOperator)


@pytest.mark.parametrize(
    ("key", "value", "op"), FILTER_CASES, ids=[f"{o.name}-{k}" for k, _, o in FILTER_CASES]
)
@pytest.mark.parametrize("mode", ["default", "hybrid"])
def test_filter_operators_on_stored_nodes(
    indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex],
    mode: str,
    key: str,
    value: Any,
    op: FilterOperator,
) -> None:
    _, index = indexed
    filters = MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=op)])
    expected = reference(filters)
    assert expected and expected != set(METADATA)  # every case selects something, not everything
    retriever = index.as_retriever(vector_store_query_mode=mode, similarity_top_k=20, filters=filters)
    got = retriever.retrieve("stories, films and notes about search")
    if mode == "hybrid":
        # Hybrid only returns points found by a side; sparse may miss some, dense finds all.
        assert set(doc_ids(got)) <= expected and len(got) >= 1
    else:
        assert set(doc_ids(got)) == expected


def test_nested_filters_on_stored_nodes(indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex]) -> None:
    _, index = indexed
    filters = MetadataFilters(
        filters=[
            MetadataFilters(
                filters=[
                    MetadataFilter(key="year", value=1970, operator=FilterOperator.LT),
                    MetadataFilter(key="author", value="Search Notes", operator=FilterOperator.EQ),
                ],
                condition=FilterCondition.OR,
            ),
            MetadataFilters(
                filters=[MetadataFilter(key="tags", value="memory", operator=FilterOperator.CONTAINS)],
                condition=FilterCondition.NOT,
            ),
        ]
    )
    got = index.as_retriever(similarity_top_k=20, filters=filters).retrieve("anything")
    assert sorted(doc_ids(got)) == ["mockingbird", "orwell", "rrf"]


# -- IngestionPipeline, query engine ---------------------------------------------------


def test_ingestion_pipeline_writes_through_the_store(setup: ModelSetup, tmp_path: Path) -> None:
    with HybridQdrantVectorStore("pipe", path=tmp_path, **setup.store_kwargs()) as store:
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), setup.embed],
            vector_store=store,
        )
        passes = setup.embed.encoder.forward_passes
        nodes = pipeline.run(documents=documents())
        assert store.count() == len(nodes) >= len(METADATA)
        if setup.sparse is None:
            # One BGE-M3 model: the pipeline's dense pass also gave the store its sparse vectors.
            batches = -(-len(nodes) // setup.embed.embed_batch_size)
            assert setup.embed.encoder.forward_passes - passes <= batches
        index = VectorStoreIndex.from_vector_store(store, embed_model=setup.embed)
        first = nodes[3]
        hits = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2).retrieve(
            first.get_content(metadata_mode="embed")  # type: ignore[arg-type]
        )
        assert hits[0].node.node_id == first.node_id


@pytest.fixture
def mock_llm() -> Iterator[None]:
    previous = Settings._llm
    Settings.llm = MockLLM()
    yield
    Settings._llm = previous


@pytest.mark.usefixtures("mock_llm")
async def test_query_engine_with_mock_llm_cites_the_right_source(
    setup: ModelSetup, indexed: tuple[HybridQdrantVectorStore, VectorStoreIndex]
) -> None:
    _, index = indexed
    engine = index.as_query_engine(vector_store_query_mode="hybrid", similarity_top_k=2)
    question = "why do plants need sunlight?" if setup.trained else embed_text("photosynthesis")
    response = engine.query(question)
    assert response.source_nodes[0].node.ref_doc_id == "photosynthesis" or not setup.trained
    assert "photosynthesis" in {n.node.ref_doc_id for n in response.source_nodes}
    aresponse = await engine.aquery(question)
    assert_same_ranking(aresponse.source_nodes, response.source_nodes)


# -- persistence, guard, lock -------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from llama_index.core import VectorStoreIndex
    from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding, HybridQdrantVectorStore
    path, dense, sparse, query = sys.argv[1:5]
    embed = BGEM3Embedding(model_name=dense)
    sparse_model = BGEM3SparseEmbedding(model_name=sparse) if sparse != "-" else None
    kwargs = {"embed_model": embed, "sparse_embed_model": sparse_model}
    with HybridQdrantVectorStore("corpus", path=path, **kwargs) as store:
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
        hits = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3).retrieve(query)
        print(json.dumps({"count": store.count(), "hits": [
            {"ref": h.node.ref_doc_id, "text": h.node.text, "metadata": h.node.metadata} for h in hits]}))
    """
)


def test_reopen_in_a_new_process_without_reingesting(setup: ModelSetup, tmp_path: Path) -> None:
    with HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs()) as store:
        VectorStoreIndex.from_documents(
            documents(),
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=setup.embed,
        )
    dense, sparse = setup.model_args()
    query = "why do plants need sunlight?" if setup.trained else embed_text("photosynthesis")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), dense, sparse or "-", query],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["count"] == len(METADATA)
    top = out["hits"][0]
    assert top["ref"] == "photosynthesis"
    assert top["metadata"] == METADATA["photosynthesis"] and top["text"].startswith("Plants need sunlight")


def test_collection_guard_refuses_a_different_model(
    setup: ModelSetup, tmp_path: Path, minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path
) -> None:
    with HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs()) as store:
        store.add([TextNode(text="a passage", id_="n1")])
    other = make_setup(
        "tiny-bge-m3" if setup.name == "small" else "small", minilm_dir, splade_dir, tiny_bge_m3_dir
    )
    with pytest.raises(ModelMismatchError):
        HybridQdrantVectorStore("corpus", path=tmp_path, **other.store_kwargs())
    # The same models reopen it, with the data intact.
    with HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs()) as store:
        assert [n.node_id for n in store.get_nodes(["n1"])] == ["n1"]


def test_a_second_open_of_the_same_path_is_a_clear_lock_error(setup: ModelSetup, tmp_path: Path) -> None:
    with (
        HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs()),
        pytest.raises(StoreLockedError),
    ):
        HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs())


# -- delete, get, clear ---------------------------------------------------------------------


async def test_deleted_documents_never_come_back(setup: ModelSetup, tmp_path: Path) -> None:
    with HybridQdrantVectorStore("corpus", path=tmp_path, **setup.store_kwargs()) as store:
        index = VectorStoreIndex.from_documents(
            documents(),
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=setup.embed,
        )
        query = embed_text("photosynthesis")
        assert doc_ids(index.as_retriever(similarity_top_k=1).retrieve(query)) == ["photosynthesis"]
        index.delete_ref_doc("photosynthesis")
        await store.adelete("orwell")
        assert store.count() == len(METADATA) - 2
        for mode in ("default", "sparse", "hybrid", "mmr"):
            for q in (query, embed_text("orwell"), "plants sunlight government citizens"):
                got = doc_ids(
                    index.as_retriever(vector_store_query_mode=mode, similarity_top_k=20).retrieve(q)
                )
                assert "photosynthesis" not in got and "orwell" not in got
                got = doc_ids(
                    await index.as_retriever(vector_store_query_mode=mode, similarity_top_k=20).aretrieve(q)
                )
                assert "photosynthesis" not in got and "orwell" not in got


def test_delete_nodes_get_nodes_and_clear(setup: ModelSetup, tmp_path: Path) -> None:
    nodes = [
        TextNode(id_=f"n{i}", text=f"passage number {i} about topic {i % 3}", metadata={"group": i % 3})
        for i in range(6)
    ]
    with HybridQdrantVectorStore("nodes", path=tmp_path, **setup.store_kwargs()) as store:
        assert store.add(nodes) == [n.node_id for n in nodes]
        got = store.get_nodes(["n4", "missing", "n1"])
        assert [n.node_id for n in got] == ["n4", "n1"]
        assert got[0].get_content() == "passage number 4 about topic 1" and got[0].metadata == {"group": 1}
        group0 = MetadataFilters(filters=[MetadataFilter(key="group", value=0)])
        assert sorted(n.node_id for n in store.get_nodes(filters=group0)) == ["n0", "n3"]
        assert [n.node_id for n in store.get_nodes(["n3", "n1", "n0"], filters=group0)] == ["n3", "n0"]
        assert [n.node_id for n in asyncio.run(store.aget_nodes(filters=group0, node_ids=["n0"]))] == ["n0"]
        store.delete_nodes(
            ["n0", "n1"], filters=MetadataFilters(filters=[MetadataFilter(key="group", value=1)])
        )
        assert store.count() == 5  # only n1 is in the ids AND in group 1
        store.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="group", value=2)]))
        assert sorted(n.node_id for n in store.get_nodes([n.node_id for n in nodes])) == ["n0", "n3", "n4"]
        with pytest.raises(InvalidInputError, match="clear"):
            store.delete_nodes()
        store.clear()
        assert store.count() == 0


# -- the store embeds nodes itself ----------------------------------------------------------


def test_store_embeds_nodes_without_embeddings_in_one_pass(setup: ModelSetup, tmp_path: Path) -> None:
    nodes = [
        TextNode(id_=doc_id, text=text, metadata={"k": doc_id})
        for doc_id, text in zip(METADATA, [embed_text(d) for d in METADATA], strict=True)
    ]
    with HybridQdrantVectorStore("self", path=tmp_path, **setup.store_kwargs()) as store:
        passes = setup.embed.encoder.forward_passes
        store.add(nodes)
        if setup.sparse is None:
            # dense + sparse of every node from BGE-M3's one pass per batch
            assert setup.embed.encoder.forward_passes - passes == -(
                -len(nodes) // setup.embed.embed_batch_size
            )
        records = store.store.get([n.node_id for n in nodes], with_vectors=True)
        contents = [n.get_content(metadata_mode="embed") for n in nodes]  # type: ignore[arg-type]
        dense = np.array(setup.embed.get_text_embedding_batch(contents))
        np.testing.assert_allclose(np.array([r.dense for r in records]), dense, atol=1e-5)
        sparse = setup.sparse_model().get_text_embedding_batch(contents)
        for record, expected in zip(records, sparse, strict=True):
            assert record.sparse is not None and record.sparse.keys() == expected.keys()
            np.testing.assert_allclose(
                [record.sparse[k] for k in expected], list(expected.values()), rtol=1e-3
            )


def test_nodes_without_embeddings_need_an_embed_model(tmp_path: Path) -> None:
    with HybridQdrantVectorStore("bare", path=tmp_path, dense_dim=3, sparse=False) as store:
        store.add([TextNode(id_="a", text="x", embedding=[1.0, 0.0, 0.0])])
        with pytest.raises(InvalidInputError, match=r"record 'b' \(index 1\): no dense vector given"):
            store.add([TextNode(id_="c", text="y", embedding=[0.0, 1.0, 0.0]), TextNode(id_="b", text="z")])
        assert store.count() == 1  # nothing of the refused call was written
        hits = store.query(VectorStoreQuery(query_embedding=[0.9, 0.1, 0.0], similarity_top_k=1))
        assert hits.ids == ["a"]
        with pytest.raises(InvalidInputError, match="sparse"):
            store.query(VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.SPARSE))
