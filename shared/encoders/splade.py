"""SPLADE sparse encoders (BERT-style masked-LM checkpoints).

weight(term) = max over real tokens of log(1 + relu(mlm_logits[token, term])), with
the tokenizer's special tokens removed and zero weights dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._hf import BatchOutput, TransformerEncoder
from .base import ModelShape
from .late import TokenStates

__all__ = ["SpladeEncoder"]

# The MLM head makes a [batch, tokens, vocab] tensor; cap its size per model call
# (elements), splitting a batch into row chunks so long inputs do not exhaust memory.
_MAX_LOGIT_ELEMENTS = 64_000_000


class SpladeEncoder(TransformerEncoder):
    """A SPLADE model (``AutoModelForMaskedLM``); sparse output only.

    Options: :class:`~shared.encoders.EncoderConfig` (``config=`` or keywords).
    """

    def _load_model(self) -> ModelShape:
        import torch
        from transformers import AutoModelForMaskedLM

        self.model = self._load_pretrained(AutoModelForMaskedLM, "a masked-LM (SPLADE) model")
        self.vocab_size = int(self.model.config.vocab_size)
        special = [i for i in getattr(self.tokenizer, "all_special_ids", []) if 0 <= i < self.vocab_size]
        self._special = torch.tensor(sorted(set(special) | set(self._skip_ids.tolist())), dtype=torch.long)
        return self._shape({"sparse"}, sparse_kind="splade")

    def _forward_batch(self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]) -> BatchOutput:
        import torch

        rows = max(1, _MAX_LOGIT_ELEMENTS // (input_ids.shape[1] * self.vocab_size))
        pooled = []
        for s in range(0, input_ids.shape[0], rows):
            ids, mask = input_ids[s : s + rows], attention_mask[s : s + rows]
            logits = self.model(input_ids=ids, attention_mask=mask, return_dict=True).logits
            self._count_forward()
            # log1p(relu(.)) is monotone: pooling the raw logits first and weighting the pooled
            # row gives the same weights with two passes over the [rows, tokens, vocab] tensor
            # instead of four. Padding becomes 0: no weight is below 0 once relu has run.
            logits = logits.float().masked_fill_(mask.unsqueeze(-1) == 0, 0.0)
            pooled.append(torch.log1p(torch.relu(logits.amax(dim=1))))
        vec = torch.cat(pooled).cpu()
        vec[:, self._special] = 0.0
        sparse = []
        for row in vec:
            nz = torch.nonzero(row, as_tuple=True)[0]
            sparse.append(dict(zip(nz.tolist(), row[nz].double().tolist(), strict=True)))
        return BatchOutput(sparse=sparse)

    def _states_batch(
        self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]
    ) -> Iterator[TokenStates]:
        import torch

        skip = self._special.numpy()
        # Row chunks as in _forward_batch, yielded one by one: the caller pools and drops them.
        rows = max(1, _MAX_LOGIT_ELEMENTS // (input_ids.shape[1] * self.vocab_size))
        for s in range(0, input_ids.shape[0], rows):
            ids, mask = input_ids[s : s + rows], attention_mask[s : s + rows]
            logits = self.model(input_ids=ids, attention_mask=mask, return_dict=True).logits
            self._count_forward()
            weights = torch.log1p(torch.relu(logits.float())).cpu().numpy()
            del logits
            for i, n in enumerate(mask.sum(dim=1).tolist()):
                yield TokenStates(ids=ids[i, :n].cpu().numpy(), vocab_weights=weights[i, :n], skip_ids=skip)
