"""One node per document in LlamaIndex: ``group_by`` through the vector store's query kwargs,
``VectorIndexRetriever(vector_store_kwargs=...)`` and our ``HybridQdrantRetriever``.

Reference: the ungrouped ranking of the same query (every candidate prefetched, exact
search), grouped by a plain loop over the nodes' ``ref_doc_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from qdrant_client import QdrantClient

from llama_index_ext import HybridQdrantRetriever, HybridQdrantVectorStore
from shared.errors import InvalidInputError
from shared.types import GROUP_ID_KEY
from tests.support.langchain_fakes import jittered_word_weights, word_chunks
from tests.support.llama_fakes import HashEmbedding, WordSparse


class JitterSparse(WordSparse):
    """Known words only, no two texts tied."""

    def _words(self, text: str) -> dict[int, float]:
        return jittered_word_weights(text)


def _nodes() -> list[TextNode]:
    return [
        TextNode(
            id_=f"n{d}-{c}",
            text=text,
            metadata={"section": f"sec{d % 7}"},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc{d}")},
        )
        for d, c, text in word_chunks(60, lambda d: 1 + d % 5, 5)
    ]


@pytest.fixture(scope="module", params=["edge", "local"])
def store(request: pytest.FixtureRequest) -> Iterator[HybridQdrantVectorStore]:
    client = QdrantClient(":memory:") if request.param == "local" else None
    s = HybridQdrantVectorStore(
        collection_name="g", client=client, embed_model=HashEmbedding(), sparse_embed_model=JitterSparse()
    )
    s.add(_nodes())
    yield s
    s.close()


def _reference(nodes: list[Any], k: int, size: int) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for node in nodes:
        members = groups.setdefault(node.ref_doc_id, [])
        if len(members) < size:
            members.append(node.node_id)
    return list(groups.values())[:k]


def _grouped(nodes: list[Any]) -> list[list[str]]:
    out: list[list[str]] = []
    last = None
    for node in nodes:
        assert node.metadata[GROUP_ID_KEY] == node.ref_doc_id
        if node.metadata[GROUP_ID_KEY] != last:
            out.append([])
            last = node.metadata[GROUP_ID_KEY]
        out[-1].append(node.node_id)
    return out


@pytest.mark.parametrize(
    "mode", [VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.HYBRID]
)
@pytest.mark.parametrize(("key", "size"), [("ref_doc_id", 1), ("doc_id", 2)])
def test_query_groups_equal_reference(store: HybridQdrantVectorStore, mode: Any, key: str, size: int) -> None:
    n = store.count()
    text = "gamma delta kappa"

    def query(k: int) -> VectorStoreQuery:
        return VectorStoreQuery(query_str=text, similarity_top_k=k, sparse_top_k=k, mode=mode)

    ranking = store.query(query(n), candidate_k=n, exact=True).nodes
    got = store.query(query(5), candidate_k=n, exact=True, group_by=key, group_size=size)
    assert _grouped(got.nodes) == _reference(ranking, 5, size)
    again = asyncio.run(store.aquery(query(5), candidate_k=n, exact=True, group_by=key, group_size=size))
    assert again.ids == got.ids and again.similarities == got.similarities


def test_group_by_metadata_key_and_retrievers(store: HybridQdrantVectorStore) -> None:
    got = store.query(VectorStoreQuery(query_str="alpha", similarity_top_k=7), group_by="section")
    sections = [n.metadata["section"] for n in got.nodes]
    assert sorted(sections) == sorted(set(sections)) and len(sections) == 7
    node = got.nodes[0]
    # The group id is metadata the LLM and the embedding never see.
    assert node.metadata[GROUP_ID_KEY] == node.metadata["section"]
    assert GROUP_ID_KEY not in node.get_content(metadata_mode=MetadataMode.LLM)
    index = VectorStoreIndex.from_vector_store(store, embed_model=HashEmbedding())
    found = index.as_retriever(similarity_top_k=4, vector_store_kwargs={"group_by": "ref_doc_id"}).retrieve(
        "beta"
    )
    assert len({n.node.ref_doc_id for n in found}) == 4
    ours = HybridQdrantRetriever(
        store, similarity_top_k=3, vector_store_kwargs={"group_by": "doc_id", "group_size": 2}
    )
    found = ours.retrieve("beta gamma")
    docs = [n.node.ref_doc_id for n in found]
    assert len(set(docs)) == 3 and all(docs.count(d) <= 2 for d in docs)
    plain = store.query(VectorStoreQuery(query_str="alpha", similarity_top_k=3))
    assert all(GROUP_ID_KEY not in n.metadata for n in plain.nodes)


def test_bad_group_by(store: HybridQdrantVectorStore) -> None:
    with pytest.raises(InvalidInputError, match=r"'metadata\.nope' is on none of the hits"):
        store.query(VectorStoreQuery(query_str="alpha", similarity_top_k=3), group_by="nope")
    with pytest.raises(InvalidInputError, match="group_size needs group_by"):
        store.query(VectorStoreQuery(query_str="alpha", similarity_top_k=3), group_size=2)
