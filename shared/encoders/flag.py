"""FlagEmbedding backend: ``BGEM3FlagModel`` behind the same Encoder interface.

Optional (``pip install 'm3-hybrid[flagembedding]'``; FlagEmbedding 1.4 does not
import with transformers 5).  Useful as a reference implementation: the native
encoder is tested for parity against it.  Its outputs are converted to ours (int
token ids, Python floats, float32 arrays) and its head files are checked first,
because FlagEmbedding silently falls back to random heads when they are missing.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, ModelLoadError
from ..prompts import resolve_prompts
from ..types import SparseDict, TextKind
from ._hf import (
    ResolvedModel,
    default_max_length,
    local_model_hash,
    resolve_model,
    select_device,
    tokenize_with_flags,
)
from .base import BaseEncoder, Entry
from .bge_m3 import check_bge_m3_layout

__all__ = ["FlagM3Encoder"]


class FlagM3Encoder(BaseEncoder):
    """BGE-M3 through FlagEmbedding's ``BGEM3FlagModel`` (dense, sparse, ColBERT)."""

    def __init__(
        self,
        model_name: str | os.PathLike[str] | ResolvedModel = "BAAI/bge-m3",
        *,
        device: str | None = None,
        fp16: bool | None = None,
        max_length: int | None = None,
        truncate_dim: int | None = None,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        cache_size: int = 1024,
    ) -> None:
        try:
            from FlagEmbedding import BGEM3FlagModel
        except Exception as exc:  # ImportError, or its import-time failures under transformers 5
            raise ModelLoadError(
                "backend='flagembedding' needs FlagEmbedding (pip install 'm3-hybrid[flagembedding]', "
                f"which also pins transformers<5): {type(exc).__name__}: {exc}"
            ) from exc
        resolved = model_name if isinstance(model_name, ResolvedModel) else resolve_model(model_name)
        config = check_bge_m3_layout(resolved.path)
        query, document = resolve_prompts(resolved.model_id, query_instruction, document_instruction)
        super().__init__(
            query_prompt=query,
            document_prompt=document,
            batch_size=batch_size,
            show_progress=show_progress,
            cache_size=cache_size,
        )
        self.resolved = resolved
        self.device = select_device(device)
        self.fp16 = bool(self.device.type in ("cuda", "mps") if fp16 is None else fp16)
        try:
            self.flag_model = BGEM3FlagModel(
                str(resolved.path),
                use_fp16=self.fp16,
                devices=[str(self.device)],
                normalize_embeddings=True,
                batch_size=batch_size,
            )
        except Exception as exc:
            raise ModelLoadError(f"FlagEmbedding could not load {resolved.path}: {exc}") from exc
        self.tokenizer = self.flag_model.tokenizer
        limit = default_max_length(config, self.tokenizer)
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)):
            raise InvalidTypeError(f"max_length must be an int, not {type(max_length).__name__}")
        if max_length is not None and not 4 <= max_length <= limit:
            raise InvalidInputError(f"max_length={max_length} is out of range: this model takes 4..{limit}")
        self.max_length = limit if max_length is None else max_length
        inner = self.flag_model.model
        # Count real model passes (FlagEmbedding also runs a batch-size probe pass).
        inner.model.register_forward_hook(lambda *_: self._count_forward())
        hidden = int(config["hidden_size"])
        self._outputs = frozenset({"dense", "sparse", "colbert"})
        self._full_dim = hidden
        self._set_truncate_dim(truncate_dim, resolved.model_id)
        self._identity = self._make_identity(
            model_id=resolved.model_id,
            model_hash="" if resolved.from_hub else local_model_hash(resolved.path),
            sparse_kind="bge-m3",
            colbert_dim=int(inner.colbert_linear.out_features),
        )

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        full = [self.prompt_for(kind) + t for t in texts]
        ids, truncated = tokenize_with_flags(self.tokenizer, full, self.max_length)
        want_colbert = "colbert" in outputs
        out: dict[str, Any] = self.flag_model.encode(
            full,
            batch_size=batch_size,
            max_length=self.max_length,
            return_dense=True,
            return_sparse=True,
            return_colbert_vecs=want_colbert,
        )
        dense = np.asarray(out["dense_vecs"], dtype=np.float32).reshape(len(full), -1)
        entries = []
        for i in range(len(full)):
            weights: SparseDict = {
                int(k): float(v) for k, v in out["lexical_weights"][i].items() if float(v) != 0.0
            }
            entries.append(
                Entry(
                    dense=dense[i],
                    sparse=weights,
                    colbert=np.asarray(out["colbert_vecs"][i], dtype=np.float32) if want_colbert else None,
                    token_count=len(ids[i]),
                    truncated=truncated[i],
                )
            )
        return entries
