"""Index builds of the embedded store in a writer process (``background_index_min``).

A large add's index build runs in a child process on a copy of the shard, after the add
has returned, while the serving process keeps answering from the current shard; the
indexed copy is swapped in, and ``wait_indexed``/``close`` wait for it. These tests hold
a build in progress deterministically (the store's wait for its writer is held until they
release it, :func:`_held_builds`) or kill the writer (SIGKILL): nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe

from shared.backends import edge as edge_module
from shared.backends import edge_build
from shared.backends.edge import EdgeBackend
from shared.errors import BackendError, InvalidInputError, InvalidTypeError
from shared.steps import run
from shared.store import HybridStore
from shared.types import Record

DIM = 16
MIN = 400  # background_index_min of these stores: an add of 600 builds apart, one of 200 in-process


def _records(start: int, n: int) -> Iterator[Record]:
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        yield Record(
            id=f"doc-{i}",
            text=f"document {i}",
            dense=rng.standard_normal(DIM).astype(np.float32),
            sparse={int(t): 0.5 for t in rng.choice(5000, size=8, replace=False)} | {100_000 + i: 1.0},
        )


def _store(path: Path, **kw: Any) -> HybridStore:
    return HybridStore("c", path=path, dense_dim=DIM, sparse=True, background_index_min=MIN, **kw)


def _backend(store: HybridStore) -> EdgeBackend:
    backend = store._backend
    assert isinstance(backend, EdgeBackend)
    return backend


def _writer_pid(backend: EdgeBackend) -> int:
    """The pid of the writer process once the build has started."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        writer = backend._writer
        if writer is not None:
            return writer.process.pid
        assert backend._index_thread is not None, "no index build is under way"
        time.sleep(0.01)
    raise AssertionError("no writer process started within 120 s")


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Index builds that stay in progress until the returned event is set (or their writer
    process dies): the store's wait for its writer is held, the writer itself runs."""
    release = threading.Event()
    wait = edge_build.Writer.wait

    def held_wait(self: edge_build.Writer) -> str | None:
        while not release.wait(0.01) and self.process.poll() is None:
            pass
        return wait(self)

    monkeypatch.setattr(edge_build.Writer, "wait", held_wait)
    return release


def _in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException], list[Any]]:
    errors: list[BaseException] = []
    results: list[Any] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors, results


def _leftovers(root: Path) -> list[str]:
    """Anything beside the collection's directory (build copies, previous shards)."""
    return sorted(p.name for p in root.iterdir() if p.name != "c")


def test_small_adds_stay_in_process_and_a_large_one_builds_apart(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        backend = _backend(store)
        assert backend.background_index_min == MIN
        store.add(_records(0, 200))
        assert backend.background_builds == 0
        first = backend._shard
        store.add(_records(200, 600))
        store.wait_indexed()
        assert backend.background_builds == 1
        assert backend._shard is not first  # the indexed copy was swapped in
        assert store.count() == 800
        got = store.get([f"doc-{i}" for i in range(800)])
        assert [r.id for r in got] == [f"doc-{i}" for i in range(800)]
        probe = next(_records(650, 1))
        assert store.query(sparse={100_650: 1.0}, mode="sparse", limit=1)[0].id == probe.id
        assert _leftovers(tmp_path) == []
    with HybridStore("c", path=tmp_path) as store:  # reopened: the swapped-in shard is the store
        assert store.count() == 800


def test_the_copy_holds_every_point_without_replaying_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer must find every point in the copy's segments: replaying the write-ahead log on
    # its load left stale second copies of points in the indexed shard (5.7x the stored entries
    # at 100k points), so the shard is flushed before it is copied, WAL or not.
    found: list[int] = []
    real_copy = edge_build.copy_shard

    def copy_and_count(src: Path, dst: Path) -> None:
        real_copy(src, dst)
        bare = tmp_path / "without-log"
        shutil.copytree(dst, bare)
        shutil.rmtree(bare / "wal")
        shard = qe.EdgeShard.load(str(bare))
        try:
            found.append(int(shard.count(qe.CountRequest(exact=True))))
        finally:
            shard.close()
        shutil.rmtree(bare)

    monkeypatch.setattr(edge_build, "copy_shard", copy_and_count)
    with _store(tmp_path / "s") as store:
        store.add(_records(0, 200))  # in-process: in the log, not yet flushed
        store.add(_records(200, 600))  # builds apart, on the index thread
        store.wait_indexed()
        assert found == [800]
        info = _backend(store)._shard.info()  # type: ignore[union-attr]
        assert info.points_count == store.count() == 800  # no stale copies stored


def test_a_temporary_store_builds_apart_too(tmp_path: Path) -> None:
    # No path: no write-ahead log, so the shard is flushed before it is copied.
    with HybridStore("c", dense_dim=DIM, sparse=True, background_index_min=MIN) as store:
        store.add(_records(0, 200))
        store.add(_records(200, 600))
        store.wait_indexed()
        assert _backend(store).background_builds == 1
        assert store.count() == 800
        assert store.query(sparse={100_700: 1.0}, mode="sparse", limit=1)[0].id == "doc-700"


def test_the_default_threshold_is_the_engines_indexing_threshold(tmp_path: Path) -> None:
    with HybridStore("c", path=tmp_path, dense_dim=384) as store:
        store.add([Record(id="a", text="a", dense=np.ones(384, dtype=np.float32))])
        assert _backend(store).background_index_min == -(-10_000 * 1024 // (384 * 4))
    with HybridStore("d", path=tmp_path, dense_dim=DIM, background_index_min=0) as store:
        store.add(_records(0, 600))
        assert _backend(store).background_builds == 0  # 0: always in-process


def _exact_top(vectors: dict[str, np.ndarray], query: np.ndarray, k: int) -> list[str]:
    ids = list(vectors)
    mat = np.stack([vectors[i] / np.linalg.norm(vectors[i]) for i in ids])
    scores = mat @ (query / np.linalg.norm(query))
    return [ids[j] for j in np.argsort(-scores, kind="stable")[:k]]


def test_an_add_returns_before_its_index_is_built_and_queries_stay_exact(
    tmp_path: Path, held: threading.Event
) -> None:
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, 200))
        old = backend._shard
        ticks = [0]
        stop = threading.Event()

        def ticker() -> None:
            while not stop.is_set():
                time.sleep(0.001)
                ticks[0] += 1

        tick_thread = threading.Thread(target=ticker, daemon=True)
        tick_thread.start()
        # The add returns with its build under way (held here until released).
        assert len(store.add(_records(200, 600))) == 600
        _writer_pid(backend)
        try:
            assert backend.background_builds == 0 and backend._shard is old
            before = ticks[0]
            # Answered from the current shard, which holds every point written (unindexed:
            # searched exactly) -- the dense top 10 is the brute-force top 10.
            assert store.count() == 800
            assert store.query(sparse={100_700: 1.0}, mode="sparse", limit=1)[0].id == "doc-700"
            vectors = {r.id: np.asarray(r.dense) for a, n in ((0, 200), (200, 600)) for r in _records(a, n)}
            for probe in _records(5000, 5):
                assert probe.dense is not None
                hits = store.query(dense=probe.dense, mode="dense", limit=10)
                assert [h.id for h in hits] == _exact_top(vectors, np.asarray(probe.dense), 10)
            # Writes during the build land in the current shard and are replayed onto the copy.
            store.add(_records(800, 10))
            store.delete(["doc-0"])
            assert store.count() == 809
            time.sleep(0.2)
            assert ticks[0] > before, "the ticker thread did not run during the build"
        finally:
            held.set()
        store.wait_indexed()
        stop.set()
        assert backend.background_builds == 1
        assert backend._shard is not old  # answered from the swapped-in shard from now on
        assert store.count() == 809
        assert store.get(["doc-0"]) == []
        assert [r.id for r in store.get(["doc-805", "doc-799"])] == ["doc-805", "doc-799"]
        assert store.query(sparse={100_805: 1.0}, mode="sparse", limit=1)[0].id == "doc-805"
        assert _leftovers(tmp_path) == []
    with HybridStore("c", path=tmp_path) as store:
        assert store.count() == 809


def test_a_killed_writer_leaves_every_point_and_reports(tmp_path: Path, held: threading.Event) -> None:
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, 200))
        old = backend._shard
        store.add(_records(200, 600))
        os.kill(_writer_pid(backend), signal.SIGKILL)
        with pytest.raises(BackendError, match=r"killed by signal 9.*every point written is stored"):
            store.wait_indexed()
        store.wait_indexed()  # reported once
        assert backend._shard is old and backend.background_builds == 0
        assert store.count() == 800
        assert store.query(sparse={100_700: 1.0}, mode="sparse", limit=1)[0].id == "doc-700"
        assert _leftovers(tmp_path) == []
        # The unindexed points are still due: the next build takes them.
        held.set()
        run(backend.finish_bulk())
        store.wait_indexed()
        assert backend.background_builds == 1 and store.count() == 800


def test_close_reports_a_failed_build_and_keeps_the_data(tmp_path: Path, held: threading.Event) -> None:
    store = _store(tmp_path)
    store.add(_records(0, 600))
    os.kill(_writer_pid(_backend(store)), signal.SIGKILL)
    with pytest.raises(BackendError, match="killed by signal 9"):
        store.close()
    assert _leftovers(tmp_path) == []
    with HybridStore("c", path=tmp_path) as reopened:
        assert reopened.count() == 600


def test_close_waits_for_the_build_an_add_started(tmp_path: Path, held: threading.Event) -> None:
    store = _store(tmp_path)
    backend = _backend(store)
    store.add(_records(0, 200))
    store.add(_records(200, 600))
    _writer_pid(backend)
    closer, errors, _ = _in_thread(store.close)
    closer.join(0.3)
    assert closer.is_alive(), "close did not wait for the index build"
    held.set()
    closer.join(120)
    assert not closer.is_alive() and not errors
    assert backend.background_builds == 1
    assert _leftovers(tmp_path) == []
    with HybridStore("c", path=tmp_path) as reopened:
        assert reopened.count() == 800


def test_closing_a_temporary_store_abandons_its_build(held: threading.Event) -> None:
    store = HybridStore("c", dense_dim=DIM, sparse=True, background_index_min=MIN)
    store.add(_records(0, 600))
    backend = _backend(store)
    _writer_pid(backend)
    store.close()  # the writer is killed: the store is deleted anyway
    assert backend._index_thread is None and backend.background_builds == 0
    assert not backend.path.exists()


def test_a_cancelled_aadd_still_lands_whole(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, 200))

        async def main() -> None:
            task = asyncio.ensure_future(store.aadd(list(_records(200, 600))))
            while backend._writer is None and not task.done():
                await asyncio.sleep(0.001)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(main())
        # The points were written before the build; the build finishes on its own.
        store.wait_indexed()
        assert store.count() == 800


def test_an_interrupted_swap_is_undone_when_the_store_is_opened(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        store.add(_records(0, 200))
    path = tmp_path / "c"
    # The state a crash between the exchange and the commit leaves: the copy (here with a
    # point less) in place, marked, the previous shard beside it.
    copy = edge_build.build_dir(path)
    edge_build.copy_shard(path, copy)
    edit = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import qdrant_edge as qe
            s = qe.EdgeShard.load({str(copy)!r})
            s.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter()))
            s.flush(); s.close()
        """),
        ],
        capture_output=True,
        text=True,
    )
    assert edit.returncode == 0, edit.stderr
    edge_build.mark_swapping(copy)
    edge_build.exchange(path, copy)
    stale = edge_build.build_dir(path)
    stale.mkdir()  # a build copy a crash left behind
    with HybridStore("c", path=tmp_path) as store:
        assert store.count() == 200  # the previous shard, whole
        assert not (path / edge_build.SWAP_MARKER).exists()
    assert _leftovers(tmp_path) == []


def test_killing_the_serving_process_during_the_build_loses_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = {sys.path!r}
        from tests.shared.backends.test_edge_background_build import _records, _store
        store = _store(__import__("pathlib").Path({str(tmp_path)!r}))
        store.add(_records(0, 200))
        print("ready", flush=True)
        store.add(_records(200, 600))
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".c.build-*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert list(tmp_path.glob(".c.build-*")), "the build never started"
        proc.kill()
    finally:
        proc.wait(30)
    time.sleep(0.5)  # the writer dies with it (PR_SET_PDEATHSIG)
    with HybridStore("c", path=tmp_path) as store:
        assert store.count() == 800  # every point was written before the build started
    assert _leftovers(tmp_path) == []


def test_the_previous_shard_is_closed_before_the_directories_are_exchanged(tmp_path: Path) -> None:
    # The engine writes a shard's state at the paths it was loaded from: a previous shard
    # closed after the exchange wrote over the swapped-in shard's files.
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, 200))
        real = backend._shard
        seen: dict[str, Any] = {}

        class Previous:  # the current shard, watched
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def close(self) -> None:
                seen["marker at the store's path"] = (backend.path / edge_build.SWAP_MARKER).exists()
                seen["gate held"] = backend._gate._swapping
                real.close()

        backend._shard = Previous()  # type: ignore[assignment]
        store.add(_records(200, 600))
        store.wait_indexed()
        assert backend.background_builds == 1
        assert seen == {"marker at the store's path": False, "gate held": True}
        assert store.count() == 800


def test_writes_made_during_a_build_keep_their_payloads(tmp_path: Path, held: threading.Event) -> None:
    # Writes made during a build are replayed onto the indexed shard at its swap; each point
    # must read back with its own payload, in this store and once reopened.
    with _store(tmp_path) as store:
        store.add(_records(0, 600))
        _writer_pid(_backend(store))
        try:
            store.add(_records(5000, 300))  # during the build: logged, replayed at the swap
        finally:
            held.set()
        store.wait_indexed()
        ids = [f"doc-{i}" for i in (*range(600), *range(5000, 5300))]
        assert [r.id for r in store.get(ids)] == ids
    with HybridStore("c", path=tmp_path) as store:
        assert [r.id for r in store.get(ids)] == ids
        assert store.query(sparse={105_299: 1.0}, mode="sparse", limit=1)[0].id == "doc-5299"


def test_a_failed_load_of_the_indexed_shard_keeps_the_current_one_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, 200))
        old = backend._shard

        def fail() -> Any:  # the directories are exchanged by now
            raise BackendError("loading the indexed shard failed (test)")

        monkeypatch.setattr(backend, "_load_swapped", fail)
        store.add(_records(200, 600))  # acknowledged once written: the build's failure comes after
        with pytest.raises(BackendError, match=r"failed \(test\)"):
            store.wait_indexed()
        monkeypatch.undo()
        assert backend._shard is not old  # closed for the swap, reloaded from its own directory
        assert backend.background_builds == 0
        assert store.count() == 800
        assert store.query(sparse={100_700: 1.0}, mode="sparse", limit=1)[0].id == "doc-700"
        assert not (tmp_path / "c" / edge_build.SWAP_MARKER).exists()
        assert _leftovers(tmp_path) == []
        store.add(_records(800, 10))  # writes still land in the store's directory
        run(backend.finish_bulk())  # the unindexed points are still due: the next build takes them
        store.wait_indexed()
        assert backend.background_builds == 1 and store.count() == 810
    with HybridStore("c", path=tmp_path) as store:
        assert store.count() == 810


def test_a_large_add_is_indexed_in_windows_while_it_writes(tmp_path: Path, held: threading.Event) -> None:
    # Once a window (2 x background_index_min) is written, it is indexed apart while the add
    # goes on; when the next window is full before that build is swapped in, the add waits:
    # queries never search more than about two windows of unindexed points exactly.
    window = MIN * edge_module.WINDOW_FACTOR
    n = 8 * window
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(n, 1))
        store.query(sparse={100_000: 1.0}, mode="sparse", limit=1)  # the store is serving queries
        adder, errors, results = _in_thread(lambda: store.add(_records(0, n)))
        deadline = time.monotonic() + 120
        while backend._writer is None and adder.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert backend._writer is not None, "no window was indexed during the add"
        adder.join(0.5)
        try:
            assert adder.is_alive(), "the add did not wait for its window's build"
            assert window <= store.count() <= n
            # Every point written so far is searchable while the build runs.
            first = next(_records(0, 1))
            assert store.query(sparse={100_000: 1.0}, mode="sparse", limit=1)[0].id == first.id
        finally:
            held.set()
        adder.join(300)
        assert not adder.is_alive() and not errors and len(results[0]) == n
        store.wait_indexed()
        assert backend.background_builds >= 2
        assert store.count() == n + 1
        assert backend._shard.info().points_count == n + 1  # type: ignore[union-attr]  # no stale copies
        wanted = [f"doc-{i}" for i in range(n + 1)]
        assert [r.id for r in store.get(wanted)] == wanted  # each point with its own payload
        assert store.query(sparse={100_000 + n - 1: 1.0}, mode="sparse", limit=1)[0].id == f"doc-{n - 1}"
        assert _leftovers(tmp_path) == []
    with HybridStore("c", path=tmp_path) as store:
        assert store.count() == n + 1
        assert [r.id for r in store.get(wanted)] == wanted


def test_a_bulk_load_that_no_one_queries_is_indexed_once(tmp_path: Path) -> None:
    # Windows keep concurrent queries off long exact scans; with no query in sight they would
    # only add copies and reloads of the shard: the add is indexed in one build after it.
    n = 8 * MIN * edge_module.WINDOW_FACTOR
    with _store(tmp_path) as store:
        backend = _backend(store)
        store.add(_records(0, n))
        store.wait_indexed()
        assert backend.background_builds == 1
        assert store.count() == n
        assert [r.id for r in store.get(["doc-0", f"doc-{n - 1}"])] == ["doc-0", f"doc-{n - 1}"]


def _resident(path: Path) -> float:
    """The share of ``path``'s pages in the page cache (Linux ``mincore``)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    c = ctypes
    libc.mmap.argtypes = [c.c_void_p, c.c_size_t, c.c_int, c.c_int, c.c_int, c.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as fh:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fh.fileno(), 0)
        assert addr not in (None, ctypes.c_void_p(-1).value)
        try:
            vec = (ctypes.c_ubyte * pages)()
            assert libc.mincore(addr, size, vec) == 0
            return sum(b & 1 for b in vec) / pages
        finally:
            libc.munmap(addr, size)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore, posix_fadvise: Linux")
def test_the_writer_leaves_the_shards_files_in_the_page_cache(tmp_path: Path) -> None:
    # The engine drops its files from the page cache when it closes a shard; the serving
    # process's load would read them back from disk a page at a time, holding the GIL.
    files = [tmp_path / "segments" / "s" / "a.dat", tmp_path / "wal" / "b.dat"]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True)
        f.write_bytes(np.random.default_rng(i).bytes(1 << 20))
    for f in files:
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    if max(_resident(f) for f in files) > 0.5:
        pytest.skip("this file system keeps the pages cached")
    assert edge_build.warm_page_cache(tmp_path) == 2 << 20
    assert [_resident(f) for f in files] == [1.0, 1.0]
    # A budget: the segments (what a load reads) first, the rest only if it fits.
    for f in files:
        with open(f, "rb") as fh:
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert edge_build.warm_page_cache(tmp_path, budget=1 << 20) == 1 << 20
    assert _resident(files[0]) == 1.0 and _resident(files[1]) < 0.5


def test_a_compaction_window_above_the_threshold_is_indexed_apart(tmp_path: Path) -> None:
    with _store(tmp_path, compact_every=500) as store:
        backend = _backend(store)
        store.add(_records(0, 1200), batch_size=100)
        assert backend.compactions == 2 and backend.background_builds == 2
        assert store.count() == 1200
        assert [r.id for r in store.get(["doc-0", "doc-1199"])] == ["doc-0", "doc-1199"]
        assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-1, InvalidInputError, "background_index_min must be >= 0"),
        ("1000", InvalidTypeError, "background_index_min must be an int or None, got str"),
        (True, InvalidTypeError, "background_index_min must be an int or None, got bool"),
    ],
)
def test_bad_background_index_min_is_refused(tmp_path: Path, value: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HybridStore("x", path=tmp_path, dense_dim=DIM, background_index_min=value)


def test_background_index_min_is_refused_on_a_server() -> None:
    from qdrant_client import QdrantClient

    with pytest.raises(InvalidInputError, match="background_index_min is only used with the embedded store"):
        HybridStore("x", client=QdrantClient(":memory:"), dense_dim=DIM, background_index_min=5)
