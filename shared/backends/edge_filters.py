"""Neutral filters (``qdrant_client.models.Filter``) as ``qdrant_edge.Filter``, for the embedded backend.

Everything here imports ``qdrant_edge``; it lives beside the Edge backend so that importing
:mod:`shared.filters` or :mod:`shared.store` never loads the engine (a store on a Qdrant
server does not need it).  Converted: FieldCondition (match value/any/except/text/text_any/
phrase/prefix/substring, range, datetime range, values_count, is_empty, is_null, geo),
IsEmpty, IsNull, HasId, HasVector, Nested, nested Filters and min_should.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import qdrant_edge as qe
from qdrant_client import models

from ..errors import UnsupportedOperationError

__all__ = ["to_edge_filter"]


def to_edge_filter(flt: models.Filter | None) -> qe.Filter | None:
    """Convert a neutral filter to ``qdrant_edge.Filter`` (None stays None)."""
    if flt is None:
        return None
    return _edge_filter(flt)


def _as_list(items: Any) -> list[Any] | None:
    if items is None:
        return None
    return list(items) if isinstance(items, list) else [items]


def _edge_filter(flt: models.Filter) -> qe.Filter:
    def conds(items: Any) -> list[Any] | None:
        lst = _as_list(items)
        return None if lst is None else [_edge_condition(c) for c in lst]

    min_should = None
    if flt.min_should is not None:
        min_should = qe.MinShould(
            conditions=[_edge_condition(c) for c in flt.min_should.conditions],
            min_count=flt.min_should.min_count,
        )
    return qe.Filter(
        must=conds(flt.must), should=conds(flt.should), must_not=conds(flt.must_not), min_should=min_should
    )


def _edge_condition(c: Any) -> Any:
    if isinstance(c, models.Filter):
        return _edge_filter(c)
    if isinstance(c, models.FieldCondition):
        return _edge_field_condition(c)
    if isinstance(c, models.IsEmptyCondition):
        return qe.IsEmptyCondition(c.is_empty.key)
    if isinstance(c, models.IsNullCondition):
        return qe.IsNullCondition(c.is_null.key)
    if isinstance(c, models.HasIdCondition):
        return qe.HasIdCondition({str(i) if not isinstance(i, int) else i for i in c.has_id})
    if isinstance(c, models.HasVectorCondition):
        return qe.HasVectorCondition(c.has_vector)
    if isinstance(c, models.NestedCondition):
        return qe.NestedCondition(c.nested.key, _edge_filter(c.nested.filter))
    raise UnsupportedOperationError(
        f"filter condition {type(c).__name__} is not supported by the embedded backend"
    )


def _refuse_bools(values: Any) -> None:
    # qdrant-edge-py 0.9 turns a Python bool into the integer 0/1 when it builds the match,
    # so `flag == True` would silently match `flag == 1` and never a stored true.
    if any(isinstance(v, bool) for v in values):
        raise UnsupportedOperationError(
            "the embedded Qdrant Edge backend cannot match boolean values (its filter binding turns "
            "True/False into 1/0); store the flag as a string or an int, or use a Qdrant server (url=)"
        )


def _edge_match(m: Any) -> Any:
    if isinstance(m, (models.MatchValue, models.MatchAny, models.MatchExcept)):
        _refuse_bools(
            [m.value]
            if isinstance(m, models.MatchValue)
            else (m.any if isinstance(m, models.MatchAny) else m.except_)
        )
    if isinstance(m, models.MatchValue):
        return qe.MatchValue(m.value)
    if isinstance(m, models.MatchAny):
        return qe.MatchAny(list(m.any))  # type: ignore[arg-type]
    if isinstance(m, models.MatchExcept):
        return qe.MatchExcept(list(m.except_))  # type: ignore[arg-type]
    if isinstance(m, models.MatchText):
        return qe.MatchText(m.text)
    if isinstance(m, models.MatchTextAny):
        return qe.MatchTextAny(m.text_any)
    if isinstance(m, models.MatchPhrase):
        return qe.MatchPhrase(m.phrase)
    if isinstance(m, models.MatchPrefix):
        return qe.MatchPrefix(m.prefix)
    if isinstance(m, models.MatchSubstring):
        return qe.MatchSubstring(m.substring)
    raise UnsupportedOperationError(f"match {type(m).__name__} is not supported by the embedded backend")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _edge_range(r: Any) -> Any:
    if isinstance(r, models.DatetimeRange):
        return qe.RangeDateTime(gte=_iso(r.gte), gt=_iso(r.gt), lte=_iso(r.lte), lt=_iso(r.lt))
    return qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)


def _edge_field_condition(c: models.FieldCondition) -> Any:
    if c.geo_bounding_box is not None or c.geo_radius is not None or c.geo_polygon is not None:
        return qe.FieldCondition(
            c.key,
            geo_bounding_box=_geo_box(c.geo_bounding_box),
            geo_radius=_geo_radius(c.geo_radius),
            geo_polygon=_geo_polygon(c.geo_polygon),
        )
    values_count = None
    if c.values_count is not None:
        vc = c.values_count
        values_count = qe.ValuesCount(lt=vc.lt, gt=vc.gt, lte=vc.lte, gte=vc.gte)
    return qe.FieldCondition(
        c.key,
        match=_edge_match(c.match) if c.match is not None else None,
        range=_edge_range(c.range) if c.range is not None else None,
        values_count=values_count,
        is_empty=c.is_empty,
        is_null=c.is_null,
    )


def _geo_point(p: models.GeoPoint) -> qe.GeoPoint:
    return qe.GeoPoint(lon=p.lon, lat=p.lat)


def _geo_box(b: models.GeoBoundingBox | None) -> qe.GeoBoundingBox | None:
    return None if b is None else qe.GeoBoundingBox(_geo_point(b.top_left), _geo_point(b.bottom_right))


def _geo_radius(r: models.GeoRadius | None) -> qe.GeoRadius | None:
    return None if r is None else qe.GeoRadius(_geo_point(r.center), r.radius)


def _geo_polygon(p: models.GeoPolygon | None) -> qe.GeoPolygon | None:
    if p is None:
        return None
    interiors = None
    if p.interiors is not None:
        interiors = [[_geo_point(x) for x in ring.points] for ring in p.interiors]
    return qe.GeoPolygon([_geo_point(x) for x in p.exterior.points], interiors)
