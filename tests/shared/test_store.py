"""HybridStore on the embedded Qdrant Edge backend, with explicit vectors (no encoder)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from qdrant_client import models

from shared.errors import (
    BackendError,
    InvalidInputError,
    InvalidTypeError,
    ModelMismatchError,
    StoreLockedError,
    UnsupportedOperationError,
)
from shared.filters import metadata_filter
from shared.store import HybridStore
from shared.types import Record

DIM = 16


def make_records(n: int = 40, seed: int = 0, dim: int = DIM) -> list[Record]:
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        terms = rng.choice(500, size=6, replace=False)
        sparse = {int(t): float(w) for t, w in zip(terms, rng.uniform(0.1, 2.0, size=6), strict=True)}
        recs.append(
            Record(
                id=f"doc-{i}",
                text=f"text {i}",
                metadata={"i": i, "parity": "even" if i % 2 == 0 else "odd", "tags": [f"t{i % 3}"]},
                ref_doc_id=f"ref-{i // 4}",
                dense=rng.normal(size=dim).astype(np.float32),
                sparse=sparse,
            )
        )
    return recs


def assert_same_hits(a: list, b: list, tol: float = 1e-4) -> None:
    """Same scores position by position and the same ids, up to the order of tied scores."""
    assert len(a) == len(b) > 0
    assert [x.score for x in a] == pytest.approx([y.score for y in b], abs=tol)

    def groups(hits: list) -> list[set[str]]:
        out: list[set[str]] = []
        last = None
        for h in hits:
            if last is None or abs(h.score - last) > tol:
                out.append(set())
            out[-1].add(h.id)
            last = h.score
        return out

    ga, gb = groups(a), groups(b)
    # The last group may be cut by the limit differently on each side.
    assert ga[:-1] == gb[:-1]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def sparse_dot(q: dict[int, float], d: dict[int, float]) -> float:
    return sum(w * d.get(t, 0.0) for t, w in q.items())


@pytest.fixture
def recs() -> list[Record]:
    return make_records()


@pytest.fixture
def store(recs: list[Record]):
    with HybridStore("test", dense_dim=DIM) as s:
        s.add(recs)
        yield s


def test_add_returns_ids_and_counts(store: HybridStore, recs: list[Record]) -> None:
    assert store.count() == len(recs)
    assert store.count(metadata_filter({"parity": "even"})) == len(recs) // 2


def test_dense_query_matches_bruteforce_cosine(store: HybridStore, recs: list[Record]) -> None:
    q = np.random.default_rng(7).normal(size=DIM)
    hits = store.query(dense=q, limit=5, exact=True)
    expected = sorted(recs, key=lambda r: -cos(q, np.asarray(r.dense)))[:5]
    assert [h.id for h in hits] == [r.id for r in expected]
    for h, r in zip(hits, expected, strict=True):
        assert h.score == pytest.approx(cos(q, np.asarray(r.dense)), abs=1e-5)
        assert h.text == r.text and h.metadata == r.metadata and h.ref_doc_id == r.ref_doc_id


def test_sparse_query_matches_bruteforce_dot(store: HybridStore, recs: list[Record]) -> None:
    q = dict(list(recs[3].sparse.items())[:3])  # type: ignore[union-attr]
    hits = store.query(sparse=q, limit=3)
    scores = sorted(((sparse_dot(q, dict(r.sparse)), r.id) for r in recs), reverse=True)  # type: ignore[arg-type]
    assert hits[0].id == "doc-3"
    assert hits[0].score == pytest.approx(scores[0][0], rel=1e-5)


def test_hybrid_rrf_scores_are_reciprocal_ranks(store: HybridStore, recs: list[Record]) -> None:
    q_dense = np.asarray(recs[5].dense)
    q_sparse = dict(recs[9].sparse)  # type: ignore[arg-type]
    hits = store.query(dense=q_dense, sparse=q_sparse, limit=5, exact=True, fusion="rrf")
    dense_rank = [r.id for r in sorted(recs, key=lambda r: -cos(q_dense, np.asarray(r.dense)))]
    sp = [(sparse_dot(q_sparse, dict(r.sparse)), r.id) for r in recs]  # type: ignore[arg-type]
    sparse_rank = [i for s, i in sorted(sp, reverse=True) if s > 0]
    k = 60

    def rrf(doc: str) -> float:
        score = 1.0 / (k + dense_rank.index(doc))
        if doc in sparse_rank:
            score += 1.0 / (k + sparse_rank.index(doc))
        return score

    assert len(hits) == 5
    expected = sorted((d for d in dense_rank), key=lambda d: -rrf(d))[:5]
    assert [h.id for h in hits] == expected
    for h in hits:
        assert h.score == pytest.approx(rrf(h.id), abs=1e-6)


def test_m3_fusion_gives_dense_only_candidate_its_true_sparse_score(recs: list[Record]) -> None:
    # The dense top doc shares a query term with a low weight, so 30 other docs push it out
    # of the sparse candidate list (candidate_k=5): m3 must still add its real sparse score.
    dim = DIM
    rng = np.random.default_rng(3)
    target = rng.normal(size=dim).astype(np.float32)
    records = [Record(id="target", dense=target, sparse={1: 0.2, 999: 1.0})]
    for i in range(30):
        records.append(
            Record(id=f"sp{i}", dense=-target + rng.normal(scale=0.1, size=dim), sparse={1: 0.5 + 0.01 * i})
        )
    with HybridStore(dense_dim=dim) as s:
        s.add(records)
        q_sparse = {1: 1.0}
        hits = s.query(dense=target, sparse=q_sparse, fusion="m3", candidate_k=5, limit=3, exact=True)
        top = hits[0]
        assert top.id == "target"
        # dense 1.0 * cos(target, target) + 0.3 * (1.0 * 0.2)
        assert top.score == pytest.approx(1.0 + 0.3 * 0.2, abs=1e-5)
        # A candidate found by sparse only gets its real (negative) dense score.
        sparse_hits = {
            h.id: h.score
            for h in s.query(dense=target, sparse=q_sparse, fusion="m3", candidate_k=5, limit=10, exact=True)
        }
        r = records[30]
        expected = cos(target, np.asarray(r.dense)) + 0.3 * 0.79
        assert sparse_hits["sp29"] == pytest.approx(expected, rel=1e-4)


def test_m3_custom_weights(store: HybridStore, recs: list[Record]) -> None:
    q_dense = np.asarray(recs[2].dense)
    q_sparse = dict(recs[2].sparse)  # type: ignore[arg-type]
    hit = store.query(
        dense=q_dense, sparse=q_sparse, fusion="m3", dense_weight=0.5, sparse_weight=2.0, limit=1, exact=True
    )[0]
    assert hit.id == "doc-2"
    # No encoder identity says the weights are BGE-M3's: the sparse term is q.d / q.q (auto).
    assert hit.score == pytest.approx(0.5 + 2.0 * 1.0, rel=1e-5)
    raw = store.query(
        dense=q_dense,
        sparse=q_sparse,
        fusion="m3",
        dense_weight=0.5,
        sparse_weight=2.0,
        limit=1,
        exact=True,
        sparse_normalization="none",
    )[0]
    assert raw.score == pytest.approx(0.5 + 2.0 * sparse_dot(q_sparse, q_sparse), rel=1e-5)


def test_sparse_normalization_changes_only_m3_and_is_validated(
    store: HybridStore, recs: list[Record]
) -> None:
    q_dense, q_sparse = np.asarray(recs[3].dense), dict(recs[3].sparse)  # type: ignore[arg-type]
    kw = {"dense": q_dense, "sparse": q_sparse, "exact": True}
    for fusion in ("rrf", "dbsf"):
        a = store.query(**kw, fusion=fusion, sparse_normalization="none")  # type: ignore[arg-type]
        b = store.query(**kw, fusion=fusion, sparse_normalization="query")  # type: ignore[arg-type]
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-5)
    # A sparse model whose weights are all 5x larger (documents and queries) gets the same
    # normalised m3 scores: what makes one weight (0.3) fit any sparse model's scale.
    scaled = [
        Record(id=r.id, dense=r.dense, sparse={k: 5.0 * v for k, v in r.sparse.items()})  # type: ignore[union-attr]
        for r in recs
    ]
    with HybridStore(dense_dim=DIM) as big:
        big.add(scaled)
        big_q = {k: 5.0 * v for k, v in q_sparse.items()}
        got = big.query(dense=q_dense, sparse=big_q, fusion="m3", exact=True)
        want = store.query(**kw, fusion="m3")  # type: ignore[arg-type]
        assert [h.id for h in got] == [h.id for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5)
        raw_big = big.query(dense=q_dense, sparse=big_q, fusion="m3", exact=True, sparse_normalization="none")
        assert raw_big[0].score > want[0].score + 1.0  # raw: the sparse side swamps the cosine
    with pytest.raises(InvalidInputError, match="unknown sparse_normalization 'l2'"):
        store.query(**kw, fusion="m3", sparse_normalization="l2")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown sparse_normalization 'max'"):
        HybridStore(dense_dim=DIM, sparse_normalization="max")
    with HybridStore(dense_dim=DIM, sparse_normalization="none") as raw_store:
        raw_store.add(recs)
        hit = raw_store.query(dense=q_dense, sparse=q_sparse, fusion="m3", limit=1, exact=True)[0]
        assert hit.score == pytest.approx(1.0 + 0.3 * sparse_dot(q_sparse, q_sparse), rel=1e-5)


def test_offset_pages_through_results(store: HybridStore, recs: list[Record]) -> None:
    q = np.asarray(recs[0].dense)
    full = [h.id for h in store.query(dense=q, limit=10, exact=True)]
    page2 = [h.id for h in store.query(dense=q, limit=5, offset=5, exact=True)]
    assert page2 == full[5:10]
    hybrid_full = [h.id for h in store.query(dense=q, sparse=dict(recs[0].sparse), limit=8)]  # type: ignore[arg-type]
    hybrid_page = [h.id for h in store.query(dense=q, sparse=dict(recs[0].sparse), limit=4, offset=4)]  # type: ignore[arg-type]
    assert hybrid_page == hybrid_full[4:8]


def test_filter_applies_in_every_mode(store: HybridStore, recs: list[Record]) -> None:
    flt = metadata_filter({"parity": "odd"})
    q_dense = np.asarray(recs[4].dense)  # an even doc: must not come back
    q_sparse = {**recs[4].sparse, **recs[5].sparse}  # type: ignore[dict-item]
    for kwargs in (
        {"dense": q_dense},
        {"sparse": q_sparse},
        {"dense": q_dense, "sparse": q_sparse},
        {"dense": q_dense, "sparse": q_sparse, "fusion": "m3"},
        {"dense": q_dense, "sparse": q_sparse, "fusion": "dbsf"},
    ):
        hits = store.query(**kwargs, filter=flt, limit=10)  # type: ignore[arg-type]
        assert hits, kwargs
        assert all(h.metadata["parity"] == "odd" for h in hits), kwargs


def test_readd_overwrites(store: HybridStore, recs: list[Record]) -> None:
    r = recs[1]
    store.add([Record(id=r.id, text="changed", metadata={"new": True}, dense=r.dense, sparse=r.sparse)])
    assert store.count() == len(recs)
    got = store.get([r.id])[0]
    assert got.text == "changed" and got.metadata == {"new": True} and got.ref_doc_id is None


def test_get_in_given_order_skips_missing(store: HybridStore, recs: list[Record]) -> None:
    got = store.get(["doc-7", "nope", "doc-2"], with_vectors=True)
    assert [g.id for g in got] == ["doc-7", "doc-2"]
    d = np.asarray(recs[7].dense)
    assert np.allclose(got[0].dense, d / np.linalg.norm(d), atol=1e-6)  # cosine stores unit vectors
    assert got[0].sparse == pytest.approx(recs[7].sparse)


def test_delete_by_ids_ref_doc_ids_and_filter(store: HybridStore, recs: list[Record]) -> None:
    store.delete(["doc-0", "doc-1"])
    assert store.count() == len(recs) - 2
    assert store.get(["doc-0"]) == []
    store.delete(ref_doc_ids=["ref-1"])  # doc-4..7
    assert store.count() == len(recs) - 6
    store.delete(filter=metadata_filter({"i": {"gte": 30}}))
    assert store.count() == len(recs) - 6 - 10
    with pytest.raises(InvalidInputError):
        store.delete()
    store.clear()
    assert store.count() == 0


def test_score_threshold(store: HybridStore, recs: list[Record]) -> None:
    q = np.asarray(recs[0].dense)
    hits = store.query(dense=q, limit=40, score_threshold=0.2)
    assert hits and all(h.score >= 0.2 for h in hits)


def test_with_vectors_returns_vectors(store: HybridStore, recs: list[Record]) -> None:
    hit = store.query(dense=np.asarray(recs[0].dense), limit=1, with_vectors=True)[0]
    assert hit.dense is not None and hit.dense.shape == (DIM,)
    assert hit.sparse == pytest.approx(recs[0].sparse)


def test_mmr_diversifies(recs: list[Record]) -> None:
    base = np.ones(DIM, dtype=np.float32)
    records = [Record(id=f"dup{i}", dense=base + 0.001 * i) for i in range(5)]
    other = np.zeros(DIM, dtype=np.float32)
    other[:8] = 1.0
    records.append(Record(id="other", dense=other))
    with HybridStore(dense_dim=DIM, sparse=False) as s:
        s.add(records)
        relevance = [h.id for h in s.mmr(dense=base, limit=2, fetch_k=6, lambda_mult=1.0)]
        diverse = [h.id for h in s.mmr(dense=base, limit=2, fetch_k=6, lambda_mult=0.0)]
    assert relevance[1].startswith("dup")
    assert "other" in diverse


# -- persistence, guard, locking -------------------------------------------------


def test_reopen_persists_without_reingest(tmp_path, recs: list[Record]) -> None:
    with HybridStore("c", path=tmp_path, dense_dim=DIM) as s:
        s.add(recs)
    assert (tmp_path / "c" / "m3_hybrid.json").exists()
    with HybridStore("c", path=tmp_path) as s:
        assert s.count() == len(recs)
        assert s.schema.dense_dim == DIM
        assert s.query(dense=np.asarray(recs[3].dense), limit=1)[0].id == "doc-3"


def test_reopen_with_defaults_adopts_the_collection_layout(tmp_path, recs: list[Record]) -> None:
    with HybridStore("c", path=tmp_path, dense_dim=DIM, mrl_dim=4, sparse_idf=True) as s:
        s.add(recs[:5])
    with HybridStore("c", path=tmp_path) as s:
        assert (s.schema.mrl_dim, s.schema.sparse_idf) == (4, True)
        assert s.query(dense=np.asarray(recs[2].dense), limit=1)[0].id == "doc-2"
    with pytest.raises(ModelMismatchError, match="mrl_dim: collection has 4, store asks 8"):
        HybridStore("c", path=tmp_path, mrl_dim=8)


def test_reopen_with_other_size_is_refused_before_any_write(tmp_path, recs: list[Record]) -> None:
    with HybridStore("c", path=tmp_path, dense_dim=DIM) as s:
        s.add(recs[:5])
    with pytest.raises(ModelMismatchError, match="dense_dim"):
        HybridStore("c", path=tmp_path, dense_dim=DIM * 2)
    with HybridStore("c", path=tmp_path, dense_dim=DIM) as s:
        assert s.count() == 5
    with HybridStore("c", path=tmp_path, dense_dim=DIM * 2, recreate=True) as s:
        assert s.count() == 0 and s.schema.dense_dim == DIM * 2


def test_guard_written_but_shard_missing_is_completed(tmp_path, recs: list[Record]) -> None:
    # A crash between writing the guard (first) and creating the shard leaves only the guard.
    HybridStore("c", path=tmp_path, dense_dim=DIM).close()
    for child in (tmp_path / "c").iterdir():
        if child.name != "m3_hybrid.json":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    with HybridStore("c", path=tmp_path) as s:
        assert s.count() == 0 and s.schema.dense_dim == DIM
        s.add(recs[:3])
        assert s.count() == 3


def test_second_store_on_same_path_in_process_is_refused(tmp_path) -> None:
    s = HybridStore("c", path=tmp_path, dense_dim=DIM)
    try:
        with pytest.raises(StoreLockedError, match="already open in this process"):
            HybridStore("c", path=tmp_path, dense_dim=DIM)
    finally:
        s.close()
    HybridStore("c", path=tmp_path, dense_dim=DIM).close()  # free again after close


def test_other_process_gets_store_locked_error(tmp_path) -> None:
    import subprocess
    import sys
    import textwrap

    with HybridStore("c", path=tmp_path, dense_dim=DIM) as s:
        s.add(make_records(3))
    code = textwrap.dedent(
        f"""
        import sys, time
        from shared.store import HybridStore
        s = HybridStore("c", path={str(tmp_path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        s.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="another process") as info:
            HybridStore("c", path=tmp_path)
        assert str(tmp_path / "c") in str(info.value)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    with HybridStore("c", path=tmp_path) as s:
        assert s.count() == 3


def test_temporary_store_is_removed_on_close(recs: list[Record]) -> None:
    s = HybridStore(dense_dim=DIM)
    s.add(recs[:2])
    where = s._backend.path  # type: ignore[attr-defined]
    assert where.exists()
    s.close()
    assert not where.exists()
    with pytest.raises(BackendError, match="closed"):
        s.count()


def test_dense_dim_learned_from_first_add(tmp_path, recs: list[Record]) -> None:
    with HybridStore("c", path=tmp_path) as s:
        assert s.count() == 0 and s.query(dense=np.ones(DIM), limit=3) == []
        s.add(recs[:3])
        assert s.schema.dense_dim == DIM and s.count() == 3


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (Record(id="x", dense=np.ones(DIM + 1)), r"'x' \(index 2\).*size 17"),
        (Record(id="x", dense=[np.nan] * DIM), r"'x' \(index 2\).*NaN"),
        (Record(id="x", dense=[np.inf] + [1.0] * (DIM - 1)), r"'x' \(index 2\).*NaN or infinity"),
        (Record(id="x", dense=np.zeros(DIM)), r"'x'.*all zeros"),
        (Record(id="x", dense=np.ones(DIM), metadata={"f": object()}), r"'x' \(index 2\).*JSON"),
        (Record(id="x", dense=np.ones(DIM), metadata={"f": float("nan")}), r"'x'.*NaN"),
        (Record(id="x", dense=np.ones(DIM), metadata={1: "a"}), r"non-str key"),
        (Record(id="x", dense=np.ones(DIM), sparse={-1: 1.0}), r"'x'.*token ids"),
        (Record(id="x", dense=np.ones(DIM), sparse={3: float("nan")}), r"'x'.*NaN"),
        (Record(id="", dense=np.ones(DIM)), r"record 2: id"),
        (Record(id="x"), r"'x'.*no dense vector given and the store has no encoder"),
    ],
)
def test_bad_record_rejects_whole_batch(bad: Record, match: str) -> None:
    good = make_records(2)
    with HybridStore(dense_dim=DIM) as s:
        with pytest.raises(InvalidInputError, match=match):
            s.add([*good, bad, *make_records(2, seed=9)])
        assert s.count() == 0


def test_bad_record_in_generator_reports_stored_prefix() -> None:
    def gen():
        yield from make_records(4)
        yield Record(id="bad", dense=np.ones(DIM + 2))

    with HybridStore(dense_dim=DIM) as s:
        with pytest.raises(
            InvalidInputError, match=r"'bad' \(index 4\).*4 records before this batch were stored"
        ):
            s.add(gen(), batch_size=2)
        assert s.count() == 4


def test_wrong_types_are_invalid_type_errors() -> None:
    with HybridStore(dense_dim=DIM) as s:
        with pytest.raises(InvalidTypeError, match="item 0"):
            s.add([{"id": "x"}])  # type: ignore[list-item]
        with pytest.raises(InvalidTypeError):
            s.add(Record(id="x", dense=np.ones(DIM)))  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError, match=r"ids\[1\]"):
            s.get(["a", 3])  # type: ignore[list-item]
        with pytest.raises(InvalidTypeError, match="filter"):
            s.query(dense=np.ones(DIM), filter={"a": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be > 0"),
        ({"limit": -3}, "limit must be > 0"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"fusion": "borda"}, "unknown fusion 'borda'"),
        ({"mode": "lexical"}, "unknown retrieval mode 'lexical'"),
        ({"candidate_k": 0}, "candidate_k must be > 0"),
        ({"sparse_weight": -1.0}, "sparse_weight"),
        ({"dense": np.ones(DIM + 1)}, "size 17"),
        ({"dense": [np.nan] * DIM}, "NaN"),
    ],
)
def test_bad_query_arguments(store: HybridStore, kwargs: dict, match: str) -> None:
    args = {"dense": np.ones(DIM), "sparse": {1: 1.0}}
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match):
        store.query(**args)


def test_bad_store_options() -> None:
    with pytest.raises(InvalidInputError, match="unknown quantization preset 'int4'"):
        HybridStore(dense_dim=DIM, quantization="int4")
    with pytest.raises(InvalidInputError, match="unknown fusion"):
        HybridStore(dense_dim=DIM, fusion="nope")
    with pytest.raises(InvalidInputError, match="sparse_datatype"):
        HybridStore(dense_dim=DIM, sparse_datatype="int4")
    with pytest.raises(InvalidInputError, match="mrl_dim"):
        HybridStore(dense_dim=DIM, mrl_dim=DIM)


def test_hybrid_without_sparse_collection_is_unsupported() -> None:
    with HybridStore(dense_dim=DIM, sparse=False) as s:
        s.add([Record(id=r.id, dense=r.dense) for r in make_records(3)])
        # The store default adapts to a dense-only collection...
        assert s.query(dense=np.ones(DIM), limit=1)
        # ...an explicit hybrid request does not.
        with pytest.raises(UnsupportedOperationError):
            s.query(dense=np.ones(DIM), sparse={1: 1.0}, mode="hybrid")
        with pytest.raises(InvalidInputError, match="sparse vector but the collection stores none"):
            s.add([Record(id="s", dense=np.ones(DIM), sparse={1: 1.0})])


def test_has_id_filter_uses_callers_ids(store: HybridStore, recs: list[Record]) -> None:
    flt = models.Filter(must=[models.HasIdCondition(has_id=["doc-3", "doc-8"])])
    hits = store.query(dense=np.asarray(recs[0].dense), filter=flt, limit=10)
    assert sorted(h.id for h in hits) == ["doc-3", "doc-8"]
    assert store.count(flt) == 2


async def test_async_api_shares_semantics(recs: list[Record]) -> None:
    async with HybridStore(dense_dim=DIM) as s:
        ids = await s.aadd(recs)
        assert ids == [r.id for r in recs]
        assert await s.acount() == len(recs)
        q = np.asarray(recs[6].dense)
        sync_hits = s.query(dense=q, sparse=dict(recs[6].sparse), limit=5)  # type: ignore[arg-type]
        async_hits = await s.aquery(dense=q, sparse=dict(recs[6].sparse), limit=5)  # type: ignore[arg-type]
        assert [(h.id, h.score) for h in async_hits] == [(h.id, h.score) for h in sync_hits]
        assert [r.id for r in await s.aget(["doc-6"])] == ["doc-6"]
        assert (await s.ammr(dense=q, limit=2))[0].id == "doc-6"
        await s.adelete(["doc-6"])
        assert await s.acount() == len(recs) - 1
        await s.aclear()
        assert await s.acount() == 0


@pytest.mark.parametrize("backend", ["edge", "client"])
@pytest.mark.parametrize("mrl_dim", [None, 8])
def test_a_list_query_vector_finds_what_its_float32_array_finds(
    recs: list[Record], backend: str, mrl_dim: int | None
) -> None:
    """A framework's list goes to the engine as it came (its floats are rounded by the engine, not
    by us): every mode ranks and scores as the same vector given as a float32 array."""
    from qdrant_client import QdrantClient

    where = {"client": QdrantClient(":memory:")} if backend == "client" else {}
    with HybridStore("l", dense_dim=DIM, mrl_dim=mrl_dim, **where) as s:
        s.add(recs)
        rng = np.random.default_rng(11)
        as_list = rng.normal(size=DIM).tolist()  # float64 values: rounding to float32 matters
        as_array = np.asarray(as_list, dtype=np.float32)
        sparse = recs[3].sparse
        for mode in ("dense", "hybrid"):
            for exact in (False, True):
                got = s.query(dense=as_list, sparse=sparse, mode=mode, limit=8, exact=exact)
                want = s.query(dense=as_array, sparse=sparse, mode=mode, limit=8, exact=exact)
                assert_same_hits(got, want, tol=1e-6)
        got_mmr = s.mmr(dense=as_list, limit=5, fetch_k=20)
        assert [h.id for h in got_mmr] == [h.id for h in s.mmr(dense=as_array, limit=5, fetch_k=20)]
        ints = [1] + [0] * (DIM - 1)  # a list of ints is a vector too
        assert_same_hits(s.query(dense=ints, limit=5), s.query(dense=np.eye(DIM)[0], limit=5), tol=1e-6)
        # Numeric strings read as numpy reads them (the engine is given numbers, not the text).
        texts = [repr(v) for v in as_list]
        assert_same_hits(s.query(dense=texts, limit=5), s.query(dense=as_array, limit=5), tol=1e-6)
        for bad in (1e300, float("nan")):  # beyond float32, or not a number: refused, never sent
            with pytest.raises(InvalidInputError, match="dense query vector contains NaN or infinity"):
                s.query(dense=[bad] + [0.0] * (DIM - 1))
