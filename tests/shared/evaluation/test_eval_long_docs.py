"""``m3-hybrid eval --long-docs``: chunking strategies compared on long documents."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from shared.cli import main
from shared.errors import InvalidInputError, ModelMismatchError
from shared.evaluation.long_docs import (
    CHUNK,
    DOCUMENT,
    STRATEGIES,
    LongDocReport,
    LongDocRow,
    LongDocSet,
    load_long_docs,
    parse_strategies,
    split_spans,
)
from shared.evaluation.metrics import EvalRow

TOPICS = {
    "volcano": ["The volcano erupted with lava and ash.", "Magma rose through the crater vent."],
    "bakery": ["The baker kneaded dough before dawn.", "Croissants need butter folded into layers."],
    "satellite": ["The satellite orbits the earth every ninety minutes.", "Its solar panels power a radio."],
    "football": ["The striker scored a goal in extra time.", "The goalkeeper saved a penalty kick."],
    "garden": ["Tomatoes ripen in the summer sun.", "Compost feeds the soil with nutrients."],
}
QUERIES = {
    "q1": ("lava and ash from the crater", "volcano#0"),
    "q2": ("butter layers in pastry", "bakery#1"),
    "q3": ("radio powered by solar panels", "satellite#1"),
    "q4": ("penalty saved by the keeper", "football#1"),
    "q5": ("ripe tomatoes in summer", "garden#0"),
    "q6": ("magma vent", "volcano#1"),
}


def write_long_docs(root: Path, *, level: str = CHUNK) -> tuple[Path, Path, Path]:
    """Five documents of two paragraphs each (chunk ``D#i`` = paragraph ``i`` with
    ``--chunk-size 160``), six queries judged at ``level``."""
    root.mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = root / "docs.jsonl", root / "queries.jsonl", root / "qrels.tsv"
    with corpus.open("w", encoding="utf-8") as f:
        for doc, paras in TOPICS.items():
            text = "\n\n".join(f"{p} It is said that {p.lower()}" for p in paras)
            f.write(json.dumps({"id": doc, "text": text}) + "\n")
    queries.write_text(
        "".join(json.dumps({"id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items()), encoding="utf-8"
    )
    qrels.write_text(
        "".join(f"{q}\t{c if level == CHUNK else c.split('#')[0]}\t1\n" for q, (_, c) in QUERIES.items()),
        encoding="utf-8",
    )
    return corpus, queries, qrels


# -- input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("splitter", ["paragraph", "sentence", "chars"])
@pytest.mark.parametrize("size", [7, 40, 1000])
def test_splitter_spans_cover_the_text_in_order_within_the_size(splitter: str, size: int) -> None:
    text = "First para. It has two sentences!\n\n  Second para here? Yes.\n\n\nThird one, longer than seven."
    spans = split_spans(text, splitter, size)
    pieces = [text[a:b] for a, b in spans]
    assert all(p == p.strip() and p and len(p) <= size for p in pieces)
    assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(spans))
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_splitter_boundaries() -> None:
    text = "Alpha beta. Gamma delta!\n\nEpsilon zeta."
    assert [text[a:b] for a, b in split_spans(text, "paragraph", 30)] == [
        "Alpha beta. Gamma delta!",
        "Epsilon zeta.",
    ]
    assert [text[a:b] for a, b in split_spans(text, "sentence", 13)] == [
        "Alpha beta.",
        "Gamma delta!",
        "Epsilon zeta.",
    ]
    assert [text[a:b] for a, b in split_spans(text, "chars", 11)] == [
        "Alpha beta.",
        "Gamma",
        "delta!",
        "Epsilon",
        "zeta.",
    ]
    with pytest.raises(InvalidInputError, match="unknown splitter 'words'"):
        split_spans(text, "words")


def test_documents_are_split_and_chunk_judgements_judge_their_documents(tmp_path: Path) -> None:
    data = load_long_docs(*write_long_docs(tmp_path), chunk_size=160)
    assert data.levels == (CHUNK, DOCUMENT)
    assert [c for c, _, _ in data.chunks["bakery"]] == ["bakery#0", "bakery#1"]
    _, a, b = data.chunks["bakery"][1]
    assert data.documents["bakery"][a:b].startswith("Croissants need butter")
    assert data.chunk_qrels is not None and data.chunk_qrels["q6"] == {"volcano#1": 1}
    assert data.document_qrels["q6"] == {"volcano": 1}
    doc_level = load_long_docs(*write_long_docs(tmp_path / "d", level=DOCUMENT), chunk_size=160)
    assert doc_level.levels == (DOCUMENT,) and doc_level.chunk_qrels is None


def test_chunks_already_cut_are_joined_into_their_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "chunks.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": cid, "text": text, "doc": doc}) + "\n"
            for cid, text, doc in [("a1", "One.", "A"), ("b1", "Two.", "B"), ("a2", "Three.", "A")]
        ),
        encoding="utf-8",
    )
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": "q", "text": "three"}) + "\n", encoding="utf-8")
    (tmp_path / "r.tsv").write_text("q\ta2\t2\nq\ta1\t1\n", encoding="utf-8")
    data = load_long_docs(corpus, tmp_path / "q.jsonl", tmp_path / "r.tsv", document_key="doc")
    assert data.documents == {"A": "One.\n\nThree.", "B": "Two."}
    assert [data.documents["A"][a:b] for _, a, b in data.chunks["A"]] == ["One.", "Three."]
    assert data.document_qrels == {"q": {"A": 2}}  # a document's grade: its best chunk's
    records = data.records(with_documents=True, located=False)
    assert [(r.id, r.metadata["level"], r.ref_doc_id) for r in records] == [
        ("A", DOCUMENT, "A"),
        ("a1", CHUNK, "A"),
        ("a2", CHUNK, "A"),
        ("B", DOCUMENT, "B"),
        ("b1", CHUNK, "B"),
    ]


def test_strategy_names() -> None:
    names = [s.name for s in parse_strategies("all")]
    assert names == [n + g for n in STRATEGIES for g in ("", "+group")]
    grouped = parse_strategies("late+group")[0]
    assert grouped.store_options == {"late_chunking": True}
    assert grouped.query_options == {"group_by": "ref_doc_id"}
    with pytest.raises(InvalidInputError, match="listed twice"):
        parse_strategies("naive,naive")


# -- bad input: one line, exit 2, before any model loads ------------------------------------------


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["eval", *argv, "--small-models", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, queries, qrels = write_long_docs(tmp_path)
    files = ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]
    err = _cli_error([*files, "--strategies", "naive,semantic"], capsys)
    assert "unknown strategy 'semantic'" in err
    no_id = tmp_path / "no_id.jsonl"
    no_id.write_text(corpus.read_text() + json.dumps({"text": "an orphan document"}) + "\n")
    err = _cli_error(
        ["--long-docs", "--corpus", str(no_id), "--queries", str(queries), "--qrels", str(qrels)], capsys
    )
    assert 'no_id.jsonl:6: missing "_id"' in err
    unknown = tmp_path / "unknown.tsv"
    unknown.write_text("q1\tvolcano#0\t1\nq2\tatlantis\t1\n")
    err = _cli_error(
        ["--long-docs", "--corpus", str(corpus), "--queries", str(queries), "--qrels", str(unknown)], capsys
    )
    assert "unknown.tsv:2: 'atlantis' is neither a document nor a chunk" in err
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("q1\tvolcano#0\t1\nq2\tbakery\t1\n")
    err = _cli_error(
        ["--long-docs", "--corpus", str(corpus), "--queries", str(queries), "--qrels", str(mixed)], capsys
    )
    assert "mixed.tsv:2: judges a document but line 1 judges the other level" in err
    err = _cli_error([*files, "--document-key", "doc"], capsys)
    assert "docs.jsonl:1: chunk 'volcano' has no 'doc' (its document)" in err


def test_options_of_the_preset_comparison_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, queries, qrels = write_long_docs(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "eval",
                "--long-docs",
                "--corpus",
                str(corpus),
                "--queries",
                str(queries),
                "--qrels",
                str(qrels),
                "--presets",
                "int8",
            ]
        )
    assert exc.value.code == 2
    assert "--presets does not apply to a chunking comparison" in capsys.readouterr().err


# -- the recommendation rule --------------------------------------------------------------------


def _row(strategy: str, per_query: list[float]) -> LongDocRow:
    values = np.asarray(per_query)
    metrics = {"ndcg@10": float(values.mean()), "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    row = EvalRow("m3-hybrid", strategy, "dense", metrics, len(values), per_query={"ndcg@10": per_query})
    return LongDocRow(strategy, DOCUMENT, "dense", row, 0.0, 0)


def _report(rows: dict[str, list[float]]) -> LongDocReport:
    from shared.evaluation.long_docs import _add_deltas

    data = LongDocSet("t", {}, {}, {}, {})
    table = [_row(s, v) for s, v in rows.items()]
    _add_deltas(table, next(iter(rows)), 500, 0)
    return LongDocReport(data, parse_strategies(list(rows)), ["dense"], table, [], 500, 0)


def test_recommendation_needs_a_ci_above_zero_then_takes_the_best() -> None:
    base = [0.5] * 20
    # naive+group: higher on average but its difference's CI reaches 0 (one query gains a lot)
    noisy = [0.5] * 19 + [1.0]
    steady = [0.6] * 20  # +0.1 on every query: CI above 0
    steadier = [0.7] * 20
    assert _report({"naive": base, "naive+group": noisy}).recommend().strategy.name == "naive"
    rec = _report({"naive": base, "naive+group": noisy, "late": steady, "hierarchical": steadier}).recommend()
    assert rec.strategy.name == "hierarchical" and rec.baseline == "naive"
    assert "levels=['chunk', 'document']" in rec.code
    # the first strategy listed is the baseline, whatever it is
    assert _report({"late": steady, "naive": base}).recommend().strategy.name == "late"


# -- end to end, real models ---------------------------------------------------------------------

#: Every strategy, each with and without group-by.
STRATEGIES_RUN = "all"


def test_cli_compares_every_strategy_with_cis_and_recommends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, queries, qrels = write_long_docs(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["eval", "--long-docs", "--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]
    argv += [
        "--chunk-size",
        "160",
        "--small-models",
        "--recommend",
        "--quiet",
        "--bootstrap",
        "200",
        "--strategies",
        STRATEGIES_RUN,
    ]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "long_docs.json").read_text())
    expected = [s.name for s in parse_strategies(STRATEGIES_RUN)]
    for level in (CHUNK, DOCUMENT):
        rows = [r for r in report["rows"] if r["level"] == level]
        assert [r["strategy"] for r in rows] == expected
        for r in rows:
            lo, hi = r["ndcg_ci"]
            assert lo <= r["metrics"]["ndcg@10"] <= hi
            assert len(r["per_query_ndcg@10"]) == len(QUERIES)
            assert (r["delta"] is None) == (r["strategy"] == "naive")
            assert f"| {r['strategy']} | {level} | hybrid-m3 | {r['metrics']['ndcg@10']:.4f} (" in printed
    assert report["rows"][1]["records"] == report["rows"][0]["records"] == 10
    # the recommendation follows the documented rule on the chunk level (the judged one)
    chunk_rows = [r for r in report["rows"] if r["level"] == CHUNK]
    better = [r for r in chunk_rows[1:] if r["delta"][1] > 0]
    want = max(better, key=lambda r: r["metrics"]["ndcg@10"])["strategy"] if better else "naive"
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["strategy"] == want and rec["level"] == CHUNK and rec["mode"] == "hybrid-m3"
    assert f"Recommended chunking: **{want}**" in printed


def test_late_chunking_on_the_tiny_bge_m3_checkpoint(tmp_path: Path, tiny_bge_m3_dir: Path) -> None:
    """The tiny checkpoint (random weights: mechanics only) through the late rows, chunks given
    with a document key; judged at the document level, so only that level is scored."""
    from shared.encoders import load_encoder
    from shared.evaluation.long_docs import evaluate_chunking

    corpus = tmp_path / "chunks.jsonl"
    with corpus.open("w", encoding="utf-8") as f:
        for doc, paras in TOPICS.items():
            for i, p in enumerate(paras):
                f.write(json.dumps({"id": f"{doc}-{i}", "text": p, "doc": doc}) + "\n")
    _, queries, qrels = write_long_docs(tmp_path / "q", level=DOCUMENT)
    data = load_long_docs(corpus, queries, qrels, document_key="doc")
    encoder = load_encoder(str(tiny_bge_m3_dir), show_progress=False)
    work = tmp_path / "indexes"
    report = evaluate_chunking(
        encoder, data, "naive,late,late+group", "dense,sparse", bootstrap=100, workdir=work, keep_indexes=True
    )
    assert [(r.strategy, r.mode, r.level) for r in report.rows] == [
        (s, m, DOCUMENT) for m in ("dense", "sparse") for s in ("naive", "late", "late+group")
    ]
    assert all(r.records == 10 for r in report.rows)
    assert report.recommend().level == DOCUMENT
    # the late rows' index really was late-chunked: the collection refuses a writer that is not
    from shared.store import HybridStore

    with HybridStore("long_late", encoder=encoder, path=work / "late") as store:
        assert store.count() == 10
        with pytest.raises(ModelMismatchError, match="holds chunks late-chunked"):
            store.add_texts(["one more chunk"])
