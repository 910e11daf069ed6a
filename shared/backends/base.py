"""The interface both storage backends implement, and the neutral data they exchange.

A :class:`Backend` has sync methods only. The embedded backend's methods block (the
engine holds the GIL): the store's async methods run them in a worker thread through
the one step driver (:mod:`shared.steps`). The remote backend is a :class:`ClientBackend`:
it also reads collections other clients wrote, and has async methods on its own async
client, which the async driver awaits instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..query.plan import QueryPlan
from ..schema import CollectionSchema

if TYPE_CHECKING:
    from ..layouts import CollectionInfo


#: A stored point id: a UUID string (this package's layout) or an int (another client's).
PointId = str | int


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

    def retrieve(self, ids: Sequence[PointId], vector_names: Sequence[str]) -> list[ResultPoint]: ...

    def scroll(
        self, flt: Any, offset: PointId | None, limit: int, vector_names: Sequence[str]
    ) -> tuple[list[ResultPoint], PointId | None]:
        """One page of the points matching ``flt`` in point-id order, starting at point id
        ``offset`` (included; None: the first); returns the page and the next page's first point id."""
        ...

    def delete_ids(self, ids: Sequence[PointId]) -> None: ...

    def delete_filter(self, flt: Any) -> None: ...

    def count(self, flt: Any) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ClientBackend(Backend, Protocol):
    """A backend over qdrant-client: collections written by other clients, and an async client.

    The async methods do what their sync namesakes do; :func:`shared.steps.arun` awaits them
    instead of running the sync method in a worker thread.
    """

    @property
    def can_sync(self) -> bool:
        """False when given only an async client: the sync methods refuse, the async ones work."""
        ...

    def inspect(self) -> CollectionInfo:
        """Vector config, guard and one payload of the existing collection (to detect its layout)."""
        ...

    def write_guard(self, schema: CollectionSchema) -> None:
        """Record the guard of ``schema`` on a collection another client created."""
        ...

    async def aread_guard(self) -> dict[str, Any] | None: ...

    async def ainspect(self) -> CollectionInfo: ...

    async def awrite_guard(self, schema: CollectionSchema) -> None: ...

    async def acreate(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> None: ...

    async def adrop(self) -> None: ...

    async def aupsert(self, points: Sequence[PointData]) -> None: ...

    async def afinish_bulk(self) -> None: ...

    async def aquery(self, plan: QueryPlan) -> list[ResultPoint]: ...

    async def aretrieve(self, ids: Sequence[PointId], vector_names: Sequence[str]) -> list[ResultPoint]: ...

    async def ascroll(
        self, flt: Any, offset: PointId | None, limit: int, vector_names: Sequence[str]
    ) -> tuple[list[ResultPoint], PointId | None]: ...

    async def adelete_ids(self, ids: Sequence[PointId]) -> None: ...

    async def adelete_filter(self, flt: Any) -> None: ...

    async def acount(self, flt: Any) -> int: ...

    async def aclear(self) -> None: ...

    async def aclose(self) -> None: ...
