"""HybridQdrantRetriever: LangChain's standard retriever suite, k/filter/mode overrides, LCEL chains."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_ext import (
    BGEM3Embeddings,
    BGEM3SparseEmbeddings,
    HybridQdrantRetriever,
    HybridQdrantVectorStore,
    RetrievalMode,
)
from shared.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
SCIENCE = {"volcano", "photosynthesis", "jupiter", "penicillin"}
CORPUS = [
    json.loads(line)
    for line in (ROOT / "examples" / "data" / "corpus.jsonl").read_text().splitlines()
    if line
]


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, splade_dir: Path
) -> Iterator[HybridQdrantVectorStore]:
    vs = HybridQdrantVectorStore(
        BGEM3Embeddings(model_name=str(minilm_dir)),
        sparse_embedding=BGEM3SparseEmbeddings(model_name=str(splade_dir)),
        path=tmp_path_factory.mktemp("retriever"),
    )
    vs.add_texts(
        [r["text"] for r in CORPUS],
        [{"topic": r["id"], "kind": "science" if r["id"] in SCIENCE else "other"} for r in CORPUS],
        ids=[r["id"] for r in CORPUS],
    )
    yield vs
    vs.close()


class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own retriever suite on a populated hybrid store."""

    @pytest.fixture(autouse=True)
    def _store(self, store: HybridQdrantVectorStore) -> None:
        self.vs = store

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return HybridQdrantRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": self.vs}

    @property
    def retriever_query_example(self) -> str:
        return "how is memory saved by quantization?"


def test_k_filter_and_mode_from_constructor_and_per_call(store: HybridQdrantVectorStore) -> None:
    retriever = HybridQdrantRetriever(
        vectorstore=store, k=2, filter={"kind": "science"}, mode=RetrievalMode.DENSE
    )
    docs = retriever.invoke("why do plants need sunlight?")
    assert len(docs) == 2 and docs[0].id == "photosynthesis"
    assert all(d.metadata["kind"] == "science" for d in docs)
    assert len(retriever.invoke("plants", k=4)) == 4
    # A per-call filter replaces the constructor's.
    [only] = retriever.invoke("anything", k=3, filter={"topic": "tea"})
    assert only.id == "tea"
    # A per-call mode replaces the constructor's (scores differ per mode, so compare the scored search).
    query = "mould bacteria planet"
    by_mode = {
        mode: [
            (d.id, round(s, 6))
            for d, s in store.similarity_search_with_score(query, k=2, mode=mode, filter={"kind": "science"})
        ]
        for mode in ("dense", "sparse")
    }
    assert by_mode["dense"] != by_mode["sparse"]
    for mode in ("dense", "sparse"):
        assert [d.id for d in retriever.invoke(query, mode=mode)] == [i for i, _ in by_mode[mode]]


def test_search_kwargs_reach_the_store(store: HybridQdrantVectorStore) -> None:
    retriever = HybridQdrantRetriever(
        vectorstore=store, k=3, search_kwargs={"fusion": "m3", "candidate_k": 5}
    )
    assert retriever.invoke("who discovered penicillin?")[0].id == "penicillin"
    bad = HybridQdrantRetriever(vectorstore=store, search_kwargs={"no_such_option": 1})
    with pytest.raises(InvalidInputError, match="no_such_option"):
        bad.invoke("x")


async def test_async_matches_sync(store: HybridQdrantVectorStore) -> None:
    retriever = HybridQdrantRetriever(vectorstore=store, k=3)
    assert await retriever.ainvoke("binary quantization", k=2) == retriever.invoke("binary quantization", k=2)


def test_bad_settings_fail_at_construction_or_call(store: HybridQdrantVectorStore) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        HybridQdrantRetriever(vectorstore=store, k=0)
    with pytest.raises(InvalidInputError, match=r"\$regex"):
        HybridQdrantRetriever(vectorstore=store, filter={"topic": {"$regex": "x"}})
    with pytest.raises(InvalidInputError, match="retrieval mode"):
        HybridQdrantRetriever(vectorstore=store, mode="semantic")
    with pytest.raises(InvalidInputError, match="k must be"):
        HybridQdrantRetriever(vectorstore=store).invoke("x", k=-1)


class EchoChatModel(BaseChatModel):
    """A fake chat model that answers with the prompt it was given (so the test sees the context)."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "\n".join(str(m.content) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def _format(docs: list[Document]) -> str:
    return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)


@pytest.mark.parametrize("use_as_retriever", [False, True])
async def test_lcel_rag_chain_gets_the_relevant_passage_as_context(
    store: HybridQdrantVectorStore, use_as_retriever: bool
) -> None:
    retriever = (
        store.as_retriever(search_kwargs={"k": 2})
        if use_as_retriever
        else HybridQdrantRetriever(vectorstore=store, k=2)
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context.\nContext:\n{context}"), ("human", "{question}")]
    )
    chain = {"context": retriever | _format, "question": RunnablePassthrough()} | prompt | EchoChatModel()
    question = "What fuses ranked lists without score calibration?"
    answer = chain.invoke(question)
    context = answer.content.split("Context:\n", 1)[1]
    assert context.startswith("[rrf] Reciprocal rank fusion")
    assert question in answer.content
    assert (await chain.ainvoke(question)).content == answer.content
