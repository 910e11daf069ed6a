"""Collection layout shared by both backends: vector names, payload, point ids, guard.

A :class:`CollectionSchema` is built from an encoder identity plus store options
and fully describes the named vectors of a collection. Its :meth:`guard_dict` is
what a collection records when it is created, and :meth:`check_guard` compares a
recorded guard with the schema a store is opened with (the collection guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InvalidInputError, InvalidTypeError, ModelMismatchError

# The canonical names live with the layouts that map them (re-exported here).
from .layouts import (
    BM25,
    COLBERT,
    DENSE,
    DENSE_MRL,
    DOC_ID_KEY,
    M3_HYBRID,
    METADATA_KEY,
    POINT_ID_NAMESPACE,
    REF_DOC_ID_KEY,
    SPARSE,
    TEXT_KEY,
    Layout,
    uuid5_str,
)
from .quantization import QuantizationPreset, get_preset, validate_sparse_datatype
from .types import EncoderIdentity

#: Version of the guard record layout.
GUARD_FORMAT = 1

#: Guard fields that change what vectors mean or their shape: a difference refuses the open.
SHAPE_FIELDS = (
    "dense_dim",
    "sparse",
    "sparse_idf",
    "colbert",
    "colbert_dim",
    "mrl_dim",
    "distance",
    "bm25",
)


#: Longest collection name, in UTF-8 bytes (a directory name on the embedded store; Qdrant's limit).
MAX_COLLECTION_NAME_BYTES = 255


def validate_collection_name(name: object) -> str:
    """``name`` if it is a usable collection name on both backends, else InvalidInputError.

    The embedded store uses it as a directory name under ``path`` and qdrant-client
    local mode does too, so anything that could leave that directory or is not a
    portable file name is refused: path separators, ``.``/``..``, NUL and other
    control characters, more than 255 bytes.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"collection_name must be a non-empty str, got {name!r}")
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise InvalidInputError(
            f"collection_name {name!r:.80} contains {', '.join(map(repr, bad))} "
            "(path separators and control characters are not allowed)"
        )
    if name in (".", ".."):
        raise InvalidInputError(f"collection_name {name!r} is not allowed (it names a directory itself)")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(f"collection_name {name!r:.80} is not valid Unicode text") from None
    if size > MAX_COLLECTION_NAME_BYTES:
        raise InvalidInputError(
            f"collection_name is {size} bytes long in UTF-8; at most {MAX_COLLECTION_NAME_BYTES} are allowed"
        )
    return name


def point_id(original_id: str) -> str:
    """The deterministic Qdrant point id (UUIDv5 string) of a caller's id."""
    if not isinstance(original_id, str):
        raise InvalidTypeError(f"ids must be str, got {type(original_id).__name__}: {original_id!r}")
    return uuid5_str(original_id)


@dataclass(frozen=True)
class CollectionSchema:
    """Named vectors and storage options of one collection.

    ``dense_dim`` None means the collection has no dense vector (sparse-only) or,
    while :attr:`complete` is False, that the size is learned from the first add.
    """

    dense_dim: int | None = None
    sparse: bool = True
    sparse_idf: bool = False
    sparse_datatype: str = "float32"
    colbert: bool = False
    colbert_dim: int | None = None
    mrl_dim: int | None = None
    mrl_quantization: QuantizationPreset = field(default_factory=lambda: get_preset("binary"))
    quantization: QuantizationPreset = field(default_factory=lambda: get_preset("none"))
    on_disk: bool = False
    distance: str = "cosine"
    identity: EncoderIdentity | None = None
    #: False while a size is still unknown (no encoder, no dense_dim, no add yet).
    complete: bool = True
    #: Where the collection keeps vectors and payload (:mod:`shared.layouts`); None: this package's.
    layout: Layout | None = None
    #: Whether its chunks were late-chunked (a writer must do the same: no mixed collection).
    late_chunking: bool = False
    #: BM25 beside the learned sparse vector: the BM25 encoder's parameters
    #: (``Bm25Encoder.config()``), kept in the ``bm25`` sparse vector with the IDF modifier;
    #: None: no BM25 signal.
    bm25: Mapping[str, Any] | None = field(default=None, hash=False)
    #: The payload key that says whose each point is, in a collection shared by tenants
    #: (:mod:`shared.tenancy`); None: a collection without tenants.
    tenant_key: str | None = None

    def __post_init__(self) -> None:
        for name in ("dense_dim", "colbert_dim", "mrl_dim"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
        validate_sparse_datatype(self.sparse_datatype)
        if self.mrl_dim is not None and self.dense_dim is not None and self.mrl_dim >= self.dense_dim:
            raise InvalidInputError(
                f"mrl_dim ({self.mrl_dim}) must be smaller than the dense size ({self.dense_dim})"
            )
        if self.distance != "cosine":
            raise InvalidInputError(f"only cosine distance is supported, got {self.distance!r}")
        if self.bm25 is not None and not self.sparse:
            raise InvalidInputError(
                "bm25 adds BM25 beside a learned sparse model, and this store has none; for dense + "
                "BM25 make BM25 the sparse model (sparse_model='bm25', or a Bm25Encoder as the sparse "
                "embedding)"
            )

    @classmethod
    def build(
        cls,
        identity: EncoderIdentity | None = None,
        *,
        dense_dim: int | None = None,
        sparse: bool | None = None,
        sparse_idf: bool = False,
        sparse_datatype: str = "float32",
        colbert: bool = False,
        colbert_dim: int | None = None,
        mrl_dim: int | None = None,
        mrl_quantization: str | QuantizationPreset | Any = "binary",
        quantization: str | QuantizationPreset | Any = "none",
        on_disk: bool = False,
        late_chunking: bool = False,
        bm25: Mapping[str, Any] | None = None,
    ) -> CollectionSchema:
        """Schema from an encoder identity (may be None) and the store options."""
        if identity is not None:
            enc_dim = identity.truncate_dim or identity.dense_dim
            if dense_dim is not None and enc_dim is not None and dense_dim != enc_dim:
                raise InvalidInputError(
                    f"dense_dim={dense_dim} contradicts the encoder's dense size {enc_dim}"
                )
            dense_dim = dense_dim or enc_dim
            if sparse is None:
                sparse = identity.sparse_kind is not None
            if colbert:
                colbert_dim = colbert_dim or identity.colbert_dim
            # An encoder without dense output (e.g. SPLADE only) leaves the dense size to the
            # data: the first add decides (dense vectors given by the caller, or none at all).
            complete = dense_dim is not None and (not colbert or colbert_dim is not None)
        else:
            if sparse is None:
                sparse = True
            complete = dense_dim is not None and (not colbert or colbert_dim is not None)
        return cls(
            dense_dim=dense_dim,
            sparse=bool(sparse),
            sparse_idf=sparse_idf,
            sparse_datatype=sparse_datatype,
            colbert=colbert,
            colbert_dim=colbert_dim if colbert else None,
            mrl_dim=mrl_dim,
            mrl_quantization=get_preset(mrl_quantization),
            quantization=get_preset(quantization),
            on_disk=on_disk,
            identity=identity,
            complete=complete,
            late_chunking=late_chunking,
            bm25=bm25,
        )

    def with_sizes(self, dense_dim: int | None, colbert_dim: int | None) -> CollectionSchema:
        """The completed schema once the first add has shown the vector sizes."""
        return replace(
            self,
            dense_dim=self.dense_dim if self.dense_dim is not None else dense_dim,
            colbert_dim=self.colbert_dim if self.colbert_dim is not None else colbert_dim,
            complete=True,
        )

    @property
    def stored_layout(self) -> Layout:
        """The collection's layout (:data:`shared.layouts.M3_HYBRID` unless another one is set)."""
        return self.layout if self.layout is not None else M3_HYBRID

    @property
    def has_dense(self) -> bool:
        return self.dense_dim is not None

    @property
    def vector_names(self) -> tuple[str, ...]:
        names = []
        if self.has_dense:
            names.append(DENSE)
            if self.mrl_dim is not None:
                names.append(DENSE_MRL)
        if self.sparse:
            names.append(SPARSE)
        if self.bm25 is not None:
            names.append(BM25)
        if self.colbert:
            names.append(COLBERT)
        return tuple(names)

    def guard_dict(self) -> dict[str, Any]:
        """What a collection records about how it was built (JSON-serialisable)."""
        return {
            "format": GUARD_FORMAT,
            "identity": self.identity.to_dict() if self.identity is not None else None,
            "schema": {
                "dense_dim": self.dense_dim,
                "sparse": self.sparse,
                "sparse_idf": self.sparse_idf,
                "sparse_datatype": self.sparse_datatype,
                "colbert": self.colbert,
                "colbert_dim": self.colbert_dim,
                "mrl_dim": self.mrl_dim,
                "mrl_quantization": self.mrl_quantization.to_dict(),
                "quantization": self.quantization.to_dict(),
                "on_disk": self.on_disk,
                "distance": self.distance,
                # Only when on: guards written before late chunking existed read as off.
                **({"late_chunking": True} if self.late_chunking else {}),
                **({"bm25": dict(self.bm25)} if self.bm25 is not None else {}),
            },
            **self.stored_layout.guard_entry(),
            # Only in a tenanted collection's guard: others keep the record they always had.
            **({"tenancy": {"key": self.tenant_key}} if self.tenant_key is not None else {}),
        }

    @classmethod
    def from_guard(cls, guard: Mapping[str, Any]) -> CollectionSchema:
        """The schema a collection was created with, from its recorded guard."""
        s = guard["schema"]
        ident = guard.get("identity")
        return cls(
            dense_dim=s["dense_dim"],
            sparse=s["sparse"],
            sparse_idf=s["sparse_idf"],
            sparse_datatype=s.get("sparse_datatype", "float32"),
            colbert=s["colbert"],
            colbert_dim=s["colbert_dim"],
            mrl_dim=s["mrl_dim"],
            mrl_quantization=QuantizationPreset.from_dict(s["mrl_quantization"]),
            quantization=QuantizationPreset.from_dict(s["quantization"]),
            on_disk=s.get("on_disk", False),
            distance=s.get("distance", "cosine"),
            identity=EncoderIdentity.from_dict(ident) if ident is not None else None,
            complete=True,
            layout=_layout_from_guard(guard),
            late_chunking=bool(s.get("late_chunking", False)),
            bm25=s.get("bm25"),
            tenant_key=_tenant_key_from_guard(guard),
        )

    def check_guard(
        self, guard: Mapping[str, Any], where: str, *, loose: frozenset[str] = frozenset()
    ) -> dict[str, tuple[Any, Any]]:
        """Refuse a collection built differently; return the storage-only differences.

        Raises :class:`ModelMismatchError` listing every differing encoder or vector
        field. Fields left unknown on our side (no encoder, size learned later) are
        not compared. Storage options (quantization, on_disk) may differ: the
        collection's own settings win, and the differences are returned for a warning.
        ``loose`` names shape fields the caller left at their default (not compared).
        """
        if guard.get("format") != GUARD_FORMAT or "schema" not in guard:
            # Never advise dropping it: it holds the user's data.
            raise ModelMismatchError(
                f"{where} has no guard record this version of m3-hybrid can read "
                f"(format {guard.get('format')!r}); it was left untouched"
            )
        stored = guard["schema"]
        mine = self.guard_dict()
        diffs: dict[str, tuple[Any, Any]] = {}
        stored_ident = guard.get("identity")
        if self.identity is not None and stored_ident is not None:
            other = EncoderIdentity.from_dict(stored_ident)
            for key, (ours, theirs) in self.identity.differences(other).items():
                diffs[f"identity.{key}"] = (theirs, ours)
        for key in SHAPE_FIELDS:
            ours = mine["schema"].get(key)
            if key in ("dense_dim", "colbert_dim") and ours is None and not self.complete:
                continue
            if key in loose:
                continue
            if stored.get(key) != ours:
                diffs[key] = (stored.get(key), ours)
        if diffs:
            listed = "; ".join(f"{k}: collection has {a!r}, store asks {b!r}" for k, (a, b) in diffs.items())
            raise ModelMismatchError(
                f"{where} was built with a different encoder or vector layout ({listed}); "
                "open it with the encoder that built it, or write to another collection "
                "(this one is left as it is)"
            )
        storage: dict[str, tuple[Any, Any]] = {}
        for key in ("quantization", "mrl_quantization", "on_disk", "sparse_datatype"):
            if stored.get(key) != mine["schema"][key]:
                storage[key] = (stored.get(key), mine["schema"][key])
        return storage

    def check_writer(self, late_chunking: bool, where: str) -> None:
        """Refuse a writer whose chunking differs from the collection's (no mixed collection)."""
        if late_chunking != self.late_chunking:
            how = {True: "late-chunked", False: "chunked normally (each chunk encoded alone)"}
            raise ModelMismatchError(
                f"{where} holds chunks {how[self.late_chunking]}; this store writes them "
                f"{how[late_chunking]}: open it with late_chunking={self.late_chunking}, or write to "
                "another collection (a collection never mixes the two)"
            )


def _tenant_key_from_guard(guard: Mapping[str, Any]) -> str | None:
    tenancy = guard.get("tenancy")
    if not isinstance(tenancy, Mapping):
        return None
    key = tenancy.get("key")
    return key if isinstance(key, str) else None


def _layout_from_guard(guard: Mapping[str, Any]) -> Layout | None:
    data = guard.get("layout")
    if not isinstance(data, Mapping):
        return None
    return Layout.from_dict(data)


__all__ = [
    "BM25",
    "COLBERT",
    "DENSE",
    "DENSE_MRL",
    "DOC_ID_KEY",
    "METADATA_KEY",
    "POINT_ID_NAMESPACE",
    "REF_DOC_ID_KEY",
    "SPARSE",
    "TEXT_KEY",
    "CollectionSchema",
    "point_id",
    "uuid5_str",
    "validate_collection_name",
]
