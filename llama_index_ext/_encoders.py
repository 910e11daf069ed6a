"""Turn the store's ``embed_model`` / ``sparse_embed_model`` into core encoders.

Our own classes carry a core encoder already.  Any other LlamaIndex model is wrapped
in a :class:`shared.encoders.BaseEncoder` subclass that calls its public LlamaIndex
API, so it gets the core's input checks, cache and identity (the collection guard
then refuses a store reopened with another model), and can be paired with a core
encoder in a :class:`shared.encoders.PairEncoder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding

from shared.encoders import BaseEncoder, Entry
from shared.errors import InvalidInputError, InvalidTypeError
from shared.types import TextKind

from .embeddings import BGEM3Embedding, BGEM3SparseEmbedding

__all__ = ["EncoderPlan", "LlamaDenseEncoder", "LlamaSparseEncoder", "plan_encoders"]

#: The text a foreign dense model embeds once to learn its vector size.
_PROBE = "dimension probe"


def _model_id(model: BaseEmbedding | BaseSparseEmbedding) -> str:
    return f"llama_index:{model.class_name()}:{model.model_name}"


class LlamaDenseEncoder(BaseEncoder):
    """Any LlamaIndex ``BaseEmbedding`` as a dense core encoder (the model applies its own prompts)."""

    def __init__(self, model: BaseEmbedding, *, cache_size: int = 1024) -> None:
        super().__init__(batch_size=model.embed_batch_size, show_progress=False, cache_size=cache_size)
        self.model = model
        self._outputs = frozenset({"dense"})
        probe = model.get_query_embedding(_PROBE)
        if not probe:
            raise InvalidInputError(f"embed_model {_model_id(model)} returned an empty vector")
        self._full_dim = len(probe)
        self._identity = self._make_identity(model_id=_model_id(model), model_hash="", sparse_kind=None)

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        if kind == "query":
            rows = [self.model.get_query_embedding(t) for t in texts]
        else:
            rows = self.model.get_text_embedding_batch(texts, show_progress=show_progress)
        self._count_forward()
        out = []
        for i, row in enumerate(rows):
            vec = np.asarray(row, dtype=np.float32)
            if vec.shape != (self._full_dim,):
                raise InvalidInputError(
                    f"embed_model returned a vector of shape {vec.shape} for texts[{i}], "
                    f"expected ({self._full_dim},)"
                )
            norm = float(np.linalg.norm(vec))
            # The core's contract is unit-norm rows; cosine ranking is unchanged by this.
            out.append(
                Entry(
                    dense=vec / norm if norm > 0 else vec,
                    sparse=None,
                    colbert=None,
                    token_count=0,
                    truncated=False,
                )
            )
        return out


class LlamaSparseEncoder(BaseEncoder):
    """Any LlamaIndex ``BaseSparseEmbedding`` as a sparse core encoder."""

    def __init__(self, model: BaseSparseEmbedding, *, cache_size: int = 1024) -> None:
        super().__init__(batch_size=model.embed_batch_size, show_progress=False, cache_size=cache_size)
        self.model = model
        self._outputs = frozenset({"sparse"})
        self._full_dim = None
        self._identity = self._make_identity(
            model_id=_model_id(model), model_hash="", sparse_kind=f"llama_index:{model.class_name()}"
        )

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        if kind == "query":
            rows = [self.model.get_query_embedding(t) for t in texts]
        else:
            rows = self.model.get_text_embedding_batch(texts, show_progress=show_progress)
        self._count_forward()
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidTypeError(
                    f"sparse_embed_model returned a {type(row).__name__} for texts[{i}], expected a dict"
                )
            weights = {int(k): float(v) for k, v in row.items() if float(v) != 0.0}
            out.append(Entry(dense=None, sparse=weights, colbert=None, token_count=0, truncated=False))
        return out


@dataclass(frozen=True)
class EncoderPlan:
    """Which encoder computes what: dense and sparse sides, and the one the store records."""

    dense: BaseEncoder | None
    sparse: BaseEncoder | None
    #: Given to ``HybridStore``: its identity is what the collection guard checks.
    store: BaseEncoder | None


def _core(encoder: object, owner: str) -> BaseEncoder:
    if not isinstance(encoder, BaseEncoder):
        raise InvalidTypeError(
            f"{owner}.encoder must be a shared.encoders.BaseEncoder, got {type(encoder).__name__}"
        )
    return encoder


def plan_encoders(
    embed_model: BaseEmbedding | None, sparse_embed_model: BaseSparseEmbedding | None, sparse: bool | None
) -> EncoderPlan:
    """Resolve the store's models into core encoders (no extra model loads for our classes)."""
    if embed_model is not None and not isinstance(embed_model, BaseEmbedding):
        raise InvalidTypeError(
            f"embed_model must be a LlamaIndex BaseEmbedding, got {type(embed_model).__name__}"
        )
    if sparse_embed_model is not None and not isinstance(sparse_embed_model, BaseSparseEmbedding):
        raise InvalidTypeError(
            "sparse_embed_model must be a LlamaIndex BaseSparseEmbedding, "
            f"got {type(sparse_embed_model).__name__}"
        )
    if sparse is False and sparse_embed_model is not None:
        raise InvalidInputError("sparse=False contradicts the sparse_embed_model that was given")

    dense_enc: BaseEncoder | None = None
    if isinstance(embed_model, BGEM3Embedding):
        dense_enc = _core(embed_model.encoder, "embed_model")
    elif embed_model is not None:
        dense_enc = LlamaDenseEncoder(embed_model)

    sparse_enc: BaseEncoder | None = None
    if isinstance(sparse_embed_model, BGEM3SparseEmbedding):
        sparse_enc = _core(sparse_embed_model.encoder, "sparse_embed_model")
    elif sparse_embed_model is not None:
        sparse_enc = LlamaSparseEncoder(sparse_embed_model)
    elif dense_enc is not None and "sparse" in dense_enc.outputs and sparse is not False:
        # One BGE-M3 model: its sparse vectors come from the same forward pass.
        sparse_enc = dense_enc

    if dense_enc is not None and sparse_enc is not None and sparse_enc is not dense_enc:
        from shared.encoders import PairEncoder

        store: BaseEncoder | None = PairEncoder(dense_enc, sparse_enc, truncate_dim=dense_enc.truncate_dim)
    else:
        store = dense_enc or sparse_enc
    return EncoderPlan(dense=dense_enc, sparse=sparse_enc, store=store)
