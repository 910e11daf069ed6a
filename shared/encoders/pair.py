"""A dense model plus a sparse model (e.g. MiniLM + SPLADE) as one Encoder.

Each model applies its own prompts (a SPLADE model must not see an E5 "query: "
prefix); the result reports the dense model's prompt.  The pair goes through the
two encoders' own caches, so texts one of them (or a framework class sharing it)
already encoded cost no new pass.  ``forward_passes`` counts the passes of both.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Unpack

import numpy as np

from ..errors import InvalidInputError
from ..mrl import truncate
from ..types import EncoderIdentity, TextKind
from .base import BaseEncoder, Entry
from .config import EncoderConfig, EncoderOptions
from .late import LateChunker, LateJob, require_late_chunking

__all__ = ["PairEncoder"]


class PairEncoder(LateChunker):
    """``dense`` supplies the dense vectors, ``sparse`` the sparse ones."""

    #: Two models: a call runs only those whose outputs it asks for.
    _computes_together = False

    def __init__(
        self,
        dense: BaseEncoder,
        sparse: BaseEncoder,
        config: EncoderConfig | None = None,
        **options: Unpack[EncoderOptions],
    ) -> None:
        # The pair itself uses truncate_dim, batch_size, show_progress and cache_size; the
        # other options are its two models' (already loaded with them).
        cfg = EncoderConfig.build(config, options, "PairEncoder")
        if "dense" not in dense.outputs:
            raise InvalidInputError(f"{dense.identity.model_id} makes no dense vectors")
        if "sparse" not in sparse.outputs:
            raise InvalidInputError(f"{sparse.identity.model_id} makes no sparse vectors")
        super().__init__(
            query_prompt=dense.prompt_for("query"),
            document_prompt=dense.prompt_for("document"),
            batch_size=cfg.batch_size,
            show_progress=cfg.show_progress,
            cache_size=cfg.cache_size,
        )
        self.dense_encoder = dense
        self.sparse_encoder = sparse
        self.max_length = getattr(dense, "max_length", None)
        self._outputs = frozenset({"dense", "sparse"})
        # Vectors arrive already truncated when the dense encoder truncates itself; the
        # pair's own truncate_dim then applies on top (equal to it: nothing more to do).
        self._full_dim = dense.dense_dim
        d_id, s_id = dense.identity, sparse.identity
        self._set_truncate_dim(cfg.truncate_dim, d_id.model_id)
        model_hash = ""
        if d_id.model_hash or s_id.model_hash:
            # Either model changing changes the stored vectors.
            model_hash = hashlib.sha256(f"{d_id.model_hash}:{s_id.model_hash}".encode()).hexdigest()
        self._identity = EncoderIdentity(
            model_id=d_id.model_id,
            model_hash=model_hash,
            dense_dim=self.dense_dim,
            truncate_dim=self._truncate_dim or dense.truncate_dim,
            query_prompt=self.prompt_for("query"),
            document_prompt=self.prompt_for("document"),
            sparse_kind=s_id.sparse_kind,
            sparse_model_id=s_id.model_id,
            precision="int8" if "int8" in (d_id.precision, s_id.precision) else "fp32",
        )

    @property
    def forward_passes(self) -> int:
        return self.dense_encoder.forward_passes + self.sparse_encoder.forward_passes

    @property
    def joins_queries(self) -> bool:
        return self.dense_encoder.joins_queries or self.sparse_encoder.joins_queries

    @property
    def supports_late_chunking(self) -> bool:
        return self.dense_encoder.supports_late_chunking and self.sparse_encoder.supports_late_chunking

    def _late_entries(self, job: LateJob) -> list[list[Entry]]:
        # Each model late-chunks the documents with its own pass, tokenizer and window.
        parts = {}
        for out, enc in (("dense", self.dense_encoder), ("sparse", self.sparse_encoder)):
            if out in job.outputs:
                parts[out] = require_late_chunking(enc)._late_entries(replace(job, outputs=frozenset({out})))
        out_docs = []
        for d, doc_spans in enumerate(job.spans):
            out_docs.append([self._joined(parts, d, c) for c in range(len(doc_spans))])
        return out_docs

    def _joined(self, parts: dict[str, list[list[Entry]]], d: int, c: int) -> Entry:
        dense = parts["dense"][d][c] if "dense" in parts else None
        sparse = parts["sparse"][d][c] if "sparse" in parts else None
        entry = _join(dense, sparse)
        if entry.dense is not None and self._truncate_dim is not None:
            # The pair's own MRL truncation, as its normal encode applies it.
            entry.dense = truncate(entry.dense, self._truncate_dim)
        return entry

    def _finish_entry(self, entry: Entry, text: str, where: str) -> None:
        # Each part was finished by its own model's encoder (NaN check, its truncation, blank
        # texts): the pair's own MRL truncation is what is left.
        if entry.dense is not None and self._truncate_dim is not None:
            entry.dense = truncate(entry.dense, self._truncate_dim)

    def document_dense(self, texts: list[str]) -> np.ndarray | list[np.ndarray] | None:
        # The dense model's write path; the pair's own truncation is applied row by row by encode.
        return None if self._truncate_dim is not None else self.dense_encoder.document_dense(texts)

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        # Only the models whose outputs are asked for run (vectors a caller gave are not recomputed).
        dense = (
            self.dense_encoder._encode_entries(texts, kind, frozenset({"dense"}), batch_size, show_progress)
            if "dense" in outputs
            else None
        )
        sparse = (
            self.sparse_encoder._encode_entries(texts, kind, frozenset({"sparse"}), batch_size, show_progress)
            if "sparse" in outputs
            else None
        )
        # New Entry objects: the sub-encoders' cached entries are never mutated.
        return [
            _join(dense[i] if dense is not None else None, sparse[i] if sparse is not None else None)
            for i in range(len(texts))
        ]


def _join(d: Entry | None, s: Entry | None) -> Entry:
    """One entry from the dense model's and the sparse model's entries of the same text."""
    first = d if d is not None else s
    assert first is not None
    return Entry(
        dense=d.dense if d is not None else None,
        sparse=s.sparse if s is not None else None,
        colbert=None,
        token_count=first.token_count,
        truncated=(d is not None and d.truncated) or (s is not None and s.truncated),
    )
