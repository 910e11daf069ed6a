"""Where Qdrant Edge's resident memory goes while ingesting: anonymous RSS per point, by component.

Raw ``qdrant_edge`` (no m3-hybrid code in the loop), N points of the load benchmark's
sizes, one shard per variant:

* ``dense``: 384-d float32 with ``Memory.Cold`` (originals memory-mapped);
* ``dense+payload``: plus a 300-char text payload;
* ``sparse``: a ~50-term sparse vector only, with the sparse index ``Memory.Cached``
  (our on-disk setting), ``Memory.Cold``, ``on_disk=True`` or float16 values.

For each: anonymous RSS growth per point after the upserts, after ``optimize()``, after
closing the shard (``malloc_trim`` after each, so freed heap is returned), and in a fresh
process that loads the optimized shard (after loading an empty shard of the same layout, so
one-off allocations such as thread pools are not counted). Replaces its table in ``benchmarks/RESULTS.md``.

Then ``--rolling`` points through the layout that bounds it, on the raw engine (the store's
``on_disk=True`` layout and ``compact_every`` do the same): HNSW graph and sparse index
``Memory.Cold``, ``default_segment_number=64`` so the optimizer never merges old segments,
and ``flush + optimize + close + load`` every ``--every`` points; anonymous RSS before and
after each compaction.

    python benchmarks/engine_memory.py              # N = 30,000; rolling 80,000 every 20,000
    python benchmarks/engine_memory.py --points 10000 --no-append
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as _dt
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import qdrant_edge as qe

ROOT = Path(__file__).resolve().parents[1]
SPARSE_VOCAB = 250_002

_LOAD_CHILD = """
import sys, qdrant_edge as qe
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) * 1024
    return 0
warm = qe.EdgeShard.load(sys.argv[2])  # an empty shard of the same layout: one-off allocations
before = anon()
shard = qe.EdgeShard.load(sys.argv[1])
print(anon() - before)
shard.close()
warm.close()
"""


def anon_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):  # glibc only: return freed heap, so RSS shows what is held
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _batch(
    rng: np.random.Generator,
    ids: range,
    *,
    dense: bool,
    sparse: bool,
    payload: Callable[[int], dict[str, object]],
) -> list[qe.Point]:
    """Points of the load benchmark's sizes: 384-d dense, ~50-term sparse, the given payload."""
    points = []
    for i in ids:
        vec: dict[str, object] = {}
        if dense:
            vec["dense"] = rng.standard_normal(384).astype(np.float32).tolist()
        if sparse:
            terms = sorted(set(rng.integers(0, SPARSE_VOCAB, 50).tolist()))
            weights = rng.uniform(0.01, 0.5, len(terms)).tolist()
            vec["sparse"] = qe.SparseVector(indices=terms, values=weights)
        points.append(qe.Point(i, vec, payload(i)))
    return points


VARIANTS: dict[str, dict[str, object]] = {
    "dense (Cold)": {"dense": True},
    "dense (Cold) + payload": {"dense": True, "payload": True},
    "sparse (Cached)": {"sparse": qe.Memory.Cached},
    "sparse (Cold)": {"sparse": qe.Memory.Cold},
    "sparse (on_disk=True)": {"sparse": None, "sparse_on_disk": True},
    "sparse (Cached, float16)": {"sparse": qe.Memory.Cached, "float16": True},
}


def measure(name: str, spec: dict[str, object], n: int, workdir: Path) -> dict[str, float]:
    path = workdir / name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
    vectors = (
        {"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)}
        if spec.get("dense")
        else None
    )
    sparse = None
    if "sparse" in spec:
        sparse = {
            "sparse": qe.EdgeSparseVectorParams(
                memory=spec["sparse"],  # type: ignore[arg-type]
                on_disk=True if spec.get("sparse_on_disk") else None,
                datatype=qe.VectorStorageDatatype.Float16 if spec.get("float16") else None,
            )
        }
    config = qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse)
    qe.EdgeShard.create(str(path) + "-empty", config).close()
    shard = qe.EdgeShard.create(str(path), config)
    rng = np.random.default_rng(0)
    _trim()
    base = anon_bytes()
    for start in range(0, n, 1000):
        batch = _batch(
            rng,
            range(start, min(start + 1000, n)),
            dense=bool(vectors),
            sparse=bool(sparse),
            payload=lambda i: {"text": "w" * 300, "metadata": {"i": i}} if spec.get("payload") else {},
        )
        shard.update(qe.UpdateOperation.upsert_points(batch))
    _trim()
    out = {"ingested": (anon_bytes() - base) / n}
    shard.optimize()
    _trim()
    out["optimized"] = (anon_bytes() - base) / n
    shard.flush()
    shard.close()
    _trim()
    out["closed"] = (anon_bytes() - base) / n
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_CHILD, str(path), str(path) + "-empty"],
        capture_output=True,
        text=True,
        check=True,
    )
    out["fresh process"] = int(child.stdout.strip()) / n
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(str(path) + "-empty", ignore_errors=True)
    return out


def rolling(n: int, every: int, workdir: Path) -> list[tuple[int, float, float, float, int]]:
    """(points, anon MB before, anon MB after compact + reopen, seconds, segments) per compaction."""
    path = str(workdir / "rolling")
    cold = qe.Memory.Cold
    config = qe.EdgeConfig(
        vectors={
            "dense": qe.EdgeVectorParams(
                size=384,
                distance=qe.Distance.Cosine,
                memory=cold,
                hnsw_config=qe.HnswIndexConfig(16, 100, 10_000, memory=cold),
            )
        },
        sparse_vectors={"sparse": qe.EdgeSparseVectorParams(memory=cold)},
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=64),
    )
    shard = qe.EdgeShard.create(path, config)
    rng = np.random.default_rng(0)
    _trim()
    base = anon_bytes()
    out = []
    for start in range(0, n, 1000):
        batch = _batch(
            rng,
            range(start, min(start + 1000, n)),
            dense=True,
            sparse=True,
            payload=lambda i: {"text": "w" * 300},
        )
        shard.update(qe.UpdateOperation.upsert_points(batch))
        done = min(start + 1000, n)
        if done % every == 0 or done == n:
            _trim()
            before = (anon_bytes() - base) / 2**20
            t = time.perf_counter()
            shard.flush()
            shard.optimize()
            shard.flush()
            shard.close()
            shard = qe.EdgeShard.load(path)
            _trim()
            after = (anon_bytes() - base) / 2**20
            out.append((done, before, after, time.perf_counter() - t, shard.info().segments_count))
            print(f"rolling {out[-1]}", flush=True)
    shard.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=30_000)
    ap.add_argument("--rolling", type=int, default=80_000, help="points of the rolling run (0: skip)")
    ap.add_argument("--every", type=int, default=20_000, help="rolling run: points between compactions")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="m3-engine-mem-"))
    rows = []
    try:
        for name, spec in VARIANTS.items():
            r = measure(name, spec, args.points, work)
            print(f"{name}: {r}", flush=True)
            rows.append((name, r))
        roll = rolling(args.rolling, args.every, work) if args.rolling else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "| variant | after upserts | after optimize | after close | fresh process, loaded |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['ingested']:,.0f} | {r['optimized']:,.0f} | {r['closed']:,.0f} | "
            f"{r['fresh process']:,.0f} |"
        )
    if roll:
        lines += [
            "",
            f"Rolling layout (HNSW and sparse index Cold, no segment merges, compaction every "
            f"{args.every:,} points): anonymous RSS growth since the shard was created.",
            "",
            "| points | anon before compaction (MB) | after compact + reopen (MB) | compaction (s) "
            "| segments |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [f"| {p:,} | {b:.0f} | {a:.0f} | {t:.0f} | {g} |" for p, b, a, t, g in roll]
    cmd = "python benchmarks/engine_memory.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = (
        f"## Qdrant Edge: anonymous RSS per point by component, {_dt.date.today().isoformat()}\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), qdrant-edge-py "
        f"{_version()}. Command: `{cmd.strip()}`. {args.points:,} points per variant; bytes of "
        f"anonymous resident memory per point (after `malloc_trim`).\n\n" + "\n".join(lines) + "\n"
    )
    print(report)
    if not args.no_append:
        _write_results(report)
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("qdrant-edge-py")


def _write_results(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (imported here: tests load this file by path)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section(section)


if __name__ == "__main__":
    sys.exit(main())
