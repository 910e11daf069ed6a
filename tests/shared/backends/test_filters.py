"""Filter conversion to qdrant_edge, checked against qdrant-client local mode on the same data."""

from __future__ import annotations

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from shared.backends.edge_filters import to_edge_filter
from shared.errors import InvalidInputError, InvalidTypeError
from shared.filters import and_filters, check_filter, metadata_filter, resolve_ids
from shared.schema import point_id
from shared.store import HybridStore
from shared.types import Record

M = "metadata."


def _records() -> list[Record]:
    rng = np.random.default_rng(0)
    recs = []
    for i in range(30):
        md: dict = {
            "i": i,
            "lang": ["en", "de", "fr"][i % 3],
            "tags": [f"t{i % 4}", f"u{i % 5}"],
            "title": f"document number {i} about {'cats' if i % 2 else 'dogs'}",
            "date": f"2024-01-{(i % 28) + 1:02d}T00:00:00Z",
            "authors": [{"name": "ann", "age": 30 + i % 3}, {"name": "bob", "age": 40 + i % 7}],
        }
        if i % 5 == 0:
            md["opt"] = None
        elif i % 5 == 1:
            md["opt"] = []
        elif i % 5 == 2:
            md["opt"] = "x"
        recs.append(Record(id=f"r{i}", text=md["title"], metadata=md, dense=rng.normal(size=8)))
    return recs


@pytest.fixture(scope="module")
def stores():
    recs = _records()
    e = HybridStore("f", dense_dim=8, sparse=False)
    r = HybridStore("f", client=QdrantClient(":memory:"), dense_dim=8, sparse=False)
    e.add(recs)
    r.add(recs)
    yield e, r
    e.close()
    r.close()


FC = models.FieldCondition
FILTERS = {
    "match_value": models.Filter(must=[FC(key=M + "lang", match=models.MatchValue(value="de"))]),
    "match_int": models.Filter(must=[FC(key=M + "i", match=models.MatchValue(value=7))]),
    "match_any": models.Filter(must=[FC(key=M + "tags", match=models.MatchAny(any=["t1", "u2"]))]),
    "match_except": models.Filter(
        must=[FC(key=M + "lang", match=models.MatchExcept(**{"except": ["en", "fr"]}))]
    ),
    "match_text": models.Filter(must=[FC(key=M + "title", match=models.MatchText(text="cats"))]),
    "range": models.Filter(must=[FC(key=M + "i", range=models.Range(gte=5, lt=12))]),
    "datetime_range": models.Filter(
        must=[
            FC(
                key=M + "date",
                range=models.DatetimeRange(gt="2024-01-05T00:00:00Z", lte="2024-01-09T00:00:00Z"),
            )
        ]
    ),
    "values_count": models.Filter(must=[FC(key=M + "opt", values_count=models.ValuesCount(gte=1))]),
    "is_empty": models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key=M + "opt"))]),
    "is_null": models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key=M + "opt"))]),
    "has_id": models.Filter(must=[models.HasIdCondition(has_id=["r3", "r4", "nope"])]),
    "nested": models.Filter(
        must=[
            models.NestedCondition(
                nested=models.Nested(
                    key=M + "authors",
                    filter=models.Filter(
                        must=[
                            FC(key="name", match=models.MatchValue(value="bob")),
                            FC(key="age", range=models.Range(gte=44)),
                        ]
                    ),
                )
            )
        ]
    ),
    "bool_tree": models.Filter(
        should=[
            FC(key=M + "lang", match=models.MatchValue(value="en")),
            models.Filter(must=[FC(key=M + "i", range=models.Range(gt=25))]),
        ],
        must_not=[FC(key=M + "tags", match=models.MatchValue(value="t0"))],
    ),
    "min_should": models.Filter(
        min_should=models.MinShould(
            conditions=[
                FC(key=M + "lang", match=models.MatchValue(value="en")),
                FC(key=M + "tags", match=models.MatchValue(value="t1")),
                FC(key=M + "tags", match=models.MatchValue(value="u1")),
            ],
            min_count=2,
        )
    ),
    "metadata_filter": metadata_filter({"lang": ["de", "fr"], "i": {"gte": 3}, "tags": "u1"}),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_edge_conversion_matches_local_mode(stores, name: str) -> None:
    embedded, remote = stores
    flt = FILTERS[name]
    n = remote.count(flt)
    assert 0 < n < 30, f"{name}: the filter should select some but not all points"
    assert embedded.count(flt) == n
    q = np.ones(8)
    a = {h.id for h in embedded.query(dense=q, filter=flt, limit=30, exact=True)}
    b = {h.id for h in remote.query(dense=q, filter=flt, limit=30, exact=True)}
    assert a == b and len(a) == n


def test_to_edge_filter_builds_edge_types() -> None:
    assert to_edge_filter(None) is None
    out = to_edge_filter(FILTERS["bool_tree"])
    assert isinstance(out, qe.Filter)
    assert isinstance(out.should[1], qe.Filter)  # type: ignore[index]
    assert isinstance(out.must_not[0], qe.FieldCondition)  # type: ignore[index]


def test_resolve_ids_maps_callers_ids_everywhere() -> None:
    flt = models.Filter(
        must=[models.HasIdCondition(has_id=["a"])],
        should=[models.Filter(must_not=[models.HasIdCondition(has_id=["b"])])],
    )
    out = resolve_ids(flt)
    assert out is not None
    assert out.must[0].has_id == [point_id("a")]  # type: ignore[index,union-attr]
    assert out.should[0].must_not[0].has_id == [point_id("b")]  # type: ignore[index,union-attr]
    assert flt.must[0].has_id == ["a"]  # type: ignore[index,union-attr]  # input untouched


def test_metadata_filter_errors_and_helpers() -> None:
    with pytest.raises(InvalidInputError, match="range conditions"):
        metadata_filter({"i": {"between": 3}})
    with pytest.raises(InvalidInputError, match="'x'"):
        metadata_filter({"x": 1.5})
    with pytest.raises(InvalidTypeError, match=r"models\.Filter"):
        check_filter({"lang": "en"})
    a, b = metadata_filter({"a": 1}), metadata_filter({"b": 2})
    assert and_filters(None, None) is None
    assert and_filters(a, None) is a
    assert and_filters(a, b) == models.Filter(must=[a, b])
