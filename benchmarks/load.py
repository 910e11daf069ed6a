"""Load: stream N synthetic documents from a generator into the embedded store, then query.

Realistic sizes: 384-d dense (all-MiniLM size), ~50-term sparse vector, ~300-char
text payload plus a little metadata. The documents come from a generator, so the
benchmark itself holds one batch at a time; the store is fed with ONE
``store.add(generator, batch_size=...)`` call (how a user streams an ingest).

Memory: a sampler thread reads ``/proc/self/status`` every 0.2 s (VmRSS = resident
set, split into RssAnon = heap/anonymous and RssFile = mapped files, i.e. the
store's memory-mapped segments, which the kernel can drop and re-read). The table
shows the values when the generator has produced 10%, 25%, 50% and 100% of N
(100k/250k/500k/1M for N = 1M), after ``optimize`` (HNSW build at the end of
``add``), and the peak. Then ``--queries`` dense, sparse and hybrid queries give
p50/p95 latency (the store's query call with explicit query vectors).

Compaction (``--compact-every``, the store's ``compact_every``; default: the store's
default, every 100,000 points with on_disk): the table lists each compaction's optimize
and close + reload time. ``--compact-every 0,50000`` runs the same load once per value,
one after the other, and adds a side-by-side table. ``--ingest-queries`` runs a thread
that queries the store all through the ingest, to show what queries wait for.

    python benchmarks/load.py --points 1000000            # replaces its section of benchmarks/RESULTS.md
    python benchmarks/load.py --points 20000 --no-append  # quick look

``tests/shared/test_reliability_load.py`` runs small versions of ``run_load`` and checks
that resident memory does not grow with N.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VOCAB = [f"w{i:04d}" for i in range(5000)]
SPARSE_VOCAB = 250_002  # XLM-R / BGE-M3 vocabulary size


def read_status() -> dict[str, int]:
    """Resident memory figures of this process in bytes (Linux /proc/self/status)."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0]) * 1024
    return out


class Sampler:
    """Background sampling of resident memory; keeps the peaks."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_rss = 0
        self.peak_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> dict[str, int]:
        s = read_status()
        self.peak_rss = max(self.peak_rss, s["VmRSS"])
        self.peak_anon = max(self.peak_anon, s["RssAnon"])
        return s

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def documents(
    n: int, *, dim: int, sparse_terms: int, text_chars: int, seed: int, chunk: int = 1000
) -> Iterator[Any]:
    """N deterministic synthetic records, generated ``chunk`` at a time (vectorised)."""
    from shared.types import Record

    rng = np.random.default_rng(seed)
    made = 0
    while made < n:
        k = min(chunk, n - made)
        dense = rng.standard_normal((k, dim), dtype=np.float32)
        terms = rng.integers(0, SPARSE_VOCAB, size=(k, sparse_terms))
        weights = rng.uniform(0.01, 0.5, size=(k, sparse_terms)).astype(np.float32)
        words = rng.integers(0, len(VOCAB), size=(k, text_chars // 5 + 1))
        for j in range(k):
            i = made + j
            yield Record(
                id=f"doc-{i}",
                text=" ".join(VOCAB[w] for w in words[j])[:text_chars],
                metadata={"i": i, "source": f"file-{i // 1000}.txt", "lang": "en" if i % 3 else "de"},
                ref_doc_id=f"file-{i // 1000}",
                dense=dense[j],
                # Duplicate term ids collapse (as a tokenizer's would): about 50 distinct terms.
                sparse=dict(zip(terms[j].tolist(), weights[j].tolist(), strict=True)),
            )
        made += k


@dataclass
class LoadResult:
    points: int
    dim: int
    sparse_terms: int
    text_chars: int
    on_disk: bool
    checkpoints: list[tuple[int, float, dict[str, int]]] = field(default_factory=list)  # (n, s, status)
    after_optimize: dict[str, int] = field(default_factory=dict)
    ingest_s: float = 0.0
    optimize_s: float = 0.0
    peak_rss: int = 0
    peak_anon: int = 0
    baseline: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # mode -> (p50, p95)
    count: int = 0
    queries: int = 0
    found: int = 0
    disk_bytes: int = 0
    compact_every: int = 0  # as the store resolved it (0: never)
    compactions: list[tuple[float, float]] = field(default_factory=list)  # (optimize s, close + reload s)
    segments: int = 0
    # During add: (queries, p50, p99, max latency, longest stall) in ms. The stall is the longest time
    # the query thread could not run at all (qdrant-edge-py holds the GIL through optimize()), which
    # a query's own latency only shows when the freeze began inside it.
    ingest_query_ms: tuple[int, float, float, float, float] | None = None


class _CompactionLog(logging.Handler):
    """Collects the (optimize s, close + reload s) the embedded backend logs per compaction."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.times: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("compacted"):
            args = record.args
            assert isinstance(args, tuple)
            self.times.append((float(args[1]), float(args[2])))


class _IngestQueries(threading.Thread):
    """Dense queries against the store, one every 50 ms, while it ingests."""

    PAUSE_S = 0.05

    def __init__(self, store: Any, dim: int) -> None:
        super().__init__(daemon=True)
        self.store, self.dim = store, dim
        self.latency_ms: list[float] = []
        self.stall_ms = 0.0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = np.random.default_rng(7)
        while not self.stop.is_set():
            q = rng.standard_normal(self.dim).astype(np.float32)
            t = time.perf_counter()
            try:
                self.store.query(dense=q, mode="dense", limit=10)
            except Exception as exc:  # reported in the table, never hidden
                self.errors.append(f"{type(exc).__name__}: {exc}")
            done = time.perf_counter()
            self.latency_ms.append((done - t) * 1000)
            self.stop.wait(self.PAUSE_S)
            # From the end of one query to the start of the next, beyond the pause: a freeze.
            now = time.perf_counter()
            self.stall_ms = max(self.stall_ms, (now - done - self.PAUSE_S) * 1000)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_load(
    points: int,
    path: str | os.PathLike[str],
    *,
    dim: int = 384,
    sparse_terms: int = 50,
    text_chars: int = 300,
    batch_size: int = 1000,
    on_disk: bool = True,
    queries: int = 100,
    seed: int = 0,
    checkpoints: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0),
    log: Any = None,
    compact_every: int | None = None,
    ingest_queries: bool = False,
) -> LoadResult:
    """Stream ``points`` documents into a new embedded store at ``path``, sample memory, query."""
    import gc

    from shared.store import HybridStore

    gc.collect()
    res = LoadResult(points, dim, sparse_terms, text_chars, on_disk)
    marks = sorted({max(1, int(points * c)) for c in checkpoints})
    t0 = time.perf_counter()
    compaction_log = _CompactionLog()
    edge_logger = logging.getLogger("shared.backends.edge")
    edge_logger.addHandler(compaction_log)
    edge_logger.setLevel(logging.INFO)
    with Sampler() as sampler:
        res.baseline = sampler.sample()
        store = HybridStore(
            "load", path=path, dense_dim=dim, sparse=True, on_disk=on_disk, compact_every=compact_every
        )
        querier = None
        try:

            def counted() -> Iterator[Any]:
                for i, rec in enumerate(
                    documents(points, dim=dim, sparse_terms=sparse_terms, text_chars=text_chars, seed=seed)
                ):
                    if marks and i == marks[0]:
                        # The store has taken everything up to the previous batch.
                        marks.pop(0)
                        res.checkpoints.append((i, time.perf_counter() - t0, sampler.sample()))
                        if log:
                            log(
                                f"  {i:>9,} points  {time.perf_counter() - t0:7.1f} s  "
                                f"{_fmt(res.checkpoints[-1][2])}"
                            )
                    yield rec
                res.checkpoints.append((points, time.perf_counter() - t0, sampler.sample()))
                if log:
                    log(
                        f"  {points:>9,} points  {res.checkpoints[-1][1]:7.1f} s  "
                        f"{_fmt(res.checkpoints[-1][2])}"
                    )

            if ingest_queries:
                # The store needs its first batch (the collection) before a query can run.
                store.add(documents(1, dim=dim, sparse_terms=sparse_terms, text_chars=text_chars, seed=seed))
                querier = _IngestQueries(store, dim)
                querier.start()
            # optimize runs inside add() after the generator is exhausted: its time is the rest.
            store.add(counted(), batch_size=batch_size)
            end = time.perf_counter()
            if querier is not None:
                querier.stop.set()
                querier.join()
                lat = np.asarray(querier.latency_ms)
                res.ingest_query_ms = (
                    len(lat),
                    float(np.percentile(lat, 50)),
                    float(np.percentile(lat, 99)),
                    float(lat.max()),
                    max(querier.stall_ms, float(lat.max())),
                )
                if querier.errors:
                    raise RuntimeError(f"queries during the ingest failed: {querier.errors[:3]}")
            backend: Any = store._backend
            res.compact_every = backend.compact_every
            res.segments = backend._shard.info().segments_count
            res.ingest_s = res.checkpoints[-1][1]
            res.optimize_s = end - t0 - res.ingest_s
            gc.collect()
            res.after_optimize = sampler.sample()
            if log:
                log(f"  optimize {res.optimize_s:.1f} s  {_fmt(res.after_optimize)}")
            res.count = store.count()
            res.queries = min(queries, points)
            res.latency_ms, res.found = _queries(store, points, queries, dim, sparse_terms, text_chars, seed)
        finally:
            if querier is not None:
                querier.stop.set()
            store.close()
            edge_logger.removeHandler(compaction_log)
    res.compactions = compaction_log.times
    res.peak_rss, res.peak_anon = sampler.peak_rss, sampler.peak_anon
    res.disk_bytes = _du(Path(path))
    return res


def _queries(
    store: Any, points: int, n: int, dim: int, sparse_terms: int, text_chars: int, seed: int
) -> tuple[dict[str, tuple[float, float]], int]:
    """Latency per mode; queries are stored documents' vectors (slightly perturbed) so hits are known."""
    rng = np.random.default_rng(seed + 1)
    targets = sorted(rng.choice(points, size=min(n, points), replace=False).tolist())
    # Regenerate just those documents (same generator, skipping the rest cheaply enough).
    wanted = set(targets)
    docs = {}
    for i, rec in enumerate(
        documents(points, dim=dim, sparse_terms=sparse_terms, text_chars=text_chars, seed=seed)
    ):
        if i in wanted:
            docs[i] = rec
            if len(docs) == len(wanted):
                break
    lat: dict[str, list[float]] = {"dense": [], "sparse": [], "hybrid": []}
    found = 0
    for i in targets:
        rec = docs[i]
        qd = np.asarray(rec.dense) + rng.normal(scale=0.05, size=dim).astype(np.float32)
        for mode in lat:
            t = time.perf_counter()
            hits = store.query(dense=qd, sparse=rec.sparse, mode=mode, limit=10)
            lat[mode].append((time.perf_counter() - t) * 1000)
            if mode == "dense" and hits and hits[0].id == rec.id:
                found += 1
    return {m: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for m, v in lat.items()}, found


def _mb(b: int) -> str:
    return f"{b / 2**20:,.0f}"


def _fmt(s: dict[str, int]) -> str:
    return f"RSS {_mb(s['VmRSS'])} MB (anon {_mb(s['RssAnon'])}, file {_mb(s['RssFile'])})"


def table(res: LoadResult) -> str:
    base_anon = res.baseline.get("RssAnon", 0)
    rows = [
        "| points ingested | elapsed (s) | RSS (MB) | anon RSS (MB) | file-backed RSS (MB) "
        "| anon growth since start (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| 0 (store open) | 0 | {_mb(res.baseline['VmRSS'])} | {_mb(base_anon)} | "
        f"{_mb(res.baseline['RssFile'])} | 0 |",
    ]
    for n, t, s in res.checkpoints:
        rows.append(
            f"| {n:,} | {t:.0f} | {_mb(s['VmRSS'])} | {_mb(s['RssAnon'])} | {_mb(s['RssFile'])} | "
            f"{_mb(s['RssAnon'] - base_anon)} |"
        )
    a = res.after_optimize
    rows.append(
        f"| after optimize | {res.ingest_s + res.optimize_s:.0f} | {_mb(a['VmRSS'])} | {_mb(a['RssAnon'])} | "
        f"{_mb(a['RssFile'])} | {_mb(a['RssAnon'] - base_anon)} |"
    )
    rows.append(f"| **peak** | | **{_mb(res.peak_rss)}** | **{_mb(res.peak_anon)}** | | |")
    rows.append("")
    rows.append("| mode | p50 (ms) | p95 (ms) |")
    rows.append("| --- | ---: | ---: |")
    for mode, (p50, p95) in res.latency_ms.items():
        rows.append(f"| {mode} | {p50:.1f} | {p95:.1f} |")
    rows.append("")
    rows.append(
        f"Ingest {res.points:,} points in {res.ingest_s:.0f} s "
        f"({res.points / max(res.ingest_s, 1e-9):,.0f} points/s), optimize (index build) "
        f"{res.optimize_s:.0f} s; count after = {res.count:,}; store on disk "
        f"{res.disk_bytes / 2**30:.2f} GiB; a dense query with a stored vector (+noise) found it "
        f"first in {res.found} of {res.queries} queries."
    )
    if res.compact_every:
        opt = [o for o, _ in res.compactions]
        reload = [r for _, r in res.compactions]
        rows.append(
            f"Compaction every {res.compact_every:,} points (inside the ingest time): "
            f"{len(res.compactions)} compactions, optimize "
            f"{min(opt, default=0):.1f}-{max(opt, default=0):.1f} s "
            f"each ({sum(opt):.0f} s in all), close + reload {min(reload, default=0):.2f}-"
            f"{max(reload, default=0):.2f} s each; {res.segments} segments at the end."
        )
    else:
        rows.append(f"No compaction; {res.segments} segments at the end.")
    if res.ingest_query_ms is not None:
        n, p50, p99, mx, stall = res.ingest_query_ms
        rows.append(
            f"{n:,} dense queries ran during the ingest (one every 50 ms), without error: p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, max {mx:.0f} ms; the longest time the query thread could not run "
            f"(a query waiting, or the engine holding the GIL): {stall / 1000:.1f} s."
        )
    return "\n".join(rows)


def comparison(results: list[LoadResult]) -> str:
    """Side by side: the same load with each compaction setting (ratios to the first)."""
    first = results[0]
    rows = [
        "| compact_every | peak anon (MB) | anon after optimize (MB) | ingest + optimize (s) | segments "
        "| dense p50 (ms) | sparse p50 (ms) | hybrid p50 (ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ratio(a: float, b: float) -> str:
        return "" if a is b else f" ({a / max(b, 1e-9):.2f}x)"

    for r in results:
        total = r.ingest_s + r.optimize_s
        cells = [
            f"{r.compact_every:,}" if r.compact_every else "never",
            f"{_mb(r.peak_anon)}{ratio(r.peak_anon, first.peak_anon) if r is not first else ''}",
            _mb(r.after_optimize["RssAnon"]),
            f"{total:.0f}{ratio(total, first.ingest_s + first.optimize_s) if r is not first else ''}",
            str(r.segments),
        ]
        for mode in ("dense", "sparse", "hybrid"):
            p50 = r.latency_ms[mode][0]
            cells.append(f"{p50:.1f}{ratio(p50, first.latency_ms[mode][0]) if r is not first else ''}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _compact_values(text: str) -> list[int | None]:
    return [None if v in ("", "default") else int(v) for v in text.split(",")]


def _run_in_child(args: argparse.Namespace, compact_every: int | None) -> LoadResult:
    """One load in a fresh process (so each setting starts from the same memory)."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "--no-append"]
    for name in ("points", "dim", "sparse_terms", "text_chars", "batch_size", "queries"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    cmd += ["--compact-every", "default" if compact_every is None else str(compact_every)]
    if args.dir:
        cmd += ["--dir", args.dir]
    if args.in_ram:
        cmd.append("--in-ram")
    if args.ingest_queries:
        cmd.append("--ingest-queries")
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"the run with compact_every={compact_every} failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    res = LoadResult(**{k: v for k, v in data.items() if k != "checkpoints"})
    res.checkpoints = [(n, t, s) for n, t, s in data["checkpoints"]]
    res.compactions = [(o, r) for o, r in data["compactions"]]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--sparse-terms", type=int, default=50)
    ap.add_argument("--text-chars", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--in-ram", action="store_true", help="on_disk=False (originals in RAM)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--compact-every",
        type=_compact_values,
        default=[None],
        help="the store's compact_every (0: never; 'default'); a comma list runs each, side by side",
    )
    ap.add_argument("--ingest-queries", action="store_true", help="query the store all through the ingest")
    ap.add_argument("--dir", default=None, help="where the store goes (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the store directory")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line (for the tests)")
    args = ap.parse_args(argv)
    if len(args.compact_every) > 1:
        results = []
        for value in args.compact_every:
            print(f"compact_every={value}: running in a fresh process ...", flush=True)
            results.append(_run_in_child(args, value))
        body = "\n\n".join(f"### compact_every = {r.compact_every or 'never'}\n\n{table(r)}" for r in results)
        body = comparison(results) + "\n\n" + body
    else:
        tmp = tempfile.mkdtemp(prefix="m3-load-", dir=args.dir)
        if not args.json:
            print(f"store at {tmp}", flush=True)
        try:
            res = run_load(
                args.points,
                tmp,
                dim=args.dim,
                sparse_terms=args.sparse_terms,
                text_chars=args.text_chars,
                batch_size=args.batch_size,
                on_disk=not args.in_ram,
                queries=args.queries,
                log=None if args.json else (lambda m: print(m, flush=True)),
                compact_every=args.compact_every[0],
                ingest_queries=args.ingest_queries,
            )
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        if args.json:
            print(json.dumps(asdict(res)))
            return 0
        body = table(res)
    cmd = "python benchmarks/load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (
        f"## Load: {args.points:,} documents streamed into the embedded store, "
        f"{_dt.date.today().isoformat()}\n\n"
        f"Machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, shared), Python "
        f"{platform.python_version()}. Command: `{cmd.strip()}`. {args.dim}-d dense, "
        f"~{args.sparse_terms}-term sparse, {args.text_chars}-char text + 3 metadata fields; "
        f"one `add(generator, batch_size="
        f"{args.batch_size})` call; on_disk={not args.in_ram}. Load average at the end "
        f"(1/5/15 min): {'/'.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
    )
    report = header + "\n" + body + "\n"
    print(report)
    if not args.no_append:
        _write_results(report)
    return 0


def _write_results(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (imported here: tests load this file by path)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section(section)


if __name__ == "__main__":
    sys.exit(main())
