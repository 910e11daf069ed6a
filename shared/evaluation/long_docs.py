"""Chunking strategies compared on your long documents (``m3-hybrid eval --long-docs``).

Input (:func:`load_long_docs`), the BEIR files with one of two corpus shapes:

* whole documents (``{"_id"|"id", "title"?, "text"}`` per line), cut into chunks by a
  splitter (:func:`split_spans`): ``paragraph`` (blank-line boundaries), ``sentence``
  (after ``.``, ``!`` or ``?`` followed by white space, and at blank lines) or ``chars``
  (words), the units packed in order into chunks of at most ``chunk_size`` characters
  (a unit longer than that is cut into ``chunk_size`` windows). Chunk ``i`` of document
  ``D`` is ``D#i`` (from 0);
* chunks already cut (the eval corpus format plus a ``document_key`` field naming each
  chunk's document): a document is its chunks in file order joined by a blank line.

Qrels point either to documents or to chunks (not both in one file); any other id is an
error. Chunk judgements also judge their documents (a document's grade: its best chunk's).

Strategies (:data:`STRATEGIES`, one entry each: the store options, the levels indexed and
the query options), each also with ``+group`` (one hit per document, ``group_by`` the
document id):

* ``naive``: every chunk embedded alone;
* ``late``: late chunking (``late_chunking=True``): each chunk pooled from one pass over
  its document;
* ``hierarchical``: the chunks (level ``chunk``) and the whole documents (level
  ``document``, encoded up to the model's ``max_length``) in one collection, both levels
  searched in one request (``levels=``, fused by RRF).

Levels scored (nDCG@10 with its bootstrap 95% CI, as :func:`~shared.evaluation.evaluate`):
``chunk`` (the chunk hits in rank order; document records are skipped) when the qrels
judge chunks, and ``document`` (each document ranked at its best hit among the ``k``).

The recommendation (:meth:`LongDocReport.recommend`), at the qrels' level and in the first
mode: the baseline is the first strategy listed (``naive`` by default); another strategy
is recommended only when its paired per-query nDCG@10 difference to the baseline has a 95%
CI entirely above 0, the highest nDCG@10 among those; otherwise the baseline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UnsupportedOperationError
from ..types import Encoder, Hit, Record
from ..validation import positive_int
from .configs import EvalMode, parse_modes
from .data import BeirDataset, _entry_text, _read_qrels, _unique_entries
from .metrics import PRIMARY, EvalRow, bootstrap_ci, scored_row
from .report import ndcg_cell

__all__ = [
    "CHUNK",
    "DEFAULT_CHUNK_SIZE",
    "DOCUMENT",
    "GROUP_SUFFIX",
    "SPLITTERS",
    "STRATEGIES",
    "ChunkingStrategy",
    "LongDocRecommendation",
    "LongDocReport",
    "LongDocRow",
    "LongDocSet",
    "evaluate_chunking",
    "load_long_docs",
    "parse_strategies",
    "split_spans",
]

#: The levels a result is scored at, and the level names of the indexed records.
CHUNK, DOCUMENT = "chunk", "document"
SPLITTERS = ("paragraph", "sentence", "chars")
DEFAULT_CHUNK_SIZE = 1000
#: A strategy name with this suffix queries one hit per document.
GROUP_SUFFIX = "+group"
#: The payload key every record carries its document id in (what ``+group`` groups by).
_DOCUMENT_ID_KEY = "ref_doc_id"

_UNITS: dict[str, re.Pattern[str]] = {
    # Runs of text between blank lines / sentence ends / white space, without the white space.
    "paragraph": re.compile(r"\S(?:.*?\S)??(?=\s*\n[ \t]*\n|\s*\Z)", re.S),
    "sentence": re.compile(r"\S.*?(?:[.!?](?=\s)|(?=\s*\n[ \t]*\n)|(?=\s*\Z))", re.S),
    "chars": re.compile(r"\S+"),
}


def split_spans(
    text: str, splitter: str = "paragraph", chunk_size: int = DEFAULT_CHUNK_SIZE
) -> list[tuple[int, int]]:
    """The chunks of ``text`` as ``(start, end)`` character spans (see the module docstring)."""
    if splitter not in _UNITS:
        raise InvalidInputError(f"unknown splitter {splitter!r}; choose from {', '.join(SPLITTERS)}")
    size = positive_int(chunk_size, "chunk_size")
    spans: list[tuple[int, int]] = []
    for m in _UNITS[splitter].finditer(text):
        a, b = m.start(), m.end()
        if spans and b - spans[-1][0] <= size:
            spans[-1] = (spans[-1][0], b)  # the unit joins the chunk before it
            continue
        for s in range(a, b, size):  # a unit longer than a chunk: windows, without edge spaces
            piece = text[s : min(s + size, b)]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append((s + lead, s + len(piece.rstrip())))
    return spans


@dataclass
class LongDocSet:
    """Documents, their chunks, queries and the judgements at each level scored."""

    name: str
    documents: dict[str, str]
    #: document id -> [(chunk id, start, end)], spans in the document's text
    chunks: dict[str, list[tuple[str, int, int]]]
    queries: dict[str, str]
    document_qrels: dict[str, dict[str, int]]
    #: None when the qrels judge documents (the chunk level is not scored)
    chunk_qrels: dict[str, dict[str, int]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_chunks(self) -> int:
        return sum(len(c) for c in self.chunks.values())

    @property
    def levels(self) -> tuple[str, ...]:
        """The levels scored; the first is the level the qrels judge."""
        return (CHUNK, DOCUMENT) if self.chunk_qrels is not None else (DOCUMENT,)

    def dataset(self, level: str) -> BeirDataset:
        """The queries with the judgements of ``level``, for scoring."""
        qrels = self.chunk_qrels if level == CHUNK else self.document_qrels
        assert qrels is not None
        return BeirDataset([], [], self.queries, qrels, f"{self.name}:{level}")

    def records(self, *, with_documents: bool, located: bool) -> list[Record]:
        """One record per chunk (``located``: with its place, for late chunking) and, with
        ``with_documents``, one per whole document; the hierarchy fields set on each."""
        out: list[Record] = []
        for doc, text in self.documents.items():
            if with_documents:
                out.append(Record(id=doc, text=text, metadata={"level": DOCUMENT}, ref_doc_id=doc))
            for i, (cid, a, b) in enumerate(self.chunks[doc]):
                meta = {"level": CHUNK, "parent_id": doc, "position": i}
                rec = Record(id=cid, text=text[a:b], metadata=meta, ref_doc_id=doc)
                out.append(_located(rec, doc, a, b) if located else rec)
        return out


def _located(record: Record, document: str, start: int, end: int) -> Record:
    """``record`` with its place in its document (late chunking's input)."""
    from dataclasses import replace

    from ..types import ChunkOf

    return replace(record, chunk_of=ChunkOf(document, start, end))


def load_long_docs(
    corpus: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    qrels: str | os.PathLike[str],
    *,
    document_key: str | None = None,
    splitter: str = "paragraph",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    name: str | None = None,
) -> LongDocSet:
    """Read a long-document set (see the module docstring); errors name the file and line."""
    corpus_p, queries_p, qrels_p = Path(corpus), Path(queries), Path(qrels)
    if document_key is None:
        documents, chunks = _split_documents(corpus_p, splitter, chunk_size)
    else:
        documents, chunks = _joined_chunks(corpus_p, document_key)
    all_queries = {
        qid: text
        for lineno, qid, obj in _unique_entries(queries_p, "queries")
        if (text := _entry_text(obj, queries_p, lineno, with_title=False))
    }
    chunk_doc = {cid: doc for doc, cs in chunks.items() for cid, _, _ in cs}
    judged: dict[str, dict[str, int]] = {}
    levels_seen: dict[str, int] = {}
    for lineno, qid, did, grade in _read_qrels(qrels_p):
        if qid not in all_queries:
            raise InvalidInputError(f"{qrels_p}:{lineno}: query id {qid!r} is not in {queries_p}")
        level = DOCUMENT if did in documents else CHUNK if did in chunk_doc else None
        if level is None:
            raise InvalidInputError(
                f"{qrels_p}:{lineno}: {did!r} is neither a document nor a chunk of {corpus_p}"
            )
        levels_seen.setdefault(level, lineno)
        if len(levels_seen) > 1:
            other = levels_seen[CHUNK if level == DOCUMENT else DOCUMENT]
            raise InvalidInputError(
                f"{qrels_p}:{lineno}: judges a {level} but line {other} judges the other level; "
                "judge documents or chunks, not both"
            )
        if grade > 0:
            judged.setdefault(qid, {})[did] = grade
    if not judged:
        raise InvalidInputError(f"{qrels_p}: no query has a positive judgement")
    notes = []
    if len(judged) < len(all_queries):
        notes.append(
            f"{len(all_queries) - len(judged)} queries have no positive judgement and are not scored"
        )
    chunk_qrels = judged if CHUNK in levels_seen else None
    document_qrels = judged
    if chunk_qrels is not None:
        document_qrels = {}
        for qid, rel in chunk_qrels.items():
            per_doc = document_qrels.setdefault(qid, {})
            for cid, grade in rel.items():
                per_doc[chunk_doc[cid]] = max(grade, per_doc.get(chunk_doc[cid], 0))
    return LongDocSet(
        name or corpus_p.parent.name or corpus_p.stem,
        documents,
        chunks,
        {q: all_queries[q] for q in judged},
        document_qrels,
        chunk_qrels,
        notes,
    )


_Chunked = tuple[dict[str, str], dict[str, list[tuple[str, int, int]]]]


def _split_documents(path: Path, splitter: str, chunk_size: int) -> _Chunked:
    documents: dict[str, str] = {}
    chunks: dict[str, list[tuple[str, int, int]]] = {}
    for lineno, doc, obj in _unique_entries(path, "corpus"):
        text = _entry_text(obj, path, lineno, with_title=True)
        spans = split_spans(text, splitter, chunk_size)
        if not spans:
            raise InvalidInputError(f"{path}:{lineno}: document {doc!r} has no text")
        documents[doc] = text
        chunks[doc] = [(f"{doc}#{i}", a, b) for i, (a, b) in enumerate(spans)]
    return documents, chunks


#: What joins a document's given chunks into its text.
_JOIN = "\n\n"


def _joined_chunks(path: Path, document_key: str) -> _Chunked:
    parts: dict[str, list[tuple[str, str]]] = {}
    for lineno, cid, obj in _unique_entries(path, "corpus"):
        doc = obj.get(document_key)
        if doc is None or isinstance(doc, (bool, dict, list)) or doc == "":
            raise InvalidInputError(f"{path}:{lineno}: chunk {cid!r} has no {document_key!r} (its document)")
        text = _entry_text(obj, path, lineno, with_title=True).strip()
        if not text:
            raise InvalidInputError(f"{path}:{lineno}: chunk {cid!r} has no text")
        parts.setdefault(str(doc), []).append((cid, text))
    documents: dict[str, str] = {}
    chunks: dict[str, list[tuple[str, int, int]]] = {}
    for doc, items in parts.items():
        pos, spans = 0, []
        for cid, text in items:
            if cid in parts:
                raise InvalidInputError(f"{path}: chunk id {cid!r} is also a document id")
            spans.append((cid, pos, pos + len(text)))
            pos += len(text) + len(_JOIN)
        documents[doc] = _JOIN.join(t for _, t in items)
        chunks[doc] = spans
    return documents, chunks


# -- strategies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkingStrategy:
    """One way to index and query long documents: a row of the table per mode and level."""

    name: str
    description: str
    #: ``HybridStore`` options of its index
    store_options: Mapping[str, Any] = field(default_factory=dict)
    #: Index the whole documents too (level ``document``), next to the chunks (level ``chunk``)
    with_documents: bool = False
    #: ``HybridStore.query`` options of its queries
    query_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def late(self) -> bool:
        return bool(self.store_options.get("late_chunking"))

    def grouped(self) -> ChunkingStrategy:
        """The same index queried for one hit per document."""
        return ChunkingStrategy(
            self.name + GROUP_SUFFIX,
            self.description + "; one hit per document",
            self.store_options,
            self.with_documents,
            {**self.query_options, "group_by": _DOCUMENT_ID_KEY},
        )

    @property
    def index_name(self) -> str:
        """Strategies with the same index share it."""
        return self.name.removesuffix(GROUP_SUFFIX)


#: The base strategies, by name (each also exists with :data:`GROUP_SUFFIX`).
STRATEGIES: dict[str, ChunkingStrategy] = {
    s.name: s
    for s in (
        ChunkingStrategy("naive", "each chunk embedded alone"),
        ChunkingStrategy(
            "late",
            "late chunking: each chunk pooled from one pass over its document",
            store_options={"late_chunking": True},
        ),
        ChunkingStrategy(
            "hierarchical",
            "chunks and whole documents in one collection, both levels in one request (RRF)",
            with_documents=True,
            query_options={"levels": [CHUNK, DOCUMENT]},
        ),
    )
}


def parse_strategies(spec: str | Sequence[str]) -> list[ChunkingStrategy]:
    """Strategies from names (``all``: every one, with and without ``+group``)."""
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["all"]:
        names = [n + g for n in STRATEGIES for g in ("", GROUP_SUFFIX)]
    out: list[ChunkingStrategy] = []
    for i, n in enumerate(names):
        base = STRATEGIES.get(n.removesuffix(GROUP_SUFFIX))
        if base is None:
            known = ", ".join(STRATEGIES)
            raise InvalidInputError(
                f"unknown strategy {n!r} (item {i}); choose from {known}, each optionally with {GROUP_SUFFIX}"
            )
        if any(s.name == n for s in out):
            raise InvalidInputError(f"strategy {n!r} is listed twice")
        out.append(base.grouped() if n.endswith(GROUP_SUFFIX) else base)
    if not out:
        raise InvalidInputError("no strategy given")
    return out


# -- running and reporting -------------------------------------------------------------------


@dataclass
class LongDocRow:
    """One (strategy, mode, level): its scores and, for its index, what indexing cost."""

    strategy: str
    level: str
    mode: str
    row: EvalRow
    index_seconds: float
    records: int
    #: Paired nDCG@10 difference to the baseline strategy, same mode and level: (mean, lo, hi)
    delta: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class LongDocRecommendation:
    strategy: ChunkingStrategy
    level: str
    mode: str
    baseline: str
    reason: str

    @property
    def code(self) -> str:
        """The lines of Python that index and query the recommended way."""
        store = "".join(f", {k}={v!r}" for k, v in self.strategy.store_options.items())
        query = "".join(f", {k}={v!r}" for k, v in self.strategy.query_options.items())
        return (
            f'store = HybridStore("docs", path="./m3-index", encoder=encoder{store})\n'
            f"hits = store.query(text{query})"
        )

    def to_text(self) -> str:
        return (
            f"Recommended chunking: **{self.strategy.name}** ({self.strategy.description}).\n"
            f"{self.reason}\n\n```python\n{self.code}\n```\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.name,
            "level": self.level,
            "mode": self.mode,
            "baseline": self.baseline,
            "reason": self.reason,
            "store_options": dict(self.strategy.store_options),
            "query_options": dict(self.strategy.query_options),
            "code": self.code,
        }


@dataclass
class LongDocReport:
    """The rows of :func:`evaluate_chunking` and what they were measured on."""

    data: LongDocSet
    strategies: list[ChunkingStrategy]
    modes: list[str]
    rows: list[LongDocRow]
    notes: list[str]
    bootstrap: int
    seed: int

    def row(self, strategy: str, mode: str, level: str) -> LongDocRow:
        for r in self.rows:
            if (r.strategy, r.mode, r.level) == (strategy, mode, level):
                return r
        raise KeyError(f"no row for strategy={strategy!r} mode={mode!r} level={level!r}")

    def recommend(self) -> LongDocRecommendation:
        """The rule of the module docstring."""
        level, mode, base = self.data.levels[0], self.modes[0], self.strategies[0]
        baseline = self.row(base.name, mode, level)
        better = [
            (self.row(s.name, mode, level), s)
            for s in self.strategies[1:]
            if (d := self.row(s.name, mode, level).delta) is not None and d[1] > 0
        ]
        where = f"{level} level, mode {mode}"
        if not better:
            reason = (
                f"No strategy beats {base.name} measurably ({where}): every paired nDCG@10 difference "
                "to it has a 95% CI that reaches 0 or below."
            )
            return LongDocRecommendation(base, level, mode, base.name, reason)
        best, strategy = max(better, key=lambda rs: rs[0].row.metrics[PRIMARY])
        assert best.delta is not None
        d = best.delta
        reason = (
            f"{where}: nDCG@10 {ndcg_cell(best.row)}, {d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f}) over "
            f"{base.name} ({baseline.row.metrics[PRIMARY]:.4f}); the highest of the "
            f"{len(better)} strateg{'y' if len(better) == 1 else 'ies'} whose 95% CI is above 0."
        )
        return LongDocRecommendation(strategy, level, mode, base.name, reason)

    def to_markdown(self) -> str:
        head = (
            f"| strategy | level | mode | nDCG@10 (95% CI) | Δ vs {self.strategies[0].name} (95% CI) "
            "| R@10 | R@100 | MRR@10 | index s | records |"
        )
        lines = [head, "|" + " --- |" * (head.count("|") - 1)]
        for r in self.rows:
            m = r.row.metrics
            d = "–" if r.delta is None else f"{r.delta[0]:+.4f} ({r.delta[1]:+.4f}, {r.delta[2]:+.4f})"
            lines.append(
                f"| {r.strategy} | {r.level} | {r.mode} | {ndcg_cell(r.row)} | {d} | {m['recall@10']:.4f} "
                f"| {m['recall@100']:.4f} | {m['mrr@10']:.4f} | {r.index_seconds:.1f} | {r.records:,} |"
            )
        data = self.data
        lines += [
            "",
            f"Dataset `{data.name}`: {len(data.documents):,} documents in {data.num_chunks:,} chunks, "
            f"{len(data.queries):,} queries judged at the {data.levels[0]} level. CIs: bootstrap over "
            f"queries ({self.bootstrap} resamples, seed {self.seed}); Δ: paired per-query nDCG@10 "
            f"difference to `{self.strategies[0].name}` in the same mode and level.",
            "chunk level: the chunk hits in rank order; document level: each document at its best hit. "
            "index s: the strategy's index build, encoding included (shared by its +group row).",
        ]
        lines += [f"- `{s.name}`: {s.description}" for s in self.strategies]
        lines += [f"- note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.data.name,
            "documents": len(self.data.documents),
            "chunks": self.data.num_chunks,
            "queries": len(self.data.queries),
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "notes": self.notes,
            "rows": [
                {
                    "strategy": r.strategy,
                    "level": r.level,
                    "mode": r.mode,
                    "metrics": r.row.metrics,
                    "ndcg_ci": list(r.row.ndcg_ci),
                    "delta": list(r.delta) if r.delta is not None else None,
                    "index_seconds": r.index_seconds,
                    "records": r.records,
                    "per_query_ndcg@10": r.row.per_query[PRIMARY],
                }
                for r in self.rows
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def evaluate_chunking(
    encoder: Encoder,
    data: LongDocSet,
    strategies: Sequence[ChunkingStrategy] | str = "all",
    modes: Sequence[str | EvalMode] | str = ("hybrid-m3",),
    *,
    k: int = 100,
    bootstrap: int = 1000,
    seed: int = 0,
    workdir: str | os.PathLike[str] | None = None,
    keep_indexes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LongDocReport:
    """Index ``data`` once per strategy's index and score every strategy, mode and level.

    Each index is built afresh under ``workdir`` (a temporary folder by default) and deleted
    afterwards unless ``keep_indexes``.
    """
    chosen = parse_strategies(strategies) if isinstance(strategies, str) else list(strategies)
    mode_list = parse_modes(modes)
    for m in mode_list:
        missing = {"dense", "sparse"} & m.needs - set(encoder.outputs)
        if missing or m.colbert_rerank:
            what = "colbert re-ranking" if m.colbert_rerank else f"a {'/'.join(sorted(missing))} output"
            raise UnsupportedOperationError(f"mode {m.name} needs {what}, which this comparison has not")
    positive_int(k, "k")
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="m3-long-"))
    rows: list[LongDocRow] = []
    notes = list(data.notes)
    say = progress or (lambda msg: None)
    try:
        for index_name in dict.fromkeys(s.index_name for s in chosen):
            users = [s for s in chosen if s.index_name == index_name]
            say(f"indexing: {index_name}")
            path = base / index_name
            shutil.rmtree(path, ignore_errors=True)  # never upsert into another run's chunks
            rows.extend(_strategy_rows(encoder, data, users, mode_list, path, k, bootstrap, seed, notes))
            if not keep_indexes:
                shutil.rmtree(path, ignore_errors=True)
    finally:
        if workdir is None and not keep_indexes:
            shutil.rmtree(base, ignore_errors=True)
    names = [m.name for m in mode_list]
    order = {s.name: i for i, s in enumerate(chosen)}
    rows.sort(key=lambda r: (data.levels.index(r.level), names.index(r.mode), order[r.strategy]))
    _add_deltas(rows, chosen[0].name, bootstrap, seed)
    return LongDocReport(data, chosen, names, rows, list(dict.fromkeys(notes)), bootstrap, seed)


def _strategy_rows(
    encoder: Encoder,
    data: LongDocSet,
    strategies: Sequence[ChunkingStrategy],
    modes: Sequence[EvalMode],
    path: Path,
    k: int,
    bootstrap: int,
    seed: int,
    notes: list[str],
) -> list[LongDocRow]:
    """Build the index the ``strategies`` share, then score each of them per mode and level."""
    from ..encoders.base import TruncationWarning
    from ..store import HybridStore

    first = strategies[0]
    records = data.records(with_documents=first.with_documents, located=first.late)
    add_options: dict[str, Any] = {"documents": data.documents} if first.late else {}
    qids = list(data.queries)
    rows: list[LongDocRow] = []
    with HybridStore(f"long_{first.index_name}", encoder=encoder, path=path, **first.store_options) as store:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncationWarning)
            store.add(records, **add_options)
        seconds = time.perf_counter() - t0
        if any(issubclass(w.category, TruncationWarning) for w in caught):
            notes.append(f"{first.index_name}: some texts were longer than the model's max_length and cut")
        for strategy in strategies:
            for mode in modes:
                options = {**mode.query_kwargs(), **strategy.query_options}
                hits = store.query_batch([data.queries[q] for q in qids], limit=k, **options)
                for level in data.levels:
                    ranked = {q: _ranked(hs, level) for q, hs in zip(qids, hits, strict=True)}
                    row = scored_row(
                        data.dataset(level),
                        ranked,
                        latencies_s=None,
                        bootstrap=bootstrap,
                        seed=seed,
                        system="m3-hybrid",
                        config=strategy.name,
                        mode=mode.name,
                    )
                    rows.append(LongDocRow(strategy.name, level, mode.name, row, seconds, len(records)))
    return rows


def _ranked(hits: Sequence[Hit], level: str) -> list[str]:
    """A query's ranked ids at ``level``: its chunks, or its documents at their best hit."""
    # Exact ties ranked by id, so that a rerun reproduces the metrics (as evaluate does).
    ordered = sorted(hits, key=lambda h: (-h.score, str(h.id)))
    if level == CHUNK:
        return [h.id for h in ordered if h.metadata.get("level") == CHUNK]
    return list(dict.fromkeys(str(h.ref_doc_id) for h in ordered))


def _add_deltas(rows: Sequence[LongDocRow], baseline: str, bootstrap: int, seed: int) -> None:
    by_key = {(r.mode, r.level): r for r in rows if r.strategy == baseline}
    rng = np.random.default_rng(seed + 2)
    for r in rows:
        ref = by_key[(r.mode, r.level)]
        if r is ref:
            continue
        diff = np.asarray(r.row.per_query[PRIMARY]) - np.asarray(ref.row.per_query[PRIMARY])
        lo, hi = bootstrap_ci(diff, rng, bootstrap)
        r.delta = (float(diff.mean()), lo, hi)
