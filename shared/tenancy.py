"""Tenants: one collection shared by many users, each store scoped to one of them.

A store opened with ``tenant="acme"`` (StoreConfig ``tenant``, payload key ``tenant_key``,
``"tenant"`` by default) can never read, change or delete another tenant's points. Every
backend call of the store passes through its one :class:`TenantScope`:

* **writes**: the scope stamps the tenant into the payload (never taken from the caller's
  metadata: a metadata field named like the tenant key is refused) and gives each record the
  point id of (tenant, id): the UUIDv5 of the id in the tenant's own namespace, so the same
  id in two tenants is two points (:meth:`TenantScope.to_point`);
* **filters**: every filter the store sends (queries of every mode and fusion, MMR, scroll,
  count, delete by document or filter) is the scope's condition AND the caller's filter,
  which can narrow it but never widen it, whatever ``should``/``must_not`` it holds on the
  tenant key (:meth:`TenantScope.restrict`); ids in a caller's filter are this tenant's;
* **ids**: get and delete by id address this tenant's point ids only, and what comes back is
  checked to be this tenant's (:meth:`TenantScope.owns`); another tenant's id finds nothing;
* **the collection**: a tenanted collection's guard records its tenant key; a store opened on
  it without ``tenant=`` is refused (:meth:`TenantScope.check_open`); ``tenant=ALL`` is the
  explicit cross-tenant view (reads, deletes and counts over every tenant; no writes).

Where the tenant lives: at the payload's top level in this package's layout (beside the
metadata, so the caller's metadata stays the caller's); in another framework's collection, in
its metadata section (``metadata.tenant`` for langchain-qdrant, the top level for
llama-index), where that framework's own filters find it
(:meth:`shared.layouts.Layout.tenant_path`).

The tenant field gets the engine's tenant index (``is_tenant``) and per-tenant HNSW graphs
(``payload_m``, global ``m=0``): :func:`index_specs`, used by both backends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, InvalidTypeError, ModelMismatchError
from .layouts import (
    DOC_ID_KEY,
    LANGCHAIN_CONTENT_KEY,
    LLAMA_NODE_CONTENT,
    LLAMA_NODE_TYPE,
    LLAMA_REF_KEYS,
    METADATA_KEY,
    REF_DOC_ID_KEY,
    TEXT_KEY,
    Layout,
    uuid5_str,
)

if TYPE_CHECKING:
    from qdrant_client import models

__all__ = [
    "ALL",
    "DEFAULT_TENANT_KEY",
    "INDEX_KINDS",
    "IndexSpec",
    "TenantScope",
    "TieredShards",
    "index_specs",
]

#: The payload key of the tenant unless ``tenant_key=`` names another.
DEFAULT_TENANT_KEY = "tenant"
#: Links per node of each tenant's own HNSW graph (the engine's default ``m``).
TENANT_GRAPH_M = 16
#: Payload index kinds ``indexed_fields`` takes (Qdrant's payload schema types).
INDEX_KINDS = ("keyword", "integer", "float", "bool", "datetime", "uuid", "text")

#: Payload keys the layouts use themselves: a tenant key cannot be one of them.
_RESERVED_KEYS = frozenset(
    {TEXT_KEY, METADATA_KEY, DOC_ID_KEY, REF_DOC_ID_KEY, LANGCHAIN_CONTENT_KEY, LLAMA_NODE_CONTENT}
    | {LLAMA_NODE_TYPE, *LLAMA_REF_KEYS}
)
#: A payload key usable in a filter path as is (no dots or brackets).
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class _AllTenants:
    """The explicit cross-tenant scope (``tenant=ALL``): an administrator's view of every tenant."""

    _instance: _AllTenants | None = None

    def __new__(cls) -> _AllTenants:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ALL"

    def __reduce__(self) -> str:
        return "ALL"


#: ``tenant=ALL``: open a tenanted collection unscoped, on purpose (reads, counts and deletes
#: across tenants; adds are refused: a point must belong to a tenant).
ALL = _AllTenants()


def check_tenant(value: Any) -> str | _AllTenants | None:
    """A ``tenant=`` value: None (no tenants), :data:`ALL`, or a non-empty str."""
    if value is None or value is ALL:
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"tenant must be a str (or shared.ALL), got {type(value).__name__} {value!r:.60}"
        )
    if not value or not value.strip():
        raise InvalidInputError("tenant must be a non-empty str (the tenant's id)")
    if "\x00" in value:
        raise InvalidInputError(f"tenant {value!r:.60} contains a NUL character")
    return value


def check_tenant_key(key: Any) -> str:
    """A ``tenant_key=``: a plain payload key that no layout uses for itself."""
    if not isinstance(key, str):
        raise InvalidTypeError(f"tenant_key must be a str, got {type(key).__name__}")
    if not _KEY.match(key):
        raise InvalidInputError(
            f"tenant_key {key!r:.60} must be a plain payload key (letters, digits, '_' or '-'; "
            "no dots or brackets)"
        )
    if key in _RESERVED_KEYS:
        raise InvalidInputError(f"tenant_key {key!r} is a payload key the layouts use themselves")
    return key


def check_indexed_fields(fields: Any) -> tuple[tuple[str, str], ...]:
    """``indexed_fields=``: metadata field name -> index kind (:data:`INDEX_KINDS`), as sorted pairs."""
    if fields is None:
        return ()
    if not isinstance(fields, Mapping):
        raise InvalidTypeError(
            f"indexed_fields must be a dict of field name -> index kind, got {type(fields).__name__}"
        )
    out = []
    for name, kind in fields.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"indexed_fields: field names must be non-empty str, got {name!r}")
        if kind not in INDEX_KINDS:
            raise InvalidInputError(
                f"indexed_fields[{name!r}]: unknown index kind {kind!r}; known: {', '.join(INDEX_KINDS)}"
            )
        out.append((name, str(kind)))
    return tuple(sorted(out))


@dataclass(frozen=True)
class IndexSpec:
    """One payload index: the stored payload path, its kind and whether it is the tenant index."""

    key: str
    kind: str
    tenant: bool = False


def index_specs(layout: Layout, tenant_key: str | None, fields: Sequence[tuple[str, str]]) -> list[IndexSpec]:
    """The payload indexes of a collection: the tenant's (``is_tenant``) and the declared fields'."""
    specs = [IndexSpec(layout.tenant_path(tenant_key), "keyword", tenant=True)] if tenant_key else []
    specs.extend(IndexSpec(layout.payload_key(f"{METADATA_KEY}.{name}"), kind) for name, kind in fields)
    return specs


class TieredShards:
    """The tiered pattern's tenant-to-shard rule: large tenants on their own shard key, the rest shared.

    ``TieredShards({"acme": "acme"}, default="small")`` routes ``acme`` to the shard key
    ``acme`` and every other tenant to ``small`` (pass it as ``shard_key=``).
    """

    def __init__(self, large: Mapping[str, str], default: str = "shared") -> None:
        for tenant, key in large.items():
            if not isinstance(tenant, str) or not isinstance(key, str) or not key:
                raise InvalidInputError(f"TieredShards: {tenant!r} -> {key!r}: map str to non-empty str")
        if not isinstance(default, str) or not default:
            raise InvalidInputError("TieredShards: default must be a non-empty str")
        self.large = dict(large)
        self.default = default

    def __call__(self, tenant: str) -> str:
        return self.large.get(tenant, self.default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TieredShards) and (self.large, self.default) == (other.large, other.default)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.large.items())), self.default))

    def __repr__(self) -> str:
        return f"TieredShards({self.large!r}, default={self.default!r})"


def shard_key_of(rule: Any, tenant: str | _AllTenants | None) -> str | None:
    """The shard key a store's requests carry: ``shard_key`` itself, or its rule applied to the tenant."""
    if rule is None:
        return None
    if callable(rule):
        if not isinstance(tenant, str):
            raise InvalidInputError("a shard_key rule maps a tenant to its shard: it needs tenant=<id>")
        key = rule(tenant)
    else:
        key = rule
    if not isinstance(key, str) or not key:
        raise InvalidTypeError(f"shard_key must be a non-empty str (or a rule giving one), got {key!r:.60}")
    return key


class TenantScope:
    """The one place a store's ids, filters and payloads are scoped to its tenant (see the module doc).

    An unscoped scope (no ``tenant=``) passes everything through unchanged: the store's
    untenanted paths cost one attribute test.
    """

    def __init__(self, tenant: Any = None, key: Any = DEFAULT_TENANT_KEY) -> None:
        self.tenant = check_tenant(tenant)
        self.key = check_tenant_key(key)
        #: True for a store scoped to one tenant.
        self.scoped = isinstance(self.tenant, str)
        self._ns = uuid.UUID(uuid5_str(f"tenant\x00{self.tenant}")).bytes if self.scoped else b""
        self._conditions: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"TenantScope(tenant={self.tenant!r}, key={self.key!r})"

    @property
    def collection_key(self) -> str | None:
        """The tenant key a new collection of this store records (None: a collection without tenants)."""
        return self.key if self.scoped else None

    # -- opening ---------------------------------------------------------------

    def check_open(self, collection_key: str | None, where: str) -> None:
        """Refuse opening a collection whose tenancy does not match this store's."""
        if collection_key is None:
            if self.scoped:
                raise ModelMismatchError(
                    f"{where} was created without tenants (its points belong to no tenant); open it "
                    "without tenant=, or copy it into a tenanted collection (m3-hybrid migrate --tenant)"
                )
            return
        if self.tenant is None:
            raise InvalidInputError(
                f"{where} holds several tenants' data (tenant key {collection_key!r}); open it with "
                f"tenant=<tenant id>, or tenant=shared.ALL for the explicit cross-tenant view"
            )
        if collection_key != self.key:
            raise ModelMismatchError(
                f"{where} keeps its tenants under the payload key {collection_key!r}, not the "
                f"tenant_key={self.key!r} given"
            )

    def check_writable(self, collection_key: str | None) -> None:
        """Adds go to one tenant: a ``tenant=ALL`` store (on a tenanted collection) cannot add."""
        if self.tenant is ALL and collection_key is not None:
            raise InvalidInputError(
                "a tenant=ALL store reads, counts and deletes across tenants but cannot add: every "
                "point belongs to one tenant; add through a store opened with tenant=<tenant id>"
            )

    # -- writes ----------------------------------------------------------------

    def check_records(self, records: Sequence[Any], start: int = 0) -> None:
        """Refuse records whose metadata carries the tenant key (the store stamps the tenant itself)."""
        if self.tenant is None:
            return
        key = self.key
        for i, rec in enumerate(records):
            md = getattr(rec, "metadata", None)
            if isinstance(md, Mapping) and key in md:
                raise InvalidInputError(
                    f"record {start + i} (id {getattr(rec, 'id', None)!r:.60}): metadata field {key!r} "
                    f"is the tenant key; the store sets the tenant itself (tenant={self.tenant!r}), "
                    "rename the field"
                )

    def to_point(self, layout: Layout) -> Callable[..., tuple[str | int, dict[str, Any], dict[str, Any]]]:
        """``layout.to_point`` for this store: the tenant's point id, the tenant stamped in the payload."""
        if not self.scoped:
            return layout.to_point
        path = layout.tenant_path(self.key).split(".")
        tenant = self.tenant
        point_id = self.point_id

        def to_point(
            original_id: str, text: Any, metadata: Mapping[str, Any], ref_doc_id: Any, vectors: Any
        ) -> tuple[str | int, dict[str, Any], dict[str, Any]]:
            pid, stored, payload = layout.to_point(
                original_id, text, metadata, ref_doc_id, vectors, pid=point_id(original_id)
            )
            node = payload
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = tenant
            return pid, stored, payload

        return to_point

    def point_id(self, original_id: str) -> str:
        """The point id of (this tenant, ``original_id``): UUIDv5 in the tenant's own namespace."""
        if not isinstance(original_id, str):
            raise InvalidTypeError(f"ids must be str, got {type(original_id).__name__}: {original_id!r}")
        return uuid5_str(original_id, self._ns)

    def id_of(self, layout: Layout) -> Callable[[str], str | int]:
        """How the store maps a caller's id to a point id (the layout's own when unscoped)."""
        return self.point_id if self.scoped else layout.point_id

    # -- reads -----------------------------------------------------------------

    def condition(self, layout: Layout) -> models.FieldCondition:
        """The condition that holds for this tenant's points only (built once per layout)."""
        path = layout.tenant_path(self.key)
        cond = self._conditions.get(path)
        if cond is None:
            from qdrant_client import models

            assert isinstance(self.tenant, str)  # only a scoped store has a condition
            cond = models.FieldCondition(key=path, match=models.MatchValue(value=self.tenant))
            self._conditions[path] = cond
        return cond

    def restrict(self, flt: models.Filter | None, layout: Layout) -> models.Filter | None:
        """``flt`` (already in the collection's terms) AND this tenant's condition; as is when unscoped.

        A conjunction can only narrow: no ``should`` or ``must_not`` inside ``flt`` reaches
        another tenant's points.
        """
        if not self.scoped:
            return flt
        from qdrant_client import models

        must: list[Any] = [self.condition(layout)]
        if flt is not None:
            must.append(flt)
        return models.Filter(must=must)

    def ids_filter(self, pids: Sequence[str | int], layout: Layout) -> models.Filter | None:
        """This tenant's points among ``pids`` (a delete by id goes through it)."""
        from qdrant_client import models

        return self.restrict(models.Filter(must=[models.HasIdCondition(has_id=list(pids))]), layout)

    def owns(self, payload: Mapping[str, Any] | None, layout: Layout) -> bool:
        """Whether a point read back is this tenant's (always True when unscoped)."""
        if not self.scoped:
            return True
        node: Any = payload or {}
        for part in layout.tenant_path(self.key).split("."):
            if not isinstance(node, Mapping):
                return False
            node = node.get(part)
        return bool(node == self.tenant)

    def idf_corpus(self, layout: Layout) -> tuple[tuple[str, str], ...]:
        """The sparse IDF corpus of this store's queries: its tenant's points (empty: every point)."""
        if not self.scoped:
            return ()
        assert isinstance(self.tenant, str)
        return ((layout.tenant_path(self.key), self.tenant),)

    def strips_metadata(self, layout: Layout) -> bool:
        """Whether records read back carry the tenant field in their metadata (another framework's
        layout keeps it there), which :meth:`clean` removes."""
        return self.tenant is not None and (
            layout.tenant_path(self.key) != self.key or layout.metadata_key is None
        )

    def clean(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """A record's metadata without the tenant field (the caller never wrote it)."""
        if self.key in metadata:
            metadata = {k: v for k, v in metadata.items() if k != self.key}
        return metadata
