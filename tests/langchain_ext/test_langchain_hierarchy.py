"""Parents and context in LangChain, one collection: ``HybridParentDocumentRetriever``
against LangChain's own ``ParentDocumentRetriever`` (two stores), and a splitter's chunks
read back with their neighbours (``context_window``) on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_classic.retrievers import ParentDocumentRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.stores import InMemoryStore
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter
from qdrant_client import QdrantClient

from langchain_ext import HybridParentDocumentRetriever, HybridQdrantVectorStore
from shared.errors import InvalidInputError
from shared.types import CHILD_IDS_KEY, PARENT_TEXT_KEY, WINDOW_KEY

WORDS = ["river", "stone", "light", "field", "cloud", "forest", "iron", "glass", "winter", "salt"]


def _documents() -> list[Document]:
    docs = []
    for d in range(40):
        sentences = [
            " ".join(WORDS[(d * 3 + s * 7 + j) % len(WORDS)] for j in range(6)) + f" {d}.{s}."
            for s in range(3 + d % 4)
        ]
        docs.append(Document(" ".join(sentences), metadata={"source": f"book-{d}"}, id=f"book-{d}"))
    return docs


def _splitter(**kwargs: Any) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(chunk_size=60, chunk_overlap=0, separators=[". "], **kwargs)


@pytest.fixture(params=["edge", "local"])
def client(request: pytest.FixtureRequest) -> Iterator[QdrantClient | None]:
    yield QdrantClient(":memory:") if request.param == "local" else None


def test_parent_retriever_equals_langchains_two_store_retriever(client: QdrantClient | None) -> None:
    embedding = DeterministicFakeEmbedding(size=24)
    docs = _documents()
    store = HybridQdrantVectorStore(embedding, client=client, hierarchy={"levels": ["parent", "child"]})
    ours = HybridParentDocumentRetriever(
        vectorstore=store, child_splitter=_splitter(), k=5, search_kwargs={"exact": True}
    )
    assert ours.add_documents(docs) == [d.id for d in docs]
    n_children = sum(len(_splitter().split_documents([d])) for d in docs)
    assert store.count() == len(docs) + n_children
    # LangChain's own: chunks in a vector store, parents in a docstore; every chunk
    # ranked, the first five parents met.
    theirs = ParentDocumentRetriever(
        vectorstore=InMemoryVectorStore(embedding),
        docstore=InMemoryStore(),
        child_splitter=_splitter(),
        search_kwargs={"k": n_children},
    )
    theirs.add_documents(docs, ids=[d.id for d in docs])
    for query in ("river stone", "winter salt glass", "cloud 7.2"):
        want = [d.page_content for d in theirs.invoke(query)][:5]
        got = ours.invoke(query)
        assert [d.page_content for d in got] == want
        assert all(d.metadata["level"] == "parent" and len(d.metadata[CHILD_IDS_KEY]) == 1 for d in got)
        assert [d.page_content for d in asyncio.run(ours.ainvoke(query))] == want
    store.close()


def test_parent_retriever_checks(client: QdrantClient | None) -> None:
    store = HybridQdrantVectorStore(
        DeterministicFakeEmbedding(size=8), client=client, hierarchy={"levels": ["section", "line"]}
    )
    with pytest.raises(InvalidInputError, match="unknown level 'child'"):
        HybridParentDocumentRetriever(vectorstore=store, child_splitter=_splitter())
    ok = HybridParentDocumentRetriever(
        vectorstore=store,
        child_splitter=_splitter(),
        parent_splitter=_splitter(),
        child_level="line",
        parent_level="section",
    )
    with pytest.raises(InvalidInputError, match="with a parent_splitter"):
        ok.add_documents(_documents()[:2], ids=["a", "b"])
    with pytest.raises(InvalidInputError, match="unknown option 'kk'"):
        HybridParentDocumentRetriever(vectorstore=store, child_splitter=_splitter(), kk=3)
    store.close()


def test_splitter_chunks_with_their_neighbours(client: QdrantClient | None) -> None:
    """A plain splitter pipeline (add_start_index=True): the chunks' window is read back."""
    embedding = DeterministicFakeEmbedding(size=24)
    chunks = _splitter(add_start_index=True).split_documents(_documents())
    store = HybridQdrantVectorStore(
        embedding,
        client=client,
        hierarchy={"parent_key": "metadata.source", "position_key": "metadata.start_index"},
    )
    store.add_documents(chunks)
    by_source: dict[str, list[Document]] = {}
    for c in chunks:
        by_source.setdefault(c.metadata["source"], []).append(c)
    found = store.similarity_search("field forest", k=6, context_window=1)
    assert len(found) == 6
    for doc in found:
        siblings = by_source[doc.metadata["source"]]
        at = next(i for i, c in enumerate(siblings) if c.page_content == doc.page_content)
        want = [c.page_content for c in siblings[max(0, at - 1) : at + 2]]
        assert doc.metadata[WINDOW_KEY] == "\n".join(want)
    # Grouped by source and with the window: one chunk per book, each with its context.
    grouped = store.similarity_search("field forest", k=4, group_by="source", context_window=1)
    assert len({d.metadata["source"] for d in grouped}) == 4
    assert all(d.page_content in d.metadata[WINDOW_KEY] for d in grouped)
    store.close()


def test_chunks_with_their_parents_text(client: QdrantClient | None) -> None:
    embedding = DeterministicFakeEmbedding(size=24)
    store = HybridQdrantVectorStore(embedding, client=client)
    retriever = HybridParentDocumentRetriever(vectorstore=store, child_splitter=_splitter())
    docs = _documents()
    retriever.add_documents(docs)
    texts = {d.id: d.page_content for d in docs}
    found = store.similarity_search("iron glass", k=5, levels=["child"], with_parent=True)
    assert len(found) == 5
    for doc in found:
        assert doc.metadata["level"] == "child"
        assert doc.metadata[PARENT_TEXT_KEY] == texts[doc.metadata["parent_id"]]
        assert doc.page_content in doc.metadata[PARENT_TEXT_KEY]
    store.close()
