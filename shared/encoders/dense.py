"""Dense encoders for sentence-transformers-layout models (MiniLM, BGE v1.5, E5, ...).

Pooling comes from ``1_Pooling/config.json`` (CLS or mean; mean when the file is
absent, as sentence-transformers does); vectors are always L2-normalised.  Layouts
with modules we do not implement (Dense projections, max pooling, ...) are refused
rather than silently producing different vectors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Unpack

from ..errors import ModelLoadError
from ._hf import BatchOutput, ResolvedModel, TransformerEncoder
from .base import ModelShape
from .config import EncoderConfig, EncoderOptions
from .late import TokenStates

__all__ = ["DenseEncoder", "read_pooling"]

_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def read_pooling(path: Path) -> str:
    """``"cls"`` or ``"mean"`` from the sentence-transformers files of ``path``."""
    modules = path / "modules.json"
    if modules.is_file():
        for module in _read_json(modules):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind not in _KNOWN_MODULES:
                raise ModelLoadError(
                    f"{path} uses a sentence-transformers module {kind!r} that this encoder does not "
                    "implement (only Transformer, Pooling, Normalize)"
                )
    pooling = path / "1_Pooling" / "config.json"
    if not pooling.is_file():
        return "mean"
    cfg = _read_json(pooling)
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    raise ModelLoadError(f"{pooling} asks for pooling {modes}; only CLS or mean pooling is supported")


def _shipped_prompts(path: Path) -> dict[str, str]:
    cfg = path / "config_sentence_transformers.json"
    if not cfg.is_file():
        return {}
    prompts = _read_json(cfg).get("prompts") or {}
    return {k: v for k, v in prompts.items() if isinstance(k, str) and isinstance(v, str)}


def _sbert_max_length(path: Path) -> int | None:
    cfg = path / "sentence_bert_config.json"
    if cfg.is_file():
        value = _read_json(cfg).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return None


class DenseEncoder(TransformerEncoder):
    """A transformers encoder with CLS or mean pooling; dense output only.

    Options: :class:`~shared.encoders.EncoderConfig` (``config=`` or keywords); ``pooling``
    overrides the model's ``1_Pooling/config.json``.
    """

    def __init__(
        self,
        model_name: str | os.PathLike[str] | ResolvedModel,
        config: EncoderConfig | None = None,
        *,
        pooling: str | None = None,
        **options: Unpack[EncoderOptions],
    ) -> None:
        if pooling is not None and pooling not in ("cls", "mean"):
            raise ModelLoadError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self._pooling_option = pooling
        super().__init__(model_name, config, **options)

    def _shipped_prompts(self) -> dict[str, str]:
        # Read before the model loads: a refused module layout fails without loading weights.
        self.pooling = self._pooling_option or read_pooling(self.resolved.path)
        return _shipped_prompts(self.resolved.path)

    def _load_model(self) -> ModelShape:
        from transformers import AutoModel

        # sentence-transformers' own limit (e.g. 256 for MiniLM) is what the model was tuned for.
        sbert_limit = _sbert_max_length(self.resolved.path)
        if self.options.max_length is None and sbert_limit is not None:
            self.max_length = min(self.max_length, sbert_limit)
        self.model = self._load_pretrained(AutoModel, "a transformers encoder")
        hidden = int(self.config.get("hidden_size") or self.model.config.hidden_size)
        return self._shape({"dense"}, full_dim=hidden)

    def _forward_batch(self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]) -> BatchOutput:
        import torch.nn.functional as F

        out_model = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        hidden = out_model.last_hidden_state
        self._count_forward()
        hidden = hidden.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return BatchOutput(dense=F.normalize(pooled, dim=-1).cpu().numpy())

    def _states_batch(
        self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]
    ) -> list[TokenStates]:
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True
        ).last_hidden_state
        self._count_forward()
        ids, states = input_ids.cpu().numpy(), hidden.float().cpu().numpy()
        lengths = attention_mask.sum(dim=1).tolist()
        return [TokenStates(ids=ids[i, :n], hidden=states[i, :n]) for i, n in enumerate(lengths)]
