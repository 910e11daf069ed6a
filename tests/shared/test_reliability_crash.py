"""Crash safety of the embedded store: SIGKILL during ingest and during creation.

The trials are the ones of ``benchmarks/crash.py`` (imported from there, so the test
and the long benchmark check the same properties), here with few, quick kills.
The interrupted-creation states that a random kill only sometimes hits are also
rebuilt deterministically.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from shared.store import HybridStore

ROOT = Path(__file__).resolve().parents[2]


def _load_crash() -> ModuleType:
    spec = importlib.util.spec_from_file_location("m3_crash_bench", ROOT / "benchmarks" / "crash.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


crash = _load_crash()

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL trials need POSIX signals")


@pytest.mark.slow
def test_sigkill_during_ingest_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    run = crash.IngestRun(tmp_path, batch_size=32, seed=1)
    rng = random.Random(1)
    results = [run.trial(rng, 0.2, 1.0, after) for after in ("ready", "ack ", "ready")]
    for r in results:
        assert r.ok, r.problems
        assert r.points_lost == 0
        assert r.inflight_present in (0, 32)  # a batch is one update: whole or absent
    # The kills landed mid-ingest (else the test proves nothing) on a store recovered repeatedly.
    assert run.acked and sum(r.acked_batches > 0 for r in results) >= 2
    assert crash._write_after(run.path, max(run.acked) + 2, 32, 1) == []


@pytest.mark.slow
def test_sigkill_during_compactions_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    """Compacting every 2 batches, a kill often lands in an optimize, close or reload."""
    run = crash.IngestRun(tmp_path, batch_size=32, seed=2, compact_every=64)
    rng = random.Random(2)
    results = [run.trial(rng, 0.3, 1.5, after) for after in ("ack ", "ready", "ack ")]
    for r in results:
        assert r.ok, r.problems
        assert r.points_lost == 0
        assert r.inflight_present in (0, 32)
    assert run.compactions >= 3  # the children really compacted between the kills
    assert crash._write_after(run.path, max(run.acked) + 2, 32, 2) == []


@pytest.mark.slow
def test_sigkill_during_creation_leaves_a_usable_store(tmp_path: Path) -> None:
    rng = random.Random(7)
    for _ in range(2):
        r = crash.create_trial(tmp_path, batch_size=16, seed=2, rng=rng, max_delay_s=0.08)
        assert r.ok, (r.kind, r.problems)


# The states a kill during creation can leave (seen in benchmarks/crash.py runs): the guard
# sidecar is written first (atomically), then Qdrant Edge creates wal/, segments/ and
# finally edge_config.json (its own atomic write).
INTERRUPTED = {
    "temp guard only": ("tmp_guard",),
    "guard only": ("guard",),
    "guard + wal": ("guard", "wal"),
    "guard + wal + empty segments": ("guard", "wal", "empty_segments"),
    "guard + wal + segments, no edge_config": ("guard", "wal", "segments"),
}


def _interrupted_creation(tmp_path: Path, keep: tuple[str, ...]) -> Path:
    full = tmp_path / "full"
    HybridStore(crash.COLLECTION, path=full, dense_dim=crash.DIM).close()
    src = full / crash.COLLECTION
    dst = tmp_path / "broken" / crash.COLLECTION
    dst.mkdir(parents=True)
    if "tmp_guard" in keep:
        text = (src / "m3_hybrid.json").read_text()
        (dst / ".m3_hybrid.json.0123abcd.tmp").write_text(text[: len(text) // 2])  # torn temp write
    if "guard" in keep:
        shutil.copy(src / "m3_hybrid.json", dst / "m3_hybrid.json")
    if "wal" in keep:
        shutil.copytree(src / "wal", dst / "wal")
    if "segments" in keep:
        shutil.copytree(src / "segments", dst / "segments")
    if "empty_segments" in keep:
        (dst / "segments").mkdir()
    return dst.parent


@pytest.mark.parametrize("keep", list(INTERRUPTED.values()), ids=list(INTERRUPTED))
def test_interrupted_creation_is_completed_on_reopen(tmp_path: Path, keep: tuple[str, ...]) -> None:
    path = _interrupted_creation(tmp_path, keep)
    recs = crash.make_batch(0, 8, seed=3)
    with HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM) as store:
        assert store.count() == 0
        store.add(recs)
        assert store.count() == 8
        hits = store.query(dense=recs[3].dense, mode="dense", limit=1)
        assert hits[0].id == recs[3].id
    guard = json.loads((path / crash.COLLECTION / "m3_hybrid.json").read_text())
    assert guard == crash._expected_guard()
    with HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM) as store:  # and it persists
        got = store.get([r.id for r in recs], with_vectors=True)
        assert [g.id for g in got] == [r.id for r in recs]
        assert all(crash.check_record(g, r) == [] for g, r in zip(got, recs, strict=True))


def test_interrupted_creation_keeps_the_guard_it_recorded(tmp_path: Path) -> None:
    """An interrupted creation is completed with the schema it recorded, not a new one."""
    path = _interrupted_creation(tmp_path, ("guard", "wal"))
    from shared.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError, match="dense_dim"):
        HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM * 2)
    with HybridStore(crash.COLLECTION, path=path) as store:
        assert store.schema.dense_dim == crash.DIM
        store.add(crash.make_batch(0, 2, seed=3))
        assert store.count() == 2


def test_verify_detects_a_lost_point(tmp_path: Path) -> None:
    """The crash checks themselves can fail: a deleted acknowledged point is reported."""
    path = tmp_path / "s"
    with HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM) as store:
        for b in range(3):
            store.add(crash.make_batch(b, 8, seed=4))
        store.delete([crash.record_id(1, 5)])
    present, lost, problems = crash.verify(path, [0, 1, 2], 3, 8, 4)
    assert lost == 1 and present == 0
    assert any("batch 1" in p for p in problems)
    # A partial unacknowledged batch is reported as such.
    with HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM) as store:
        store.add(crash.make_batch(3, 8, seed=4)[:5])
    _, _, problems = crash.verify(path, [0, 2], 3, 8, 4)
    assert any("partial" in p for p in problems)
    # A changed vector is reported.
    recs = crash.make_batch(0, 8, seed=4)
    recs[2].dense = np.roll(np.asarray(recs[2].dense), 1)
    with HybridStore(crash.COLLECTION, path=path, dense_dim=crash.DIM) as store:
        store.add(recs[2:3])
    _, _, problems = crash.verify(path, [0], None, 8, 4)
    assert any("dense vector" in p for p in problems)
