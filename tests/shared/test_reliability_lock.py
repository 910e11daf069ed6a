"""Exclusive access to an embedded store across processes.

While one process ingests into an embedded store, every open from another process
fails with :class:`StoreLockedError` naming the path (never the engine's raw
"WouldBlock", never a second writer); the owner's data is untouched; once the
owner is gone (closed, or killed: the OS drops its lock) the store opens normally.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest

from shared.errors import StoreLockedError
from shared.store import HybridStore

ROOT = Path(__file__).resolve().parents[2]


def _load_crash() -> ModuleType:
    name = "m3_crash_bench"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "crash.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


crash = _load_crash()


def test_open_while_another_process_ingests_is_refused_then_free_after_kill(tmp_path: Path) -> None:
    proc = crash._spawn(tmp_path, 0, 16, 5, 10_000)
    assert proc.stdout is not None
    try:
        lines = []
        while not any(x.startswith("ack ") for x in lines):
            line = proc.stdout.readline()
            assert line, "the ingesting child died early"
            lines.append(line.strip())
        for _ in range(3):  # refused every time while the owner writes
            with pytest.raises(StoreLockedError) as info:
                HybridStore(crash.COLLECTION, path=tmp_path, dense_dim=crash.DIM)
            msg = str(info.value)
            assert str(tmp_path / crash.COLLECTION) in msg and "another process" in msg
            assert "WouldBlock" not in msg
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # The rest through the same reader: readline may have read ahead past the first ack, and
    # communicate() reads the raw pipe, so acks in that buffer would be lost (an acknowledged
    # batch would then count as unexpected data).
    assert proc.stdout is not None and proc.stderr is not None
    lines += [x.strip() for x in proc.stdout.read().splitlines()]
    proc.stdout.close()
    proc.stderr.close()
    acked = [int(x.split()[1]) for x in lines if x.startswith("ack ")]
    # The owner's acknowledged data survived the refused opens and its own death.
    _, lost, problems = crash.verify(tmp_path, acked, max(acked) + 1, 16, 5)
    assert problems == [] and lost == 0


def test_second_process_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    HybridStore("c", path=tmp_path, dense_dim=4).close()  # the collection exists, empty
    holder = textwrap.dedent(
        f"""
        import sys
        from shared.store import HybridStore
        from shared.types import Record
        s = HybridStore("c", path={str(tmp_path)!r})
        s.add([Record(id="held", dense=[1.0, 0.0, 0.0, 0.0])])
        print("holding", flush=True)
        sys.stdin.readline()
        s.close()
        print("closed", flush=True)
        """
    )
    opener = textwrap.dedent(
        f"""
        from shared.errors import StoreLockedError
        from shared.store import HybridStore
        try:
            HybridStore("c", path={str(tmp_path)!r}).close()
            print("opened")
        except StoreLockedError as exc:
            print("locked:", exc)
        except Exception as exc:
            print("other:", type(exc).__name__, exc)
        """
    )
    h = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert h.stdin is not None and h.stdout is not None
    try:
        assert h.stdout.readline().strip() == "holding"
        # Another process (not only this one) is refused with the clear error.
        out = subprocess.run(
            [sys.executable, "-c", opener], capture_output=True, text=True, cwd=ROOT, timeout=120
        ).stdout
        assert out.startswith("locked:") and "WouldBlock" not in out, out
        with pytest.raises(StoreLockedError):
            HybridStore("c", path=tmp_path)
    finally:
        h.stdin.write("\n")
        h.stdin.flush()
        assert h.stdout.readline().strip() == "closed"
        h.wait(timeout=30)
    with HybridStore("c", path=tmp_path) as s:
        assert [r.id for r in s.get(["held"])] == ["held"]
        assert s.count() == 1
