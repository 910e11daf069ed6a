"""The interface both storage backends implement, and the neutral data they exchange.

Sync and async share one code path: an operation is written once as a generator
that yields :class:`Call` requests (client method + arguments) and receives their
results; :func:`drive` runs it with a sync client and :func:`adrive` with an
async one. The embedded backend has no async engine, so its async methods run
the sync ones in a worker thread (``asyncio.to_thread``), one line each.
Both drivers retry a call under a :class:`~shared.retry.RetryPolicy` (transient
failures of idempotent calls only; the decision is :func:`~shared.retry.retry_delay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..query_planning import QueryPlan
from ..retry import RetryPolicy, describe_error, retry_delay
from ..schema import CollectionSchema

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class PointData:
    """One point ready to write: point id (UUID str; an int in another layout), named vectors, payload.

    Vectors: ``dense``/``dense_mrl`` lists of floats, ``sparse`` an
    ``(indices, values)`` pair, ``colbert`` a list of rows.
    """

    id: str | int
    vectors: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class ResultPoint:
    """A point read back: the caller's id (payload ``doc_id``; the point id when absent),
    score (None for plain reads), payload and vectors.

    Returned vectors: ``dense`` a list of floats, ``sparse`` a dict token id -> weight.
    ``point_id`` is the stored point id (UUID str or int); the embedded backend fills it
    in ``scroll`` only (building it costs more than the rest of a result there).
    """

    id: str
    score: float | None
    payload: dict[str, Any]
    vectors: dict[str, Any] = field(default_factory=dict)
    #: The point id as stored (a collection in another layout derives the caller's id from it).
    point_id: str | int | None = None


@dataclass(frozen=True)
class Call:
    """One client call requested by an operation generator."""

    method: str
    kwargs: dict[str, Any]


Op = Generator[Call, Any, T]


def _retry_wait(retry: RetryPolicy | None, call: Call, exc: Exception, attempt: int) -> float | None:
    delay = None if retry is None else retry_delay(retry, call.method, exc, attempt)
    if delay is not None:
        logger.warning(
            "%s failed (%s); retry %d in %.2f s", call.method, describe_error(exc), attempt + 1, delay
        )
    return delay


def drive(op: Op[T], client: Any, retry: RetryPolicy | None = None) -> T:
    """Run an operation generator against a sync client."""
    try:
        call = next(op)
        while True:
            attempt = 0
            while True:
                try:
                    result = getattr(client, call.method)(**call.kwargs)
                    break
                except Exception as exc:
                    delay = _retry_wait(retry, call, exc, attempt)
                    if delay is None:
                        raise
                    time.sleep(delay)
                    attempt += 1
            call = op.send(result)
    except StopIteration as stop:
        return stop.value


async def adrive(op: Op[T], aclient: Any, retry: RetryPolicy | None = None) -> T:
    """Run the same operation generator against an async client."""
    try:
        call = next(op)
        while True:
            attempt = 0
            while True:
                try:
                    result = await getattr(aclient, call.method)(**call.kwargs)
                    break
                except Exception as exc:
                    delay = _retry_wait(retry, call, exc, attempt)
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)
                    attempt += 1
            call = op.send(result)
    except StopIteration as stop:
        return stop.value


@runtime_checkable
class Backend(Protocol):
    """Storage of one collection. Point ids given to a backend are already UUID strings."""

    is_remote: bool
    #: Human-readable location for messages (path or collection name; never credentials).
    location: str

    def read_guard(self) -> dict[str, Any] | None:
        """The guard record of the collection; None when it does not exist; {} when foreign."""
        ...

    def create(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> None:
        """Create the collection for ``schema`` and record its guard (``guard``, when given,
        is recorded verbatim instead of ``schema.guard_dict()``: a migrated collection keeps
        the source's guard)."""
        ...

    def drop(self) -> None:
        """Delete the collection and all its points (``recreate=True``)."""
        ...

    def upsert(self, points: Sequence[PointData]) -> None: ...

    def finish_bulk(self) -> None:
        """Called once at the end of an ``add``: build indexes / optimize."""
        ...

    def query(self, plan: QueryPlan) -> list[ResultPoint]: ...

    def retrieve(self, ids: Sequence[str], vector_names: Sequence[str]) -> list[ResultPoint]: ...

    def scroll(
        self, flt: Any, offset: str | None, limit: int, vector_names: Sequence[str]
    ) -> tuple[list[ResultPoint], str | None]:
        """One page of the points matching ``flt`` in point-id order, starting at point id
        ``offset`` (included; None: the first); returns the page and the next page's first point id."""
        ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def delete_filter(self, flt: Any) -> None: ...

    def count(self, flt: Any) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...

    async def aread_guard(self) -> dict[str, Any] | None: ...

    async def acreate(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> None: ...

    async def adrop(self) -> None: ...

    async def aupsert(self, points: Sequence[PointData]) -> None: ...

    async def afinish_bulk(self) -> None: ...

    async def aquery(self, plan: QueryPlan) -> list[ResultPoint]: ...

    async def aretrieve(self, ids: Sequence[str], vector_names: Sequence[str]) -> list[ResultPoint]: ...

    async def ascroll(
        self, flt: Any, offset: str | None, limit: int, vector_names: Sequence[str]
    ) -> tuple[list[ResultPoint], str | None]: ...

    async def adelete_ids(self, ids: Sequence[str]) -> None: ...

    async def adelete_filter(self, flt: Any) -> None: ...

    async def acount(self, flt: Any) -> int: ...

    async def aclear(self) -> None: ...

    async def aclose(self) -> None: ...
