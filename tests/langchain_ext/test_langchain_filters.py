"""LangChain filter dicts -> Qdrant filters, checked by what they select on real Qdrant data.

The points live in qdrant-client's local mode (a real Qdrant filter engine); the same
filters also go through the core's conversion to Qdrant Edge filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from langchain_ext.filters import SUPPORTED_OPERATORS, to_qdrant_filter
from shared.backends.edge_filters import to_edge_filter
from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError

ROWS: dict[int, dict[str, Any]] = {
    1: {
        "lang": "en",
        "year": 2019,
        "score": 0.5,
        "tags": ["a", "b"],
        "ok": True,
        "when": "2020-01-05T00:00:00",
    },
    2: {"lang": "de", "year": 2021, "score": 1.5, "tags": ["b"], "ok": False, "when": "2021-06-01T00:00:00"},
    3: {"lang": "en", "year": 2023, "score": 2.5, "tags": [], "ok": True, "nested": {"k": "x"}},
    4: {"lang": "fr", "year": 2024, "score": 0.5, "note": None},
    5: {"year": 2020},
}


@pytest.fixture(scope="module")
def client() -> Iterator[QdrantClient]:
    qc = QdrantClient(":memory:")
    qc.create_collection("f", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    qc.upsert(
        "f",
        points=[
            models.PointStruct(id=i, vector=[1.0, float(i)], payload={"metadata": meta, "text": str(i)})
            for i, meta in ROWS.items()
        ],
    )
    yield qc
    qc.close()


def matching(client: QdrantClient, flt: Any) -> set[int]:
    qf = to_qdrant_filter(flt)
    # Every translated filter must also be expressible for the embedded Edge backend
    # (except boolean matches, which Edge cannot do: see the test below).
    if qf is not None and "'ok'" not in repr(flt):
        to_edge_filter(qf)
    points, _ = client.scroll("f", scroll_filter=qf, limit=100)
    return {int(p.id) for p in points}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"lang": "en"}, {1, 3}),
        ({"lang": "en", "year": 2023}, {3}),
        ({"year": {"$eq": 2021}}, {2}),
        ({"score": 0.5}, {1, 4}),  # float equality via a closed range
        ({"ok": True}, {1, 3}),
        ({"lang": {"$ne": "en"}}, {2, 4, 5}),  # points without the key match $ne
        ({"year": {"$gt": 2020}}, {2, 3, 4}),
        ({"year": {"$gte": 2020, "$lt": 2024}}, {2, 3, 5}),
        ({"year": {"$lte": 2019}}, {1}),
        ({"score": {"$gt": 1.0}}, {2, 3}),
        ({"lang": {"$in": ["de", "fr"]}}, {2, 4}),
        ({"year": {"$in": [2019, 2024]}}, {1, 4}),
        ({"score": {"$in": [1.5, 2.5]}}, {2, 3}),
        ({"lang": {"$nin": ["en"]}}, {2, 4, 5}),
        ({"tags": "b"}, {1, 2}),  # a list field matches any element
        ({"lang": {"$exists": True}}, {1, 2, 3, 4}),
        ({"lang": {"$exists": False}}, {5}),
        ({"note": None}, {4}),
        ({"nested.k": "x"}, {3}),
        ({"when": {"$gte": "2021-01-01T00:00:00"}}, {2}),
        ({"when": {"$lt": datetime(2021, 1, 1)}}, {1}),
        ({"$and": [{"lang": "en"}, {"year": {"$gt": 2020}}]}, {3}),
        ({"$or": [{"lang": "de"}, {"year": 2020}]}, {2, 5}),
        ({"$or": [{"lang": "de"}, {"lang": "fr"}], "year": {"$gt": 2021}}, {4}),
        ({"$not": {"lang": "en"}}, {2, 4, 5}),
        ({"$not": {"$or": [{"lang": "en"}, {"lang": "de"}]}}, {4, 5}),
        ({}, {1, 2, 3, 4, 5}),
        (None, {1, 2, 3, 4, 5}),
    ],
)
def test_filter_dicts_select_the_documented_points(
    client: QdrantClient, flt: Any, expected: set[int]
) -> None:
    assert matching(client, flt) == expected


def test_a_qdrant_filter_passes_through_unchanged() -> None:
    flt = models.Filter(
        must=[models.FieldCondition(key="metadata.lang", match=models.MatchValue(value="en"))]
    )
    assert to_qdrant_filter(flt) is flt


@pytest.mark.parametrize(
    ("flt", "error", "fragment"),
    [
        ({"lang": {"$regex": "e.*"}}, InvalidInputError, "'$regex'"),
        ({"$nor": [{"a": 1}]}, InvalidInputError, "'$nor'"),
        ({"lang": {}}, InvalidInputError, "'lang'"),
        ({"lang": ["en", "de"]}, InvalidTypeError, "$in"),
        ({"lang": {"$in": []}}, InvalidInputError, "'lang'"),
        ({"lang": {"$in": "en"}}, InvalidInputError, "non-empty list"),
        ({"year": {"$gt": "soon"}}, InvalidInputError, "ISO-8601"),
        ({"year": {"$gt": True}}, InvalidTypeError, "'year'"),
        ({"year": {"$gt": 1, "$lt": "2020-01-01"}}, InvalidInputError, "mixes"),
        ({"ok": {"$exists": "yes"}}, InvalidTypeError, "true or false"),
        ({"$and": []}, InvalidInputError, "$and"),
        ({"$or": [{"a": 1}, "b"]}, InvalidInputError, "$or[1]"),
        ({"$not": []}, InvalidInputError, "$not"),
        ({"obj": {"$eq": {"a": 1}}}, InvalidTypeError, "'obj'"),
        ({"": 1}, InvalidInputError, "field name"),
        ("lang = en", InvalidTypeError, "dict of metadata conditions"),
    ],
)
def test_bad_filters_raise_errors_naming_the_problem(flt: Any, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        to_qdrant_filter(flt)
    assert fragment in str(info.value)


def test_supported_operators_are_the_documented_set() -> None:
    assert {
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$and",
        "$or",
        "$not",
    } <= SUPPORTED_OPERATORS


@pytest.mark.parametrize("flt", [{"ok": True}, {"ok": {"$ne": False}}, {"ok": {"$in": [True, 1.5]}}])
def test_boolean_matches_are_refused_by_the_edge_conversion_not_silently_wrong(flt: Any) -> None:
    # qdrant-edge-py turns True into 1, so the match would hit `ok == 1` and miss every stored true.
    qf = to_qdrant_filter(flt)
    assert qf is not None
    with pytest.raises(UnsupportedOperationError, match="boolean"):
        to_edge_filter(qf)
