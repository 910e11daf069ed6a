"""BM25 as a third signal beside a learned sparse model (``HybridStore(bm25=...)``).

The store keeps BM25 in a second sparse vector (``bm25``, with the engine's IDF) next to
the learned one and fuses dense + sparse + BM25 in one request. Checked against a brute
force over the stored vectors (dense cosines, sparse dot products) and the reference BM25
of ``tests/support/bm25.py``, on Qdrant Edge and qdrant-client local mode, with real
models (MiniLM + SPLADE-tiny: the tiny random BGE-M3's cosines all lie within 1e-4 of each
other, below what the engine's float32 DBSF statistics resolve).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.encoders import MINILM, SPLADE_TINY, Bm25Encoder, load_encoder
from shared.encoders.bm25 import bm25_for_corpus
from shared.errors import InvalidInputError, InvalidTypeError, ModelMismatchError, UnsupportedOperationError
from shared.store import HybridStore
from shared.types import Record
from tests.support.bm25 import QUERIES, bm25_reference, verses

N_DOCS = 120
#: More than the corpus: every side hands all its matches to the fusion.
WIDE = 500


@pytest.fixture(scope="module")
def bge() -> Any:
    """The dense + learned sparse pair BM25 joins (named for the role: a BGE-M3 would do too)."""
    return load_encoder(MINILM, sparse_model=SPLADE_TINY, show_progress=False)


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return {r["id"]: r["text"] for r in verses(0, N_DOCS)}


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], dict[str, Any]]:
    """Connection keywords of one backend, for each open (local mode: one client holds the path)."""
    if request.param == "edge":
        return lambda: {"path": tmp_path / "edge"}
    client = QdrantClient(path=str(tmp_path / "local"))
    request.addfinalizer(client.close)
    return lambda: {"client": client}


def _store(bge: Any, docs: dict[str, str], conn: dict[str, Any], **kw: Any) -> HybridStore:
    bm25 = kw.pop("bm25", None) or bm25_for_corpus(docs.values())
    store = HybridStore("three", encoder=bge, bm25=bm25, candidate_k=WIDE, **conn, **kw)
    store.add_texts(list(docs.values()), ids=list(docs))
    return store


def _sides(store: HybridStore, bge: Any, docs: dict[str, str], query: str) -> list[dict[str, float]]:
    """Brute force: each signal's score of every document it matches (dense, sparse, BM25)."""
    stored = {r.id: r for r in store.get(list(docs), with_vectors=True)}
    q = bge.encode([query], "query")
    qd, qs = np.asarray(q.dense[0]), q.sparse[0]
    dense = {i: float(np.dot(qd, r.dense) / np.linalg.norm(r.dense)) for i, r in stored.items()}
    sparse = {}
    for i, r in stored.items():
        s = sum(w * (r.sparse or {}).get(t, 0.0) for t, w in qs.items())
        if s > 0:
            sparse[i] = s
    bm25 = store._bm25_encoder()
    assert bm25 is not None
    return [dense, sparse, bm25_reference(bm25, docs, query)]


def _ranked(side: dict[str, float]) -> list[str]:
    return sorted(side, key=lambda i: -side[i])


def _rrf(
    sides: list[dict[str, float]], weights: tuple[float, ...], k: int = 60
) -> dict[str, tuple[float, float]]:
    """Each document's RRF score, as (lowest, highest): documents whose scores on a side are
    equal to float32 precision may take each other's ranks (the engine's order).

    Qdrant's weighted RRF divides a side's 1-based rank by its weight: a document at 0-based
    ``rank`` scores ``1 / (k + (rank + 1) / w - 1)`` there (``1 / (k + rank)`` at ``w = 1``;
    nothing at ``w = 0``).
    """

    def term(rank: int, w: float) -> float:
        return 0.0 if w == 0 else 1.0 / (k + (rank + 1) / w - 1)

    out: dict[str, tuple[float, float]] = {}
    for side, w in zip(sides, weights, strict=True):
        ranked = _ranked(side)
        for i in ranked:
            tied = [
                r for r, j in enumerate(ranked) if abs(side[j] - side[i]) <= 1e-6 * max(1.0, abs(side[i]))
            ]
            lo, hi = out.get(i, (0.0, 0.0))
            out[i] = (lo + term(max(tied), w), hi + term(min(tied), w))
    return out


def _assert_rrf(hits: list[Any], expected: dict[str, tuple[float, float]], limit: int) -> None:
    """Every hit's score within its range, in order, and no document left out that must rank higher."""
    assert len(hits) == limit
    for h in hits:
        lo, hi = expected[h.id]
        assert lo - 1e-6 <= h.score <= hi + 1e-6, h.id
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    returned = {h.id for h in hits}
    assert all(lo <= scores[-1] + 1e-6 for i, (lo, _) in expected.items() if i not in returned)


def _dbsf(sides: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for side in sides:
        values = np.asarray(list(side.values()))
        mean, std = values.mean(), values.std(ddof=1)
        low, high = mean - 3 * std, mean + 3 * std
        for i, s in side.items():
            out[i] = out.get(i, 0.0) + (s - low) / (high - low)
    return out


def _m3(
    sides: list[dict[str, float]], weights: tuple[float, ...], scales: tuple[float, float]
) -> dict[str, float]:
    dense, sparse, bm25 = sides
    wd, ws, wb = weights
    return {
        i: wd * dense[i] + ws * sparse.get(i, 0.0) / scales[0] + wb * bm25.get(i, 0.0) / scales[1]
        for i in set(dense) | set(sparse) | set(bm25)
    }


def _qq(store: HybridStore, bge: Any, query: str) -> tuple[float, float]:
    """m3's "query" scale of the sparse and of the BM25 term: each query vector's own q . q."""
    bm25 = store._bm25_encoder()
    assert bm25 is not None
    out = []
    for enc in (bge, bm25):
        sparse = enc.encode([query], "query").sparse
        assert sparse is not None
        out.append(math.fsum(v * v for v in sparse[0].values()))
    return out[0], out[1]


def _assert_top(hits: list[Any], expected: dict[str, float], limit: int) -> None:
    want = sorted(expected, key=lambda i: -expected[i])[:limit]
    # Scores first (a tie between two documents may order them either way), then the order.
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-4, abs=1e-6), h.id
    assert [expected[h.id] for h in hits] == pytest.approx([expected[i] for i in want], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf", "m3"])
def test_three_signals_equal_brute_force_fusion(
    bge: Any, docs: dict[str, str], where: Callable[[], dict[str, Any]], fusion: str
) -> None:
    with _store(bge, docs, where(), fusion=fusion) as store:
        assert store.schema.vector_names == ("dense", "sparse", "bm25")
        for query in QUERIES:
            sides = _sides(store, bge, docs, query)
            assert sides[2], query  # BM25 matches something: the third signal is exercised
            hits = store.query(query, limit=10, exact=True)
            if fusion == "rrf":
                _assert_rrf(hits, _rrf(sides, (1.0, 1.0, 1.0)), 10)
            elif fusion == "dbsf":
                _assert_top(hits, _dbsf(sides), 10)
            else:
                # m3 defaults: 1.0 / 0.3 / 0.3, SPLADE's and BM25's terms each over their query's q.q.
                _assert_top(hits, _m3(sides, (1.0, 0.3, 0.3), _qq(store, bge, query)), 10)


def test_per_signal_weights(bge: Any, docs: dict[str, str], where: Callable[[], dict[str, Any]]) -> None:
    with _store(bge, docs, where(), fusion="rrf", bm25_weight=2.0) as store:
        query = QUERIES[1]
        sides = _sides(store, bge, docs, query)
        _assert_rrf(store.query(query, limit=10, exact=True), _rrf(sides, (1.0, 1.0, 2.0)), 10)
        # A query's own weights win over the store's.
        hits = store.query(query, limit=10, exact=True, dense_weight=0.5, sparse_weight=0.0, bm25_weight=1.0)
        _assert_rrf(hits, _rrf(sides, (0.5, 0.0, 1.0)), 10)
        m3 = store.query(query, limit=10, exact=True, fusion="m3", sparse_weight=0.1, bm25_weight=0.7)
        _assert_top(m3, _m3(sides, (1.0, 0.1, 0.7), _qq(store, bge, query)), 10)


def test_bm25_side_equals_reference_before_and_after_changes(
    bge: Any, docs: dict[str, str], where: Callable[[], dict[str, Any]]
) -> None:
    """The BM25 signal alone (m3 with only its weight, raw scale) is the reference BM25 over
    the live documents, after deletes and adds too (the engine's IDF, no rebuild)."""
    only_bm25 = {
        "fusion": "m3",
        "dense_weight": 0.0,
        "sparse_weight": 0.0,
        "bm25_weight": 1.0,
        "sparse_normalization": "none",
        "limit": WIDE,
    }
    with _store(bge, docs, where()) as store:
        live = dict(docs)
        bm25 = store._bm25_encoder()
        assert bm25 is not None

        def check() -> None:
            for query in QUERIES:
                want = bm25_reference(bm25, live, query)
                got = {h.id: h.score for h in store.query(query, **only_bm25) if h.score > 0}  # type: ignore[arg-type]
                assert set(got) == set(want), query
                for i, s in want.items():
                    assert got[i] == pytest.approx(s, rel=2e-5), (query, i)

        check()
        gone = list(docs)[::3]
        store.delete(gone)
        for i in gone:
            del live[i]
        check()
        extra = {r["id"]: r["text"] for r in verses(N_DOCS, 40)}
        store.add_texts(list(extra.values()), ids=list(extra))
        live.update(extra)
        check()


def test_persists_across_reopen(bge: Any, docs: dict[str, str], where: Callable[[], dict[str, Any]]) -> None:
    bm25 = bm25_for_corpus(docs.values())
    with _store(bge, docs, where(), bm25=bm25) as store:
        before = [(h.id, h.score) for h in store.query(QUERIES[0], limit=10, exact=True)]
    # Reopened without bm25=: the collection's guard gives the same BM25 back.
    with HybridStore("three", encoder=bge, candidate_k=WIDE, **where()) as store:
        assert store.schema.bm25 == bm25.config()
        after = [(h.id, h.score) for h in store.query(QUERIES[0], limit=10, exact=True)]
        assert [i for i, _ in after] == [i for i, _ in before]
        assert [s for _, s in after] == pytest.approx([s for _, s in before], rel=1e-5)
    # The same BM25 given again is accepted; another one is refused and the data kept.
    with HybridStore("three", encoder=bge, bm25=Bm25Encoder.from_config(bm25.config()), **where()) as store:
        assert store.count() == len(docs)
    with pytest.raises(ModelMismatchError, match="bm25"):
        HybridStore("three", encoder=bge, bm25=True, **where())
    with HybridStore("three", encoder=bge, **where()) as store:
        assert store.count() == len(docs)


def test_bm25_cannot_be_added_to_a_collection_without_it(
    bge: Any, docs: dict[str, str], where: Callable[[], dict[str, Any]]
) -> None:
    with HybridStore("plain", encoder=bge, **where()) as store:
        store.add_texts(["In the beginning"], ids=["a"])
    with pytest.raises(ModelMismatchError, match="bm25"):
        HybridStore("plain", encoder=bge, bm25=True, **where())


def test_bad_input(bge: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidTypeError, match="bm25 must be"):
        HybridStore("x", encoder=bge, bm25=3, path=tmp_path / "a")
    with pytest.raises(InvalidInputError, match="klingon"):
        HybridStore("x", encoder=bge, bm25="klingon", path=tmp_path / "b")
    # Beside a learned sparse model only: a dense-only model, or BM25 as the sparse model, is refused.
    with pytest.raises(InvalidInputError, match="beside a learned sparse model"):
        HybridStore("x", encoder=load_encoder(MINILM), bm25=True, path=tmp_path / "c")
    with pytest.raises(InvalidInputError, match="sparse model is BM25 already"):
        HybridStore("x", encoder=load_encoder(MINILM, sparse_model="bm25"), bm25=True, path=tmp_path / "d")
    with pytest.raises(InvalidInputError, match="bm25_weight"):
        HybridStore("x", encoder=bge, bm25=True, bm25_weight=-1.0, path=tmp_path / "e")
    with HybridStore("x", encoder=bge, bm25=True, path=tmp_path / "f") as store:
        # A record without text, or whose text has no words, names the record; nothing is written.
        dim = bge.dense_dim
        with pytest.raises(InvalidInputError, match=r"'v'.*no text to weight with BM25"):
            store.add([Record("ok", text="light"), Record("v", dense=[1.0] * dim, sparse={1: 1.0})])
        with pytest.raises(InvalidInputError, match=r"'p'.*no words for BM25"):
            store.add([Record("ok", text="light"), Record("p", text="!!! ...")])
        assert store.count() == 0
        store.add_texts(["And God said, Let there be light"], ids=["g"])
        with pytest.raises(UnsupportedOperationError, match="dbsf"):
            store.query("light", fusion="dbsf", bm25_weight=2.0)
        with pytest.raises(InvalidTypeError, match="bm25_weight"):
            store.query("light", bm25_weight="heavy")  # type: ignore[typeddict-item]


def test_foreign_layout_refuses_bm25(bge: Any, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOperationError, match="BM25"):
        HybridStore("x", encoder=bge, bm25=True, layout="langchain", client=QdrantClient(path=str(tmp_path)))
