"""Evaluation without the store: BEIR loading, metrics (vs hand-computed values), reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from shared.errors import InvalidInputError, InvalidTypeError
from shared.evaluation import (
    MODES,
    BeirDataset,
    EncodedDataset,
    EncodedTexts,
    EvalConfig,
    EvalMode,
    EvalReport,
    load_beir,
    parse_configs,
    parse_modes,
    score_run,
    vector_ram_bytes,
)

LOG2_3 = math.log2(3)


def write_beir(
    root: Path,
    *,
    corpus: list[dict] | None = None,
    queries: list[dict] | None = None,
    qrels: str | None = None,
) -> tuple[Path, Path, Path]:
    corpus = corpus or [
        {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
        {"_id": "d2", "text": "Berlin is the capital of Germany."},
        {"_id": "d3", "text": "Water boils at one hundred degrees."},
    ]
    queries = queries or [
        {"_id": "q1", "text": "capital of France"},
        {"_id": "q2", "text": "boiling point of water"},
        {"_id": "q3", "text": "unjudged query"},
    ]
    qrels = qrels if qrels is not None else "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t2\nq2\td2\t0\n"
    root.mkdir(parents=True, exist_ok=True)
    c, q, r = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels.tsv"
    c.write_text("".join(json.dumps(x) + "\n" for x in corpus), encoding="utf-8")
    q.write_text("".join(json.dumps(x) + "\n" for x in queries), encoding="utf-8")
    r.write_text(qrels, encoding="utf-8")
    return c, q, r


# ---------------------------------------------------------------- loading


def test_load_beir_reads_files_prepends_title_and_keeps_only_positive_judgements(tmp_path: Path) -> None:
    ds = load_beir(*write_beir(tmp_path))
    assert ds.doc_ids == ["d1", "d2", "d3"]
    assert ds.doc_texts[0] == "Paris. Paris is the capital of France."
    assert ds.doc_texts[1] == "Berlin is the capital of Germany."
    # q3 has no judgement, q2's grade-0 judgement is not a relevant document.
    assert ds.queries == {"q1": "capital of France", "q2": "boiling point of water"}
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d3": 2}}
    assert any("1 queries have no judgements" in n for n in ds.notes)


def test_load_beir_folder_layout_and_id_field(tmp_path: Path) -> None:
    write_beir(
        tmp_path,
        corpus=[{"id": "a", "text": "alpha"}, {"id": 7, "text": "seven"}],
        queries=[{"id": "x", "text": "alpha?"}],
        qrels="x\t7\t1\n",
    )
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels.tsv").rename(tmp_path / "qrels" / "test.tsv")
    ds = load_beir(tmp_path)
    assert ds.doc_ids == ["a", "7"]  # ids are strings, whatever JSON type they had
    assert ds.qrels == {"x": {"7": 1}}
    assert ds.name == tmp_path.name


def test_load_beir_trec_qrels_and_no_header(tmp_path: Path) -> None:
    c, q, r = write_beir(tmp_path, qrels="q1 0 d1 1\nq2 0 d3 1\n")
    assert load_beir(c, q, r).qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}}


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("q1\td1\t1\nq2\td3\n", "qrels.tsv:2: expected 3 tab-separated columns"),
        ("q1\td1\t1\nq2\td3\thigh\n", "qrels.tsv:2: score 'high' is not an integer"),
        ("q1\td1\t1\nqX\td3\t1\n", "qrels.tsv:2: query id 'qX' is not in"),
        ("q1\td1\t1\nq1\td1\t2\n", "qrels.tsv:2: conflicting grades"),
        ("q2\td2\t0\n", "no query has a positive judgement"),
    ],
)
def test_bad_qrels_name_file_and_line(tmp_path: Path, qrels: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_beir(*write_beir(tmp_path, qrels=qrels))


def test_bad_jsonl_lines_name_file_and_line(tmp_path: Path) -> None:
    c, q, r = write_beir(tmp_path)
    c.write_text('{"_id": "d1", "text": "ok"}\n\n{"_id": "d2", "text": "ok"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"corpus.jsonl:3: not valid JSON"):
        load_beir(c, q, r)
    c.write_text('{"_id": "d1", "text": "ok"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r'corpus.jsonl:2: missing "_id"'):
        load_beir(c, q, r)
    c.write_text('{"_id": "d1", "text": "ok"}\n{"_id": "d1", "text": "again"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"corpus.jsonl:2: duplicate id 'd1' \(first on line 1\)"):
        load_beir(c, q, r)
    c.write_text('{"_id": "d1", "text": 5}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r'corpus.jsonl:1: "text" must be a string'):
        load_beir(c, q, r)
    c.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"corpus.jsonl:1: expected a JSON object"):
        load_beir(c, q, r)


def test_missing_files_are_named(tmp_path: Path) -> None:
    c, q, r = write_beir(tmp_path)
    with pytest.raises(InvalidInputError, match=r"queries file not found: .*nope\.jsonl"):
        load_beir(c, tmp_path / "nope.jsonl", r)
    with pytest.raises(InvalidInputError, match="qrels file not found"):
        load_beir(c, q, tmp_path / "none.tsv")
    with pytest.raises(InvalidInputError, match="pass all three"):
        load_beir(c, q)
    with pytest.raises(InvalidInputError, match="not a folder"):
        load_beir(c)


def test_empty_entries_are_skipped_with_a_note_and_bom_is_accepted(tmp_path: Path) -> None:
    c, q, r = write_beir(
        tmp_path,
        corpus=[
            {"_id": "d1", "text": "Paris is in France."},
            {"_id": "d2", "title": " ", "text": "  "},
            {"_id": "d3", "title": "Only a title", "text": ""},
        ],
        queries=[{"_id": "q1", "text": "France"}, {"_id": "q2", "text": ""}],
        qrels="q1\td1\t1\nq1\td2\t1\nq2\td3\t1\n",
    )
    c.write_bytes(b"\xef\xbb\xbf" + c.read_bytes())
    ds = load_beir(c, q, r)
    assert ds.doc_ids == ["d1", "d3"] and ds.doc_texts[1] == "Only a title. "
    assert ds.queries == {"q1": "France"}
    # d2 was judged relevant but has no text: it stays judged (a miss), and is reported.
    assert ds.qrels == {"q1": {"d1": 1, "d2": 1}}
    notes = " ".join(ds.notes)
    assert "1 documents have no text and were skipped (e.g. 'd2')" in notes
    assert "1 queries have no text and were skipped (e.g. 'q2')" in notes
    assert "not in the corpus (e.g. 'd2')" in notes


def test_judgement_of_unknown_document_is_noted_not_silent(tmp_path: Path) -> None:
    ds = load_beir(*write_beir(tmp_path, qrels="q1\td1\t1\nq1\tgone\t1\n"))
    assert ds.qrels == {"q1": {"d1": 1, "gone": 1}}  # kept: it lowers recall, as it should
    assert any("not in the corpus" in n and "'gone'" in n for n in ds.notes)


def _big_dataset(n_docs: int = 50, n_queries: int = 20) -> BeirDataset:
    docs = [f"d{i}" for i in range(n_docs)]
    queries = {f"q{i}": f"query {i}" for i in range(n_queries)}
    qrels = {f"q{i}": {f"d{i * 2}": 1} for i in range(n_queries)}
    return BeirDataset(docs, [f"text {d}" for d in docs], queries, qrels, "synthetic")


def test_subset_keeps_relevant_documents_and_is_seeded() -> None:
    ds = _big_dataset()
    small = ds.subset(limit_queries=5, corpus_limit=12, seed=3)
    assert small.num_queries == 5 and small.num_docs == 12
    for rel in small.qrels.values():
        assert set(rel) <= set(small.doc_ids)
    # Original order is kept, and the sample is reproducible but seed-dependent.
    assert list(small.queries) == [q for q in ds.queries if q in small.queries]
    assert small.doc_ids == [d for d in ds.doc_ids if d in set(small.doc_ids)]
    assert ds.subset(limit_queries=5, corpus_limit=12, seed=3).doc_ids == small.doc_ids
    assert ds.subset(limit_queries=5, seed=4).queries != small.queries
    assert any("optimistic" in n for n in small.notes)
    with pytest.raises(InvalidInputError, match="below the 20 documents judged relevant"):
        ds.subset(corpus_limit=10)


# ---------------------------------------------------------------- metrics


def _ds(qrels: dict[str, dict[str, int]]) -> BeirDataset:
    docs = sorted({d for rel in qrels.values() for d in rel} | {f"x{i}" for i in range(20)})
    return BeirDataset(docs, docs, {q: q for q in qrels}, qrels)


def test_metrics_match_hand_computed_values() -> None:
    qrels = {
        "q1": {"d1": 1},
        "q2": {"d2": 2, "d3": 1},
        "q3": {"d5": 1},
        "q4": {"d6": 1},
        "q5": {"a": 1, "b": 1},
    }
    ranked = {
        "q1": ["d3", "d1"],  # relevant at rank 2
        "q2": ["d3", "d2"],  # graded: the grade-1 doc before the grade-2 doc
        "q3": [f"x{i}" for i in range(10)] + ["d5"],  # rank 11: outside @10, inside @100
        "q4": [],  # nothing returned
        "q5": ["a", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "b"],  # one of two in top 10
    }
    row = score_run(_ds(qrels), ranked, bootstrap=0)
    pq = {m: dict(zip(qrels, v, strict=True)) for m, v in row.per_query.items()}
    expected_ndcg = {
        "q1": 1 / LOG2_3,
        "q2": (1 / 1 + 2 / LOG2_3) / (2 / 1 + 1 / LOG2_3),  # trec_eval gain = grade
        "q3": 0.0,
        "q4": 0.0,
        "q5": 1 / (1 + 1 / LOG2_3),
    }
    for q, v in expected_ndcg.items():
        assert pq["ndcg@10"][q] == pytest.approx(v, abs=1e-9), q
    assert pq["mrr@10"] == pytest.approx({"q1": 0.5, "q2": 1.0, "q3": 0.0, "q4": 0.0, "q5": 1.0})
    assert pq["recall@10"] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.0, "q5": 0.5})
    assert pq["recall@100"] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 0.0, "q5": 1.0})
    assert row.metrics["ndcg@10"] == pytest.approx(sum(expected_ndcg.values()) / 5)
    assert row.n_queries == 5


def test_returned_order_is_what_is_scored() -> None:
    # Fused scores tie; ranx would re-sort ties by its own rule: ranks are passed instead.
    qrels = {"q": {"b": 1}}
    assert score_run(_ds(qrels), {"q": ["b", "a"]}, bootstrap=0).metrics["mrr@10"] == 1.0
    assert score_run(_ds(qrels), {"q": ["a", "b"]}, bootstrap=0).metrics["mrr@10"] == 0.5


def test_missing_query_counts_as_zero_and_unknown_query_is_an_error() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    row = score_run(_ds(qrels), {"q1": ["d1"]}, bootstrap=0)
    assert row.metrics["ndcg@10"] == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match="'zz'"):
        score_run(_ds(qrels), {"zz": ["d1"]})


def test_latency_percentiles_and_bootstrap_ci() -> None:
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(40)}
    ranked = {q: ([f"d{i}"] if i % 2 == 0 else []) for i, q in enumerate(qrels)}
    lat = [0.001 * (i + 1) for i in range(40)]
    row = score_run(_ds(qrels), ranked, latencies_s=lat, bootstrap=2000, seed=1)
    assert row.metrics["ndcg@10"] == pytest.approx(0.5)
    assert row.latency_p50_ms == pytest.approx(20.5)
    assert row.latency_p95_ms == pytest.approx(np.percentile(np.arange(1, 41), 95))
    lo, hi = row.ndcg_ci
    # Half the queries score 1: the CI of the mean is about 0.5 +- 1.96 * 0.5 / sqrt(40).
    assert lo < 0.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(40), rel=0.25)
    assert row.ndcg_std == pytest.approx(np.std([1, 0] * 20, ddof=1))


# ---------------------------------------------------------------- report


def _report_with_rows() -> EvalReport:
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(30)}
    ds = _ds(qrels)
    rep = EvalReport(ds.name, ds.num_docs, ds.num_queries, bootstrap=500)
    none, int8 = EvalConfig("none"), EvalConfig("int8")
    # dense finds 20/30 at rank 1, sparse 10/30, hybrid 25/30; int8 dense 18/30.
    plans = [
        (none, "dense", 20, 1.0),
        (none, "sparse", 10, 0.5),
        (none, "hybrid-rrf", 25, 2.0),
        (int8, "dense", 18, 0.3),
    ]
    for cfg, mode, hits, ms in plans:
        ranked = {q: ([f"d{i}"] if i < hits else ["zz"]) for i, q in enumerate(qrels)}
        row = score_run(ds, ranked, config=cfg.name, mode=mode, latencies_s=[ms / 1000] * 30, bootstrap=500)
        row.config_obj, row.mode_obj = cfg, MODES[mode]
        row.ram_bytes_per_doc = vector_ram_bytes(cfg, 384)
        rep.rows.append(row)
    rep.refresh()
    return rep


def test_report_deltas_vs_best_single_mode_and_reference() -> None:
    rep = _report_with_rows()
    assert rep.best_single() is rep.row("none", "dense")
    hybrid = rep.row("none", "hybrid-rrf")
    mean, lo, hi = hybrid.delta_vs_best_single or (0, 0, 0)
    assert mean == pytest.approx(5 / 30)
    assert 0 < lo <= mean <= hi  # paired: the 5 extra hits are the only differences
    assert rep.row("none", "dense").delta_vs_best_single == (0.0, 0.0, 0.0)
    assert rep.row("int8", "dense").pct_of_reference == pytest.approx(100 * 18 / 20)
    assert rep.row("none", "sparse").pct_of_reference == pytest.approx(100.0)
    # Any two rows: int8 dense misses 2 of the 20 queries float dense finds.
    mean, lo, hi = rep.paired_delta(rep.row("int8", "dense"), rep.row("none", "dense"))
    assert mean == pytest.approx(-2 / 30) and lo <= mean <= hi <= 0


def test_report_markdown_json_and_plot(tmp_path: Path) -> None:
    rep = _report_with_rows()
    md = rep.to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| system | config | mode | nDCG@10")
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|")
    assert "| m3-hybrid | int8 | dense | 0.6000" in md
    assert "90.00" in md  # int8 keeps 90% of float dense
    data = json.loads(rep.to_json(per_query=True))
    assert [r["mode"] for r in data["rows"]] == ["dense", "sparse", "hybrid-rrf", "dense"]
    assert len(data["rows"][0]["per_query_ndcg@10"]) == 30
    assert "config_obj" not in data["rows"][0]
    png = rep.plot(tmp_path / "sub" / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_add_row_refuses_a_row_scored_on_other_queries() -> None:
    rep = _report_with_rows()
    other = score_run(_ds({"q1": {"d1": 1}}), {"q1": ["d1"]}, system="anchor", bootstrap=0)
    with pytest.raises(InvalidInputError, match="scored on 1 queries, the report on 30"):
        rep.add_row(other)


# ---------------------------------------------------------------- modes, configs, sizes, cache


def test_parse_modes_names_aliases_and_errors() -> None:
    modes = parse_modes("dense, rrf,m3,dense-norescore")
    assert [m.name for m in modes] == ["dense", "hybrid-rrf", "hybrid-m3", "dense-norescore"]
    assert modes[1].query_kwargs() == {"mode": "hybrid", "fusion": "rrf", "colbert_rerank": False}
    assert modes[3].query_kwargs() == {"mode": "dense", "rescore": False, "colbert_rerank": False}
    assert MODES["colbert"].query_kwargs()["colbert_rerank"] is True
    assert EvalMode("rrf2", "hybrid", "rrf", rrf_k=2).query_kwargs()["rrf_k"] == 2
    assert "sparse_normalization" not in modes[2].query_kwargs()  # the store's default (auto)
    assert parse_modes("hybrid-m3-raw")[0].query_kwargs()["sparse_normalization"] == "none"
    assert MODES["colbert"].needs == {"dense", "sparse", "colbert"}
    with pytest.raises(InvalidInputError, match=r"unknown mode 'bm25' \(item 1\)"):
        parse_modes("dense,bm25")
    with pytest.raises(InvalidInputError, match="listed twice"):
        parse_modes("rrf,hybrid-rrf")
    with pytest.raises(InvalidTypeError, match="mode 0"):
        parse_modes([3])  # type: ignore[list-item]


def test_parse_configs_cross_product() -> None:
    configs = parse_configs("none,int8", mrl_dims=(None, 96))
    assert [c.name for c in configs] == ["none", "int8", "none+mrl96", "int8+mrl96"]
    assert configs[0].is_reference and not configs[2].is_reference
    with pytest.raises(InvalidInputError, match="MRL dim"):
        parse_configs("none", mrl_dims=(0,))


def test_vector_ram_bytes_follows_the_preset() -> None:
    assert vector_ram_bytes(EvalConfig("none"), 384) == 1536
    assert vector_ram_bytes(EvalConfig("float16"), 384) == 768
    assert vector_ram_bytes(EvalConfig("int8"), 384) == 1536 + 384
    assert vector_ram_bytes(EvalConfig("int8", on_disk=True), 384) == 384
    assert vector_ram_bytes(EvalConfig("binary-2bit", on_disk=True), 384) == 96
    assert vector_ram_bytes(EvalConfig("none", mrl_dim=96), 384) == 1536 + 12 + 384
    assert vector_ram_bytes(EvalConfig("none"), None, mean_sparse_nnz=10) == 80


def test_encoded_dataset_npz_round_trip_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    docs = EncodedTexts(
        ["a", "b", "c"],
        rng.random((3, 4), dtype=np.float32),
        [{1: 0.5, 7: 1.25}, {}, {3: 2.0}],
        [
            rng.random((2, 4), dtype=np.float32),
            rng.random((1, 4), dtype=np.float32),
            rng.random((3, 4), dtype=np.float32),
        ],
    )
    queries = EncodedTexts(["q"], rng.random((1, 4), dtype=np.float32), [{2: 1.0}], None)
    enc = EncodedDataset(docs, queries, encoder_fingerprint="abc", doc_seconds=1.5, meta={"model_id": "m"})
    enc.save_npz(tmp_path / "cache" / "v.npz")
    back = EncodedDataset.load_npz(tmp_path / "cache" / "v.npz")
    assert back.docs.ids == ["a", "b", "c"] and back.queries.ids == ["q"]
    np.testing.assert_array_equal(back.docs.dense, docs.dense)
    assert back.docs.sparse == [{1: 0.5, 7: 1.25}, {}, {3: 2.0}]
    assert back.docs.colbert is not None and docs.colbert is not None
    for x, y in zip(back.docs.colbert, docs.colbert, strict=True):
        np.testing.assert_array_equal(x, y)
    assert back.queries.colbert is None
    assert back.encoder_fingerprint == "abc" and back.doc_seconds == 1.5 and back.meta == {"model_id": "m"}
    assert not list((tmp_path / "cache").glob("*partial*"))
    ds = BeirDataset(["a", "b", "c"], ["x", "y", "z"], {"q": "?"}, {"q": {"a": 1}})
    assert back.matches(ds)
    assert not back.matches(BeirDataset(["a", "c", "b"], ["x", "y", "z"], {"q": "?"}, {"q": {"a": 1}}))


def test_the_package_keeps_every_public_name_of_the_former_module() -> None:
    import shared.evaluation as ev

    names = {
        "DEFAULT_MODES", "METRICS", "MODES", "PRIMARY", "BeirDataset", "EncodedDataset", "EncodedTexts",
        "EvalConfig", "EvalMode", "EvalReport", "EvalRow", "encode_dataset", "evaluate", "load_beir",
        "parse_configs", "parse_modes", "score_run", "vector_ram_bytes",
    }  # fmt: skip
    assert names <= set(ev.__all__)
    assert all(getattr(ev, n) is not None for n in names)


def test_importing_the_evaluation_loads_neither_the_store_nor_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, shared.evaluation; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "shared.evaluation.run" in loaded
    assert not {"matplotlib", "shared.store", "qdrant_edge", "ranx"} & loaded
