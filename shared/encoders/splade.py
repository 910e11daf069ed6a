"""SPLADE sparse encoders (BERT-style masked-LM checkpoints).

weight(term) = max over real tokens of log(1 + relu(mlm_logits[token, term])), with
the tokenizer's special tokens removed and zero weights dropped.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelLoadError
from ..prompts import resolve_prompts
from ._hf import (
    BatchOutput,
    ResolvedModel,
    TransformerEncoder,
    local_model_hash,
    require_torch,
    resolve_model,
)

__all__ = ["SpladeEncoder"]

# The MLM head makes a [batch, tokens, vocab] tensor; cap its size per model call
# (elements), splitting a batch into row chunks so long inputs do not exhaust memory.
_MAX_LOGIT_ELEMENTS = 64_000_000


class SpladeEncoder(TransformerEncoder):
    """A SPLADE model (``AutoModelForMaskedLM``); sparse output only."""

    def __init__(
        self,
        model_name: str | os.PathLike[str] | ResolvedModel,
        *,
        device: str | None = None,
        fp16: bool | None = None,
        max_length: int | None = None,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        cache_size: int = 1024,
        max_batch_tokens: int | None = None,
        threads: int | None = None,
    ) -> None:
        require_torch()
        import torch
        from transformers import AutoModelForMaskedLM

        resolved = model_name if isinstance(model_name, ResolvedModel) else resolve_model(model_name)
        query, document = resolve_prompts(resolved.model_id, query_instruction, document_instruction)
        super().__init__(
            resolved,
            device=device,
            fp16=fp16,
            max_length=max_length,
            query_prompt=query,
            document_prompt=document,
            batch_size=batch_size,
            show_progress=show_progress,
            cache_size=cache_size,
            max_batch_tokens=max_batch_tokens,
            threads=threads,
        )
        try:
            model = AutoModelForMaskedLM.from_pretrained(str(resolved.path))
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load a masked-LM (SPLADE) model from {resolved.path}: {exc}"
            ) from exc
        self.model = self._place(model)
        self.vocab_size = int(model.config.vocab_size)
        special = [i for i in getattr(self.tokenizer, "all_special_ids", []) if 0 <= i < self.vocab_size]
        self._special = torch.tensor(sorted(set(special) | set(self._skip_ids.tolist())), dtype=torch.long)
        self._outputs = frozenset({"sparse"})
        self._full_dim = None
        self._identity = self._make_identity(
            model_id=resolved.model_id,
            model_hash="" if resolved.from_hub else local_model_hash(resolved.path),
            sparse_kind="splade",
        )

    def _forward_batch(self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]) -> BatchOutput:
        import torch

        rows = max(1, _MAX_LOGIT_ELEMENTS // (input_ids.shape[1] * self.vocab_size))
        pooled = []
        for s in range(0, input_ids.shape[0], rows):
            ids, mask = input_ids[s : s + rows], attention_mask[s : s + rows]
            logits = self.model(input_ids=ids, attention_mask=mask, return_dict=True).logits
            self._count_forward()
            weights = torch.log1p(torch.relu(logits.float())) * mask.unsqueeze(-1).to(torch.float32)
            pooled.append(weights.amax(dim=1))
        vec = torch.cat(pooled).cpu()
        vec[:, self._special] = 0.0
        sparse = []
        for row in vec:
            nz = torch.nonzero(row, as_tuple=True)[0]
            sparse.append(dict(zip(nz.tolist(), row[nz].double().tolist(), strict=True)))
        return BatchOutput(sparse=sparse)
