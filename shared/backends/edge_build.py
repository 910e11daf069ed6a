"""Index builds off the serving process: a writer process indexes a copy of an embedded shard.

qdrant-edge-py holds the GIL in every engine call, the index build (``optimize()``) included,
so an in-process build of a large add stops every other thread of the process (queries, an
event loop) for the whole build. Instead the embedded backend (:mod:`shared.backends.edge`)
copies the flushed shard to a sibling directory, runs ``python -m shared.backends.edge_build
<copy>`` (this module: load, optimize, flush, close, in its own process and GIL, then read the
files back into the page cache, which the engine's close empties: :func:`warm_page_cache`) and
swaps the indexed copy in. Nothing of the user's data crosses the process boundary but a
path: the writer reads and writes the engine's own files.

Crash safety. The serving shard stays the source of truth until the swap commits: every
write goes to it during the build (and to an in-memory log that is replayed onto the
indexed copy before the swap commits). The swap exchanges the two directories atomically
(``renameat2(RENAME_EXCHANGE)``) after writing :data:`SWAP_MARKER` into the copy; the marker
is removed only once the writes made during the build are replayed and flushed. A store
opened on a directory that still holds the marker exchanges the previous shard back
(:func:`recover`), and stale copies are removed, so a kill at any point leaves either the
previous shard or the swapped-in one, never half of one. Where the exchange is not
available (not Linux, a file system without it) the index is built in-process as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

#: In a directory being swapped in: the name of the sibling that holds the previous shard.
SWAP_MARKER = ".m3_hybrid.swapping"
#: The writer process runs at this much lower priority than the serving process.
WRITER_NICENESS = 5
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_PR_SET_PDEATHSIG = 1
# Never copied: the process lock (the copy gets its own) and the engine's scratch space.
_NOT_COPIED = (".m3_hybrid.lock", "temp_segments", SWAP_MARKER)


@functools.cache
def _renameat2() -> object | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> None:
    """Swap the two directories ``a`` and ``b`` in one atomic step (raises OSError)."""
    fn = _renameat2()
    if fn is None:
        raise OSError("renameat2 is not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:  # type: ignore[operator]
        err = ctypes.get_errno()
        raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")
    _sync_dir(a.parent)


def can_exchange(directory: Path) -> bool:
    """Whether two directories beside the existing ``directory`` can be exchanged atomically
    (tried once per parent directory)."""
    able = _can_exchange_in(str(directory.parent))
    if not able:
        logger.info(
            "index builds of the embedded store at %s run in-process: its file system cannot "
            "exchange two directories atomically",
            directory,
        )
    return able


@functools.cache
def _can_exchange_in(parent: str) -> bool:
    if _renameat2() is None:
        return False
    tag = uuid.uuid4().hex
    a, b = Path(parent, f".m3_hybrid.probe-{tag}-a"), Path(parent, f".m3_hybrid.probe-{tag}-b")
    try:
        a.mkdir()
        b.mkdir()
        exchange(a, b)
        return True
    except OSError:
        return False
    finally:
        for d in (a, b):
            shutil.rmtree(d, ignore_errors=True)


def build_dir(path: Path) -> Path:
    """A new sibling directory name for a build copy of the shard at ``path``."""
    return path.with_name(f".{path.name}.build-{uuid.uuid4().hex}")


def copy_shard(src: Path, dst: Path) -> None:
    """Copy the flushed shard ``src`` to ``dst`` (file copies run outside the GIL)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    (dst / "temp_segments").mkdir(exist_ok=True)


def mark_swapping(new: Path) -> None:
    """Write :data:`SWAP_MARKER` into ``new``: until removed, ``new`` is not authoritative."""
    marker = new / SWAP_MARKER
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(new.name)  # after the exchange the previous shard lives under this name
        fh.flush()
        os.fsync(fh.fileno())
    _sync_dir(new)


def commit_swap(path: Path) -> None:
    """The swapped-in shard at ``path`` is complete: remove its marker (the commit point)."""
    (path / SWAP_MARKER).unlink()
    _sync_dir(path)


def recover(path: Path) -> bool:
    """Undo a swap interrupted before its commit, then remove stale build copies.

    Call with the store's lock held. Returns True when the previous shard was put back
    (the caller must take the lock again: its lock file moved with the exchange).
    """
    restored = False
    marker = path / SWAP_MARKER
    if marker.exists():
        previous = path.with_name(marker.read_text(encoding="utf-8").strip())
        if previous.parent == path.parent and previous.is_dir():
            exchange(path, previous)  # the previous shard holds every acknowledged write
            restored = True
        else:  # pragma: no cover - the previous shard is removed only after the commit
            marker.unlink()
    for stale in path.parent.glob(f".{path.name}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return restored


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. no directory fsync on this platform
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class Writer:
    """The writer process building the index of the copy at ``directory``."""

    def __init__(self, directory: Path) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        # The child imports this very package, whatever the parent's sys.path was.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(directory), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )

    def wait(self) -> str | None:
        """Wait for the build (the GIL is free meanwhile); None on success, else why it failed."""
        _, err = self.process.communicate()
        code = self.process.returncode
        if code == 0:
            return None
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"the index-build process {how}" + (f": {' '.join(tail)}" if tail else "")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def _available_memory() -> int:
    """Bytes of memory the kernel says are available (Linux), else 0 (unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def warm_page_cache(directory: Path, budget: int | None = None) -> int:
    """Read the files of the shard at ``directory`` once, so that they are in the page cache
    when the serving process loads it; returns the bytes read.

    The engine drops the page cache of its files when it closes a shard
    (``posix_fadvise(DONTNEED)``), and its ``load`` then reads them back a page at a time,
    holding the serving process's GIL (``benchmarks/edge_load.py``, 200,000 points of 384-d
    int8 + sparse: 375 ms in the engine's in-heap layout and 82 ms in the default mapped one,
    against 124 and 61 ms with the files cached; more when the disk is busy). So the writer
    reads them after its close, in its own process. Segments first (what ``load`` reads), then the write-ahead
    log; at most ``budget`` bytes (default: half the memory available), so a shard larger
    than memory does not push everything else out of the cache for nothing.
    """
    if budget is None:
        budget = _available_memory() // 2
    files = sorted(
        (p for p in directory.rglob("*") if p.is_file()),
        key=lambda p: (p.relative_to(directory).parts[0] != "segments", str(p)),
    )
    buffer = bytearray(1 << 20)
    done = 0
    for path in files:
        try:
            with open(path, "rb", buffering=0) as fh:
                while done < budget and (n := fh.readinto(buffer)):
                    done += n
        except OSError:  # pragma: no cover - a file the engine removed meanwhile
            continue
        if done >= budget:
            break
    return done


def _die_with_parent(parent: int) -> None:
    """Linux: be killed when the thread that started us dies (the serving process crashed):
    its build copy is removed when the store is next opened."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        raise SystemExit(3)


def main(argv: list[str] | None = None) -> int:
    """The writer process: index the shard copy at ``argv[0]`` and flush it."""
    import qdrant_edge as qe

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m shared.backends.edge_build SHARD_COPY_DIR PARENT_PID", file=sys.stderr)
        return 2
    _die_with_parent(int(args[1]))
    with contextlib.suppress(OSError):  # not permitted here: run at the same priority
        os.nice(WRITER_NICENESS)
    shard = qe.EdgeShard.load(args[0])
    try:
        shard.optimize()
        shard.flush()
    finally:
        shard.close()
    warm_page_cache(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
