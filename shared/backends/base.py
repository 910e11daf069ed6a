"""The interface both storage backends implement, and the neutral data they exchange.

A :class:`Backend` is a library of operations, not a driver: each operation is a
generator of its engine calls (:data:`shared.steps.Steps`), and the store, the one
driver, runs it with ``yield from`` inside its own operation, synchronously or on an
event loop (:mod:`shared.steps`). Each engine call is declared once, next to the call,
with its async twin and whether it may be retried: :func:`shared.steps.one_step` for
the embedded engine (blocking; run in a worker thread by the async runner),
``ClientCall`` for qdrant-client (the async client's method is awaited). Outside a
store, run an operation with ``shared.steps.run(backend.count(None))``.

Backends store and return raw points: point id, vectors and payload as the
collection's layout (:mod:`shared.layouts`) wrote them; they never read a record's
fields out of a payload.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from ..query.groups import Group
from ..query.plan import QueryPlan
from ..retry import RetryPolicy
from ..schema import CollectionSchema
from ..steps import Steps

if TYPE_CHECKING:
    from ..layouts import CollectionInfo
    from ..tenancy import IndexSpec


@dataclass(frozen=True)
class Connection:
    """Where a collection lives and how it is reached (not how it is built: that is ``StoreConfig``).

    A Qdrant server or qdrant-client local mode when ``url``, ``client`` or ``aclient`` is
    given (``api_key``, ``timeout`` and ``retry`` go with those), else the embedded Qdrant
    Edge shard at ``path`` (a temporary directory when None). The API key and the clients
    are never part of the repr.
    """

    path: str | os.PathLike[str] | None = None
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    client: Any = field(default=None, repr=False)
    aclient: Any = field(default=None, repr=False)
    timeout: float | None = None
    retry: RetryPolicy | None = None

    @property
    def is_remote(self) -> bool:
        """Whether this names a Qdrant server or a qdrant-client (else the embedded shard)."""
        return self.url is not None or self.client is not None or self.aclient is not None


class BackendOptions(TypedDict, total=False):
    """The store options a backend takes beside its :class:`Connection` (``StoreConfig.backend_options``)."""

    compact_every: int | None  # the embedded shard only (a server manages its own segments)
    background_index_min: int | None  # the embedded shard only (index builds in a writer process)
    shard_number: int | None  # a new collection on a server (the embedded shard ignores these)
    replication_factor: int | None
    write_consistency_factor: int | None


#: A stored point id: a UUID string (this package's layout) or an int (another client's).
PointId = str | int


@dataclass
class PointData:
    """One point ready to write: point id (UUID str; an int in another layout), named vectors, payload.

    Vectors: ``dense``/``dense_mrl`` lists of floats or 1-d float32 arrays (rows of a
    batch's matrix, which each backend converts for its engine), ``sparse`` an
    ``(indices, values)`` pair, ``colbert`` a list of rows.
    """

    id: str | int
    vectors: dict[str, Any]
    payload: dict[str, Any]


class ResultPoint:
    """A point read back, raw: score (None for plain reads), payload and vectors as stored.

    Returned vectors: ``dense`` a list of floats, ``sparse`` a dict token id -> weight.
    :attr:`point_id` is the stored point id (UUID str or int); a backend may give the engine's
    point instead (``raw``: anything with an ``id``), whose id is read only when it is needed:
    building it costs the embedded engine more than the rest of a result.
    """

    __slots__ = ("_pid", "_raw", "payload", "score", "vectors")

    def __init__(
        self,
        point_id: str | int | None,
        score: float | None,
        payload: dict[str, Any],
        vectors: dict[str, Any] | None = None,
        raw: Any = None,
    ) -> None:
        self._pid = point_id
        self._raw = raw
        self.score = score
        self.payload = payload
        self.vectors: dict[str, Any] = vectors if vectors is not None else {}

    @property
    def point_id(self) -> str | int:
        """The point id as stored (a UUID str, or an int in another client's collection)."""
        if self._pid is None:
            pid = self._raw.id
            self._pid = pid if isinstance(pid, (int, str)) else str(pid)  # the engine's UUID object
        return self._pid

    def __repr__(self) -> str:
        return f"ResultPoint(point_id={self.point_id!r}, score={self.score!r}, payload={self.payload!r})"


@runtime_checkable
class Backend(Protocol):
    """Storage of one collection: every operation returns the steps that perform it.

    Point ids given to a backend are already the layout's point ids.
    """

    is_remote: bool
    #: Human-readable location for messages (path or collection name; never credentials).
    location: str

    @property
    def can_sync(self) -> bool:
        """False when the backend can only run on an event loop (a store given only an async client)."""
        ...

    def read_guard(self) -> Steps[dict[str, Any] | None]:
        """The guard record of the collection; None when it does not exist; {} when foreign."""
        ...

    def inspect(self) -> Steps[CollectionInfo]:
        """Vector config, guard and one payload of an existing collection another client wrote
        (to detect its layout); the embedded backend has none and refuses."""
        ...

    def write_guard(self, schema: CollectionSchema) -> Steps[None]:
        """Record the guard of ``schema`` on a collection another client created."""
        ...

    def create(self, schema: CollectionSchema, guard: dict[str, Any] | None = None) -> Steps[None]:
        """Create the collection for ``schema`` and record its guard (``guard``, when given,
        is recorded verbatim instead of ``schema.guard_dict()``: a migrated collection keeps
        the source's guard)."""
        ...

    def drop(self) -> Steps[None]:
        """Delete the collection and all its points (``recreate=True``)."""
        ...

    def index_fields(self, specs: Sequence[IndexSpec]) -> Steps[None]:
        """Create the payload indexes ``specs`` that the collection lacks (the tenant index with
        ``is_tenant``; the collection's HNSW config builds per-tenant graphs from it)."""
        ...

    def upsert(self, points: Sequence[PointData]) -> Steps[None]: ...

    def finish_bulk(self) -> Steps[None]:
        """Called once at the end of an ``add``: build indexes / optimize (or start doing so)."""
        ...

    def wait_indexed(self) -> Steps[None]:
        """Wait for the index builds ``finish_bulk`` left running; raise the failure of one."""
        ...

    def query(self, plan: QueryPlan) -> Steps[list[ResultPoint]]: ...

    def query_groups(self, plan: QueryPlan) -> Steps[list[Group[ResultPoint]]]:
        """A grouped plan (``plan.group``): its best groups, best first (:mod:`shared.query.groups`)."""
        ...

    def query_batch(self, plans: Sequence[QueryPlan]) -> Steps[list[list[ResultPoint]]]:
        """Several plans as one engine request; one result list per plan, in order."""
        ...

    def retrieve(self, ids: Sequence[PointId], vector_names: Sequence[str]) -> Steps[list[ResultPoint]]: ...

    def scroll(
        self, flt: Any, offset: PointId | None, limit: int, vector_names: Sequence[str]
    ) -> Steps[tuple[list[ResultPoint], PointId | None]]:
        """One page of the points matching ``flt`` in point-id order, starting at point id
        ``offset`` (included; None: the first); returns the page and the next page's first point id."""
        ...

    def delete_ids(self, ids: Sequence[PointId]) -> Steps[None]: ...

    def delete_filter(self, flt: Any) -> Steps[None]: ...

    def count(self, flt: Any) -> Steps[int]: ...

    def clear(self) -> Steps[None]: ...

    def close(self) -> Steps[None]: ...
