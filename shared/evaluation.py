"""Evaluate retrieval configurations on your own data (BEIR layout).

The workflow: :func:`load_beir` reads a corpus, queries and qrels; :func:`encode_dataset`
encodes every document and query ONCE; :func:`evaluate` builds one index per stored
configuration (quantization preset x MRL dim x ColBERT), runs every query-time
retrieval mode against it with the pre-computed query vectors, and returns an
:class:`EvalReport` (Markdown table, JSON, PNG plot).

What is measured, and why:

* Quality: nDCG@10, Recall@10, Recall@100 and MRR@10, computed by ``ranx`` (trec_eval
  definitions: nDCG gain = relevance grade).  Runs are given to ranx as ranks, not raw
  scores, so the order the store returned is the order evaluated (fused scores tie).
* Spread: per-query nDCG@10 std and a bootstrap 95% CI of its mean; for every row the
  paired per-query difference against the best single mode (dense or sparse) of the
  reference configuration, with a paired bootstrap 95% CI.  Small differences whose CI
  spans 0 are not differences.
* Latency: only the store's ``query`` call (queries are encoded beforehand, so model
  time does not drown the index), p50/p95 over all queries after a short warm-up.
* Size: the index directory on disk, the process RSS growth while indexing (in-process,
  so it is noisy and includes Python-side buffers), and the vector bytes per document
  that the preset keeps in RAM (computed from the preset, see :func:`vector_ram_bytes`).

This module is framework-free: it only uses ``shared`` (encoders, store), numpy, ranx,
psutil and, for plots, matplotlib (Agg).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from .types import Encoder, FloatArray, Record, SparseDict, TextKind

if TYPE_CHECKING:
    from .store import HybridStore

__all__ = [
    "DEFAULT_MODES",
    "METRICS",
    "MODES",
    "BeirDataset",
    "EncodedDataset",
    "EncodedTexts",
    "EvalConfig",
    "EvalMode",
    "EvalReport",
    "EvalRow",
    "encode_dataset",
    "evaluate",
    "load_beir",
    "parse_configs",
    "parse_modes",
    "score_run",
    "vector_ram_bytes",
]

#: The metrics every row reports (ranx names).
METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
#: The metric spreads, deltas and plots are based on.
PRIMARY = "ndcg@10"


# --------------------------------------------------------------------------- data


@dataclass
class BeirDataset:
    """A retrieval test collection: documents, queries and graded relevance judgements.

    ``queries`` holds only the queries that have at least one positive judgement (the
    others cannot be scored); ``qrels`` maps query id -> {doc id: grade > 0}.
    """

    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    name: str = "dataset"
    #: Things the loader noticed and dropped or could not use (never silent).
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.doc_ids) != len(self.doc_texts):
            raise InvalidInputError(
                f"doc_ids has {len(self.doc_ids)} items but doc_texts has {len(self.doc_texts)}"
            )

    @property
    def num_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def num_queries(self) -> int:
        return len(self.queries)

    def subset(
        self, *, limit_queries: int | None = None, corpus_limit: int | None = None, seed: int = 0
    ) -> BeirDataset:
        """A smaller copy for quick runs.

        ``limit_queries`` keeps a seeded random sample of the queries (files are often
        sorted, so the first N would be biased), in their original order.
        ``corpus_limit`` keeps every document judged relevant for the kept queries plus a
        seeded random sample of the others, up to that many documents, so every kept
        query can still be answered (scores on a smaller corpus are optimistic).
        """
        qids = list(self.queries)
        if limit_queries is not None:
            if limit_queries < 1:
                raise InvalidInputError(f"limit_queries must be >= 1, got {limit_queries}")
            if limit_queries < len(qids):
                keep = set(random.Random(seed).sample(qids, limit_queries))
                qids = [q for q in qids if q in keep]
        queries = {q: self.queries[q] for q in qids}
        qrels = {q: dict(self.qrels[q]) for q in qids}
        doc_ids, doc_texts = self.doc_ids, self.doc_texts
        notes = list(self.notes)
        if corpus_limit is not None:
            if corpus_limit < 1:
                raise InvalidInputError(f"corpus_limit must be >= 1, got {corpus_limit}")
            present = set(doc_ids)
            relevant = {d for rel in qrels.values() for d in rel if d in present}
            if len(relevant) > corpus_limit:
                raise InvalidInputError(
                    f"corpus_limit={corpus_limit} is below the {len(relevant)} documents judged "
                    "relevant for the kept queries; raise it or lower limit_queries"
                )
            if corpus_limit < len(doc_ids):
                others = [d for d in doc_ids if d not in relevant]
                extra = set(random.Random(seed + 1).sample(others, corpus_limit - len(relevant)))
                keep_docs = relevant | extra
                pairs = [(d, t) for d, t in zip(doc_ids, doc_texts, strict=True) if d in keep_docs]
                doc_ids = [d for d, _ in pairs]
                doc_texts = [t for _, t in pairs]
                notes.append(
                    f"corpus limited to {len(doc_ids)} of {self.num_docs} documents "
                    "(all relevant ones kept): scores are optimistic"
                )
        if limit_queries is not None and len(queries) < self.num_queries:
            notes.append(f"queries limited to a seeded sample of {len(queries)} of {self.num_queries}")
        return BeirDataset(list(doc_ids), list(doc_texts), queries, qrels, self.name, notes)


def _read_jsonl(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InvalidInputError(f"{what} file not found: {path}")
    # utf-8-sig: files saved by some Windows tools start with a byte-order mark.
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InvalidInputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _entry_id(obj: Mapping[str, Any], path: Path, lineno: int) -> str:
    raw = obj.get("_id", obj.get("id"))
    if raw is None or isinstance(raw, (bool, dict, list)) or raw == "":
        raise InvalidInputError(f'{path}:{lineno}: missing "_id" (or "id") field')
    return str(raw)


def _entry_text(obj: Mapping[str, Any], path: Path, lineno: int, *, with_title: bool) -> str:
    text = obj.get("text")
    if not isinstance(text, str):
        raise InvalidInputError(f'{path}:{lineno}: "text" must be a string, got {type(text).__name__}')
    title = obj.get("title") if with_title else None
    if title is not None and not isinstance(title, str):
        raise InvalidInputError(f'{path}:{lineno}: "title" must be a string, got {type(title).__name__}')
    # BEIR convention: the title is part of what is indexed.
    full = f"{title.strip()}. {text}" if title and title.strip() else text
    # "" for an empty entry: the caller skips it with a note (public BEIR sets have a few).
    return full if full.strip() else ""


def _read_qrels(path: Path) -> Iterator[tuple[int, str, str, int]]:
    """Yield (line, query id, doc id, grade); BEIR TSV (3 columns, optional header) or TREC (4)."""
    if not path.is_file():
        raise InvalidInputError(f"qrels file not found: {path}")
    with path.open(encoding="utf-8-sig") as fh:
        first = True
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n\r").split("\t") if "\t" in line else line.split()
            parts = [p.strip() for p in parts]
            if len(parts) == 3:
                qid, did, grade_s = parts
            elif len(parts) == 4:  # TREC: qid iteration docid grade
                qid, _, did, grade_s = parts
            else:
                raise InvalidInputError(
                    f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score) "
                    f"or 4 (TREC), got {len(parts)}: {line.strip()[:80]!r}"
                )
            try:
                grade: int | None = int(grade_s)
            except ValueError:
                grade = None
            if grade is None:
                if first:  # a header line such as "query-id corpus-id score"
                    first = False
                    continue
                raise InvalidInputError(f"{path}:{lineno}: score {grade_s!r} is not an integer")
            first = False
            if not qid or not did:
                raise InvalidInputError(f"{path}:{lineno}: empty query id or corpus id")
            yield lineno, qid, did, grade


def load_beir(
    corpus: str | os.PathLike[str],
    queries: str | os.PathLike[str] | None = None,
    qrels: str | os.PathLike[str] | None = None,
    *,
    split: str = "test",
    name: str | None = None,
) -> BeirDataset:
    """Read a BEIR-layout dataset.

    Either pass the three files, or only a folder holding ``corpus.jsonl``,
    ``queries.jsonl`` and ``qrels/<split>.tsv``.  Corpus lines are
    ``{"_id"|"id", "title"?, "text"}`` (the title is prepended, as BEIR does), query lines
    ``{"_id"|"id", "text"}``, qrels lines ``query-id<TAB>corpus-id<TAB>score`` with or
    without a header (4-column TREC qrels also work).  Grades <= 0 mean "not relevant".
    Errors name the file and line.
    """
    corpus_p = Path(corpus)
    if queries is None and qrels is None:
        if not corpus_p.is_dir():
            raise InvalidInputError(f"{corpus_p} is not a folder; pass corpus, queries and qrels files")
        folder = corpus_p
        corpus_p, queries_p, qrels_p = (
            folder / "corpus.jsonl",
            folder / "queries.jsonl",
            folder / "qrels" / f"{split}.tsv",
        )
        name = name or folder.name
    elif queries is None or qrels is None:
        raise InvalidInputError("pass all three of corpus, queries and qrels (or one BEIR folder)")
    else:
        queries_p, qrels_p = Path(queries), Path(qrels)
        name = name or (corpus_p.parent.name or corpus_p.stem)

    doc_ids: list[str] = []
    doc_texts: list[str] = []
    seen_docs: dict[str, int] = {}
    empty_docs: list[str] = []
    empty_queries: set[str] = set()
    for lineno, obj in _read_jsonl(corpus_p, "corpus"):
        did = _entry_id(obj, corpus_p, lineno)
        if did in seen_docs:
            raise InvalidInputError(
                f"{corpus_p}:{lineno}: duplicate id {did!r} (first on line {seen_docs[did]})"
            )
        seen_docs[did] = lineno
        text = _entry_text(obj, corpus_p, lineno, with_title=True)
        if not text:
            empty_docs.append(did)
            continue
        doc_ids.append(did)
        doc_texts.append(text)
    if not doc_ids:
        raise InvalidInputError(f"{corpus_p}: no documents with text")
    kept_docs = set(doc_ids)

    all_queries: dict[str, str] = {}
    seen_q: dict[str, int] = {}
    for lineno, obj in _read_jsonl(queries_p, "queries"):
        qid = _entry_id(obj, queries_p, lineno)
        if qid in seen_q:
            raise InvalidInputError(
                f"{queries_p}:{lineno}: duplicate id {qid!r} (first on line {seen_q[qid]})"
            )
        seen_q[qid] = lineno
        text = _entry_text(obj, queries_p, lineno, with_title=False)
        if text:
            all_queries[qid] = text
        else:
            empty_queries.add(qid)

    judged: dict[str, dict[str, int]] = {}
    missing_docs: set[str] = set()
    for lineno, qid, did, grade in _read_qrels(qrels_p):
        if qid in empty_queries:
            continue
        if qid not in all_queries:
            raise InvalidInputError(f"{qrels_p}:{lineno}: query id {qid!r} is not in {queries_p}")
        if did not in kept_docs:
            missing_docs.add(did)
        prev = judged.setdefault(qid, {}).get(did)
        if prev is not None and prev != grade:
            raise InvalidInputError(
                f"{qrels_p}:{lineno}: conflicting grades for ({qid!r}, {did!r}): {prev} and {grade}"
            )
        judged[qid][did] = grade

    notes: list[str] = []
    if empty_docs:
        notes.append(f"{len(empty_docs)} documents have no text and were skipped (e.g. {empty_docs[0]!r})")
    if empty_queries:
        notes.append(
            f"{len(empty_queries)} queries have no text and were skipped (e.g. {sorted(empty_queries)[0]!r})"
        )
    positive = {q: {d: g for d, g in rel.items() if g > 0} for q, rel in judged.items()}
    no_positive = [q for q, rel in positive.items() if not rel]
    if no_positive:
        notes.append(f"{len(no_positive)} judged queries have no positive judgement and are not scored")
    unjudged = len(all_queries) - len(judged)
    if unjudged:
        notes.append(f"{unjudged} queries have no judgements in {qrels_p.name} and are not scored")
    if missing_docs:
        notes.append(
            f"{len(missing_docs)} judged corpus ids are not in the corpus "
            f"(e.g. {sorted(missing_docs)[0]!r}): those judgements can never be retrieved"
        )
    scored = [q for q in all_queries if positive.get(q)]
    if not scored:
        raise InvalidInputError(f"{qrels_p}: no query has a positive judgement for a query in {queries_p}")
    return BeirDataset(
        doc_ids,
        doc_texts,
        {q: all_queries[q] for q in scored},
        {q: positive[q] for q in scored},
        name=name,
        notes=notes,
    )


# --------------------------------------------------------------------------- encoded vectors


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


# --------------------------------------------------------------------------- configurations and modes


@dataclass(frozen=True)
class EvalConfig:
    """One stored configuration: everything that needs its own index.

    Query-time choices (retrieval mode, fusion, rescoring) are :class:`EvalMode` and reuse
    the index.
    """

    quantization: str = "none"
    mrl_dim: int | None = None
    colbert: bool = False
    on_disk: bool = False
    #: Preset of the MRL funnel's truncated copy (the store's default: binary).
    mrl_quantization: str = "binary"

    @property
    def name(self) -> str:
        parts = [self.quantization]
        if self.mrl_dim:
            parts.append(
                f"mrl{self.mrl_dim}"
                + ("" if self.mrl_quantization == "binary" else f"-{self.mrl_quantization}")
            )
        if self.colbert:
            parts.append("colbert")
        if self.on_disk:
            parts.append("on-disk")
        return "+".join(parts)

    @property
    def is_reference(self) -> bool:
        """Full-precision, full-dimension dense vectors: what the others are compared to."""
        return self.quantization == "none" and not self.mrl_dim


@dataclass(frozen=True)
class EvalMode:
    """One query-time retrieval mode (passed to ``HybridStore.query``)."""

    name: str
    retrieval_mode: str  # "dense" | "sparse" | "hybrid"
    fusion: str | None = None
    colbert_rerank: bool = False
    #: None: the preset's default (quantized presets rescore with the originals).
    rescore: bool | None = None
    dense_weight: float | None = None
    sparse_weight: float | None = None
    rrf_k: int | None = None
    #: m3 fusion only: "none", "query" or "auto" (None: the store's default, "auto");
    #: see :mod:`shared.query_planning`.
    sparse_normalization: str | None = None

    @property
    def needs(self) -> frozenset[str]:
        need = set()
        if self.retrieval_mode in ("dense", "hybrid"):
            need.add("dense")
        if self.retrieval_mode in ("sparse", "hybrid"):
            need.add("sparse")
        if self.colbert_rerank:
            need.add("colbert")
        return frozenset(need)

    @property
    def is_single(self) -> bool:
        return self.retrieval_mode in ("dense", "sparse") and not self.colbert_rerank

    def query_kwargs(self) -> dict[str, Any]:
        # colbert_rerank is always explicit: the store's default turns it on for ColBERT
        # collections, which would re-encode the query with the model inside the timing.
        kw: dict[str, Any] = {"mode": self.retrieval_mode, "colbert_rerank": self.colbert_rerank}
        if self.fusion is not None:
            kw["fusion"] = self.fusion
        if self.rescore is not None:
            kw["rescore"] = self.rescore
        if self.dense_weight is not None:
            kw["dense_weight"] = self.dense_weight
        if self.sparse_weight is not None:
            kw["sparse_weight"] = self.sparse_weight
        if self.rrf_k is not None:
            kw["rrf_k"] = self.rrf_k
        if self.sparse_normalization is not None:
            kw["sparse_normalization"] = self.sparse_normalization
        return kw


#: The built-in modes, by name (``<name>-norescore`` disables rescoring of quantized vectors).
MODES: dict[str, EvalMode] = {
    m.name: m
    for m in (
        EvalMode("dense", "dense"),
        EvalMode("sparse", "sparse"),
        EvalMode("hybrid-rrf", "hybrid", "rrf"),
        EvalMode("hybrid-dbsf", "hybrid", "dbsf"),
        EvalMode("hybrid-m3", "hybrid", "m3"),
        # The paper's raw sum whatever the sparse model: to see what the normalisation does.
        EvalMode("hybrid-m3-raw", "hybrid", "m3", sparse_normalization="none"),
        EvalMode("colbert", "hybrid", "rrf", colbert_rerank=True),
    )
}
_ALIASES = {"rrf": "hybrid-rrf", "dbsf": "hybrid-dbsf", "m3": "hybrid-m3", "hybrid": "hybrid-rrf"}
DEFAULT_MODES: tuple[str, ...] = ("dense", "sparse", "hybrid-rrf", "hybrid-dbsf", "hybrid-m3", "colbert")


def parse_modes(spec: str | Iterable[str | EvalMode]) -> list[EvalMode]:
    """Modes from names (comma-separated string or list); unknown names are an error."""
    items: Iterable[str | EvalMode] = spec.split(",") if isinstance(spec, str) else spec
    out: list[EvalMode] = []
    for i, item in enumerate(items):
        if isinstance(item, EvalMode):
            out.append(item)
            continue
        if not isinstance(item, str):
            raise InvalidTypeError(f"mode {i} must be a name or EvalMode, got {type(item).__name__}")
        raw = item.strip().lower()
        if not raw:
            continue
        norescore = raw.endswith("-norescore")
        base = _ALIASES.get(raw.removesuffix("-norescore"), raw.removesuffix("-norescore"))
        if base not in MODES:
            raise InvalidInputError(
                f"unknown mode {item!r} (item {i}); choose from {', '.join(MODES)}, "
                "optionally with the suffix -norescore"
            )
        mode = MODES[base]
        out.append(replace(mode, name=f"{base}-norescore", rescore=False) if norescore else mode)
    names = [m.name for m in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InvalidInputError(f"mode {sorted(dup)[0]!r} is listed twice")
    if not out:
        raise InvalidInputError("no retrieval mode given")
    return out


def _known_presets() -> tuple[str, ...] | None:
    try:
        from . import quantization
    except ImportError:  # the store module set is incomplete; the store will validate
        return None
    presets = getattr(quantization, "PRESETS", None)
    return tuple(presets) if presets else None


def parse_configs(
    presets: str | Iterable[str],
    *,
    mrl_dims: Iterable[int | None] = (None,),
    colbert: bool = False,
    on_disk: bool = False,
) -> list[EvalConfig]:
    """The cross product presets x MRL dims (x ColBERT), validated against the known presets."""
    names = [
        p.strip().lower() for p in (presets.split(",") if isinstance(presets, str) else presets) if p.strip()
    ]
    if not names:
        raise InvalidInputError("no quantization preset given")
    known = _known_presets()
    for i, n in enumerate(names):
        if known is not None and n not in known:
            from .quantization import get_preset

            try:
                get_preset(n)  # its message names the nearest mistake (e.g. a TurboQuant bit size)
            except InvalidInputError as exc:
                raise InvalidInputError(f"item {i}: {exc}") from None
    dims = list(mrl_dims)
    for d in dims:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 1):
            raise InvalidInputError(f"MRL dim must be a positive integer, got {d!r}")
    configs = [EvalConfig(p, d, colbert, on_disk) for d in dims for p in names]
    seen: set[str] = set()
    unique = []
    for c in configs:
        if c.name not in seen:
            seen.add(c.name)
            unique.append(c)
    return unique


def vector_ram_bytes(config: EvalConfig, dense_dim: int | None, mean_sparse_nnz: float = 0.0) -> float:
    """Vector bytes per document kept in RAM under ``config`` (an estimate from the layout).

    Dense originals are float32 (float16 for the ``float16`` preset) and stay in RAM unless
    ``on_disk`` with something quantized to search instead (a preset's codes or the MRL
    funnel); quantized codes are always in RAM at the preset's bits per dimension
    (:attr:`~shared.quantization.QuantizationPreset.code_bits`: int8 8, binary 1 / 1.5 / 2,
    turbo 1 / 1.5 / 2 / 4 / 8).  The MRL funnel adds ``mrl_dim`` codes of its own preset plus
    their float32 originals (unless on disk).  Sparse vectors cost 8 bytes per non-zero (u32
    index + f32 weight).  Index structures (HNSW links, payload) are not included: see
    ``benchmarks/presets.py`` for the engine's measured bytes per point.
    """
    from .quantization import get_preset

    total = 8.0 * mean_sparse_nnz
    if dense_dim:
        preset = get_preset(config.quantization)
        original = dense_dim * (2 if preset.datatype == "float16" else 4)
        bits = preset.code_bits
        searched_elsewhere = bool(bits) or bool(config.mrl_dim)
        total += (0 if config.on_disk and searched_elsewhere else original) + dense_dim * bits / 8
        if config.mrl_dim:
            mq = get_preset(config.mrl_quantization)
            mbits = mq.code_bits
            total += config.mrl_dim * mbits / 8 + (0 if config.on_disk and mbits else config.mrl_dim * 4)
    return total


# --------------------------------------------------------------------------- metrics


def _ranx_scores(
    qrels: Mapping[str, Mapping[str, int]], ranked: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Per-query metric arrays (in ``qrels`` order) from ranked doc-id lists, via ranx."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qids = list(qrels)
    run: dict[str, dict[str, float]] = {}
    for q in qids:
        docs = ranked.get(q, ())
        # Scores from ranks: ranx re-sorts by score, and fused scores can tie, so the
        # store's order is encoded explicitly.  A query with no hits gets a dummy doc.
        run[q] = {d: float(len(docs) - r) for r, d in enumerate(dict.fromkeys(docs))} or {"\x00none": 0.0}
    r = Run(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 cast warning inside ranx
        ranx_evaluate(Qrels({q: dict(v) for q, v in qrels.items()}), r, list(METRICS), return_mean=False)
    return {m: np.array([float(r.scores[m][q]) for q in qids]) for m in METRICS}


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n: int) -> tuple[float, float]:
    if len(values) < 2 or n < 1:
        m = float(values.mean()) if len(values) else float("nan")
        return m, m
    means = np.empty(n)
    # Chunks bound memory on big query sets.
    chunk = max(1, 2_000_000 // len(values))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        idx = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class EvalRow:
    """The results of one (system, configuration, mode)."""

    system: str
    config: str
    mode: str
    metrics: dict[str, float]
    n_queries: int
    ndcg_std: float = 0.0
    ndcg_ci: tuple[float, float] = (0.0, 0.0)
    #: Paired nDCG@10 difference vs the best single mode of the reference config: (mean, lo, hi).
    delta_vs_best_single: tuple[float, float, float] | None = None
    #: nDCG@10 relative to the same mode on the reference (unquantized, full-dim) config.
    pct_of_reference: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    disk_bytes: int | None = None
    rss_delta_bytes: int | None = None
    ram_bytes_per_doc: float | None = None
    index_seconds: float | None = None
    note: str = ""
    per_query: dict[str, list[float]] = field(default_factory=dict, repr=False)
    #: Which configuration/mode this row is (None for external systems).
    config_obj: EvalConfig | None = field(default=None, repr=False)
    mode_obj: EvalMode | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return (
            f"{self.system}:{self.config}:{self.mode}"
            if self.system != "m3-hybrid"
            else f"{self.config}:{self.mode}"
        )


def score_run(
    dataset: BeirDataset,
    ranked: Mapping[str, Sequence[str]],
    *,
    system: str = "m3-hybrid",
    config: str = "",
    mode: str = "",
    latencies_s: Sequence[float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    note: str = "",
) -> EvalRow:
    """Score ranked doc-id lists (query id -> ids, best first) of any system.

    Missing queries count as empty results.  ``latencies_s`` (one per query, seconds)
    gives p50/p95.  Use it to put other systems in the same :class:`EvalReport`.
    """
    unknown = [q for q in ranked if q not in dataset.qrels]
    if unknown:
        raise InvalidInputError(f"run has query id {unknown[0]!r} that the dataset does not score")
    per_query = _ranx_scores(dataset.qrels, ranked)
    rng = np.random.default_rng(seed)
    ndcg = per_query[PRIMARY]
    row = EvalRow(
        system=system,
        config=config,
        mode=mode,
        metrics={m: float(v.mean()) for m, v in per_query.items()},
        n_queries=len(ndcg),
        ndcg_std=float(ndcg.std(ddof=1)) if len(ndcg) > 1 else 0.0,
        ndcg_ci=_bootstrap_ci(ndcg, rng, bootstrap),
        note=note,
        per_query={m: v.tolist() for m, v in per_query.items()},
    )
    if latencies_s is not None and len(latencies_s):
        lat = np.asarray(latencies_s, dtype=np.float64) * 1000.0
        row.latency_p50_ms = float(np.percentile(lat, 50))
        row.latency_p95_ms = float(np.percentile(lat, 95))
    return row


# --------------------------------------------------------------------------- report


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def _fmt_ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


@dataclass
class EvalReport:
    """Results of :func:`evaluate`: one :class:`EvalRow` per (configuration, mode), plus context."""

    dataset: str
    num_docs: int
    num_queries: int
    rows: list[EvalRow] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bootstrap: int = 1000
    seed: int = 0

    # -- derived comparisons

    def row(self, config: str, mode: str, system: str = "m3-hybrid") -> EvalRow:
        for r in self.rows:
            if r.system == system and r.config == config and r.mode == mode:
                return r
        raise KeyError(f"no row for system={system!r} config={config!r} mode={mode!r}")

    def best_single(self) -> EvalRow | None:
        """The best single mode (dense or sparse) of the reference configuration."""
        singles = [
            r
            for r in self.rows
            if r.system == "m3-hybrid"
            and r.mode_obj is not None
            and r.mode_obj.is_single
            and r.config_obj is not None
            and r.config_obj.is_reference
        ] or [
            r
            for r in self.rows
            if r.system == "m3-hybrid" and r.mode_obj is not None and r.mode_obj.is_single
        ]
        return max(singles, key=lambda r: r.metrics[PRIMARY]) if singles else None

    def best(self, *, system: str = "m3-hybrid", modes: Sequence[str] | None = None) -> EvalRow | None:
        """The row with the highest nDCG@10 among ``system``'s rows (optionally only ``modes``)."""
        rows = [r for r in self.rows if r.system == system and (modes is None or r.mode in modes)]
        return max(rows, key=lambda r: r.metrics[PRIMARY]) if rows else None

    def paired_delta(self, a: EvalRow, b: EvalRow, metric: str = PRIMARY) -> tuple[float, float, float]:
        """Mean per-query ``a - b`` of ``metric`` with a paired bootstrap 95% CI: (mean, lo, hi)."""
        da, db = np.asarray(a.per_query[metric]), np.asarray(b.per_query[metric])
        if da.shape != db.shape:
            raise InvalidInputError(f"rows {a.label!r} and {b.label!r} were scored on different queries")
        diff = da - db
        lo, hi = _bootstrap_ci(diff, np.random.default_rng(self.seed + 2), self.bootstrap)
        return float(diff.mean()), lo, hi

    def add_row(self, row: EvalRow) -> None:
        """Add a row (e.g. another system scored with :func:`score_run`) and refresh the comparisons."""
        if len(row.per_query.get(PRIMARY, ())) != self.num_queries:
            raise InvalidInputError(
                f"row {row.label!r} was scored on {len(row.per_query.get(PRIMARY, ()))} queries, "
                f"the report on {self.num_queries}"
            )
        self.rows.append(row)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the paired deltas vs the best single mode and the % of the reference config."""
        best = self.best_single()
        ref_by_mode: dict[str, EvalRow] = {}
        for r in self.rows:  # the first reference configuration listed wins
            c = r.config_obj
            if r.system == "m3-hybrid" and c is not None and c.is_reference and not c.colbert:
                ref_by_mode.setdefault(r.mode, r)
        rng = np.random.default_rng(self.seed + 1)
        for r in self.rows:
            if best is not None:
                diff = np.asarray(r.per_query[PRIMARY]) - np.asarray(best.per_query[PRIMARY])
                lo, hi = _bootstrap_ci(diff, rng, self.bootstrap)
                r.delta_vs_best_single = (float(diff.mean()), lo, hi)
            ref = ref_by_mode.get(r.mode.removesuffix("-norescore"))
            r.pct_of_reference = (
                100.0 * r.metrics[PRIMARY] / ref.metrics[PRIMARY]
                if ref is not None and ref.metrics[PRIMARY] > 0 and r.system == "m3-hybrid"
                else None
            )

    # -- output

    def to_markdown(self) -> str:
        """A Markdown table with one line per row, then what the columns mean."""
        best = self.best_single()
        head = (
            "| system | config | mode | nDCG@10 (95% CI) | ± std | Δ vs best single (95% CI) | % of float "
            "| R@10 | R@100 | MRR@10 | p50 ms | p95 ms | disk | RSS Δ | vec RAM/doc |"
        )
        lines = [head, "|" + " --- |" * (head.count("|") - 1)]
        for r in self.rows:
            d = r.delta_vs_best_single
            delta = "–" if d is None else f"{d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f})"
            lines.append(
                f"| {r.system} | {r.config or '–'} | {r.mode or '–'} "
                f"| {r.metrics[PRIMARY]:.4f} ({r.ndcg_ci[0]:.4f}–{r.ndcg_ci[1]:.4f}) | {r.ndcg_std:.3f} "
                f"| {delta} | {_fmt(r.pct_of_reference, 2)} "
                f"| {r.metrics['recall@10']:.4f} | {r.metrics['recall@100']:.4f} | {r.metrics['mrr@10']:.4f} "
                f"| {_fmt_ms(r.latency_p50_ms)} | {_fmt_ms(r.latency_p95_ms)} "
                f"| {_fmt_bytes(r.disk_bytes)} | {_fmt_bytes(r.rss_delta_bytes)} "
                f"| {_fmt_bytes(r.ram_bytes_per_doc)} |"
            )
        ref = f"{best.config}:{best.mode}" if best else "none"
        legend = [
            "",
            f"Dataset `{self.dataset}`: {self.num_docs:,} documents, {self.num_queries:,} queries. "
            f"CIs: bootstrap over queries ({self.bootstrap} resamples, seed {self.seed}).",
            f"Δ vs best single: paired per-query nDCG@10 difference against `{ref}` (best of dense/sparse "
            "on the reference configuration); a CI that spans 0 is no measurable difference. "
            "% of float: nDCG@10 relative to the same mode on the unquantized full-dimension configuration.",
            "p50/p95: store query time only (queries were encoded beforehand), after a warm-up. "
            "disk: index folder size; RSS Δ: process memory growth while building the index (in-process, "
            "noisy); vec RAM/doc: vector bytes per document the layout keeps in RAM (computed, "
            "excludes HNSW links and payload).",
        ]
        for key, value in self.meta.items():
            if isinstance(value, (str, int, float)) and value != "":
                legend.append(f"- {key}: {value}")
        legend += [f"- note: {n}" for n in self.notes]
        for r in self.rows:
            if r.note:
                legend.append(f"- `{r.label}`: {r.note}")
        return "\n".join(lines + legend) + "\n"

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = {k: v for k, v in asdict(r).items() if k not in ("per_query", "config_obj", "mode_obj")}
            if per_query:
                d["per_query_ndcg@10"] = r.per_query.get(PRIMARY, [])
            rows.append(d)
        return {
            "dataset": self.dataset,
            "num_docs": self.num_docs,
            "num_queries": self.num_queries,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "meta": self.meta,
            "notes": self.notes,
            "rows": rows,
        }

    def to_json(self, *, per_query: bool = False, indent: int | None = 2) -> str:
        """The report as JSON (``per_query`` adds each row's per-query nDCG@10 list)."""
        return json.dumps(self.to_dict(per_query=per_query), indent=indent)

    def plot(
        self,
        path: str | os.PathLike[str],
        *,
        title: str | None = None,
        recommended: tuple[str, str] | None = None,
    ) -> Path:
        """PNG: nDCG@10 (95% CI) against vector RAM per document, one colour per mode.

        Markers tell the preset family (float, int8, binary, TurboQuant, MRL funnel); the
        Pareto front (no other point has less memory and higher nDCG@10) is drawn and its
        points labelled; ``recommended`` = (config, mode) is ringed.  Experiment modes
        (names that are not built-in modes) and latency stay in the table, not here.
        Other systems are grey squares drawn under ours.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter

        rows = [
            r
            for r in self.rows
            if r.ram_bytes_per_doc
            and r.ram_bytes_per_doc > 0
            and (r.system != "m3-hybrid" or r.mode.removesuffix("-norescore") in MODES)
        ]
        fig, ax = plt.subplots(figsize=(11, 6.5), dpi=130)  # labels are measured at the saved dpi
        modes = list(dict.fromkeys(r.mode for r in rows if r.system == "m3-hybrid"))
        palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf"]
        color = {m: palette[i % len(palette)] for i, m in enumerate(modes)}
        ours = [r for r in rows if r.system == "m3-hybrid"]
        for r in rows:
            if r.system == "m3-hybrid":
                continue
            y = r.metrics[PRIMARY]
            x = float(r.ram_bytes_per_doc or 0)
            ax.errorbar(
                [x],
                [y],
                yerr=[[y - r.ndcg_ci[0]], [r.ndcg_ci[1] - y]],
                fmt="s",
                color="0.55",
                ms=6,
                capsize=2,
                alpha=0.6,
                zorder=1,
            )

        for r in ours:
            y = r.metrics[PRIMARY]
            x = float(r.ram_bytes_per_doc or 0)
            hollow = r.mode.endswith("-norescore")
            ax.errorbar(
                [x],
                [y],
                yerr=[[y - r.ndcg_ci[0]], [r.ndcg_ci[1] - y]],
                fmt=_marker(r.config),
                color=color[r.mode],
                mfc="white" if hollow else color[r.mode],
                ms=7,
                capsize=2,
                elinewidth=0.8,
                alpha=0.9,
                zorder=3,
            )
        front = _pareto(ours)
        if front:
            xs = [float(r.ram_bytes_per_doc or 0) for r in front]
            ys = [r.metrics[PRIMARY] for r in front]
            ax.step(
                xs, ys, where="post", color="black", lw=1, ls="--", alpha=0.7, zorder=2, label="Pareto front"
            )
        labelled = list(front)
        rec_row = None
        if recommended is not None:
            rec_row = next((r for r in ours if (r.config, r.mode) == recommended), None)
            if rec_row is not None:
                ax.scatter(
                    [float(rec_row.ram_bytes_per_doc or 0)],
                    [rec_row.metrics[PRIMARY]],
                    s=380,
                    facecolors="none",
                    edgecolors="black",
                    linewidths=2,
                    zorder=4,
                )
                if rec_row not in labelled:
                    labelled.append(rec_row)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_bytes(v)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel("vector RAM per document (log scale; quantized presets with originals on disk)")
        ax.set_ylabel("nDCG@10 (95% bootstrap CI)")
        ax.grid(True, which="major", alpha=0.3)
        handles = [plt.Line2D([], [], marker="o", ls="", color=color[m], label=m) for m in modes]
        families = [
            ("o", "float / float16"),
            ("s", "int8"),
            ("v", "binary"),
            ("D", "TurboQuant"),
            ("P", "MRL funnel"),
            ("X", "other"),
        ]
        present = {_marker(r.config) for r in ours}
        handles += [
            plt.Line2D([], [], marker=mk, ls="", color="0.3", label=lab)
            for mk, lab in families
            if mk in present
        ]
        if front:
            handles.append(plt.Line2D([], [], color="black", ls="--", label="Pareto front"))
        if rec_row is not None:
            handles.append(
                plt.Line2D(
                    [], [], marker="o", ms=12, ls="", mfc="none", mec="black", mew=2, label="recommended"
                )
            )
        if any(r.system != "m3-hybrid" for r in rows):
            handles.append(plt.Line2D([], [], marker="s", ls="", color="0.55", label="other system"))
        ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.set_title(
            title or f"{self.dataset}: {self.num_docs:,} docs, {self.num_queries:,} queries", fontsize=11
        )
        fig.tight_layout()
        fig.canvas.draw()  # final scales and layout first: labels are placed in display space
        others = [r for r in rows if r.system != "m3-hybrid"]
        ordered = ([rec_row] if rec_row is not None else []) + [r for r in labelled if r is not rec_row]
        points = [(float(r.ram_bytes_per_doc or 0), r.metrics[PRIMARY]) for r in rows]
        _place_labels(fig, ax, ordered + others, rec_row, points)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=130)
        plt.close(fig)
        return out


def _marker(config: str) -> str:
    first = config.split("+")[0]
    if "mrl" in config:
        return "P"
    if first in ("none", "float16"):
        return "o"
    if first == "int8":
        return "s"
    if first.startswith("binary"):
        return "v"
    if first.startswith("turbo"):
        return "D"
    return "X"


def _short(config: str) -> str:
    """A short point label: the preset and MRL size, without the layout suffix."""
    return "+".join(p for p in config.split("+") if p != "on-disk")


def _pareto(rows: Sequence[EvalRow]) -> list[EvalRow]:
    """Rows no other row beats on both memory (lower) and nDCG@10 (higher), by memory."""
    ordered = sorted(rows, key=lambda r: (float(r.ram_bytes_per_doc or 0), -r.metrics[PRIMARY]))
    front: list[EvalRow] = []
    best = -math.inf
    for r in ordered:
        if r.metrics[PRIMARY] > best:
            front.append(r)
            best = r.metrics[PRIMARY]
    return front


def _place_labels(
    fig: Any,
    ax: Any,
    rows: Sequence[EvalRow],
    highlight: EvalRow | None,
    points: Sequence[tuple[float, float]] = (),
) -> None:
    """Label points without overlaps: try a few offsets per label, keep the first free one;
    a label that fits nowhere is left out (except the highlighted one)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    # Markers are obstacles too: a label must not hide another point.
    taken: list[Any] = []
    for px, py in points:
        cx, cy = ax.transData.transform((px, py))
        taken.append(Bbox.from_extents(cx - 4, cy - 4, cx + 4, cy + 4))
    if highlight is not None:  # the ring around the recommended point
        cx, cy = ax.transData.transform((float(highlight.ram_bytes_per_doc or 0), highlight.metrics[PRIMARY]))
        taken.append(Bbox.from_extents(cx - 13, cy - 13, cx + 13, cy + 13))
    offsets = [(dx, dy) for dy in (6, -14, 16, -24) for dx in (8, -8)]
    for r in rows:
        x, y = float(r.ram_bytes_per_doc or 0), r.metrics[PRIMARY]
        text = f"{_short(r.config)} · {r.mode}" if r.system == "m3-hybrid" else r.system
        placed = None
        for dx, dy in offsets:
            t = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7.5,
                ha="left" if dx > 0 else "right",
                zorder=5,
                fontweight="bold" if r is highlight else "normal",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
            box = t.get_window_extent(renderer).expanded(1.04, 1.3)
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(o) for o in taken):
                placed = box
                # A thin leader from the label to its point (a separate artist: not an obstacle).
                ax.annotate(
                    "",
                    (x, y),
                    xytext=(dx, dy + 3),
                    textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3},
                    zorder=4,
                )
                break
            t.remove()
        if placed is None and r is not highlight:
            continue  # every offset collides: leave this point unlabelled (the table has it)
        if placed is None:  # the recommended point is always labelled
            dx, dy = offsets[0]
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7.5, zorder=5)
            placed = t.get_window_extent(renderer)
        taken.append(placed)


# --------------------------------------------------------------------------- running


def _dir_size(path: Path) -> int:
    """Bytes the folder really occupies (allocated blocks, like ``du``): preallocated but
    unwritten file tails do not count, where the platform reports blocks."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, f))
                blocks = getattr(st, "st_blocks", None)
                total += blocks * 512 if blocks is not None else st.st_size
    return total


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _records(dataset: BeirDataset, enc: EncodedTexts, with_colbert: bool) -> Iterator[Record]:
    for i, (did, text) in enumerate(zip(dataset.doc_ids, dataset.doc_texts, strict=True)):
        yield Record(
            id=did,
            text=text,
            dense=enc.dense[i] if enc.dense is not None else None,
            sparse=enc.sparse[i] if enc.sparse is not None else None,
            colbert=enc.colbert[i] if with_colbert and enc.colbert is not None else None,
        )


def _open_store(
    config: EvalConfig, encoder: Encoder, path: Path, store_options: Mapping[str, Any]
) -> HybridStore:
    from .store import HybridStore

    return HybridStore(
        f"eval_{config.name.replace('+', '_').replace('.', '_')}",
        encoder=encoder,
        path=path,
        quantization=config.quantization,
        mrl_dim=config.mrl_dim,
        mrl_quantization=config.mrl_quantization,
        colbert=config.colbert,
        on_disk=config.on_disk,
        **dict(store_options),
    )


def evaluate(
    encoder: Encoder,
    dataset: BeirDataset,
    configs: Sequence[EvalConfig] = (EvalConfig(),),
    modes: str | Sequence[str | EvalMode] = DEFAULT_MODES,
    *,
    encoded: EncodedDataset | None = None,
    k: int = 100,
    workdir: str | os.PathLike[str] | None = None,
    keep_indexes: bool = False,
    batch_size: int | None = None,
    warmup: int = 5,
    bootstrap: int = 1000,
    seed: int = 0,
    store_options: Mapping[str, Any] | None = None,
    show_progress: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Index ``dataset`` once per configuration and score every mode on it.

    ``encoded`` reuses vectors from :func:`encode_dataset` (else they are computed here,
    once).  Modes the encoder cannot serve (e.g. ``sparse`` without a sparse model,
    ``colbert`` without a ColBERT configuration) are skipped and listed in the notes.
    The sparse-only mode does not depend on the dense quantization or MRL, so it runs on
    the first configuration only.  ``k`` hits are retrieved per query (>= 100 for
    Recall@100).  Indexes live under ``workdir`` (a temporary folder by default) and are
    deleted afterwards unless ``keep_indexes``.  ``store_options`` go to ``HybridStore``
    (e.g. ``{"candidate_k": 200}``).
    """
    if not isinstance(encoder, Encoder):
        raise InvalidTypeError(f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}")
    if not isinstance(dataset, BeirDataset):
        raise InvalidTypeError(f"dataset must be a BeirDataset (see load_beir), got {type(dataset).__name__}")
    if not configs:
        raise InvalidInputError("no configuration to evaluate")
    for i, c in enumerate(configs):
        if not isinstance(c, EvalConfig):
            raise InvalidTypeError(f"configs[{i}] must be an EvalConfig, got {type(c).__name__}")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"configuration {next(n for n in names if names.count(n) > 1)!r} is listed twice"
        )
    if k < 100:
        raise InvalidInputError(f"k must be >= 100 to compute Recall@100, got {k}")
    mode_list = parse_modes(modes)
    from .quantization import get_preset

    for c in configs:
        get_preset(c.quantization)  # an unknown preset fails before the (slow) encoding
    outputs = set(encoder.outputs)
    want_colbert = any(c.colbert for c in configs)

    notes: list[str] = []
    if encoded is None:
        encoded = encode_dataset(
            encoder, dataset, colbert=want_colbert, batch_size=batch_size, show_progress=show_progress
        )
    else:
        if encoded.encoder_fingerprint and encoded.encoder_fingerprint != encoder.identity.fingerprint():
            raise InvalidInputError("encoded vectors were made by another encoder (fingerprints differ)")
        if not encoded.matches(dataset):
            raise InvalidInputError(
                "encoded vectors do not match the dataset's document/query ids (order matters)"
            )
        if want_colbert and encoded.docs.colbert is None:
            raise InvalidInputError(
                "a colbert configuration needs encoded ColBERT vectors (encode with colbert=True)"
            )

    report = EvalReport(dataset.name, dataset.num_docs, dataset.num_queries, bootstrap=bootstrap, seed=seed)
    report.meta.update(
        {
            "model": encoder.identity.model_id,
            "sparse model": encoder.identity.sparse_model_id or "",
            "encode docs (s)": round(encoded.doc_seconds, 1),
            "encode queries (s)": round(encoded.query_seconds, 1),
            "k": k,
        }
    )
    report.notes.extend(dataset.notes)
    sparse_nnz = float(np.mean([len(s) for s in encoded.docs.sparse])) if encoded.docs.sparse else 0.0
    dense_dim = int(encoded.docs.dense.shape[1]) if encoded.docs.dense is not None else None
    qv = encoded.queries

    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="m3-eval-"))
    base.mkdir(parents=True, exist_ok=True)
    sparse_done: set[str] = set()
    bar = None
    total_steps = len(configs) * (1 + len(mode_list))
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc="evaluate", unit="step")
    step = 0

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if bar is not None:
            bar.set_postfix_str(what)
            bar.update(1)
        if progress is not None:
            progress(what, step, total_steps)

    passes_before = encoder.forward_passes
    try:
        for config in configs:
            runnable: list[EvalMode] = []
            for m in mode_list:
                missing = {"dense", "sparse"} & m.needs - outputs
                if missing:
                    notes.append(
                        f"mode {m.name} skipped: the encoder has no {'/'.join(sorted(missing))} output"
                    )
                elif m.colbert_rerank and not config.colbert:
                    if not want_colbert:
                        notes.append(f"mode {m.name} skipped: no colbert configuration (use --colbert)")
                elif m.retrieval_mode == "sparse" and m.name in sparse_done:
                    pass  # identical on every configuration: scored once
                elif m.rescore is False and not _rescore_applies(config):
                    notes.append(
                        f"mode {m.name} skipped on {config.name}: nothing is quantized, no rescoring"
                    )
                else:
                    runnable.append(m)
            if config.mrl_dim and "dense" not in outputs:
                raise UnsupportedOperationError(f"configuration {config.name}: MRL needs a dense output")
            path = base / config.name
            if path.exists():
                shutil.rmtree(path)
            gc.collect()
            rss0 = _rss()
            t0 = time.perf_counter()
            store = _open_store(config, encoder, path, store_options or {})
            try:
                store.add(_records(dataset, encoded.docs, config.colbert), batch_size=256)
                index_s = time.perf_counter() - t0
                tick(f"{config.name}: indexed")
                runs = []
                for m in runnable:
                    runs.append((m, *_run_queries(store, m, qv, k, warmup)))
                    if m.retrieval_mode == "sparse":
                        sparse_done.add(m.name)
                    tick(f"{config.name}: {m.name}")
                # Before scoring: ranx's own allocations must not count as the index's memory.
                rss1 = _rss()
            finally:
                store.close()
            disk = _dir_size(path)
            for m, ranked, lat in runs:
                row = score_run(
                    dataset,
                    ranked,
                    config=config.name,
                    mode=m.name,
                    latencies_s=lat,
                    bootstrap=bootstrap,
                    seed=seed,
                )
                row.config_obj, row.mode_obj = config, m
                row.index_seconds, row.disk_bytes, row.rss_delta_bytes = index_s, disk, rss1 - rss0
                row.ram_bytes_per_doc = vector_ram_bytes(
                    config,
                    dense_dim if "dense" in m.needs else None,
                    sparse_nnz if "sparse" in m.needs else 0.0,
                )
                report.rows.append(row)
            if not keep_indexes:
                shutil.rmtree(path, ignore_errors=True)
            for _ in range(len(mode_list) - len(runnable)):
                tick(f"{config.name}: skipped")
    finally:
        if bar is not None:
            bar.close()
        if workdir is None and not keep_indexes:
            shutil.rmtree(base, ignore_errors=True)
    if encoder.forward_passes != passes_before:
        # Timings would include model time: a bug in how vectors are handed to the store.
        notes.append(
            f"the encoder ran {encoder.forward_passes - passes_before} forward passes during retrieval"
        )
    report.notes.extend(dict.fromkeys(notes))
    report.refresh()
    return report


def _rescore_applies(config: EvalConfig) -> bool:
    if config.mrl_dim:
        return True
    from .quantization import get_preset

    return get_preset(config.quantization).quantized


def _run_queries(
    store: HybridStore, mode: EvalMode, qv: EncodedTexts, k: int, warmup: int
) -> tuple[dict[str, list[str]], list[float]]:
    kwargs = mode.query_kwargs()
    use_dense = "dense" in mode.needs and qv.dense is not None
    use_sparse = "sparse" in mode.needs and qv.sparse is not None
    use_colbert = mode.colbert_rerank and qv.colbert is not None

    def one(i: int) -> list[str]:
        hits = store.query(
            dense=qv.dense[i] if use_dense and qv.dense is not None else None,
            sparse=qv.sparse[i] if use_sparse and qv.sparse is not None else None,
            colbert=qv.colbert[i] if use_colbert and qv.colbert is not None else None,
            limit=k,
            **kwargs,
        )
        # The engine orders exactly tied scores (common under rrf: rank 1 + 3 equals rank 3 + 1)
        # arbitrarily, run to run; ranking ties by id makes a rerun reproduce the same metrics.
        return [h.id for h in sorted(hits, key=lambda h: (-h.score, str(h.id)))]

    n = len(qv.ids)
    for i in range(min(warmup, n)):  # warm caches and lazy initialisation, untimed
        one(i)
    ranked: dict[str, list[str]] = {}
    lat: list[float] = []
    for i, qid in enumerate(qv.ids):
        t0 = time.perf_counter()
        ids = one(i)
        lat.append(time.perf_counter() - t0)
        ranked[qid] = ids
    return ranked, lat
