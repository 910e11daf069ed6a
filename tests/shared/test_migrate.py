"""``m3-hybrid migrate`` / :func:`shared.migrate.migrate`: copy a collection between the embedded
store, qdrant-client local mode (and a server) without re-encoding.

The round trip embedded -> qdrant-client local -> embedded is built with the real small
models (MiniLM + SPLADE-tiny) on KJV verses and interrupted on both legs; the CLI is
killed mid-copy in a subprocess and rerun.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.backends.base import Connection, ResultPoint
from shared.backends.edge import EdgeBackend
from shared.backends.remote import RemoteBackend
from shared.cli import main
from shared.errors import InvalidInputError, ModelMismatchError, StoreLockedError
from shared.filters import metadata_filter
from shared.migrate import MIGRATED_FROM_KEY, migrate, parse_endpoint
from shared.schema import CollectionSchema
from shared.steps import Steps, one_step, run
from shared.store import HybridStore
from shared.types import Record

ROOT = Path(__file__).resolve().parents[2]
BIBLE = ROOT / "benchmarks" / "data" / "bible-dev"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _points(backend: Any, names: tuple[str, ...]) -> dict[Any, tuple[dict[str, Any], dict[str, Any]]]:
    """Every point of a backend: point id -> (vectors, payload), read page by page."""
    out: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
    offset = None
    while True:
        page, offset = run(backend.scroll(None, offset, 64, list(names)))
        for p in page:
            assert p.point_id not in out, "a point came back twice"
            out[p.point_id] = (p.vectors, p.payload)
        if offset is None:
            return out


def embedded_points(path: Path, name: str) -> tuple[dict[str, Any], dict[Any, Any]]:
    """(guard, points) of an embedded collection."""
    backend = EdgeBackend(name, path)
    try:
        guard = run(backend.read_guard())
        assert guard
        return guard, _points(backend, CollectionSchema.from_guard(guard).vector_names)
    finally:
        run(backend.close())


def local_points(path: Path, name: str) -> tuple[dict[str, Any], dict[Any, Any]]:
    """(guard, points) of a collection in a qdrant-client local-mode directory."""
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(path))
    try:
        backend = RemoteBackend(name, Connection(client=client))
        guard = run(backend.read_guard())
        assert guard
        return guard, _points(backend, CollectionSchema.from_guard(guard).vector_names)
    finally:
        client.close()


def assert_same_points(a: dict[Any, Any], b: dict[Any, Any]) -> None:
    """Same ids, payloads, and vectors (floats to float32 precision: Qdrant re-normalises cosine)."""
    assert a.keys() == b.keys()
    for pid, (va, pa) in a.items():
        vb, pb = b[pid]
        assert pa == pb, pid
        assert va.keys() == vb.keys(), pid
        for name, x in va.items():
            y = vb[name]
            if isinstance(x, dict):  # sparse: token id -> weight
                assert x.keys() == y.keys(), (pid, name)
                np.testing.assert_allclose(list(x.values()), [y[k] for k in x], rtol=1e-6)
            else:
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def assert_same_ranking(ha: list[Any], hb: list[Any]) -> None:
    """Same scores (to float32 sums) and the same ids, where points that tie may come in either order."""
    sa, sb = [h.score for h in ha], [h.score for h in hb]
    np.testing.assert_allclose(sa, sb, rtol=1e-5)
    group = [0]
    for prev, cur in itertools.pairwise(sa):
        group.append(group[-1] + (not math.isclose(prev, cur, rel_tol=1e-5)))
    assert sorted(zip(group, [h.id for h in ha], strict=True)) == sorted(
        zip(group, [h.id for h in hb], strict=True)
    )


def content_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (contents only; the engine touches mtimes on open)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def random_store(
    path: Path, name: str, n: int, *, seed: int = 0, prefix: str = "doc", **options: Any
) -> None:
    """An embedded collection of ``n`` random dense + sparse records (no model needed)."""
    rng = np.random.default_rng(seed)
    records = [
        Record(
            id=f"{prefix}-{i}",
            text=f"text {i}",
            metadata={"i": i, "tags": ["a", "b"][: i % 3]},
            ref_doc_id=f"src-{i // 10}",
            dense=rng.normal(size=8).astype(np.float32),
            sparse={
                int(t): float(w)
                for t, w in zip(rng.choice(500, 5, replace=False), rng.random(5) + 0.1, strict=True)
            },
        )
        for i in range(n)
    ]
    with HybridStore(name, path=path, dense_dim=8, **options) as store:
        store.add(records)


class _Interrupt(RuntimeError):
    pass


def interrupt_after(monkeypatch: pytest.MonkeyPatch, cls: type, pages: int) -> list[int]:
    """Make ``cls.upsert`` fail after ``pages`` successful pages (as a crash mid-copy would)."""
    calls: list[int] = []
    original = cls.upsert

    def upsert(self: Any, points: Any) -> Steps[None]:  # a backend operation: steps
        if len(calls) >= pages:
            raise _Interrupt("injected interruption")
        yield from original(self, points)
        calls.append(len(points))

    monkeypatch.setattr(cls, "upsert", upsert)
    return calls


# ---------------------------------------------------------------------------
# the round trip with the real small models
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder(minilm_dir: Path, splade_dir: Path) -> Any:
    from shared.encoders import load_encoder

    return load_encoder(minilm_dir, sparse_model=splade_dir, device="cpu", show_progress=False)


def _verses(n: int) -> list[dict[str, Any]]:
    with open(BIBLE / "corpus.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def _queries(n: int) -> list[str]:
    with open(BIBLE / "queries_web.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for _, line in zip(range(n), fh, strict=False)]


def test_round_trip_embedded_local_embedded_survives_interruptions(
    tmp_path: Path, encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    verses = _verses(150)
    src, mid, dst = tmp_path / "src", tmp_path / "mid", tmp_path / "dst"
    with HybridStore("bible", encoder=encoder, path=src, quantization="int8") as store:
        store.add_texts(
            [v["text"] for v in verses],
            ids=[v["id"] for v in verses],
            metadatas=[{"book": v["book"], "testament": v["testament"]} for v in verses],
        )
    # A reopen normalises the engine's own config file once; from then on a reader changes no byte.
    HybridStore("bible", path=src).close()
    src_guard, src_points = embedded_points(src, "bible")
    src_files = content_hashes(src)
    assert len(src_points) == 150

    # Leg 1: embedded -> local, interrupted after 2 pages of 32, then rerun.
    written = interrupt_after(monkeypatch, RemoteBackend, 2)
    with pytest.raises(_Interrupt):
        migrate(src, "bible", f"local:{mid}", batch_size=32)
    assert written == [32, 32]
    _, partial = local_points(mid, "bible")
    assert len(partial) == 64
    monkeypatch.undo()
    first = migrate(src, "bible", f"local:{mid}", batch_size=32)
    assert first.resumed and first.copied == 150
    assert (first.source_count, first.target_count) == (150, 150)
    mid_guard, mid_points = local_points(mid, "bible")
    assert_same_points(src_points, mid_points)
    assert mid_guard[MIGRATED_FROM_KEY] == {"source": str(src), "collection": "bible"}
    assert {k: v for k, v in mid_guard.items() if k != MIGRATED_FROM_KEY} == src_guard

    # Leg 2: local -> embedded under another name, interrupted after 1 page, then rerun.
    written = interrupt_after(monkeypatch, EdgeBackend, 1)
    with pytest.raises(_Interrupt):
        migrate(f"local:{mid}", "bible", dst, to_collection="bible2", batch_size=50)
    monkeypatch.undo()
    second = migrate(f"local:{mid}", "bible", dst, to_collection="bible2", batch_size=50)
    assert second.resumed and second.target_count == 150
    dst_guard, dst_points = embedded_points(dst, "bible2")
    assert_same_points(src_points, dst_points)
    assert dst_guard["schema"] == src_guard["schema"]
    assert dst_guard["identity"] == src_guard["identity"]

    # The source was only read.
    assert content_hashes(src) == src_files
    assert embedded_points(src, "bible")[1] == src_points

    # Same dense (and hybrid) top-k with the same scores, same counts and payloads,
    # through the store with its encoder (the guard came along: same identity, no mismatch).
    queries = _queries(12)
    with (
        HybridStore("bible", encoder=encoder, path=src) as a,
        HybridStore("bible2", encoder=encoder, path=dst) as b,
    ):
        assert a.count() == b.count() == 150
        assert b.schema.quantization.name == "int8"
        for mode in ("dense", "sparse", "hybrid"):
            for q in queries:
                ha, hb = a.query(q, mode=mode, limit=10), b.query(q, mode=mode, limit=10)
                assert_same_ranking(ha, hb)
        ids = [v["id"] for v in verses]
        assert [(r.id, r.text, r.metadata) for r in a.get(ids)] == [
            (r.id, r.text, r.metadata) for r in b.get(ids)
        ]
        flt = metadata_filter({"testament": "OT"})
        assert a.count(flt) == b.count(flt) > 0


# ---------------------------------------------------------------------------
# every vector kind and storage setting
# ---------------------------------------------------------------------------


def test_colbert_mrl_and_quantization_are_copied(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = [
        Record(
            id=f"r{i}",
            text=f"t{i}",
            dense=rng.normal(size=16).astype(np.float32),
            sparse={i + 1: 1.0, 7: 0.5},
            colbert=rng.normal(size=(3 + i % 4, 6)).astype(np.float32),
        )
        for i in range(40)
    ]
    options = {"colbert": True, "mrl_dim": 8, "quantization": "binary-2bit", "sparse_idf": True}
    with HybridStore("c", path=tmp_path / "a", dense_dim=16, **options) as store:
        store.add(records)
    guard, points = embedded_points(tmp_path / "a", "c")
    assert set(next(iter(points.values()))[0]) == {"dense", "dense_mrl", "sparse", "colbert"}

    migrate(tmp_path / "a", "c", f"local:{tmp_path / 'l'}", batch_size=7)
    migrate(f"local:{tmp_path / 'l'}", "c", tmp_path / "b", batch_size=7)
    guard_b, points_b = embedded_points(tmp_path / "b", "c")
    assert guard_b["schema"] == guard["schema"]
    assert_same_points(points, points_b)

    q = rng.normal(size=16).astype(np.float32)
    qc = rng.normal(size=(4, 6)).astype(np.float32)
    with HybridStore("c", path=tmp_path / "a") as a, HybridStore("c", path=tmp_path / "b") as b:
        assert b.schema.mrl_dim == 8 and b.schema.colbert_dim == 6
        assert b.schema.quantization.name == "binary-2bit"
        # exact=True: binary codes of 8-d vectors tie a lot, and which tied candidates a
        # quantized search keeps depends on the order points were written in (not the same here).
        for kwargs in (
            {"dense": q, "mode": "dense"},
            {"dense": q, "sparse": {7: 1.0, 3: 1.0}, "colbert": qc, "colbert_rerank": True},
        ):
            assert_same_ranking(
                a.query(limit=8, exact=True, **kwargs), b.query(limit=8, exact=True, **kwargs)
            )


def test_python_api_takes_client_objects_and_pages_in_bounded_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qdrant_client import QdrantClient

    random_store(tmp_path / "a", "c", 103)
    pages: list[int] = []
    original = EdgeBackend.scroll.__wrapped__  # type: ignore[attr-defined]  # the blocking engine call

    def spy(self: Any, flt: Any, offset: Any, limit: int, names: Any) -> tuple[list[ResultPoint], Any]:
        page, nxt = original(self, flt, offset, limit, names)
        pages.append(len(page))
        return page, nxt

    monkeypatch.setattr(EdgeBackend, "scroll", one_step(spy))
    client = QdrantClient(":memory:")
    result = migrate(tmp_path / "a", "c", client, to_collection="copy", batch_size=10)
    assert pages == [10] * 10 + [3]  # read page by page, never everything at once
    assert (result.copied, result.target_count) == (103, 103)
    # ... and back out of the client object into a fresh embedded store.
    monkeypatch.undo()
    migrate(client, "copy", tmp_path / "b", to_collection="c")
    assert_same_points(embedded_points(tmp_path / "a", "c")[1], embedded_points(tmp_path / "b", "c")[1])
    client.close()


# ---------------------------------------------------------------------------
# targets that already exist
# ---------------------------------------------------------------------------


def test_non_empty_target_is_refused_unless_append(tmp_path: Path) -> None:
    random_store(tmp_path / "a", "c", 30, seed=1)
    random_store(tmp_path / "b", "c", 20, seed=2)  # ids doc-0..19 too, other vectors
    random_store(tmp_path / "x", "other", 25, seed=3, prefix="other")
    before = embedded_points(tmp_path / "b", "c")[1]
    with pytest.raises(InvalidInputError, match=r"already holds 20 points; pass --append"):
        migrate(tmp_path / "a", "c", tmp_path / "b")
    assert embedded_points(tmp_path / "b", "c")[1] == before  # untouched
    # --append: ids are kept, so the 20 shared ids take the source's points and 10 are added.
    result = migrate(tmp_path / "a", "c", tmp_path / "b", append=True)
    assert (result.copied, result.target_count, result.resumed) == (30, 30, False)
    assert_same_points(embedded_points(tmp_path / "a", "c")[1], embedded_points(tmp_path / "b", "c")[1])
    # Another collection with other ids is added next to them.
    result = migrate(tmp_path / "x", "other", tmp_path / "b", to_collection="c", append=True)
    assert result.target_count == 55


def test_empty_existing_target_with_the_same_layout_is_filled(tmp_path: Path) -> None:
    random_store(tmp_path / "a", "c", 12)
    HybridStore("c", path=tmp_path / "b", dense_dim=8).close()  # created, no points
    result = migrate(tmp_path / "a", "c", tmp_path / "b")
    assert (result.copied, result.target_count) == (12, 12)


def test_target_with_another_layout_is_refused_without_recreate_advice(tmp_path: Path) -> None:
    random_store(tmp_path / "a", "c", 5)
    HybridStore("c", path=tmp_path / "b", dense_dim=4).close()
    with pytest.raises(ModelMismatchError) as err:
        migrate(tmp_path / "a", "c", tmp_path / "b", append=True)
    assert "dense_dim: source 8, target 4" in str(err.value)
    assert "recreate" not in str(err.value)


# ---------------------------------------------------------------------------
# the command line: kill and rerun, errors
# ---------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "migrate", *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


# Edge upserts are fast: the embedded target needs more, smaller pages to be caught mid-copy.
@pytest.mark.parametrize(("target_kind", "n", "batch"), [("embedded", 3000, 2), ("local", 400, 4)])
def test_cli_killed_mid_copy_then_rerun_completes_without_duplicates(
    tmp_path: Path, target_kind: str, n: int, batch: int
) -> None:
    random_store(tmp_path / "a", "c", n)
    target = str(tmp_path / "b") if target_kind == "embedded" else f"local:{tmp_path / 'b'}"
    args = ("--from", str(tmp_path / "a"), "--collection", "c", "--to", target)
    proc = _cli(*args, "--batch-size", str(batch))
    assert proc.stderr is not None
    seen = b""
    total = f"/{n}".encode()
    deadline = time.monotonic() + 120
    # tqdm redraws "  K/n" on stderr: kill -9 once 100 points are copied, mid-stream.
    while time.monotonic() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        done = [int(x.split(b"/")[0]) for x in seen.replace(b"\r", b"\n").split() if x.endswith(total)]
        if done and done[-1] >= 100:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, seen[-500:]

    read = embedded_points if target_kind == "embedded" else local_points
    _, partial = read(tmp_path / "b", "c")
    assert 100 <= len(partial) < n

    rerun = _cli(*args, "--quiet")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert out.decode().startswith(f"resumed: copied {n:,} points"), out.decode()
    assert f"target now {n:,}" in out.decode()
    _, final = read(tmp_path / "b", "c")
    assert_same_points(embedded_points(tmp_path / "a", "c")[1], final)


def _run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["migrate", *args, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def _assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("m3-hybrid: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_missing_collection_and_missing_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    random_store(tmp_path / "a", "c", 3)
    code, err = _run_main(
        capsys, "--from", str(tmp_path / "a"), "--collection", "nope", "--to", str(tmp_path / "b")
    )
    _assert_one_line(code, err, "'nope'", "does not exist", "it holds: 'c'")
    code, err = _run_main(
        capsys, "--from", str(tmp_path / "zz"), "--collection", "c", "--to", str(tmp_path / "b")
    )
    _assert_one_line(code, err, "no embedded store", "zz")
    code, err = _run_main(
        capsys, "--from", f"local:{tmp_path / 'zz'}", "--collection", "c", "--to", str(tmp_path / "b")
    )
    _assert_one_line(code, err, "no qdrant-client local-mode store", "zz")
    migrate(tmp_path / "a", "c", f"local:{tmp_path / 'l'}")
    code, err = _run_main(
        capsys, "--from", f"local:{tmp_path / 'l'}", "--collection", "x", "--to", str(tmp_path / "b")
    )
    _assert_one_line(code, err, "collection 'x'", "does not exist")
    # A local-mode directory given without the local: prefix gets the right spelling.
    code, err = _run_main(
        capsys, "--from", str(tmp_path / "l"), "--collection", "c", "--to", str(tmp_path / "b")
    )
    _assert_one_line(code, err, f"local:{tmp_path / 'l'}")
    assert not (tmp_path / "b").exists()  # nothing created on a failed start
    # ... and as a target too: no embedded shard is created inside it.
    code, err = _run_main(
        capsys, "--from", str(tmp_path / "a"), "--collection", "c", "--to", str(tmp_path / "l")
    )
    _assert_one_line(code, err, f"local:{tmp_path / 'l'}")
    assert not (tmp_path / "l" / "c").exists()


def test_unreachable_url_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    random_store(tmp_path / "a", "c", 3)
    url = "http://127.0.0.1:9"  # discard port: connection refused
    for args, key in (
        (("--from", str(tmp_path / "a"), "--collection", "c", "--to", url), None),
        (("--from", url, "--collection", "c", "--to", str(tmp_path / "b")), "s3cret-key"),
    ):
        proc = _cli(*args, "--quiet", env={"QDRANT_API_KEY": key} if key else None)
        out, err = proc.communicate(timeout=120)
        text = err.decode()
        assert proc.returncode == 2, text
        assert "Traceback" not in text
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if key:  # a key over plain http is worth one warning line, never the key itself
            assert lines[0] == "m3-hybrid: warning: Api key is used with an insecure connection.", text
            assert key not in text + out.decode()
            lines = lines[1:]
        assert len(lines) == 1 and lines[0].startswith("m3-hybrid: error: "), text
        assert url in lines[0] and "cannot connect" in lines[0]
    assert not (tmp_path / "b").exists()


def test_locked_embedded_and_local_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qdrant_client import QdrantClient

    random_store(tmp_path / "a", "c", 3)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from shared.store import HybridStore; "
            f"s = HybridStore('c', path={str(tmp_path / 'a')!r}); print('open', flush=True); time.sleep(120)",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
        code, err = _run_main(
            capsys, "--from", str(tmp_path / "a"), "--collection", "c", "--to", str(tmp_path / "b")
        )
        _assert_one_line(code, err, "locked", str(tmp_path / "a"))
        code, err = _run_main(
            capsys, "--from", str(tmp_path / "x"), "--collection", "c", "--to", str(tmp_path / "a")
        )
        assert code == 2 and "no embedded store" in err  # the source is checked first
    finally:
        holder.kill()
        holder.wait()
    client = QdrantClient(path=str(tmp_path / "l"))
    try:
        code, err = _run_main(
            capsys, "--from", str(tmp_path / "a"), "--collection", "c", "--to", f"local:{tmp_path / 'l'}"
        )
        _assert_one_line(code, err, "locked", str(tmp_path / "l"))
    finally:
        client.close()
    # Once released, the same command works.
    code, _ = _run_main(
        capsys, "--from", str(tmp_path / "a"), "--collection", "c", "--to", f"local:{tmp_path / 'l'}"
    )
    assert code == 0


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    random_store(tmp_path / "a", "c", 3)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    code, err = _run_main(capsys, "--from", a, "--collection", "c", "--to", b, "--shard-number", "2")
    _assert_one_line(code, err, "shard_number", "not one")
    code, err = _run_main(capsys, "--from", a, "--collection", "c", "--to", a)
    _assert_one_line(code, err, "same collection")
    code, err = _run_main(capsys, "--from", a, "--collection", "c", "--to", "grpc://host:6334")
    _assert_one_line(code, err, "unsupported endpoint scheme 'grpc'")
    code, err = _run_main(capsys, "--from", a, "--collection", "../c", "--to", b)
    _assert_one_line(code, err, "collection_name")
    code, err = _run_main(capsys, "--from", a, "--collection", "c", "--to", "https://user:pw@host")
    _assert_one_line(code, err, "no credentials in the URL")
    assert "pw" not in err.replace("no credentials", "")
    with pytest.raises(SystemExit) as exc:
        main(["migrate", "--from", a, "--collection", "c", "--to", b, "--batch-size", "0"])
    assert exc.value.code == 2
    assert not (tmp_path / "b").exists()


def test_endpoint_parsing(tmp_path: Path) -> None:
    assert parse_endpoint("http://h:6333/").kind == "server"
    assert parse_endpoint("HTTPS://h").kind == "server"
    local = parse_endpoint(f"local:{tmp_path}/x/../y")
    assert (local.kind, local.location) == ("local", str(tmp_path / "y"))
    assert local.describe() == f"local:{tmp_path / 'y'}"
    assert parse_endpoint(tmp_path).kind == "embedded"
    for bad in ("", "local:", "s3://bucket"):
        with pytest.raises(InvalidInputError):
            parse_endpoint(bad)


def test_help_lists_the_endpoint_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    out = capsys.readouterr().out
    for needle in (
        "local:DIR",
        "http(s)://",
        "QDRANT_API_KEY",
        "--append",
        "--shard-number",
        "--to-collection",
    ):
        assert needle in out


def test_store_locked_error_class(tmp_path: Path) -> None:
    random_store(tmp_path / "a", "c", 3)
    with HybridStore("c", path=tmp_path / "a"), pytest.raises(StoreLockedError):
        migrate(tmp_path / "a", "c", tmp_path / "b")


def test_two_collections_of_one_local_directory(tmp_path: Path) -> None:
    """Local mode locks its directory: source and target there share one client."""
    random_store(tmp_path / "a", "c", 20)
    migrate(tmp_path / "a", "c", f"local:{tmp_path / 'l'}")
    result = migrate(f"local:{tmp_path / 'l'}", "c", f"local:{tmp_path / 'l'}", to_collection="c2")
    assert (result.copied, result.target_count) == (20, 20)
    assert_same_points(local_points(tmp_path / "l", "c")[1], local_points(tmp_path / "l", "c2")[1])
