"""Translate LlamaIndex ``MetadataFilters`` into Qdrant filters (the core's neutral filter type).

Every :class:`FilterOperator` LlamaIndex defines is translated, with the semantics of
LlamaIndex's own reference implementation (``build_metadata_filter_fn``) wherever Qdrant
can express them; where it cannot exactly, the difference is documented below. Nothing
is ever dropped: a filter that cannot be honoured raises an error from
:mod:`shared.errors` naming the key and the operator.

Operator mapping (``K`` = ``metadata.<key>``):

==========================  ==========================================================
EQ / NE                     ``MatchValue`` (``Range(gte=v, lte=v)`` for floats, because
                            Qdrant never exact-matches float payloads); NE is its
                            negation, so points without the key match NE (as in LlamaIndex)
GT / GTE / LT / LTE         ``Range`` for numbers, ``DatetimeRange`` for ISO-8601 strings
IN / NIN                    ``MatchAny`` / its negation (missing key matches NIN); lists may
                            mix types (:func:`shared.filters.any_of`)
ANY                         ``MatchAny`` (an array field matches when any element is listed)
ALL                         one ``MatchValue`` per value, all required
CONTAINS                    ``MatchValue``: the array field has an element equal to the value
TEXT_MATCH                  ``MatchSubstring``: case-sensitive substring, as in LlamaIndex
TEXT_MATCH_INSENSITIVE      ``MatchPhrase``: case-insensitive *word* phrase (Qdrant has no
                            case-insensitive substring match; a partial word such as
                            ``"wor"`` does not match ``"world"``)
IS_EMPTY                    key missing, null, ``[]`` or ``""``
==========================  ==========================================================

Conditions: AND -> ``must``, OR -> ``should``, NOT -> ``must_not`` (none of the
sub-filters match); nested ``MetadataFilters`` become nested filters.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from qdrant_client import models

from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from shared.filters import any_of, equals, value_range
from shared.schema import METADATA_KEY, REF_DOC_ID_KEY

#: Caller metadata lives under this payload key (see the payload layout in docs/DESIGN.md).
METADATA_PREFIX = METADATA_KEY

_RANGE_OPS = {
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
}


def metadata_key(key: str) -> str:
    """The payload path of a metadata key (``author`` -> ``metadata.author``)."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInputError(f"metadata filter key must be a non-empty string, got {key!r}")
    return f"{METADATA_PREFIX}.{key}"


#: LlamaIndex's names of a node's source document (``ref_doc_id``; ``doc_id`` in its Qdrant store).
_SOURCE_DOCUMENT_KEYS = frozenset({REF_DOC_ID_KEY, "doc_id", "document_id"})


def group_key(key: Any) -> Any:
    """The payload key of a ``group_by`` name: the source document's id for ``ref_doc_id`` /
    ``doc_id`` / ``document_id``, else the metadata key (``author`` -> ``metadata.author``)."""
    if not isinstance(key, str):
        return key  # the store's check names the bad type
    return REF_DOC_ID_KEY if key in _SOURCE_DOCUMENT_KEYS else metadata_key(key)


def to_qdrant_filter(filters: MetadataFilters | None) -> models.Filter | None:
    """Translate ``filters`` into a Qdrant filter; ``None`` or an empty top level means no filter."""
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise InvalidTypeError(f"filters must be llama_index MetadataFilters, got {type(filters).__name__}")
    if not filters.filters:
        return None
    return _group(filters, path="filters")


def _group(filters: MetadataFilters, path: str) -> models.Filter:
    if not filters.filters:
        # An empty nested group has no meaning Qdrant and LlamaIndex agree on
        # (empty should = everything in Qdrant, nothing in LlamaIndex): refuse it.
        raise InvalidInputError(f"{path} is an empty nested MetadataFilters")
    conditions: list[models.Condition] = []
    for i, item in enumerate(filters.filters):
        item_path = f"{path}[{i}]"
        if isinstance(item, MetadataFilters):
            conditions.append(_group(item, item_path))
        elif isinstance(item, MetadataFilter):
            conditions.append(_condition(item, item_path))
        else:
            raise InvalidTypeError(
                f"{item_path} must be a MetadataFilter or MetadataFilters, got {type(item).__name__}"
            )
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return models.Filter(must=conditions)
    if condition == FilterCondition.OR:
        return models.Filter(should=conditions)
    if condition == FilterCondition.NOT:
        return models.Filter(must_not=conditions)
    raise UnsupportedOperationError(f"{path}: unsupported filter condition {condition!r}")


def _condition(flt: MetadataFilter, path: str) -> models.Condition:
    op = FilterOperator(flt.operator)
    key = metadata_key(flt.key)
    value = flt.value
    where = f"{path} (key {flt.key!r}, operator {op.name})"

    if op == FilterOperator.IS_EMPTY:
        # LlamaIndex counts None, missing, [] and "" as empty; Qdrant's IsEmpty covers
        # the first three, so "" is added explicitly.
        return models.Filter(
            should=[
                models.IsEmptyCondition(is_empty=models.PayloadField(key=key)),
                models.FieldCondition(key=key, match=models.MatchValue(value="")),
            ]
        )
    if value is None:
        raise InvalidInputError(f"{where}: value must not be None")

    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return equals(key, _scalar(value, where), where)
    if op == FilterOperator.NE:
        return models.Filter(must_not=[equals(key, _scalar(value, where), where)])
    if op in _RANGE_OPS:
        return value_range(key, {_RANGE_OPS[op]: _scalar(value, where)}, where)
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return any_of(key, _values(value, where), where)
    if op == FilterOperator.NIN:
        return models.Filter(must_not=[any_of(key, _values(value, where), where)])
    if op == FilterOperator.ALL:
        return models.Filter(must=[equals(key, v, where) for v in _values(value, where)])
    if op == FilterOperator.TEXT_MATCH:
        return models.FieldCondition(key=key, match=models.MatchSubstring(substring=_text(value, where)))
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return models.FieldCondition(key=key, match=models.MatchPhrase(phrase=_text(value, where)))
    raise UnsupportedOperationError(f"{where}: operator {op.value!r} is not supported")


def _scalar(value: Any, where: str) -> str | int | float:
    if isinstance(value, (list, tuple)):
        raise InvalidTypeError(f"{where}: needs a single value, got a list {value!r}")
    if not isinstance(value, (str, int, float)):
        raise InvalidTypeError(f"{where}: value must be str, int or float, got {type(value).__name__}")
    return value


def _values(value: Any, where: str) -> list[str | int | float]:
    if not isinstance(value, (list, tuple)):
        raise InvalidTypeError(f"{where}: needs a list of values, got {value!r}")
    if not value:
        raise InvalidInputError(f"{where}: the list of values is empty")
    return [_scalar(v, f"{where} item {i}") for i, v in enumerate(value)]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{where}: needs a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{where}: the text to match is empty")
    return value
