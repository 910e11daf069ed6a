"""Crash safety of the embedded store: SIGKILL a bulk ingest at random points, reopen, check.

A child process ingests deterministic batches (explicit vectors, no model) into an
embedded Qdrant Edge store and prints ``ack <batch>`` only AFTER ``add()`` returned.
The parent kills it with SIGKILL at a random moment, reopens the store and checks:

* every acknowledged batch is present and complete: count, ``get`` by ids with
  the exact payload and vectors, and a query for a stored vector finds it;
* the one batch that may have been in flight when the child died is all-or-nothing
  (each ``add()`` batch is ONE Qdrant update operation, so one WAL entry); no point
  from a later batch, no point with a missing vector or payload;
* the collection-guard sidecar is intact (valid JSON, the schema it was created with);
* the store accepts new writes (the next trial's child resumes on the same store).

Two kinds of trials: ``create`` kills a child on a fresh path within the first
moments (during collection creation: guard sidecar + shard files), ``ingest`` kills
a child that resumes a long ingest on one store kept across trials (so recovery of
an already recovered store is exercised too).

    python benchmarks/crash.py                         # 5 create + 25 ingest trials; its RESULTS.md section
    python benchmarks/crash.py --ingest-trials 5 --create-trials 2 --no-append

``tests/shared/test_reliability_crash.py`` imports this file and runs a few quick trials.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COLLECTION = "crash"
DIM = 32
SPARSE_TERMS = 20
TEXT_CHARS = 300


# ---------------------------------------------------------------------------
# deterministic data: the parent recomputes exactly what the child wrote
# ---------------------------------------------------------------------------


def record_id(batch: int, j: int) -> str:
    return f"b{batch}-r{j}"


def make_batch(batch: int, size: int, seed: int) -> list[Any]:
    """Batch ``batch`` of the ingest: the same records on every call."""
    from shared.types import Record

    out = []
    for j in range(size):
        rng = np.random.default_rng([seed, batch, j])
        terms = rng.choice(30_000, size=SPARSE_TERMS, replace=False)
        weights = rng.uniform(0.05, 2.0, size=SPARSE_TERMS)
        words = " ".join(f"w{int(t)}" for t in rng.integers(0, 5000, size=60))
        out.append(
            Record(
                id=record_id(batch, j),
                text=words[:TEXT_CHARS],
                metadata={"batch": batch, "j": j, "tags": [f"t{j % 5}"], "nested": {"k": j * 0.5}},
                ref_doc_id=f"doc-{batch}",
                dense=rng.normal(size=DIM).astype(np.float32),
                sparse={int(t): float(w) for t, w in zip(terms, weights, strict=True)},
            )
        )
    return out


# ---------------------------------------------------------------------------
# child: ingest and acknowledge
# ---------------------------------------------------------------------------


def child_main(
    path: str, start: int, batch_size: int, seed: int, max_batches: int, compact_every: int | None = None
) -> None:
    from shared.store import HybridStore

    print("imported", flush=True)
    store = HybridStore(COLLECTION, path=path, dense_dim=DIM, compact_every=compact_every)
    backend: Any = store._backend
    print(f"ready {start}", flush=True)
    for b in range(start, start + max_batches):
        recs = make_batch(b, batch_size, seed)
        # batch_size=len: one add() batch = one upsert operation.
        store.add(recs, batch_size=len(recs))
        print(f"ack {b} compactions {backend.compactions}", flush=True)
    store.close()
    print("done", flush=True)


# ---------------------------------------------------------------------------
# parent: run one trial, verify
# ---------------------------------------------------------------------------


@dataclass
class TrialResult:
    kind: str
    kill_delay_s: float
    acked_batches: int  # acknowledged by this trial's child
    total_acked: int  # acknowledged so far on this store
    inflight_present: int  # points of the unacknowledged in-flight batch found (0 or batch_size)
    points_lost: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _spawn(
    path: Path, start: int, batch_size: int, seed: int, max_batches: int, compact_every: int | None = None
) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    extra = [] if compact_every is None else ["--compact-every", str(compact_every)]
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "child",
            str(path),
            "--start",
            str(start),
            "--batch-size",
            str(batch_size),
            "--seed",
            str(seed),
            "--max-batches",
            str(max_batches),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )


def run_child_and_kill(
    path: Path,
    start: int,
    batch_size: int,
    seed: int,
    *,
    after: str,
    delay_s: float,
    max_batches: int = 10_000,
    startup_timeout_s: float = 60.0,
    compact_every: int | None = None,
) -> tuple[list[int], str, int]:
    """Start a child, SIGKILL it ``delay_s`` after it printed ``after``.

    Returns its acks, its stderr and the compactions it reported as complete."""
    proc = _spawn(path, start, batch_size, seed, max_batches, compact_every)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    seen = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith(after):
                seen.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    if not seen.wait(startup_timeout_s):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"child never printed {after!r}: {proc.stderr.read()[-2000:]}")
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t.join(timeout=10)  # the pipe holds every line the child wrote before it died
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"child exited by itself ({proc.returncode}) before the kill: {err[-2000:]}")
    acked = [x.split() for x in lines if x.startswith("ack ")]
    return [int(a[1]) for a in acked], err, max((int(a[3]) for a in acked), default=0)


def _expected_guard() -> dict[str, Any]:
    from shared.schema import CollectionSchema

    return CollectionSchema.build(None, dense_dim=DIM).guard_dict()


def check_record(got: Any, want: Any) -> list[str]:
    """Differences between a stored record (``get(..., with_vectors=True)``) and what was written."""
    problems = []
    if got.text != want.text or got.metadata != want.metadata or got.ref_doc_id != want.ref_doc_id:
        problems.append(f"{want.id}: payload differs")
    if got.dense is None or not _close(got.dense, want.dense):
        problems.append(f"{want.id}: dense vector missing or different")
    if got.sparse is None or set(got.sparse) != set(want.sparse):
        problems.append(f"{want.id}: sparse vector missing or different terms")
    elif not all(abs(got.sparse[k] - want.sparse[k]) < 1e-5 for k in want.sparse):
        problems.append(f"{want.id}: sparse weights differ")
    return problems


def verify(
    path: Path,
    acked: list[int],
    inflight: int | None,
    batch_size: int,
    seed: int,
    *,
    query_samples: int = 6,
    rng: random.Random | None = None,
) -> tuple[int, int, list[str]]:
    """Reopen the store after a kill and check it.

    ``acked``: every batch acknowledged so far on this store; ``inflight``: the one
    batch that may have been written but not acknowledged. Returns (points of the
    in-flight batch present, acknowledged points lost, problems).
    """
    from shared.store import HybridStore

    rng = rng or random.Random(0)
    problems: list[str] = []
    guard_file = path / COLLECTION / "m3_hybrid.json"
    if guard_file.exists():
        try:
            guard = json.loads(guard_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"guard sidecar is not valid JSON: {exc}")
        else:
            if guard != _expected_guard():
                problems.append("guard sidecar differs from the schema the store was created with")
    elif acked:
        problems.append("guard sidecar missing although batches were acknowledged")
    store = HybridStore(COLLECTION, path=path, dense_dim=DIM)
    try:
        if acked and not guard_file.exists():
            problems.append("guard sidecar missing after reopening")
        lost = 0
        for b in acked:
            want = make_batch(b, batch_size, seed)
            got = store.get([r.id for r in want], with_vectors=True)
            lost += len(want) - len(got)
            if len(got) != len(want):
                problems.append(f"acknowledged batch {b}: {len(want) - len(got)} of {len(want)} points lost")
            for g, w in zip(got, [r for r in want if r.id in {x.id for x in got}], strict=True):
                problems.extend(check_record(g, w))
        present = 0
        if inflight is not None:
            want = make_batch(inflight, batch_size, seed)
            got = store.get([r.id for r in want], with_vectors=True)
            present = len(got)
            if present not in (0, len(want)):
                problems.append(f"in-flight batch {inflight} is partial: {present} of {len(want)} points")
            by_id = {r.id: r for r in want}
            for g in got:
                problems.extend(check_record(g, by_id[g.id]))
        expected = len(acked) * batch_size + present
        n = store.count()
        if n != expected:
            problems.append(f"count {n} != {expected} (acknowledged + in-flight present)")
        # Queries find acknowledged points (exact and through the index).
        for b in rng.sample(acked, min(query_samples, len(acked))):
            r = make_batch(b, batch_size, seed)[rng.randrange(batch_size)]
            for exact in (True, False):
                hits = store.query(dense=r.dense, mode="dense", limit=1, exact=exact)
                if not hits or hits[0].id != r.id:
                    problems.append(f"dense query (exact={exact}) for {r.id} did not find it")
            hits = store.query(sparse=r.sparse, mode="sparse", limit=1)
            if not hits or hits[0].id != r.id:
                problems.append(f"sparse query for {r.id} did not find it")
    finally:
        store.close()
    return present, lost, problems


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # Cosine collections store normalised vectors: compare directions.
    return bool(np.allclose(a / np.linalg.norm(a), b / np.linalg.norm(b), atol=1e-5))


# ---------------------------------------------------------------------------
# trials
# ---------------------------------------------------------------------------


def create_trial(
    root: Path, batch_size: int, seed: int, rng: random.Random, max_delay_s: float
) -> TrialResult:
    """Kill a child on a fresh path while it creates the collection (or just after)."""
    path = Path(tempfile.mkdtemp(prefix="create-", dir=root))
    delay = rng.uniform(0.0, max_delay_s)
    acks, _, _ = run_child_and_kill(path, 0, batch_size, seed, after="imported", delay_s=delay)
    inflight = (max(acks) + 1) if acks else 0
    state = disk_state(path)
    present, lost, problems = 0, 0, []
    try:
        present, lost, problems = verify(path, acks, inflight, batch_size, seed, rng=rng)
        # The reopened store must accept writes.
        problems += _write_after(path, inflight + 1, batch_size, seed)
    except Exception as exc:  # a store that cannot be reopened or written is a failed trial
        problems.append(f"{type(exc).__name__}: {exc}")
    return TrialResult(f"create ({state})", delay, len(acks), len(acks), present, lost, problems)


def disk_state(path: Path) -> str:
    """What a killed creation left on disk (to show which windows the kills hit)."""
    d = path / COLLECTION
    if not d.exists():
        return "nothing"
    names = set(os.listdir(d))
    guard = "m3_hybrid.json" in names
    shard = "edge_config.json" in names
    if guard and shard:
        return "guard+shard"
    if guard:
        return "guard only, " + (",".join(sorted(names - {"m3_hybrid.json"})) or "no shard files")
    return "no guard: " + ",".join(sorted(names))


def _write_after(path: Path, batch: int, batch_size: int, seed: int) -> list[str]:
    from shared.store import HybridStore

    recs = make_batch(batch, batch_size, seed)
    with HybridStore(COLLECTION, path=path, dense_dim=DIM) as store:
        before = store.count()
        store.add(recs)
        after = store.count()
        got = store.get([r.id for r in recs], with_vectors=True)
    problems = [p for g, w in zip(got, recs, strict=False) for p in check_record(g, w)]
    if after != before + len(recs) or len(got) != len(recs):
        problems.append(f"write after reopen: count {before} -> {after}, {len(got)}/{len(recs)} readable")
    return problems


class IngestRun:
    """One store kept across trials: each child resumes where the acknowledged ingest stopped."""

    def __init__(self, root: Path, batch_size: int, seed: int, compact_every: int | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="ingest-", dir=root))
        self.batch_size = batch_size
        self.seed = seed
        self.compact_every = compact_every
        self.compactions = 0  # completed by the children, over all trials
        self.acked: list[int] = []

    def trial(
        self, rng: random.Random, min_delay_s: float, max_delay_s: float, after: str = "ready"
    ) -> TrialResult:
        """Kill ``delay`` s after the child's ``after`` line: "ready" (the store is open; the kill
        may land in the first add's optimize) or "ack " (the first batch is acknowledged)."""
        start = (max(self.acked) + 1) if self.acked else 0
        delay = rng.uniform(min_delay_s, max_delay_s)
        acks, _, compactions = run_child_and_kill(
            self.path,
            start,
            self.batch_size,
            self.seed,
            after=after,
            delay_s=delay,
            startup_timeout_s=300,
            compact_every=self.compact_every,
        )
        self.acked.extend(acks)
        self.compactions += compactions
        inflight = (max(self.acked) + 1) if self.acked else 0
        present, lost, problems = 0, 0, []
        try:
            present, lost, problems = verify(
                self.path, self.acked, inflight, self.batch_size, self.seed, rng=rng
            )
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        kind = "ingest (after open)" if after == "ready" else "ingest (after 1st ack)"
        return TrialResult(kind, delay, len(acks), len(self.acked), present, lost, problems)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def _table(results: list[TrialResult], batch_size: int) -> str:
    rows = [
        "| trial | kind | kill after (s) | batches acked (trial / total) | in-flight batch present | "
        "points lost | problems |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(results):
        rows.append(
            f"| {i} | {r.kind} | {r.kill_delay_s:.3f} | {r.acked_batches} / {r.total_acked} | "
            f"{r.inflight_present}/{batch_size} | {r.points_lost} | {'; '.join(r.problems) or 'none'} |"
        )
    ok = sum(r.ok for r in results)
    acked_points = sum(r.acked_batches for r in results) * batch_size
    rows.append("")
    rows.append(
        f"**{len(results)} kills, {ok} recovered with every check passing; acknowledged points written "
        f"{acked_points}, lost {sum(r.points_lost for r in results)}; in-flight batches found whole "
        f"{sum(r.inflight_present == batch_size for r in results)}, absent "
        f"{sum(r.inflight_present == 0 for r in results)}, partial "
        f"{sum(0 < r.inflight_present < batch_size for r in results)}.**"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    child = sub.add_parser("child", help="internal: the ingesting child process")
    child.add_argument("path")
    child.add_argument("--start", type=int, default=0)
    child.add_argument("--batch-size", type=int, default=64)
    child.add_argument("--seed", type=int, default=0)
    child.add_argument("--max-batches", type=int, default=10_000)
    child.add_argument("--compact-every", type=int, default=None)
    ap.add_argument("--create-trials", type=int, default=5)
    ap.add_argument("--ingest-trials", type=int, default=25)
    ap.add_argument("--create-max-delay", type=float, default=0.1, help="create kills: seconds after import")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--min-delay", type=float, default=0.05, help="ingest kills: seconds after 'ready'")
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--compact-every",
        type=int,
        default=None,
        help="ingest trials: the store compacts (optimize, close, reload) every this many points",
    )
    ap.add_argument("--dir", default=None, help="where the stores go (default: a temporary directory)")
    ap.add_argument("--no-append", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.cmd == "child":
        child_main(args.path, args.start, args.batch_size, args.seed, args.max_batches, args.compact_every)
        return 0

    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    results: list[TrialResult] = []
    with tempfile.TemporaryDirectory(prefix="m3-crash-", dir=args.dir) as tmp:
        root = Path(tmp)
        for _ in range(args.create_trials):
            results.append(
                create_trial(root, args.batch_size, args.seed, rng, max_delay_s=args.create_max_delay)
            )
            print(f"create trial: {results[-1]}", flush=True)
        run = IngestRun(root, args.batch_size, args.seed, args.compact_every)
        for i in range(args.ingest_trials):
            # Alternate: kills timed from the open (open, first optimize, ingest) and from the
            # first acknowledgement (always inside the ingest loop).
            after = "ready" if i % 2 == 0 else "ack "
            results.append(run.trial(rng, args.min_delay, args.max_delay, after))
            print(f"ingest trial: {results[-1]}", flush=True)
        final_write = _write_after(
            run.path, (max(run.acked) + 2) if run.acked else 1, args.batch_size, args.seed
        )
    elapsed = time.perf_counter() - t0
    table = _table(results, args.batch_size)
    if final_write:
        table += f"\n\nFinal write after the last kill FAILED: {final_write}"
    else:
        table += "\n\nThe store accepted a new batch after the last kill (count and get checked)."
    if args.compact_every:
        table += (
            f" The ingest children compacted the store (optimize, close, reload) every "
            f"{args.compact_every} points: {run.compactions} compactions completed between the kills."
        )
    cmd = "python benchmarks/crash.py " + " ".join(sys.argv[1:] if argv is None else argv)
    title = (
        "Crash safety with compaction (SIGKILL during compactions)"
        if args.compact_every
        else "Crash safety (SIGKILL during ingest)"
    )
    header = (
        f"## {title}, {_dt.date.today().isoformat()}\n\n"
        f"Machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs), Python "
        f"{platform.python_version()}. Command: `{cmd.strip()}`. Batch {args.batch_size} records "
        f"({DIM}-d dense, {SPARSE_TERMS}-term sparse, {TEXT_CHARS}-char text); {elapsed:.0f} s.\n"
    )
    report = header + "\n" + table + "\n"
    print(report)
    if not args.no_append:
        _write_results(report)
    return 0 if all(r.ok for r in results) and not final_write else 1


def _write_results(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (imported here: tests load this file by path)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section(section)


if __name__ == "__main__":
    sys.exit(main())
