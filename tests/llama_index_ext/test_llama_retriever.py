"""HybridQdrantRetriever: built from documents or over a store, sync and async, every mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from test_llama_support import METADATA, ModelSetup, assert_same_ranking, documents, embed_text, make_setup

from llama_index_ext import HybridQdrantRetriever, HybridQdrantVectorStore
from shared.errors import InvalidInputError, InvalidTypeError


@pytest.fixture(scope="module", params=["small", "tiny-bge-m3"])
def setup(
    request: pytest.FixtureRequest, minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path
) -> ModelSetup:
    return make_setup(request.param, minilm_dir, splade_dir, tiny_bge_m3_dir)


@pytest.fixture(scope="module")
def retriever(setup: ModelSetup) -> Iterator[HybridQdrantRetriever]:
    r = HybridQdrantRetriever.from_documents(
        documents(),
        embed_model=setup.embed,
        sparse_embed_model=setup.sparse,
        transformations=[SentenceSplitter(chunk_size=256)],
        similarity_top_k=3,
    )
    yield r
    r.vector_store.close()


def refs(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.node.ref_doc_id for h in hits]


def test_from_documents_stores_every_document(retriever: HybridQdrantRetriever) -> None:
    assert retriever.vector_store.count() == len(METADATA)
    assert retriever.vector_store.path is None  # a temporary embedded store


async def test_sync_and_async_return_the_same_nodes(
    setup: ModelSetup, retriever: HybridQdrantRetriever
) -> None:
    query = "why do plants need sunlight?" if setup.trained else embed_text("photosynthesis")
    sync_hits = retriever.retrieve(query)
    async_hits = await retriever.aretrieve(query)
    assert_same_ranking(sync_hits, async_hits)
    assert len(sync_hits) == 3 and refs(sync_hits)[0] == "photosynthesis"


@pytest.mark.parametrize("mode", ["dense", "default", "sparse", "hybrid", "mmr"])
async def test_every_mode_over_the_same_store(
    setup: ModelSetup, retriever: HybridQdrantRetriever, mode: str
) -> None:
    r = HybridQdrantRetriever(retriever.vector_store, mode=mode, similarity_top_k=2)
    query = embed_text("rrf")
    hits = r.retrieve(query)
    assert len(hits) == 2
    if mode != "sparse" or setup.trained:
        assert refs(hits)[0] == "rrf"
    assert_same_ranking(await r.aretrieve(query), hits)


def test_an_explicit_embed_model_gives_the_same_results(
    setup: ModelSetup, retriever: HybridQdrantRetriever
) -> None:
    with_model = HybridQdrantRetriever(retriever.vector_store, embed_model=setup.embed, similarity_top_k=3)
    query = embed_text("godfather")
    passes = setup.embed.encoder.forward_passes
    hits = with_model.retrieve(query)
    # Same nodes with the same scores (RRF ties may come back in either order).
    assert {h.node.node_id: h.score for h in hits} == {
        h.node.node_id: h.score for h in retriever.retrieve(query)
    }
    assert refs(hits)[0] == "godfather"
    assert setup.embed.encoder.forward_passes - passes <= 2  # the query encoded once per model at most


def test_filters_and_alpha(retriever: HybridQdrantRetriever) -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="tags", value=["law"], operator=FilterOperator.ANY)]
    )
    r = HybridQdrantRetriever(retriever.vector_store, filters=filters, alpha=1.0, similarity_top_k=5)
    assert sorted(refs(r.retrieve("stories"))) == ["godfather", "mockingbird"]
    sparse_only = HybridQdrantRetriever(retriever.vector_store, alpha=0.0, similarity_top_k=5)
    sparse = HybridQdrantRetriever(retriever.vector_store, mode="sparse", similarity_top_k=5)
    query = "prison tunnel"
    assert [h.score for h in sparse_only.retrieve(query)] == [h.score for h in sparse.retrieve(query)]


def test_bad_arguments_are_refused(retriever: HybridQdrantRetriever, setup: ModelSetup) -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        HybridQdrantRetriever(retriever.vector_store, mode="text_search")
    with pytest.raises(InvalidTypeError, match="HybridQdrantVectorStore"):
        HybridQdrantRetriever(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="similarity_top_k"):
        HybridQdrantRetriever(retriever.vector_store, similarity_top_k=0)
    with pytest.raises(InvalidTypeError, match=r"documents\[1\]"):
        HybridQdrantRetriever.from_documents([documents()[0], "text"], embed_model=setup.embed)  # type: ignore[list-item]


def test_from_documents_on_a_path_persists(setup: ModelSetup, tmp_path: Path) -> None:
    r = HybridQdrantRetriever.from_documents(
        documents()[:3],
        embed_model=setup.embed,
        sparse_embed_model=setup.sparse,
        path=tmp_path,
        collection_name="c",
    )
    r.vector_store.close()
    with HybridQdrantVectorStore("c", path=tmp_path, **setup.store_kwargs()) as store:
        assert store.count() == 3
        assert refs(HybridQdrantRetriever(store, similarity_top_k=1).retrieve(embed_text("orwell"))) == [
            "orwell"
        ]


async def test_works_inside_a_query_engine(setup: ModelSetup, retriever: HybridQdrantRetriever) -> None:
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    question = "why do plants need sunlight?" if setup.trained else embed_text("photosynthesis")
    response = engine.query(question)
    assert response.source_nodes[0].node.ref_doc_id == "photosynthesis"
    aresponse = await engine.aquery(question)
    assert_same_ranking(aresponse.source_nodes, response.source_nodes)
