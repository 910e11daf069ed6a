"""Plain data types shared by encoders, the store and both framework adapters.

These are the contract between the modules of ``shared/``: encoders produce
:class:`EncodeResult`, the store consumes :class:`Record` and returns :class:`Hit`.
Nothing here imports torch, qdrant or any framework.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from typing_extensions import Unpack

TextKind = Literal["query", "document"]
Output = Literal["dense", "sparse", "colbert"]

#: A sparse vector: token id -> weight. Ids are Python ints, weights Python floats,
#: and zero weights are never present.
SparseDict = dict[int, float]

FloatArray = npt.NDArray[np.float32]


class EncodeOptions(TypedDict, total=False):
    """The keyword options of :meth:`Encoder.encode` (``**options: Unpack[EncodeOptions]``)."""

    #: What to compute, a subset of {"dense", "sparse", "colbert"} (None: all but ColBERT).
    outputs: Sequence[str] | None
    #: Texts per forward pass (None: the encoder's own).
    batch_size: int | None
    #: A progress bar (None: the encoder's own setting).
    show_progress: bool | None


@dataclass
class EncodeResult:
    """What one ``encode`` call returns, in the input order.

    ``dense`` is float32 ``[n, d]`` with unit-norm rows (after MRL truncation when
    configured); ``sparse`` holds one :data:`SparseDict` per text; ``colbert`` holds
    one float32 ``[tokens, d]`` array of unit-norm rows per text.  An output that
    was not requested is ``None``.
    """

    dense: FloatArray | None
    sparse: list[SparseDict] | None
    colbert: list[FloatArray] | None
    token_counts: list[int]
    truncated: list[bool]
    #: The instruction prefix that was prepended to every text ("" for none).
    prompt: str = ""

    def __len__(self) -> int:
        return len(self.token_counts)

    @property
    def num_truncated(self) -> int:
        return sum(self.truncated)


@dataclass(frozen=True)
class EncoderIdentity:
    """Everything about an encoder that changes the vectors it produces.

    A collection records this when it is created; opening it with an encoder whose
    identity differs is refused (the collection guard).
    """

    model_id: str
    #: sha256 of the model's config/weights file names and sizes for a local directory,
    #: or "" for a hub id (the id then pins the model).
    model_hash: str
    dense_dim: int | None
    truncate_dim: int | None
    query_prompt: str
    document_prompt: str
    #: "bge-m3", "splade" or None when the encoder makes no sparse vectors.
    sparse_kind: str | None
    #: The id of the sparse model when it differs from ``model_id`` (two-model setups).
    sparse_model_id: str | None = None
    colbert_dim: int | None = None
    distance: str = "cosine"
    #: Weight precision of the graph: "fp32", or "int8" for a quantized ONNX export (whose
    #: vectors differ from fp32, so it is another identity).  Left out of ``to_dict`` when
    #: "fp32", so identities recorded before this field existed still match.
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["precision"] == "fp32":
            del data["precision"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderIdentity:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def fingerprint(self) -> str:
        """A short stable hash of the identity, for logs and collection metadata."""
        raw = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def differences(self, other: EncoderIdentity) -> dict[str, tuple[Any, Any]]:
        """Fields that differ, as ``{name: (self_value, other_value)}``."""
        mine, theirs = asdict(self), asdict(other)
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


@runtime_checkable
class Encoder(Protocol):
    """The one interface every encoder implements (BGE-M3, dense-only, SPLADE, pairs)."""

    @property
    def identity(self) -> EncoderIdentity: ...

    @property
    def dense_dim(self) -> int | None:
        """Size of the dense vectors returned (after truncation), None if no dense output."""
        ...

    @property
    def outputs(self) -> frozenset[str]:
        """The outputs this encoder can produce: a subset of {"dense", "sparse", "colbert"}."""
        ...

    @property
    def forward_passes(self) -> int:
        """How many model forward passes (batches x models) this encoder has run."""
        ...

    def encode(
        self, texts: Sequence[str], kind: TextKind = "document", **options: Unpack[EncodeOptions]
    ) -> EncodeResult:
        """Encode ``texts``; ``outputs`` defaults to everything except colbert."""
        ...


@dataclass(frozen=True)
class ChunkOf:
    """Where a record's text sits in its document, for late chunking.

    ``document`` is the document's key (LlamaIndex's ``ref_doc_id``, a LangChain metadata
    value); ``start`` / ``end`` are character offsets in the document's text (end exclusive).
    """

    document: str
    start: int
    end: int


@dataclass
class Record:
    """One point to store.

    ``id`` is the caller's id as given (any string); vectors left ``None`` are
    computed by the store's encoder when it has one, from :attr:`text_to_embed`.
    """

    id: str
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ref_doc_id: str | None = None
    dense: Sequence[float] | FloatArray | None = None
    sparse: Mapping[int, float] | None = None
    colbert: FloatArray | Sequence[Sequence[float]] | None = None
    #: What the missing vectors are computed from when it differs from the stored ``text``
    #: (LlamaIndex embeds a node with its embed-visible metadata); None: ``text``.
    embed_text: str | None = None
    #: The record's place in its document: what late chunking groups and pools by.
    chunk_of: ChunkOf | None = None

    @property
    def text_to_embed(self) -> str | None:
        """The text the store's encoder embeds for this record."""
        return self.embed_text if self.embed_text is not None else self.text


#: Result metadata keys of what a query adds to a hit (:meth:`Hit.annotations`): a grouped
#: hit's group id (the ``group_by`` key's value), its parent's id and text (``with_parent``),
#: the text of the chunks around it joined by :data:`WINDOW_SEPARATOR` and their ids
#: (``context_window``; ``window`` is the key LlamaIndex's ``MetadataReplacementPostProcessor``
#: reads), and a parent's matched chunks (``unit="parent"``).
GROUP_ID_KEY = "group_id"
PARENT_ID_KEY = "parent_id"
PARENT_TEXT_KEY = "parent_text"
WINDOW_KEY = "window"
WINDOW_IDS_KEY = "window_ids"
CHILD_IDS_KEY = "child_ids"
ANNOTATION_KEYS = (GROUP_ID_KEY, PARENT_ID_KEY, PARENT_TEXT_KEY, WINDOW_KEY, WINDOW_IDS_KEY, CHILD_IDS_KEY)
WINDOW_SEPARATOR = "\n"


@dataclass
class Hit:
    """One search result; ``id`` is the caller's original id.

    ``score`` semantics depend on the mode: cosine similarity for dense, dot product
    for sparse, and for hybrid the fused score (rank-based for rrf, normalised for
    dbsf, the weighted similarity sum for m3).
    """

    id: str
    score: float
    text: str | None
    metadata: dict[str, Any]
    ref_doc_id: str | None = None
    dense: FloatArray | None = None
    sparse: SparseDict | None = None
    #: A grouped query (``group_by``): the group this hit was returned in (the key's value).
    group: str | int | None = None
    #: Read with the hit when the query asks (:mod:`shared.hierarchy`): its parent's record
    #: (``with_parent``; None when not stored), the chunks around it in position order, itself
    #: included (``context_window``), and for ``unit="parent"`` the chunks that matched.
    parent: Record | None = None
    window: list[Record] | None = None
    children: list[Hit] | None = None

    def annotations(self) -> dict[str, Any]:
        """What the query added to this hit, as the metadata entries both adapters return
        (:data:`ANNOTATION_KEYS`); empty for a plain query."""
        if self.group is None and self.parent is None and self.window is None and self.children is None:
            return {}
        out: dict[str, Any] = {}
        if self.group is not None:
            out[GROUP_ID_KEY] = self.group
        if self.parent is not None:
            out[PARENT_ID_KEY] = self.parent.id
            out[PARENT_TEXT_KEY] = self.parent.text
        if self.window is not None:
            out[WINDOW_KEY] = WINDOW_SEPARATOR.join(r.text or "" for r in self.window)
            out[WINDOW_IDS_KEY] = [r.id for r in self.window]
        if self.children is not None:
            out[CHILD_IDS_KEY] = [c.id for c in self.children]
        return out
