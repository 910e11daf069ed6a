"""Late chunking in LlamaIndex's canonical pipelines: one option, nodes from a node parser."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from llama_index_ext import BGEM3Embedding, HybridQdrantVectorStore
from shared.errors import InvalidInputError, ModelMismatchError
from tests.support.sentences import SENTENCES as ALL_SENTENCES

SENTENCES = ALL_SENTENCES
TEXTS = {"city": " ".join(SENTENCES), "other": " ".join(reversed(SENTENCES))}


def _documents() -> list[Document]:
    return [Document(id_=key, text=text) for key, text in TEXTS.items()]


def _splitter() -> SentenceSplitter:
    # Small overlapping chunks: several per document.
    return SentenceSplitter(chunk_size=24, chunk_overlap=6)


def _expected(embed: BGEM3Embedding, nodes: list[Any]) -> dict[str, np.ndarray]:
    """Each node's dense vector late-chunked from its whole document (computed directly)."""
    by_doc: dict[str, list[Any]] = defaultdict(list)
    for n in nodes:
        by_doc[n.ref_doc_id].append(n)
    out = {}
    for doc_id, doc_nodes in by_doc.items():
        spans = [(n.start_char_idx, n.end_char_idx) for n in doc_nodes]
        dense = embed.encoder.encode_chunks(TEXTS[doc_id], spans).dense
        out.update({n.node_id: row for n, row in zip(doc_nodes, dense, strict=True)})
    return out


@pytest.fixture(scope="module")
def embed(tiny_bge_m3_dir: Path) -> BGEM3Embedding:
    return BGEM3Embedding(model_name=str(tiny_bge_m3_dir))


@pytest.mark.parametrize("remote", [False, True])
def test_from_documents_with_a_node_parser(embed: BGEM3Embedding, remote: bool, tmp_path: Path) -> None:
    where: dict[str, Any] = {"client": QdrantClient(":memory:")} if remote else {"path": tmp_path}
    with HybridQdrantVectorStore("late", embed_model=embed, late_chunking=True, **where) as store:
        index = VectorStoreIndex.from_documents(
            _documents(),
            transformations=[_splitter()],
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed,
        )
        nodes = [store._node(r) for r in store.store.scroll()]
        assert len(nodes) > len(TEXTS) and all(n.start_char_idx is not None for n in nodes)
        expected = _expected(embed, nodes)
        got = store.store.get(list(expected), with_vectors=True)
        for rec in got:
            # The index embedded each node alone; the store replaced it with the late-chunked vector.
            np.testing.assert_allclose(rec.dense, expected[rec.id], atol=1e-5)
        alone = embed.get_text_embedding_batch([n.get_content() for n in nodes[:1]])[0]
        assert not np.allclose(alone, expected[nodes[0].node_id], atol=1e-3)
        hits = index.as_retriever(similarity_top_k=3).retrieve("village by the river")
        assert len(hits) == 3 and {h.node.ref_doc_id for h in hits} <= set(TEXTS)
        assert store.store.schema.late_chunking


def test_ingestion_pipeline_with_the_embedding_as_a_transformation(
    tiny_bge_m3_dir: Path, tmp_path: Path
) -> None:
    late = BGEM3Embedding(model_name=str(tiny_bge_m3_dir), late_chunking=True)
    # The store follows the embedding model's late_chunking.
    with HybridQdrantVectorStore("pipe", path=tmp_path, embed_model=late) as store:
        pipeline = IngestionPipeline(transformations=[_splitter(), late], vector_store=store)
        nodes = pipeline.run(documents=_documents())
        expected = _expected(late, nodes)
        for node in nodes:
            np.testing.assert_allclose(node.embedding, expected[node.node_id], atol=1e-5)
        for rec in store.store.get(list(expected), with_vectors=True):
            np.testing.assert_allclose(rec.dense, expected[rec.id], atol=1e-5)
        assert store.store.schema.late_chunking


def test_nodes_without_offsets_or_mixed_writers_are_refused(embed: BGEM3Embedding, tmp_path: Path) -> None:
    with HybridQdrantVectorStore("late", path=tmp_path, embed_model=embed, late_chunking=True) as store:
        with pytest.raises(InvalidInputError, match=r"record 'n1' \(index 0\): no document key and offsets"):
            store.add([TextNode(id_="n1", text="a node made by hand")])
        assert store.count() == 0
        store.add(_splitter().get_nodes_from_documents(_documents()))
    with (
        HybridQdrantVectorStore("late", path=tmp_path, embed_model=embed) as plain,
        pytest.raises(ModelMismatchError, match="late-chunked"),
    ):
        plain.add(_splitter().get_nodes_from_documents(_documents()))
