"""Copy a collection between stores without re-encoding: what ``m3-hybrid migrate`` runs.

An endpoint is one of

* a directory: our embedded Qdrant Edge store (``HybridStore(path=DIR)``);
* ``local:DIR``: a qdrant-client local-mode directory (``QdrantClient(path=DIR)``, which
  langchain-qdrant's and llama-index's ``path=`` also write);
* an ``http://`` / ``https://`` URL of a Qdrant server or cluster;
* from Python also a ``QdrantClient`` object.

:func:`migrate` reads the source one page at a time through the store's own backends
(:mod:`shared.backends`), passes every point through one conversion step and upserts
the page into the target, so memory is bounded by the page size whatever the collection
size. Vectors (dense, MRL, sparse, ColBERT), payloads and point ids are copied as stored
and the target is created from the source's guard record, so it has the same vector
layout and storage settings (quantization, on_disk) and the same encoder guard.

Point ids are kept and upserts are idempotent, so a rerun after an interruption
completes the copy without duplicates: the target's guard records where it was
migrated from, and a rerun from that same source resumes into it. Any other non-empty
target is refused unless ``append=True``. The source is only read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .backends import Connection, open_backend
from .backends.base import Backend, PointData, ResultPoint
from .errors import (
    BackendError,
    InvalidInputError,
    InvalidTypeError,
    M3HybridError,
    ModelMismatchError,
    StoreLockedError,
    UnsupportedOperationError,
)
from .layouts import M3_HYBRID, Layout, convert_point, detect_layout, get_layout, schema_fields
from .schema import SHAPE_FIELDS, CollectionSchema, validate_collection_name
from .steps import run
from .tenancy import DEFAULT_TENANT_KEY, TenantScope, index_specs
from .types import EncoderIdentity

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Endpoint",
    "MigrationResult",
    "PointConverter",
    "migrate",
    "parse_endpoint",
]

logger = logging.getLogger(__name__)

#: Points read and written per page (bounds the memory of a migration).
DEFAULT_BATCH_SIZE = 256
#: Guard key recording where a migrated collection came from (lets a rerun resume into it).
MIGRATED_FROM_KEY = "migrated_from"
LOCAL_PREFIX = "local:"
_SERVER_SCHEMES = ("http://", "https://")

#: One conversion step: a point read from the source (with its ``point_id``) -> the point to write.
PointConverter = Callable[[ResultPoint], PointData]


@dataclass(frozen=True)
class Endpoint:
    """Where a collection lives: ``kind`` is ``embedded``, ``local``, ``server`` or ``client``."""

    kind: str
    location: str
    client: Any = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """The endpoint as the user wrote it (never credentials)."""
        if self.kind == "local":
            return f"{LOCAL_PREFIX}{self.location}"
        return self.location


def parse_endpoint(spec: Any) -> Endpoint:
    """An :class:`Endpoint` from ``DIR``, ``local:DIR``, an ``http(s)://`` URL or a ``QdrantClient``."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        from qdrant_client import QdrantClient

        if isinstance(spec, QdrantClient):
            return Endpoint("client", "the given Qdrant client", spec)
        raise InvalidTypeError(
            f"an endpoint must be a directory, 'local:DIR', an http(s):// URL or a QdrantClient, "
            f"got {type(spec).__name__}"
        )
    text = spec.strip()
    if not text:
        raise InvalidInputError("an endpoint must not be empty (a directory, local:DIR or an http(s):// URL)")
    if text.lower().startswith(_SERVER_SCHEMES):
        if "@" in text.split("://", 1)[1].split("/", 1)[0]:
            raise InvalidInputError(
                "put no credentials in the URL; pass the API key with --api-key or QDRANT_API_KEY"
            )
        return Endpoint("server", text.rstrip("/"))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise InvalidInputError(
            f"unsupported endpoint scheme {scheme!r} in {text!r}: use a directory, local:DIR or http(s)://"
        )
    if text.startswith(LOCAL_PREFIX):
        rest = text[len(LOCAL_PREFIX) :]
        if not rest:
            raise InvalidInputError("local: needs a directory, e.g. local:./qdrant_data")
        return Endpoint("local", str(Path(rest).expanduser().resolve()))
    return Endpoint("embedded", str(Path(text).expanduser().resolve()))


@dataclass(frozen=True)
class MigrationResult:
    """What :func:`migrate` did."""

    source: str
    target: str
    #: Points read from the source and written to the target in this run.
    copied: int
    source_count: int
    target_count: int
    #: True when this run completed an earlier, interrupted migration into the same target.
    resumed: bool
    #: The source's layout ("m3-hybrid" for collections this package wrote).
    layout: str = "m3-hybrid"


@dataclass(frozen=True)
class _SourcePlan:
    """How to read the source and what to create: the one place a layout enters a migration."""

    schema: CollectionSchema
    guard: dict[str, Any]
    vector_names: tuple[str, ...]
    convert: PointConverter
    layout: str
    #: The source's layout (how its points are read).
    source_layout: Layout = M3_HYBRID
    #: The source's points to copy (None: all of them; a tenant's: its scope).
    source_filter: Any = None


def _scoped_plan(plan: _SourcePlan, scope: TenantScope, where: str) -> _SourcePlan:
    """``plan`` for one tenant: its points of a tenanted source, or a whole source made its own."""
    source_key = plan.schema.tenant_key
    if source_key is not None:
        if source_key != scope.key:
            raise InvalidInputError(
                f"{where} keeps its tenants under {source_key!r}, not the tenant key {scope.key!r} given"
            )
        # Point ids and payloads are the tenant's already: copied as they are.
        return replace(plan, source_filter=scope.restrict(None, plan.source_layout))
    source, target = plan.source_layout, plan.schema.stored_layout
    to_point = scope.to_point(target)
    key = scope.key

    def convert(point: ResultPoint) -> PointData:
        parts = source.record(point)
        if key in parts.metadata:
            raise InvalidInputError(
                f"{where}: point {parts.id!r} has a metadata field {key!r}, the tenant key; "
                "choose another tenant key (tenant_key=) or rename the field"
            )
        pid, vectors, payload = convert_point(
            point.point_id, point.vectors, point.payload, source, target, to_point
        )
        return PointData(id=pid, vectors=_writable(vectors), payload=payload)

    schema = replace(plan.schema, tenant_key=key)
    guard = {**plan.guard, "tenancy": {"key": key}}
    return replace(plan, schema=schema, guard=guard, convert=convert)


def migrate(
    source: Any,
    collection: str,
    target: Any,
    *,
    to_collection: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    append: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool = False,
    layout: str | Layout | None = None,
    tenant: str | None = None,
    tenant_key: str = DEFAULT_TENANT_KEY,
) -> MigrationResult:
    """Copy ``collection`` from ``source`` to ``target`` (as ``to_collection``, default the same name).

    ``source``/``target``: a directory (embedded store), ``local:DIR``, an ``http(s)://``
    URL or a ``QdrantClient``. ``api_key`` is used for URLs; ``shard_number`` and
    ``replication_factor`` configure a new collection on a server. A non-empty target
    is refused unless ``append`` or it was created by an earlier run of this same
    migration (then the copy resumes). A collection written by langchain-qdrant or
    llama-index's Qdrant store is detected and converted into m3-hybrid's layout; ``layout``
    names the source's layout instead (``"langchain"``, ``"llama-index"``, or a
    :class:`~shared.layouts.Layout` for custom vector names / payload keys).
    ``tenant``: from a collection without tenants, copy every point as this tenant's into a
    tenanted collection (payload key ``tenant_key``; its tenant index and per-tenant graphs
    are created, an existing target must be tenanted by the same key: ``append`` adds another
    tenant); from a tenanted collection, copy this tenant's points only.
    Raises :class:`~shared.errors.M3HybridError` subclasses naming the problem; the
    source is never written.
    """
    validate_collection_name(collection)
    to_collection = collection if to_collection is None else to_collection
    validate_collection_name(to_collection)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
    src, dst = parse_endpoint(source), parse_endpoint(target)
    for name, value in (("shard_number", shard_number), ("replication_factor", replication_factor)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
        if dst.kind != "server":
            raise InvalidInputError(
                f"{name} configures a new collection on a Qdrant server; "
                f"the target {dst.describe()} is not one"
            )
    if api_key is not None and "server" not in (src.kind, dst.kind):
        raise InvalidInputError("api_key is only used with an http(s):// endpoint")
    same_place = src == dst and (src.kind != "client" or src.client is dst.client)
    if same_place and collection == to_collection:
        raise InvalidInputError(
            f"source and target are the same collection ({collection!r} in {src.describe()})"
        )
    with ExitStack() as stack:
        clients: dict[str, Any] = {}
        source_backend = stack.enter_context(
            _open(src, collection, clients, api_key=api_key, timeout=timeout, read_only=True)
        )
        plan = _plan_source(source_backend, src, collection, layout)
        scope = TenantScope(tenant, tenant_key) if tenant is not None else None
        if scope is not None:
            plan = _scoped_plan(plan, scope, _where(src, collection))
        source_count = run(source_backend.count(plan.source_filter))
        target_backend = stack.enter_context(
            _open(
                dst,
                to_collection,
                clients,
                api_key=api_key,
                timeout=timeout,
                shard_number=shard_number,
                replication_factor=replication_factor,
            )
        )
        marker = {"source": src.describe(), "collection": collection}
        resumed = _prepare_target(target_backend, dst, to_collection, plan, marker, append)
        if plan.schema.tenant_key is not None:
            run(
                target_backend.index_fields(
                    index_specs(plan.schema.stored_layout, plan.schema.tenant_key, ())
                )
            )
        copied = _copy(source_backend, target_backend, plan, source_count, batch_size, show_progress)
        run(target_backend.finish_bulk())
        run(target_backend.wait_indexed())  # a migration ends with the target indexed
        target_count = run(target_backend.count(None))
    return MigrationResult(
        source=f"{src.describe()} collection {collection!r}",
        target=f"{dst.describe()} collection {to_collection!r}",
        copied=copied,
        source_count=source_count,
        target_count=target_count,
        resumed=resumed,
        layout=plan.layout,
    )


# ---------------------------------------------------------------------------
# opening endpoints
# ---------------------------------------------------------------------------


@contextmanager
def _open(
    endpoint: Endpoint,
    collection: str,
    clients: dict[str, Any],
    *,
    api_key: str | None,
    timeout: float | None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    read_only: bool = False,
) -> Iterator[Backend]:
    """The backend of ``collection`` at ``endpoint``, closed (with a client it opened) on exit."""
    backend: Backend
    if endpoint.kind == "embedded":
        if read_only:
            _check_embedded_source(Path(endpoint.location), collection)
        else:
            _check_not_local_mode(Path(endpoint.location))
        try:
            backend = open_backend(collection, Connection(path=endpoint.location))
        except OSError as exc:
            raise BackendError(f"cannot open the embedded store at {endpoint.location}: {exc}") from None
        try:
            yield backend
        finally:
            run(backend.close())
        return

    with ExitStack() as stack:
        if endpoint.kind == "server":
            backend = open_backend(
                collection,
                Connection(url=endpoint.location, api_key=api_key, timeout=timeout),
                shard_number=shard_number,
                replication_factor=replication_factor,
            )
            stack.callback(_close_quietly, backend)
        else:
            client = endpoint.client if endpoint.kind == "client" else clients.get(endpoint.location)
            if client is None:  # local: one client per directory (it locks the directory)
                client = _local_client(Path(endpoint.location), must_exist=read_only)
                clients[endpoint.location] = client
                stack.callback(client.close)
            backend = open_backend(collection, Connection(client=client))
        yield backend


def _close_quietly(backend: Backend) -> None:
    try:
        run(backend.close())
    except M3HybridError as exc:  # closing an unreachable server's client must not hide the real error
        logger.debug("closing %s: %s", backend.location, exc)


def _check_embedded_source(path: Path, collection: str) -> None:
    """Refuse a missing embedded source before anything is opened (opening never writes then)."""
    from .backends.edge import EDGE_MARKER, GUARD_FILE

    if not path.is_dir():
        raise InvalidInputError(f"no embedded store at {path} (the directory does not exist)")
    _check_not_local_mode(path)
    shard = path / collection
    if not (shard / EDGE_MARKER).is_file():
        if (shard / GUARD_FILE).is_file():
            raise InvalidInputError(
                f"collection {collection!r} in the embedded store at {path} holds no points "
                "(its creation was interrupted): nothing to migrate"
            )
        present = sorted(p.name for p in path.iterdir() if (p / EDGE_MARKER).is_file())
        listed = ", ".join(repr(n) for n in present[:20]) or "none"
        raise InvalidInputError(
            f"collection {collection!r} does not exist in the embedded store at {path} (it holds: {listed})"
        )


def _check_not_local_mode(path: Path) -> None:
    if (path / "meta.json").is_file() and (path / "collection").is_dir():
        raise InvalidInputError(
            f"{path} is a qdrant-client local-mode directory, not an embedded m3-hybrid store; "
            f"write it as {LOCAL_PREFIX}{path}"
        )


def _local_client(path: Path, *, must_exist: bool) -> Any:
    from qdrant_client import QdrantClient

    if must_exist and not (path / "meta.json").is_file():
        raise InvalidInputError(
            f"no qdrant-client local-mode store at {path} (no meta.json there)"
            if path.is_dir()
            else f"no qdrant-client local-mode store at {path} (the directory does not exist)"
        )
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise StoreLockedError(
                f"the qdrant-client local-mode store at {path} is locked: another process or client "
                "has it open; close it there first (local mode allows one client at a time)"
            ) from None
        raise BackendError(f"cannot open the qdrant-client local-mode store at {path}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot open the qdrant-client local-mode store at {path}: {exc}") from None


# ---------------------------------------------------------------------------
# source, target, copy
# ---------------------------------------------------------------------------


def _where(endpoint: Endpoint, collection: str) -> str:
    if endpoint.kind == "embedded":
        return f"collection {collection!r} in the embedded store at {endpoint.location}"
    return f"collection {collection!r} in {endpoint.describe()}"


def _plan_source(
    backend: Backend, endpoint: Endpoint, collection: str, layout: str | Layout | None
) -> _SourcePlan:
    """What to read from the source, how to convert each point, and the target's schema and guard."""
    where = _where(endpoint, collection)
    guard = run(backend.read_guard())
    if guard is None:
        raise InvalidInputError(f"{where} does not exist")
    given = get_layout(layout) if layout is not None else None
    if guard and given is None:
        try:
            schema = CollectionSchema.from_guard(guard)
        except (KeyError, TypeError, ValueError, M3HybridError) as exc:
            raise InvalidInputError(f"{where} has an unreadable guard record ({exc})") from None
        source_layout = schema.stored_layout
        # A foreign collection m3-hybrid has written to keeps its layout in the guard; the copy
        # is in our layout, with the same encoder identity.
        target_guard = {k: v for k, v in guard.items() if k != "layout"}
        return _plan(replace(schema, layout=None), target_guard, source_layout, schema.vector_names)
    if endpoint.kind == "embedded":
        raise InvalidInputError(f"{where} was not written by m3-hybrid (no guard record)")
    info = run(backend.inspect())
    source_layout = given if given is not None else detect_layout(info, where)
    fields = schema_fields(info, source_layout)
    if fields["distance"] != "cosine":
        raise InvalidInputError(
            f"{where} uses {fields['distance']} distance; m3-hybrid stores cosine only, so its "
            "vectors would not mean the same: not migrated"
        )
    known = {source_layout.dense_vector, source_layout.sparse_vector}
    left_out = sorted(n for n in (*info.dense, *info.sparse) if n not in known)
    if left_out:
        raise UnsupportedOperationError(
            f"{where} has vectors the {source_layout.name} layout does not describe "
            f"({', '.join(repr(n) for n in left_out)}); migrate would not copy them, so it refuses"
        )
    if fields["dense_dim"] is None and not fields["sparse"]:
        raise InvalidInputError(f"{where} has neither a dense nor a sparse vector to copy")
    identity = CollectionSchema.from_guard(guard).identity if guard else None
    schema = CollectionSchema(
        dense_dim=fields["dense_dim"],
        sparse=fields["sparse"],
        sparse_idf=fields["sparse_idf"],
        identity=identity,
    )
    return _plan(schema, schema.guard_dict(), source_layout, schema.vector_names)


def _plan(
    schema: CollectionSchema, guard: dict[str, Any], source: Layout, canonical: tuple[str, ...]
) -> _SourcePlan:
    if source == schema.stored_layout:
        # The same layout on both sides: each point is copied as stored.
        return _SourcePlan(schema, guard, canonical, copy_point, source.name, source_layout=source)

    def convert(point: ResultPoint) -> PointData:
        pid, vectors, payload = convert_point(point.point_id, point.vectors, point.payload, source)
        return PointData(id=pid, vectors=_writable(vectors), payload=payload)

    names = tuple(source.vector_name(n) for n in canonical)
    return _SourcePlan(schema, guard, names, convert, source.name, source_layout=source)


def _writable(vectors: Mapping[str, Any]) -> dict[str, Any]:
    """Vectors as read back (sparse: {token id: weight}) -> as written (sparse: (indices, values))."""
    return {
        name: (list(value.keys()), list(value.values())) if isinstance(value, Mapping) else value
        for name, value in vectors.items()
    }


def copy_point(point: ResultPoint) -> PointData:
    """The conversion step of a collection in our own layout: the point as stored, same id."""
    return PointData(id=point.point_id, vectors=_writable(point.vectors), payload=point.payload)


def _guard_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """The encoder and vector-shape fields in which two guard records differ."""
    diffs = []
    a, b = ours.get("schema") or {}, theirs.get("schema") or {}
    for key in SHAPE_FIELDS:
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: source {a.get(key)!r}, target {b.get(key)!r}")
    ia, ib = ours.get("identity"), theirs.get("identity")
    if ia is not None and ib is not None:
        for key, (x, y) in EncoderIdentity.from_dict(ia).differences(EncoderIdentity.from_dict(ib)).items():
            diffs.append(f"identity.{key}: source {x!r}, target {y!r}")
    elif (ia is None) != (ib is None):
        diffs.append("identity: only one of them records the encoder")
    return diffs


def _prepare_target(
    backend: Backend,
    endpoint: Endpoint,
    collection: str,
    plan: _SourcePlan,
    marker: dict[str, str],
    append: bool,
) -> bool:
    """Create the target, or check that it may receive the copy; True when resuming."""
    where = _where(endpoint, collection)
    guard = run(backend.read_guard())
    if guard is None:
        run(backend.create(plan.schema, {**plan.guard, MIGRATED_FROM_KEY: marker}))
        return False
    if not guard:
        raise InvalidInputError(
            f"the target {where} exists and was not written by m3-hybrid; "
            "choose another target collection (--to-collection)"
        )
    if isinstance(guard.get("layout"), Mapping):
        name = guard["layout"].get("name", "another")
        raise InvalidInputError(
            f"the target {where} is in the {name} layout (written by another framework); migrate writes "
            "m3-hybrid's layout: choose another target collection (--to-collection)"
        )
    diffs = _guard_differences(plan.guard, guard)
    theirs = CollectionSchema.from_guard(guard).tenant_key if "schema" in guard else None
    if theirs != plan.schema.tenant_key:
        diffs.append(f"tenant key: source copy {plan.schema.tenant_key!r}, target {theirs!r}")
    if diffs:
        raise ModelMismatchError(
            f"the target {where} was built with a different encoder or vector layout than the source "
            f"({'; '.join(diffs)}); choose another target collection (--to-collection)"
        )
    count = run(backend.count(None))
    resumed = guard.get(MIGRATED_FROM_KEY) == marker
    if count and not (resumed or append):
        raise InvalidInputError(
            f"the target {where} already holds {count:,} points; pass --append (append=True) to add "
            "the source's points to it, or choose another target collection (--to-collection)"
        )
    if resumed and count:
        logger.info("resuming the interrupted migration into %s (%d points already there)", where, count)
    return bool(resumed and count)


def _copy(
    source: Backend,
    target: Backend,
    plan: _SourcePlan,
    total: int,
    batch_size: int,
    show_progress: bool,
) -> int:
    """Scroll the source page by page, convert each point, upsert each page; the number copied."""
    from tqdm.auto import tqdm

    copied = 0
    offset: str | int | None = None
    with tqdm(total=total, unit="pt", desc="migrate", disable=not show_progress, dynamic_ncols=True) as bar:
        while True:
            page, offset = run(source.scroll(plan.source_filter, offset, batch_size, plan.vector_names))
            if page:
                run(target.upsert([plan.convert(p) for p in page]))
                copied += len(page)
                bar.update(len(page))
            if offset is None:
                return copied
