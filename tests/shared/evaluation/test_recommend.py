"""``m3-hybrid eval --recommend`` and :mod:`shared.recommend`, end to end on a small real set.

The set: 300 bible-dev verses (every relevant one of 50 sampled queries, plus a seeded
sample) with the real MiniLM + SPLADE-tiny models.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from shared.cli import main
from shared.errors import InvalidInputError
from shared.evaluation import EvalConfig, EvalReport, load_beir
from shared.recommend import recommend, recommend_for, recommendation_configs

DATA = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "bible-dev"
SMALL = ["--limit-queries", "50", "--corpus-limit", "300"]
FILES = [
    "--corpus",
    str(DATA / "corpus.jsonl"),
    "--queries",
    str(DATA / "queries_web.jsonl"),
    "--qrels",
    str(DATA / "qrels_web.tsv"),
]


def test_recommend_cli_end_to_end_and_the_choice_holds_when_rerun_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "vec.npz"
    base = ["eval", *FILES, *SMALL, "--small-models", "--bootstrap", "200", "--quiet", "--cache", str(cache)]
    presets = "binary,turbo-1bit,turbo-4bit"
    out = tmp_path / "rec"
    assert main([*base, "--recommend", "--presets", presets, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rec = json.loads((out / "recommendation.json").read_text())
    # A table of every configuration, then the recommendation with its code line.
    names = {c["config"] for c in rec["candidates"]}
    assert names == {"none"} | {f"{p}+on-disk" for p in presets.split(",")}
    for c in rec["candidates"]:
        assert f"| {c['config']} |" in printed
    assert "Recommended: " in printed and rec["code"] in printed and "(95% CI" in printed
    assert rec["threshold"] == 0.995 and rec["mode"] in ("hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
    assert rec["fusion"] == rec["mode"].removeprefix("hybrid-") and f"fusion={rec['fusion']!r}" in rec["code"]
    # The choice: the least RAM among those keeping >= 99.5% of float.
    chosen = next(c for c in rec["candidates"] if c["config"] == rec["config"])
    assert chosen["meets"] and chosen["ratio"] >= 0.995
    assert all(c["ram_bytes_per_doc"] >= chosen["ram_bytes_per_doc"] for c in rec["candidates"] if c["meets"])
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "recommendation.md").read_text() in printed

    # Rerun the recommended configuration on its own (with the printed CLI options): it keeps the threshold.
    again = tmp_path / "alone"
    assert main([*base, *shlex.split(rec["cli"]), "--out", str(again)]) == 0
    report = json.loads((again / "report.json").read_text())
    row = next(r for r in report["rows"] if r["config"] == rec["config"] and r["mode"] == rec["mode"])
    assert row["pct_of_reference"] >= 99.5
    assert {r["mode"] for r in report["rows"]} == {rec["mode"]}


def test_threshold_changes_the_choice_and_bad_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["eval", *FILES, "--recommend", "--threshold", "1.5"])
    assert "expected a number in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", *FILES, "--threshold", "0.99"])
    assert "--threshold goes with --recommend" in capsys.readouterr().err
    assert main(["eval", *FILES, "--recommend", "--presets", "turbo-3bit", "--quiet"]) == 2
    assert "TurboQuant has no 3-bit size" in capsys.readouterr().err


def test_recommend_api_on_the_same_set(tmp_path: Path, minilm_dir: Path, splade_dir: Path) -> None:
    from shared.encoders import load_encoder

    enc = load_encoder(str(minilm_dir), sparse_model=str(splade_dir), show_progress=False)
    ds = load_beir(DATA / "corpus.jsonl", DATA / "queries_web.jsonl", DATA / "qrels_web.tsv").subset(
        limit_queries=40, corpus_limit=300, seed=1
    )
    report, rec = recommend_for(
        enc, ds, ["turbo-1bit", "turbo-4bit"], mrl_dims=[96], workdir=tmp_path, bootstrap=100
    )
    assert isinstance(report, EvalReport)
    assert rec.candidates[0].config.name == "none+mrl96+on-disk"  # 12 B/doc of funnel codes
    assert {c.config.name for c in rec.candidates} == {
        "none",
        "turbo-1bit+on-disk",
        "turbo-4bit+on-disk",
        "none+mrl96+on-disk",
    }
    # A stricter threshold never picks a smaller configuration; 100% of float can only be met by
    # configurations that lose nothing on this set (the reference always does).
    strict = recommend(report, threshold=1.0)
    assert strict.choice.ram_bytes_per_doc >= rec.choice.ram_bytes_per_doc
    assert strict.choice.row.metrics["ndcg@10"] >= strict.reference.metrics["ndcg@10"]
    loose = recommend(report, threshold=0.5)
    assert loose.choice.ram_bytes_per_doc <= rec.choice.ram_bytes_per_doc
    assert loose.choice.config.name == "none+mrl96+on-disk"
    with pytest.raises(InvalidInputError, match="threshold"):
        recommend(report, threshold=0)


def test_recommendation_configs() -> None:
    configs = recommendation_configs(["turbo-2bit", "int8"])
    assert [c.name for c in configs] == ["none", "turbo-2bit+on-disk", "int8+on-disk"]
    # An MRL-trained model brings its funnel sizes below the full size.
    mrl = recommendation_configs(["none"], model_id="nomic-ai/nomic-embed-text-v1.5", dense_dim=768)
    assert [c.mrl_dim for c in mrl] == [None, 512, 256, 128, 64]
    assert all(c.on_disk for c in mrl[1:])
    assert recommendation_configs(["none"], model_id="BAAI/bge-m3", dense_dim=1024) == [EvalConfig("none")]
    with pytest.raises(InvalidInputError, match="below the model's size"):
        recommendation_configs(["none"], mrl_dims=[1024], dense_dim=1024)
    with pytest.raises(InvalidInputError, match="unknown quantization preset"):
        recommendation_configs(["int4"])
