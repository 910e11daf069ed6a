"""``migrate`` from collections written by langchain-qdrant and llama-index's Qdrant store.

The sources are built by those libraries' own classes in qdrant-client local mode
(``path=``, what ``local:DIR`` reads) with the real small models (MiniLM + SPLADE-tiny).
After the conversion into m3-hybrid's layout (vectors reused, never re-encoded), our dense
results on the copy equal the original library's dense results on its collection, ids and
texts included, and an interrupted copy completes on a rerun.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from test_migrate import content_hashes, interrupt_after

from shared.backends.edge import EdgeBackend
from shared.cli import main
from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.layouts import langchain_layout
from shared.migrate import migrate
from shared.store import HybridStore

BIBLE = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "bible-dev"
N = 120
K = 10


@pytest.fixture(scope="module")
def encoder(minilm_dir: Path, splade_dir: Path) -> Any:
    from shared.encoders import load_encoder

    return load_encoder(minilm_dir, sparse_model=splade_dir, device="cpu", show_progress=False)


@pytest.fixture(scope="module")
def verses() -> list[dict[str, Any]]:
    with open(BIBLE / "corpus.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(N), fh, strict=False)]
    for r in rows:
        r["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, r["id"]))  # both libraries take UUID ids
    return rows


@pytest.fixture(scope="module")
def queries() -> list[str]:
    with open(BIBLE / "queries_web.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for _, line in zip(range(10), fh, strict=False)]


def langchain_source(path: Path, verses: list[dict[str, Any]], encoder: Any, mode: str, **keys: Any) -> None:
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings

    store = QdrantVectorStore.from_texts(
        [v["text"] for v in verses],
        BGEM3Embeddings.from_encoder(encoder),
        metadatas=[{"verse": v["id"], "book": v["book"]} for v in verses],
        ids=[v["uid"] for v in verses],
        path=str(path),
        collection_name="lc",
        retrieval_mode=RetrievalMode(mode),
        sparse_embedding=BGEM3SparseEmbeddings.from_encoder(encoder) if mode != "dense" else None,
        **keys,
    )
    store.client.close()


def langchain_dense_hits(
    path: Path, encoder: Any, queries: list[str], **keys: Any
) -> list[list[tuple[str, float]]]:
    """langchain-qdrant's own dense search on its collection: (point id, score) per query."""
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from langchain_ext import BGEM3Embeddings

    client = QdrantClient(path=str(path))
    try:
        theirs = QdrantVectorStore(
            client=client,
            collection_name="lc",
            embedding=BGEM3Embeddings.from_encoder(encoder),
            retrieval_mode=RetrievalMode.DENSE,
            **keys,
        )
        return [
            [(d.metadata["_id"], s) for d, s in theirs.similarity_search_with_score(q, k=K)] for q in queries
        ]
    finally:
        client.close()


def our_dense_hits(store: HybridStore, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in store.query(q, mode="dense", limit=K)] for q in queries]


def assert_same_hits(ours: list[list[tuple[str, float]]], theirs: list[list[tuple[str, float]]]) -> None:
    for a, b in zip(ours, theirs, strict=True):
        assert [i for i, _ in a] == [i for i, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-4)


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_langchain_collection_to_embedded(
    tmp_path: Path,
    verses: list[dict[str, Any]],
    queries: list[str],
    encoder: Any,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = tmp_path / "lc-data"
    langchain_source(src, verses, encoder, mode)
    before = content_hashes(src)

    # Interrupted after one page, then rerun: complete, no duplicates.
    interrupt_after(monkeypatch, EdgeBackend, 1)
    with pytest.raises(RuntimeError, match="injected"):
        migrate(f"local:{src}", "lc", tmp_path / "emb", batch_size=50)
    monkeypatch.undo()
    result = migrate(f"local:{src}", "lc", tmp_path / "emb", batch_size=50)
    assert result.layout == "langchain" and result.resumed
    assert (result.source_count, result.target_count) == (N, N)
    assert content_hashes(src) == before  # the source was only read

    with HybridStore("lc", encoder=encoder, path=tmp_path / "emb") as ours:
        assert ours.schema.dense_dim == 384 and ours.schema.sparse == (mode == "hybrid")
        assert_same_hits(our_dense_hits(ours, queries), langchain_dense_hits(src, encoder, queries))
        # Ids, texts and metadata as langchain stored them.
        records = ours.get([v["uid"] for v in verses[:20]])
        assert [(r.id, r.text, r.metadata) for r in records] == [
            (v["uid"], v["text"], {"verse": v["id"], "book": v["book"]}) for v in verses[:20]
        ]
        if mode == "hybrid":  # the sparse vectors came along (not re-encoded): a lexical hit
            top = ours.query("Cain", mode="sparse", limit=1)[0]
            assert "cain" in (ours.get([top.id])[0].text or "").lower()


def test_langchain_custom_names_given_or_detected(
    tmp_path: Path, verses: list[dict[str, Any]], queries: list[str], encoder: Any
) -> None:
    keys = {
        "vector_name": "vec",
        "sparse_vector_name": "my-sparse",
        "content_payload_key": "body",
        "metadata_payload_key": "meta",
    }
    src = tmp_path / "lc-custom"
    langchain_source(src, verses, encoder, "hybrid", **keys)
    layout = langchain_layout(**keys)
    result = migrate(f"local:{src}", "lc", tmp_path / "emb", layout=layout)
    assert result.target_count == N
    with HybridStore("lc", encoder=encoder, path=tmp_path / "emb") as ours:
        assert_same_hits(our_dense_hits(ours, queries), langchain_dense_hits(src, encoder, queries, **keys))
        assert ours.get([verses[3]["uid"]])[0].text == verses[3]["text"]
    # The stored payload's shape (one text, one metadata entry) tells the same layout.
    detected = migrate(f"local:{src}", "lc", tmp_path / "emb2")
    assert (detected.layout, detected.target_count) == ("langchain", N)
    with HybridStore("lc", path=tmp_path / "emb2") as again:
        [rec] = again.get([verses[3]["uid"]])
        assert (rec.text, rec.metadata) == (verses[3]["text"], {"verse": verses[3]["id"], "book": "Gen"})


def llama_source(path: Path, verses: list[dict[str, Any]], encoder: Any) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    from llama_index_ext import BGEM3Embedding

    def sparse_fn(kind: str) -> Any:
        def fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
            rows = encoder.encode(texts, kind, outputs=["sparse"]).sparse
            return [list(r) for r in rows], [list(r.values()) for r in rows]

        return fn

    client = QdrantClient(path=str(path))
    try:
        theirs = QdrantVectorStore(
            "ll",
            client=client,
            enable_hybrid=True,
            sparse_doc_fn=sparse_fn("document"),
            sparse_query_fn=sparse_fn("query"),
        )
        nodes = [
            TextNode(
                id_=v["uid"],
                text=v["text"],
                metadata={"verse": v["id"], "book": v["book"]},
                excluded_embed_metadata_keys=["verse", "book"],
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"book-{v['book']}")},
            )
            for v in verses
        ]
        VectorStoreIndex(
            nodes,
            storage_context=StorageContext.from_defaults(vector_store=theirs),
            embed_model=BGEM3Embedding.from_encoder(encoder),
        )
    finally:
        client.close()


def llama_dense_hits(path: Path, encoder: Any, queries: list[str]) -> list[list[tuple[str, float]]]:
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    client = QdrantClient(path=str(path))
    try:
        theirs = QdrantVectorStore("ll", client=client)
        out = []
        for q in queries:
            vector = encoder.encode([q], "query", outputs=["dense"]).dense[0].tolist()
            res = theirs.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=K))
            out.append(list(zip(res.ids or [], res.similarities or [], strict=True)))
        return out
    finally:
        client.close()


def test_llama_index_collection_to_embedded_and_on_to_local(
    tmp_path: Path, verses: list[dict[str, Any]], queries: list[str], encoder: Any, capsys: Any
) -> None:
    src = tmp_path / "ll-data"
    llama_source(src, verses, encoder)
    before = content_hashes(src)
    # Through the command line, as a user would.
    assert (
        main(
            [
                "migrate",
                "--from",
                f"local:{src}",
                "--collection",
                "ll",
                "--to",
                str(tmp_path / "emb"),
                "--quiet",
            ]
        )
        == 0
    )
    assert f"copied {N} points" in capsys.readouterr().out
    assert content_hashes(src) == before

    with HybridStore("ll", encoder=encoder, path=tmp_path / "emb") as ours:
        assert_same_hits(our_dense_hits(ours, queries), llama_dense_hits(src, encoder, queries))
        [rec] = ours.get([verses[5]["uid"]])
        assert rec.text == verses[5]["text"]
        assert rec.ref_doc_id == f"book-{verses[5]['book']}"
        assert rec.metadata["verse"] == verses[5]["id"]
        assert ours.count() == N
    # The copy is an ordinary m3-hybrid collection: it moves on like any other.
    migrate(tmp_path / "emb", "ll", f"local:{tmp_path / 'again'}")
    with HybridStore("ll", encoder=encoder, client=QdrantClient(path=str(tmp_path / "again"))) as again:
        assert again.count() == N


def test_vectors_the_layout_does_not_describe_are_refused(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "src"))
    client.create_collection(
        "lc",
        vectors_config={
            "": models.VectorParams(size=4, distance=models.Distance.COSINE),
            "extra": models.VectorParams(size=2, distance=models.Distance.COSINE),
        },
        sparse_vectors_config={"langchain-sparse": models.SparseVectorParams()},
    )
    client.upsert(
        "lc",
        [
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector={"": [1, 0, 0, 0], "extra": [0, 1]},
                payload={"page_content": "x", "metadata": {}},
            )
        ],
    )
    client.close()
    with pytest.raises(UnsupportedOperationError, match="'extra'"):
        migrate(f"local:{tmp_path / 'src'}", "lc", tmp_path / "emb")
    assert not (tmp_path / "emb").exists()


def test_foreign_collection_our_store_wrote_to_keeps_the_identity(
    tmp_path: Path, verses: list[dict[str, Any]], queries: list[str], encoder: Any
) -> None:
    """A langchain collection that m3-hybrid has added to carries a guard with its layout:
    the copy is converted from that layout and keeps the recorded encoder identity."""
    src = tmp_path / "lc-data"
    langchain_source(src, verses[:60], encoder, "hybrid")
    client = QdrantClient(path=str(src))
    with HybridStore("lc", encoder=encoder, client=client) as theirs_via_ours:
        assert theirs_via_ours.layout.name == "langchain"
        added = str(uuid.uuid4())
        theirs_via_ours.add_texts(["A verse added through m3-hybrid."], ids=[added])
    client.close()

    result = migrate(f"local:{src}", "lc", tmp_path / "emb")
    assert (result.layout, result.target_count) == ("langchain", 61)
    guard = json.loads((tmp_path / "emb" / "lc" / "m3_hybrid.json").read_text())
    assert "layout" not in guard  # the copy is in m3-hybrid's layout
    assert guard["identity"] == encoder.identity.to_dict()
    with HybridStore("lc", encoder=encoder, path=tmp_path / "emb") as ours:
        assert ours.layout.name == "m3-hybrid"
        assert ours.get([added])[0].text == "A verse added through m3-hybrid."
        assert_same_hits(our_dense_hits(ours, queries), langchain_dense_hits(src, encoder, queries))

    # Nothing is appended into a collection in another framework's layout.
    with pytest.raises(InvalidInputError, match="in the langchain layout"):
        migrate(tmp_path / "emb", "lc", f"local:{src}", append=True)
