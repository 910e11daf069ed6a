"""Serving throughput: concurrent queries with micro-batching on vs off, and queries during a write.

Throughput (default): an embedded store (Qdrant Edge, int8, hybrid RRF) of ``--points``
synthetic points (dense of the model's size + SPLADE-like sparse, vectors given, so no
document is encoded), queried by text through ``HybridStore.query`` from 1, 8 and 32
threads in a closed loop (distinct queries, the encoder's result cache off), with
``query_batch_wait_ms=0`` (batching off) and the default (on), the two interleaved in
rounds in one run. Also a fan-out of 4 queries (``QueryFusionRetriever`` /
``MultiQueryRetriever`` style: ``asyncio.gather`` of ``aquery``) and the same 4 through
``query_batch``. Models: a BGE-M3-shaped checkpoint (24 layers x 1024, random weights,
exported with ``m3-hybrid export-onnx --int8``: the ONNX int8 path) and MiniLM +
SPLADE-tiny (the torch path).

``--during-ingest``: while ``--add`` points are added (and indexed) onto ``--points``, a
ticker thread (5 ms sleeps) records its longest stall, a thread and an event loop query
the store (explicit query vectors: the engine's share only) and their p99 is compared
with the same load on the idle store; every query must return its hits and every point of
the add must read back. Run twice on new stores: the default (the index built in a writer
process and swapped in) and ``background_index_min=0`` (in-process; ``--skip-in-process``
leaves it out).

    python benchmarks/serving.py --points 100000              # throughput section
    python benchmarks/serving.py --during-ingest --points 20000 --add 80000
    python benchmarks/serving.py --no-write --points 2000 --queries 32 --skip-m3   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from shared.encoders import load_encoder
from shared.store import HybridStore
from shared.types import Encoder, Record
from tests.support.checkpoint import make_bge_m3_checkpoint, sample_corpus

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## serving: concurrent queries with micro-batching on vs off"
INGEST_SECTION = "## serving --during-ingest: queries while points are added and indexed"
VOCAB = 30_522  # MiniLM / SPLADE (BERT) vocabulary; the sparse side only needs plausible ids


def points(n: int, dim: int, start: int = 0, seed: int = 0) -> Iterator[Record]:
    """Deterministic clustered unit vectors + ~60-term sparse vectors, in chunks."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, dim)).astype(np.float32)
    for lo in range(start, start + n, 2048):
        hi = min(start + n, lo + 2048)
        r = np.random.default_rng((seed, lo))
        topics = r.integers(0, 64, size=hi - lo)
        dense = centers[topics] + r.normal(size=(hi - lo, dim)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        for j in range(hi - lo):
            terms = np.unique(r.integers(1000, VOCAB, size=60))
            weights = r.uniform(0.01, 1.5, size=terms.size).round(4)
            yield Record(
                id=f"doc-{lo + j}",
                text=f"doc {lo + j}",
                dense=dense[j],
                sparse=dict(zip(terms.tolist(), weights.tolist(), strict=True)),
            )


def query_texts(n: int, seed: int = 1) -> list[str]:
    """``n`` distinct one-sentence queries (the result cache is off anyway)."""
    base = [s.rstrip(".") for s in sample_corpus() if 6 <= len(s.split()) <= 16]
    return [f"{base[i % len(base)]} {i}?" for i in range(seed * 100_000, seed * 100_000 + n)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def build_store(path: Path, encoder: Encoder, n: int, **kw: Any) -> None:
    with HybridStore("bench", encoder=encoder, path=path, quantization="int8", **kw) as s:
        if s.count() < n:
            s.add(points(n, encoder.dense_dim or 0), batch_size=1024)


def closed_loop(store: HybridStore, queries: list[str], callers: int) -> dict[str, float]:
    """``callers`` threads, each querying its share of ``queries`` one after another."""
    return threads_each_in_turn(lambda q: store.query(q, limit=10), queries, callers)


def threads_each_in_turn(ask: Callable[[str], Any], queries: list[str], callers: int) -> dict[str, float]:
    """``callers`` threads, each calling ``ask`` on its share of ``queries`` one after another:
    queries/s, CPU ms per query (the process's), p50 and p99 latency."""
    shares = [queries[i::callers] for i in range(callers)]
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(callers)

    def caller(mine: list[str]) -> None:
        start.wait()
        local = []
        for q in mine:
            t = time.perf_counter()
            ask(q)
            local.append(time.perf_counter() - t)
        with lock:
            latencies.extend(local)

    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(caller, shares))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "qps": len(queries) / wall,
        "cpu": cpu / len(queries) * 1000,
        "p50": pct(latencies, 50),
        "p99": pct(latencies, 99),
    }


def fan_out(store: HybridStore, groups: list[list[str]], batch: bool) -> float:
    """p50 ms of answering 4 queries together: gather of aquery, or one query_batch."""

    async def one(group: list[str]) -> float:
        t = time.perf_counter()
        if batch:
            await store.aquery_batch(group, limit=10)
        else:
            await asyncio.gather(*(store.aquery(q, limit=10) for q in group))
        return time.perf_counter() - t

    async def run() -> list[float]:
        return [await one(g) for g in groups]

    return pct(asyncio.run(run()), 50)


def throughput(name: str, encoder: Encoder, path: Path, args: argparse.Namespace) -> list[str]:
    if args.encoder_only:
        return encoder_costs(name, encoder)
    t = time.perf_counter()
    build_store(path, encoder, args.points)
    built = time.perf_counter() - t
    per_callers = {1: max(8, args.queries // 4), 8: args.queries, 32: args.queries}
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    fans: dict[str, list[float]] = {}
    warm = query_texts(8, seed=9)
    for rnd in range(args.rounds):
        for setting, wait in (("off", 0.0), ("on", None)):
            kw = {} if wait is None else {"query_batch_wait_ms": wait}
            with HybridStore("bench", encoder=encoder, path=path, **kw) as s:
                for q in warm:
                    s.query(q)
                for callers, n in per_callers.items():
                    qs = query_texts(n, seed=10 + rnd * 7 + callers)
                    runs.setdefault((setting, callers), []).append(closed_loop(s, qs, callers))
                groups = [query_texts(4, seed=1000 + rnd * 100 + g) for g in range(args.fanouts)]
                fans.setdefault(f"gather-{setting}", []).append(fan_out(s, groups, batch=False))
                if setting == "on":
                    groups = [query_texts(4, seed=2000 + rnd * 100 + g) for g in range(args.fanouts)]
                    fans.setdefault("query_batch", []).append(fan_out(s, groups, batch=True))
            print(f"{name}: round {rnd} {setting} done", file=sys.stderr, flush=True)

    def med(setting: str, callers: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[(setting, callers)])

    lines = [
        *encoder_costs(name, encoder),
        f"**{name}** ({args.points:,} points, built in {built:.0f} s; "
        f"medians of {args.rounds} interleaved rounds)",
        "",
        "| callers | queries/s off | queries/s on | ratio | CPU ms per query off / on | ratio | "
        "p50 off / on (ms) | p99 off / on (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for callers in per_callers:
        off, on = med("off", callers, "qps"), med("on", callers, "qps")
        lines.append(
            f"| {callers} | {off:.1f} | {on:.1f} | {on / off:.2f}x | "
            f"{med('off', callers, 'cpu'):.0f} / {med('on', callers, 'cpu'):.0f} | "
            f"{med('off', callers, 'cpu') / med('on', callers, 'cpu'):.2f}x | "
            f"{med('off', callers, 'p50'):.1f} / {med('on', callers, 'p50'):.1f} | "
            f"{med('off', callers, 'p99'):.1f} / {med('on', callers, 'p99'):.1f} |"
        )
    f_off, f_on = statistics.median(fans["gather-off"]), statistics.median(fans["gather-on"])
    f_b = statistics.median(fans["query_batch"])
    lines += [
        "",
        f"Fan-out of 4 queries (p50 of {args.fanouts} per round): `gather(aquery)` batching off "
        f"{f_off:.0f} ms, on {f_on:.0f} ms ({f_off / f_on:.2f}x faster); `aquery_batch` {f_b:.0f} ms "
        f"({f_off / f_b:.2f}x). Lone query p50 on / off: "
        f"{med('on', 1, 'p50') / med('off', 1, 'p50'):.3f}.",
        "",
    ]
    return lines


#: Concurrent callers whose encoder ceiling :func:`encoder_costs` measures (the throughput target's).
CEILING_CALLERS = 32


def encoder_costs(name: str, encoder: Encoder, repeats: int = 3, lone_pairs: int = 40) -> list[str]:
    """The encoder alone: CPU and wall time per query when n queries share one call, and what the
    micro-batcher adds to a lone call (measured on cache hits, where it is the whole cost, and on
    distinct lone queries taking turns with the encoder's own call)."""
    from shared.serving import MicroBatcher

    rows = []
    for n in (1, 8):  # warm-up: lazy initialisation and first-call allocations
        encoder.encode(query_texts(n, seed=400 + n), "query", outputs=["dense", "sparse"])
    for n in (1, 4, 8, 16, CEILING_CALLERS):
        qs = query_texts(n * repeats, seed=500 + n)
        c0, t0 = time.process_time(), time.perf_counter()
        for r in range(repeats):
            encoder.encode(qs[r * n : (r + 1) * n], "query", outputs=["dense", "sparse"])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        rows.append((n, cpu / (n * repeats) * 1000, wall / (n * repeats) * 1000))
    # What batching off runs: lone calls from CEILING_CALLERS threads at once. The model runtimes
    # release the GIL, so those passes overlap on the cores.
    at_once = threads_each_in_turn(
        lambda q: encoder.encode([q], "query", outputs=["dense", "sparse"]),
        query_texts(CEILING_CALLERS * repeats, seed=600),
        CEILING_CALLERS,
    )
    concurrent = (at_once["cpu"], 1000 / at_once["qps"])
    cache = getattr(encoder, "cache", None)  # the BaseEncoder's LRU (off in the timed runs)
    if cache is not None:
        cache.resize(16)
    cached, batcher = encoder, MicroBatcher(encoder, max_wait=0.002)
    cached.encode(["cached query"], "query")
    plain, joined = [], []
    for _ in range(2000):  # interleaved: the same machine state for both
        t = time.perf_counter()
        cached.encode(["cached query"], "query")
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        batcher.encode(["cached query"], "query")
        joined.append(time.perf_counter() - t)
    if cache is not None:
        cache.resize(0)
    # Distinct lone queries, the encoder's own call and the batcher's taking turns (which goes
    # first alternates): the lone p50 on / off with the machine's drift shared by both.
    qs, alone, through = query_texts(2 * lone_pairs, seed=700), [], []
    for i in range(lone_pairs):
        pair = [(alone, encoder, qs[2 * i]), (through, batcher, qs[2 * i + 1])]
        for times, enc, text in pair if i % 2 == 0 else pair[::-1]:
            t = time.perf_counter()
            enc.encode([text], "query", outputs=["dense", "sparse"])
            times.append(time.perf_counter() - t)
    extra = (statistics.median(joined) - statistics.median(plain)) * 1e6
    lone = rows[0][2]
    p_off, p_on = statistics.median(alone) * 1000, statistics.median(through) * 1000
    lines = [
        f"*{name}, the encoder alone* (n distinct queries in one call; {repeats} calls each):",
        "",
        "| queries per call | CPU ms per query | ratio to 1 | wall ms per query |",
        "|---|---|---|---|",
        *(f"| {n} | {cpu:.0f} | {rows[0][1] / cpu:.2f}x | {wall:.0f} |" for n, cpu, wall in rows),
        f"| 1, from {CEILING_CALLERS} threads at once | {concurrent[0]:.0f} | "
        f"{rows[0][1] / concurrent[0]:.2f}x | {concurrent[1]:.0f} |",
        "",
        f"The encoder's own ceiling for {CEILING_CALLERS} callers: their lone calls, all at once from "
        f"{CEILING_CALLERS} threads (what batching off runs), against the same number of queries in calls "
        f"of {CEILING_CALLERS} (the best a joined pass can do): **{concurrent[1] / rows[-1][2]:.2f}x** the "
        f"wall time per query ({concurrent[0] / rows[-1][1]:.2f}x the CPU). No scheduling of the "
        "store's can raise queries/s on / off above it by more than the engine's share.",
        "",
        f"A lone query through the micro-batcher (no overlap: no wait) costs {extra:.0f} µs more than "
        f"the encoder's own call (median of 2000 interleaved cache hits), {extra / 1000 / lone:.3%} of "
        f"a lone encode here ({lone:.0f} ms). Distinct lone queries, the two taking turns ({lone_pairs} "
        f"each): p50 {p_off:.1f} ms alone, {p_on:.1f} ms through the batcher ({p_on / p_off:.3f}).",
        "",
    ]
    return lines


def m3_shaped(work: Path, threads: int) -> Encoder:
    from shared.encoders.onnx import export_onnx, is_onnx_export

    ckpt, export = work / "m3-24x1024", work / "onnx-24x1024" / "fused"
    if not is_onnx_export(export):
        if not (ckpt / "config.json").is_file():
            make_bge_m3_checkpoint(
                ckpt,
                num_layers=24,
                hidden_size=1024,
                num_heads=16,
                intermediate_size=4096,
                max_position_embeddings=8194,
            )
        export_onnx(ckpt, export, int8=True, optimize=True)
    return load_encoder(
        str(export), backend="onnx", precision="int8", threads=threads, cache_size=0, show_progress=False
    )


# -- during ingest ---------------------------------------------------------------


class Ticker:
    """A thread that sleeps 5 ms at a time and records the longest gap between its wake-ups."""

    def __init__(self) -> None:
        self.longest = 0.0
        #: (seconds since the ticker started, stall in seconds, wall-clock start) of each stall
        #: over 100 ms.
        self.stalls: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.005)
            now = time.perf_counter()
            stall = now - last - 0.005
            self.longest = max(self.longest, stall)
            if stall > 0.1:
                self.stalls.append((last - start, stall, time.time() - (now - last)))
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


#: The same ticker in a process of its own (no GIL shared with the store): its stalls are the
#: machine's (CPU contention, scheduling), not the serving process's GIL.
_CONTROL = """
import json, sys, threading, time
stalls, longest, stop = [], [0.0], threading.Event()
def run():
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(0.005)
        now = time.perf_counter()
        stall = now - last - 0.005
        longest[0] = max(longest[0], stall)
        if stall > 0.05:
            stalls.append((time.time() - (now - last), stall))
        last = now
t = threading.Thread(target=run, daemon=True)
t.start()
sys.stdin.read()
stop.set(); t.join()
print(json.dumps({"longest": longest[0], "stalls": stalls}))
"""


class ControlTicker:
    """:class:`Ticker` in a child process (same niceness): what the machine alone stalls."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.stalls: list[tuple[float, float]] = []

    def __enter__(self) -> ControlTicker:
        import subprocess

        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CONTROL], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        import json

        out, _ = self._proc.communicate("")
        data = json.loads(out)
        self.longest, self.stalls = data["longest"], [tuple(s) for s in data["stalls"]]

    def overlaps(self, wall: float, stall: float) -> float:
        """The longest stall of its own that overlaps ``[wall, wall + stall]``."""
        return max((d for w, d in self.stalls if w < wall + stall and wall < w + d), default=0.0)


def load(store: HybridStore, qd: np.ndarray, qs: list[dict[int, float]], until: Callable[[], bool]) -> dict:
    """A thread and an event loop querying ``store`` (explicit vectors) until ``until()``."""
    out: dict[str, list[float]] = {"thread": [], "async": [], "loop_lag": [0.0]}
    errors: list[BaseException] = []

    def answered(hits: list[Any]) -> None:
        if len(hits) != 10:  # every query must be answered in full
            raise AssertionError(f"a query got {len(hits)} hits instead of 10")

    def thread() -> None:
        i = 0
        while not until():
            t = time.perf_counter()
            hits = store.query(dense=qd[i % len(qd)], sparse=qs[i % len(qs)], mode="hybrid", limit=10)
            out["thread"].append(time.perf_counter() - t)
            answered(hits)
            i += 1
            time.sleep(0.002)

    async def loop() -> None:
        async def lag() -> None:
            while not until():
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                out["loop_lag"].append(time.perf_counter() - t - 0.005)

        async def ask() -> None:
            i = 1
            while not until():
                t = time.perf_counter()
                hits = await store.aquery(
                    dense=qd[i % len(qd)], sparse=qs[i % len(qs)], mode="hybrid", limit=10
                )
                out["async"].append(time.perf_counter() - t)
                answered(hits)
                i += 1
                await asyncio.sleep(0.002)

        await asyncio.gather(lag(), ask())

    def guarded(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported below: every query must be answered
                errors.append(exc)

        return run

    workers = [
        threading.Thread(target=guarded(thread)),
        threading.Thread(target=guarded(lambda: asyncio.run(loop()))),
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return out


def ingest_run(args: argparse.Namespace, background: bool) -> dict[str, Any]:
    """One store of ``--points``, idle load then the same load during an add of ``--add``."""
    dim = args.dim
    work = Path(tempfile.mkdtemp(prefix="m3-serving-ingest-"))
    # None: the default (a large add is indexed in a writer process); 0: in this process.
    store = HybridStore(
        "bench", path=work, quantization="int8", dense_dim=dim, sparse=True,
        background_index_min=None if background else 0, compact_every=args.compact_every,
    )  # fmt: skip
    t = time.perf_counter()
    store.add(points(args.points, dim), batch_size=1024)
    store.wait_indexed()  # idle means indexed: the add returns before its index build ends
    base = time.perf_counter() - t
    qd = np.stack([r.dense for r in points(64, dim, start=10**7, seed=5)])  # type: ignore[misc]
    qs = [dict(r.sparse or {}) for r in points(64, dim, start=10**7, seed=5)]
    stop_at = time.perf_counter() + args.idle_s
    with Ticker() as idle_ticker:
        idle = load(store, qd, qs, lambda: time.perf_counter() > stop_at)
    done = threading.Event()
    added: list[float] = []
    builds_before = getattr(store._backend, "background_builds", 0)

    def writer() -> None:
        t = time.perf_counter()
        try:
            store.add(points(args.add, dim, start=args.points), batch_size=256)
            store.wait_indexed()  # the add returns before its index build: the load runs through both
        finally:
            added.append(time.perf_counter() - t)
            done.set()

    with ControlTicker() as control, Ticker() as ticker:
        w = threading.Thread(target=writer)
        w.start()
        busy = load(store, qd, qs, done.is_set)
        w.join()
    longest = sorted(ticker.stalls, key=lambda x: -x[1])[:5]
    backend = store._backend
    builds = getattr(backend, "background_builds", 0) - builds_before
    phases = dict(getattr(backend, "last_build_s", {}), paused=getattr(backend, "last_swap_s", 0.0))
    total = store.count()
    # Nothing lost: every id of the add reads back.
    ids = [f"doc-{i}" for i in range(args.points, args.points + args.add)]
    found = sum(len(store.get(ids[i : i + 1000])) for i in range(0, len(ids), 1000))
    store.close()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "base": base, "add": added[0], "idle": idle, "busy": busy, "idle_tick": idle_ticker.longest,
        "tick": ticker.longest, "total": total, "found": found, "builds": builds, "phases": phases,
        "stalls": [(t, d, control.overlaps(w, d)) for t, d, w in longest],
        "control": control.longest,
    }  # fmt: skip


def during_ingest(args: argparse.Namespace) -> list[str]:
    runs = {"apart": ingest_run(args, background=True)}
    if not args.skip_in_process:
        runs["in"] = ingest_run(args, background=False)
    a = runs["apart"]
    expected = args.points + args.add

    def stored(r: dict[str, Any]) -> str:
        ok = r["total"] == expected and r["found"] == args.add
        return "yes" if ok else f"NO ({r['total']:,} of {expected:,}; {r['found']:,} of the add read back)"

    def measures(r: dict[str, Any]) -> list[tuple[str, float, float]]:
        idle, busy = r["idle"], r["busy"]
        return [
            ("ticker thread, longest stall", r["idle_tick"] * 1000, r["tick"] * 1000),
            ("event loop, longest lag", max(idle["loop_lag"]) * 1000, max(busy["loop_lag"]) * 1000),
            ("query p99 from a thread", pct(idle["thread"], 99), pct(busy["thread"], 99)),
            ("query p99 from the event loop", pct(idle["async"], 99), pct(busy["async"], 99)),
            ("query p50 from a thread", pct(idle["thread"], 50), pct(busy["thread"], 50)),
        ]

    targets = ["≤ 250 ms", "≤ 250 ms", "≤ 3x idle", "≤ 3x idle", ""]
    ph = a["phases"]
    lines = [
        f"{args.add:,} points added (batch_size 256, {dim_label(args)}) onto {args.points:,}; "
        f"**writer process** (the default): the add took {a['add']:.0f} s, of which the index build "
        f"in the writer process {ph.get('build', 0):.0f} s (copy of the shard {ph.get('copy', 0):.1f} s, "
        f"swap {ph.get('swap', 0):.2f} s, queries held by the swap gate {ph.get('paused', 0):.2f} s; "
        f"{a['builds']} build apart); queries answered during it: {len(a['busy']['thread'])} from "
        f"the thread, {len(a['busy']['async'])} from the loop, every one with hits; every point stored: "
        f"{stored(a)}.",
    ]
    if a["stalls"]:
        lines.append(
            "The ticker's longest stalls during the add (writer process), at seconds since its start, "
            "with the longest stall of a control ticker in a process of its own at the same moment "
            "(the machine's share): "
            + ", ".join(f"{d * 1000:.0f} ms at {t:.1f} s ({c * 1000:.0f} ms)" for t, d, c in a["stalls"])
            + f"; the control ticker's longest stall over the whole add: {a['control'] * 1000:.0f} ms."
        )
    if "in" in runs:
        b = runs["in"]
        lines.append(
            f"**In-process** (`background_index_min=0`, the previous behaviour, same run): the add took "
            f"{b['add']:.0f} s; queries answered during it: {len(b['busy']['thread'])} from the thread, "
            f"{len(b['busy']['async'])} from the loop; every point stored: {stored(b)}."
        )
    lines += ["", "| measure | idle (ms) | during the add, writer process (ms) | ratio |"
              + (" during the add, in-process (ms) | ratio |" if "in" in runs else "") + " target |",
              "|---|---|---|---|" + ("---|---|" if "in" in runs else "") + "---|"]  # fmt: skip
    rows_in = measures(runs["in"]) if "in" in runs else None
    for k, ((label, idle_ms, busy_ms), target) in enumerate(zip(measures(a), targets, strict=True)):
        row = f"| {label} | {idle_ms:.1f} | {busy_ms:.1f} | {ratio(busy_ms, idle_ms)} |"
        if rows_in is not None:
            _, idle_in, busy_in = rows_in[k]
            row += f" {busy_in:.1f} | {ratio(busy_in, idle_in)} |"
        lines.append(f"{row} {target} |")
    lines.append(
        "\nIdle: the same load on the store before the add (each run's own idle figures are "
        "in the ratio; the idle column is the writer-process run's)."
    )
    return [*lines, ""]


def ratio(busy: float, idle: float) -> str:
    return f"{busy / idle if idle else float('inf'):.1f}x"


def dim_label(args: argparse.Namespace) -> str:
    return f"{args.dim}-d int8 + sparse, vectors given"


def cpu_load() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"
    except OSError:
        return "load unknown"


def write(section: str, lines: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section("\n".join([f"{section}, {dt.date.today().isoformat()}", "", *lines, ""]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=64, help="queries per run of 8 and 32 callers")
    parser.add_argument("--fanouts", type=int, default=6, help="fan-outs of 4 per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved off/on rounds")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime / torch threads")
    parser.add_argument("--skip-m3", action="store_true", help="leave the BGE-M3-shaped ONNX int8 model out")
    parser.add_argument("--skip-minilm", action="store_true")
    parser.add_argument("--workdir", help="keep the BGE-M3-shaped checkpoint, export and stores here")
    parser.add_argument("--encoder-only", action="store_true", help="only the encoder-alone tables")
    parser.add_argument("--during-ingest", action="store_true")
    parser.add_argument("--add", type=int, default=100_000, help="--during-ingest: points added")
    parser.add_argument("--dim", type=int, default=384, help="--during-ingest: dense size")
    parser.add_argument("--idle-s", type=float, default=10.0, help="--during-ingest: idle measurement")
    parser.add_argument(
        "--compact-every", type=int, default=None, help="--during-ingest: compact_every of the stores"
    )
    parser.add_argument(
        "--skip-in-process", action="store_true", help="--during-ingest: only the default (writer process)"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args(argv)
    command = "python benchmarks/serving.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        f"Date {dt.date.today().isoformat()}; machine: 2 shared cores, no GPU, shared with other agents "
        f"({cpu_load()} at the start); Python {sys.version.split()[0]}.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if args.during_ingest:
        lines = header + during_ingest(args)
        section = INGEST_SECTION
    else:
        import torch

        torch.set_num_threads(args.threads)
        work = Path(args.workdir or tempfile.mkdtemp(prefix="m3-serving-"))
        lines = list(header)
        if not args.skip_m3:
            enc = m3_shaped(work, args.threads)
            lines += throughput(
                "BGE-M3 shape, ONNX int8 (1024-d)", enc, work / f"store-m3-{args.points}", args
            )
        if not args.skip_minilm:
            from shared.encoders import MINILM, SPLADE_TINY, packaged_model_path

            enc = load_encoder(
                packaged_model_path(MINILM),
                sparse_model=packaged_model_path(SPLADE_TINY),
                cache_size=0,
                show_progress=False,
            )
            lines += throughput(
                "MiniLM + SPLADE-tiny, torch (384-d)", enc, work / f"store-minilm-{args.points}", args
            )
        lines.append(
            "off: `query_batch_wait_ms=0`; on: the default (2 ms, only once queries overlap). Each "
            "caller sends its queries one after another; queries/s = all queries / wall time; CPU ms "
            "per query = the process's CPU time / queries (what bounds queries/s on an idle machine; "
            "on a machine shared with other jobs, more threads also take a larger share of the cores)."
        )
        section = SECTION
    print("\n".join(lines))
    if not args.no_write:
        write(section, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
