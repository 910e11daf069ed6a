"""LlamaIndex retrieval of many queries (``aretrieve`` under ``asyncio.gather``, threads) goes
through the store's micro-batcher, each result as alone (issue 19)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from llama_index.core.schema import NodeWithScore, TextNode

from llama_index_ext import (
    BGEM3Embedding,
    BGEM3SparseEmbedding,
    HybridQdrantRetriever,
    HybridQdrantVectorStore,
)
from shared.serving import MicroBatcher, shared_batcher
from tests.support.checkpoint import sample_corpus

QUERIES = ["a dense vector", "the quick brown fox", "capital of France", "history of the city", "stars"]


@pytest.fixture(scope="module")
def retriever(
    tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, splade_dir: Path
) -> Iterator[HybridQdrantRetriever]:
    store = HybridQdrantVectorStore(
        embed_model=BGEM3Embedding(model_name=str(minilm_dir), cache_size=0),
        sparse_embed_model=BGEM3SparseEmbedding(model_name=str(splade_dir), cache_size=0),
        path=str(tmp_path_factory.mktemp("li-serving")),
    )
    nodes = [TextNode(id_=f"d{i}", text=t) for i, t in enumerate(sample_corpus()[:40])]
    store.add(nodes)
    # No embed_model on the retriever: the store encodes the query text (through its batcher).
    yield HybridQdrantRetriever(vector_store=store, similarity_top_k=4)
    store.close()


def ids(hits: list[NodeWithScore]) -> list[str]:
    return sorted(h.node.node_id for h in hits)  # fused scores may tie: compared as sets


async def test_aretrieve_under_gather_and_threads_go_through_the_batcher(
    retriever: HybridQdrantRetriever,
) -> None:
    alone = [ids(retriever.retrieve(q)) for q in QUERIES]
    batcher = retriever.vector_store.store._query_encoder
    assert isinstance(batcher, MicroBatcher)
    before, batches = batcher.requests, batcher.batches
    gathered = await asyncio.gather(*(retriever.aretrieve(q) for q in QUERIES))
    assert [ids(r) for r in gathered] == alone
    assert batcher.requests - before == len(QUERIES)
    assert batcher.batches - batches < len(QUERIES)  # coroutines queued during the first pass joined
    with ThreadPoolExecutor(len(QUERIES)) as pool:
        threaded = list(pool.map(retriever.retrieve, QUERIES))
    assert [ids(r) for r in threaded] == alone
    assert batcher.requests - before == 2 * len(QUERIES)


async def test_llama_index_own_retriever_embeds_queries_through_the_shared_batcher(
    retriever: HybridQdrantRetriever,
) -> None:
    """``VectorStoreIndex.as_retriever()`` embeds the query with the embed model (LlamaIndex's
    way): our embedding classes queue it in the process's shared batcher."""
    from llama_index.core import VectorStoreIndex

    store = retriever.vector_store
    embed = store.embed_model
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    li_retriever = index.as_retriever(similarity_top_k=4, vector_store_query_mode="hybrid")
    alone = [ids(li_retriever.retrieve(q)) for q in QUERIES]
    batcher = shared_batcher(embed.encoder)
    assert batcher is not None
    before = batcher.requests
    gathered = await asyncio.gather(*(li_retriever.aretrieve(q) for q in QUERIES))
    assert [ids(r) for r in gathered] == alone
    assert batcher.requests - before == len(QUERIES)
