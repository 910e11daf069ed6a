"""Parity of the native BGE-M3 encoder with FlagEmbedding's BGEM3FlagModel.

Both run the same tiny checkpoint; FlagEmbedding is the reference implementation of
BGE-M3's dense/sparse/ColBERT math (special tokens, ColBERT masking, max pooling).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("FlagEmbedding", reason="the flagembedding extra is not installed")

from shared.encoders import BGEM3Encoder, FlagM3Encoder, TruncationWarning, load_encoder
from shared.errors import ModelLoadError
from tests.support.checkpoint import sample_corpus

TEXTS = [
    *sample_corpus()[:10],
    "",
    "   ",
    "naïve café: 東京 <mask> repeated repeated repeated words",
    " ".join(sample_corpus()[10:20]),  # long: truncated at max_length=48
]


def assert_parity(a: object, b: object) -> None:
    from shared.types import EncodeResult

    assert isinstance(a, EncodeResult) and isinstance(b, EncodeResult)
    assert a.dense is not None and b.dense is not None
    cos = np.sum(a.dense * b.dense, axis=1)
    assert cos.min() >= 0.99999, cos
    assert a.sparse is not None and b.sparse is not None
    for i, (x, y) in enumerate(zip(a.sparse, b.sparse, strict=True)):
        assert x.keys() == y.keys(), f"text {i}: sparse keys differ"
        for k in x:
            assert abs(x[k] - y[k]) <= 1e-4, (i, k, x[k], y[k])
    assert a.colbert is not None and b.colbert is not None
    for i, (cx, cy) in enumerate(zip(a.colbert, b.colbert, strict=True)):
        assert cx.shape == cy.shape, f"text {i}: colbert shapes {cx.shape} vs {cy.shape}"
        np.testing.assert_allclose(cx, cy, atol=1e-4)
    assert a.token_counts == b.token_counts and a.truncated == b.truncated


@pytest.fixture(scope="module")
def pair(tiny_bge_m3_dir: Path) -> tuple[BGEM3Encoder, FlagM3Encoder]:
    kw = {"device": "cpu", "max_length": 48, "batch_size": 4, "show_progress": False, "cache_size": 0}
    return BGEM3Encoder(tiny_bge_m3_dir, **kw), FlagM3Encoder(tiny_bge_m3_dir, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["document", "query"])
def test_parity_dense_sparse_colbert(pair: tuple[BGEM3Encoder, FlagM3Encoder], kind: str) -> None:
    native, flag = pair
    outputs = ["dense", "sparse", "colbert"]
    with pytest.warns(TruncationWarning, match="1 of 14"):
        a = native.encode(TEXTS, kind=kind, outputs=outputs)  # type: ignore[arg-type]
    with pytest.warns(TruncationWarning, match="1 of 14"):
        b = flag.encode(TEXTS, kind=kind, outputs=outputs)  # type: ignore[arg-type]
    assert a.truncated[-1] and a.num_truncated == 1
    assert_parity(a, b)


def test_parity_with_a_prompt(tiny_bge_m3_dir: Path) -> None:
    kw = {"device": "cpu", "show_progress": False, "query_instruction": "query: "}
    native = BGEM3Encoder(tiny_bge_m3_dir, **kw)  # type: ignore[arg-type]
    flag = FlagM3Encoder(tiny_bge_m3_dir, **kw)  # type: ignore[arg-type]
    a = native.encode(TEXTS[:5], kind="query", outputs=["dense", "sparse", "colbert"])
    b = flag.encode(TEXTS[:5], kind="query", outputs=["dense", "sparse", "colbert"])
    assert a.prompt == b.prompt == "query: "
    assert_parity(a, b)


def test_same_identity_so_collections_are_interchangeable(pair: tuple[BGEM3Encoder, FlagM3Encoder]) -> None:
    native, flag = pair
    assert native.identity == flag.identity


def test_flag_backend_counts_passes_and_caches(tiny_bge_m3_dir: Path) -> None:
    e = load_encoder(
        tiny_bge_m3_dir, backend="flagembedding", device="cpu", batch_size=4, show_progress=False
    )
    assert isinstance(e, FlagM3Encoder)
    e.encode(TEXTS[:8], outputs=["dense"])
    passes = e.forward_passes
    assert passes >= 2  # 2 batches (+ FlagEmbedding's batch-size probe pass)
    e.encode(TEXTS[:8], outputs=["sparse"])
    assert e.forward_passes == passes


def test_flag_backend_refuses_missing_heads(tiny_bge_m3_dir: Path, tmp_path: Path) -> None:
    """FlagEmbedding alone would silently use random heads here."""
    import shutil

    broken = tmp_path / "m3"
    shutil.copytree(tiny_bge_m3_dir, broken)
    (broken / "colbert_linear.pt").unlink()
    with pytest.raises(ModelLoadError, match=r"colbert_linear\.pt"):
        FlagM3Encoder(broken, device="cpu")
