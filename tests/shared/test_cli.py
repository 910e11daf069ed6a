"""The ``m3-hybrid eval`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from tests.shared.evaluation.test_evaluation_e2e import write_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_inputs_modes_and_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for needle in (
        "corpus.jsonl",
        "query-id",
        "--small-models",
        "--presets",
        "hybrid-rrf",
        "-norescore",
        "binary-2bit",
        "report.md",
        "plot.png",
        "--limit-queries",
        "--mrl-dim",
    ):
        assert needle in out, needle


def test_module_runs_as_a_subprocess() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0
    assert "eval" in res.stdout


def test_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "d")
    code = main(
        [
            "eval",
            "--corpus",
            str(root / "corpus.jsonl"),
            "--queries",
            str(root / "nope.jsonl"),
            "--qrels",
            str(root / "qrels" / "test.tsv"),
            "--small-models",
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "queries file not found" in err and "nope.jsonl" in err
    assert "Traceback" not in err


def test_bad_qrels_line_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "d")
    bad = tmp_path / "bad.tsv"
    bad.write_text("q-paris\tparis\t1\nq-boil\tboil\n", encoding="utf-8")
    code = main(
        [
            "eval",
            "--corpus",
            str(root / "corpus.jsonl"),
            "--queries",
            str(root / "queries.jsonl"),
            "--qrels",
            str(bad),
            "--small-models",
            "--quiet",
        ]
    )
    assert code == 2
    assert "bad.tsv:2: expected 3 tab-separated columns" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--presets", "none,int4"], "unknown quantization preset 'int4'"),
        (["--modes", "dense,bm25"], "unknown mode 'bm25'"),
    ],
)
def test_bad_choices_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    root = write_dataset(tmp_path / "d")
    assert main(["eval", "--data", str(root), "--small-models", "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_argument_conflicts_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "d")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--data", str(root), "--corpus", str(root / "corpus.jsonl")])
    assert exc.value.code == 2
    assert "either --data or --corpus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--corpus", str(root / "corpus.jsonl")])
    assert "missing --queries, --qrels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(root), "--small-models", "--model", "x"])
    assert "--small-models picks both models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(root), "--limit-queries", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


def test_eval_end_to_end_writes_reports_and_reuses_cached_vectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dataset(tmp_path / "d")
    out, cache = tmp_path / "out", tmp_path / "vec.npz"
    argv = [
        "eval",
        "--data",
        str(root),
        "--small-models",
        "--presets",
        "none,binary",
        "--modes",
        "dense,sparse,rrf",
        "--mrl-dim",
        "64",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--bootstrap",
        "100",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| m3-hybrid | binary+mrl64 | hybrid-rrf |" in captured.out
    assert "encoding documents and queries" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert {(r["config"], r["mode"]) for r in report["rows"]} >= {("none", "sparse"), ("binary", "dense")}
    assert len(report["rows"][0]["per_query_ndcg@10"]) == report["num_queries"] == 7
    assert (out / "report.md").read_text().startswith("| system |")
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert cache.is_file()
    # Second run: same model and data -> the cached vectors are used, same numbers.
    assert main([*argv, "--out", str(tmp_path / "out2")]) == 0
    captured = capsys.readouterr()
    assert f"reusing encoded vectors from {cache}" in captured.err
    assert "encoding documents" not in captured.err
    again = json.loads((tmp_path / "out2" / "report.json").read_text())
    assert [r["metrics"] for r in again["rows"]] == [r["metrics"] for r in report["rows"]]
