"""``index`` / ``m3-hybrid index`` in-process: same collection as the adapters, resumable,
bad records reported, every source format (the Ray runs: test_indexing_ray.py)."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared.cli import main
from shared.encoders import load_encoder
from shared.errors import InvalidInputError, MissingDependencyError
from shared.indexing import Fields, index
from shared.store import HybridStore
from shared.types import Record

QUERIES = [
    "dense vectors and sparse weights",
    "quantization stores vectors in fewer bits",
    "a single forward pass",
]


@pytest.fixture(scope="module")
def encoder(tiny_bge_m3_dir: Path) -> Any:
    return load_encoder(str(tiny_bge_m3_dir), show_progress=False)


@pytest.mark.parametrize("where", ["embedded", "local"])
def test_jsonl_with_bad_records_equals_the_adapters_collection(
    where: str, corpus: Any, encoder: Any, tmp_path: Path, twin: Any, same_collection: Any
) -> None:
    path, expected = corpus
    target = str(tmp_path / "ours") if where == "embedded" else f"local:{tmp_path / 'ours'}"
    result = index(path, target, "docs", encoder=encoder, batch_size=8)
    assert (result.written, result.skipped, result.failed, result.count) == (
        len(expected),
        0,
        5,
        len(expected),
    )
    assert not result.ok
    reasons = {e.where: (e.id, e.message) for e in result.errors}
    assert reasons["corpus.jsonl:5"][0] is None and "not valid JSON" in reasons["corpus.jsonl:5"][1]
    assert reasons["corpus.jsonl:11"] == ("no-text", "no text: field 'text' is missing or null")
    assert "must be a string" in reasons["corpus.jsonl:17"][1]
    assert reasons["corpus.jsonl:23"][0] == "nan-meta" and "NaN" in reasons["corpus.jsonl:23"][1]
    assert "lone surrogate" in reasons["corpus.jsonl:29"][1]

    if where == "local":
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(tmp_path / "ours"))
        ours = HybridStore("docs", encoder=encoder, client=client)
        theirs = twin(expected, encoder, tmp_path / "adapter", client)
    else:
        theirs = twin(expected, encoder, tmp_path / "adapter")
        ours = HybridStore("docs", encoder=encoder, path=tmp_path / "ours")
    try:
        same_collection(ours, theirs, QUERIES)
    finally:
        ours.close()
        theirs.close()
        if where == "local":
            client.close()


def test_rerun_skips_stored_ids_without_encoding(corpus: Any, encoder: Any, tmp_path: Path) -> None:
    path, expected = corpus
    full = path.read_text()
    lines = full.splitlines(keepends=True)
    path.write_text("".join(lines[:20]))  # an interrupted run: the first 20 lines were indexed
    first = index(path, tmp_path / "s", "docs", encoder=encoder, batch_size=8)
    assert (first.written, first.failed) == (17, 3)
    path.write_text(full)
    passes = encoder.forward_passes
    second = index(path, tmp_path / "s", "docs", encoder=encoder, batch_size=8)
    assert (second.written, second.skipped, second.failed) == (len(expected) - 17, 17, 5)
    assert second.count == len(expected)
    passes = encoder.forward_passes
    third = index(path, tmp_path / "s", "docs", encoder=encoder, batch_size=8)
    assert (third.written, third.skipped, third.failed, third.count) == (0, len(expected), 5, len(expected))
    assert encoder.forward_passes == passes  # nothing re-encoded


def test_progress_carries_when_each_write_finished(corpus: Any, encoder: Any, tmp_path: Path) -> None:
    """``last_written_at`` is the wall time of the latest write (rates that leave out start-up),
    None while nothing was written (a rerun that only skips)."""
    path, expected = corpus
    marks: list[tuple[float | None, int]] = []
    start = time.time()
    result = index(
        path,
        tmp_path / "s",
        "docs",
        encoder=encoder,
        batch_size=8,
        progress=lambda r: marks.append((r.last_written_at, r.written)),
    )
    end = time.time()
    written = [(t, n) for t, n in marks if n]
    assert result.written == len(expected) and len(written) >= 2
    times = [t for t, _ in written]
    assert all(t is not None and start <= t <= end for t in times)
    assert times == sorted(times) and times[0] < times[-1]
    assert all(t is None for t, n in marks if not n)
    again = index(path, tmp_path / "s", "docs", encoder=encoder, batch_size=8)
    assert again.written == 0 and again.last_written_at is None


def test_csv_parquet_text_dir_and_records(encoder: Any, tmp_path: Path) -> None:
    rows = [{"key": f"k{i}", "body": f"text number {i}", "lang": "en"} for i in range(5)]
    with open(tmp_path / "c.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["key", "body", "lang"])
        w.writeheader()
        w.writerows(rows)
    fields = Fields(text="body", id="key")
    r = index(tmp_path / "c.csv", tmp_path / "csv", "c", encoder=encoder, fields=fields)
    assert (r.written, r.failed) == (5, 0)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{k: v for k, v in x.items() if k != "key"} for x in rows]),
        tmp_path / "p.parquet",
    )
    r = index(tmp_path / "p.parquet", tmp_path / "pq", "c", encoder=encoder, fields=fields)
    with HybridStore("c", path=tmp_path / "pq") as s:
        assert sorted(x.id for x in s.scroll()) == [f"p.parquet:row {i}" for i in range(1, 6)]
        assert s.get(["p.parquet:row 2"])[0].metadata == {"lang": "en"}

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Title\n\nfirst part.\n\nsecond part.")
    (docs / "sub" / "b.txt").write_text("only one part")
    (docs / "ignored.bin").write_bytes(b"\x00")
    r = index(
        docs, tmp_path / "txt", "t", encoder=encoder, chunker=lambda t: [p for p in t.split("\n\n") if p]
    )
    with HybridStore("t", path=tmp_path / "txt") as s:
        got = {x.id: (x.text, x.ref_doc_id, x.metadata) for x in s.scroll()}
    assert got == {
        "a.md#0": ("# Title", "a.md", {"source": "a.md"}),
        "a.md#1": ("first part.", "a.md", {"source": "a.md"}),
        "a.md#2": ("second part.", "a.md", {"source": "a.md"}),
        "sub/b.txt#0": ("only one part", "sub/b.txt", {"source": "sub/b.txt"}),
    }

    items = [Record(id="r1", text="hello", metadata={"x": 1}), {"text": "no id"}, 7]
    r = index(items, tmp_path / "py", "p", encoder=encoder)
    assert (r.written, r.failed, r.errors[0].where) == (2, 1, "item 2")
    with HybridStore("p", path=tmp_path / "py") as s:
        assert sorted(x.id for x in s.scroll()) == ["item 1", "r1"]


def test_cli_reports_bad_records_and_max_errors(
    corpus: Any, tiny_bge_m3_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, expected = corpus
    args = ["index", "--from", str(path), "--to", str(tmp_path / "s"), "--collection", "c"]
    args += ["--model", str(tiny_bge_m3_dir), "--quiet", "--records-per-batch", "4"]
    assert main([*args, "--max-errors", "0"]) == 1
    out = capsys.readouterr()
    assert "stopped early" in out.out
    assert main(args) == 1
    out = capsys.readouterr()
    assert "m3-hybrid: bad record: corpus.jsonl:11: record 'no-text': no text" in out.err
    assert f"{len(expected) - 4:,} written" in out.out or "written" in out.out
    assert f"holds {len(expected)} points" in out.out
    assert "Traceback" not in out.err


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidInputError, match="no file or directory"):
        index(tmp_path / "missing.jsonl", tmp_path / "s", "c")
    with pytest.raises(InvalidInputError, match="ray="):
        index([], tmp_path / "s", "c", workers=2)
    assert main(["index", "--from", str(tmp_path), "--to", str(tmp_path / "s"), "--collection", "c"]) == 2
    assert "no .txt" in capsys.readouterr().err


def test_ray_is_optional_and_imported_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, corpus: Any, tmp_path: Path
) -> None:
    code = "import sys, shared.cli, shared.indexing, shared.store; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"m3-hybrid\[ray\]"):
        index(corpus[0], tmp_path / "s", "c", ray=True)
