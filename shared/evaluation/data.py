"""The test collection: BEIR-layout corpus, queries and graded qrels (:func:`load_beir`)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError


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


def _unique_entries(path: Path, what: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, id, object) of each entry of a corpus or queries file; a repeated id is refused."""
    seen: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path, what):
        entry_id = _entry_id(obj, path, lineno)
        if entry_id in seen:
            raise InvalidInputError(
                f"{path}:{lineno}: duplicate id {entry_id!r} (first on line {seen[entry_id]})"
            )
        seen[entry_id] = lineno
        yield lineno, entry_id, obj


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
    empty_docs: list[str] = []
    empty_queries: set[str] = set()
    for lineno, did, obj in _unique_entries(corpus_p, "corpus"):
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
    for lineno, qid, obj in _unique_entries(queries_p, "queries"):
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
