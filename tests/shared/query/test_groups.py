"""One hit per document (``group_by``): both backends against a brute-force reference.

A few hundred documents, each 1-6 chunks, one of them crowding the top of every ranking
(many near-copies of the query), so the embedded engine's over-fetch has to go on
reading. The reference is computed here from scratch: every chunk scored with numpy
(dense cosine, sparse dot product) or, for fused modes, the ungrouped ranking of the same
plan with prefetches covering the whole collection, then grouped by a plain loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.errors import InvalidInputError, InvalidTypeError
from shared.query.groups import GroupSpec, fill_groups, group_values
from shared.store import HybridStore
from shared.types import Hit, Record

DIM = 16
N_DOCS = 220
CROWD = 40  # chunks of the crowding document


def _corpus() -> tuple[list[Record], np.ndarray, dict[int, float]]:
    rng = np.random.default_rng(7)
    query = rng.normal(size=DIM).astype(np.float32)
    qsparse = {int(t): 1.0 for t in range(5)}
    recs: list[Record] = []
    for d in range(N_DOCS):
        n = CROWD if d == 0 else int(rng.integers(1, 7))
        for c in range(n):
            if d == 0:  # near-copies of the query: the whole top of a dense ranking
                dense = query + 0.05 * rng.normal(size=DIM)
                terms = {int(t): float(rng.uniform(1.0, 2.0)) for t in range(5)}
            else:
                dense = rng.normal(size=DIM)
                picked = rng.choice(60, size=5, replace=False)
                terms = {int(t): float(rng.uniform(0.1, 2.0)) for t in picked}
            recs.append(
                Record(
                    id=f"d{d}-c{c}",
                    text=f"chunk {c} of document {d}",
                    metadata={"source": f"doc-{d}", "num": d, "pos": c},
                    ref_doc_id=f"doc-{d}",
                    dense=dense.astype(np.float32),
                    sparse=terms,
                )
            )
    return recs, query, qsparse


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Record], np.ndarray, dict[int, float]]:
    return _corpus()


@pytest.fixture(scope="module", params=["edge", "local"])
def store(request: pytest.FixtureRequest, corpus: Any) -> Iterator[HybridStore]:
    recs = corpus[0]
    client = QdrantClient(":memory:") if request.param == "local" else None
    s = HybridStore("groups", dense_dim=DIM, client=client)
    s.add(recs)
    yield s
    s.close()


def _reference_groups(
    ranked: list[tuple[str, float, Any]], limit: int, size: int
) -> list[list[tuple[str, float]]]:
    """Group a ranking (id, score, group key value), best first, by a plain loop."""
    groups: dict[Any, list[tuple[str, float]]] = {}
    for rid, score, key in ranked:
        members = groups.setdefault(key, [])
        if len(members) < size:
            members.append((rid, score))
    return list(groups.values())[:limit]


def _as_groups(hits: list[Hit]) -> list[list[tuple[str, float]]]:
    out: list[list[tuple[str, float]]] = []
    last: Any = object()
    for h in hits:
        if h.group != last:
            out.append([])
            last = h.group
        out[-1].append((h.id, h.score))
    return out


def _same(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> None:
    assert [[i for i, _ in g] for g in got] == [[i for i, _ in g] for g in want]
    assert [s for g in got for _, s in g] == pytest.approx([s for g in want for _, s in g], abs=1e-4)


@pytest.mark.parametrize(("limit", "size", "offset"), [(10, 1, 0), (7, 3, 0), (5, 2, 3), (400, 2, 0)])
def test_dense_groups_equal_brute_force(
    store: HybridStore, corpus: Any, limit: int, size: int, offset: int
) -> None:
    recs, query, _ = corpus
    mat = np.stack([r.dense for r in recs])
    scores = mat @ query / (np.linalg.norm(mat, axis=1) * np.linalg.norm(query))
    order = np.argsort(-scores)
    ranked = [(recs[i].id, float(scores[i]), recs[i].ref_doc_id) for i in order]
    want = _reference_groups(ranked, limit + offset, size)[offset:]
    hits = store.query(
        dense=query, limit=limit, offset=offset, exact=True, group_by="ref_doc_id", group_size=size
    )
    _same(_as_groups(hits), want)
    # The group ids are the key's values, and the first group is the crowding document's.
    if offset == 0:
        assert hits[0].group == "doc-0"  # the crowding document leads, once
    assert all(h.group == h.ref_doc_id for h in hits)
    assert len({h.group for h in hits}) == min(limit, N_DOCS - offset)


@pytest.mark.parametrize("size", [1, 3])
def test_sparse_groups_equal_brute_force(store: HybridStore, corpus: Any, size: int) -> None:
    recs, _, qsparse = corpus
    scored = [
        (r.id, sum(w * (r.sparse or {}).get(t, 0.0) for t, w in qsparse.items()), r.metadata["num"])
        for r in recs
    ]
    ranked = sorted((x for x in scored if x[1] > 0), key=lambda x: -x[1])
    want = _reference_groups(ranked, 8, size)
    hits = store.query(sparse=qsparse, limit=8, group_by="metadata.num", group_size=size)
    _same(_as_groups(hits), want)
    assert hits[0].group == 0 and isinstance(hits[0].group, int)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf", "m3"])
@pytest.mark.parametrize("size", [1, 2])
def test_fused_groups_equal_grouped_ranking(store: HybridStore, corpus: Any, fusion: str, size: int) -> None:
    """Every fusion: the grouped result is the ungrouped ranking of the same plan, grouped."""
    recs, query, qsparse = corpus
    n = len(recs)
    common: dict[str, Any] = {
        "dense": query,
        "sparse": qsparse,
        "mode": "hybrid",
        "fusion": fusion,
        "exact": True,
        "dense_candidates": n,
        "sparse_candidates": n,
    }
    ranking = store.query(limit=n, **common)
    ranked = [(h.id, h.score, h.metadata["source"]) for h in ranking]
    want = _reference_groups(ranked, 6, size)
    hits = store.query(limit=6, group_by="metadata.source", group_size=size, **common)
    _same(_as_groups(hits), want)


def test_async_and_batch_are_the_same_groups(store: HybridStore, corpus: Any) -> None:
    _, query, _ = corpus
    args: dict[str, Any] = {
        "dense": query,
        "limit": 5,
        "exact": True,
        "group_by": "ref_doc_id",
        "group_size": 2,
    }
    sync = store.query(**args)
    got = asyncio.run(store.aquery(**args))
    assert [(h.id, h.group) for h in got] == [(h.id, h.group) for h in sync]


def test_ungrouped_query_unchanged(store: HybridStore, corpus: Any) -> None:
    _, query, _ = corpus
    hits = store.query(dense=query, limit=5, exact=True)
    assert all(h.group is None for h in hits)
    # Without grouping the crowding document fills the page.
    assert {h.ref_doc_id for h in hits} == {"doc-0"}


def test_bad_group_options(store: HybridStore, corpus: Any) -> None:
    _, query, _ = corpus
    with pytest.raises(InvalidInputError, match="group_size must be > 0"):
        store.query(dense=query, group_by="ref_doc_id", group_size=0)
    with pytest.raises(InvalidTypeError, match="group_size must be an int"):
        store.query(dense=query, group_by="ref_doc_id", group_size=1.5)  # type: ignore[typeddict-item]
    with pytest.raises(InvalidInputError, match="group_size needs group_by"):
        store.query(dense=query, group_size=2)
    with pytest.raises(InvalidInputError, match="group_by must be a payload key such as"):
        store.query(dense=query, group_by="metadata.")
    with pytest.raises(InvalidTypeError, match="group_by must be a payload key"):
        store.query(dense=query, group_by=3)  # type: ignore[typeddict-item]
    # A key none of the hits carries: named, with a hit that lacks it.
    with pytest.raises(
        InvalidInputError, match=r"group_by key 'metadata.nope' is on none of the hits \(e.g. hit 'd"
    ):
        store.query(dense=query, group_by="metadata.nope")


def test_grouped_query_matching_nothing_is_empty(store: HybridStore, corpus: Any) -> None:
    """No hit at all is an empty result, not the missing-key error."""
    from shared.filters import metadata_filter

    _, query, _ = corpus
    hits = store.query(dense=query, group_by="ref_doc_id", filter=metadata_filter({"source": "none"}))
    assert hits == []


def test_group_values_follow_qdrants_rule() -> None:
    assert group_values({"a": "x"}, "a") == ["x"]
    assert group_values({"m": {"k": [1, 2, 1]}}, "m.k") == [1, 2]
    assert group_values({"m": [{"k": "a"}, {"k": "b"}]}, "m.k") == ["a", "b"]
    assert group_values({"a": True}, "a") is None  # a bool is no group id
    assert group_values({"a": [1, 2.5]}, "a") is None  # one bad value: the point joins no group
    assert group_values({"b": 1}, "a") is None


def test_fill_groups_reads_on_until_full_or_exhausted() -> None:
    """The over-fetch asks for more until the groups are full, and stops at exhaustion."""
    ranking = [{"g": "a"}] * 30 + [{"g": "b"}, {"g": "c"}, {"g": "b"}]
    asked: list[int] = []

    def fetch(n: int) -> list[dict[str, str]]:
        asked.append(n)
        return ranking[:n]

    groups = fill_groups(fetch, lambda p: p, GroupSpec("g", 2, 3), 6)
    assert [(g.id, len(g.hits)) for g in groups] == [("a", 2), ("b", 2), ("c", 1)]
    assert asked == [6, 24, 96]  # 96 > 33: exhausted, group c stays short
    asked.clear()
    groups = fill_groups(fetch, lambda p: p, GroupSpec("g", 1, 1), 1)
    assert asked == [1] and [g.id for g in groups] == ["a"]


@pytest.mark.parametrize("backend", ["edge", "local"])
def test_groups_over_colbert_rerank_and_mrl_funnel(backend: str) -> None:
    """Multi-stage plans (MRL funnel, ColBERT re-rank of the candidates): the grouped result
    is the ungrouped ranking of the same plan, grouped."""
    rng = np.random.default_rng(11)
    recs = [
        Record(
            id=f"c{i}",
            text="t",
            metadata={"doc": i % 37},
            dense=rng.normal(size=32).astype(np.float32),
            colbert=rng.normal(size=(3, 8)).astype(np.float32),
        )
        for i in range(300)
    ]
    client = QdrantClient(":memory:") if backend == "local" else None
    with HybridStore("mc", dense_dim=32, colbert=True, mrl_dim=8, client=client) as s:
        s.add(recs)
        args: dict[str, Any] = {
            "dense": rng.normal(size=32),
            "colbert": rng.normal(size=(2, 8)),
            "colbert_rerank": True,
            "candidate_k": 300,
            "mrl_candidates": 300,
            "exact": True,
        }
        ranking = s.query(limit=300, **args)
        want = _reference_groups([(h.id, h.score, h.metadata["doc"]) for h in ranking], 6, 2)
        _same(_as_groups(s.query(limit=6, group_by="metadata.doc", group_size=2, **args)), want)
