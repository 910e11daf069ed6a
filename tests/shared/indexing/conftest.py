"""Fixtures of the indexing tests: a corpus with bad records mixed in, and the adapter-built twin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.store import HybridStore
from tests.support.checkpoint import sample_corpus

#: Lines of the JSONL corpus that must be refused, with why (line numbers are 1-based).
BAD_LINES = {
    5: "not json {",
    11: json.dumps({"id": "no-text", "title": "x"}),
    17: json.dumps({"id": "num-text", "text": 42}),
    23: '{"id": "nan-meta", "text": "fine text", "score": NaN}',
    29: json.dumps({"id": "surrogate", "text": "bad \ud800 text"}),
}


def good_records(n: int = 48) -> list[dict[str, Any]]:
    """Records with ids, text and metadata (a few without an id: they get FILE:LINE)."""
    texts = sample_corpus()
    out = []
    for i in range(n):
        # Distinct texts (no near-ties in the top-10 comparisons): pairs of sentences.
        other = texts[(i + 1 + 7 * (i // len(texts))) % len(texts)]
        rec: dict[str, Any] = {"text": f"{texts[i % len(texts)]} {other}", "n": i, "tag": ["a", "b"][i % 2]}
        if i % 10 != 7:
            rec["id"] = f"doc-{i}"
        out.append(rec)
    return out


def write_corpus(path: Path, n: int = 48) -> list[dict[str, Any]]:
    """Write the JSONL corpus (good records with the BAD_LINES in between); returns the good
    records, each with the id the indexer must give it."""
    good = good_records(n)
    lines: list[str] = []
    expected = []
    it = iter(good)
    line_no = 0
    while True:
        line_no += 1
        if line_no in BAD_LINES:
            lines.append(BAD_LINES[line_no])
            continue
        rec = next(it, None)
        if rec is None:
            break
        lines.append(json.dumps(rec))
        expected.append({**rec, "id": rec.get("id", f"{path.name}:{line_no}")})
    path.write_text("\n".join(lines) + "\n")
    return expected


def adapter_store(records: list[dict[str, Any]], encoder: Any, path: Path, client: Any = None) -> HybridStore:
    """The same records written by the LangChain adapter (its own ids, metadata, batching), in an
    embedded store at ``path`` or with ``client`` (qdrant-client local mode: the same engine as
    the collection compared with, whose fused scores differ slightly from Qdrant Edge's)."""
    from langchain_ext import BGEM3Embeddings, HybridQdrantVectorStore

    where: dict[str, Any] = {"client": client} if client is not None else {"path": path}
    lc = HybridQdrantVectorStore(BGEM3Embeddings.from_encoder(encoder), collection_name="twin", **where)
    lc.add_texts(
        [r["text"] for r in records],
        metadatas=[{k: v for k, v in r.items() if k not in ("id", "text")} for r in records],
        ids=[r["id"] for r in records],
    )
    return lc.store


def assert_same_collection(ours: HybridStore, theirs: HybridStore, queries: list[str]) -> None:
    """Same ids, payloads, vectors (within 1e-6) and the same top-10 for each query."""
    a = {r.id: r for r in ours.scroll(with_vectors=True)}
    b = {r.id: r for r in theirs.scroll(with_vectors=True)}
    assert sorted(a) == sorted(b)
    for rid, x in a.items():
        y = b[rid]
        assert (x.text, x.metadata, x.ref_doc_id) == (y.text, y.metadata, y.ref_doc_id), rid
        np.testing.assert_allclose(np.asarray(x.dense), np.asarray(y.dense), atol=1e-6)
        assert x.sparse is not None and y.sparse is not None
        assert sorted(x.sparse) == sorted(y.sparse), rid
        np.testing.assert_allclose(
            [x.sparse[k] for k in sorted(x.sparse)], [y.sparse[k] for k in sorted(y.sparse)], atol=1e-6
        )
    for q in queries:
        for mode, fusion in (("dense", None), ("sparse", None), ("hybrid", "m3")):
            assert _top10(ours, q, mode, fusion) == _top10(theirs, q, mode, fusion), (q, mode, fusion)


def _top10(store: HybridStore, query: str, mode: str, fusion: str | None) -> list[tuple[float, str]]:
    # Equal scores are ordered by the engine's internal point order, which differs between two
    # stores written in different batches: ties are ordered by id here. The tiny model gives many
    # documents the same dense score, more than a top 20 holds, so every stored point is ranked
    # (the corpus is small) before the cut.
    # Hybrid is compared with the weighted score sum (m3): rank fusion (rrf) turns the tie order of
    # equal sparse scores (frequent with the tiny model) into different fused scores, and dbsf
    # normalises by statistics of the candidate list, which ties change the same way.
    options: dict[str, Any] = {"mode": mode} if fusion is None else {"mode": mode, "fusion": fusion}
    hits = sorted((-round(h.score, 5), h.id) for h in store.query(query, limit=store.count(), **options))
    return hits[:10]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "corpus.jsonl"
    return path, write_corpus(path)


@pytest.fixture
def same_collection() -> Callable[[HybridStore, HybridStore, list[str]], None]:
    return assert_same_collection


@pytest.fixture
def twin() -> Callable[[list[dict[str, Any]], Any, Path], HybridStore]:
    return adapter_store


@pytest.fixture
def make_corpus() -> Callable[..., list[dict[str, Any]]]:
    return write_corpus
