"""Where a query's time goes in the store benchmark's overhead phase, part by part.

The same six variants as ``benchmarks/store.py``'s overhead phase (raw qdrant_edge, HybridStore
rrf/m3/dbsf, the LlamaIndex store's ``query()``, LangChain's ``..._by_vector``), taking turns per
query in a rotating order on the same shard, with the parts of each query timed where they run:
the engine call, the store's query vectors (checks, and for LlamaIndex the encoding of the query
text), the hits read back, LlamaIndex's translation of its ``VectorStoreQuery`` and its nodes.
Beside each part, the same call repeated in a loop of its own (warm caches): the difference is what
the rotation costs, an engine call between any two turns of a variant evicting what it touched.

Runs on the collection that ``benchmarks/store.py`` leaves in its work folder:

    python benchmarks/store.py --points 100000 --configs int8 --overhead int8 --no-recall \\
        --no-local --sparse-terms 20,60 --workdir /tmp/hp20 --no-append
    python benchmarks/overhead_parts.py /tmp/hp20

The timers add a call per part (about the same for every variant); the totals read a little
above the store benchmark's. Prints a markdown table; nothing is written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import (
    CANDIDATES,
    LIMIT,
    OVERHEAD_REPEATS,
    llama_hybrid_queries,
    lookup_sparse_embedding,
    raw_request,
    raw_search_params,
)

PARTS = ("engine", "query vectors", "hits", "LlamaIndex translation", "LlamaIndex nodes")


class Timers:
    """Seconds per (variant, part): a part is timed only while a variant's query runs."""

    def __init__(self) -> None:
        self.variant: str | None = None
        self.seconds: dict[tuple[str, str], list[float]] = {}

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            if self.variant is not None:
                self.seconds.setdefault((self.variant, part), []).append(time.perf_counter() - t)
            return out

        return timed


class _TimedShard:
    """The shard with its ``query`` timed (every other call passes through)."""

    def __init__(self, shard: Any, timers: Timers) -> None:
        self._shard = shard
        self.query = timers.wrap("engine", shard.query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shard, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="benchmarks/store.py's --workdir (its int8 collection and queries)")
    parser.add_argument("--config", default="int8")
    args = parser.parse_args(argv)

    from langchain_core.embeddings import Embeddings

    import llama_index_ext.vector_store as llama_module
    from langchain_ext import HybridQdrantVectorStore as LangChainStore
    from llama_index_ext import HybridQdrantVectorStore as LlamaStore

    logging.getLogger("shared").setLevel(logging.ERROR)
    work = Path(args.workdir)
    data = np.load(work / "queries.npz")
    qd = data["dense"]
    qs = [{int(k): v for k, v in s.items()} for s in json.loads(str(data["sparse"]))]
    n = len(qd)
    table = {f"q{i}": qs[i] for i in range(n)}

    lookup = lookup_sparse_embedding(table)  # as in store.py's overhead phase
    storage = {"quantization": args.config, "fusion": "rrf"}
    llama = LlamaStore("bench", path=str(work / args.config), sparse_embed_model=lookup, **storage)
    store = llama.store
    lc_path = work / f"{args.config}-parts-langchain"
    shutil.copytree(work / args.config, lc_path, dirs_exist_ok=True)

    class UnusedDense(_Unused, Embeddings):  # type: ignore[misc]
        pass

    lc = LangChainStore(
        UnusedDense(), sparse_embedding=_Unused(), collection_name="bench", path=str(lc_path), **storage
    )
    lc._store.close()
    lc._store = store  # the very store the others query (as store.py does)

    timers = Timers()
    shard = store._backend._shard
    store._backend._shard = _TimedShard(shard, timers)
    store._query_vectors = timers.wrap("query vectors", store._query_vectors)
    store._hits = timers.wrap("hits", store._hits)
    llama_class = llama_module.HybridQdrantVectorStore
    plan, result = llama_class._plan, llama_class._result
    llama_class._plan = timers.wrap("LlamaIndex translation", plan)  # type: ignore[method-assign]
    llama_class._result = timers.wrap("LlamaIndex nodes", result)  # type: ignore[method-assign]
    params = raw_search_params(store)
    raw_query = timers.wrap("engine", shard.query)
    dense_lists = [v.tolist() for v in qd]
    queries = llama_hybrid_queries(dense_lists)

    def ours(fusion: str) -> Callable[[int], Any]:
        return lambda i: store.query(
            dense=qd[i], sparse=qs[i], limit=LIMIT, candidate_k=CANDIDATES, fusion=fusion
        )

    variants: dict[str, Callable[[int], Any]] = {
        "raw": lambda i: [p.payload["doc_id"] for p in raw_query(raw_request(qd[i], qs[i], params))],
        "store": ours("rrf"),
        "llama_index": lambda i: llama.query(queries[i]),
        "langchain": lambda i: lc.similarity_search_with_score_by_vector(
            dense_lists[i], k=LIMIT, sparse_vector=qs[i]
        ),
        "store_m3": ours("m3"),
        "store_dbsf": ours("dbsf"),
    }
    try:
        totals = _rotation(variants, n, timers)
        warm = _warm_parts(store, llama, queries[0], dense_lists[0])
    finally:
        llama.close()
        shutil.rmtree(lc_path, ignore_errors=True)
    print(_table(totals, timers.seconds, warm))
    return 0


class _Unused:
    """A model the by-vector queries never call (LangChain wants one)."""

    def embed_documents(self, texts: list[str]) -> list[Any]:
        raise NotImplementedError

    def embed_query(self, text: str) -> Any:
        raise NotImplementedError


def _rotation(variants: dict[str, Callable[[int], Any]], n: int, timers: Timers) -> dict[str, list[float]]:
    names = list(variants)
    for i in range(min(20, n)):  # warm-up
        for fn in variants.values():
            fn(i)
    totals: dict[str, list[float]] = {k: [] for k in names}
    for rep in range(OVERHEAD_REPEATS):
        for i in range(n):
            turn = (i + rep) % len(names)
            for name in names[turn:] + names[:turn]:
                timers.variant = name
                t = time.perf_counter()
                variants[name](i)
                totals[name].append(time.perf_counter() - t)
                timers.variant = None
    return totals


def _warm_parts(store: Any, llama: Any, query: Any, dense: list[float]) -> dict[str, float]:
    """Seconds of one call of each store-side part, repeated in a loop of its own (warm caches)."""
    request = llama._plan(query, {})
    kwargs = {k: v for k, v in request.kwargs.items() if k != "text"}
    opts = store._query_options(query.query_str, kwargs, store.schema)
    hits = store.query(**request.kwargs)

    def best(fn: Callable[[], Any]) -> float:
        return min(timeit.repeat(fn, number=2000, repeat=5)) / 2000

    return {
        "LlamaIndex translation": best(lambda: llama._plan(query, {})),
        "query vectors": best(lambda: store._query_vectors(query.query_str, dense, None, None, opts)),
        "LlamaIndex nodes": best(lambda: llama._result(hits)),
    }


def _table(
    totals: dict[str, list[float]], parts: dict[tuple[str, str], list[float]], warm: dict[str, float]
) -> str:
    us = lambda seconds: 1e6 * statistics.median(seconds)  # noqa: E731
    head = "| variant | total p50 us | " + " | ".join(PARTS) + " | rest |"
    rows = [head, "| --- |" + " ---: |" * (len(PARTS) + 2)]
    for name, seconds in totals.items():
        cells = [us(parts[(name, p)]) if (name, p) in parts else math.nan for p in PARTS]
        rest = us(seconds) - sum(c for c in cells if not math.isnan(c))
        shown = ["" if math.isnan(c) else f"{c:.1f}" for c in cells]
        rows.append(f"| {name} | {us(seconds):.1f} | " + " | ".join(shown) + f" | {rest:.1f} |")
    alone = ["", *(f"{1e6 * warm[p]:.1f}" if p in warm else "" for p in PARTS), ""]
    rows.append("| llama_index, each part alone (warm loop) | " + " | ".join(alone) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
