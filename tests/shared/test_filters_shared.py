"""The shared filter building blocks (equals / any_of / value_range), both adapters' use of them,
and the embedded engine staying out of `import shared.filters` / `import shared.store`.

Selections are checked on real Qdrant engines: qdrant-client local mode and, through the store,
the embedded Qdrant Edge backend, over payloads whose values differ in type.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from qdrant_client import QdrantClient, models

from langchain_ext.filters import to_qdrant_filter as langchain_filter
from llama_index_ext.filters import to_qdrant_filter as llama_filter
from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from shared.filters import any_of, equals, metadata_filter, range_bound, value_range
from shared.store import HybridStore
from shared.types import Record

#: One field, ``v``, holding values of every type a payload can carry (7: an array, 8: no key).
VALUES: dict[int, Any] = {
    1: "1",
    2: 1,
    3: 1.5,
    4: True,
    5: None,
    6: ["a", 2],
    7: "2024-03-01T00:00:00",
}
ALL = {*VALUES, 8}

#: (list of values, the ids whose ``v`` equals one of them; an array field: one of its elements).
MIXED: list[tuple[list[Any], set[int]]] = [
    (["1", 1], {1, 2}),  # the str and the int are different values
    ([1.5, "a"], {3, 6}),
    ([2, 1.5, "x"], {3, 6}),
    ([None, "1"], {1, 5}),  # None: a null value (a missing key is not null)
    ([True, 2], {4, 6}),  # a bool is not the int 1
]


def _payload(i: int) -> dict[str, Any]:
    meta = {"v": VALUES[i]} if i in VALUES else {}
    return {"metadata": meta, "text": str(i)}


@pytest.fixture(scope="module")
def client() -> Iterator[QdrantClient]:
    qc = QdrantClient(":memory:")
    qc.create_collection("f", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    qc.upsert(
        "f",
        points=[models.PointStruct(id=i, vector=[1.0, float(i)], payload=_payload(i)) for i in ALL],
    )
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def edge_store() -> Iterator[HybridStore]:
    store = HybridStore("f", dense_dim=2, sparse=False)
    store.add(
        [
            Record(id=str(i), text=str(i), metadata=_payload(i)["metadata"], dense=np.array([1.0, float(i)]))
            for i in sorted(ALL)
        ]
    )
    yield store
    store.close()


def selected(client: QdrantClient, flt: models.Filter | None) -> set[int]:
    points, _ = client.scroll("f", scroll_filter=flt, limit=100)
    return {int(p.id) for p in points}


def llama_in(values: list[Any], op: FilterOperator = FilterOperator.IN) -> MetadataFilters:
    # LlamaIndex's own MetadataFilter refuses mixed lists when validated; a filter built
    # without validation (model_construct, from a dict, by an LLM-driven retriever) still gets here.
    return MetadataFilters(filters=[MetadataFilter.model_construct(key="v", value=values, operator=op)])


@pytest.mark.parametrize(("values", "expected"), MIXED, ids=[repr(v) for v, _ in MIXED])
def test_mixed_type_lists_select_the_same_points_in_both_adapters(
    client: QdrantClient, values: list[Any], expected: set[int]
) -> None:
    assert selected(client, models.Filter(must=[any_of("metadata.v", values, "v")])) == expected
    assert selected(client, langchain_filter({"v": {"$in": values}})) == expected
    assert selected(client, langchain_filter({"v": {"$nin": values}})) == ALL - expected
    if None not in values:  # LlamaIndex refuses None as a value (IS_EMPTY is its way)
        assert selected(client, llama_filter(llama_in(values))) == expected
        assert selected(client, llama_filter(llama_in(values, FilterOperator.NIN))) == ALL - expected
        assert llama_filter(llama_in(values)) == langchain_filter({"v": {"$in": values}})


@pytest.mark.parametrize(
    ("values", "expected"),
    [(v, e) for v, e in MIXED if not any(isinstance(x, bool) for x in v)],
    ids=lambda x: repr(x),
)
def test_mixed_type_lists_select_the_same_points_on_the_embedded_engine(
    edge_store: HybridStore, values: list[Any], expected: set[int]
) -> None:
    flt = langchain_filter({"v": {"$in": values}})
    hits = edge_store.query(dense=[1.0, 0.0], mode="dense", filter=flt, limit=20, exact=True)
    assert {int(h.id) for h in hits} == expected
    assert edge_store.count(flt) == len(expected)


def test_a_bool_in_a_list_is_refused_by_the_embedded_engine_in_both_adapters(edge_store: HybridStore) -> None:
    # qdrant-edge-py turns True into 1; the store says so instead of matching the int.
    for flt in (langchain_filter({"v": {"$in": [True, 2]}}), llama_filter(llama_in([True, 2]))):
        with pytest.raises(UnsupportedOperationError, match="boolean"):
            edge_store.count(flt)


def test_a_bool_in_a_llama_list_is_kept_not_dropped(client: QdrantClient) -> None:
    # The adapter's own any-of once split lists by kind and forgot bools (an all-bool list
    # became an empty `should`, which Qdrant reads as "no condition").
    assert selected(client, llama_filter(llama_in([True]))) == {4}


@pytest.mark.parametrize("bad", [{"x": 1}, [1, 2], object()], ids=["dict", "list", "object"])
def test_an_item_that_cannot_be_matched_is_named_in_both_adapters(bad: Any) -> None:
    with pytest.raises(InvalidTypeError) as lc:
        langchain_filter({"v": {"$in": ["a", bad]}})
    assert "item 1" in str(lc.value) and "'v'" in str(lc.value)
    with pytest.raises(InvalidTypeError) as li:
        llama_filter(llama_in(["a", bad]))
    assert "item 1" in str(li.value) and "key 'v'" in str(li.value)


def test_equals_building_block() -> None:
    assert equals("k", "a", "at") == models.FieldCondition(key="k", match=models.MatchValue(value="a"))
    assert equals("k", 2.5, "at") == models.FieldCondition(key="k", range=models.Range(gte=2.5, lte=2.5))
    assert equals("k", None, "at") == models.IsNullCondition(is_null=models.PayloadField(key="k"))
    with pytest.raises(InvalidTypeError, match=r"here: cannot compare with dict \{'a': 1\}"):
        equals("k", {"a": 1}, "here")


def test_any_of_building_block() -> None:
    homogeneous = any_of("k", ["a", "b"], "at")
    assert homogeneous == models.FieldCondition(key="k", match=models.MatchAny(any=["a", "b"]))
    mixed = any_of("k", ["a", 1, 2.5], "at")
    assert isinstance(mixed, models.Filter) and mixed.should is not None and len(mixed.should) == 3
    with pytest.raises(InvalidInputError, match="non-empty list"):
        any_of("k", [], "at")
    with pytest.raises(InvalidInputError, match="non-empty list"):
        any_of("k", "ab", "at")


def test_range_building_blocks(client: QdrantClient) -> None:
    assert range_bound("2024-01-02", "at") == datetime(2024, 1, 2)
    assert value_range("k", {"gte": 1, "lt": 2.5}, "at").range == models.Range(gte=1, lt=2.5)
    dated = value_range("metadata.v", {"gt": "2024-02-01T00:00:00"}, "at")
    assert isinstance(dated.range, models.DatetimeRange)
    assert selected(client, models.Filter(must=[dated])) == {7}
    with pytest.raises(InvalidTypeError, match=r"at \(gt\) expects a number"):
        value_range("k", {"gt": True}, "at")
    with pytest.raises(InvalidInputError, match="mixes numeric and date/time"):
        value_range("k", {"gt": 1, "lt": "2024-01-01"}, "at")


def test_both_adapters_raise_the_same_error_class_for_a_bad_date() -> None:
    with pytest.raises(InvalidInputError, match="ISO-8601"):
        langchain_filter({"v": {"$gt": "soon"}})
    with pytest.raises(InvalidInputError, match="ISO-8601"):
        llama_filter(
            MetadataFilters(filters=[MetadataFilter(key="v", value="soon", operator=FilterOperator.GT)])
        )
    # A bool is no bound in either (LlamaIndex once took True as 1.0).
    with pytest.raises(InvalidTypeError):
        langchain_filter({"v": {"$gt": True}})
    with pytest.raises(InvalidTypeError):
        llama_filter(
            MetadataFilters(
                filters=[MetadataFilter.model_construct(key="v", value=True, operator=FilterOperator.GT)]
            )
        )


def test_metadata_filter_uses_the_building_blocks(client: QdrantClient) -> None:
    assert selected(client, metadata_filter({"v": ["1", 1]})) == {1, 2}
    assert selected(client, metadata_filter({"v": {"lt": "2025-01-01T00:00:00"}})) == {7}
    with pytest.raises(InvalidInputError, match=r"'v' item 1"):
        metadata_filter({"v": ["a", 1.5]})


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "statement", ["import shared.filters", "import shared.store", "from shared.store import HybridStore"]
)
def test_importing_the_core_does_not_load_the_embedded_engine(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "shared.filters" in loaded  # the import really ran
    assert "qdrant_edge" not in loaded
    assert "shared.backends.edge_filters" not in loaded
