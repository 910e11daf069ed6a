"""Late chunking in LangChain's canonical pipeline: a splitter with add_start_index=True, one option."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter
from qdrant_client import QdrantClient

from langchain_ext import BGEM3Embeddings, HybridQdrantVectorStore
from shared.errors import InvalidInputError, ModelMismatchError
from tests.support.sentences import SENTENCES as ALL_SENTENCES

SENTENCES = ALL_SENTENCES[:4]
TEXTS = {"a.txt": "\n\n".join(SENTENCES), "b.txt": " ".join(reversed(SENTENCES))}


def _originals() -> list[Document]:
    return [Document(page_content=text, metadata={"source": key}) for key, text in TEXTS.items()]


def _chunks(**kwargs: Any) -> list[Document]:
    splitter = RecursiveCharacterTextSplitter(chunk_size=90, chunk_overlap=20, add_start_index=True, **kwargs)
    return splitter.split_documents(_originals())


def _expected(embeddings: BGEM3Embeddings, chunks: list[Document]) -> list[np.ndarray]:
    """Each chunk's dense vector late-chunked from its whole document, in chunk order."""
    by_doc: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(chunks):
        by_doc[c.metadata["source"]].append(i)
    out: list[Any] = [None] * len(chunks)
    for key, idx in by_doc.items():
        spans = [
            (
                chunks[i].metadata["start_index"],
                chunks[i].metadata["start_index"] + len(chunks[i].page_content),
            )
            for i in idx
        ]
        for i, row in zip(idx, embeddings.encoder.encode_chunks(TEXTS[key], spans).dense, strict=True):
            out[i] = row
    return out


@pytest.fixture(scope="module")
def embeddings(tiny_bge_m3_dir: Path) -> BGEM3Embeddings:
    return BGEM3Embeddings(model_name=str(tiny_bge_m3_dir), late_chunking=True)


@pytest.mark.parametrize("remote", [False, True])
def test_from_documents_with_a_splitter(embeddings: BGEM3Embeddings, remote: bool, tmp_path: Path) -> None:
    where: dict[str, Any] = {"client": QdrantClient(":memory:")} if remote else {"path": str(tmp_path)}
    chunks = _chunks()
    ids = [f"c{i}" for i in range(len(chunks))]
    # late_chunking=True on the embeddings is enough: the store follows it.
    store = HybridQdrantVectorStore.from_documents(chunks, embeddings, ids=ids, **where)
    with store:
        assert len(chunks) > len(TEXTS)
        expected = _expected(embeddings, chunks)
        for rec, exp in zip(store.store.get(ids, with_vectors=True), expected, strict=True):
            np.testing.assert_allclose(rec.dense, exp, atol=1e-5)
        # Given the documents' texts, each chunk is checked against them: the same vectors.
        store.add_documents(chunks, ids=[f"g{i}" for i in range(len(chunks))], source_documents=_originals())
        for rec, exp in zip(
            store.store.get([f"g{i}" for i in range(len(chunks))], with_vectors=True), expected, strict=True
        ):
            np.testing.assert_allclose(rec.dense, exp, atol=1e-5)
        hits = store.similarity_search("village by the river", k=2)
        assert len(hits) == 2 and hits[0].metadata["source"] in TEXTS
        assert store.store.schema.late_chunking


def test_document_key_option_and_bad_chunks(tiny_bge_m3_dir: Path, tmp_path: Path) -> None:
    plain = BGEM3Embeddings(model_name=str(tiny_bge_m3_dir))
    chunks = _chunks()
    for c in chunks:
        c.metadata["doc"] = c.metadata.pop("source")
    with HybridQdrantVectorStore(
        plain, path=str(tmp_path), late_chunking=True, late_chunking_key="doc"
    ) as store:
        with pytest.raises(InvalidInputError, match=r"\(index 0\): no document key and offsets"):
            store.add_texts(["a chunk from no splitter"])
        # A chunk whose offsets do not match the given document: named, nothing written.
        moved = Document(
            page_content=chunks[1].page_content, metadata={**chunks[1].metadata, "start_index": 1}
        )
        originals = [Document(page_content=t, metadata={"doc": k}) for k, t in TEXTS.items()]
        with pytest.raises(InvalidInputError, match=r"record 'moved' \(index 1\): offsets .* do not match"):
            store.add_documents([chunks[0], moved], ids=["first", "moved"], source_documents=originals)
        assert store.count() == 0
        store.add_documents(chunks)
        assert store.count() == len(chunks)
    with HybridQdrantVectorStore(plain, path=str(tmp_path)) as normal, pytest.raises(ModelMismatchError):
        normal.add_texts(["normal"])
