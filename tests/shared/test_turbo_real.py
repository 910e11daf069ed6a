"""TurboQuant presets against exact search on a small real set (bible-dev verses, real MiniLM).

Each preset, with its default rescore/oversampling, must find the exact top 10 at least as
well as ``benchmarks/presets.py`` measured on the full bible-dev corpus (recall@10 against
exact float search, ``benchmarks/RESULTS.md``), less a small margin for the smaller sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.store import HybridStore
from shared.types import Encoder, Record

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "bible-dev"
#: Recall@10 against exact search at each preset's defaults, measured by benchmarks/presets.py
#: on 23,093 bible-dev verses (MiniLM, 384-d); the test allows 0.02 less on its small sample.
MEASURED_RECALL = {
    "turbo-1bit": 0.9548,
    "turbo-1.5bit": 0.9752,
    "turbo-2bit": 0.9866,
    "turbo-4bit": 0.9916,
    "turbo-8bit": 0.9938,
}


@pytest.fixture(scope="module")
def verses(minilm_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from shared.encoders import load_encoder

    enc: Encoder = load_encoder(str(minilm_dir), show_progress=False)
    lines = (DATA / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line)["text"] for line in lines[:2000:5]]  # 400 verses across 2,000
    qlines = (DATA / "queries_web.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in qlines[:50]]
    d = enc.encode(docs, "document")
    q = enc.encode(queries, "query")
    assert d.dense is not None and q.dense is not None
    return np.asarray(d.dense, np.float32), np.asarray(q.dense, np.float32)


@pytest.mark.parametrize("preset", list(MEASURED_RECALL))
def test_turbo_preset_matches_exact_search_within_its_measured_recall(
    preset: str, verses: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    docs, queries = verses
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    with HybridStore(
        "t", path=tmp_path, dense_dim=docs.shape[1], sparse=False, quantization=preset, on_disk=True
    ) as s:
        s.add([Record(id=str(i), dense=v) for i, v in enumerate(docs)])
        recalls = []
        for qi, q in enumerate(queries):
            hits = s.query(dense=q, limit=10, mode="dense")
            recalls.append(len({h.id for h in hits} & set(map(str, exact[qi]))) / 10)
            # Rescored with the float originals: every score is the true cosine.
            for h in hits:
                assert h.score == pytest.approx(float(docs[int(h.id)] @ q), abs=1e-4)
    assert np.mean(recalls) >= MEASURED_RECALL[preset] - 0.02, (preset, np.mean(recalls))
