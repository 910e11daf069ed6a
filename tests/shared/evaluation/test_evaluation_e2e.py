"""Evaluation end to end through the real store (Qdrant Edge) with the small real models."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.evaluation import (
    BeirDataset,
    EvalConfig,
    EvalMode,
    encode_dataset,
    evaluate,
    load_beir,
    score_run,
)
from shared.types import Encoder

DOCS = {
    "paris": "Paris is the capital and largest city of France, on the river Seine.",
    "berlin": "Berlin is the capital of Germany and its most populous city.",
    "boil": "Water boils at one hundred degrees Celsius at sea level.",
    "ice": "Ice melts when the temperature rises above zero degrees.",
    "python": "Python is a programming language that lets you work quickly.",
    "password": "To reset your password, open settings, choose security and follow the steps.",
    "football": "Children play football in the park after school.",
    "stars": "Astronomers measure the light of distant stars to learn their age.",
    "nurse": "Nurses help patients recover in the hospital after surgery.",
    "village": "The small village by the river grew into a market town over many years.",
    "fox": "The quick brown fox jumps over the lazy dog.",
    "cat": "A cat sat on the mat near the window in the morning.",
    "bread": "Bakers knead the dough and bake bread early in the morning.",
    "train": "The night train to Vienna leaves the station at ten o'clock.",
    "piano": "She practised the piano for two hours every evening.",
    "volcano": "The volcano erupted and covered the island in grey ash.",
    "coffee": "Coffee beans are roasted before they are ground and brewed.",
    "whale": "The blue whale is the largest animal that has ever lived.",
    "tax": "Income tax returns must be filed by the end of April.",
    "garden": "Tomatoes grow best in a sunny garden with regular watering.",
}
QUERIES = {
    "q-paris": ("What is the capital of France?", {"paris": 1}),
    "q-boil": ("At what temperature does water boil?", {"boil": 1}),
    "q-password": ("how do I change my password", {"password": 1}),
    "q-whale": ("biggest animal on earth", {"whale": 1}),
    "q-coffee": ("how is coffee made from beans", {"coffee": 1}),
    "q-train": ("when does the train to Vienna depart", {"train": 1}),
    "q-capitals": ("capital cities of European countries", {"paris": 1, "berlin": 2}),
}


def write_dataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items()),
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": t}) + "\n" for k, (t, _) in QUERIES.items()), encoding="utf-8"
    )
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{q}\t{d}\t{g}" for q, (_, rel) in QUERIES.items() for d, g in rel.items()
    ]
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def pair_encoder(minilm_dir: Path, splade_dir: Path) -> Encoder:
    from shared.encoders import load_encoder

    return load_encoder(str(minilm_dir), sparse_model=str(splade_dir), show_progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> BeirDataset:
    return load_beir(write_dataset(tmp_path_factory.mktemp("beir")))


def _brute_force(enc_docs: np.ndarray, enc_q: np.ndarray, doc_ids: list[str], qids: list[str]) -> dict:
    sims = enc_q @ enc_docs.T
    return {q: [doc_ids[j] for j in np.argsort(-sims[i], kind="stable")] for i, q in enumerate(qids)}


def test_evaluate_runs_every_config_and_mode_through_the_store(
    pair_encoder: Encoder, dataset: BeirDataset, tmp_path: Path
) -> None:
    encoded = encode_dataset(pair_encoder, dataset)
    configs = [EvalConfig("none"), EvalConfig("int8"), EvalConfig("none", mrl_dim=96)]
    modes = "dense,sparse,hybrid-rrf,hybrid-dbsf,hybrid-m3,dense-norescore,colbert"
    passes = pair_encoder.forward_passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = evaluate(
            pair_encoder, dataset, configs, modes, encoded=encoded, workdir=tmp_path / "idx", bootstrap=200
        )
    # Vectors were handed over: no model pass during indexing or querying.
    assert pair_encoder.forward_passes == passes
    got = {(r.config, r.mode) for r in report.rows}
    expected = {("none", m) for m in ("dense", "sparse", "hybrid-rrf", "hybrid-dbsf", "hybrid-m3")}
    expected |= {
        (c, m) for c in ("int8", "none+mrl96") for m in ("dense", "hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
    }
    expected |= {("int8", "dense-norescore"), ("none+mrl96", "dense-norescore")}
    assert got == expected  # sparse once; no norescore without quantization; no colbert here
    assert any("colbert skipped" in n for n in report.notes)
    assert any("dense-norescore skipped on none" in n for n in report.notes)
    assert not any("forward passes" in n for n in report.notes)

    # The dense run equals exact cosine search on the same vectors (20 docs: exact).
    assert encoded.docs.dense is not None and encoded.queries.dense is not None
    exact = score_run(
        dataset,
        _brute_force(encoded.docs.dense, encoded.queries.dense, dataset.doc_ids, list(dataset.queries)),
        bootstrap=0,
    )
    assert report.row("none", "dense").per_query["ndcg@10"] == pytest.approx(exact.per_query["ndcg@10"])
    # Real models on an easy set: well above chance; every relevant doc within 100 hits.
    for r in report.rows:
        assert r.metrics["recall@100"] == 1.0, r.label
        assert r.latency_p50_ms is not None and 0 < r.latency_p50_ms <= (r.latency_p95_ms or 0)
        assert r.disk_bytes and r.disk_bytes > 0 and r.index_seconds is not None
        assert r.ram_bytes_per_doc and r.ram_bytes_per_doc > 0
    assert report.row("none", "dense").metrics["ndcg@10"] > 0.8
    assert report.row("none", "hybrid-rrf").metrics["mrr@10"] > 0.8
    assert report.row("int8", "dense").pct_of_reference is not None
    assert report.row("none+mrl96", "dense").ram_bytes_per_doc > report.row("none", "dense").ram_bytes_per_doc
    # Indexes are built in workdir and removed afterwards.
    assert not any((tmp_path / "idx").iterdir())
    md = report.to_markdown()
    assert md.count("\n| m3-hybrid |") == len(report.rows)


def test_sparse_normalization_keeps_sparse_ranking_and_m3_without_sparse_is_dense(
    pair_encoder: Encoder, dataset: BeirDataset, tmp_path: Path
) -> None:
    modes = [
        EvalMode("sparse", "sparse"),
        EvalMode("sparse-qnorm", "sparse", sparse_normalization="query"),
        EvalMode("m3", "hybrid", "m3"),
        EvalMode("m3-sw0", "hybrid", "m3", sparse_weight=0.0),
        EvalMode("dense", "dense"),
    ]
    report = evaluate(pair_encoder, dataset, [EvalConfig()], modes, workdir=tmp_path, bootstrap=0)
    # Scaling the query by a constant does not change a sparse ranking.
    assert report.row("none", "sparse-qnorm").per_query == report.row("none", "sparse").per_query
    # m3 with a zero sparse weight ranks like dense.
    assert report.row("none", "m3-sw0").per_query["ndcg@10"] == pytest.approx(
        report.row("none", "dense").per_query["ndcg@10"]
    )


def test_colbert_configuration_with_bge_m3_layout(
    tiny_bge_m3_dir: Path, dataset: BeirDataset, tmp_path: Path
) -> None:
    from shared.encoders import load_encoder

    enc = load_encoder(str(tiny_bge_m3_dir), show_progress=False)
    report = evaluate(
        enc, dataset, [EvalConfig("none", colbert=True)], "dense,colbert", workdir=tmp_path, bootstrap=0
    )
    assert [r.mode for r in report.rows] == ["dense", "colbert"]
    assert all(r.metrics["recall@100"] == 1.0 for r in report.rows)


def test_bad_arguments(pair_encoder: Encoder, dataset: BeirDataset, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="listed twice"):
        evaluate(pair_encoder, dataset, [EvalConfig(), EvalConfig()], "dense", workdir=tmp_path)
    with pytest.raises(InvalidInputError, match="k must be >= 100"):
        evaluate(pair_encoder, dataset, [EvalConfig()], "dense", k=10, workdir=tmp_path)
    with pytest.raises(UnsupportedOperationError, match="no ColBERT output"):
        evaluate(pair_encoder, dataset, [EvalConfig(colbert=True)], "dense", workdir=tmp_path)
    other = dataset.subset(limit_queries=2)
    encoded = encode_dataset(pair_encoder, other)
    with pytest.raises(InvalidInputError, match="do not match the dataset"):
        evaluate(pair_encoder, dataset, [EvalConfig()], "dense", encoded=encoded, workdir=tmp_path)
    with pytest.raises(InvalidInputError, match="unknown quantization preset"):
        evaluate(pair_encoder, dataset, [EvalConfig("int4")], "dense", workdir=tmp_path)
