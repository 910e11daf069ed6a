"""Compaction of the embedded store: bounded engine memory during long ingests.

Qdrant Edge keeps heap per point written since the shard was opened; the backend
optimizes, closes and reloads the shard every ``compact_every`` points. These tests
check that nothing is lost or changed by it, that queries from other threads never
see the shard while it is swapped, that the shard stays locked against other
processes while it is closed, and how ``compact_every`` is resolved and validated.
The memory bound itself is measured in ``tests/shared/test_reliability_load.py`` and by
``benchmarks/load.py`` (1M points, RELIABILITY.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.backends.edge import DEFAULT_COMPACT_EVERY, ON_DISK_SEGMENT_NUMBER, EdgeBackend, _SwapGate
from shared.errors import InvalidInputError, InvalidTypeError, StoreLockedError
from shared.store import HybridStore
from shared.types import Record

DIM = 16


def _records(start: int, n: int, seed: int = 0) -> Iterator[Record]:
    rng = np.random.default_rng(seed + start)
    for i in range(start, start + n):
        yield Record(
            id=f"doc-{i}",
            text=f"document {i}",
            metadata={"i": i},
            dense=rng.standard_normal(DIM).astype(np.float32),
            sparse={int(t): 0.5 for t in rng.choice(5000, size=8, replace=False)} | {100_000 + i: 1.0},
        )


def _backend(store: HybridStore) -> EdgeBackend:
    backend = store._backend
    assert isinstance(backend, EdgeBackend)
    return backend


# -- resolution and validation ---------------------------------------------------


def test_on_disk_stores_compact_by_default_and_in_ram_stores_do_not(tmp_path: Path) -> None:
    with HybridStore("d", path=tmp_path, dense_dim=DIM, on_disk=True) as store:
        store.add(_records(0, 3))
        assert _backend(store).compact_every == DEFAULT_COMPACT_EVERY
    # Reopened with just the path: the layout recorded in the guard decides.
    with HybridStore("d", path=tmp_path) as store:
        assert store.schema.on_disk and _backend(store).compact_every == DEFAULT_COMPACT_EVERY
    with HybridStore("d", path=tmp_path, compact_every=0) as store:
        assert _backend(store).compact_every == 0
    with HybridStore("r", path=tmp_path, dense_dim=DIM) as store:
        store.add(_records(0, 3))
        assert _backend(store).compact_every == 0
    with HybridStore("r", path=tmp_path, compact_every=50) as store:
        assert _backend(store).compact_every == 50


def test_on_disk_layout_maps_graphs_and_sparse_index_and_stops_merges(tmp_path: Path) -> None:
    with HybridStore("d", path=tmp_path, dense_dim=DIM, on_disk=True) as store:
        store.add(_records(0, 3))
    config = json.loads((tmp_path / "d" / "edge_config.json").read_text())
    assert config["vectors"]["dense"]["memory"] == "cold"
    assert config["vectors"]["dense"]["hnsw_config"]["memory"] == "cold"
    assert config["sparse_vectors"]["sparse"]["memory"] == "cold"
    assert config["optimizers"]["default_segment_number"] == ON_DISK_SEGMENT_NUMBER
    with HybridStore("r", path=tmp_path, dense_dim=DIM) as store:  # the default: mapped, kept cached
        store.add(_records(0, 3))
    config = json.loads((tmp_path / "r" / "edge_config.json").read_text())
    assert config["vectors"]["dense"]["memory"] == "cold"
    assert (config.get("optimizers") or {}).get("default_segment_number") is None


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-1, InvalidInputError, "compact_every must be >= 0"),
        ("1000", InvalidTypeError, "compact_every must be an int or None, got str"),
        (True, InvalidTypeError, "compact_every must be an int or None, got bool"),
        (1.5, InvalidTypeError, "compact_every must be an int or None, got float"),
    ],
)
def test_bad_compact_every_is_refused(tmp_path: Path, value: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HybridStore("x", path=tmp_path, dense_dim=DIM, compact_every=value)
    # Refused before anything was written, and the path is free again.
    assert not (tmp_path / "x").exists()
    HybridStore("x", path=tmp_path, dense_dim=DIM).close()


def test_compact_every_is_refused_on_a_server() -> None:
    with pytest.raises(InvalidInputError, match="compact_every is only used with the embedded store"):
        HybridStore("x", client=QdrantClient(":memory:"), dense_dim=DIM, compact_every=1000)


def test_both_adapters_pass_compact_every(tmp_path: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    import langchain_ext
    import llama_index_ext

    lc = langchain_ext.HybridQdrantVectorStore(
        DeterministicFakeEmbedding(size=DIM), path=tmp_path / "lc", compact_every=7, batch_size=5
    )
    li = llama_index_ext.HybridQdrantVectorStore("li", path=tmp_path / "li", dense_dim=DIM, compact_every=9)
    try:
        lc.add_texts([f"text {i}" for i in range(20)])
        assert _backend(lc._store).compact_every == 7
        # 4 writes of 5 points; a compaction once 7 or more were written since the last one.
        assert _backend(lc._store).compactions == 2
        assert len(lc.similarity_search("text 3", k=20)) == 20
        assert _backend(li._store).compact_every == 9
    finally:
        lc.close()
        li.close()


# -- nothing lost, nothing changed -------------------------------------------------


@pytest.mark.parametrize("persistent", [True, False], ids=["path", "temporary"])
def test_compaction_keeps_every_point_exact_and_findable(tmp_path: Path, persistent: bool) -> None:
    path = tmp_path if persistent else None
    records = list(_records(0, 1_000))
    store = HybridStore("c", path=path, dense_dim=DIM, sparse=True, on_disk=True, compact_every=300)
    try:
        ids = store.add(iter(records), batch_size=100)
        backend = _backend(store)
        assert ids == [r.id for r in records]
        # 1,000 points in batches of 100, every 300 points: after 300, 600 and 900.
        assert backend.compactions == 3
        assert store.count() == 1_000
        got = {h.id: h for h in store.get(ids, with_vectors=True)}
        assert len(got) == 1_000
        for r in records[::97]:
            dense = np.asarray(got[r.id].dense)
            assert np.allclose(dense, r.dense / np.linalg.norm(r.dense), atol=1e-5)
            assert got[r.id].sparse == pytest.approx(r.sparse)
            assert got[r.id].metadata == {"i": int(r.id.split("-")[1])}
            for exact in (True, False):
                assert store.query(dense=r.dense, mode="dense", limit=1, exact=exact)[0].id == r.id
            assert store.query(sparse=r.sparse, mode="sparse", limit=1)[0].id == r.id
        # Writes and deletes keep working on the reloaded shard.
        store.delete(["doc-5", "doc-605"])
        store.add(_records(1_000, 10))
        assert store.count() == 1_008
    finally:
        store.close()
    if persistent:
        with HybridStore("c", path=tmp_path) as store:
            assert store.count() == 1_008
            assert store.get(["doc-5", "doc-605"]) == []
            assert [h.id for h in store.get(["doc-999", "doc-1009"])] == ["doc-999", "doc-1009"]


def test_compaction_counts_points_across_add_calls(tmp_path: Path) -> None:
    """LlamaIndex and LangChain insert in several add() calls: the window spans them."""
    with HybridStore("c", path=tmp_path, dense_dim=DIM, compact_every=250) as store:
        for start in range(0, 1_000, 100):
            store.add(_records(start, 100))
        # The write that brings the points since the last compaction to 250 or more
        # triggers one: after 300, 600 and 900.
        assert _backend(store).compactions == 3
        assert store.count() == 1_000


async def test_async_add_compacts_too(tmp_path: Path) -> None:
    store = HybridStore("a", path=tmp_path, dense_dim=DIM, compact_every=200)
    try:
        await store.aadd(_records(0, 500), batch_size=100)
        assert _backend(store).compactions == 2
        assert await store.acount() == 500
    finally:
        await store.aclose()


# -- concurrency and locking ---------------------------------------------------------


def test_queries_from_8_threads_never_see_the_shard_swapped(tmp_path: Path) -> None:
    store = HybridStore("q", path=tmp_path, dense_dim=DIM, sparse=True, on_disk=True, compact_every=200)
    first = list(_records(0, 50))
    store.add(first)
    errors: list[str] = []
    answered = [0] * 8
    stop = threading.Event()
    written: set[str] = {r.id for r in first}

    def reader(k: int) -> None:
        rng = np.random.default_rng(k)
        while not stop.is_set():
            try:
                r = first[int(rng.integers(len(first)))]
                hits = store.query(dense=r.dense, sparse=r.sparse, mode="hybrid", limit=5)
                if not hits or hits[0].id != r.id:
                    errors.append(f"hybrid query for {r.id} returned {[h.id for h in hits]}")
                n = store.count()
                if n < len(first):
                    errors.append(f"count went down to {n}")
                answered[k] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        for start in range(50, 2_050, 100):
            batch = list(_records(start, 100))
            store.add(batch, batch_size=50)
            written.update(r.id for r in batch)
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert errors == []
        assert _backend(store).compactions >= 9
        assert min(answered) > 0
        assert store.count() == len(written) == 2_050
        assert {h.id for h in store.get(sorted(written))} == written
    finally:
        store.close()


def test_close_waits_for_a_running_compaction(tmp_path: Path) -> None:
    store = HybridStore("w", path=tmp_path, dense_dim=DIM, compact_every=10_000)
    store.add(_records(0, 2_000))
    backend = _backend(store)
    done = threading.Event()

    def compact() -> None:
        backend.compact()
        done.set()

    t = threading.Thread(target=compact)
    t.start()
    store.close()  # waits for the swap, then closes the reloaded shard
    t.join()
    assert done.is_set() and backend.compactions == 1
    with HybridStore("w", path=tmp_path) as again:
        assert again.count() == 2_000


def test_the_shard_stays_locked_while_it_is_closed_for_a_compaction(tmp_path: Path) -> None:
    """Between a compaction's close and reload the engine's own lock is released;
    the store's file lock keeps another process out all the same."""
    store = HybridStore("l", path=tmp_path, dense_dim=DIM)
    store.add(_records(0, 5))
    backend = _backend(store)
    with backend._gate.swap():  # the state inside a compaction: shard closed, not yet reloaded
        shard = backend._shard
        assert shard is not None
        shard.close()
        code = (
            "import sys\n"
            "from shared.errors import StoreLockedError\n"
            "from shared.store import HybridStore\n"
            "try:\n"
            f"    HybridStore('l', path={str(tmp_path)!r})\n"
            "except StoreLockedError as exc:\n"
            "    print('locked:', exc)\n"
            "else:\n"
            "    print('opened')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        import qdrant_edge as qe

        backend._shard = qe.EdgeShard.load(str(tmp_path / "l"))
    assert out.startswith("locked:") and str(tmp_path / "l") in out, out
    assert store.count() == 5
    store.close()
    # Released on close: another owner may open it now.
    with HybridStore("l", path=tmp_path) as again:
        assert again.count() == 5


def test_a_second_store_in_another_process_is_still_refused(tmp_path: Path) -> None:
    with HybridStore("p", path=tmp_path, dense_dim=DIM) as store:
        store.add(_records(0, 3))
        code = f"from shared.store import HybridStore\nHybridStore('p', path={str(tmp_path)!r})\n"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert res.returncode != 0
        assert "StoreLockedError" in res.stderr and "WouldBlock" not in res.stderr
    with pytest.raises(StoreLockedError), HybridStore("p", path=tmp_path):
        HybridStore("p", path=tmp_path)


# -- the gate itself ---------------------------------------------------------------------


def test_swap_gate_excludes_operations_and_prefers_a_waiting_swap() -> None:
    gate = _SwapGate()
    events: list[str] = []
    in_op = threading.Event()
    release_op = threading.Event()

    def long_operation() -> None:
        with gate.operation():
            events.append("op1 start")
            in_op.set()
            release_op.wait(5)
            events.append("op1 end")

    def swap() -> None:
        with gate.swap():
            events.append("swap")

    def late_operation() -> None:
        with gate.operation():
            events.append("op2")

    t1 = threading.Thread(target=long_operation)
    t1.start()
    assert in_op.wait(5)
    t2 = threading.Thread(target=swap)
    t2.start()
    time.sleep(0.2)  # the swap is now waiting for op1
    t3 = threading.Thread(target=late_operation)
    t3.start()
    time.sleep(0.2)  # op2 must queue behind the waiting swap, not slip in before it
    assert events == ["op1 start"]
    release_op.set()
    for t in (t1, t2, t3):
        t.join(5)
    assert events == ["op1 start", "op1 end", "swap", "op2"]


def test_a_window_too_small_to_release_memory_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one = [Record(id="a", text="a", dense=np.ones(384, dtype=np.float32))]
    # 1,000 points of 384-d float32 = 1.5 MB: below the engine's 10,000 KB indexing threshold.
    with (
        caplog.at_level("WARNING", logger="shared.backends.edge"),
        HybridStore("small", path=tmp_path, dense_dim=384, compact_every=1_000) as store,
    ):
        store.add(one)
    assert "compact_every=1000 is too small" in caplog.text and ">= 6667" in caplog.text
    caplog.clear()
    with (
        caplog.at_level("WARNING", logger="shared.backends.edge"),
        HybridStore("big", path=tmp_path, dense_dim=384, compact_every=10_000) as store,
    ):
        store.add(one)
    assert "too small" not in caplog.text


def test_an_on_disk_store_from_before_the_compaction_layout_is_not_compacted_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with HybridStore("old", path=tmp_path, dense_dim=DIM, on_disk=True) as store:
        store.add(_records(0, 20))
    # The shard config an on_disk store had before: the engine's merging optimizer.
    config_file = tmp_path / "old" / "edge_config.json"
    config = json.loads(config_file.read_text())
    del config["optimizers"]
    config_file.write_text(json.dumps(config))
    with caplog.at_level("INFO", logger="shared.backends.edge"), HybridStore("old", path=tmp_path) as store:
        assert store.schema.on_disk and _backend(store).compact_every == 0
        assert store.count() == 20
    assert "predates the compaction layout" in caplog.text
    with HybridStore("old", path=tmp_path, compact_every=5_000) as store:  # explicit: honoured
        assert _backend(store).compact_every == 5_000
