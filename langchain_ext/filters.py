"""Translate LangChain-style metadata filter dicts into Qdrant filters (the core's neutral type).

The dict grammar is the one LangChain vector stores commonly accept (Chroma, PGVector,
the in-memory store): ``{"field": value}`` means equality; ``{"field": {"$op": value}}``
applies operators; several keys in one dict must all hold; ``$and`` / ``$or`` take a list
of such dicts and ``$not`` one dict.  A ready ``qdrant_client.models.Filter`` passes
through unchanged.  Fields address the caller's metadata (payload ``metadata.<field>``);
dotted names reach nested keys.

=================  ===========================================================================
``value``/``$eq``  ``MatchValue`` for str/int/bool, ``Range(gte=v, lte=v)`` for floats (Qdrant
                   never exact-matches float payloads); ``None`` matches a null value
``$ne``            negation of ``$eq``: points without the key match
``$gt`` ...        ``$gt``/``$gte``/``$lt``/``$lte``: ``Range`` for numbers, ``DatetimeRange``
                   for datetimes and ISO-8601 strings
``$in``/``$nin``   any of the values / none of them (points without the key match ``$nin``);
                   lists may mix types (:func:`shared.filters.any_of`)
``$exists``        ``True``: the key is present and not null/empty; ``False``: the opposite
=================  ===========================================================================

Nothing is dropped silently: an unknown operator, a malformed value or an empty condition
list raises :class:`~shared.errors.InvalidInputError` / :class:`~shared.errors.InvalidTypeError`
naming the field and the operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import models

from shared.errors import InvalidInputError, InvalidTypeError
from shared.filters import any_of, equals, range_bound, value_range
from shared.schema import METADATA_KEY

__all__ = ["SUPPORTED_OPERATORS", "to_qdrant_filter"]

_RANGE_OPS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_FIELD_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *_RANGE_OPS})
_LOGICAL_OPS = frozenset({"$and", "$or", "$not"})
#: Every operator the dict form understands.
SUPPORTED_OPERATORS: frozenset[str] = _FIELD_OPS | _LOGICAL_OPS

Condition = models.Condition


def to_qdrant_filter(filter: Mapping[str, Any] | models.Filter | None) -> models.Filter | None:
    """Translate a LangChain filter dict (or pass a ``models.Filter`` through)."""
    if filter is None or isinstance(filter, models.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise InvalidTypeError(
            f"filter must be a dict of metadata conditions or a qdrant_client.models.Filter, "
            f"got {type(filter).__name__}"
        )
    if not filter:
        return None  # {} means "no condition", as in the other LangChain stores
    return _filter_from_dict(filter, where="filter")


def _filter_from_dict(conditions: Mapping[str, Any], where: str) -> models.Filter:
    must: list[Condition] = []
    must_not: list[Condition] = []
    for key, value in conditions.items():
        if not isinstance(key, str):
            raise InvalidTypeError(f"{where}: keys must be strings, got {key!r}")
        if key == "$and":
            must.extend(_sub_filters(value, f"{where}.$and"))
        elif key == "$or":
            subs = _sub_filters(value, f"{where}.$or")
            # `should` alone means "at least one"; nest it so it combines with sibling keys by AND.
            must.append(models.Filter(should=list(subs)))
        elif key == "$not":
            if not isinstance(value, Mapping) or not value:
                raise InvalidInputError(f"{where}.$not expects a non-empty dict of conditions, got {value!r}")
            must_not.append(_filter_from_dict(value, f"{where}.$not"))
        elif key.startswith("$"):
            raise InvalidInputError(
                f"{where}: unknown operator {key!r} at the top level; use one of $and, $or, $not "
                f"or a metadata field name"
            )
        else:
            field_must, field_must_not = _field_conditions(key, value, where)
            must.extend(field_must)
            must_not.extend(field_must_not)
    return models.Filter(must=must or None, must_not=must_not or None)


def _sub_filters(value: Any, where: str) -> list[models.Filter]:
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not value:
        raise InvalidInputError(f"{where} expects a non-empty list of condition dicts, got {value!r}")
    subs = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not item:
            raise InvalidInputError(f"{where}[{i}] must be a non-empty dict of conditions, got {item!r}")
        subs.append(_filter_from_dict(item, f"{where}[{i}]"))
    return subs


def group_key(field: Any) -> Any:
    """The payload key of a ``group_by`` metadata field (``source`` -> ``metadata.source``)."""
    return _payload_key(field, "group_by") if isinstance(field, str) else field


def _payload_key(field: str, where: str) -> str:
    if not field.strip() or field.startswith(".") or field.endswith("."):
        raise InvalidInputError(f"{where}: invalid metadata field name {field!r}")
    return f"{METADATA_KEY}.{field}"


def _field_conditions(field: str, value: Any, where: str) -> tuple[list[Condition], list[Condition]]:
    """(must, must_not) conditions for one ``field: value-or-operators`` entry."""
    key = _payload_key(field, where)
    if isinstance(value, Mapping):
        ops = value
        if not ops:
            raise InvalidInputError(f"{where}: field {field!r} has an empty operator dict")
    else:
        ops = {"$eq": value}
    must: list[Condition] = []
    must_not: list[Condition] = []
    ranges: dict[str, Any] = {}
    for op, operand in ops.items():
        at = f"{where}: field {field!r} operator {op!r}"
        if op == "$eq":
            must.append(equals(key, _single(operand, at), at))
        elif op == "$ne":
            must_not.append(equals(key, _single(operand, at), at))
        elif op == "$in":
            must.append(any_of(key, operand, at))
        elif op == "$nin":
            must_not.append(any_of(key, operand, at))
        elif op == "$exists":
            if not isinstance(operand, bool):
                raise InvalidTypeError(f"{at} expects true or false, got {operand!r}")
            empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
            (must_not if operand else must).append(empty)
        elif op in _RANGE_OPS:
            ranges[_RANGE_OPS[op]] = range_bound(operand, at)
        else:
            raise InvalidInputError(
                f"{where}: field {field!r} uses unknown operator {op!r}; supported: {sorted(_FIELD_OPS)}"
            )
    if ranges:
        must.append(value_range(key, ranges, f"{where}: field {field!r}"))
    return must, must_not


def _single(value: Any, at: str) -> Any:
    if isinstance(value, (list, tuple, set)):
        raise InvalidTypeError(
            f"{at}: cannot compare with a list {value!r}; for a list of alternatives use $in"
        )
    return value
