"""Client-side hybrid ensembles vs the engine doing it: quality, query latency, ingest.

Compared on bible-dev (WEB queries -> KJV Old Testament verses), MiniLM (all-MiniLM-L6-v2,
sentence-transformers, as langchain-huggingface / llama-index's HuggingFace embeddings run it)
as the dense model everywhere:

* LangChain ``EnsembleRetriever([BM25Retriever, InMemoryVectorStore retriever], weights=[0.5, 0.5])``
  (rank_bm25, RRF c=60 in Python), and each of its sides alone;
* LlamaIndex ``QueryFusionRetriever([VectorStoreIndex retriever, BM25Retriever], num_queries=1)``
  (bm25s; modes reciprocal_rerank and dist_based_score);
* ours, their replacement: ``HybridEnsembleRetriever.from_documents(docs, embeddings, k=10)``
  (MiniLM + BM25 in one Qdrant Edge collection, the engine's IDF, fused in one request) with its
  defaults and the other fusions; MiniLM + SPLADE-tiny in one collection; and MiniLM +
  SPLADE-tiny + BM25 as a third signal (``bm25=``), each with its default and the other fusions.

Every retriever returns its top 10; nDCG@10 (one relevant verse per query) with paired bootstrap
95% CIs of the per-query difference. Dense document and query vectors are computed once and
served from a cache to every system (the same model, so the same vectors): ingest times are
then the index build of each system; the embedding time is reported once beside them. Latency
(p50, p90) is measured with the model encoding each query live, the systems taking turns per
query, on ``--latency-queries`` queries.

MiniLM encodes the whole corpus and every query once, batched (64, two torch threads), and the
vectors are cached under ``$M3_HYBRID_BENCH_CACHE`` (default ``/tmp/m3-hybrid-bench``) keyed by
the model and a hash of the texts; SPLADE-tiny's vectors of the run's documents likewise. A
subset run (``--docs N``: the 2,000 queries' relevant verses plus a ``random.Random(25)`` sample
of the others) reads its MiniLM rows from the same caches. The two ensembles take 0.2-0.4 s per query on
the loaded development machine: ``--queries`` bounds the run.

    python benchmarks/hybrid_vs_ensembles.py            # replaces its RESULTS.md section
    python benchmarks/hybrid_vs_ensembles.py --queries 200 --docs 1000 --no-write   # quick
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks._results import write_section  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "bible-dev"
#: Where the encoded vectors are kept between runs.
CACHE = Path(os.environ.get("M3_HYBRID_BENCH_CACHE", Path(tempfile.gettempdir()) / "m3-hybrid-bench"))
ENCODE_BATCH = 64
ENCODE_THREADS = 2
SECTION = "Hybrid vs client-side ensembles (BM25 + MiniLM)"
K = 10


# --------------------------------------------------------------------------- data


def all_texts() -> tuple[list[str], list[str]]:
    """Every corpus verse and every query, in file order: what the vector caches hold (a subset
    run reads its rows from them, so the model encodes the corpus once for every setting)."""
    corpus = [json.loads(line)["text"] for line in (DATA / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in (DATA / "queries_web.jsonl").open(encoding="utf-8")]
    return corpus, queries


def load(n_queries: int, n_docs: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, str]]:
    corpus = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (DATA / "queries_web.jsonl").open(encoding="utf-8")]
    qrels = dict(line.split("\t")[:2] for line in (DATA / "qrels_web.tsv").open(encoding="utf-8"))
    # The corpus subset holds the relevant verses of all 2,000 queries, whichever are asked for.
    queries = queries[:n_queries]
    if n_docs:
        relevant = set(qrels.values())
        others = [c["id"] for c in corpus if c["id"] not in relevant]
        keep = relevant | set(random.Random(25).sample(others, max(0, n_docs - len(relevant))))
        corpus = [c for c in corpus if c["id"] in keep]
    qrels = {q["id"]: qrels[q["id"]] for q in queries}
    return [(c["id"], c["text"]) for c in corpus], [(q["id"], q["text"]) for q in queries], qrels


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers, with a vector cache for documents and queries.

    Corpus and query vectors are encoded once per run, in batches, and saved under
    ``CACHE`` keyed by the model and a hash of the texts, so every system gets the same rows and
    a rerun skips the encoding.
    """

    def __init__(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        from shared.encoders import MINILM, packaged_model_path

        # One thread for queries: on 2 shared cores two torch threads thrash (1 s per query
        # instead of 0.13 s).
        torch.set_num_threads(1)
        self.name = MINILM
        self.model = SentenceTransformer(str(packaged_model_path(MINILM)), device="cpu")
        self.cache: dict[str, list[float]] = {}
        self.live = False  # True: encode every call (latency runs)

    def encode(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if self.live or t not in self.cache]
        if missing:
            rows = self.model.encode(missing, batch_size=ENCODE_BATCH, normalize_embeddings=True)
            if self.live:
                fresh = dict(zip(missing, (r.tolist() for r in rows), strict=True))
                return [fresh[t] for t in texts]
            self.cache.update(zip(missing, (r.tolist() for r in rows), strict=True))
        return [self.cache[t] for t in texts]

    def warm(self, texts: list[str]) -> float:
        """Fill the cache for ``texts`` (from ``CACHE`` when there); seconds spent encoding."""
        import torch

        path, seconds = cache_paths(self.name, texts, "npy")
        if path.is_file() and seconds.is_file():
            self.cache.update(zip(texts, np.load(path).tolist(), strict=True))
            return float(seconds.read_text())
        # Batched, two threads: the corpus pass is throughput (queries are timed with one thread).
        torch.set_num_threads(ENCODE_THREADS)
        t0 = time.perf_counter()
        rows = self.encode(texts)
        spent = time.perf_counter() - t0
        torch.set_num_threads(1)
        np.save(path, np.asarray(rows, dtype=np.float32))
        seconds.write_text(f"{spent:.3f}")
        return spent


def cache_paths(model: str, texts: Sequence[str], ext: str) -> tuple[Path, Path]:
    """Where ``model``'s vectors of ``texts`` are kept, and the seconds their encoding took."""
    digest = hashlib.sha256(model.encode())
    for t in texts:
        digest.update(b"\0" + t.encode())
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"{model.replace('/', '_')}-{len(texts)}-{digest.hexdigest()[:16]}"
    return stem.with_suffix(f".{ext}"), stem.with_suffix(".seconds")


def splade_rows(texts: list[str]) -> tuple[list[dict[int, float]], float]:
    """SPLADE-tiny document vectors of ``texts`` (cached under ``CACHE`` as offsets, indices and
    values); seconds spent encoding."""
    import torch

    from shared.encoders import SPLADE_TINY, load_encoder

    path, seconds = cache_paths(SPLADE_TINY, texts, "npz")
    if not (path.is_file() and seconds.is_file()):
        torch.set_num_threads(ENCODE_THREADS)
        enc = load_encoder(None, sparse_model=SPLADE_TINY, show_progress=False, cache_size=1)
        t0 = time.perf_counter()
        rows = enc.encode(texts, batch_size=ENCODE_BATCH).sparse or []
        spent = time.perf_counter() - t0
        torch.set_num_threads(1)
        sizes = np.asarray([len(r) for r in rows], dtype=np.int64)
        np.savez(
            path,
            offsets=np.concatenate([[0], np.cumsum(sizes)]),
            indices=np.asarray([k for r in rows for k in r], dtype=np.int64),
            values=np.asarray([v for r in rows for v in r.values()], dtype=np.float32),
        )
        seconds.write_text(f"{spent:.3f}")
    z = np.load(path)
    off, idx, val = z["offsets"], z["indices"].tolist(), z["values"].tolist()
    out = [dict(zip(idx[a:b], val[a:b], strict=True)) for a, b in itertools.pairwise(off.tolist())]
    return out, float(seconds.read_text())


def langchain_embeddings(m: MiniLM) -> Any:
    from langchain_core.embeddings import Embeddings

    class STEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return m.encode(list(texts))

        def embed_query(self, text: str) -> list[float]:
            return m.encode([text])[0]

    return STEmbeddings()


def llama_embeddings(m: MiniLM) -> Any:
    from llama_index.core.embeddings import BaseEmbedding

    class STEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return m.encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return m.encode([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return m.encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return m.encode(list(texts))

    return STEmbedding(model_name="all-MiniLM-L6-v2", embed_batch_size=256)


# --------------------------------------------------------------------------- metrics


def ndcg_at_10(ranked: Sequence[str], relevant: str) -> float:
    for rank, doc in enumerate(ranked[:K]):
        if doc == relevant:
            return 1.0 / math.log2(rank + 2)
    return 0.0


def paired_ci(a: np.ndarray, b: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# --------------------------------------------------------------------------- systems


class Timer:
    """Wall and CPU seconds (this process's CPU) of a ``with`` block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def build_langchain(docs: list[tuple[str, str]], emb: Any) -> tuple[dict[str, Any], Timer]:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    documents = [Document(page_content=t, id=i, metadata={"id": i}) for i, t in docs]
    with Timer() as seconds:
        bm25 = BM25Retriever.from_documents(documents, k=K)
        dense = InMemoryVectorStore.from_documents(documents, emb).as_retriever(search_kwargs={"k": K})
        ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])

    def ids(retriever: Any) -> Callable[[str], list[str]]:
        return lambda q: [d.metadata["id"] for d in retriever.invoke(q)][:K]

    # Their single sides cost as much again per query: on 2 shared cores only the ensemble is scored.
    return {"lc-ensemble": ids(ensemble)}, seconds


def build_llama(docs: list[tuple[str, str]], emb: Any) -> tuple[dict[str, Any], Timer]:
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    Settings.llm = MockLLM()
    nodes = [TextNode(text=t, id_=i) for i, t in docs]
    with Timer() as seconds:
        index = VectorStoreIndex(nodes, embed_model=emb)
        vector = index.as_retriever(similarity_top_k=K)
        bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=K)

    def fusion(mode: str) -> Any:
        return QueryFusionRetriever(
            [vector, bm25], mode=mode, similarity_top_k=K, num_queries=1, use_async=False, llm=MockLLM()
        )

    def ids(retriever: Any) -> Callable[[str], list[str]]:
        return lambda q: [n.node.node_id for n in retriever.retrieve(q)][:K]

    return {"li-fusion-rrf": ids(fusion("reciprocal_rerank"))}, seconds


def build_ours(docs: list[tuple[str, str]], emb: Any, where: Path) -> tuple[Any, Timer, float]:
    """Our retriever, the time its ``from_documents`` took (the add returns once every point is
    written and searchable), and the wall seconds until its HNSW index was built and swapped in
    (``wait_indexed``: above the engine's indexing threshold the build runs in a writer process
    after the add; queries meanwhile search the unindexed points exactly)."""
    from langchain_core.documents import Document

    from langchain_ext import HybridEnsembleRetriever

    documents = [Document(page_content=t, id=i) for i, t in docs]
    t0 = time.perf_counter()
    with Timer() as seconds:
        retriever = HybridEnsembleRetriever.from_documents(documents, emb, k=K, path=where)
    retriever.vectorstore.store.wait_indexed()
    return retriever, seconds, time.perf_counter() - t0


def build_ours_learned(
    docs: list[tuple[str, str]],
    emb: Any,
    where: Path,
    dense: Callable[[str], list[float]],
    sparse: dict[str, dict[int, float]],
    bm25: bool,
) -> tuple[Any, Timer, float]:
    """MiniLM + SPLADE-tiny (+ BM25 as a third signal) in one collection, through the LangChain
    adapter; the records come with their dense and SPLADE vectors (BM25 is weighted at add)."""
    from langchain_ext import HybridQdrantVectorStore
    from shared.encoders import SPLADE_TINY, load_encoder
    from shared.encoders.bm25 import bm25_for_corpus
    from shared.types import Record

    # One torch thread, as every query encoder here (loading an encoder sets torch's process-wide
    # thread count, by default to the physical cores: the live latency runs would then thrash).
    splade = load_encoder(None, sparse_model=SPLADE_TINY, show_progress=False, threads=1)
    records = [Record(id=i, text=t, dense=dense(t), sparse=sparse[i]) for i, t in docs]
    t0 = time.perf_counter()
    with Timer() as seconds:
        extra = {"bm25": bm25_for_corpus(t for _, t in docs)} if bm25 else {}
        store = HybridQdrantVectorStore(emb, sparse_embedding=splade, path=where, **extra)
        store.store.add(records)
    store.store.wait_indexed()
    return store, seconds, time.perf_counter() - t0


# --------------------------------------------------------------------------- run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--docs", type=int, default=0, help="corpus subset size (0: all 23,093)")
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument(
        "--no-splade", action="store_true", help="leave out the SPLADE-tiny and three-signal rows"
    )
    ap.add_argument("--no-write", action="store_true", help="do not replace the RESULTS.md section")
    ap.add_argument("--json", type=Path, default=None, help="also write the per-row figures here")
    args = ap.parse_args()

    load_start = os.getloadavg()
    run_start = time.perf_counter()
    docs, queries, qrels = load(args.queries, args.docs)
    print(f"{len(docs):,} documents, {len(queries):,} queries", file=sys.stderr)
    # Everything our stores import, imported before any ingest is timed (as LangChain's are).
    import qdrant_edge  # noqa: F401

    import langchain_ext  # noqa: F401
    import shared.store  # noqa: F401

    m = MiniLM()
    corpus_texts, query_texts = all_texts()
    embed_docs_s = m.warm(corpus_texts)
    m.warm(query_texts)
    splade: dict[str, dict[int, float]] = {}
    splade_s = float("nan")
    if not args.no_splade:
        # The documents of this run only (SPLADE-tiny is not shared by the other systems).
        rows, splade_s = splade_rows([t for _, t in docs])
        splade = {i: row for (i, _), row in zip(docs, rows, strict=True)}
    lc_emb, li_emb = langchain_embeddings(m), llama_embeddings(m)

    tmp = Path(tempfile.mkdtemp(prefix="hybrid-vs-ensembles-"))
    try:
        lc, lc_ingest = build_langchain(docs, lc_emb)
        li, li_ingest = build_llama(docs, li_emb)
        ours, ours_ingest, ours_indexed = build_ours(docs, lc_emb, tmp / "bm25")
        learned: dict[str, Any] = {}
        learned_ingest: dict[str, Timer] = {}
        learned_indexed: dict[str, float] = {}
        if not args.no_splade:
            dense = lambda t: m.cache[t]  # noqa: E731
            for name, with_bm25 in (("splade", False), ("3sig", True)):
                learned[name], learned_ingest[name], learned_indexed[name] = build_ours_learned(
                    docs, lc_emb, tmp / name, dense, splade, with_bm25
                )
        print(
            f"ingest (wall / cpu s): lc {lc_ingest.wall:.1f} / {lc_ingest.cpu:.1f}, "
            f"li {li_ingest.wall:.1f} / {li_ingest.cpu:.1f}, "
            f"ours {ours_ingest.wall:.1f} / {ours_ingest.cpu:.1f} (indexed after "
            f"{ours_indexed:.1f}), learned { {k: round(v.wall, 1) for k, v in learned_ingest.items()} }",
            file=sys.stderr,
        )

        store = ours.vectorstore.store
        ours_rows: dict[str, tuple[Any, dict[str, Any]]] = {
            "ours-bm25-default": (store, {}),
            "ours-dense": (store, {"mode": "dense"}),
            "ours-bm25": (store, {"mode": "sparse"}),
            "ours-bm25-rrf": (store, {"fusion": "rrf"}),
            "ours-bm25-dbsf": (store, {"fusion": "dbsf"}),
        }
        for name, vs in learned.items():
            st = vs.store
            if name == "splade":
                ours_rows["ours-splade"] = (st, {"mode": "sparse"})
            ours_rows[f"ours-{name}-default"] = (st, {})
            ours_rows[f"ours-{name}-rrf"] = (st, {"fusion": "rrf"})
            ours_rows[f"ours-{name}-dbsf"] = (st, {"fusion": "dbsf"})
        systems: dict[str, Callable[[str], list[str]]] = {**lc, **li}
        for name, (st, opts) in ours_rows.items():
            systems[name] = lambda q, st=st, opts=opts: [h.id for h in st.query(q, limit=K, **opts)]

        scores: dict[str, np.ndarray] = {}
        for name, fn in systems.items():
            t0 = time.perf_counter()
            scores[name] = np.array([ndcg_at_10(fn(text), qrels[qid]) for qid, text in queries])
            print(
                f"{name:28s} nDCG@10 {scores[name].mean():.4f}  ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )

        # Latency: the systems take turns per query, the model encoding every query (our
        # encoders' caches are emptied before each call): query encoding included.
        def forget() -> None:
            for st in (store, *(vs.store for vs in learned.values())):
                enc = st.encoder
                for e in (enc, getattr(enc, "dense_encoder", None), getattr(enc, "sparse_encoder", None)):
                    if e is not None:
                        e.cache.clear()
                bm25 = st._bm25_encoder()
                if bm25 is not None:
                    bm25.cache.clear()

        timed: dict[str, Callable[[str], Any]] = {
            "lc-ensemble": lc["lc-ensemble"],
            "li-fusion-rrf": li["li-fusion-rrf"],
            "ours-bm25-default": lambda q: [d.id for d in ours.invoke(q)],
        }
        for name, vs in learned.items():
            timed[f"ours-{name}-default"] = lambda q, vs=vs: [d.id for d in vs.similarity_search(q, k=K)]
        lat: dict[str, list[float]] = {n: [] for n in timed}
        import torch

        torch.set_num_threads(1)  # the latency runs' one thread, whatever was loaded since
        m.live = True
        for _, text in queries[: args.latency_queries]:
            for name, fn in timed.items():
                forget()
                t0 = time.perf_counter()
                fn(text)
                lat[name].append(time.perf_counter() - t0)
        m.live = False
        p50 = {n: float(np.percentile(v, 50)) * 1000 for n, v in lat.items()}
        p90 = {n: float(np.percentile(v, 90)) * 1000 for n, v in lat.items()}
        ours.vectorstore.close()
        for vs in learned.values():
            vs.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_avg = os.getloadavg()

    def ci(a: str, b: str) -> str:
        mean, lo, hi = paired_ci(scores[a], scores[b], args.bootstrap)
        return f"{mean:+.4f} [{lo:+.4f}, {hi:+.4f}]"

    def best_single(name: str) -> str:
        """The best of the single sides a row fuses (theirs: compared with ours' dense and BM25)."""
        sides = ["ours-dense", "ours-bm25"]
        if "splade" in name:
            sides = ["ours-dense", "ours-splade"]
        elif "3sig" in name:
            sides = ["ours-dense", "ours-splade", "ours-bm25"]
        return max(sides, key=lambda n: scores[n].mean())

    command = (
        f"python benchmarks/hybrid_vs_ensembles.py --queries {args.queries} --docs {args.docs} "
        f"--latency-queries {args.latency_queries}" + (" --no-splade" if args.no_splade else "")
    )
    lines = [
        f"## {SECTION} ({date.today().isoformat()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU; load "
        f"average (1 / 5 / 15 min) {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} at the "
        f"start and {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} at the end of the run "
        f"({(time.perf_counter() - run_start) / 60:.0f} min). Command: `{command}`. bible-dev OT, "
        f"{len(queries):,} WEB queries, {len(docs):,} KJV "
        + (
            "verses (the whole Old Testament). "
            if len(docs) == len(corpus_texts)
            else "verses (the queries' relevant verses + a random.Random(25) sample of the others). "
        )
        + "MiniLM (sentence-transformers) is the dense model of every system, with the same vectors "
        "(encoded once, batched, and cached). Rows `ours-splade-*`: MiniLM + SPLADE-tiny in one "
        "collection; `ours-3sig-*`: the same plus BM25 as a third signal (`bm25=`). Cells: nDCG@10, "
        "and the paired per-query difference with its bootstrap 95% CI.",
        "",
        "| retriever | nDCG@10 | vs best single side (ours) | vs LangChain ensemble "
        "| vs LlamaIndex fusion (rrf) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in scores:
        lines.append(
            f"| {name} | {scores[name].mean():.4f} | {ci(name, best_single(name))} "
            f"| {ci(name, 'lc-ensemble')} | {ci(name, 'li-fusion-rrf')} |"
        )
    lines += [
        "",
        f"Latency per query, live (the model encodes each query, one torch thread; query encoding "
        f"included), systems taking turns, {args.latency_queries} queries:",
        "",
        "| retriever | p50 ms | p90 ms | p50 vs ours default |",
        "| --- | ---: | ---: | ---: |",
    ]
    base = "ours-bm25-default"
    for name in timed:
        lines.append(f"| {name} | {p50[name]:.1f} | {p90[name]:.1f} | {p50[name] / p50[base]:.2f}x |")
    lines += [
        "",
        "Ingest of the corpus, dense vectors already computed (every system embeds with the same model: "
        f"{embed_docs_s:.0f} s for all {len(corpus_texts):,} verses here, batch {ENCODE_BATCH}, "
        f"{ENCODE_THREADS} torch threads, when not cached):",
        "",
        "Ingest s (wall) is until the call returns with every document searchable; CPU s is this "
        "process's CPU time over the same call (on shared cores the fairer measure of the work done). "
        "Our add returns once its points are written; above the engine's indexing threshold its HNSW "
        "graph is then built in a writer process and swapped in, queries meanwhile searching the "
        "unindexed points exactly: the last column is the wall time until that index is in "
        "(`wait_indexed()`), which LangChain and LlamaIndex, scanning every vector per query, never build.",
        "",
        "| system | ingest s | CPU s | until indexed s |",
        "| --- | ---: | ---: | ---: |",
        "| LangChain: BM25Retriever.from_documents + InMemoryVectorStore.from_documents "
        f"| {lc_ingest.wall:.1f} | {lc_ingest.cpu:.1f} | - |",
        "| LlamaIndex: VectorStoreIndex + BM25Retriever.from_defaults "
        f"| {li_ingest.wall:.1f} | {li_ingest.cpu:.1f} | - |",
        "| ours: HybridEnsembleRetriever.from_documents (MiniLM + BM25, Qdrant Edge) "
        f"| {ours_ingest.wall:.1f} | {ours_ingest.cpu:.1f} | {ours_indexed:.1f} |",
    ]
    for name, what in (("splade", "MiniLM + SPLADE-tiny"), ("3sig", "MiniLM + SPLADE-tiny + BM25")):
        if name in learned_ingest:
            lines.append(
                f"| ours: {what}, SPLADE vectors given too (SPLADE-tiny encoding: {splade_s:.0f} s for "
                f"these {len(docs):,} verses) | {learned_ingest[name].wall:.1f} | "
                f"{learned_ingest[name].cpu:.1f} | {learned_indexed[name]:.1f} |"
            )
    lines += ["", "Targets (issue 25), ours with its defaults (MiniLM + BM25) against each ensemble:", ""]
    for other in ("lc-ensemble", "li-fusion-rrf"):
        mean, _, hi = paired_ci(scores[base], scores[other], args.bootstrap)
        speed = p50[other] / p50[base]
        lines.append(
            f"- vs {other}: CI upper bound {hi:+.4f} ({'met' if hi >= 0 else 'missed'}: >= 0); mean "
            f"{mean:+.4f} ({'met' if mean >= -0.002 else 'missed'}: >= -0.002); p50 live {speed:.1f}x "
            f"({'met' if speed >= 4 else 'missed'}: >= 4x)"
        )
    for other, theirs in (("LangChain", lc_ingest), ("LlamaIndex", li_ingest)):
        lines.append(
            f"- ingest vs {other}: ours {ours_ingest.wall:.1f} s vs {theirs.wall:.1f} s wall "
            f"({'met' if ours_ingest.wall < theirs.wall else 'missed'}); CPU {ours_ingest.cpu:.1f} s vs "
            f"{theirs.cpu:.1f} s ({'met' if ours_ingest.cpu < theirs.cpu else 'missed'}); ours until "
            f"indexed {ours_indexed:.1f} s"
        )
    if args.no_splade:
        lines.append("- MiniLM + SPLADE-tiny and three-signal rows: not in this run (`--no-splade`)")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "ndcg": {n: float(s.mean()) for n, s in scores.items()},
                    "p50_ms": p50,
                    "p90_ms": p90,
                    "ingest_s": {
                        "lc": lc_ingest.wall,
                        "li": li_ingest.wall,
                        "ours": ours_ingest.wall,
                        **{k: v.wall for k, v in learned_ingest.items()},
                    },
                    "ingest_cpu_s": {
                        "lc": lc_ingest.cpu,
                        "li": li_ingest.cpu,
                        "ours": ours_ingest.cpu,
                        **{k: v.cpu for k, v in learned_ingest.items()},
                    },
                    "indexed_s": {"ours": ours_indexed, **learned_indexed},
                    "load_start": load_start,
                    "load": load_avg,
                },
                indent=1,
            )
        )
    if not args.no_write:
        write_section(section)


if __name__ == "__main__":
    main()
