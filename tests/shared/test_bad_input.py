"""Bad input, property-based: every input gets a correct result or a clear error, nothing else.

For each generated record (or batch) the store either

* accepts it, and reading it back gives exactly what was written (text, JSON
  metadata, ref id, vectors up to the cosine normalisation), or
* refuses it with an ``InvalidInputError``/``InvalidTypeError`` whose message
  names the record (its id or its index),

and in both cases the records that were there before are unchanged (count and
``get`` of the existing ids compared before/after). Inputs that are wrong by
definition (NaN, wrong sizes, non-JSON metadata, non-str ids...) must be refused,
never stored. Explicit vectors everywhere except where text matters (the real
tiny BGE-M3 checkpoint and ``load_encoder``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from qdrant_client import models

from shared.errors import (
    InvalidInputError,
    InvalidTypeError,
    M3HybridError,
    ModelMismatchError,
    UnsupportedOperationError,
)
from shared.filters import metadata_filter
from shared.store import HybridStore
from shared.types import Record

DIM = 8
# Long texts are truncated to max_length on purpose (the warning is the encoder's feature), and a
# 1e39 component overflows float32 before the store refuses it: neither is what these tests check.
pytestmark = [
    pytest.mark.filterwarnings("ignore::shared.encoders.base.TruncationWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning"),
]
# M3_BAD_INPUT_EXAMPLES=1000 for a long sweep (the figures in RELIABILITY.md).
EXAMPLES = int(os.environ.get("M3_BAD_INPUT_EXAMPLES", "60"))
SETTINGS = settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLEAR_ERRORS = (InvalidInputError, InvalidTypeError)

# Strings Python allows but UTF-8 (hence JSON, Qdrant and tokenizers) does not.
LONE_SURROGATES = st.sampled_from(["\ud800", "a\udc80b", "\udfff" * 3])


def nested(depth: int) -> Any:
    x: Any = "leaf"
    for _ in range(depth):
        x = {"k": [x]}
    return x


# -- field strategies: VALID[field] must be accepted, INVALID[field] refused --------------

# codec="utf-8": no lone surrogates (st.characters() alone can produce them; text() cannot).
long_text = st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1000, 20_000))

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.tuples(kids, kids),
        st.dictionaries(st.text(max_size=10), kids, max_size=4),
    ),
    max_leaves=20,
)
not_json = st.one_of(
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-float("inf")),
    st.frozensets(st.integers(), min_size=1, max_size=3).map(set),
    st.binary(min_size=1, max_size=8),
    st.just(object()),
    st.just(2**64),  # beyond u64/i64: Qdrant would store it as a float (a silent change)
    st.just(-(2**63) - 1),
    st.just(10**30),
    st.just(complex(1, 2)),
    st.just(nested(100)),  # deeper than Qdrant can read back
    st.just(nested(3000)),
    LONE_SURROGATES,
)


@st.composite
def bad_metadata(draw: st.DrawFn) -> dict[str, Any]:
    """Valid metadata with one non-JSON value (or a non-str key) planted somewhere."""
    base = draw(st.dictionaries(st.text(max_size=10), json_value, max_size=3))
    if draw(st.booleans()):
        base[draw(st.sampled_from([1, 2.5, None, ("t",)]))] = 1  # a non-str key
        return base
    bad = draw(not_json)
    where = draw(st.sampled_from(["top", "list", "dict"]))
    key = draw(st.text(max_size=10))
    base[key] = bad if where == "top" else ([1, bad] if where == "list" else {"inner": bad})
    return base


good_dense = (
    st.lists(st.integers(-1000, 1000), min_size=DIM, max_size=DIM)
    .filter(any)
    .map(lambda xs: [x / 100 for x in xs])
)
# Weights are stored as float32: generate ones that float32 holds to 1e-6 (no subnormals).
good_sparse = st.dictionaries(
    st.integers(0, 2**32 - 1), st.integers(-5000, 5000).map(lambda w: w / 100), max_size=30
)


def _poison(t: tuple[list[float], int, float]) -> list[float]:
    xs, i, bad = t
    return [*xs[:i], bad, *xs[i + 1 :]]


VALID: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.text(min_size=1, max_size=40), long_text),
    "text": st.one_of(st.none(), st.just(""), st.text(max_size=200), long_text),
    "metadata": st.one_of(
        st.dictionaries(st.text(max_size=10), json_value, max_size=5), st.just({"deep": nested(30)})
    ),
    "ref_doc_id": st.one_of(st.none(), st.text(max_size=30)),
    "dense": st.one_of(good_dense, good_dense.map(lambda xs: np.asarray(xs, dtype=np.float64))),
    "sparse": st.one_of(st.none(), good_sparse),
}
INVALID: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(
        st.just(""), st.none(), st.integers(), st.floats(), st.binary(max_size=8), LONE_SURROGATES
    ),
    "text": st.one_of(st.integers(), st.binary(max_size=8), st.lists(st.text(), max_size=2), LONE_SURROGATES),
    "metadata": st.one_of(
        bad_metadata(), st.none(), st.lists(st.integers(), max_size=2), st.text(max_size=5)
    ),
    "ref_doc_id": st.one_of(st.integers(), st.binary(max_size=4), LONE_SURROGATES),
    "dense": st.one_of(
        st.lists(st.floats(-10, 10), min_size=0, max_size=2 * DIM).filter(lambda xs: len(xs) != DIM),
        st.tuples(good_dense, st.integers(0, DIM - 1), st.sampled_from([math.nan, math.inf, -math.inf])).map(
            _poison
        ),
        st.just([0.0] * DIM),
        st.just([1e39] + [1.0] * (DIM - 1)),  # overflows float32
        st.none(),  # no vector and no encoder to compute it
        st.text(min_size=1, max_size=DIM),
        st.just([[1.0] * DIM]),
    ),
    "sparse": st.one_of(
        st.tuples(
            good_sparse,
            st.sampled_from([(-1, 1.0), (2**32, 1.0), ("7", 1.0), (1.5, 1.0), (True, 1.0), (3, math.nan)]),
        ).map(lambda t: {**t[0], t[1][0]: t[1][1]}),
        st.just({3: "heavy"}),
        st.just([(1, 0.5)]),
    ),
}


@st.composite
def records(draw: st.DrawFn, bad: bool | None = None) -> tuple[Record, str | None]:
    """A record and the name of its one invalid field (None: all valid)."""
    if bad is None:
        bad = draw(st.booleans())
    bad_field = draw(st.sampled_from(sorted(INVALID))) if bad else None
    fields = {f: draw(INVALID[f] if f == bad_field else VALID[f]) for f in VALID}
    return Record(**fields), bad_field


# -- the store and its snapshot ------------------------------------------------------------

EXISTING = [
    Record(
        id=f"existing-{i}",
        text=f"kept text {i}",
        metadata={"i": i, "tags": ["a", "b"], "nested": {"x": i / 3}},
        ref_doc_id=f"ref-{i}",
        dense=np.random.default_rng(i).normal(size=DIM).astype(np.float32),
        sparse={i: 1.0, 100 + i: 0.5},
    )
    for i in range(5)
]
EXISTING_IDS = {r.id for r in EXISTING}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridStore]:
    with HybridStore("bad", path=tmp_path_factory.mktemp("bad"), dense_dim=DIM) as s:
        s.add(EXISTING)
        yield s


def snapshot(store: HybridStore) -> tuple[int, list[tuple[Any, ...]]]:
    got = store.get([r.id for r in EXISTING], with_vectors=True)
    rows = [
        (g.id, g.text, json.dumps(g.metadata, sort_keys=True), g.ref_doc_id, g.dense.tobytes(), g.sparse)  # type: ignore[union-attr]
        for g in got
    ]
    return store.count(), rows


def json_normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


def same_json(got: Any, want: Any) -> bool:
    """Equal JSON, except that floats may differ in the last bit.

    Qdrant Edge parses stored payload floats without correct rounding: about 1 in 5
    comes back 1 ULP away (relative 2e-16); qdrant-client local mode is exact.
    """
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return got == want or abs(got - want) <= math.ulp(want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_json, got, want))
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same_json(got[k], want[k]) for k in want)
        )
    return type(got) is type(want) and got == want


def assert_round_trip(store: HybridStore, rec: Record) -> None:
    [got] = store.get([rec.id], with_vectors=True)
    assert got.id == rec.id
    assert got.text == rec.text
    assert got.ref_doc_id == rec.ref_doc_id
    assert same_json(got.metadata, json_normal(rec.metadata)), (got.metadata, rec.metadata)
    want = np.asarray(rec.dense, dtype=np.float64)
    assert got.dense is not None
    assert np.allclose(got.dense, want / np.linalg.norm(want), atol=1e-5)
    want_sparse = {int(k): float(v) for k, v in (rec.sparse or {}).items() if v != 0}
    if want_sparse:
        assert got.sparse is not None and set(got.sparse) == set(want_sparse)
        assert all(
            math.isclose(got.sparse[k], v, rel_tol=1e-6, abs_tol=1e-30) for k, v in want_sparse.items()
        )
    else:
        assert not got.sparse
    hits = store.query(dense=rec.dense, mode="dense", limit=10, exact=True)
    assert rec.id in [h.id for h in hits]


def names_item(exc: BaseException, rec: Record, index: int) -> bool:
    msg = str(exc)
    if isinstance(rec.id, str) and rec.id and repr(rec.id) in msg:
        return True
    return f"index {index}" in msg or f"item {index}" in msg or f"record {index}" in msg


def check_add(store: HybridStore, batch: list[Record], ok: bool, bad_index: int | None) -> None:
    before = snapshot(store)
    try:
        ids = store.add(batch)
    except CLEAR_ERRORS as exc:
        assert not ok, f"a valid batch was refused: {exc}"
        if bad_index is not None:
            assert names_item(exc, batch[bad_index], bad_index), str(exc)[:300]
        assert snapshot(store) == before, "a refused batch changed the store"
        return
    except M3HybridError as exc:  # BackendError etc. for bad data: not a clear input error
        pytest.fail(f"unclear error for bad input: {type(exc).__name__}: {str(exc)[:300]}")
    try:
        assert ok, f"invalid input was stored: {batch!r:.300}"
        assert ids == [r.id for r in batch]
        for rec in batch:
            assert_round_trip(store, rec)
        assert store.count() == before[0] + len({r.id for r in batch})
        assert snapshot(store)[1] == before[1], "adding new ids changed existing records"
    finally:
        store.delete([r.id for r in batch])  # keep the shared store clean for the next example
    assert snapshot(store) == before


# -- properties ----------------------------------------------------------------------------


@SETTINGS
@given(gen=records())
def test_any_record_is_stored_exactly_or_refused_clearly(store: HybridStore, gen: Any) -> None:
    rec, bad_field = gen
    assume(rec.id not in EXISTING_IDS)
    event(f"invalid {bad_field}" if bad_field else "valid record")  # --hypothesis-show-statistics
    check_add(store, [rec], bad_field is None, 0 if bad_field else None)


@SETTINGS
@given(
    goods=st.lists(records(bad=False), min_size=1, max_size=5),
    bad=records(bad=True),
    pos=st.integers(0, 5),
)
def test_one_bad_record_rejects_its_whole_batch(store: HybridStore, goods: Any, bad: Any, pos: int) -> None:
    batch = [r for r, _ in goods]
    pos = min(pos, len(batch))
    batch.insert(pos, bad[0])
    assume(not EXISTING_IDS & {r.id for r in batch if isinstance(r.id, str)})
    check_add(store, batch, False, pos)


@SETTINGS
@given(ids=st.lists(st.text(min_size=1, max_size=2000), min_size=1, max_size=6))
def test_ids_of_any_string_form_round_trip(store: HybridStore, ids: list[str]) -> None:
    assume(not EXISTING_IDS & set(ids))
    ids = list(dict.fromkeys(ids))
    batch = [Record(id=i, text=i, dense=[1.0] + [0.5] * (DIM - 1), metadata={"id": i}) for i in ids]
    check_add(store, batch, True, None)


def test_duplicate_ids_in_one_batch_last_one_wins(store: HybridStore) -> None:
    before = snapshot(store)
    a = Record(id="dup", text="first", dense=[1.0] * DIM, metadata={"v": 1})
    b = Record(id="dup", text="second", dense=[-1.0] + [1.0] * (DIM - 1), metadata={"v": 2})
    try:
        assert store.add([a, b]) == ["dup", "dup"]
        assert store.count() == before[0] + 1
        [got] = store.get(["dup"], with_vectors=True)
        assert (got.text, got.metadata) == ("second", {"v": 2})
        assert got.dense is not None and got.dense[0] < 0
    finally:
        store.delete(["dup"])
    assert snapshot(store) == before


# -- queries, filters, gets, deletes with bad arguments -------------------------------------

BAD_QUERIES = [
    ({"dense": [1.0] * (DIM + 1)}, InvalidInputError),
    ({"dense": [math.nan] * DIM}, InvalidInputError),
    ({"dense": "abc"}, (InvalidTypeError, InvalidInputError)),
    ({"sparse": {-1: 1.0}}, InvalidInputError),
    ({"sparse": {1: math.inf}}, InvalidInputError),
    ({"dense": [1.0] * DIM, "limit": 0}, InvalidInputError),
    ({"dense": [1.0] * DIM, "limit": -3}, InvalidInputError),
    ({"dense": [1.0] * DIM, "offset": -1}, InvalidInputError),
    ({"dense": [1.0] * DIM, "mode": "telepathy"}, InvalidInputError),
    ({"dense": [1.0] * DIM, "fusion": "average"}, InvalidInputError),
    ({"dense": [1.0] * DIM, "filter": {"lang": "en"}}, InvalidTypeError),
    ({"dense": [1.0] * DIM, "filter": "metadata.lang == 'en'"}, InvalidTypeError),
    ({"text": "needs an encoder"}, InvalidInputError),
    ({"text": 42}, InvalidTypeError),
    ({}, InvalidInputError),
]


@pytest.mark.parametrize(("kwargs", "error"), BAD_QUERIES, ids=[str(k)[:40] for k, _ in BAD_QUERIES])
def test_bad_query_arguments_are_clear_errors(store: HybridStore, kwargs: dict[str, Any], error: Any) -> None:
    before = snapshot(store)
    with pytest.raises(error):
        store.query(**kwargs)
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "conditions",
    [
        {"year": {"between": [1, 2]}},  # unknown range operator
        {"year": {}},
        {"x": {"gte": 1, "$regex": "a"}},
        {"": 1},
        {"x": 1.5j},
        {"x": object()},
        {"x": None},
    ],
    ids=str,
)
def test_unknown_filter_operators_are_refused(conditions: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        metadata_filter(conditions)


def test_filters_on_unknown_fields_match_nothing_and_change_nothing(store: HybridStore) -> None:
    before = snapshot(store)
    flt = metadata_filter({"no_such_field": "x"})
    assert store.query(dense=[1.0] * DIM, mode="dense", filter=flt) == []
    assert store.count(flt) == 0
    store.delete(filter=flt)  # deletes nothing
    assert snapshot(store) == before
    nested_flt = models.Filter(
        must=[models.FieldCondition(key="metadata.nested.nope", range=models.Range(gt=0))]
    )
    assert store.count(nested_flt) == 0


def test_unsupported_filter_conditions_are_clear_errors(store: HybridStore) -> None:
    before = snapshot(store)
    geo = models.Filter(
        must=[
            models.FieldCondition(
                key="metadata.loc",
                geo_radius=models.GeoRadius(center=models.GeoPoint(lon=0, lat=0), radius=10.0),
            )
        ]
    )
    try:
        assert store.count(geo) == 0  # supported: a correct (empty) result
    except (UnsupportedOperationError, InvalidInputError) as exc:
        assert "geo" in str(exc).lower()
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.get("existing-0"), InvalidTypeError),  # a str, not a list of ids
        (lambda s: s.get([1, 2]), InvalidTypeError),
        (lambda s: s.get(None), InvalidTypeError),
        (lambda s: s.delete(), InvalidInputError),
        (lambda s: s.delete(["existing-0", 5]), InvalidTypeError),
        (lambda s: s.delete(ids="existing-0"), InvalidTypeError),
        (lambda s: s.delete(filter={"i": 1}), InvalidTypeError),
        (lambda s: s.count(filter="all"), InvalidTypeError),
        (lambda s: s.add(Record(id="x", dense=[1.0] * DIM)), InvalidTypeError),
        (lambda s: s.add([Record(id="x", dense=[1.0] * DIM)], batch_size=0), InvalidInputError),
        (lambda s: s.add_texts("one string"), InvalidTypeError),
    ],
)
def test_bad_arguments_to_reads_and_deletes(store: HybridStore, call: Any, error: Any) -> None:
    before = snapshot(store)
    with pytest.raises(error):
        call(store)
    assert snapshot(store) == before


def test_gets_and_deletes_of_unknown_ids_are_harmless(store: HybridStore) -> None:
    before = snapshot(store)
    weird = ["", " ", "\x00", "nope", "é" * 5000, "existing-0 "]
    assert store.get(weird) == []
    store.delete(weird)
    assert snapshot(store) == before


# -- text through the real (tiny) encoder ----------------------------------------------------


@pytest.fixture(scope="module")
def text_store(tiny_bge_m3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridStore]:
    from shared.encoders import load_encoder

    enc = load_encoder(str(tiny_bge_m3_dir), show_progress=False, max_length=64)
    with HybridStore("texts", path=tmp_path_factory.mktemp("texts"), encoder=enc) as s:
        s.add_texts(["kept one", "kept two"], ids=["existing-0", "existing-1"])
        yield s


def text_snapshot(store: HybridStore) -> tuple[int, list[tuple[Any, ...]]]:
    got = store.get(["existing-0", "existing-1"], with_vectors=True)
    return store.count(), [(g.id, g.text, g.dense.tobytes(), g.sparse) for g in got]  # type: ignore[union-attr]


@settings(
    deadline=None,
    max_examples=max(20, EXAMPLES // 3),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    texts=st.lists(
        st.one_of(st.text(max_size=300), st.just(""), st.just(" \t\n"), long_text.map(lambda t: t[:20_000])),
        min_size=1,
        max_size=4,
    )
)
def test_any_unicode_text_is_encoded_stored_and_searchable(text_store: HybridStore, texts: list[str]) -> None:
    before = text_snapshot(text_store)
    ids = [f"t{i}" for i in range(len(texts))]
    try:
        assert text_store.add_texts(texts, ids=ids) == ids
        got = text_store.get(ids, with_vectors=True)
        assert [g.text for g in got] == texts
        assert all(g.dense is not None and np.isfinite(g.dense).all() for g in got)
        for t in texts:
            assert isinstance(text_store.query(t, limit=3), list)  # same text as a query: no error
    finally:
        text_store.delete(ids)
    assert text_snapshot(text_store) == before


@pytest.mark.parametrize(
    ("texts", "index"),
    [(["ok", None], 1), ([b"bytes"], 0), (["ok", "fine", 3], 2), (["a\udc80"], 0), (["ok", "\ud800x"], 1)],
    ids=["None", "bytes", "int", "surrogate", "surrogate-second"],
)
def test_bad_texts_are_refused_naming_the_item(text_store: HybridStore, texts: list[Any], index: int) -> None:
    before = text_snapshot(text_store)
    with pytest.raises(CLEAR_ERRORS) as info:
        text_store.add_texts(texts, ids=[f"b{i}" for i in range(len(texts))])
    assert f"b{index}" in str(info.value) or f"index {index}" in str(info.value)
    assert text_snapshot(text_store) == before
    with pytest.raises(CLEAR_ERRORS):
        text_store.query(texts[index])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ids": ["only-one"]}, "ids is shorter"),
        ({"metadatas": [{}, {}, {}]}, "metadatas"),
        ({"metadatas": [{"ok": 1}, {"bad": {1, 2}}]}, "'x1'"),
        ({"ref_doc_ids": [None, 7]}, "'x1'"),
        ({"ids": ["x0", ""]}, "index 1|record 1"),
    ],
)
def test_add_texts_column_mismatches(text_store: HybridStore, kwargs: dict[str, Any], match: str) -> None:
    before = text_snapshot(text_store)
    kwargs.setdefault("ids", ["x0", "x1"])
    with pytest.raises(CLEAR_ERRORS, match=match):
        text_store.add_texts(["first", "second"], **kwargs)
    assert text_snapshot(text_store) == before


def test_model_mismatch_against_an_existing_collection(
    tiny_bge_m3_dir: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    from shared.encoders import load_encoder

    enc = load_encoder(str(tiny_bge_m3_dir), show_progress=False)
    with HybridStore("m", path=tmp_path, encoder=enc) as s:
        s.add_texts(["alpha", "beta"], ids=["a", "b"])
        before = text_snapshot_ids(s, ["a", "b"])
    other = load_encoder(str(minilm_dir), show_progress=False)
    with pytest.raises(ModelMismatchError, match="different encoder") as info:
        HybridStore("m", path=tmp_path, encoder=other)
    assert "recreate" not in str(info.value)  # never advise dropping the user's data
    prompts = load_encoder(str(tiny_bge_m3_dir), show_progress=False, query_instruction="q: ")
    with pytest.raises(ModelMismatchError, match="query_prompt"):
        HybridStore("m", path=tmp_path, encoder=prompts)
    with pytest.raises(ModelMismatchError):
        HybridStore("m", path=tmp_path, dense_dim=7)
    with HybridStore("m", path=tmp_path, encoder=enc) as s:  # untouched by the refused opens
        assert text_snapshot_ids(s, ["a", "b"]) == before


def text_snapshot_ids(store: HybridStore, ids: list[str]) -> tuple[int, list[tuple[Any, ...]]]:
    got = store.get(ids, with_vectors=True)
    return store.count(), [(g.id, g.text, g.dense.tobytes(), g.sparse) for g in got]  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["document", "query"])
def test_encoder_refuses_lone_surrogates_naming_the_text(tiny_bge_m3_dir: Path, kind: str) -> None:
    """The encoders (used directly by both adapters' embedding classes) give the same clear error."""
    from shared.encoders import load_encoder

    enc = load_encoder(str(tiny_bge_m3_dir), show_progress=False)
    with pytest.raises(InvalidInputError, match=r"texts\[1\].*surrogate"):
        enc.encode(["fine", "bro\udc80ken"], kind)  # type: ignore[arg-type]
    assert len(enc.encode(["fine", "ünï 😀"], kind)) == 2
