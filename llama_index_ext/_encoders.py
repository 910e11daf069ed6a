"""The store's ``embed_model`` / ``sparse_embed_model`` as one core encoder.

Our own classes carry a core encoder already. Any other LlamaIndex model becomes one
through :func:`shared.encoders.encoder_from_functions`, handed the model's own public
embed methods, so the core encodes with it like with ours (input checks, cache, the
collection guard's identity); :func:`shared.encoders.pair_encoders` joins the two sides.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding

from shared.encoders import BaseEncoder, encoder_from_functions, pair_encoders
from shared.errors import InvalidInputError, InvalidTypeError
from shared.types import Encoder

from .embeddings import BGEM3Embedding, BGEM3SparseEmbedding

__all__ = ["dense_encoder", "late_chunking_of", "sparse_encoder", "store_encoder"]


def _model_id(model: BaseEmbedding | BaseSparseEmbedding) -> str:
    return f"llama_index:{model.class_name()}:{model.model_name}"


def dense_encoder(model: BaseEmbedding) -> BaseEncoder:
    """Any LlamaIndex ``BaseEmbedding`` as a dense core encoder (the model applies its own prompts)."""
    # LlamaIndex knows a model's size only by embedding: once, so a new collection is created
    # before the first add.
    return _as_encoder(model, "embed_model", "embed", probe_dim=True)


def sparse_encoder(model: BaseSparseEmbedding) -> BaseEncoder:
    """Any LlamaIndex ``BaseSparseEmbedding`` as a sparse core encoder."""
    return _as_encoder(model, "sparse_embed_model", "sparse", sparse_kind=f"llama_index:{model.class_name()}")


def _as_encoder(
    model: BaseEmbedding | BaseSparseEmbedding, owner: str, side: str, **options: Any
) -> BaseEncoder:
    """Our class's own core encoder, or any other model's public embed methods as one (``side``:
    ``encoder_from_functions``' prefix of the dense or the sparse functions)."""
    if isinstance(model, (BGEM3Embedding, BGEM3SparseEmbedding)):
        return _core(model.encoder, owner)
    functions: dict[str, Any] = {
        f"{side}_documents": model.get_text_embedding_batch,
        f"{side}_query": model.get_query_embedding,
    }
    return encoder_from_functions(
        model_id=_model_id(model), batch_size=model.embed_batch_size, **functions, **options
    )


def _core(encoder: object, owner: str) -> BaseEncoder:
    if not isinstance(encoder, BaseEncoder):
        raise InvalidTypeError(
            f"{owner}.encoder must be a shared.encoders.BaseEncoder, got {type(encoder).__name__}"
        )
    return encoder


def store_encoder(
    embed_model: BaseEmbedding | None, sparse_embed_model: BaseSparseEmbedding | None, sparse: bool | None
) -> Encoder | None:
    """The one encoder the core store gets for the two models (no extra model loads for ours)."""
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
    return pair_encoders(
        dense_encoder(embed_model) if embed_model is not None else None,
        sparse_encoder(sparse_embed_model) if sparse_embed_model is not None else None,
    )


def late_chunking_of(*models: BaseEmbedding | BaseSparseEmbedding | None) -> bool:
    """Whether one of our models given to the store was built with ``late_chunking=True``."""
    return any(isinstance(m, (BGEM3Embedding, BGEM3SparseEmbedding)) and m.late_chunking for m in models)
