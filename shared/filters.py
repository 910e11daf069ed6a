"""Filters: ``qdrant_client.models.Filter`` is the neutral type of both backends.

* Caller metadata is stored under the ``metadata`` payload key, so conditions on
  it use keys ``"metadata.<key>"`` (:func:`metadata_filter` adds the prefix).
* :func:`equals`, :func:`any_of` and :func:`value_range` are the building blocks both
  adapters' filter translations use, so a LangChain dict and LlamaIndex ``MetadataFilters``
  mean the same thing for the same values.
* ``HasIdCondition`` takes the caller's original ids; :func:`resolve_ids`
  maps them to point ids (UUIDv5) before a filter reaches a backend.
* The conversion to ``qdrant_edge.Filter`` lives in :mod:`shared.backends.edge_filters`:
  this module does not import the embedded engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from qdrant_client import models

from .errors import InvalidInputError, InvalidTypeError
from .schema import METADATA_KEY, point_id

__all__ = [
    "and_filters",
    "any_of",
    "check_filter",
    "equals",
    "metadata_filter",
    "range_bound",
    "resolve_ids",
    "value_range",
]

_RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})


def check_filter(flt: Any) -> models.Filter | None:
    """Accept None or a ``models.Filter``; refuse anything else with a clear error."""
    if flt is None or isinstance(flt, models.Filter):
        return flt
    raise InvalidTypeError(
        f"filter must be a qdrant_client.models.Filter (see shared.filters.metadata_filter), "
        f"got {type(flt).__name__}"
    )


def metadata_filter(conditions: Mapping[str, Any]) -> models.Filter:
    """A filter where every metadata condition must hold.

    ``{"lang": "en"}`` matches a value, ``{"tag": ["a", "b"]}`` any of the values,
    ``{"year": {"gte": 2020, "lt": 2024}}`` a range (numbers, or date/times and ISO-8601
    strings).  Values are str, int or bool.
    """
    must: list[models.Condition] = []
    for key, value in conditions.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"metadata filter keys must be non-empty str, got {key!r}")
        full = f"{METADATA_KEY}.{key}"
        at = f"metadata filter {key!r}"
        if isinstance(value, Mapping):
            unknown = set(value) - _RANGE_OPS
            if unknown or not value:
                raise InvalidInputError(f"{at}: range conditions take gt/gte/lt/lte, got {sorted(value)}")
            must.append(value_range(full, value, at))
        elif isinstance(value, (list, tuple, set)):
            for i, item in enumerate(value):
                _check_exact(item, f"{at} item {i}")
            must.append(any_of(full, value, at))
        else:
            must.append(equals(full, _check_exact(value, at), at))
    return models.Filter(must=must)


def _check_exact(value: Any, at: str) -> Any:
    if not isinstance(value, (str, int, bool)):
        raise InvalidInputError(
            f"{at}: value must be str/int/bool, a list or a range dict, got {type(value).__name__}"
        )
    return value


# ---------------------------------------------------------------------------
# building blocks (both adapters' translations use these)
# ---------------------------------------------------------------------------


def equals(key: str, value: Any, at: str) -> models.Condition:
    """``key == value``: ``MatchValue`` for str/int/bool, a closed ``Range`` for a float
    (Qdrant never exact-matches float payloads; the range also matches an int payload of
    the same value, as Python's ``==`` does), ``IsNull`` for None (the key holds null).

    ``at`` says where the value came from, for the error a value of any other type raises.
    """
    if value is None:
        return models.IsNullCondition(is_null=models.PayloadField(key=key))
    if isinstance(value, (bool, int, str)):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    if isinstance(value, float):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    raise InvalidTypeError(
        f"{at}: cannot compare with {type(value).__name__} {value!r}; use str, int, float, bool or None"
    )


def any_of(key: str, values: Any, at: str) -> models.Condition:
    """``key`` equals one of ``values`` (an array field: one of its elements does).

    Lists may mix types, as Python's ``in`` allows: Qdrant's ``MatchAny`` takes only an
    all-str or an all-int list, so the strs form one ``MatchAny``, the ints another, and
    each float, bool or None its :func:`equals` condition, OR-ed together.  An item of
    any other type is an error naming it.
    """
    if not isinstance(values, (list, tuple, set, frozenset)) or not values:
        raise InvalidInputError(f"{at} expects a non-empty list of values, got {values!r}")
    items = list(values)
    strs = [v for v in items if isinstance(v, str)]
    ints = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
    parts: list[models.Condition] = []
    if strs:
        parts.append(models.FieldCondition(key=key, match=models.MatchAny(any=strs)))
    if ints:
        parts.append(models.FieldCondition(key=key, match=models.MatchAny(any=ints)))
    parts.extend(
        equals(key, v, f"{at} item {i}")
        for i, v in enumerate(items)
        if not isinstance(v, str) and not (isinstance(v, int) and not isinstance(v, bool))
    )
    return parts[0] if len(parts) == 1 else models.Filter(should=parts)


def range_bound(value: Any, at: str) -> int | float | datetime | date:
    """A range bound: a number, a date/time, or an ISO-8601 string (parsed)."""
    if isinstance(value, bool) or value is None:
        raise InvalidTypeError(f"{at} expects a number or a date/time, got {value!r}")
    if isinstance(value, (int, float, datetime, date)):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(
                f"{at} expects a number or an ISO-8601 date/time, got the string {value!r}"
            ) from None
    raise InvalidTypeError(f"{at} expects a number or a date/time, got {type(value).__name__}")


def value_range(key: str, bounds: Mapping[str, Any], at: str) -> models.FieldCondition:
    """``key`` within ``bounds`` (``{"gt"|"gte"|"lt"|"lte": bound}``, see :func:`range_bound`):
    ``Range`` for numbers, ``DatetimeRange`` for date/times; mixing the two is an error."""
    parsed: dict[str, Any] = {op: range_bound(v, f"{at} ({op})") for op, v in bounds.items()}
    numeric = [isinstance(v, (int, float)) for v in parsed.values()]
    if all(numeric):
        return models.FieldCondition(key=key, range=models.Range(**parsed))
    if any(numeric):
        raise InvalidInputError(f"{at} mixes numeric and date/time bounds: {dict(bounds)!r}")
    return models.FieldCondition(key=key, range=models.DatetimeRange(**parsed))


def and_filters(*filters: models.Filter | None) -> models.Filter | None:
    """Conjunction of the given filters (None ones skipped; anything but a Filter refused)."""
    present = [f for f in map(check_filter, filters) if f is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return models.Filter(must=list(present))


def _resolved(flt: models.Filter, id_of: Callable[[str], Any] = point_id) -> models.Filter:
    out = resolve_ids(flt, id_of)
    assert out is not None
    return out


def resolve_ids(
    flt: models.Filter | None,
    id_of: Callable[[str], Any] = point_id,
    key_of: Callable[[str], str] | None = None,
) -> models.Filter | None:
    """Copy of ``flt`` whose HasIdCondition values are point ids of the caller's ids.

    ``id_of`` maps a caller's id to its point id (this package's UUIDv5 by default);
    ``key_of``, when given, maps each top-level payload key (a collection in another
    layout keeps metadata, text and ids under other keys: :meth:`shared.layouts.Layout.payload_key`).
    """
    if flt is None:
        return None

    def cond(c: Any) -> Any:
        if isinstance(c, models.HasIdCondition):
            return models.HasIdCondition(has_id=[id_of(str(i)) for i in c.has_id])
        if isinstance(c, models.Filter):
            return resolve_ids(c, id_of, key_of)
        if isinstance(c, models.NestedCondition):
            key = key_of(c.nested.key) if key_of is not None else c.nested.key
            # Keys inside a nested filter are relative to the nested object: kept as they are.
            return models.NestedCondition(
                nested=models.Nested(key=key, filter=_resolved(c.nested.filter, id_of))
            )
        if key_of is not None and isinstance(c, (models.FieldCondition, models.IsEmptyCondition)):
            if isinstance(c, models.FieldCondition):
                return c.model_copy(update={"key": key_of(c.key)})
            return models.IsEmptyCondition(is_empty=models.PayloadField(key=key_of(c.is_empty.key)))
        if key_of is not None and isinstance(c, models.IsNullCondition):
            return models.IsNullCondition(is_null=models.PayloadField(key=key_of(c.is_null.key)))
        return c

    def seq(items: Any) -> Any:
        if items is None:
            return None
        if not isinstance(items, list):
            items = [items]
        return [cond(c) for c in items]

    min_should = flt.min_should
    if min_should is not None:
        min_should = models.MinShould(conditions=seq(min_should.conditions), min_count=min_should.min_count)
    return models.Filter(
        must=seq(flt.must), should=seq(flt.should), must_not=seq(flt.must_not), min_should=min_should
    )
