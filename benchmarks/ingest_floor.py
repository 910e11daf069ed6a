"""Ingest against LangChain's ensemble: how low can an embedded-store ingest go with this engine?

Three builds of the same corpus (bible-dev, the whole OT: the ensembles benchmark's ingest), one
process, taking turns ``--rounds`` times, dense vectors served from a table (no model cost):

* **LangChain**: ``BM25Retriever.from_documents`` + ``InMemoryVectorStore.from_documents`` (what
  ``benchmarks/hybrid_vs_ensembles.py`` times as LangChain's ingest);
* **engine floor**: only the calls of the pinned Qdrant Edge binding that any ingest of these
  verses into one collection must make: its BM25 tokenizer (``Bm25.embed_document``) per verse,
  one ``qe.Point`` per verse with the smallest payload that keeps the caller's id and text, and
  ``upsert_points`` in slices of 256, then a flush. No Python of ours, no checks, no guard;
* **ours**: ``HybridEnsembleRetriever.from_documents`` (MiniLM-sized dense rows + BM25 in the
  engine): the add, until it returns (its index is built after it, as in the ensembles benchmark).

Wall and CPU seconds (this process). If the floor is not below LangChain's build, no ingest
through this binding can be faster than LangChain's in one process.

    python benchmarks/ingest_floor.py              # replaces its RESULTS.md section
    python benchmarks/ingest_floor.py --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import write_section
from benchmarks.hybrid_vs_ensembles import Timer, build_langchain, load

SECTION = "## ingest floor: the engine binding's own cost against LangChain's ensemble build"


def engine_floor(docs: list[tuple[str, str]], rows: np.ndarray, where: Path) -> Timer:
    import qdrant_edge as qe

    from shared.layouts import uuid5_str

    config = qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=rows.shape[1], distance=qe.Distance.Cosine)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    with Timer() as seconds:
        shard = qe.EdgeShard.create(str(where), config)
        bm25 = qe.Bm25(
            qe.Bm25Config(
                k=1.2, b=0.75, avg_len=20.0, language="english", stopwords=qe.StopwordsSet(), stemmer=None
            )
        )
        for lo in range(0, len(docs), 256):
            points = [
                qe.Point(
                    uuid5_str(doc_id),
                    {"dense": rows[k].data, "bm25": bm25.embed_document(text)},
                    {"text": text, "doc_id": doc_id},
                )
                for k, (doc_id, text) in enumerate(docs[lo : lo + 256], start=lo)
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
        shard.flush()
    shard.close()
    return seconds


def ours(docs: list[tuple[str, str]], emb: Any, where: Path) -> Timer:
    from langchain_core.documents import Document

    from langchain_ext import HybridEnsembleRetriever

    documents = [Document(page_content=t, id=i) for i, t in docs]
    with Timer() as seconds:
        retriever = HybridEnsembleRetriever.from_documents(documents, emb, k=10, path=where)
    retriever.vectorstore.store.close()  # its index build (after the add) is not timed
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    from langchain_core.embeddings import Embeddings

    docs, _, _ = load(1, 0)
    rows = np.random.default_rng(0).standard_normal((len(docs), 384)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    table = {text: rows[k].tolist() for k, (_, text) in enumerate(docs)}

    class Table(Embeddings):  # type: ignore[misc]
        """MiniLM-sized rows looked up by text: every build gets its vectors for free."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [table[t] for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return table[text]

    emb = Table()
    builds = {
        "LangChain": lambda d: build_langchain(docs, emb)[1],
        "engine floor": lambda d: engine_floor(docs, rows, d / "floor"),
        "ours": lambda d: ours(docs, emb, d / "ours"),
    }
    for build in builds.values():  # warm-up: imports, first-use costs
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp))
    got: dict[str, list[Timer]] = {name: [] for name in builds}
    load_start = os.getloadavg()
    names = list(builds)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            tmp = Path(tempfile.mkdtemp(prefix="ingest-floor-"))
            gc.collect()
            got[name].append(builds[name](tmp))
            shutil.rmtree(tmp)
            print(
                f"round {r}: {name} wall {got[name][-1].wall:.2f} s cpu {got[name][-1].cpu:.2f} s", flush=True
            )
    load_end = os.getloadavg()

    def med(name: str, what: str) -> float:
        return statistics.median(getattr(t, what) for t in got[name])

    n = len(docs)
    lines = [
        f"{SECTION}, {dt.date.today().isoformat()}",
        "",
        f"Command: `python benchmarks/ingest_floor.py --rounds {args.rounds}`. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}; "
        f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end.",
        "",
        f"{n:,} KJV verses (bible-dev, whole OT), 384-d dense rows from a table, BM25; medians of "
        f"{args.rounds} rounds, the three taking turns.",
        "",
        "| build | wall s | CPU s | CPU us per verse |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in names:
        lines.append(
            f"| {name} | {med(name, 'wall'):.2f} | {med(name, 'cpu'):.2f} | "
            f"{1e6 * med(name, 'cpu') / n:.0f} |"
        )
    floor, lc = med("engine floor", "cpu"), med("LangChain", "cpu")
    lines += [
        "",
        f"Engine floor / LangChain CPU: {floor / lc:.2f}; what the floor leaves for everything else an "
        f"ingest does (ids, checks, the guard, payload, metadata) to stay below LangChain: "
        f"{max(0.0, 1e6 * (lc - floor) / n):.0f} us per verse; ours spends "
        f"{1e6 * (med('ours', 'cpu') - floor) / n:.0f} us per verse above the floor.",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
