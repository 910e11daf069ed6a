"""Collection layouts: where a collection keeps its vectors, text, metadata and ids.

A layout is an object: one class per collection format, behind one small protocol
(:class:`Layout`): the point id of a caller's id (:meth:`Layout.point_id`), the stored
name of each canonical vector (:meth:`Layout.vector_name`), and a record's payload to
and from a stored point (:meth:`Layout.to_point`, :meth:`Layout.record`). The store works
in canonical names (vectors ``dense``/``sparse``, a record's id, text, metadata and
ref_doc_id) and never asks which format a collection is in; backends store and return
raw points.

* :class:`M3HybridLayout` (:data:`M3_HYBRID`): this package's own.
* :class:`LangChainLayout` (:func:`langchain_layout`, default :data:`LANGCHAIN`): langchain-qdrant 1.x.
* :class:`LlamaIndexLayout` (:func:`llama_index_layout`, defaults :data:`LLAMA_INDEX` with
  ``text-sparse-new`` and :data:`LLAMA_INDEX_OLD_SPARSE` with the old ``text-sparse``):
  llama-index-vector-stores-qdrant 0.10.x.

A collection written by another framework stays readable and writable by that framework.
Also here: :func:`get_layout` (a layout from a name), :class:`CollectionInfo` /
:func:`collection_info` / :func:`detect_layout` (the layout of an existing collection) and
:func:`convert_point` (a stored point from one layout to another; vectors are reused,
never re-encoded). The canonical names and payload keys live here too (:mod:`shared.schema`
re-exports them). Nothing here talks to Qdrant; every function is pure.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from .errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError

if TYPE_CHECKING:
    from .schema import CollectionSchema

#: Canonical vector names (this package's stored names too).
DENSE = "dense"
SPARSE = "sparse"
DENSE_MRL = "dense_mrl"
COLBERT = "colbert"
#: BM25 beside a learned sparse model (a second sparse vector, with the engine's IDF).
BM25 = "bm25"

#: Canonical payload keys. Caller metadata lives under ``metadata`` so filters address ``metadata.<key>``.
TEXT_KEY = "text"
METADATA_KEY = "metadata"
DOC_ID_KEY = "doc_id"
REF_DOC_ID_KEY = "ref_doc_id"

#: Namespace of the deterministic point ids; never change it (ids of existing collections depend on it).
POINT_ID_NAMESPACE = uuid.UUID("6a1c3f0e-2d5b-5b7e-9a44-3e0f8c1d2b7a")
_NAMESPACE_BYTES = POINT_ID_NAMESPACE.bytes


def uuid5_str(name: str, namespace: bytes = _NAMESPACE_BYTES) -> str:
    """``str(uuid.uuid5(POINT_ID_NAMESPACE, name))`` without building UUID objects (once per point).

    ``namespace``: another namespace's 16 bytes (a tenant's: :mod:`shared.tenancy`).
    """
    digest = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: Layout names.
M3_HYBRID_NAME = "m3-hybrid"
LANGCHAIN_NAME = "langchain"
LLAMA_INDEX_NAME = "llama-index"

#: langchain-qdrant 1.x defaults (``QdrantVectorStore``).
LANGCHAIN_SPARSE = "langchain-sparse"
LANGCHAIN_CONTENT_KEY = "page_content"
LANGCHAIN_METADATA_KEY = "metadata"

#: llama-index-vector-stores-qdrant 0.10.x names.
LLAMA_DENSE = "text-dense"
LLAMA_SPARSE = "text-sparse-new"
LLAMA_SPARSE_OLD = "text-sparse"
LLAMA_NODE_CONTENT = "_node_content"
LLAMA_NODE_TYPE = "_node_type"
#: llama-index keeps the node's ref_doc_id under these three keys ("None" when it has none).
LLAMA_REF_KEYS = ("document_id", "doc_id", "ref_doc_id")
LLAMA_TEXT_KEY = "text"


def _uuid5(original_id: str) -> str:
    return uuid5_str(original_id)


class StoredPoint(Protocol):
    """A point as a backend reads it back (:class:`shared.backends.base.ResultPoint`)."""

    @property
    def point_id(self) -> str | int: ...

    payload: dict[str, Any]
    vectors: dict[str, Any]


#: A record's metadata as given (copied into the payload, never kept).
Metadata = Mapping[str, Any]


class StoredParts(NamedTuple):
    """A record's canonical parts read back from a stored point.

    ``vectors`` use canonical names (``dense``, ``sparse``, ...), with the values as stored.
    """

    id: str
    text: str | None
    metadata: dict[str, Any]
    ref_doc_id: str | None
    vectors: dict[str, Any]


@dataclass(frozen=True)
class Layout:
    """Where one collection format keeps each part of a record (subclassed once per format).

    The protocol: :meth:`point_id`, :meth:`vector_name`, :meth:`to_point` and :meth:`record`
    (a record's payload to and from a stored point), :meth:`payload_key` (filters) and
    :meth:`check_backend` / :meth:`check_schema_options` (what the format can hold).

    * ``dense_vector`` / ``sparse_vector``: the vector names (``""`` = the unnamed dense
      vector; None = the layout has no such vector name configured).
    * ``text_key``: payload key of the text; ``metadata_key``: payload key of the metadata
      dict (None: the metadata is the payload's top level, as llama-index stores it).
    * ``id_key``: payload key of the caller's id (None: the id is the point id itself, or
      in ``node_content_key``); ``ref_doc_id_key``: payload key of the source document id.
    * ``node_content_key``: llama-index's JSON-serialised node (id, text, relationships).
    * ``native_ids``: point ids are the caller's ids (UUIDs or unsigned integers, as the
      other frameworks write them) instead of this package's UUIDv5 of the id.
    * ``extras``: vector kinds beyond dense/sparse the layout can hold (MRL copy, ColBERT).
    """

    name: str
    dense_vector: str | None
    sparse_vector: str | None
    text_key: str
    metadata_key: str | None
    id_key: str | None
    ref_doc_id_key: str | None
    node_content_key: str | None = None
    native_ids: bool = True
    extras: frozenset[str] = field(default_factory=frozenset)

    #: Subclasses by layout name (:meth:`from_dict`).
    _classes: ClassVar[dict[str, type[Layout]]] = {}

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name:
            Layout._classes[name] = cls

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (recorded in a foreign collection's guard)."""
        data = asdict(self)
        data["extras"] = sorted(self.extras)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        """The layout recorded by :meth:`to_dict` (its class from its name)."""
        known = set(Layout.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["extras"] = frozenset(values.get("extras") or ())
        kind = Layout._classes.get(str(values.get("name")))
        if kind is None:
            raise InvalidInputError(
                f"unknown layout {values.get('name')!r}; known: {sorted(Layout._classes)}"
            )
        return kind(**values)

    def guard_entry(self) -> dict[str, Any]:
        """What the collection's guard records about its layout (another framework's: all of it)."""
        return {"layout": self.to_dict()}

    def check_backend(self, *, embedded: bool) -> None:
        """Refuse a backend that cannot hold this format (another framework's needs qdrant-client)."""
        if embedded:
            raise InvalidInputError(
                f"layout {self.name!r} is for collections written through qdrant-client "
                "(url= or client=); the embedded store keeps m3-hybrid's layout"
            )

    @property
    def renames_vectors(self) -> bool:
        """Whether some canonical vector is stored under another name (query plans are renamed)."""
        return (self.dense_vector, self.sparse_vector) != (DENSE, SPARSE)

    @property
    def key_of(self) -> Callable[[str], str] | None:
        """:meth:`payload_key` for filters; None where every filter key is stored as written."""
        return self.payload_key

    @property
    def index_keys(self) -> tuple[str, ...]:
        """Payload keys a new collection indexes (the record id and the source document id)."""
        return (self.payload_key(DOC_ID_KEY), self.payload_key(REF_DOC_ID_KEY))

    def to_point(
        self,
        original_id: str,
        text: str | None,
        metadata: Mapping[str, Any],
        ref_doc_id: str | None,
        vectors: Mapping[str, Any],
        pid: str | int | None = None,
    ) -> tuple[str | int, dict[str, Any], dict[str, Any]]:
        """(point id, named vectors, payload) of a record in this layout.

        ``vectors`` use canonical names; a vector the layout cannot hold raises
        :class:`UnsupportedOperationError` (it is never dropped). ``pid``: the point id when
        it is not the layout's own (a tenant's, :mod:`shared.tenancy`).
        """
        stored_vectors = {self.vector_name(name): value for name, value in vectors.items()}
        if pid is None:
            pid = self.point_id(original_id)
        return pid, stored_vectors, self.payload(original_id, pid, text, metadata, ref_doc_id)

    def payload(
        self, original_id: str, pid: str | int, text: str | None, metadata: Metadata, ref_doc_id: str | None
    ) -> dict[str, Any]:
        """The stored payload of a record (point id ``pid``)."""
        raise NotImplementedError

    def record(self, point: StoredPoint) -> StoredParts:
        """A stored point's canonical parts (vectors of other names are left out)."""
        raise NotImplementedError

    def _parts(
        self, point: StoredPoint, stored_id: Any, text: Any, metadata: dict[str, Any], ref: Any
    ) -> StoredParts:
        """A foreign point's parts as read: a missing id is the point id; a text or source
        document id of another type than str is none."""
        return StoredParts(
            str(stored_id) if stored_id is not None else str(point.point_id),
            text if isinstance(text, str) else None,
            metadata,
            ref if isinstance(ref, str) else None,
            self._canonical_vectors(point.vectors),
        )

    def _canonical_vectors(self, vectors: Mapping[str, Any]) -> dict[str, Any]:
        canon: dict[str, Any] = {}
        for name, value in vectors.items():
            c = self.canonical_vector(name)
            if c is not None:
                canon[c] = value
        return canon

    def vector_name(self, canonical: str) -> str:
        """The stored name of the canonical vector ``canonical`` (``dense``, ``sparse``, ...)."""
        if canonical == DENSE and self.dense_vector is not None:
            return self.dense_vector
        if canonical == SPARSE and self.sparse_vector is not None:
            return self.sparse_vector
        if canonical in self.extras:
            return canonical
        raise UnsupportedOperationError(
            f"a {self.name} collection cannot hold {_KIND.get(canonical, canonical)} vectors"
        )

    def canonical_vector(self, stored: str) -> str | None:
        """The canonical name of the stored vector ``stored`` (None: not one of ours)."""
        if self.dense_vector is not None and stored == self.dense_vector:
            return DENSE
        if self.sparse_vector is not None and stored == self.sparse_vector:
            return SPARSE
        if stored in self.extras:
            return stored
        return None

    def payload_key(self, canonical: str) -> str:
        """The stored payload key of a canonical filter key.

        ``metadata.<k>`` -> where this layout keeps metadata key ``k``; ``ref_doc_id`` and
        ``doc_id`` -> this layout's keys; ``text`` -> its text key; any other key is kept.
        """
        if canonical == METADATA_KEY or canonical.startswith(METADATA_KEY + "."):
            rest = canonical[len(METADATA_KEY) + 1 :]
            if self.metadata_key is None:
                return rest or canonical
            return f"{self.metadata_key}.{rest}" if rest else self.metadata_key
        if canonical == REF_DOC_ID_KEY:
            if self.ref_doc_id_key is not None:
                return self.ref_doc_id_key
            return self.payload_key(f"{METADATA_KEY}.{REF_DOC_ID_KEY}")
        if canonical == DOC_ID_KEY and self.id_key is not None:
            return self.id_key
        if canonical == TEXT_KEY:
            return self.text_key
        return canonical

    def tenant_path(self, key: str) -> str:
        """The payload path of the tenant field ``key`` (:mod:`shared.tenancy`).

        Another framework's collection keeps it in its metadata section (where that framework's
        own filters look); this package's layout keeps it at the top level of the payload.
        """
        return self.payload_key(f"{METADATA_KEY}.{key}")

    def point_id(self, original_id: str) -> str | int:
        """The point id of a caller's id in this layout.

        This package's layout: the UUIDv5 of the id. A foreign layout keeps the id itself
        when Qdrant can (a UUID, in any spelling Qdrant accepts, or an unsigned integer,
        as langchain-qdrant and llama-index write them), else its UUIDv5.
        """
        if not isinstance(original_id, str):
            raise InvalidTypeError(f"ids must be str, got {type(original_id).__name__}: {original_id!r}")
        if not self.native_ids:
            return _uuid5(original_id)
        if original_id.isascii() and original_id.isdigit() and int(original_id) < 2**64:
            return int(original_id)
        try:
            return str(uuid.UUID(original_id))
        except ValueError:
            return _uuid5(original_id)

    def check_schema(self, schema: CollectionSchema) -> None:
        """Refuse a schema whose vectors this layout cannot hold (named, never dropped)."""
        self.check_schema_options(schema)
        if schema.has_dense and self.dense_vector is None:
            raise UnsupportedOperationError(f"this {self.name} collection has no dense vector")
        if schema.sparse and self.sparse_vector is None:
            raise UnsupportedOperationError(f"this {self.name} collection has no sparse vector")

    def check_schema_options(self, schema: CollectionSchema) -> None:
        """Refuse the store options this layout has no place for: the MRL funnel, ColBERT."""
        if schema.mrl_dim is not None and DENSE_MRL not in self.extras:
            raise UnsupportedOperationError(
                f"a {self.name} collection cannot hold the MRL funnel (mrl_dim={schema.mrl_dim}); "
                "use a collection in m3-hybrid's layout for it"
            )
        if schema.colbert and COLBERT not in self.extras:
            raise UnsupportedOperationError(
                f"a {self.name} collection cannot hold ColBERT vectors (colbert=True); "
                "use a collection in m3-hybrid's layout for them"
            )
        if schema.bm25 is not None and BM25 not in self.extras:
            raise UnsupportedOperationError(
                f"a {self.name} collection cannot hold BM25 beside its sparse vector (bm25=...); "
                "use a collection in m3-hybrid's layout for it"
            )


_KIND = {DENSE: "dense", SPARSE: "sparse", DENSE_MRL: "MRL funnel", COLBERT: "ColBERT", BM25: "BM25"}


@dataclass(frozen=True)
class M3HybridLayout(Layout, name=M3_HYBRID_NAME):
    """This package's layout: UUIDv5 point ids, ``text``/``metadata``/``doc_id``/``ref_doc_id``."""

    def guard_entry(self) -> dict[str, Any]:
        return {}  # the default: a guard without a layout entry

    def check_backend(self, *, embedded: bool) -> None:
        return None  # both backends hold it

    @property
    def renames_vectors(self) -> bool:
        return False

    @property
    def key_of(self) -> Callable[[str], str] | None:
        return None

    def tenant_path(self, key: str) -> str:
        return key  # beside the metadata, never in it: the caller's metadata stays the caller's

    def payload(
        self, original_id: str, pid: str | int, text: str | None, metadata: Metadata, ref_doc_id: str | None
    ) -> dict[str, Any]:
        return {
            TEXT_KEY: text,
            METADATA_KEY: dict(metadata),
            DOC_ID_KEY: original_id,
            REF_DOC_ID_KEY: ref_doc_id,
        }

    def record(self, point: StoredPoint) -> StoredParts:
        # The hot path of every query: the caller's id is in the payload (no point id built).
        p = point.payload
        doc_id = p.get(DOC_ID_KEY)
        return StoredParts(
            str(point.point_id) if doc_id is None else doc_id,
            p.get(TEXT_KEY),
            p.get(METADATA_KEY) or {},
            p.get(REF_DOC_ID_KEY),
            point.vectors,  # stored under the canonical names
        )


@dataclass(frozen=True)
class LangChainLayout(Layout, name=LANGCHAIN_NAME):
    """langchain-qdrant 1.x: the caller's id is the point id (else kept under ``doc_id``), text and
    metadata under its two payload keys, the source document id in the metadata."""

    def payload(
        self, original_id: str, pid: str | int, text: str | None, metadata: Metadata, ref_doc_id: str | None
    ) -> dict[str, Any]:
        assert self.metadata_key is not None
        md = dict(metadata)
        if ref_doc_id is not None:
            md.setdefault(REF_DOC_ID_KEY, ref_doc_id)
        # langchain-qdrant cannot read a document whose text is null: store "" there.
        payload: dict[str, Any] = {self.text_key: "" if text is None else text, self.metadata_key: md}
        if self.id_key is not None and str(pid) != original_id:
            payload[self.id_key] = original_id
        return payload

    def record(self, point: StoredPoint) -> StoredParts:
        payload = point.payload or {}
        metadata = payload.get(self.metadata_key) if self.metadata_key is not None else None
        metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
        raw_id = payload.get(self.id_key) if self.id_key is not None else None
        ref = metadata.get(REF_DOC_ID_KEY)
        return self._parts(point, raw_id, payload.get(self.text_key), metadata, ref)


@dataclass(frozen=True)
class LlamaIndexLayout(Layout, name=LLAMA_INDEX_NAME):
    """llama-index-vector-stores-qdrant 0.10.x: the node serialised under ``_node_content``, its
    metadata at the payload's top level, the source document id under three keys."""

    def payload(
        self, original_id: str, pid: str | int, text: str | None, metadata: Metadata, ref_doc_id: str | None
    ) -> dict[str, Any]:
        assert self.node_content_key is not None
        key = self.node_content_key
        payload = dict(metadata)
        content = payload.get(key)
        if isinstance(content, str):
            # A node serialised by llama-index (our LlamaIndex adapter keeps it in the metadata):
            # put the text back in, as llama-index's own store writes it (remove_text=False).
            try:
                node = json.loads(content)
            except ValueError:
                raise InvalidInputError(
                    f"record {original_id!r}: metadata[{key!r}] is not valid JSON"
                ) from None
            if isinstance(node, dict) and text is not None:
                node["text"] = text
                payload[key] = json.dumps(node, ensure_ascii=False)
        else:
            user = {k: v for k, v in payload.items() if k not in (key, LLAMA_NODE_TYPE, *LLAMA_REF_KEYS)}
            payload[key] = _node_json(original_id, text, user, ref_doc_id)
            payload[LLAMA_NODE_TYPE] = "TextNode"
        ref = ref_doc_id if ref_doc_id is not None else _none_str(payload.get("ref_doc_id"))
        for ref_key in LLAMA_REF_KEYS:
            payload[ref_key] = ref if ref is not None else "None"
        return payload

    def record(self, point: StoredPoint) -> StoredParts:
        assert self.node_content_key is not None
        payload = dict(point.payload or {})
        node: Any = None
        content = payload.get(self.node_content_key)
        if isinstance(content, str):
            try:
                node = json.loads(content)
            except ValueError:
                node = None
        if isinstance(node, dict):
            node_id = node.get("id_")
            text = node.get("text")
            if not text and isinstance(payload.get(self.text_key), str):
                text = payload[self.text_key]
        else:  # a legacy llama-index point: text under "text", metadata at the top level
            node_id, text = None, payload.get(self.text_key)
        ref = _none_str(payload.get(self.ref_doc_id_key)) if self.ref_doc_id_key else None
        # The whole payload is the record's metadata: it is what llama-index's own readers
        # (and this package's LlamaIndex adapter) rebuild the node from.
        return self._parts(point, node_id, text, payload, ref)

    def user_metadata(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The node's own metadata out of a record read back (without llama-index's keys)."""
        assert self.node_content_key is not None
        drop = (self.node_content_key, LLAMA_NODE_TYPE, *LLAMA_REF_KEYS)
        return {k: v for k, v in metadata.items() if k not in drop}


#: This package's own layout.
M3_HYBRID = M3HybridLayout(
    name=M3_HYBRID_NAME,
    dense_vector=DENSE,
    sparse_vector=SPARSE,
    text_key=TEXT_KEY,
    metadata_key=METADATA_KEY,
    id_key=DOC_ID_KEY,
    ref_doc_id_key=REF_DOC_ID_KEY,
    native_ids=False,
    extras=frozenset({DENSE_MRL, COLBERT, BM25}),
)


def langchain_layout(
    vector_name: str = "",
    sparse_vector_name: str = LANGCHAIN_SPARSE,
    content_payload_key: str = LANGCHAIN_CONTENT_KEY,
    metadata_payload_key: str = LANGCHAIN_METADATA_KEY,
) -> Layout:
    """langchain-qdrant 1.x's layout with its keyword names (defaults as in ``QdrantVectorStore``).

    The caller's id is the point id; an id that is not a UUID or unsigned integer is kept
    under ``doc_id`` next to langchain's keys (langchain-qdrant ignores that key).
    """
    for name, value in (
        ("vector_name", vector_name),
        ("sparse_vector_name", sparse_vector_name),
        ("content_payload_key", content_payload_key),
        ("metadata_payload_key", metadata_payload_key),
    ):
        if not isinstance(value, str):
            raise InvalidTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not content_payload_key or not metadata_payload_key:
        raise InvalidInputError("content_payload_key and metadata_payload_key must be non-empty")
    if content_payload_key == metadata_payload_key:
        raise InvalidInputError(
            f"content_payload_key and metadata_payload_key are both {content_payload_key!r}"
        )
    return LangChainLayout(
        name=LANGCHAIN_NAME,
        dense_vector=vector_name,
        sparse_vector=sparse_vector_name or None,
        text_key=content_payload_key,
        metadata_key=metadata_payload_key,
        id_key=DOC_ID_KEY,
        ref_doc_id_key=None,  # kept in the metadata (``metadata.ref_doc_id``)
    )


def llama_index_layout(
    dense_vector_name: str = LLAMA_DENSE, sparse_vector_name: str = LLAMA_SPARSE
) -> Layout:
    """llama-index-vector-stores-qdrant 0.10.x's layout (``""``: its unnamed, non-hybrid dense vector)."""
    return LlamaIndexLayout(
        name=LLAMA_INDEX_NAME,
        dense_vector=dense_vector_name,
        sparse_vector=sparse_vector_name or None,
        text_key=LLAMA_TEXT_KEY,
        metadata_key=None,
        id_key=None,
        ref_doc_id_key="doc_id",  # what llama-index filters and deletes on
        node_content_key=LLAMA_NODE_CONTENT,
    )


LANGCHAIN = langchain_layout()
LLAMA_INDEX = llama_index_layout()
LLAMA_INDEX_OLD_SPARSE = llama_index_layout(sparse_vector_name=LLAMA_SPARSE_OLD)

_BY_NAME = {M3_HYBRID_NAME: M3_HYBRID, LANGCHAIN_NAME: LANGCHAIN, LLAMA_INDEX_NAME: LLAMA_INDEX}


def get_layout(value: str | Layout) -> Layout:
    """A :class:`Layout` from itself or a layout name (``m3-hybrid``, ``langchain``, ``llama-index``)."""
    if isinstance(value, Layout):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-")
        aliases = {
            "ours": M3_HYBRID_NAME,
            "m3hybrid": M3_HYBRID_NAME,
            "langchain-qdrant": LANGCHAIN_NAME,
            "llamaindex": LLAMA_INDEX_NAME,
            "llama-index-vector-stores-qdrant": LLAMA_INDEX_NAME,
        }
        key = aliases.get(key, key)
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise InvalidInputError(f"unknown layout {value!r}; known: {sorted(_BY_NAME)}")
    raise InvalidTypeError(f"layout must be a str or a shared.layouts.Layout, got {type(value).__name__}")


# ---------------------------------------------------------------------------
# describing and detecting
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection says about itself, in neutral terms.

    ``dense``: vector name (``""`` unnamed) -> size; ``distances``: name -> distance
    (lower-case, e.g. ``"cosine"``); ``multivector``: names of multivectors; ``sparse``:
    sparse name -> True when it has the IDF modifier; ``guard``: this package's guard
    record (None when absent); ``sample_payload``: one stored point's payload (None: empty).
    """

    dense: dict[str, int]
    sparse: dict[str, bool]
    distances: dict[str, str] = field(default_factory=dict)
    multivector: frozenset[str] = frozenset()
    guard: dict[str, Any] | None = None
    sample_payload: dict[str, Any] | None = None


def collection_info(
    info: Any, sample_payload: Mapping[str, Any] | None = None, guard_key: str = "m3_hybrid"
) -> CollectionInfo:
    """A :class:`CollectionInfo` from qdrant-client's ``get_collection`` answer."""
    params = info.config.params
    vectors = params.vectors
    dense: dict[str, int] = {}
    distances: dict[str, str] = {}
    multi: set[str] = set()
    items: list[tuple[str, Any]]
    if vectors is None:
        items = []
    elif isinstance(vectors, Mapping):
        items = list(vectors.items())
    else:
        items = [("", vectors)]
    for name, vp in items:
        dense[name] = int(vp.size)
        distance = getattr(vp, "distance", None)
        distances[name] = str(getattr(distance, "value", distance)).lower()
        if getattr(vp, "multivector_config", None) is not None:
            multi.add(name)
    sparse = {
        name: getattr(getattr(sp, "modifier", None), "value", None) == "idf"
        for name, sp in (params.sparse_vectors or {}).items()
    }
    metadata = getattr(info.config, "metadata", None) or {}
    guard = metadata.get(guard_key)
    return CollectionInfo(
        dense=dense,
        sparse=sparse,
        distances=distances,
        multivector=frozenset(multi),
        guard=dict(guard) if isinstance(guard, Mapping) else None,
        sample_payload=dict(sample_payload) if sample_payload is not None else None,
    )


def detect_layout(info: CollectionInfo, where: str = "the collection") -> Layout:
    """The layout of an existing collection, from its vector names and a sample payload.

    A guard record -> the layout it records (:data:`M3_HYBRID` here; the store reads it from
    the guard). Otherwise the sample payload decides: ``_node_content`` -> llama-index's layout,
    ``page_content`` -> langchain-qdrant's, this package's keys -> ours; a payload of one text
    and one metadata entry in a collection with at most one dense and one sparse vector ->
    langchain-qdrant's with those keys as ``content_payload_key`` / ``metadata_payload_key``.
    An empty collection goes by its vector names (``text-dense`` / ``text-sparse-new`` /
    ``text-sparse``: llama-index; ``langchain-sparse`` or only an unnamed dense vector:
    langchain-qdrant; ``dense`` / ``sparse``: ours). Anything else raises InvalidInputError.
    """
    dense_names = [n for n in info.dense if n not in info.multivector]
    sparse_names = list(info.sparse)
    payload = info.sample_payload or {}
    if info.guard is not None:
        return M3_HYBRID

    def one_dense(preferred: str | None = None) -> str:
        if preferred is not None and preferred in dense_names:
            return preferred
        if len(dense_names) == 1:
            return dense_names[0]
        if not dense_names:
            return ""  # no dense vector configured: the name is never used
        raise InvalidInputError(
            f"cannot tell which dense vector of {where} to use ({sorted(dense_names)}); pass layout="
        )

    def one_sparse(preferred: tuple[str, ...]) -> str:
        for name in preferred:
            if name in sparse_names:
                return name
        if len(sparse_names) == 1:
            return sparse_names[0]
        if not sparse_names:
            return preferred[0]
        raise InvalidInputError(
            f"cannot tell which sparse vector of {where} to use ({sorted(sparse_names)}); pass layout="
        )

    # A stored payload says most; vector names decide for an empty collection.
    if LLAMA_NODE_CONTENT in payload or (
        not payload
        and (LLAMA_DENSE in dense_names or LLAMA_SPARSE in sparse_names or LLAMA_SPARSE_OLD in sparse_names)
    ):
        return llama_index_layout(one_dense(LLAMA_DENSE), one_sparse((LLAMA_SPARSE, LLAMA_SPARSE_OLD)))
    if LANGCHAIN_CONTENT_KEY in payload or (not payload and LANGCHAIN_SPARSE in sparse_names):
        return langchain_layout(one_dense(""), one_sparse((LANGCHAIN_SPARSE,)))
    ours = (
        {TEXT_KEY, METADATA_KEY, DOC_ID_KEY} <= set(payload)
        if payload
        else (DENSE in dense_names or SPARSE in sparse_names)
    )
    if ours:
        return M3_HYBRID
    if payload and len(dense_names) <= 1 and len(sparse_names) <= 1:
        # langchain-qdrant with its own content_payload_key / metadata_payload_key (and maybe
        # its own vector names): one text and one metadata entry (plus the doc_id we may add).
        texts = [k for k, v in payload.items() if isinstance(v, str) and k != DOC_ID_KEY]
        metas = [k for k, v in payload.items() if v is None or isinstance(v, Mapping)]
        if len(texts) == 1 and len(metas) == 1 and len(payload) <= 3:
            return langchain_layout(one_dense(""), one_sparse((LANGCHAIN_SPARSE,)), texts[0], metas[0])
    if not payload and dense_names == [""] and not sparse_names:
        return LANGCHAIN  # the only unnamed-vector layout that can be told from nothing
    raise InvalidInputError(
        f"cannot tell the layout of {where} (dense vectors {sorted(dense_names)}, sparse vectors "
        f"{sorted(sparse_names)}, payload keys {sorted(payload)[:8]}); pass layout= "
        "(shared.layouts.langchain_layout(...) / llama_index_layout(...))"
    )


def schema_fields(info: CollectionInfo, layout: Layout) -> dict[str, Any]:
    """What a collection's vector config says about its schema: ``dense_dim``, ``sparse``,
    ``sparse_idf``, ``distance`` (for a collection without a guard record)."""
    dense_dim = info.dense.get(layout.dense_vector) if layout.dense_vector is not None else None
    sparse = layout.sparse_vector is not None and layout.sparse_vector in info.sparse
    distance = info.distances.get(layout.dense_vector or "", "cosine") if dense_dim is not None else "cosine"
    return {
        "dense_dim": dense_dim,
        "sparse": sparse,
        "sparse_idf": bool(sparse and info.sparse.get(layout.sparse_vector or "", False)),
        "distance": distance,
    }


# ---------------------------------------------------------------------------
# converting points
# ---------------------------------------------------------------------------


def _none_str(value: Any) -> str | None:
    # llama-index writes the string "None" for a node without a source document.
    return None if value is None or value == "None" else str(value)


def _node_json(node_id: str, text: str | None, metadata: Mapping[str, Any], ref_doc_id: str | None) -> str:
    """A llama-index ``TextNode`` serialised as ``node_to_metadata_dict`` does (points it did not write)."""
    relationships: dict[str, Any] = {}
    if ref_doc_id is not None:
        # NodeRelationship.SOURCE = "1", ObjectType.DOCUMENT = "4".
        relationships["1"] = {
            "node_id": ref_doc_id,
            "node_type": "4",
            "metadata": {},
            "hash": None,
            "class_name": "RelatedNodeInfo",
        }
    node: dict[str, Any] = {
        "id_": node_id,
        "embedding": None,
        "metadata": dict(metadata),
        "excluded_embed_metadata_keys": [],
        "excluded_llm_metadata_keys": [],
        "relationships": relationships,
        "text": text or "",
        "mimetype": "text/plain",
        "start_char_idx": None,
        "end_char_idx": None,
        "metadata_template": "{key}: {value}",
        "metadata_separator": "\n",
        "text_template": "{metadata_str}\n\n{content}",
        "class_name": "TextNode",
    }
    return json.dumps(node, ensure_ascii=False)


class _Read:
    """A stored point given by its parts (:meth:`Layout.record` reads points)."""

    __slots__ = ("payload", "point_id", "vectors")

    def __init__(
        self, point_id: str | int, vectors: Mapping[str, Any] | None, payload: Mapping[str, Any] | None
    ):
        self.point_id = point_id
        self.vectors = dict(vectors or {})
        self.payload = dict(payload or {})


def convert_point(
    point_id: str | int,
    vectors: Mapping[str, Any] | None,
    payload: Mapping[str, Any] | None,
    source: Layout,
    target: Layout = M3_HYBRID,
    to_point: Callable[..., tuple[str | int, dict[str, Any], dict[str, Any]]] | None = None,
) -> tuple[str | int, dict[str, Any], dict[str, Any]]:
    """A stored point of layout ``source`` as (point id, named vectors, payload) of ``target``.

    The vectors are moved as they are (renamed, never re-encoded); vectors of names the
    source layout does not know are left out. The caller's id is kept, so ids
    given to the other framework still find the point. ``to_point``: how the target
    builds the point (default ``target.to_point``; a tenant's: :mod:`shared.tenancy`).
    """
    parts = source.record(_Read(point_id, vectors, payload))
    metadata = parts.metadata
    if isinstance(source, LlamaIndexLayout) and isinstance(target, LangChainLayout):
        # llama-index -> langchain: only the node's own metadata is the user's.
        metadata = source.user_metadata(metadata)
    build = to_point if to_point is not None else target.to_point
    return build(parts.id, parts.text, metadata, parts.ref_doc_id, parts.vectors)
