"""LangChain's Runnable batch/abatch on our retrievers go through the store's micro-batcher (issue 19).

The Runnable contract is kept (order, ``return_exceptions``, per-input config) and each
result is what ``invoke`` returns alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_ext import (
    BGEM3Embeddings,
    BGEM3SparseEmbeddings,
    HybridQdrantRetriever,
    HybridQdrantVectorStore,
)
from shared.errors import InvalidTypeError
from shared.serving import MicroBatcher
from tests.support.checkpoint import sample_corpus

QUERIES = ["a dense vector", "the quick brown fox", "capital of France", "history of the city", "stars"]


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, splade_dir: Path
) -> Iterator[HybridQdrantVectorStore]:
    vs = HybridQdrantVectorStore(
        BGEM3Embeddings(model_name=str(minilm_dir), cache_size=0),
        sparse_embedding=BGEM3SparseEmbeddings(model_name=str(splade_dir), cache_size=0),
        path=tmp_path_factory.mktemp("lc-serving"),
    )
    texts = sample_corpus()[:40]
    vs.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
    yield vs
    vs.close()


class Seen(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: dict[str, list[str]] = {}

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        **kw: Any,
    ) -> None:
        self.runs[query] = list(tags or [])


def texts(docs: list[Document]) -> list[str]:
    """The ids found (a set: fused scores may tie, and the engine orders ties either way)."""
    return sorted(str(d.id) for d in docs)


def batcher_of(vs: HybridQdrantVectorStore) -> MicroBatcher:
    b = vs.store._query_encoder
    assert isinstance(b, MicroBatcher)
    return b


@pytest.mark.parametrize("use_async", [False, True])
async def test_batch_keeps_the_runnable_contract_and_goes_through_the_batcher(
    store: HybridQdrantVectorStore, use_async: bool
) -> None:
    retriever = HybridQdrantRetriever(vectorstore=store, k=4)
    alone = [texts(retriever.invoke(q)) for q in QUERIES]
    batcher = batcher_of(store)
    before = batcher.requests
    seen = Seen()
    configs: list[Any] = [{"tags": [f"q{i}"], "callbacks": [seen]} for i in range(len(QUERIES) + 1)]
    inputs: list[Any] = [*QUERIES[:2], 7, *QUERIES[2:]]  # one bad input in the middle
    if use_async:
        out = await retriever.abatch(inputs, configs, return_exceptions=True)
    else:
        out = retriever.batch(inputs, configs, return_exceptions=True)
    assert isinstance(out[2], InvalidTypeError)
    good = [r for i, r in enumerate(out) if i != 2]
    assert [texts(r) for r in good] == alone  # order kept, each as alone
    assert batcher.requests - before == len(QUERIES)  # every good query went through the micro-batcher
    assert {q: seen.runs[q] for q in QUERIES} == {
        q: [f"q{i if i < 2 else i + 1}"] for i, q in enumerate(QUERIES)
    }
    with pytest.raises(InvalidTypeError):
        (await retriever.abatch(inputs)) if use_async else retriever.batch(inputs)


async def test_vectorstore_retriever_batches_too(store: HybridQdrantVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 3})
    alone = [texts(retriever.invoke(q)) for q in QUERIES]
    assert [texts(r) for r in retriever.batch(QUERIES)] == alone
    assert [texts(r) for r in await retriever.abatch(QUERIES)] == alone
