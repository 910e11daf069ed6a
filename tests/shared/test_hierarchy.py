"""Hierarchical levels, parents and context in one collection, on both backends, against
brute force (numpy cosines over the corpus, per-level rankings fused by a plain RRF loop).

The corpus: 80 documents (level ``document``), each of 2-4 paragraphs (``paragraph``,
parent the document, position its index), each of 2-3 sentences (``sentence``, parent the
paragraph). Vectors are random, so rankings have no ties except RRF's equal ranks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.encoders.functions import encoder_from_functions
from shared.errors import InvalidInputError, InvalidTypeError
from shared.hierarchy import Hierarchy
from shared.store import HybridStore
from shared.types import CHILD_IDS_KEY, PARENT_TEXT_KEY, WINDOW_IDS_KEY, WINDOW_KEY, Hit, Record

DIM = 12
LEVELS = ("document", "paragraph", "sentence")
RRF_K = 60


def _corpus() -> tuple[list[Record], dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    recs: list[Record] = []

    def add(rid: str, level: str, parent: str | None, position: int) -> None:
        meta: dict[str, Any] = {"level": level, "position": position}
        if parent is not None:
            meta["parent_id"] = parent
        recs.append(
            Record(
                id=rid, text=f"text of {rid}", metadata=meta, dense=rng.normal(size=DIM).astype(np.float32)
            )
        )

    for d in range(80):
        add(f"d{d}", "document", None, 0)
        for p in range(2 + d % 3):
            add(f"d{d}p{p}", "paragraph", f"d{d}", p)
            for s in range(2 + (d + p) % 2):
                add(f"d{d}p{p}s{s}", "sentence", f"d{d}p{p}", s)
    queries = {f"q{i}": rng.normal(size=DIM).astype(np.float32) for i in range(3)}
    return recs, queries


RECS, QUERIES = _corpus()
BY_ID = {r.id: r for r in RECS}
VECTORS = {r.text: r.dense for r in RECS}


def _encoder() -> Any:
    return encoder_from_functions(
        model_id="lookup",
        embed_documents=lambda texts: [VECTORS[t].tolist() for t in texts],
        embed_query=lambda text: QUERIES[text].tolist(),
        dense_dim=DIM,
    )


@pytest.fixture(scope="module", params=["edge", "local"])
def store(request: pytest.FixtureRequest) -> Iterator[HybridStore]:
    client = QdrantClient(":memory:") if request.param == "local" else None
    s = HybridStore("h", encoder=_encoder(), client=client, hierarchy={"levels": list(LEVELS)})
    s.add(RECS)
    yield s
    s.close()


def _cosines(query: np.ndarray, level: str | None = None) -> list[tuple[str, float]]:
    recs = [r for r in RECS if level is None or r.metadata["level"] == level]
    mat = np.stack([r.dense for r in recs])
    scores = mat @ query / (np.linalg.norm(mat, axis=1) * np.linalg.norm(query))
    return sorted(((r.id, float(s)) for r, s in zip(recs, scores, strict=True)), key=lambda x: -x[1])


def _rrf(rankings: list[list[tuple[str, float]]], limit: int) -> list[tuple[str, float]]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (rid, _) in enumerate(ranking[:limit]):
            fused[rid] = fused.get(rid, 0.0) + 1.0 / (RRF_K + rank)  # 0-based ranks, as Qdrant
    return sorted(fused.items(), key=lambda x: -x[1])[:limit]


def _tie_groups(pairs: list[tuple[str, float]]) -> list[tuple[float, frozenset[str]]]:
    out: list[tuple[float, set[str]]] = []
    for rid, score in pairs:
        if out and abs(out[-1][0] - score) < 1e-6:
            out[-1][1].add(rid)
        else:
            out.append((score, {rid}))
    return [(round(s, 6), frozenset(ids)) for s, ids in out]


@pytest.mark.parametrize("levels", [["sentence"], ["sentence", "paragraph"], list(LEVELS)])
def test_levels_fuse_per_level_rankings(store: HybridStore, levels: list[str]) -> None:
    limit = 10
    hits = store.query("q0", levels=levels, exact=True, limit=limit)
    if len(levels) == 1:
        want = _cosines(QUERIES["q0"], levels[0])[:limit]
    else:
        want = _rrf([_cosines(QUERIES["q0"], lv) for lv in levels], limit)
    got = [(h.id, h.score) for h in hits]
    # Equal RRF ranks tie: compare score by score, ids as sets of tied hits (the last set cut by the limit).
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)
    assert _tie_groups(got)[:-1] == _tie_groups(want)[:-1]
    assert {BY_ID[h.id].metadata["level"] for h in hits} <= set(levels)


def test_unit_parent_returns_the_best_chunks_parents(store: HybridStore) -> None:
    ranking = _cosines(QUERIES["q1"], "sentence")
    parents: dict[str, tuple[float, str]] = {}
    for rid, score in ranking:
        parents.setdefault(BY_ID[rid].metadata["parent_id"], (score, rid))
    want = list(parents.items())[:6]
    hits = store.query("q1", levels=["sentence"], unit="parent", exact=True, limit=6)
    assert [h.id for h in hits] == [p for p, _ in want]
    assert [h.score for h in hits] == pytest.approx([s for _, (s, _) in want], abs=1e-5)
    assert [h.children[0].id for h in hits if h.children] == [c for _, (_, c) in want]
    assert all(h.text == BY_ID[h.id].text and h.metadata["level"] == "paragraph" for h in hits)
    assert hits[0].annotations()[CHILD_IDS_KEY] == [want[0][1][1]]
    # group_size: up to two matched sentences per paragraph, the parents unchanged.
    two = store.query("q1", levels=["sentence"], unit="parent", group_size=2, exact=True, limit=6)
    assert [h.id for h in two] == [h.id for h in hits]
    assert all(1 <= len(h.children or []) <= 2 for h in two)


def test_context_window_and_parent(store: HybridStore) -> None:
    hits = store.query("q2", levels=["sentence"], context_window=1, with_parent=True, exact=True, limit=8)
    assert len(hits) == 8
    for h in hits:
        rec = BY_ID[h.id]
        siblings = sorted(
            (r for r in RECS if r.metadata.get("parent_id") == rec.metadata["parent_id"]),
            key=lambda r: r.metadata["position"],
        )
        at = [r.id for r in siblings].index(h.id)
        want = [r.id for r in siblings[max(0, at - 1) : at + 2]]
        assert [r.id for r in h.window or []] == want
        assert h.parent is not None and h.parent.id == rec.metadata["parent_id"]
        notes = h.annotations()
        assert notes[WINDOW_IDS_KEY] == want
        assert notes[WINDOW_KEY] == "\n".join(BY_ID[i].text or "" for i in want)
        assert notes[PARENT_TEXT_KEY] == BY_ID[rec.metadata["parent_id"]].text
    # A document has no parent: with_parent leaves it None.
    docs = store.query("q2", levels=["document"], with_parent=True, limit=3)
    assert all(h.parent is None for h in docs)


def test_one_context_read_per_query_batch(store: HybridStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parents and windows are read once per query batch, not once per hit."""
    backend = store._backend
    calls: list[str] = []
    for name in ("retrieve", "scroll"):
        original = getattr(backend, name)

        def spy(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, name, spy)
    args: dict[str, Any] = {"levels": ["sentence"], "context_window": 2, "with_parent": True, "limit": 5}
    batches = store.query_batch(["q0", "q1", "q2"], **args)
    assert sorted(calls) == ["retrieve", "scroll"]
    assert [[h.id for h in b] for b in batches] == [
        [h.id for h in store.query(q, **args)] for q in ("q0", "q1", "q2")
    ]
    assert all(h.window and h.parent for b in batches for h in b)
    calls.clear()
    again = asyncio.run(store.aquery("q0", **args))
    assert [h.window for h in again] == [h.window for h in batches[0]]


@pytest.mark.parametrize(
    "args",
    [
        {"levels": ["sentence"], "group_by": "metadata.parent_id", "group_size": 2, "offset": 1},
        {"levels": ["sentence"], "unit": "parent", "context_window": 1, "with_parent": True},
    ],
)
def test_query_batch_is_each_query(store: HybridStore, args: dict[str, Any]) -> None:
    batches = store.query_batch(list(QUERIES), limit=4, exact=True, **args)
    for text, hits in zip(QUERIES, batches, strict=True):
        alone = store.query(text, limit=4, exact=True, **args)
        assert [(h.id, h.group, h.window) for h in hits] == [(h.id, h.group, h.window) for h in alone]
        assert len(hits) >= 4


def test_hierarchy_errors(store: HybridStore) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown level 'chapter'; this collection's levels are"):
        store.query("q0", levels=["chapter"])
    with pytest.raises(InvalidInputError, match="unknown unit 'doc'"):
        store.query("q0", unit="doc")
    with pytest.raises(InvalidInputError, match="leave group_by out"):
        store.query("q0", unit="parent", group_by="ref_doc_id")
    with pytest.raises(InvalidInputError, match="context_window must be >= 0"):
        store.query("q0", context_window=-1)
    with pytest.raises(InvalidTypeError, match="levels must be a list"):
        store.query("q0", levels="sentence")
    # Documents have no parent: unit="parent" over them finds no parent key on any hit.
    with pytest.raises(InvalidInputError, match="is on none of the hits"):
        store.query("q0", levels=["document"], unit="parent")


def test_missing_parent_and_position_are_named(tmp_path: Any) -> None:
    recs = [
        Record(id="a", text="a", metadata={"parent_id": "gone", "position": 0}, dense=np.ones(4, np.float32)),
        Record(id="b", text="b", metadata={"parent_id": "gone"}, dense=np.arange(1, 5, dtype=np.float32)),
    ]
    with HybridStore("m", dense_dim=4) as s:
        s.add(recs)
        with pytest.raises(InvalidInputError, match=r"the parent 'gone' of hit '.' is not stored"):
            s.query(dense=np.ones(4), unit="parent")
        with pytest.raises(InvalidInputError, match=r"hit 'b' has no 'metadata.position'"):
            s.query(dense=np.ones(4), context_window=1)


def test_hierarchy_option_checks() -> None:
    with pytest.raises(InvalidTypeError, match="unknown"):
        HybridStore("x", dense_dim=4, hierarchy={"level": "x"})
    with pytest.raises(InvalidInputError, match="distinct non-empty names"):
        Hierarchy(levels=("a", "a"))
    with pytest.raises(InvalidInputError, match="payload key"):
        Hierarchy(parent_key="metadata.")
    # Custom keys: a splitter's chunks, parent = the source, position = the start offset.
    recs = [
        Record(
            id=f"c{i}",
            text=f"c{i}",
            metadata={"source": "s", "start": 10 * (3 - i)},
            dense=np.eye(4, dtype=np.float32)[i],
        )
        for i in range(4)
    ]
    keys = {"parent_key": "metadata.source", "position_key": "metadata.start"}
    with HybridStore("x", dense_dim=4, hierarchy=keys) as s:
        s.add(recs)
        hit: Hit = s.query(dense=np.eye(4)[1], limit=1, context_window=1)[0]
        assert hit.id == "c1" and [r.id for r in hit.window or []] == ["c2", "c1", "c0"]
