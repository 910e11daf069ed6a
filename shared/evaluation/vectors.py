"""Encoded vectors: every document and query encoded once, cached as plain ``.npz`` (no pickle)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UnsupportedOperationError
from ..types import Encoder, FloatArray, SparseDict, TextKind
from .data import BeirDataset


@dataclass
class EncodedTexts:
    """Pre-computed vectors of a list of texts, in ``ids`` order."""

    ids: list[str]
    dense: FloatArray | None = None
    sparse: list[SparseDict] | None = None
    colbert: list[FloatArray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, ids: Sequence[str], what: str = "text") -> EncodedTexts:
        """The rows of ``ids``, in that order; an id that was not encoded is an error."""
        pos = {d: i for i, d in enumerate(self.ids)}
        missing = [d for d in ids if d not in pos]
        if missing:
            raise InvalidInputError(
                f"{what} id {missing[0]!r} has no encoded vectors ({len(missing)} missing)"
            )
        rows = [pos[d] for d in ids]
        return EncodedTexts(
            list(ids),
            self.dense[rows] if self.dense is not None else None,
            [self.sparse[r] for r in rows] if self.sparse is not None else None,
            [self.colbert[r] for r in rows] if self.colbert is not None else None,
        )

    def _arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {f"{prefix}ids": np.array(self.ids, dtype=str)}
        if self.dense is not None:
            out[f"{prefix}dense"] = np.asarray(self.dense, dtype=np.float32)
        if self.sparse is not None:
            # CSR layout: no pickle, compact, exact.
            lengths = np.array([len(s) for s in self.sparse], dtype=np.int64)
            out[f"{prefix}sparse_indptr"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            out[f"{prefix}sparse_indices"] = np.array([k for s in self.sparse for k in s], dtype=np.int64)
            out[f"{prefix}sparse_values"] = np.array(
                [v for s in self.sparse for v in s.values()], dtype=np.float32
            )
        if self.colbert is not None:
            lengths = np.array([len(c) for c in self.colbert], dtype=np.int64)
            out[f"{prefix}colbert_indptr"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            out[f"{prefix}colbert"] = (
                np.concatenate(self.colbert).astype(np.float32)
                if self.colbert
                else np.zeros((0, 0), np.float32)
            )
        return out

    @classmethod
    def _from_arrays(cls, data: Mapping[str, np.ndarray], prefix: str) -> EncodedTexts:
        ids = [str(x) for x in data[f"{prefix}ids"].tolist()]
        dense = data.get(f"{prefix}dense")
        sparse: list[SparseDict] | None = None
        if f"{prefix}sparse_indptr" in data:
            ptr = data[f"{prefix}sparse_indptr"]
            idx = data[f"{prefix}sparse_indices"].tolist()
            val = data[f"{prefix}sparse_values"].tolist()
            sparse = [
                dict(zip(idx[a:b], val[a:b], strict=True))
                for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True)
            ]
        colbert: list[FloatArray] | None = None
        if f"{prefix}colbert_indptr" in data:
            ptr = data[f"{prefix}colbert_indptr"]
            mat = data[f"{prefix}colbert"]
            colbert = [mat[a:b] for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True)]
        return cls(ids, dense, sparse, colbert)


@dataclass
class EncodedDataset:
    """Document and query vectors of a dataset, computed once and shared by every configuration."""

    docs: EncodedTexts
    queries: EncodedTexts
    #: The encoder's identity fingerprint (vectors from another encoder are refused).
    encoder_fingerprint: str = ""
    doc_seconds: float = 0.0
    query_seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def save_npz(self, path: str | os.PathLike[str]) -> None:
        """Write to a compressed ``.npz`` (plain arrays + a JSON header; loads without pickle)."""
        header = {
            "encoder_fingerprint": self.encoder_fingerprint,
            "doc_seconds": self.doc_seconds,
            "query_seconds": self.query_seconds,
            "meta": self.meta,
        }
        arrays = {**self.docs._arrays("d_"), **self.queries._arrays("q_")}
        arrays["header"] = np.array(json.dumps(header))
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so an interrupted run never leaves a half-written cache.
        tmp = target.with_name(target.name + ".partial.npz")
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, target)

    @classmethod
    def load_npz(cls, path: str | os.PathLike[str]) -> EncodedDataset:
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(str(arrays.pop("header")))
        return cls(
            EncodedTexts._from_arrays(arrays, "d_"),
            EncodedTexts._from_arrays(arrays, "q_"),
            encoder_fingerprint=header.get("encoder_fingerprint", ""),
            doc_seconds=float(header.get("doc_seconds", 0.0)),
            query_seconds=float(header.get("query_seconds", 0.0)),
            meta=dict(header.get("meta", {})),
        )

    def select(self, dataset: BeirDataset) -> EncodedDataset:
        """The rows for ``dataset``'s documents and queries (e.g. a subset of the encoded set)."""
        return replace(
            self,
            docs=self.docs.select(dataset.doc_ids, "document"),
            queries=self.queries.select(list(dataset.queries), "query"),
        )

    def matches(self, dataset: BeirDataset) -> bool:
        """Whether these vectors were computed for exactly this dataset's documents and queries."""
        return self.docs.ids == dataset.doc_ids and self.queries.ids == list(dataset.queries)


def encode_dataset(
    encoder: Encoder,
    dataset: BeirDataset,
    *,
    colbert: bool = False,
    batch_size: int | None = None,
    show_progress: bool = False,
) -> EncodedDataset:
    """Encode every document and query of ``dataset`` once (documents with the document
    prompt, queries with the query prompt).  ``colbert`` adds multivectors (BGE-M3 only)."""
    outputs: list[str] = [o for o in ("dense", "sparse") if o in encoder.outputs]
    if colbert:
        if "colbert" not in encoder.outputs:
            raise UnsupportedOperationError(
                f"encoder {encoder.identity.model_id!r} has no ColBERT output; drop the colbert configuration"
            )
        outputs.append("colbert")
    if not outputs:
        raise UnsupportedOperationError(
            f"encoder {encoder.identity.model_id!r} makes neither dense nor sparse vectors"
        )

    def run(texts: Sequence[str], kind: TextKind) -> tuple[EncodedTexts, float]:
        t0 = time.perf_counter()
        res = encoder.encode(
            list(texts),
            kind,
            outputs=outputs,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        elapsed = time.perf_counter() - t0
        return EncodedTexts([], res.dense, res.sparse, res.colbert), elapsed

    docs, doc_s = run(dataset.doc_texts, "document")
    docs.ids = list(dataset.doc_ids)
    queries, q_s = run(list(dataset.queries.values()), "query")
    queries.ids = list(dataset.queries)
    return EncodedDataset(
        docs,
        queries,
        encoder_fingerprint=encoder.identity.fingerprint(),
        doc_seconds=doc_s,
        query_seconds=q_s,
        meta={"model_id": encoder.identity.model_id, "sparse_model_id": encoder.identity.sparse_model_id},
    )
