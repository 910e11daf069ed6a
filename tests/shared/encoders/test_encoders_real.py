"""The generic dense, SPLADE and pair encoders on real small models.

all-MiniLM-L6-v2 (sentence-transformers layout, mean pooling) and SPLADE-tiny
(BERT masked LM) are real trained checkpoints, so semantic checks mean something.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.encoders import DenseEncoder, PairEncoder, SpladeEncoder, detect_model_kind, load_encoder
from shared.encoders._hf import resolve_model
from shared.errors import InvalidInputError, ModelLoadError, UnsupportedOperationError

DOCS = [
    "Paris is the capital and largest city of France.",
    "The mitochondria is the powerhouse of the cell.",
    "A man is playing a guitar on stage.",
    "Python is a popular programming language.",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> DenseEncoder:
    return DenseEncoder(minilm_dir, device="cpu", show_progress=False)


@pytest.fixture(scope="module")
def splade(splade_dir: Path) -> SpladeEncoder:
    return SpladeEncoder(splade_dir, device="cpu", show_progress=False)


# -- dense ---------------------------------------------------------------------------


def test_minilm_reads_its_sentence_transformers_config(minilm: DenseEncoder) -> None:
    assert minilm.pooling == "mean"
    assert minilm.max_length == 256  # sentence_bert_config.json, not the 512 positions
    assert minilm.dense_dim == 384 and minilm.outputs == frozenset({"dense"})
    ident = minilm.identity
    assert ident.sparse_kind is None and ident.colbert_dim is None and ident.dense_dim == 384


def test_minilm_retrieves_the_right_document(minilm: DenseEncoder) -> None:
    docs = minilm.encode(DOCS).dense
    q = minilm.encode(["What is the capital of France?", "which language do programmers use"], kind="query")
    assert docs is not None and q.dense is not None
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    scores = q.dense @ docs.T
    assert scores[0].argmax() == 0 and scores[1].argmax() == 3


def test_mean_pooling_matches_transformers_by_hand(minilm: DenseEncoder, minilm_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    model = AutoModel.from_pretrained(str(minilm_dir)).eval()
    batch = tok(DOCS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
    np.testing.assert_allclose(minilm.encode(DOCS).dense, ref, atol=1e-5)  # type: ignore[arg-type]


def test_pooling_config_is_honoured(minilm_dir: Path, tmp_path: Path) -> None:
    cls_dir = tmp_path / "minilm-cls"
    shutil.copytree(minilm_dir, cls_dir)
    pooling = cls_dir / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    cfg.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pooling.write_text(json.dumps(cfg))
    enc = DenseEncoder(cls_dir, device="cpu", show_progress=False)
    assert enc.pooling == "cls"
    mean = DenseEncoder(minilm_dir, device="cpu", show_progress=False, cache_size=0)
    assert not np.allclose(enc.encode(DOCS[:1]).dense, mean.encode(DOCS[:1]).dense)  # type: ignore[arg-type]
    # Pooling we do not implement is refused, not approximated.
    cfg.update(pooling_mode_cls_token=False, pooling_mode_max_tokens=True)
    pooling.write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="pooling"):
        DenseEncoder(cls_dir, device="cpu")
    # So are extra sentence-transformers modules (e.g. a Dense projection).
    modules = json.loads((cls_dir / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (cls_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match="Dense"):
        DenseEncoder(cls_dir, device="cpu")


def test_shipped_prompts_are_used_for_unknown_models(minilm_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "my-model"
    shutil.copytree(minilm_dir, d)
    cfg_path = d / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["prompts"] = {"query": "query: ", "document": ""}
    cfg_path.write_text(json.dumps(cfg))
    enc = DenseEncoder(d, device="cpu", show_progress=False)
    assert enc.encode(["x"], kind="query").prompt == "query: "
    assert enc.identity.query_prompt == "query: " and enc.identity.document_prompt == ""


def test_dense_encoder_rejects_other_outputs(minilm: DenseEncoder) -> None:
    with pytest.raises(UnsupportedOperationError, match="sparse"):
        minilm.encode(["x"], outputs=["sparse"])


def test_dense_truncate_dim(minilm_dir: Path, minilm: DenseEncoder) -> None:
    with pytest.warns(UserWarning, match="Matryoshka"):
        small = DenseEncoder(minilm_dir, device="cpu", show_progress=False, truncate_dim=128)
    r = small.encode(DOCS)
    assert r.dense is not None and r.dense.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(r.dense, axis=1), 1.0, rtol=1e-5)


# -- SPLADE --------------------------------------------------------------------------


def test_splade_terms(splade: SpladeEncoder) -> None:
    r = splade.encode(["A man is eating food.", "", "  "])
    assert r.dense is None and r.sparse is not None
    terms = {splade.tokenizer.convert_ids_to_tokens(k): v for k, v in r.sparse[0].items()}
    assert all(type(k) is int and type(v) is float and v > 0 for k, v in r.sparse[0].items())
    top = sorted(terms, key=terms.__getitem__, reverse=True)[:5]
    assert {"man", "food"} <= set(top)
    # Expansion: related terms that are not in the text get weight too.
    assert len(terms) > 6
    assert not set(splade.tokenizer.all_special_ids) & r.sparse[0].keys()
    assert r.sparse[1] == {} and r.sparse[2] == {}


def test_splade_matches_the_formula(splade: SpladeEncoder, splade_dir: Path) -> None:
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(splade_dir)).eval()
    batch = splade.tokenizer(DOCS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    w = torch.log1p(torch.relu(logits)) * batch["attention_mask"].unsqueeze(-1)
    ref = w.amax(dim=1)
    ref[:, splade.tokenizer.all_special_ids] = 0
    got = splade.encode(DOCS[:2]).sparse
    assert got is not None
    for i in range(2):
        nz = torch.nonzero(ref[i]).flatten().tolist()
        assert sorted(got[i]) == nz
        np.testing.assert_allclose([got[i][k] for k in nz], ref[i, nz].numpy(), atol=1e-5)


def test_splade_splits_large_batches_without_changing_results(
    splade_dir: Path, splade: SpladeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.encoders.splade as mod

    monkeypatch.setattr(mod, "_MAX_LOGIT_ELEMENTS", 1)  # one row per model call
    chunked = SpladeEncoder(splade_dir, device="cpu", show_progress=False, batch_size=4)
    r = chunked.encode(DOCS)
    assert chunked.forward_passes == 4
    ref = splade.encode(DOCS).sparse
    for a, b in zip(r.sparse, ref, strict=True):  # type: ignore[arg-type]
        assert a.keys() == b.keys()
        np.testing.assert_allclose(list(a.values()), [b[k] for k in a], atol=1e-5)


# -- pairs and load_encoder ----------------------------------------------------------


def test_load_encoder_detects_model_kinds(minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path) -> None:
    assert detect_model_kind(resolve_model(minilm_dir)) == "dense"
    assert detect_model_kind(resolve_model(splade_dir)) == "splade"
    assert detect_model_kind(resolve_model(tiny_bge_m3_dir)) == "bge-m3"
    assert isinstance(load_encoder(minilm_dir, device="cpu"), DenseEncoder)
    assert isinstance(load_encoder(splade_dir, device="cpu"), SpladeEncoder)
    assert isinstance(load_encoder(None, sparse_model=splade_dir, device="cpu"), SpladeEncoder)
    with pytest.raises(InvalidInputError, match="SPLADE"):
        load_encoder(splade_dir, device="cpu", truncate_dim=8)


def test_pair_encoder(
    minilm_dir: Path, splade_dir: Path, minilm: DenseEncoder, splade: SpladeEncoder
) -> None:
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, device="cpu", batch_size=2, show_progress=False)
    assert isinstance(pair, PairEncoder)
    assert pair.outputs == frozenset({"dense", "sparse"})
    r = pair.encode(DOCS)
    assert pair.forward_passes == 4  # 2 batches x 2 models
    np.testing.assert_allclose(r.dense, minilm.encode(DOCS).dense, atol=1e-5)  # type: ignore[arg-type]
    assert [d.keys() for d in r.sparse] == [d.keys() for d in splade.encode(DOCS).sparse]  # type: ignore[union-attr]
    pair.encode(DOCS, outputs=["sparse"])
    assert pair.forward_passes == 4  # cached: one pass of each model per text
    ident = pair.identity
    assert ident.model_id == str(minilm_dir.resolve()) and ident.sparse_model_id == str(splade_dir.resolve())
    assert ident.sparse_kind == "splade" and ident.dense_dim == 384 and len(ident.model_hash) == 64
    with pytest.raises(UnsupportedOperationError):
        pair.encode(DOCS, outputs=["colbert"])


def test_pair_prompts_apply_to_the_dense_model_only(
    minilm_dir: Path, splade_dir: Path, minilm: DenseEncoder, splade: SpladeEncoder
) -> None:
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, device="cpu", query_instruction="query: ")
    r = pair.encode(["capital of France"], kind="query")
    assert r.prompt == "query: " and pair.identity.query_prompt == "query: "
    plain_sparse = splade.encode(["capital of France"], kind="query").sparse
    assert r.sparse == plain_sparse  # SPLADE never saw "query: "
    assert not np.allclose(r.dense, minilm.encode(["capital of France"], kind="query").dense)  # type: ignore[arg-type]


def test_pair_truncation_flags_come_from_either_model(minilm_dir: Path, splade_dir: Path) -> None:
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, device="cpu", max_length=8, show_progress=False)
    with pytest.warns(UserWarning, match="truncated"):
        r = pair.encode(["one two", "a much longer text than eight tokens can ever hold, surely"])
    assert r.truncated == [False, True] and r.token_counts[1] == 8


def test_pair_reuses_the_caches_of_its_models(minilm_dir: Path, splade_dir: Path) -> None:
    """A store's pair and a framework class sharing the dense encoder: one pass per text."""
    dense = DenseEncoder(minilm_dir, device="cpu", show_progress=False)
    sparse = SpladeEncoder(splade_dir, device="cpu", show_progress=False)
    dense.encode(DOCS)  # e.g. the dense embedding class embedded these already
    assert dense.forward_passes == 1
    pair = PairEncoder(dense, sparse)
    r = pair.encode(DOCS)
    assert dense.forward_passes == 1 and sparse.forward_passes == 1
    np.testing.assert_array_equal(r.dense, dense.encode(DOCS).dense)  # type: ignore[arg-type]
    sparse.encode(DOCS, kind="query")
    assert sparse.forward_passes == 2  # the query side is cached separately


def test_pair_with_a_truncating_dense_encoder_truncates_once(
    tiny_bge_m3_dir: Path, splade_dir: Path, splade: SpladeEncoder
) -> None:
    from shared.encoders import BGEM3Encoder

    with pytest.warns(UserWarning, match="Matryoshka"):
        m3 = BGEM3Encoder(tiny_bge_m3_dir, device="cpu", show_progress=False, truncate_dim=16)
    pair = PairEncoder(m3, splade, truncate_dim=16)  # what the LlamaIndex store does
    r = pair.encode(DOCS[:2])
    assert pair.dense_dim == 16 and r.dense is not None and r.dense.shape == (2, 16)
    np.testing.assert_allclose(r.dense, m3.encode(DOCS[:2]).dense, atol=1e-6)  # type: ignore[arg-type]
    assert pair.identity.truncate_dim == 16 and pair.identity.dense_dim == 16
    with pytest.warns(UserWarning, match="Matryoshka"):
        smaller = PairEncoder(m3, splade, truncate_dim=8)
    assert smaller.encode(DOCS[:1]).dense.shape == (1, 8)  # type: ignore[union-attr]
