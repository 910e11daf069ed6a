"""``index(..., ray=...)`` on a local Ray instance (2 CPUs, started and stopped here): the
collection equals the adapters' from the same records, in an embedded store and in
qdrant-client local mode; a worker killed mid-run and a driver killed mid-run (then rerun)
leave the collection complete without duplicates. Module-scoped: Ray starts once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray

from shared.encoders import load_encoder
from shared.encoders.onnx import export_onnx
from shared.indexing import IndexResult, index
from shared.store import HybridStore

pytestmark = pytest.mark.slow

# ONNX fp32: int8's dynamic quantization scales activations per batch, so a text's vectors depend
# (by ~1e-4) on the texts batched with it; fp32 vectors do not (the 1e-6 comparison holds).
ONNX = {"backend": "onnx"}
QUERIES = ["dense vectors and sparse weights", "quantization stores vectors in fewer bits"]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cluster() -> Any:
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def model(tiny_bge_m3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    # ONNX Runtime on CPU: no torch import in the actors (they start faster).
    return str(export_onnx(tiny_bge_m3_dir, tmp_path_factory.mktemp("onnx") / "m3"))


def _encoder_processes() -> list[psutil.Process]:
    """The encoder actors of the Ray instance this test process started (its descendants)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "IndexEncoder" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


def test_two_workers_embedded_equals_adapters_and_survives_a_killed_worker(
    cluster: str, model: str, corpus: Any, tmp_path: Path, twin: Any, same_collection: Any
) -> None:
    path, expected = corpus
    killed: list[int] = []

    def kill_one_worker(progress: IndexResult) -> None:
        if not killed and progress.written:
            victims = _encoder_processes()
            assert len(victims) == 2
            killed.append(victims[0].pid)
            victims[0].send_signal(signal.SIGKILL)

    result = index(
        path,
        tmp_path / "ours",
        "docs",
        model=model,
        encoder_options=ONNX,
        ray=True,
        workers=2,
        batch_size=4,
        progress=kill_one_worker,
    )
    assert killed
    # Ray restarted the actor and retried its batch: nothing lost, nothing twice.
    assert result.ray and result.count == len(expected) and result.failed == 5
    assert result.written + result.skipped == len(expected)
    assert {e.where for e in result.errors} == {f"corpus.jsonl:{n}" for n in (5, 11, 17, 23, 29)}

    again = index(path, tmp_path / "ours", "docs", model=model, encoder_options=ONNX, ray=True, batch_size=16)
    assert (again.written, again.skipped, again.failed, again.count) == (0, len(expected), 5, len(expected))

    encoder = load_encoder(model, show_progress=False, **ONNX)
    theirs = twin(expected, encoder, tmp_path / "adapter")
    with HybridStore("docs", encoder=encoder, path=tmp_path / "ours") as ours:
        try:
            same_collection(ours, theirs, QUERIES)
        finally:
            theirs.close()


def test_one_worker_into_qdrant_client_local_mode_equals_adapters(
    cluster: str, model: str, corpus: Any, tmp_path: Path, twin: Any, same_collection: Any
) -> None:
    from qdrant_client import QdrantClient

    path, expected = corpus
    result = index(
        path, f"local:{tmp_path / 'ours'}", "docs", model=model, encoder_options=ONNX, ray=True, batch_size=8
    )
    assert (result.written, result.failed, result.count) == (len(expected), 5, len(expected))
    encoder = load_encoder(model, show_progress=False, **ONNX)
    client = QdrantClient(path=str(tmp_path / "ours"))
    twin_client = QdrantClient(path=str(tmp_path / "adapter"))
    ours = HybridStore("docs", encoder=encoder, client=client)
    theirs = twin(expected, encoder, tmp_path / "adapter", twin_client)
    try:
        same_collection(ours, theirs, QUERIES)
    finally:
        ours.close()
        theirs.close()
        client.close()
        twin_client.close()


def test_driver_killed_mid_run_then_rerun_finishes_without_duplicates(
    cluster: str, model: str, tmp_path: Path, make_corpus: Any
) -> None:
    path = tmp_path / "big.jsonl"
    expected = make_corpus(path, n=400)
    store = tmp_path / "store"
    cmd = [
        sys.executable,
        "-m",
        "shared.cli",
        "index",
        "--from",
        str(path),
        "--to",
        str(store),
        "--collection",
        "docs",
        "--model",
        model,
        "--backend",
        "onnx",
        "--records-per-batch",
        "4",
        "--ray",
        cluster,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen, deadline = b"", time.monotonic() + 240
    while not re.search(rb"written=[1-9]", seen):
        assert proc.poll() is None, seen.decode(errors="replace")[-2000:]
        assert time.monotonic() < deadline, "no progress from the indexing driver"
        seen += proc.stderr.read() or b""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    result = index(path, store, "docs", model=model, encoder_options=ONNX, ray=True, batch_size=16)
    assert result.skipped > 0 and result.written > 0
    assert result.written + result.skipped == len(expected)
    assert result.count == len(expected) and result.failed == 5


def test_a_ray_dataset_source_needs_ids_and_gives_the_same_points(
    cluster: str, model: str, tmp_path: Path
) -> None:
    rows = [{"id": f"r{i}", "text": f"passage number {i} about retrieval", "k": i} for i in range(12)]
    dataset = ray.data.from_items([*rows, {"text": "a row without its id"}])
    result = index(
        dataset, tmp_path / "ray", "docs", model=model, encoder_options=ONNX, ray=True, batch_size=4
    )
    assert (result.written, result.failed, result.count) == (12, 1, 12)
    assert "needs its id field 'id'" in result.errors[0].message
    here = index(rows, tmp_path / "here", "docs", model=model, encoder_options=ONNX)
    assert here.count == 12
    with HybridStore("docs", path=tmp_path / "ray") as a, HybridStore("docs", path=tmp_path / "here") as b:
        x = {r.id: r for r in a.scroll(with_vectors=True)}
        y = {r.id: r for r in b.scroll(with_vectors=True)}
        assert x.keys() == y.keys() and all(x[i].metadata == y[i].metadata == {"k": int(i[1:])} for i in x)
        assert all(abs(float(sum(x[i].dense) - sum(y[i].dense))) < 1e-5 for i in x)
