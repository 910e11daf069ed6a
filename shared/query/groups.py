"""One hit per document: grouping hits by a payload key (``group_by`` / ``group_size``).

A grouped query returns at most ``limit`` groups, each of at most ``group_size`` hits,
groups ordered by their best hit and hits by score: what Qdrant's group query
(``query_points_groups``) returns. The rule, the same on both backends:

* a point's group ids are the value(s) at the key (a list gives several groups, each
  distinct value once); a value is a str or an int (not a bool). A point without the
  key, or with a value of another type, joins no group (Qdrant's own rule);
* the grouped ranking is the ranking the ungrouped plan makes (the same prefetches, the
  same fusion), read from the top: the first ``limit`` distinct groups met are the best
  groups, and each takes its first ``group_size`` hits.

A Qdrant server runs the group query itself. The embedded engine (Qdrant Edge) has no
group query, so the backend over-fetches (:func:`fill_groups`): it reads the top
``limit x group_size`` hits of the plan, and while fewer than ``limit`` groups are full it
reads :data:`GROUP_FETCH_GROWTH` times more, until they are full or the ranking is
exhausted (fewer hits came back than asked for: the collection, or the prefetched
candidates of a fused query, hold no more). qdrant-client's local mode widens every
prefetch to the whole collection for a group query (its own rule); give prefetch sizes of
at least the collection's size to make a fused grouped query mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..validation import payload_key, positive_int

__all__ = [
    "DEFAULT_GROUP_SIZE",
    "GROUP_FETCH_GROWTH",
    "GroupId",
    "GroupSpec",
    "check_group_key",
    "fill_groups",
    "group_points",
    "group_values",
]

#: Hits per group when ``group_by`` is given without ``group_size``: one hit per document.
DEFAULT_GROUP_SIZE = 1
#: Embedded engine: how much larger each further over-fetch is than the previous one.
GROUP_FETCH_GROWTH = 4

GroupId = str | int
P = TypeVar("P")


@dataclass(frozen=True)
class GroupSpec:
    """A plan's grouping: ``limit`` groups of ``size`` hits by the payload key ``key``
    (a stored payload path, e.g. ``metadata.source``)."""

    key: str
    size: int
    limit: int


@dataclass
class Group(Generic[P]):
    """One group: its id (the key's value) and its hits, best first."""

    id: GroupId
    hits: list[P]


def check_group_key(value: Any) -> str:
    """A ``group_by`` key: a payload key such as ``metadata.source``."""
    return payload_key(value, "group_by")


def check_group_size(value: Any) -> int:
    return positive_int(value, "group_size")


def _walk(value: Any, parts: Sequence[str]) -> list[Any]:
    """Every value at the dotted path ``parts`` (lists along the way are walked into)."""
    if not parts:
        return list(value) if isinstance(value, list) else [value]
    if isinstance(value, list):
        return [v for item in value for v in _walk(item, parts)]
    if isinstance(value, Mapping) and parts[0] in value:
        return _walk(value[parts[0]], parts[1:])
    return []


def group_values(payload: Mapping[str, Any], key: str) -> list[GroupId] | None:
    """The groups a point with ``payload`` joins (None: none, see the module rule)."""
    values = _walk(payload, key.split("."))
    if not values or any(type(v) not in (str, int) for v in values):
        return None
    return list(dict.fromkeys(values))


def group_points(
    points: Sequence[P], payload_of: Callable[[P], Mapping[str, Any]], spec: GroupSpec
) -> tuple[list[Group[P]], bool]:
    """``points`` (best first) grouped by ``spec``; and whether ``spec.limit`` groups are full."""
    groups: dict[GroupId, Group[P]] = {}
    for point in points:
        ids = group_values(payload_of(point), spec.key)
        if ids is None:
            continue
        for gid in ids:
            group = groups.get(gid)
            if group is None:
                group = groups[gid] = Group(gid, [])
            if len(group.hits) < spec.size:
                group.hits.append(point)
    best = list(groups.values())[: spec.limit]
    full = len(best) == spec.limit and all(len(g.hits) == spec.size for g in best)
    return best, full


def fill_groups(
    fetch: Callable[[int], Sequence[P]],
    payload_of: Callable[[P], Mapping[str, Any]],
    spec: GroupSpec,
    first: int,
) -> list[Group[P]]:
    """Groups of a ranking read by ``fetch(n)`` (its top ``n`` hits), over-fetching until
    ``spec.limit`` groups are full or the ranking is exhausted (see the module rule)."""
    n = max(first, spec.limit * spec.size)
    while True:
        points = fetch(n)
        groups, full = group_points(points, payload_of, spec)
        if full or len(points) < n:
            return groups
        n *= GROUP_FETCH_GROWTH
