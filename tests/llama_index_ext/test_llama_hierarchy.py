"""Hierarchical nodes in LlamaIndex, one collection, both backends.

* ``AutoMergingRetriever`` over our store (leaves in it, every node in the docstore it
  needs) returns what it returns over LlamaIndex's own ``SimpleVectorStore``.
* Every level in our store: ``levels=["leaf"], unit="parent"`` returns the parents of the
  best leaves (brute force: leaves ranked by cosine, first parents met), no docstore.
* ``context_window`` feeds LlamaIndex's ``MetadataReplacementPostProcessor``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import HierarchicalNodeParser, get_leaf_nodes
from llama_index.core.postprocessor import MetadataReplacementPostProcessor
from llama_index.core.retrievers import AutoMergingRetriever
from llama_index.core.schema import BaseNode, MetadataMode, QueryBundle
from llama_index.core.storage.docstore import SimpleDocumentStore
from qdrant_client import QdrantClient

from llama_index_ext import HybridQdrantVectorStore
from shared.errors import InvalidInputError
from shared.types import CHILD_IDS_KEY, WINDOW_KEY
from tests.support.llama_fakes import HashEmbedding

WORDS = ["river", "stone", "light", "field", "cloud", "forest", "iron", "glass", "winter", "salt", "ember"]


def _nodes() -> list[BaseNode]:
    docs = []
    for d in range(8):
        # Every word distinct: no two chunks share a text (equal texts would tie).
        words = [f"{WORDS[(d * 5 + i * 3) % len(WORDS)]}{d}x{i}" for i in range(150 + 20 * (d % 3))]
        docs.append(Document(text=" ".join(words), id_=f"doc{d}"))
    # The parser warns that tiny chunks are tiny: they are, on purpose.
    logging.getLogger("llama_index.core.node_parser").setLevel(logging.ERROR)
    return HierarchicalNodeParser.from_defaults(chunk_sizes=[256, 64, 24]).get_nodes_from_documents(docs)


NODES = _nodes()
LEAVES = get_leaf_nodes(NODES)
EMBED = HashEmbedding()


@pytest.fixture(params=["edge", "local"])
def client(request: pytest.FixtureRequest) -> Iterator[QdrantClient | None]:
    yield QdrantClient(":memory:") if request.param == "local" else None


def _docstore() -> SimpleDocumentStore:
    docstore = SimpleDocumentStore()
    docstore.add_documents(NODES)
    return docstore


def _ids(found: list[Any]) -> list[str]:
    return [n.node.node_id for n in found]


@pytest.mark.parametrize("query", ["river3 stone1 light4", "winter2 salt5"])
def test_auto_merging_retriever_over_our_store(client: QdrantClient | None, query: str) -> None:
    def merged(vector_store: Any, **kwargs: Any) -> list[Any]:
        storage = StorageContext.from_defaults(docstore=_docstore(), vector_store=vector_store)
        index = VectorStoreIndex(LEAVES, storage_context=storage, embed_model=EMBED)
        base = index.as_retriever(similarity_top_k=40, **kwargs)
        return AutoMergingRetriever(base, storage, simple_ratio_thresh=0.25).retrieve(query)

    want = merged(None)  # LlamaIndex's SimpleVectorStore
    ours = HybridQdrantVectorStore(client=client, embed_model=EMBED)
    got = merged(ours, vector_store_kwargs={"exact": True})
    assert _ids(got) == _ids(want)
    assert [n.score for n in got] == pytest.approx([n.score for n in want], abs=1e-5)
    assert any(n.node.node_id not in {leaf.node_id for leaf in LEAVES} for n in got)  # some merged
    ours.close()


def _cos(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_parents_of_the_best_leaves_without_a_docstore(client: QdrantClient | None) -> None:
    store = HybridQdrantVectorStore(
        client=client, embed_model=EMBED, hierarchy={"levels": ["root", "intermediate", "leaf"]}
    )
    index = VectorStoreIndex(
        NODES, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=EMBED
    )
    query = "glass7 ember2 cloud0"
    qv = EMBED.get_query_embedding(query)
    ranked = sorted(
        LEAVES,
        key=lambda n: -_cos(EMBED.get_text_embedding(n.get_content(metadata_mode=MetadataMode.EMBED)), qv),
    )
    parents: list[str] = []
    for leaf in ranked:
        assert leaf.parent_node is not None
        if leaf.parent_node.node_id not in parents:
            parents.append(leaf.parent_node.node_id)
    kwargs = {"levels": ["leaf"], "unit": "parent", "exact": True}
    found = index.as_retriever(similarity_top_k=5, vector_store_kwargs=kwargs).retrieve(query)
    assert _ids(found) == parents[:5]
    by_id = {n.node_id: n for n in NODES}
    for n in found:
        node = n.node
        assert node.get_content() == by_id[node.node_id].get_content()
        # Its relationships come back too (the node is the one LlamaIndex stored).
        assert {c.node_id for c in node.child_nodes or []} == {
            c.node_id for c in by_id[node.node_id].child_nodes or []
        }
        assert set(node.metadata[CHILD_IDS_KEY]) <= {c.node_id for c in node.child_nodes or []}
    with pytest.raises(InvalidInputError, match="unknown level 'sentence'"):
        index.as_retriever(vector_store_kwargs={"levels": ["sentence"]}).retrieve(query)
    store.close()


def test_context_window_feeds_metadata_replacement(client: QdrantClient | None) -> None:
    store = HybridQdrantVectorStore(client=client, embed_model=EMBED)
    index = VectorStoreIndex(
        NODES, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=EMBED
    )
    retriever = index.as_retriever(
        similarity_top_k=4, vector_store_kwargs={"levels": ["leaf"], "context_window": 1}
    )
    found = retriever.retrieve("iron4 field1")
    by_id = {n.node_id: n for n in NODES}
    for n in found:
        node = by_id[n.node.node_id]
        assert node.parent_node is not None
        siblings = [by_id[c.node_id] for c in by_id[node.parent_node.node_id].child_nodes or []]
        at = [s.node_id for s in siblings].index(node.node_id)
        want = "\n".join(s.get_content() for s in siblings[max(0, at - 1) : at + 2])
        assert n.node.metadata[WINDOW_KEY] == want
        assert WINDOW_KEY not in n.node.get_content(metadata_mode=MetadataMode.LLM)
    replaced = MetadataReplacementPostProcessor(target_metadata_key=WINDOW_KEY).postprocess_nodes(
        found, QueryBundle("iron4 field1")
    )
    assert [n.node.get_content() for n in replaced] == [n.node.metadata[WINDOW_KEY] for n in found]
    store.close()
