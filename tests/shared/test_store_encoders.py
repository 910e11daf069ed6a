"""HybridStore end to end with real encoders: tiny BGE-M3 (dense+sparse+colbert), MiniLM, SPLADE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.encoders import load_encoder
from shared.errors import InvalidInputError, ModelMismatchError
from shared.store import HybridStore
from shared.types import Record
from tests.support.checkpoint import make_bge_m3_checkpoint

TEXTS = [
    "the cat sat on the mat",
    "dogs are loyal animals and love walks",
    "quantum physics describes tiny particles",
    "a recipe for apple pie with cinnamon",
    "the stock market fell sharply today",
    "cats and dogs can live together",
]


@pytest.fixture(scope="module")
def bge(tiny_bge_m3_dir: Path):
    return load_encoder(tiny_bge_m3_dir, show_progress=False)


def test_bge_m3_one_forward_pass_per_batch_and_text_queries(bge) -> None:
    with HybridStore(encoder=bge, colbert=True) as s:
        assert s.schema.dense_dim == bge.dense_dim and s.schema.sparse and s.schema.colbert
        before = bge.forward_passes
        ids = s.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))], batch_size=3)
        # dense + sparse + colbert of each batch from ONE pass: 2 batches -> 2 passes.
        assert bge.forward_passes - before == 2
        assert ids == [f"t{i}" for i in range(len(TEXTS))]
        stored = s.get(["t2"], with_vectors=True)[0]
        enc = bge.encode([TEXTS[2]], "document", outputs=["dense", "sparse", "colbert"])
        assert np.allclose(stored.dense, enc.dense[0], atol=1e-5)
        assert stored.sparse == pytest.approx(enc.sparse[0], rel=1e-4)
        # Query by text: hybrid + ColBERT rerank by default; the exact text ranks first.
        hits = s.query(TEXTS[3], limit=3)
        assert hits[0].id == "t3"
        q = bge.encode([TEXTS[3]], "query", outputs=["colbert"]).colbert[0]
        d = bge.encode([TEXTS[3]], "document", outputs=["colbert"]).colbert[0]
        assert hits[0].score == pytest.approx(float((q @ d.T).max(axis=1).sum()), rel=1e-4)
        for mode in ("dense", "sparse"):
            assert s.query(TEXTS[1], mode=mode, colbert_rerank=False, limit=1)[0].id == "t1"
        # Explicit vectors and no text: no ColBERT query vectors at hand, so no default rerank.
        by_vector = s.query(dense=enc.dense[0], mode="dense", limit=1)[0]
        assert by_vector.id == "t2" and by_vector.score == pytest.approx(1.0, abs=1e-5)
        m3 = s.query(TEXTS[4], fusion="m3", colbert_rerank=False, limit=1)[0]
        qd = bge.encode([TEXTS[4]], "query", outputs=["dense", "sparse"])
        dd = bge.encode([TEXTS[4]], "document", outputs=["dense", "sparse"])
        dense_s = float(qd.dense[0] @ dd.dense[0])
        sparse_s = sum(w * dd.sparse[0].get(t, 0.0) for t, w in qd.sparse[0].items())
        assert m3.id == "t4" and m3.score == pytest.approx(dense_s + 0.3 * sparse_s, rel=1e-4)


def test_encoder_guard_refuses_other_model_before_writing(tmp_path: Path, bge) -> None:
    other_dir = make_bge_m3_checkpoint(tmp_path / "other", seed=1)
    other = load_encoder(other_dir, show_progress=False)
    with HybridStore("c", path=tmp_path / "db", encoder=bge) as s:
        s.add_texts(TEXTS[:2], ids=["a", "b"])
    with pytest.raises(ModelMismatchError) as info:
        HybridStore("c", path=tmp_path / "db", encoder=other)
    assert "identity.model_id" in str(info.value)
    with HybridStore("c", path=tmp_path / "db", encoder=bge) as s:
        assert s.count() == 2
        assert s.identity == bge.identity
    with HybridStore("c", path=tmp_path / "db", encoder=other, recreate=True) as s:
        assert s.count() == 0 and s.identity == other.identity


def test_minilm_dense_only_store(minilm_dir: Path) -> None:
    enc = load_encoder(minilm_dir, show_progress=False)
    with HybridStore(encoder=enc) as s:
        assert s.schema.dense_dim == 384 and not s.schema.sparse
        s.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        # The store default (hybrid) falls back to dense on a dense-only collection.
        assert s.query("a kitten sitting on a rug", limit=1)[0].id == "t0"
        assert s.query("pie baking", limit=1)[0].id == "t3"
        assert s.mmr("pets living together", limit=2, fetch_k=6)[0].id in {"t5", "t1"}


def test_minilm_plus_splade_pair(minilm_dir: Path, splade_dir: Path) -> None:
    enc = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False)
    with HybridStore(encoder=enc, fusion="m3") as s:
        assert s.schema.sparse and s.schema.dense_dim == 384
        s.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        assert s.query("stock market crash", limit=1)[0].id == "t4"
        assert s.query("stock market crash", mode="sparse", limit=1)[0].id == "t4"


def _dot(q: dict[int, float], d: dict[int, float]) -> float:
    return sum(w * d.get(t, 0.0) for t, w in q.items())


def test_m3_normalises_splade_scores_but_not_bge_m3_lexical_weights(
    minilm_dir: Path, splade_dir: Path, bge
) -> None:
    # SPLADE's dot products are far larger than a cosine: by default (auto) m3 divides the
    # sparse term by the query's own q.q; BGE-M3's lexical weights keep the paper's raw sum.
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False)
    query = "stock market crash"
    with HybridStore(encoder=pair, fusion="m3") as s:
        s.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        qd = pair.encode([query], "query", outputs=["dense", "sparse"])
        dd = pair.encode([TEXTS[4]], "document", outputs=["dense", "sparse"])
        cos = float(qd.dense[0] @ dd.dense[0])
        raw = _dot(qd.sparse[0], dd.sparse[0])
        qq = _dot(qd.sparse[0], qd.sparse[0])
        assert raw > 3 * cos  # the scale problem normalisation exists for
        auto = {h.id: h.score for h in s.query(query, limit=6, exact=True)}
        none = {h.id: h.score for h in s.query(query, limit=6, exact=True, sparse_normalization="none")}
        assert auto["t4"] == pytest.approx(cos + 0.3 * raw / qq, rel=1e-4)
        assert none["t4"] == pytest.approx(cos + 0.3 * raw, rel=1e-4)
        assert s.query(query, limit=1, sparse_normalization="query")[0].score == pytest.approx(
            max(auto.values()), rel=1e-5
        )
    with HybridStore(encoder=bge, fusion="m3", colbert=False) as s:
        s.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        qd = bge.encode([TEXTS[4]], "query", outputs=["dense", "sparse"])
        dd = bge.encode([TEXTS[4]], "document", outputs=["dense", "sparse"])
        cos, raw = float(qd.dense[0] @ dd.dense[0]), _dot(qd.sparse[0], dd.sparse[0])
        qq = _dot(qd.sparse[0], qd.sparse[0])
        hit = s.query(TEXTS[4], limit=1)[0]
        assert hit.id == "t4" and hit.score == pytest.approx(cos + 0.3 * raw, rel=1e-4)
        forced = s.query(TEXTS[4], limit=1, sparse_normalization="query")[0]
        assert forced.score == pytest.approx(cos + 0.3 * raw / qq, rel=1e-4)


def test_text_without_encoder_is_a_clear_error() -> None:
    with HybridStore(dense_dim=8) as s:
        with pytest.raises(InvalidInputError, match="no encoder"):
            s.add_texts(["hello"])
        s.add([Record(id="x", dense=np.ones(8))])
        with pytest.raises(InvalidInputError, match="no encoder"):
            s.query("hello")


async def test_async_text_round_trip(bge) -> None:
    async with HybridStore(encoder=bge) as s:
        await s.aadd_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        hits = await s.aquery(TEXTS[2], limit=2)
        assert hits[0].id == "t2"
        assert [h.id for h in s.query(TEXTS[2], limit=2)] == [h.id for h in hits]
