"""shared/ingest.py: batch checks name the offending record; fast paths give what the slow ones give."""

from __future__ import annotations

import math
import random
import uuid
from pathlib import Path

import numpy as np
import pytest

from shared.errors import InvalidInputError, InvalidTypeError
from shared.ingest import check_all, clean_json, prepare_batch, sparse_batch
from shared.schema import POINT_ID_NAMESPACE, CollectionSchema, point_id, uuid5_str
from shared.types import Record
from shared.validation import sparse_arrays

DIM = 4
SCHEMA = CollectionSchema.build(None, dense_dim=DIM)


def _records(n: int, **override: object) -> list[Record]:
    rng = np.random.default_rng(0)
    recs = [
        Record(
            id=f"doc-{i}",
            text=f"text {i}",
            metadata={"i": i, "name": f"n{i}", "w": 0.5, "flag": True, "none": None},
            dense=rng.normal(size=DIM).astype(np.float32),
            sparse={10 + i: 0.25, 2000 + i: 0.75},
        )
        for i in range(n)
    ]
    return recs


def _with(recs: list[Record], index: int, **fields: object) -> list[Record]:
    for k, v in fields.items():
        setattr(recs[index], k, v)
    return recs


@pytest.mark.parametrize("name", ["a", "doc-1", "", "é漢字😀", "x" * 500, "with space", "\x00"])
def test_uuid5_str_is_uuid5(name: str) -> None:
    assert uuid5_str(name) == str(uuid.uuid5(POINT_ID_NAMESPACE, name))
    assert point_id(name) == str(uuid.uuid5(POINT_ID_NAMESPACE, name))


def test_good_batch_builds_points() -> None:
    recs = _records(5)
    points = prepare_batch(recs, 0, SCHEMA, None)
    assert [p.id for p in points] == [point_id(r.id) for r in recs]
    for r, p in zip(recs, points, strict=True):
        assert p.vectors["dense"] == pytest.approx(np.asarray(r.dense).tolist())
        assert p.vectors["sparse"] == (list(r.sparse), list(r.sparse.values()))  # type: ignore[union-attr]
        assert p.payload["metadata"] == r.metadata
        assert p.payload["metadata"] is not r.metadata  # a copy: later changes to the record do not leak


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dense", [1.0, math.nan, 0.0, 0.0], "dense vector contains NaN or infinity"),
        ("dense", [1.0, math.inf, 0.0, 0.0], "dense vector contains NaN or infinity"),
        ("dense", [0.0, 0.0, 0.0, 0.0], "dense vector is all zeros"),
        ("dense", [1.0, 2.0, 3.0], "dense vector has size 3, the collection expects 4"),
        ("dense", ["a", "b", "c", "d"], "dense vector must be a sequence of numbers"),
        ("sparse", {10: math.nan}, "weight of token 10 is NaN or infinity"),
        ("sparse", {-3: 0.5}, "token ids must be ints in [0, 2**32), got -3"),
        ("sparse", {2**32: 0.5}, "token ids must be ints in [0, 2**32)"),
        ("sparse", {1.5: 0.5}, "token ids must be ints"),
        ("sparse", {True: 0.5}, "token ids must be ints"),
        ("sparse", {7: True}, "weight of token 7 must be a number, got bool"),
        ("sparse", {7: "x"}, "weight of token 7 must be a number, got str"),
        ("metadata", {"k": math.nan}, "metadata['k'] is nan"),
        ("metadata", {"k": 2**70}, "outside the 64-bit integer range"),
        ("metadata", {"k": "bad \udc80"}, "lone surrogate"),
        ("metadata", {1: "x"}, "non-str key 1"),
        ("metadata", {"k": object()}, "not JSON-serialisable"),
    ],
)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_the_offending_record_is_named(field: str, value: object, message: str, index: int) -> None:
    # Batches of 4: index 7 sits in the second batch, and is named by its index in the whole input.
    recs = _with(_records(8), index, **{field: value})
    with pytest.raises((InvalidInputError, InvalidTypeError)) as info:
        check_all(recs, 4, SCHEMA, None)
    assert f"record 'doc-{index}' (index {index})" in str(info.value)
    assert message in str(info.value)
    start = index - index % 4
    with pytest.raises((InvalidInputError, InvalidTypeError)) as info2:
        prepare_batch(recs[start : start + 4], start, SCHEMA, None)
    assert str(info2.value) == str(info.value)


def test_a_non_record_is_named() -> None:
    recs: list[object] = list(_records(3))
    recs[2] = {"id": "x"}
    with pytest.raises(InvalidTypeError, match="item 2 is a dict"):
        check_all(recs, 2, SCHEMA, None)  # type: ignore[arg-type]


def _random_sparse(rng: random.Random) -> dict[object, object]:
    kind = rng.random()
    n = rng.randint(0, 12)
    keys: list[object] = rng.sample(range(0, 300), n)
    vals: list[object] = [rng.choice([0.0, rng.uniform(-1, 1), rng.uniform(0, 1)]) for _ in range(n)]
    if kind < 0.15 and n:
        vals[0] = rng.randint(1, 5)  # an int weight
    elif kind < 0.3 and n:
        keys[0] = np.int64(int(keys[0]))  # type: ignore[call-overload]
    elif kind < 0.45 and n:
        vals[0] = np.float32(0.5)
    return dict(zip(keys, vals, strict=True))


@pytest.mark.parametrize("seed", range(20))
def test_sparse_batch_equals_record_by_record(seed: int) -> None:
    rng = random.Random(seed)
    maps = [_random_sparse(rng) for _ in range(rng.randint(1, 30))]
    recs = [Record(id=f"r{i}", sparse=m) for i, m in enumerate(maps)]  # type: ignore[arg-type]
    cleaned: list[dict[str, object]] = [{"sparse": m} for m in maps]
    sparse_batch(recs, cleaned, 0)
    for m, parts in zip(maps, cleaned, strict=True):
        indices, values = parts["sparse"]  # type: ignore[misc]
        want_i, want_v = sparse_arrays(m, "x")  # type: ignore[arg-type]
        assert (indices, values) == (want_i, want_v)
        assert all(type(i) is int for i in indices) and all(type(v) is float for v in values)


def test_token_ids_zero_and_one_are_kept() -> None:
    recs = [Record(id="a", sparse={0: 0.5, 1: 0.25, 9: 1.0})]
    cleaned: list[dict[str, object]] = [{"sparse": recs[0].sparse}]
    sparse_batch(recs, cleaned, 0)
    assert cleaned[0]["sparse"] == ([0, 1, 9], [0.5, 0.25, 1.0])


def test_clean_json_fast_path_equals_full_path() -> None:
    flat = {"a": 1, "b": 2.5, "c": "x", "d": None, "e": False}
    assert clean_json(flat, "m") == flat and clean_json(flat, "m") is not flat
    nested = {"a": (1, np.int64(2)), "b": {"c": np.float32(0.5)}, "é": "ü"}
    assert clean_json(nested, "m") == {"a": [1, 2], "b": {"c": 0.5}, "é": "ü"}


def test_dense_rows_reach_the_engine_as_the_floats_would(tmp_path: Path) -> None:
    """The embedded backend hands the engine each dense row as a buffer of the batch's float32
    matrix: the stored vectors are exactly those a list of the same floats gives the engine."""
    import qdrant_edge as qe

    from shared.store import HybridStore

    rows = np.random.default_rng(3).standard_normal((50, 24)).astype(np.float32)
    with HybridStore("m", path=tmp_path, dense_dim=24) as store:
        store.add([Record(id=str(i), text="t", dense=row) for i, row in enumerate(rows)])
        got = {r.id: np.asarray(r.dense).tolist() for r in store.scroll(with_vectors=True)}
    params = qe.EdgeVectorParams(size=24, distance=qe.Distance.Cosine)
    raw = qe.EdgeShard.create(str(tmp_path / "raw"), qe.EdgeConfig(vectors={"dense": params}))
    raw.update(
        qe.UpdateOperation.upsert_points([qe.Point(i, {"dense": r.tolist()}) for i, r in enumerate(rows)])
    )
    want = {
        str(p.id): p.vector["dense"]
        for p in raw.retrieve(list(range(50)), with_payload=False, with_vector=True)
    }
    raw.close()
    assert got == want
