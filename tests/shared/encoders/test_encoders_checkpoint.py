"""``tests.support.checkpoint.make_bge_m3_checkpoint``: deterministic, in BGE-M3's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.support.checkpoint import make_bge_m3_checkpoint, sample_corpus


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_same_arguments_give_identical_files(tmp_path: Path, tiny_bge_m3_dir: Path) -> None:
    again = make_bge_m3_checkpoint(tmp_path / "again")
    assert _files(again) == _files(tiny_bge_m3_dir)
    other_seed = make_bge_m3_checkpoint(tmp_path / "seed1", seed=1)
    a, b = _files(other_seed), _files(tiny_bge_m3_dir)
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["sparse_linear.pt"] != b["sparse_linear.pt"]
    assert a["tokenizer.json"] == b["tokenizer.json"]  # the vocabulary does not depend on the seed


def test_layout_matches_bge_m3(tiny_bge_m3_dir: Path) -> None:
    names = set(_files(tiny_bge_m3_dir))
    expected = {"config.json", "model.safetensors", "tokenizer.json", "sparse_linear.pt", "colbert_linear.pt"}
    assert expected <= names
    cfg = json.loads((tiny_bge_m3_dir / "config.json").read_text())
    assert cfg["model_type"] == "xlm-roberta" and cfg["architectures"] == ["XLMRobertaModel"]
    assert cfg["hidden_size"] == 32 and cfg["num_hidden_layers"] == 2
    sparse = torch.load(tiny_bge_m3_dir / "sparse_linear.pt", weights_only=True)
    colbert = torch.load(tiny_bge_m3_dir / "colbert_linear.pt", weights_only=True)
    assert sparse["weight"].shape == (1, 32) and colbert["weight"].shape == (32, 32)


def test_tokenizer_is_xlmr_style(tiny_bge_m3_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bge_m3_dir))
    # transformers 5 names the (Rust-backed) class XLMRobertaTokenizer, 4.x XLMRobertaTokenizerFast.
    assert type(tok).__name__.startswith("XLMRobertaTokenizer") and tok.is_fast
    assert (tok.cls_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == len(tok) - 1
    ids = tok("The quick brown fox")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "The quick brown fox"
    # Known words are single tokens; unseen words split into pieces rather than <unk>.
    assert len(tok("the capital")["input_ids"]) == 4
    assert tok.unk_token_id not in tok("Zyxwvut qwerty")["input_ids"]
    assert len(sample_corpus()) > 20


def test_options(tmp_path: Path) -> None:
    d = make_bge_m3_checkpoint(
        tmp_path / "opts", hidden_size=48, num_heads=4, colbert_dim=16, sparse_heads=False
    )
    assert not (d / "sparse_linear.pt").exists()
    assert torch.load(d / "colbert_linear.pt", weights_only=True)["weight"].shape == (16, 48)
    with pytest.raises(ValueError, match="divisible"):
        make_bge_m3_checkpoint(tmp_path / "bad", hidden_size=30, num_heads=4)


def test_caller_rng_state_untouched(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_bge_m3_checkpoint(tmp_path / "rng")
    assert torch.equal(torch.rand(3), expected)
