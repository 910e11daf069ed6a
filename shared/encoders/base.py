"""What every encoder shares: input validation, the result cache, prompts, MRL
truncation, NaN checks and the truncation warning.

Subclasses implement one method, :meth:`BaseEncoder._compute`, which turns a list of
unique, uncached texts into per-text :class:`Entry` objects; everything else (input
order, duplicates, caching, which outputs to return) lives here once.
"""

from __future__ import annotations

import math
import threading
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Unpack

import numpy as np

from ..errors import InvalidInputError, UnsupportedOperationError
from ..mrl import truncate, validate_truncate_dim
from ..readonly import ReadOnly
from ..types import EncodeResult, EncoderIdentity, FloatArray, SparseDict, TextKind
from ..validation import text_list
from .config import EncoderConfig, EncoderOptions, check_batch_size, encoder_option_default

__all__ = [
    "ALL_OUTPUTS",
    "BaseEncoder",
    "Entry",
    "LRUCache",
    "ModelEncoder",
    "ModelShape",
    "TruncationWarning",
]

ALL_OUTPUTS = frozenset({"dense", "sparse", "colbert"})
_KINDS = ("query", "document")


class TruncationWarning(UserWarning):
    """Some texts were longer than ``max_length`` tokens and were cut."""


@dataclass
class Entry:
    """The outputs computed for one text (before MRL truncation when from ``_compute``)."""

    dense: FloatArray | None
    sparse: SparseDict | None
    colbert: FloatArray | None
    token_count: int
    truncated: bool


class LRUCache:
    """A small thread-safe LRU map; ``maxsize <= 0`` disables it."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Any, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Entry | None:
        if self.maxsize <= 0:  # disabled: nothing to look up (and no lock to take)
            return None
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Any, entry: Entry) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = int(maxsize)
            while len(self._data) > max(self.maxsize, 0):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


#: The texts check of every encoder (kept under this name for callers).
validate_texts = text_list


def _check_finite(entry: Entry, where: str) -> None:
    bad = (entry.dense is not None and not np.isfinite(entry.dense).all()) or (
        entry.colbert is not None and not np.isfinite(entry.colbert).all()
    )
    if not bad and entry.sparse:
        # Builtins: a query's few weights cost less than a numpy round trip.
        bad = not all(map(math.isfinite, entry.sparse.values()))
    if bad:
        raise InvalidInputError(
            f"the model produced NaN or inf for {where}; the text or the model weights are "
            "not usable (try fp16=False)"
        )


class BaseEncoder(ABC):
    """Shared machinery of all encoders (see the module docstring).

    Subclasses set ``_outputs``, ``_full_dim``, ``_identity`` (via
    :meth:`_make_identity`), and implement :meth:`_compute`.
    """

    _outputs: frozenset[str]
    _full_dim: int | None
    _identity: EncoderIdentity
    #: Whether all outputs come from one forward pass (then computed together and cached).
    _computes_together: bool = True

    def __init__(
        self,
        *,
        query_prompt: str = "",
        document_prompt: str = "",
        batch_size: int = 32,
        show_progress: bool = True,
        cache_size: int = 1024,
    ) -> None:
        EncoderConfig(batch_size=batch_size, cache_size=cache_size)  # the options' one check
        self._prompts = {"query": query_prompt, "document": document_prompt}
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._cache = LRUCache(cache_size)
        self._truncate_dim: int | None = None
        self._forward_passes = 0
        self._counter_lock = threading.Lock()

    # -- the Encoder protocol -------------------------------------------------------

    identity: ReadOnly[EncoderIdentity] = ReadOnly("_identity")

    @property
    def dense_dim(self) -> int | None:
        if "dense" not in self._outputs or self._full_dim is None:
            return None
        return self._truncate_dim or self._full_dim

    outputs: ReadOnly[frozenset[str]] = ReadOnly("_outputs")

    @property
    def forward_passes(self) -> int:  # a property: PairEncoder sums its two models'
        return self._forward_passes

    truncate_dim: ReadOnly[int | None] = ReadOnly("_truncate_dim")
    cache: ReadOnly[LRUCache] = ReadOnly("_cache")

    def prompt_for(self, kind: TextKind) -> str:
        """The instruction prefix applied to texts of ``kind``."""
        return self._prompts[kind]

    def encode(
        self,
        texts: Sequence[str],
        kind: TextKind = "document",
        *,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> EncodeResult:
        """Encode ``texts`` (see :class:`shared.types.Encoder`); results are in input order.

        ``outputs`` defaults to everything this encoder makes except ColBERT.  Cheap
        outputs are always computed together (a dense-only call also fills the sparse
        cache), so a later call for another output on the same texts is a cache hit.
        """
        items = validate_texts(texts)
        if kind not in _KINDS:
            raise InvalidInputError(f"kind must be 'query' or 'document', got {kind!r}")
        wanted = self._validate_outputs(outputs)
        bs = self.batch_size if batch_size is None else check_batch_size(batch_size)
        progress = self.show_progress if show_progress is None else bool(show_progress)
        entries = self._encode_entries(items, kind, wanted, bs, progress)
        return self._assemble(entries, wanted, self._prompts[kind])

    def _encode_entries(
        self, items: list[str], kind: TextKind, wanted: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        """Cached-or-computed entries for validated ``items``, in input order (no warnings).

        Entries are shared with the cache: callers must not mutate them.
        """
        prompt = self._prompts[kind]
        cache = self._cache
        entries: list[Entry | None] = [None] * len(items)
        missing: dict[str, list[int]] = {}
        partial: dict[str, Entry] = {}
        for i, text in enumerate(items):
            hit = cache.get((kind, prompt, text))
            if hit is not None and all(getattr(hit, out) is not None for out in wanted):
                entries[i] = hit
            else:
                if hit is not None:
                    partial[text] = hit
                missing.setdefault(text, []).append(i)

        if missing:
            unique = list(missing)
            # One model's outputs come from one pass: compute them together (cached for later
            # calls). Two models (a pair) each cost a pass: only what is asked for.
            compute = (self._outputs - {"colbert"}) if self._computes_together else set(wanted)
            if "colbert" in wanted:
                compute = compute | {"colbert"}
            computed = self._compute(unique, kind, frozenset(compute), batch_size, show_progress)
            if len(computed) != len(unique):  # a subclass bug, never user input
                raise RuntimeError(f"{type(self).__name__}._compute returned {len(computed)} results")
            for text, entry in zip(unique, computed, strict=True):
                idx = missing[text]
                self._finish_entry(entry, text, f"texts[{idx[0]}]")
                old = partial.get(text)
                if old is not None:
                    # Keep what an earlier call computed for this text (a new object: cached
                    # entries are never mutated).
                    entry = Entry(
                        dense=entry.dense if entry.dense is not None else old.dense,
                        sparse=entry.sparse if entry.sparse is not None else old.sparse,
                        colbert=entry.colbert if entry.colbert is not None else old.colbert,
                        token_count=entry.token_count,
                        truncated=entry.truncated,
                    )
                self._cache.put((kind, prompt, text), entry)
                for i in idx:
                    entries[i] = entry
        done = [e for e in entries if e is not None]
        assert len(done) == len(items)  # every index was filled from the cache or computed
        return done

    def _finish_entry(self, entry: Entry, text: str, where: str) -> None:
        """What every computed entry goes through: the NaN check, MRL truncation, blank texts."""
        _check_finite(entry, where)
        if entry.dense is not None and self._truncate_dim is not None:
            entry.dense = truncate(entry.dense, self._truncate_dim)
        if entry.sparse is not None and not text.strip():
            # A blank text has no terms; drop what the prompt/specials produced.
            entry.sparse = {}

    def document_dense(self, texts: list[str]) -> np.ndarray | list[np.ndarray] | None:
        """The write path's dense vectors of ``texts``: the rows :meth:`encode` gives them
        (a float32 matrix, or a list of rows), computed without the cache (a store weighs each document
        once), or None where this encoder has no such path (the store then calls
        :meth:`encode`). ``texts`` are validated by the caller."""
        return None

    @property
    def supports_late_chunking(self) -> bool:
        """Whether ``encode_chunks`` works (:class:`shared.encoders.late.LateChunker`)."""
        return False

    @property
    def joins_queries(self) -> bool:
        """Whether query texts given in one call share a model pass: what the micro-batcher
        (:mod:`shared.serving`) joins concurrent queries for. False for a model that embeds
        one query text at a time."""
        return True

    # -- for subclasses -------------------------------------------------------------

    @abstractmethod
    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        """Run the model(s) on ``texts`` (raw, without prompt) in their order.

        Dense rows must be L2-normalised at full size; the base class truncates.
        """

    def _count_forward(self, n: int = 1) -> None:
        with self._counter_lock:
            self._forward_passes += n

    def _set_truncate_dim(self, truncate_dim: int | None, model_id: str) -> None:
        if truncate_dim is not None and self._full_dim is None:
            raise InvalidInputError("truncate_dim needs a dense model; this encoder has no dense output")
        self._truncate_dim = (
            validate_truncate_dim(truncate_dim, self._full_dim, model_id) if self._full_dim else None
        )

    def _make_identity(
        self,
        *,
        model_id: str,
        model_hash: str,
        sparse_kind: str | None,
        sparse_model_id: str | None = None,
        colbert_dim: int | None = None,
        precision: str = "fp32",
    ) -> EncoderIdentity:
        return EncoderIdentity(
            model_id=model_id,
            model_hash=model_hash,
            dense_dim=self.dense_dim,
            truncate_dim=self._truncate_dim,
            query_prompt=self._prompts["query"],
            document_prompt=self._prompts["document"],
            sparse_kind=sparse_kind,
            sparse_model_id=sparse_model_id,
            colbert_dim=colbert_dim,
            precision=precision,
        )

    # -- internals ------------------------------------------------------------------

    def _validate_outputs(self, outputs: Sequence[str] | None) -> frozenset[str]:
        if outputs is None:
            return self._outputs - {"colbert"}
        if isinstance(outputs, str):
            outputs = [outputs]
        wanted = frozenset(outputs)
        unknown = sorted(o for o in wanted if o not in ALL_OUTPUTS)
        if unknown:
            raise InvalidInputError(f"unknown outputs {unknown}; choose from dense, sparse, colbert")
        if not wanted:
            raise InvalidInputError("outputs must name at least one of dense, sparse, colbert")
        unsupported = sorted(wanted - self._outputs)
        if unsupported:
            raise UnsupportedOperationError(
                f"{self._identity.model_id} cannot produce {unsupported}; it makes {sorted(self._outputs)}"
            )
        return wanted

    def _assemble(self, done: list[Entry], wanted: frozenset[str], prompt: str) -> EncodeResult:
        dense = None
        if "dense" in wanted:
            dim = self.dense_dim or 0
            dense = (
                np.stack([e.dense for e in done if e.dense is not None]).astype(np.float32, copy=False)
                if done
                else np.zeros((0, dim), dtype=np.float32)
            )
        # Copies: callers may mutate what they get without corrupting the cache.
        sparse = [dict(e.sparse or {}) for e in done] if "sparse" in wanted else None
        colbert = (
            [np.array(e.colbert, dtype=np.float32, copy=True) for e in done if e.colbert is not None]
            if "colbert" in wanted
            else None
        )
        truncated = [e.truncated for e in done]
        if any(truncated):
            cut = [i for i, t in enumerate(truncated) if t]
            shown = ", ".join(map(str, cut[:10])) + (", ..." if len(cut) > 10 else "")
            warnings.warn(
                f"{len(cut)} of {len(done)} texts were longer than max_length="
                f"{getattr(self, 'max_length', '?')} tokens and were truncated (indices {shown})",
                TruncationWarning,
                stacklevel=3,
            )
        return EncodeResult(
            dense=dense,
            sparse=sparse,
            colbert=colbert,
            token_counts=[e.token_count for e in done],
            truncated=truncated,
            prompt=prompt,
        )

    def __repr__(self) -> str:
        ident = self._identity
        return (
            f"{type(self).__name__}(model_id={ident.model_id!r}, outputs={sorted(self._outputs)}, "
            f"dense_dim={self.dense_dim}, truncate_dim={self._truncate_dim})"
        )


@dataclass(frozen=True)
class ModelShape:
    """What a loaded model makes: its identity parts, outputs and full dense size."""

    model_id: str
    model_hash: str
    outputs: frozenset[str]
    full_dim: int | None = None
    sparse_kind: str | None = None
    colbert_dim: int | None = None
    precision: str = "fp32"


class ModelEncoder(BaseEncoder):
    """One model loaded by name with an :class:`EncoderConfig`: the template of every model class.

    ``__init__`` checks the options once, then calls the hooks in order:

    1. :meth:`_open` finds the model and returns its default ``(query, document)`` prompts
       (the ``*_instruction`` options override them);
    2. :meth:`_load` loads it and returns its :class:`ModelShape`;

    truncation and the identity follow from the shape.  A model class writes those two
    hooks and its post-processing (:meth:`BaseEncoder._compute`, or ``_forward_batch`` of a
    :class:`~shared.encoders._hf.TransformerEncoder`); everything else is shared.
    """

    #: Options this class does not use: a non-default value is refused, not ignored.
    _unused_options: ClassVar[frozenset[str]] = frozenset()
    #: The model loaded when none is named (None: a name is required).
    _default_model: ClassVar[str | None] = None

    def __init__(
        self, model: Any = None, config: EncoderConfig | None = None, **options: Unpack[EncoderOptions]
    ) -> None:
        owner = type(self).__name__
        if model is None:
            if self._default_model is None:
                raise InvalidInputError(f"{owner} needs a model name or directory")
            model = self._default_model
        cfg = EncoderConfig.build(config, options, owner)
        for name in sorted(self._unused_options):
            if getattr(cfg, name) != encoder_option_default(name):
                raise InvalidInputError(f"{owner} does not use {name} (got {getattr(cfg, name)!r})")
        #: The options this encoder was built with.
        self.options = cfg
        query, document = self._open(model)
        super().__init__(
            query_prompt=query if cfg.query_instruction is None else cfg.query_instruction,
            document_prompt=document if cfg.document_instruction is None else cfg.document_instruction,
            batch_size=cfg.batch_size,
            show_progress=cfg.show_progress,
            cache_size=cfg.cache_size,
        )
        shape = self._load()
        if cfg.truncate_dim is not None and "dense" not in shape.outputs:
            raise InvalidInputError(
                f"{shape.model_id} is a sparse ({(shape.sparse_kind or '').upper()}) model: "
                "truncate_dim has no effect"
            )
        self._outputs = shape.outputs
        self._full_dim = shape.full_dim if "dense" in shape.outputs else None
        self._set_truncate_dim(cfg.truncate_dim, shape.model_id)
        self._identity = self._make_identity(
            model_id=shape.model_id,
            model_hash=shape.model_hash,
            sparse_kind=shape.sparse_kind,
            colbert_dim=shape.colbert_dim,
            precision=shape.precision,
        )

    @abstractmethod
    def _open(self, model: Any) -> tuple[str, str]:
        """Find ``model`` (read what the prompts need); its default (query, document) prompts."""

    @abstractmethod
    def _load(self) -> ModelShape:
        """Load the model found by :meth:`_open` (``self.options`` holds the options)."""
