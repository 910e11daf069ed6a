"""One document per source in LangChain: ``group_by`` in similarity_search* and retrievers.

Reference: the ungrouped ranking of the same search (prefetches covering the collection,
exact search), grouped by a plain loop over the ``source`` metadata field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from qdrant_client import QdrantClient

from langchain_ext import HybridQdrantRetriever, HybridQdrantVectorStore
from shared.errors import InvalidInputError
from shared.types import GROUP_ID_KEY
from tests.support.langchain_fakes import LangChainWordSparse, jittered_word_weights, word_chunks


def _docs() -> list[Document]:
    return [
        Document(page_content=text, metadata={"source": f"s{d}", "n": c}, id=f"{d}-{c}")
        for d, c, text in word_chunks(70, lambda d: 2 + d % 4, 7)
    ]


@pytest.fixture(scope="module", params=["edge", "local"])
def store(request: pytest.FixtureRequest) -> Iterator[HybridQdrantVectorStore]:
    client = QdrantClient(":memory:") if request.param == "local" else None
    s = HybridQdrantVectorStore(
        DeterministicFakeEmbedding(size=16),
        sparse_embedding=LangChainWordSparse(jittered_word_weights),
        client=client,
        collection_name="g",
    )
    s.add_documents(_docs())
    yield s
    s.close()


def _reference(pairs: list[tuple[Document, float]], k: int, size: int) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for doc, _ in pairs:
        members = groups.setdefault(doc.metadata["source"], [])
        if len(members) < size:
            members.append(doc.page_content)
    return list(groups.values())[:k]


def _grouped(pairs: list[tuple[Document, float]]) -> list[list[str]]:
    out: list[list[str]] = []
    last = None
    for doc, _ in pairs:
        if doc.metadata[GROUP_ID_KEY] != last:
            out.append([])
            last = doc.metadata[GROUP_ID_KEY]
        out[-1].append(doc.page_content)
        assert doc.metadata[GROUP_ID_KEY] == doc.metadata["source"]
    return out


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("size", [1, 2])
def test_similarity_search_groups_equal_reference(
    store: HybridQdrantVectorStore, mode: str, size: int
) -> None:
    n = store.count()
    common: dict[str, Any] = {"mode": mode, "exact": True, "dense_candidates": n, "sparse_candidates": n}
    query = "gamma delta kappa"
    ranking = store.similarity_search_with_score(query, k=n, **common)
    got = store.similarity_search_with_score(query, k=5, group_by="source", group_size=size, **common)
    assert _grouped(got) == _reference(ranking, 5, size)
    got_async = asyncio.run(
        store.asimilarity_search_with_score(query, k=5, group_by="source", group_size=size, **common)
    )
    assert [(d.page_content, s) for d, s in got_async] == [(d.page_content, s) for d, s in got]


def test_retrievers_take_group_by_in_search_kwargs(store: HybridQdrantVectorStore) -> None:
    docs = store.as_retriever(search_kwargs={"k": 4, "group_by": "source"}).invoke("alpha beta")
    assert len(docs) == 4 and len({d.metadata["source"] for d in docs}) == 4
    ours = HybridQdrantRetriever(
        vectorstore=store, k=3, search_kwargs={"group_by": "source", "group_size": 2}
    )
    docs = ours.invoke("alpha beta")
    sources = [d.metadata[GROUP_ID_KEY] for d in docs]
    assert len(set(sources)) == 3 and all(sources.count(s) <= 2 for s in sources)
    # Without group_by: stored metadata only, no group key added.
    assert all(GROUP_ID_KEY not in d.metadata for d in store.similarity_search("alpha", k=3))


def test_bad_group_by(store: HybridQdrantVectorStore) -> None:
    with pytest.raises(InvalidInputError, match=r"'metadata\.nope' is on none of the hits"):
        store.similarity_search("alpha", k=3, group_by="nope")
    with pytest.raises(InvalidInputError, match="invalid metadata field name"):
        store.similarity_search("alpha", k=3, group_by="source.")
    with pytest.raises(InvalidInputError, match="group_size must be > 0"):
        store.similarity_search("alpha", k=3, group_by="source", group_size=0)
