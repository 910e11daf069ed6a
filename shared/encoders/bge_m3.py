"""Native BGE-M3: dense, sparse (lexical) and ColBERT outputs from ONE forward pass.

The math is BGE-M3's (and FlagEmbedding's ``BGEM3FlagModel``):

* dense  = normalise(last_hidden[:, 0])                        (CLS pooling)
* sparse = relu(sparse_linear(last_hidden)), max per token id,
  with cls/eos/pad/unk removed and zero weights dropped
* colbert = normalise(colbert_linear(last_hidden[:, 1:]) * mask[:, 1:]), the rows of
  real tokens only (the trailing ``</s>`` included, the CLS excluded)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ._hf import BatchOutput, TransformerEncoder, read_config
from .base import ModelShape
from .late import TokenStates, sparse_from_token_weights

__all__ = ["BGEM3Encoder", "check_bge_m3_layout", "load_head"]

HEAD_FILES = ("sparse_linear.pt", "colbert_linear.pt")


def check_bge_m3_layout(path: Path) -> dict[str, Any]:
    """Config of a BGE-M3 checkpoint directory, or ModelLoadError naming what is wrong.

    Never falls back to randomly initialised heads (FlagEmbedding silently does).
    """
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type != "xlm-roberta":
        raise ModelLoadError(
            f"{path} is not a BGE-M3 checkpoint: config.json model_type is {model_type!r}, "
            "expected 'xlm-roberta'"
        )
    missing = [f for f in HEAD_FILES if not (path / f).is_file()]
    if missing:
        raise ModelLoadError(
            f"{path} is not a complete BGE-M3 checkpoint: missing {', '.join(missing)} "
            "(BGE-M3's sparse/ColBERT heads; copy them from the BAAI/bge-m3 snapshot)"
        )
    return config


def load_head(path: Path, in_features: int) -> Any:
    """A ``torch.nn.Linear`` from a BGE-M3 head state dict (loaded with weights_only)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {path.name} in {path.parent}: {exc}") from exc
    weight = state.get("weight") if isinstance(state, dict) else None
    bias = state.get("bias") if isinstance(state, dict) else None
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or weight.shape[1] != in_features:
        raise ModelLoadError(
            f"{path.name} in {path.parent} is not a Linear({in_features}, k) state dict "
            f"(weight shape {tuple(weight.shape) if isinstance(weight, torch.Tensor) else None})"
        )
    layer = torch.nn.Linear(in_features, weight.shape[0], bias=bias is not None)
    layer.load_state_dict(state)
    return layer


class BGEM3Encoder(TransformerEncoder):
    """BGE-M3 (or any checkpoint in its layout) with transformers, all outputs in one pass.

    Options: :class:`~shared.encoders.EncoderConfig` (``config=`` or keywords).
    """

    _default_model = "BAAI/bge-m3"

    def _shipped_prompts(self) -> dict[str, str]:
        check_bge_m3_layout(self.resolved.path)  # before any weights load
        return {}

    def _load_model(self) -> ModelShape:
        import torch
        from transformers import AutoModel

        path, hidden = self.resolved.path, int(self.config["hidden_size"])
        self.model = self._load_pretrained(AutoModel, "the BGE-M3 encoder")
        self.sparse_linear = self._place(load_head(path / "sparse_linear.pt", hidden))
        self.colbert_linear = self._place(load_head(path / "colbert_linear.pt", hidden))
        if self.sparse_linear.out_features != 1:
            raise ModelLoadError(f"sparse_linear.pt in {path} must map {hidden} -> 1")
        self._torch = torch
        return self._shape(
            {"dense", "sparse", "colbert"},
            full_dim=hidden,
            sparse_kind="bge-m3",
            colbert_dim=int(self.colbert_linear.out_features),
        )

    def _forward_batch(self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]) -> BatchOutput:
        F = self._torch.nn.functional
        out_model = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        hidden = out_model.last_hidden_state
        self._count_forward()
        out = BatchOutput()
        lengths = attention_mask.sum(dim=1).tolist()
        if "dense" in outputs:
            out.dense = F.normalize(hidden[:, 0].float(), dim=-1).cpu().numpy()
        if "sparse" in outputs:
            weights = self._torch.relu(self.sparse_linear(hidden)).squeeze(-1).float()
            out.sparse = sparse_from_token_weights(
                input_ids.cpu().numpy(), weights.cpu().numpy(), lengths, self._skip_ids
            )
        if "colbert" in outputs:
            vecs = self.colbert_linear(hidden[:, 1:]) * attention_mask[:, 1:, None].to(hidden.dtype)
            vecs = F.normalize(vecs.float(), dim=-1).cpu().numpy()
            # Row i keeps its real tokens after the CLS: length - 1 vectors (</s> included).
            out.colbert = [vecs[i, : n - 1] for i, n in enumerate(lengths)]
        return out

    def _states_batch(
        self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]
    ) -> list[TokenStates]:
        F = self._torch.nn.functional
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True
        ).last_hidden_state
        self._count_forward()
        weights = self._torch.relu(self.sparse_linear(hidden)).squeeze(-1).float().cpu().numpy()
        colbert = (
            F.normalize(self.colbert_linear(hidden).float(), dim=-1).cpu().numpy()
            if "colbert" in outputs
            else None
        )
        ids, states = input_ids.cpu().numpy(), hidden.float().cpu().numpy()
        return [
            TokenStates(
                ids=ids[i, :n],
                hidden=states[i, :n],
                term_weights=weights[i, :n],
                colbert=colbert[i, :n] if colbert is not None else None,
                skip_ids=self._skip_ids,
            )
            for i, n in enumerate(attention_mask.sum(dim=1).tolist())
        ]
