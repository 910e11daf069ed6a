"""``m3-hybrid migrate``: throughput and peak memory of a copy between endpoint kinds.

Builds an embedded store of N random records (384-d dense + 40-term sparse, the shape of
MiniLM + SPLADE vectors; no model needed, vectors are copied, never encoded), then runs the
real command line in a child process for each leg and reads the child's peak RSS
(``wait4``). Every copy is checked: same count as the source.

    python benchmarks/migrate.py                       # N=20,000 embedded legs, 5,000 local-mode legs
    python benchmarks/migrate.py --n 50000 --n-local 5000 --batch-size 256
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.store import HybridStore  # noqa: E402
from shared.types import Record  # noqa: E402


def build(path: Path, n: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with HybridStore("c", path=path, dense_dim=dim) as store:
        for start in range(0, n, 2000):
            m = min(2000, n - start)
            dense = rng.normal(size=(m, dim)).astype(np.float32)
            store.add(
                [
                    Record(
                        id=f"doc-{start + i}",
                        text=f"text of document {start + i} " * 8,
                        metadata={"i": start + i, "group": (start + i) % 17},
                        dense=dense[i],
                        sparse={int(t): 1.0 for t in rng.choice(30000, 40, replace=False)},
                    )
                    for i in range(m)
                ],
                batch_size=1000,
            )


def run_cli(src: str, dst: str, batch: int) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one ``m3-hybrid migrate`` child process."""
    cmd = [sys.executable, "-m", "shared.cli", "migrate", "--from", src, "--collection", "c", "--to", dst]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--quiet", "--batch-size", str(batch)], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"migrate failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="points for the embedded legs")
    ap.add_argument("--n-local", type=int, default=5_000, help="points for the qdrant-client local-mode legs")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="m3-migrate-bench-"))
    rows = []
    try:
        for n in sorted({args.n, args.n_local}):
            build(work / f"src{n}", n, args.dim)
        legs = [
            (args.n, "embedded -> embedded", str(work / f"src{args.n}"), str(work / "emb")),
            (args.n_local, "embedded -> local", str(work / f"src{args.n_local}"), f"local:{work / 'loc'}"),
            (args.n_local, "local -> embedded", f"local:{work / 'loc'}", str(work / "emb2")),
        ]
        for n, name, src, dst in legs:
            seconds, rss, out = run_cli(src, dst, args.batch_size)
            assert f"target now {n:,}" in out, out
            rows.append((name, n, seconds, n / seconds, rss))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.dim}-d dense + 40-term sparse, batch {args.batch_size}; peak RSS of the child process")
    print("| leg | points | seconds | points/s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, n, seconds, rate, rss in rows:
        print(f"| {name} | {n:,} | {seconds:.1f} | {rate:,.0f} | {rss:,.0f} |")


if __name__ == "__main__":
    main()
