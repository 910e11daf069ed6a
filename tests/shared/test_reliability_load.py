"""Load, small: streaming from a generator keeps the store's own memory bounded.

The long run is ``benchmarks/load.py --points 1000000`` (figures in RELIABILITY.md).
Here, with small vectors so it takes seconds:

* the store streams: the Python memory it allocates while ingesting a generator is
  one batch, the same for 5k and 20k documents (tracemalloc), and what it keeps
  afterwards is only the returned id list;
* resident memory (RssAnon, measured in fresh processes) grows at most linearly:
  4x the documents cost at most ~4x the memory of the smaller run, never more
  (Qdrant Edge's own per-point structures are O(N); see RELIABILITY.md);
* everything ingested is counted and findable;
* with compaction (the ``on_disk`` default, here every 10,000 points of 384-d vectors),
  resident memory stops growing with N: 4x the documents add a few hundred bytes per
  point, not the engine's ~2 KB.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.store import HybridStore

ROOT = Path(__file__).resolve().parents[2]


def _load_bench() -> ModuleType:
    name = "m3_load_bench"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "load.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


load = _load_bench()
SMALL = {"dim": 32, "sparse_terms": 20, "text_chars": 300}


def _python_memory(n: int, tmp_path: Path) -> tuple[int, int, int]:
    """(peak, retained, retained after dropping the ids) Python bytes of one streamed add()."""
    with HybridStore("py", path=tmp_path / f"py{n}", dense_dim=SMALL["dim"], on_disk=True) as store:
        gc.collect()
        tracemalloc.start()
        try:
            ids = store.add(load.documents(n, seed=0, **SMALL), batch_size=250)
            gc.collect()
            retained, peak = tracemalloc.get_traced_memory()
            assert len(ids) == n and store.count() == n
            del ids
            gc.collect()
            without_ids = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    return peak, retained, without_ids


@pytest.mark.slow
def test_streamed_add_holds_one_batch_not_the_stream(tmp_path: Path) -> None:
    small = _python_memory(2_000, tmp_path)
    large = _python_memory(8_000, tmp_path)
    # Peak Python memory does not grow with N (one batch of 250 records in flight) ...
    assert large[0] < small[0] * 1.5 + 2**20, (small, large)
    # ... and after the call only the returned ids remain (about 100 bytes each).
    assert large[1] < 8_000 * 200 + 2**20, large
    assert large[2] < 2**20, large


def _fresh_process_run(n: int, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load.py"),
            "--points",
            str(n),
            "--dim",
            str(SMALL["dim"]),
            "--sparse-terms",
            str(SMALL["sparse_terms"]),
            "--queries",
            "20",
            "--batch-size",
            "500",
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_resident_memory_grows_at_most_linearly() -> None:
    runs = {n: _fresh_process_run(n) for n in (5_000, 20_000)}
    growth = {}
    for n, r in runs.items():
        assert r["count"] == n
        assert r["found"] >= 18  # of 20 queries with a stored vector + noise
        assert all(p50 < 1000 for p50, _ in r["latency_ms"].values())
        # Anonymous memory gained while ingesting (mapped store files excluded: the kernel drops them).
        growth[n] = r["checkpoints"][-1][2]["RssAnon"] - r["baseline"]["RssAnon"]
    assert growth[20_000] < 4 * growth[5_000] * 1.3 + 8 * 2**20, growth
    # No gross per-point cost either (Qdrant Edge keeps ~1-3 KB per point of this size).
    assert growth[20_000] / 20_000 < 6 * 1024, growth


def _anon_growth(run: dict[str, Any]) -> int:
    return int(run["checkpoints"][-1][2]["RssAnon"] - run["baseline"]["RssAnon"])


@pytest.mark.slow
def test_compaction_stops_resident_memory_growing() -> None:
    realistic = ("--dim", "384", "--sparse-terms", "50", "--compact-every", "10000")
    runs = {n: _fresh_process_run(n, *realistic) for n in (10_000, 40_000)}
    for n, r in runs.items():
        assert r["count"] == n and r["found"] >= 18
        assert len(r["compactions"]) == n // 10_000
    per_point = (_anon_growth(runs[40_000]) - _anon_growth(runs[10_000])) / 30_000
    # Without compaction these points cost ~2,300 B each (RELIABILITY.md); measured here ~400.
    assert per_point < 800, per_point
