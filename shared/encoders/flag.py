"""FlagEmbedding backend: ``BGEM3FlagModel`` behind the same Encoder interface.

Optional (``pip install 'm3-hybrid[flagembedding]'``; FlagEmbedding 1.4 does not
import with transformers 5).  Useful as a reference implementation: the native
encoder is tested for parity against it.  Its outputs are converted to ours (int
token ids, Python floats, float32 arrays) and its head files are checked first,
because FlagEmbedding silently falls back to random heads when they are missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelLoadError
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
from .base import Entry, ModelEncoder, ModelShape
from .bge_m3 import check_bge_m3_layout

__all__ = ["FlagM3Encoder"]


class FlagM3Encoder(ModelEncoder):
    """BGE-M3 through FlagEmbedding's ``BGEM3FlagModel`` (dense, sparse, ColBERT).

    Options: :class:`~shared.encoders.EncoderConfig` (``config=`` or keywords), except the
    batching ones FlagEmbedding plans itself.
    """

    _unused_options = frozenset({"precision", "max_batch_tokens", "threads"})

    _default_model = "BAAI/bge-m3"

    def _open(self, model: Any) -> tuple[str, str]:
        try:
            from FlagEmbedding import BGEM3FlagModel
        except Exception as exc:  # ImportError, or its import-time failures under transformers 5
            raise ModelLoadError(
                "backend='flagembedding' needs FlagEmbedding (pip install 'm3-hybrid[flagembedding]', "
                f"which also pins transformers<5): {type(exc).__name__}: {exc}"
            ) from exc
        self._flag_class = BGEM3FlagModel
        self.resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
        self._config = check_bge_m3_layout(self.resolved.path)
        return resolve_prompts(self.resolved.model_id)

    def _load(self) -> ModelShape:
        cfg, resolved = self.options, self.resolved
        self.device = select_device(cfg.device)
        self.fp16 = bool(self.device.type in ("cuda", "mps") if cfg.fp16 is None else cfg.fp16)
        try:
            self.flag_model = self._flag_class(
                str(resolved.path),
                use_fp16=self.fp16,
                devices=[str(self.device)],
                normalize_embeddings=True,
                batch_size=cfg.batch_size,
            )
        except Exception as exc:
            raise ModelLoadError(f"FlagEmbedding could not load {resolved.path}: {exc}") from exc
        self.tokenizer = self.flag_model.tokenizer
        self.max_length = cfg.max_length_within(default_max_length(self._config, self.tokenizer))
        inner = self.flag_model.model
        # Count real model passes (FlagEmbedding also runs a batch-size probe pass).
        inner.model.register_forward_hook(lambda *_: self._count_forward())
        return ModelShape(
            model_id=resolved.model_id,
            model_hash="" if resolved.from_hub else local_model_hash(resolved.path),
            outputs=frozenset({"dense", "sparse", "colbert"}),
            full_dim=int(self._config["hidden_size"]),
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
