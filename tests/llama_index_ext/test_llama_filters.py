"""MetadataFilters -> Qdrant filter translation, checked against LlamaIndex's own semantics.

Each filter is evaluated by a real Qdrant engine (qdrant-client local mode) over a small
set of payloads and must select exactly the rows LlamaIndex's reference implementation
(``build_metadata_filter_fn``, used by its SimpleVectorStore) selects. Store-level tests
on the embedded Qdrant Edge backend live in test_llama_store.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from qdrant_client import QdrantClient, models

from llama_index_ext.filters import metadata_key, to_qdrant_filter
from shared.errors import InvalidInputError, InvalidTypeError

ROWS: dict[int, dict[str, Any]] = {
    1: {
        "author": "Stephen King",
        "year": 1994,
        "rating": 4.5,
        "tags": ["horror", "prison"],
        "title": "The Shawshank Redemption",
        "date": "1994-09-23",
    },
    2: {
        "author": "Harper Lee",
        "year": 1960,
        "rating": 4.8,
        "tags": ["classic", "law"],
        "title": "To Kill a Mockingbird",
        "date": "1960-07-11",
    },
    3: {
        "author": "George Orwell",
        "year": 1949,
        "rating": 4.5,
        "tags": ["classic", "dystopia"],
        "title": "Nineteen Eighty-Four",
        "date": "1949-06-08",
    },
    4: {
        "director": "Christopher Nolan",
        "year": 2010,
        "rating": 4.2,
        "tags": [],
        "title": "Inception",
        "author": "",
    },
    5: {
        "director": "Francis Ford Coppola",
        "year": 1972,
        "tags": ["classic", "mafia", "law"],
        "title": "The Godfather",
        "author": None,
    },
}


@pytest.fixture(scope="module")
def client() -> Iterator[QdrantClient]:
    c = QdrantClient(":memory:")
    c.create_collection("f", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    c.upsert(
        "f",
        points=[
            models.PointStruct(id=i, vector=[1.0, float(i)], payload={"metadata": meta})
            for i, meta in ROWS.items()
        ],
    )
    yield c
    c.close()


def qdrant_ids(client: QdrantClient, filters: MetadataFilters) -> set[int]:
    points, _ = client.scroll("f", scroll_filter=to_qdrant_filter(filters), limit=100)
    return {int(p.id) for p in points}


def reference_ids(filters: MetadataFilters) -> set[int]:
    fn = build_metadata_filter_fn(lambda i: ROWS[int(i)], filters)
    return {i for i in ROWS if fn(str(i))}


CASES: list[tuple[str, Any, FilterOperator]] = [
    ("author", "Harper Lee", FilterOperator.EQ),
    ("year", 1994, FilterOperator.EQ),
    ("rating", 4.5, FilterOperator.EQ),
    ("author", "Harper Lee", FilterOperator.NE),
    ("rating", 4.5, FilterOperator.NE),
    ("year", 1960, FilterOperator.GT),
    ("year", 1960, FilterOperator.GTE),
    ("year", 1972, FilterOperator.LT),
    ("rating", 4.5, FilterOperator.LTE),
    ("date", "1955-01-01", FilterOperator.GT),
    ("date", "1960-07-11", FilterOperator.LTE),
    ("author", ["Harper Lee", "George Orwell"], FilterOperator.IN),
    ("year", [1949, 2010], FilterOperator.IN),
    ("author", ["Harper Lee", "George Orwell"], FilterOperator.NIN),
    ("tags", ["law", "dystopia"], FilterOperator.ANY),
    ("tags", ["classic", "law"], FilterOperator.ALL),
    ("tags", "classic", FilterOperator.CONTAINS),
    ("title", "Redemption", FilterOperator.TEXT_MATCH),
    ("title", "redemption", FilterOperator.TEXT_MATCH),
    ("title", "kill a MOCKINGBIRD", FilterOperator.TEXT_MATCH_INSENSITIVE),
    ("author", None, FilterOperator.IS_EMPTY),
    ("tags", None, FilterOperator.IS_EMPTY),
]


@pytest.mark.parametrize(("key", "value", "op"), CASES, ids=[f"{op.name}-{k}-{v}" for k, v, op in CASES])
def test_every_operator_selects_what_llamaindex_selects(
    client: QdrantClient, key: str, value: Any, op: FilterOperator
) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=op)])
    expected = reference_ids(filters)
    assert qdrant_ids(client, filters) == expected


def test_every_llamaindex_operator_is_covered() -> None:
    assert {op for _, _, op in CASES} == set(FilterOperator)


@pytest.mark.parametrize("condition", [FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT])
def test_conditions_match_reference(client: QdrantClient, condition: FilterCondition) -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="year", value=1970, operator=FilterOperator.LT),
            MetadataFilter(key="tags", value="law", operator=FilterOperator.CONTAINS),
        ],
        condition=condition,
    )
    expected = reference_ids(filters)
    assert (
        expected
        == {FilterCondition.AND: {2}, FilterCondition.OR: {2, 3, 5}, FilterCondition.NOT: {1, 4}}[condition]
    )
    assert qdrant_ids(client, filters) == expected


def test_nested_and_or_not(client: QdrantClient) -> None:
    # (year < 1970 OR director is set) AND NOT (tags contains law)
    filters = MetadataFilters(
        filters=[
            MetadataFilters(
                filters=[
                    MetadataFilter(key="year", value=1970, operator=FilterOperator.LT),
                    MetadataFilter(key="director", value=None, operator=FilterOperator.IS_EMPTY),
                ],
                condition=FilterCondition.OR,
            ),
            MetadataFilters(
                filters=[MetadataFilter(key="tags", value="law", operator=FilterOperator.CONTAINS)],
                condition=FilterCondition.NOT,
            ),
        ],
        condition=FilterCondition.AND,
    )
    # year<1970 -> {2,3}; director empty -> {1,2,3}; OR -> {1,2,3}; minus law {2,5} -> {1,3}
    assert qdrant_ids(client, filters) == {1, 3}


def test_ne_inside_or_keeps_its_negation(client: QdrantClient) -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="year", value=1994, operator=FilterOperator.EQ),
            MetadataFilter(key="tags", value="classic", operator=FilterOperator.NE),
        ],
        condition=FilterCondition.OR,
    )
    # NE on an array field: Qdrant excludes any point with an element equal to the value.
    assert qdrant_ids(client, filters) == {1, 4}


def test_mixed_type_list_for_in(client: QdrantClient) -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="rating", value=[4.8, 4.2], operator=FilterOperator.IN)]
    )
    assert qdrant_ids(client, filters) == {2, 4}


def test_empty_top_level_is_no_filter() -> None:
    assert to_qdrant_filter(None) is None
    assert to_qdrant_filter(MetadataFilters(filters=[])) is None


def test_keys_address_the_metadata_payload() -> None:
    flt = to_qdrant_filter(MetadataFilters(filters=[MetadataFilter(key="author", value="x")]))
    assert flt is not None and flt.must is not None
    cond = flt.must[0]
    assert isinstance(cond, models.FieldCondition) and cond.key == "metadata.author"


@pytest.mark.parametrize(
    ("flt", "error", "fragment"),
    [
        (MetadataFilter(key="tags", value=[], operator=FilterOperator.IN), InvalidInputError, "empty"),
        (MetadataFilter(key="tags", value="x", operator=FilterOperator.ANY), InvalidTypeError, "list"),
        (
            MetadataFilter(key="year", value=[1, 2], operator=FilterOperator.GT),
            InvalidTypeError,
            "single value",
        ),
        (MetadataFilter(key="year", value="soon", operator=FilterOperator.GT), InvalidInputError, "ISO-8601"),
        (
            MetadataFilter(key="title", value=3, operator=FilterOperator.TEXT_MATCH),
            InvalidTypeError,
            "string",
        ),
        (MetadataFilter(key="title", value=None, operator=FilterOperator.EQ), InvalidInputError, "None"),
    ],
)
def test_bad_filters_raise_naming_key_and_operator(
    flt: MetadataFilter, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        to_qdrant_filter(MetadataFilters(filters=[MetadataFilter(key="ok", value=1), flt]))
    message = str(info.value)
    assert fragment in message
    assert f"key {flt.key!r}" in message and "filters[1]" in message and flt.operator.name in message


def test_empty_nested_group_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"filters\[0\]"):
        to_qdrant_filter(MetadataFilters(filters=[MetadataFilters(filters=[])]))


def test_empty_key_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        metadata_key(" ")


def test_not_metadata_filters_is_a_type_error() -> None:
    with pytest.raises(InvalidTypeError):
        to_qdrant_filter({"author": "x"})  # type: ignore[arg-type]
