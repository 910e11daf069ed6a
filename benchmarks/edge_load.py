"""What loading an embedded shard costs, and why: the swap of a writer-built shard is one load.

qdrant-edge-py holds the GIL in ``EdgeShard.load`` and ``close``, so every thread of the serving
process stops for as long as the load of the indexed shard takes. This builds ``--points``
synthetic points (384-d + ~60-term sparse, int8, ``benchmarks/serving.py``'s generator) into one
shard per layout, each made by the store's own ``edge_config``:

* ``in heap``: the engine's defaults (``edge.DEFAULT_MEMORY = None``; the layout of stores
  created before the mapped default): originals populated, codes, HNSW graph and sparse index
  copied into the heap;
* ``mapped`` (the default): every large structure a memory-mapped file (``Memory.Cold``);
* ``on_disk=True``: originals, graph and sparse index mapped, codes in the heap.

Each shard is indexed, flushed and closed, as the writer process does. Then, per layout and
round, a load with a ticker thread (its longest stall is the GIL hold) in three cache states:
``cold`` (every file evicted from the page cache), ``after close`` (what the engine's own close
leaves: it drops its files with ``posix_fadvise(DONTNEED)``; what the swap loaded before the
writer read the files back) and ``cached`` (``edge_build.warm_page_cache`` first, as the writer
does now); and the close's stall. Last, the shards open side by side with their files cached and
the same hybrid queries (int8 dense with rescoring + sparse, RRF) interleaved between them.

    python benchmarks/edge_load.py                  # 100,000 points, writes RESULTS.md
    python benchmarks/edge_load.py --points 5000 --rounds 1 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import qdrant_edge as qe
from serving import points

from shared.backends import edge, edge_build
from shared.quantization import get_preset
from shared.schema import DENSE, SPARSE, CollectionSchema

SECTION = "## edge load: what loading an indexed shard costs (the swap of a writer-built shard)"
LAYOUTS = ("in heap", "mapped", "on_disk=True")
STATES = ("cold", "after close", "cached")


class Ticker:
    """A thread that sleeps 2 ms at a time; ``longest``: its longest stall (a GIL hold elsewhere)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.002)
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def config(layout: str) -> qe.EdgeConfig:
    schema = CollectionSchema(
        dense_dim=384, sparse=True, quantization=get_preset("int8"), on_disk=layout == "on_disk=True"
    )
    saved = edge.DEFAULT_MEMORY
    edge.DEFAULT_MEMORY = None if layout == "in heap" else saved
    try:
        return edge.edge_config(schema)
    finally:
        edge.DEFAULT_MEMORY = saved


def build(path: Path, layout: str, n: int) -> float:
    t = time.perf_counter()
    shard = qe.EdgeShard.create(str(path), config(layout))
    batch = []
    for i, r in enumerate(points(n, 384)):
        sparse = r.sparse or {}
        vectors = {
            DENSE: r.dense.tolist(),
            SPARSE: qe.SparseVector(indices=list(sparse), values=list(sparse.values())),
        }
        batch.append(qe.Point(i + 1, vectors, {"text": r.text}))
        if len(batch) == 1024:
            shard.update(qe.UpdateOperation.upsert_points(batch))
            batch = []
    if batch:
        shard.update(qe.UpdateOperation.upsert_points(batch))
    shard.optimize()
    shard.flush()
    shard.close()
    return time.perf_counter() - t


def evict(path: Path) -> None:
    """Drop every file of the shard from the page cache (they are flushed: nothing dirty)."""
    os.sync()
    for f in path.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def requests(n: int = 64) -> list[qe.QueryRequest]:
    params = qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=True, oversampling=2.0))
    out = []
    for r in points(n, 384, start=10**7, seed=5):
        sparse = r.sparse or {}
        sv = qe.SparseVector(indices=list(sparse), values=list(sparse.values()))
        out.append(
            qe.QueryRequest(
                limit=10,
                query=qe.Fusion.Rrf(k=60),
                prefetches=[
                    qe.Prefetch(
                        limit=50, query=qe.Query.Nearest(r.dense.tolist(), using=DENSE), params=params
                    ),
                    qe.Prefetch(limit=50, query=qe.Query.Nearest(sv, using=SPARSE)),
                ],
                with_payload=True,
                with_vector=False,
            )
        )
    return out


def load_once(path: Path, state: str) -> dict[str, float]:
    if state == "cold":
        evict(path)
    elif state == "cached":
        edge_build.warm_page_cache(path)
    # "after close": as the previous close (the build's, or the last round's) left the files.
    with Ticker() as ticker:
        t = time.perf_counter()
        shard = qe.EdgeShard.load(str(path))
        took = time.perf_counter() - t
    with Ticker() as closing:
        shard.close()
    return {"load": took, "stall": ticker.longest, "close": closing.longest}


def interleaved(paths: dict[str, Path], n: int) -> dict[str, list[float]]:
    reqs = requests()
    shards = {}
    for name, path in paths.items():
        edge_build.warm_page_cache(path)
        shards[name] = qe.EdgeShard.load(str(path))
    lat: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for i in range(n + 50):
        for name in names if i % 2 else names[::-1]:
            t = time.perf_counter()
            shards[name].query(reqs[i % len(reqs)])
            if i >= 50:  # the first queries of each shard fault its pages in
                lat[name].append(time.perf_counter() - t)
    for shard in shards.values():
        shard.close()
    return lat


def cpu_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000, help="interleaved queries per layout")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    start_load = cpu_load()
    work = Path(tempfile.mkdtemp(prefix="m3-edge-load-"))
    try:
        paths = {layout: work / layout.replace(" ", "_").replace("=", "_") for layout in LAYOUTS}
        built = {layout: build(paths[layout], layout, args.points) for layout in LAYOUTS}
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for layout in LAYOUTS:
                for state in STATES:
                    runs.setdefault((layout, state), []).append(load_once(paths[layout], state))
        lat = interleaved(paths, args.queries)
        size = {
            layout: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for layout, p in paths.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(layout: str, state: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[(layout, state)]) * 1000

    def least(layout: str, state: str, key: str) -> float:
        return min(r[key] for r in runs[(layout, state)]) * 1000

    command = "python benchmarks/edge_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"Date {dt.date.today().isoformat()}; machine: 2 shared cores, no GPU, shared with other agents "
        f"({start_load} at the start, {cpu_load()} at the end); qdrant-edge-py "
        f"{__import__('importlib.metadata').metadata.version('qdrant-edge-py')}.",
        "",
        f"Command: `{command}`",
        "",
        f"{args.points:,} points (384-d int8 + ~60-term sparse), one indexed shard per layout; medians of "
        f"{args.rounds} rounds. Load: `EdgeShard.load` (ms) / the longest stall of a ticker thread during it "
        "(the GIL hold, ms), and in brackets the shortest stall of the rounds (the least the machine's other "
        "jobs added).",
        "",
        "| layout | files (MB) | build (s) | load cold | load after the engine's close "
        "| load with files cached | close: ticker stall (ms) | query p50 / p99 (ms), interleaved, cached |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for layout in LAYOUTS:
        a = np.asarray(lat[layout]) * 1000
        cells = " | ".join(
            f"{med(layout, s, 'load'):.0f} / {med(layout, s, 'stall'):.0f} ({least(layout, s, 'stall'):.0f})"
            for s in STATES
        )
        lines.append(
            f"| {layout} | {size[layout] / 1e6:.0f} | {built[layout]:.0f} | {cells} | "
            f"{statistics.median(r['close'] for s in STATES for r in runs[(layout, s)]) * 1000:.0f} | "
            f"{np.percentile(a, 50):.2f} / {np.percentile(a, 99):.2f} |"
        )
    lines.append("")
    print("\n".join(lines))
    if not args.no_write:
        from _results import write_section

        write_section("\n".join([f"{SECTION}, {dt.date.today().isoformat()}", "", *lines, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
