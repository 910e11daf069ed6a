"""Quantization presets, the MRL funnel and the ColBERT stage, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.store import HybridStore
from shared.types import Record
from tests.shared.test_store import assert_same_hits

DIM = 64


def clustered(n: int, seed: int = 0, dim: int = DIM) -> tuple[np.ndarray, list[Record]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim))
    vecs = centers[rng.integers(0, 8, size=n)] + 0.5 * rng.normal(size=(n, dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    recs = [Record(id=f"p{i}", dense=vecs[i], sparse={int(i % 50): 1.0, 1000 + i: 0.5}) for i in range(n)]
    return vecs.astype(np.float32), recs


@pytest.mark.parametrize(
    ("quantization", "on_disk"),
    [
        ("none", False),
        ("float16", False),
        ("int8", False),
        ("int8", True),
        ("binary", False),
        ("binary-1.5bit", False),
        ("binary-2bit", False),
        ("binary-2bit", True),
        ("turbo-1bit", False),
        ("turbo-1.5bit", True),
        ("turbo-2bit", False),
        ("turbo-4bit", True),
        ("turbo-8bit", False),
        (qe.TurboQuantQuantizationConfig(bits=qe.TurboQuantBitSize.Bits2), True),
        (
            models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)),
            False,
        ),
        (qe.BinaryQuantizationConfig(encoding=qe.BinaryQuantizationEncoding.TwoBits), True),
        (
            models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X8)
            ),
            False,
        ),
    ],
)
def test_quantization_presets_keep_top_hits(quantization, on_disk: bool) -> None:
    vecs, recs = clustered(300)
    queries = vecs[:20] + 0.05 * np.random.default_rng(1).normal(size=(20, DIM))
    with HybridStore(dense_dim=DIM, quantization=quantization, on_disk=on_disk) as s:
        s.add(recs)
        recall = []
        for qi, q in enumerate(queries):
            exact = np.argsort(-(vecs @ q))[:10]
            got = s.query(dense=q, limit=10)
            recall.append(len({f"p{i}" for i in exact} & {h.id for h in got}) / 10)
            # Rescoring with the originals: the top score is the true cosine.
            assert got[0].score == pytest.approx(float(vecs[exact[0]] @ q / np.linalg.norm(q)), abs=2e-2), qi
        assert np.mean(recall) >= 0.9
        stored = s.schema.guard_dict()["schema"]
        assert stored["on_disk"] is on_disk


@pytest.mark.parametrize("preset", ["turbo-1bit", "turbo-1.5bit", "turbo-2bit", "turbo-4bit", "turbo-8bit"])
def test_turbo_presets_round_trip_on_both_backends(tmp_path, preset: str, caplog) -> None:
    vecs, recs = clustered(120)
    q = vecs[3]
    client = QdrantClient(path=str(tmp_path / "remote"))
    try:
        for kind in ("edge", "remote"):
            caplog.clear()
            where = {"path": tmp_path / "edge"} if kind == "edge" else {"client": client}
            with HybridStore(
                "t", dense_dim=DIM, quantization=preset, mrl_dim=16, mrl_quantization=preset, **where
            ) as s:
                s.add(recs)
                assert s.query(dense=q, limit=1)[0].id == "p3"
            if kind == "remote":  # the collection really holds a TurboQuant config of that size
                dense = client.get_collection("t").config.params.vectors["dense"]
                bits = models.TurboQuantBitSize("bits" + preset[6:-3].replace(".", "_"))
                assert dense.quantization_config.turbo.bits == bits
            # Reopened: the collection's presets, quietly.
            with caplog.at_level("WARNING", logger="shared.store"), HybridStore("t", **where) as s:
                assert s.schema.quantization.name == preset
                assert s.schema.mrl_quantization.name == preset
                assert s.count() == 120
                top = s.query(dense=q, limit=1)[0]
                assert top.id == "p3" and top.score == pytest.approx(1.0, abs=1e-5)  # rescored
                # Per-query rescore/oversampling, as for the other presets.
                assert s.query(dense=q, limit=3, rescore=False, oversampling=1.0)[0].id == "p3"
                assert s.query(dense=q, limit=3, oversampling=5.0)[0].id == "p3"
                with pytest.raises(InvalidInputError, match="oversampling"):
                    s.query(dense=q, oversampling=0.5)
            assert not caplog.records
            with HybridStore("t", dense_dim=DIM, quantization="int8", **where) as s:  # kept, with a warning
                assert s.schema.quantization.name == preset
            assert "keeps its own storage settings" in caplog.text
            with HybridStore("t", dense_dim=DIM, quantization="binary", recreate=True, **where) as s:
                assert s.count() == 0 and s.schema.quantization.name == "binary"
        dense = client.get_collection("t").config.params.vectors["dense"]
        assert dense.quantization_config.binary is not None  # recreate rebuilt it with the new preset
    finally:
        client.close()


def test_quantization_is_recorded_and_kept_on_reopen(tmp_path, caplog) -> None:
    _, recs = clustered(50)
    with HybridStore("q", path=tmp_path, dense_dim=DIM, quantization="binary-2bit") as s:
        s.add(recs)
    with caplog.at_level("WARNING", logger="shared.store"):
        with HybridStore("q", path=tmp_path) as s:  # defaults: follow the collection quietly
            assert s.schema.quantization.name == "binary-2bit"
        assert not caplog.records
        # Asking for another preset does not rebuild: the collection keeps its own, with a warning.
        with HybridStore("q", path=tmp_path, dense_dim=DIM, quantization="int8") as s:
            assert s.schema.quantization.name == "binary-2bit"
            assert s.count() == 50
        assert "keeps its own storage settings" in caplog.text and "recreate=True" in caplog.text


@pytest.mark.parametrize("datatype", ["float16", "uint8"])
def test_sparse_datatype_option(datatype: str) -> None:
    recs = [Record(id=f"s{i}", dense=np.eye(DIM)[i], sparse={i: 1.0, 99: 0.25}) for i in range(10)]
    with HybridStore(dense_dim=DIM, sparse_datatype=datatype) as s:
        s.add(recs)
        hits = s.query(sparse={3: 1.0, 99: 0.1}, limit=2)
        assert hits[0].id == "s3"


def test_query_overrides_rescore_and_oversampling() -> None:
    vecs, recs = clustered(200)
    with HybridStore(dense_dim=DIM, quantization="binary") as s:
        s.add(recs)
        q = vecs[5]
        rescored = s.query(dense=q, limit=1, exact=False)[0]
        assert rescored.id == "p5" and rescored.score == pytest.approx(1.0, abs=1e-5)
        for kwargs in ({"rescore": False}, {"oversampling": 4.0}, {"hnsw_ef": 300}, {"exact": True}):
            assert s.query(dense=q, limit=3, **kwargs)[0].id == "p5"
        with pytest.raises(InvalidInputError, match="oversampling"):
            s.query(dense=q, oversampling=0.5)


# -- MRL funnel -------------------------------------------------------------------


def test_mrl_funnel_matches_full_dense_when_candidates_cover_all() -> None:
    vecs, recs = clustered(120)
    q = vecs[7] + 0.1
    with HybridStore(dense_dim=DIM, mrl_dim=16) as s:
        s.add(recs)
        assert "dense_mrl" in s.schema.vector_names
        got = s.query(dense=q, limit=10, candidate_k=120, exact=True)
        expected = np.argsort(-(vecs @ q))[:10]
        assert [h.id for h in got] == [f"p{i}" for i in expected]
        # Scores come from the full vector, not the truncated one.
        assert got[0].score == pytest.approx(float(vecs[expected[0]] @ q / np.linalg.norm(q)), abs=1e-5)


def test_mrl_funnel_really_prefilters_on_the_truncated_vector() -> None:
    # "hidden" matches the query only in the tail dimensions the MRL copy drops, so a
    # funnel with few candidates cannot find it while full dense search ranks it first.
    dim, head = 32, 8
    rng = np.random.default_rng(0)
    q = np.zeros(dim, dtype=np.float32)
    q[:head] = 0.2
    q[head:] = 1.0
    hidden = np.zeros(dim, dtype=np.float32)
    hidden[:head] = -1.0 * np.eye(head)[0]
    hidden[head:] = 1.0
    recs = [Record(id="hidden", dense=hidden)]
    for i in range(40):
        v = np.zeros(dim, dtype=np.float32)
        v[:head] = 0.2 + 0.01 * rng.normal(size=head)
        v[head:] = rng.normal(size=dim - head) * 0.3
        recs.append(Record(id=f"d{i}", dense=v))
    with (
        HybridStore(dense_dim=dim, sparse=False, mrl_dim=head) as funnel,
        HybridStore(dense_dim=dim, sparse=False) as full,
    ):
        funnel.add(recs)
        full.add(recs)
        assert full.query(dense=q, limit=1, exact=True)[0].id == "hidden"
        narrow = [h.id for h in funnel.query(dense=q, limit=3, candidate_k=5, mrl_candidates=5, exact=True)]
        assert "hidden" not in narrow
        wide = funnel.query(dense=q, limit=3, candidate_k=5, mrl_candidates=41, exact=True)
        assert wide[0].id == "hidden"


def test_mrl_funnel_in_hybrid_and_remote_agree() -> None:
    vecs, recs = clustered(150)
    q = vecs[11] + 0.05
    sq = {1011: 1.0, 1061: 0.5, 11: 0.1}  # distinct sparse scores: no rank ties
    with (
        HybridStore(dense_dim=DIM, mrl_dim=16) as e,
        HybridStore("r", client=QdrantClient(":memory:"), dense_dim=DIM, mrl_dim=16) as r,
    ):
        e.add(recs)
        r.add(recs)
        for fusion in ("rrf", "m3"):
            a = e.query(dense=q, sparse=sq, fusion=fusion, limit=5, candidate_k=30, exact=True)
            b = r.query(dense=q, sparse=sq, fusion=fusion, limit=5, candidate_k=30, exact=True)
            assert_same_hits(a, b)
            assert a[0].id == "p11"


def test_mrl_dim_validation() -> None:
    with pytest.raises(InvalidInputError, match="mrl_dim"):
        HybridStore(dense_dim=16, mrl_dim=32)
    with pytest.raises(InvalidInputError, match="mrl_dim"):
        HybridStore(dense_dim=16, mrl_dim=0)
    with pytest.raises(InvalidInputError, match="unknown quantization preset"):
        HybridStore(dense_dim=16, mrl_dim=8, mrl_quantization="int3")


# -- ColBERT ------------------------------------------------------------------------


def maxsim(q: np.ndarray, d: np.ndarray) -> float:
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    return float((qn @ dn.T).max(axis=1).sum())


def test_colbert_rerank_scores_are_maxsim() -> None:
    rng = np.random.default_rng(2)
    cdim = 8
    recs = []
    colberts = {}
    for i in range(20):
        cb = rng.normal(size=(int(rng.integers(3, 7)), cdim)).astype(np.float32)
        colberts[f"c{i}"] = cb
        recs.append(Record(id=f"c{i}", dense=rng.normal(size=DIM), sparse={i: 1.0}, colbert=cb))
    qcb = rng.normal(size=(4, cdim)).astype(np.float32)
    with (
        HybridStore(dense_dim=DIM, colbert=True) as s,
        HybridStore("r", client=QdrantClient(":memory:"), dense_dim=DIM, colbert=True) as r,
    ):
        s.add(recs)
        r.add(recs)
        assert s.schema.colbert_dim == cdim
        hits = s.query(dense=rng.normal(size=DIM), sparse={1: 1.0}, colbert=qcb, limit=5, candidate_k=20)
        expected = sorted(colberts, key=lambda k: -maxsim(qcb, colberts[k]))[:5]
        assert [h.id for h in hits] == expected
        for h in hits:
            assert h.score == pytest.approx(maxsim(qcb, colberts[h.id]), abs=1e-4)
        remote = r.query(dense=recs[0].dense, mode="dense", colbert=qcb, limit=5, candidate_k=20)
        assert [h.id for h in remote] == expected
        no_rerank = s.query(dense=recs[3].dense, colbert=qcb, colbert_rerank=False, mode="dense", limit=1)
        assert no_rerank[0].id == "c3"
        with pytest.raises(InvalidInputError, match="needs colbert query vectors"):
            s.query(dense=recs[3].dense, mode="dense", colbert_rerank=True)


def test_colbert_needs_a_colbert_collection() -> None:
    with HybridStore(dense_dim=DIM) as s:
        s.add([Record(id="a", dense=np.ones(DIM))])
        with pytest.raises(UnsupportedOperationError, match="ColBERT"):
            s.query(dense=np.ones(DIM), mode="dense", colbert=np.ones((2, 4)), colbert_rerank=True)
        with pytest.raises(InvalidInputError, match="ColBERT vectors but the collection stores none"):
            s.add([Record(id="b", dense=np.ones(DIM), colbert=np.ones((2, 4)))])


# -- sparse IDF --------------------------------------------------------------------


def test_sparse_idf_modifier_weights_rare_terms_on_both_backends() -> None:
    # Term 1 is in every document, term 2 in one: with equal weights IDF ranks the rare one first.
    recs = [Record(id=f"c{i}", dense=np.eye(DIM)[i], sparse={1: 1.0}) for i in range(20)]
    recs.append(Record(id="rare", dense=np.eye(DIM)[30], sparse={2: 1.0}))
    recs.append(Record(id="common", dense=np.eye(DIM)[31], sparse={1: 1.0, 3: 0.1}))
    q = {1: 1.0, 2: 1.0}
    with (
        HybridStore(dense_dim=DIM, sparse_idf=True) as e,
        HybridStore("r", client=QdrantClient(":memory:"), dense_dim=DIM, sparse_idf=True) as r,
        HybridStore(dense_dim=DIM) as plain,
    ):
        for s in (e, r, plain):
            s.add(recs)
        assert e.query(sparse=q, limit=1)[0].id == "rare"
        assert_same_hits(e.query(sparse=q, limit=5), r.query(sparse=q, limit=5))
        # Without IDF every matching document scores 1.0 (learned weights are used as they are).
        assert {h.score for h in plain.query(sparse=q, limit=5)} == {1.0}
