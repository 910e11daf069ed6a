"""Long documents: chunking strategies compared at chunk and at document level.

Data: ``benchmarks/data/bible-dev``, rebuilt as a long-document set. A document is a KJV
chapter (its verses joined by single spaces); its chunks are its verses (character spans
in the chapter). Each WEB query's relevant verse is its relevant chunk, and that verse's
chapter its relevant document. Default subset (for a loaded 2-core machine): ten books
(Ezra, Esth, Eccl, Song, Lam, Dan, Hos, Amos, Zech, Ruth: 1,932 verses in 98
chapters) and the 192 queries whose verse is in them.

Strategies (one row each, per model setup and mode; add one by appending to ``STRATEGIES``):

* ``naive``: every verse encoded alone (``HybridStore``);
* ``late``: late chunking (``HybridStore(late_chunking=True)``): every verse pooled from
  one pass over its chapter (windows past the model's ``max_length``).

Levels: ``chunk`` scores the top-10 verses; ``document`` scores the top-10 chapters, each
chapter ranked at its best verse among the top 100 hits, or (rows ``+ group-by``) by the
store's ``group_by="metadata.chapter"`` query (one hit per chapter). A strategy's searches
are ``Search`` rows (``SEARCHES``): a new way to search is one more.

Model setups: all-MiniLM-L6-v2 (mean-pooled, ``max_length`` 256 so chapters take several
windows) + SPLADE-tiny, the small real models the packages ship; and the tiny BGE-M3-format
checkpoint (random weights: mechanics only, its scores mean nothing). nDCG@10 with its 95%
bootstrap CI (``shared.evaluation``); encode time = the encoder's own time for the whole
subset (the store's add then reuses its cache).

    python benchmarks/long_docs.py                 # default subset; replaces its RESULTS.md section
    python benchmarks/long_docs.py --books Ruth,Jonah --no-append     # quick check
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Offline models, quiet tokenizers; the repository on the path (run as a script).
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "bible-dev"
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402
from shared.evaluation import PRIMARY, BeirDataset, score_run  # noqa: E402
from shared.store import HybridStore  # noqa: E402
from shared.types import ChunkOf, Record  # noqa: E402

DEFAULT_BOOKS = "Ezra,Esth,Eccl,Song,Lam,Dan,Hos,Amos,Zech,Ruth"
MODES = ("dense", "sparse", "hybrid")
#: Chunk hits read per query to rank documents at their best chunk.
DOC_POOL = 100


@dataclass
class LongDocs:
    """Chapters as documents, verses as their chunks, and the queries of both levels."""

    chapters: dict[str, str]
    #: chapter id -> [(verse id, start, end)]
    verses: dict[str, list[tuple[str, int, int]]]
    queries: dict[str, str]
    verse_qrels: dict[str, dict[str, int]]
    chapter_qrels: dict[str, dict[str, int]]

    def level(self, name: str) -> BeirDataset:
        qrels = self.verse_qrels if name == "chunk" else self.chapter_qrels
        return BeirDataset(
            doc_ids=[], doc_texts=[], queries=self.queries, qrels=qrels, name=f"long-docs:{name}"
        )

    def records(self) -> list[Record]:
        return [
            Record(
                id=vid,
                text=self.chapters[ch][a:b],
                ref_doc_id=ch,
                metadata={"chapter": ch},
                chunk_of=ChunkOf(ch, a, b),
            )
            for ch, vs in self.verses.items()
            for vid, a, b in vs
        ]


def chapter_of(verse_id: str) -> str:
    return verse_id.rsplit(".", 1)[0]


def load_long_docs(books: set[str], max_queries: int | None) -> LongDocs:
    """The chapters of ``books`` and the WEB queries whose verse is in them."""
    chapters: dict[str, list[tuple[str, str]]] = {}
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["book"] in books:
                chapters.setdefault(chapter_of(row["id"]), []).append((row["id"], row["text"]))
    texts: dict[str, str] = {}
    verses: dict[str, list[tuple[str, int, int]]] = {}
    for ch, rows in chapters.items():
        pos, spans = 0, []
        for vid, text in rows:
            spans.append((vid, pos, pos + len(text)))
            pos += len(text) + 1
        texts[ch] = " ".join(t for _, t in rows)
        verses[ch] = spans
    known = {vid for vs in verses.values() for vid, _, _ in vs}
    qrels: dict[str, dict[str, int]] = {}
    with (DATA / "qrels_web.tsv").open(encoding="utf-8") as f:
        for line in f:
            qid, did, grade = line.rstrip("\n").split("\t")
            if did in known:
                qrels.setdefault(qid, {})[did] = int(grade)
    qids = list(qrels)[:max_queries] if max_queries else list(qrels)
    queries: dict[str, str] = {}
    with (DATA / "queries_web.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["id"] in qrels:
                queries[row["id"]] = row["text"]
    queries = {q: queries[q] for q in qids}
    verse_qrels = {q: qrels[q] for q in qids}
    chapter_qrels = {q: {chapter_of(d): g for d, g in qrels[q].items()} for q in qids}
    return LongDocs(texts, verses, queries, verse_qrels, chapter_qrels)


# -- strategies --------------------------------------------------------------------------------


def search_chunks(store: HybridStore, data: LongDocs, mode: str, level: str) -> dict[str, list[str]]:
    """Ranked verse ids (chunk level) or chapter ids at their best verse (document level)."""
    qids = list(data.queries)
    limit = 10 if level == "chunk" else DOC_POOL
    hits = store.query_batch([data.queries[q] for q in qids], mode=mode, limit=limit)
    if level == "chunk":
        return {q: [h.id for h in hs] for q, hs in zip(qids, hits, strict=True)}
    return {q: list(dict.fromkeys(chapter_of(h.id) for h in hs)) for q, hs in zip(qids, hits, strict=True)}


def search_grouped(store: HybridStore, data: LongDocs, mode: str, level: str) -> dict[str, list[str]]:
    """Document level with the store's group-by: one hit per chapter, chapters ranked by it."""
    qids = list(data.queries)
    hits = store.query_batch(
        [data.queries[q] for q in qids], mode=mode, limit=10, group_by="metadata.chapter", group_size=1
    )
    return {q: [str(h.group) for h in hs] for q, hs in zip(qids, hits, strict=True)}


@dataclass(frozen=True)
class Search:
    """One way to search a strategy's store: a row per level it applies to."""

    suffix: str
    levels: tuple[str, ...]
    run: Callable[[HybridStore, LongDocs, str, str], dict[str, list[str]]]


#: Every strategy's searches: its chunks ranked as they are, and chapters by the store's group-by.
SEARCHES = (
    Search("", ("chunk", "document"), search_chunks),
    Search(" + group-by", ("document",), search_grouped),
)


def encode_naive(encoder: Any, data: LongDocs) -> None:
    encoder.encode([r.text for r in data.records()], "document")


def encode_late(encoder: Any, data: LongDocs) -> None:
    chapters = list(data.verses)
    encoder.encode_chunks_batch(
        [data.chapters[c] for c in chapters], [[(a, b) for _, a, b in data.verses[c]] for c in chapters]
    )


@dataclass
class Strategy:
    """One way to index and search long documents: a row of the table per mode and level."""

    name: str
    #: Fills the encoder's cache with the strategy's vectors (timed).
    encode: Callable[[Any, LongDocs], None]
    #: The store options of the strategy.
    store_options: dict[str, Any] = field(default_factory=dict)
    searches: tuple[Search, ...] = SEARCHES


STRATEGIES = [
    Strategy("naive", encode_naive),
    Strategy("late", encode_late, {"late_chunking": True}),
]


# -- model setups --------------------------------------------------------------------------


def setups(cache_size: int, only: str | None = None) -> list[tuple[str, Callable[[], Any]]]:
    from shared.encoders import MINILM, SPLADE_TINY, load_encoder

    def small() -> Any:
        return load_encoder(MINILM, sparse_model=SPLADE_TINY, show_progress=False, cache_size=cache_size)

    def tiny_m3() -> Any:
        from tests.support.checkpoint import make_bge_m3_checkpoint

        path = make_bge_m3_checkpoint(Path(tempfile.mkdtemp(prefix="long-docs-m3-")))
        return load_encoder(path, show_progress=False, cache_size=cache_size)

    every = {"small": ("MiniLM + SPLADE-tiny", small), "tiny-m3": ("tiny BGE-M3 (random weights)", tiny_m3)}
    return [setup for key, setup in every.items() if only is None or key == only]


def run(
    books: set[str], max_queries: int | None, bootstrap: int, only: str | None = None
) -> tuple[list[dict[str, Any]], LongDocs]:
    data = load_long_docs(books, max_queries)
    records = data.records()
    rows: list[dict[str, Any]] = []
    for setup_name, make in setups(len(records) * 2 + 10, only):
        encoder = make()
        encoder.encode(["warm up"], "document")
        for strategy in STRATEGIES:
            passes = encoder.forward_passes
            start = time.perf_counter()
            strategy.encode(encoder, data)
            seconds = time.perf_counter() - start
            used = encoder.forward_passes - passes
            with HybridStore("long", encoder=encoder, **strategy.store_options) as store:
                store.add(records)
                for search, level in [(x, lv) for x in strategy.searches for lv in x.levels]:
                    dataset = data.level(level)
                    name = strategy.name + search.suffix
                    for mode in MODES:
                        ranked = search.run(store, data, mode, level)
                        row = score_run(dataset, ranked, config=name, mode=mode, bootstrap=bootstrap)
                        rows.append(
                            {
                                "setup": setup_name,
                                "strategy": name,
                                "level": level,
                                "mode": mode,
                                "ndcg": row.metrics[PRIMARY],
                                "ci": row.ndcg_ci,
                                "encode_s": seconds,
                                "passes": used,
                                "queries": row.n_queries,
                            }
                        )
                        lo, hi = row.ndcg_ci
                        print(
                            f"{setup_name:30s} {name:18s} {level:8s} {mode:6s} "
                            f"nDCG@10 {row.metrics[PRIMARY]:.3f} [{lo:.3f}, {hi:.3f}] "
                            f"encode {seconds:.1f}s ({used} passes)",
                            flush=True,
                        )
    return rows, data


def section(rows: list[dict[str, Any]], data: LongDocs, books: str, command: str, wall: float) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    n_verses = sum(len(v) for v in data.verses.values())
    lines = [
        f"## Long documents: naive vs late chunking ({_dt.date.today().isoformat()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} shared cores, no GPU; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end; wall time {wall / 60:.1f} min.",
        f"Command: `{command}`.",
        "",
        f"Data: bible-dev as long documents: books {books.replace(',', ', ')}: {len(data.chapters)} "
        f"chapters (documents, verses joined by spaces) of {n_verses} verses (chunks); "
        f"{len(data.queries)} WEB queries, relevant chunk = their verse, relevant document = its chapter. "
        "Document level: chapters ranked at their best verse in the top 100, or by the store's "
        "group_by on the chapter (`+ group-by`, one hit per chapter). nDCG@10 with its 95% "
        "bootstrap CI. Encode = the encoder's time for the whole subset, one strategy after the "
        "other (passes = model forward passes, both models of a pair).",
        "",
        "| model | strategy | level | dense | sparse | hybrid (m3) | encode s (passes) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    keyed: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        keyed.setdefault((r["setup"], r["strategy"], r["level"]), {})[r["mode"]] = r
    for (setup_name, strategy, level), by_mode in keyed.items():
        cells = [f"{m['ndcg']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]" for m in (by_mode[x] for x in MODES)]
        first = by_mode[MODES[0]]
        lines.append(
            f"| {setup_name} | {strategy} | {level} | {' | '.join(cells)} | "
            f"{first['encode_s']:.0f} ({first['passes']}) |"
        )
    lines += [
        "",
        "Late chunking pools each verse from one pass over its chapter (windows of the model's "
        "max_length: 256 tokens for MiniLM, 512 for SPLADE-tiny and the tiny BGE-M3); dense = mean "
        "of the span's token states, normalised (for CLS-pooled BGE-M3 too: a span has no CLS of its "
        "own), sparse = the model's own rule over the span. The tiny BGE-M3 rows check the mechanics "
        "only: with random weights every token state is alike, so the mean-pooled verses of one chapter "
        "are near-identical (its late dense rows). Each bible-dev query restates one verse, so a verse's "
        "own words are all that matter here and its chapter's context blurs neighbouring verses "
        "together: late chunking loses on this set (least with hybrid and at document level) and "
        "runs fewer forward passes (one per chapter window, no per-verse padding; wall times here "
        "swing with the shared machine's load). Chunks that "
        "lean on their document (pronouns, running topics) are where it is meant to help: measure "
        "your own documents.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--books", default=DEFAULT_BOOKS, help="comma-separated OSIS book codes")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--setup", choices=("small", "tiny-m3"), help="one model setup only")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, data = run(set(args.books.split(",")), args.max_queries, args.bootstrap, args.setup)
    argv_shown = " ".join(sys.argv[1:])
    text = section(
        rows,
        data,
        args.books,
        f"python benchmarks/long_docs.py {argv_shown}".strip(),
        time.perf_counter() - start,
    )
    print(text)
    if not args.no_append:
        write_section(text)


if __name__ == "__main__":
    main()
