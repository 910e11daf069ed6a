"""LlamaIndex embedding classes backed by the shared m3-hybrid encoders.

:class:`BGEM3Embedding` is a LlamaIndex ``BaseEmbedding`` (dense vectors) and
:class:`BGEM3SparseEmbedding` a ``BaseSparseEmbedding`` (``{token_id: weight}``).
Both only translate types: prompts, MRL truncation, length-sorted batching and the
result cache live in :mod:`shared.encoders`.  ``load_encoder`` returns one instance
per configuration, so a dense and a sparse class of the same BGE-M3 model (or one
built with :meth:`BGEM3SparseEmbedding.from_dense`) share one encoder, and embedding
the same texts densely and sparsely costs one forward pass.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from shared.errors import InvalidInputError, InvalidTypeError
from shared.serving import encode
from shared.types import Encoder, EncodeResult, TextKind
from shared.validation import text_list

from ._validation import validation_errors_as_ours

__all__ = ["DEFAULT_MODEL", "BGEM3Embedding", "BGEM3SparseEmbedding"]

DEFAULT_MODEL = "BAAI/bge-m3"


def _check_text(text: Any, method: str) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"{method} expects a str, got {type(text).__name__}")
    return text


class _EncoderMixin:
    """Loading of the shared encoder and the one encode path (sync; async offloads it)."""

    if TYPE_CHECKING:  # the fields are declared by the pydantic classes below
        model_name: str
        embed_batch_size: int
        query_instruction: str | None
        text_instruction: str | None
        max_length: int | None
        device: str | None
        fp16: bool | None
        backend: str
        precision: str
        threads: int | None
        max_batch_tokens: int | None
        show_progress: bool
        cache_size: int
        _encoder: Encoder

    #: Which output of the encoder this class returns.
    _output: ClassVar[str] = "dense"

    def _load_kwargs(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "threads": self.threads,
            "max_batch_tokens": self.max_batch_tokens,
            "device": self.device,
            "fp16": self.fp16,
            "max_length": self.max_length,
            "batch_size": self.embed_batch_size,
            "show_progress": self.show_progress,
            "cache_size": self.cache_size,
            "query_instruction": self.query_instruction,
            "document_instruction": self.text_instruction,
        }

    def _attach_encoder(self, encoder: Encoder | None) -> None:
        if encoder is None:
            # Imported here so that importing llama_index_ext stays cheap until a model is used.
            from shared.encoders import load_encoder

            encoder = load_encoder(self.model_name, **self._load_kwargs())
        if not isinstance(encoder, Encoder):
            raise InvalidTypeError(
                f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}"
            )
        if self._output not in encoder.outputs:
            other = "BGEM3SparseEmbedding" if self._output == "dense" else "BGEM3Embedding"
            raise InvalidInputError(
                f"model {self.model_name!r} produces no {self._output} vectors "
                f"(outputs: {sorted(encoder.outputs)}); use {other} for it"
            )
        self._encoder = encoder

    @property
    def encoder(self) -> Encoder:
        """The shared core encoder (also used by :class:`HybridQdrantVectorStore`)."""
        return self._encoder

    def _encode(self, texts: list[str], kind: TextKind) -> EncodeResult:
        return encode(
            self._encoder,
            texts,
            kind,
            outputs=[self._output],
            batch_size=self.embed_batch_size,
            show_progress=self.show_progress,
        )


class BGEM3Embedding(_EncoderMixin, BaseEmbedding):
    """Dense embeddings from BGE-M3 (default) or any supported dense model id or local path.

    ``query_instruction`` / ``text_instruction``: ``None`` uses the model family's
    registered prompts, a string overrides them and ``""`` disables them.  ``truncate_dim``
    truncates and re-normalises the vectors of MRL-trained models.
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="hub id or local directory of the model")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="texts per forward pass")
    query_instruction: str | None = Field(default=None, description="query prompt (None: registry default)")
    text_instruction: str | None = Field(default=None, description="document prompt (None: registry default)")
    truncate_dim: int | None = Field(default=None, gt=0, description="MRL truncation size (None: full size)")
    max_length: int | None = Field(default=None, gt=0, description="token limit per text (None: the model's)")
    device: str | None = Field(default=None, description="torch device (None: cuda, mps or cpu)")
    fp16: bool | None = Field(default=None, description="half precision (None: on GPU only)")
    backend: str = Field(
        default="native", description='"native" (transformers), "onnx" (onnxruntime) or "flagembedding"'
    )
    precision: str = Field(default="fp32", description='"fp32", or "int8" with backend="onnx" (opt-in)')
    threads: int | None = Field(default=None, gt=0, description="encoder threads (None: physical cores)")
    max_batch_tokens: int | None = Field(
        default=None, gt=0, description="padded tokens per batch at most (None: no token bound)"
    )
    show_progress: bool = Field(default=False, description="show the encoder's progress bar")
    cache_size: int = Field(default=1024, ge=0, description="entries of the encoder's result cache")

    _encoder: Encoder = PrivateAttr()
    _output: ClassVar[str] = "dense"

    def __init__(self, *, encoder: Encoder | None = None, **data: Any) -> None:
        # The encoder is attached after validation (not in a validator), so that load
        # errors surface as our own exceptions rather than pydantic ValidationErrors.
        with validation_errors_as_ours(type(self).__name__):
            super().__init__(**data)
        self._attach_encoder(encoder)

    def _load_kwargs(self) -> dict[str, Any]:
        return {**super()._load_kwargs(), "truncate_dim": self.truncate_dim}

    @classmethod
    def class_name(cls) -> str:
        return "BGEM3Embedding"

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> BGEM3Embedding:
        """Wrap an already loaded core encoder (no second model load)."""
        fields.setdefault("model_name", encoder.identity.model_id)
        return cls(encoder=encoder, **fields)

    @property
    def dimension(self) -> int:
        """Size of the vectors returned (after MRL truncation)."""
        dim = self._encoder.dense_dim
        if dim is None:  # excluded by _attach_encoder; kept for the type checker
            raise InvalidInputError(f"model {self.model_name!r} has no dense output")
        return dim

    def _dense(self, texts: list[str], kind: TextKind) -> list[Embedding]:
        if not texts:
            return []
        dense = self._encode(texts, kind).dense
        if dense is None:
            raise InvalidInputError(f"model {self.model_name!r} returned no dense vectors")
        return [[float(x) for x in row] for row in dense.tolist()]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._dense([_check_text(query, "get_query_embedding")], "query")[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._dense([_check_text(text, "get_text_embedding")], "document")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._dense(text_list(texts), "document")

    # One code path: the async methods run the sync ones in a worker thread (one per
    # call or batch, never one per text); the forward pass releases the GIL in torch.
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


class BGEM3SparseEmbedding(_EncoderMixin, BaseSparseEmbedding):
    """Sparse lexical vectors (``{token_id: weight}``) from BGE-M3 (default) or a SPLADE model.

    With the same model and settings as a :class:`BGEM3Embedding` (or built with
    :meth:`from_dense`) it shares that instance's encoder, so dense and sparse vectors
    of the same texts come from one forward pass.  Prompts work as in :class:`BGEM3Embedding`.
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="hub id or local directory of the model")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="texts per forward pass")
    query_instruction: str | None = Field(default=None, description="query prompt (None: registry default)")
    text_instruction: str | None = Field(default=None, description="document prompt (None: registry default)")
    max_length: int | None = Field(default=None, gt=0, description="token limit per text (None: the model's)")
    device: str | None = Field(default=None, description="torch device (None: cuda, mps or cpu)")
    fp16: bool | None = Field(default=None, description="half precision (None: on GPU only)")
    backend: str = Field(
        default="native", description='"native" (transformers), "onnx" (onnxruntime) or "flagembedding"'
    )
    precision: str = Field(default="fp32", description='"fp32", or "int8" with backend="onnx" (opt-in)')
    threads: int | None = Field(default=None, gt=0, description="encoder threads (None: physical cores)")
    max_batch_tokens: int | None = Field(
        default=None, gt=0, description="padded tokens per batch at most (None: no token bound)"
    )
    show_progress: bool = Field(default=False, description="show the encoder's progress bar")
    cache_size: int = Field(default=1024, ge=0, description="entries of the encoder's result cache")

    _encoder: Encoder = PrivateAttr()
    _output: ClassVar[str] = "sparse"

    def __init__(self, *, encoder: Encoder | None = None, **data: Any) -> None:
        # The encoder is attached after validation (not in a validator), so that load
        # errors surface as our own exceptions rather than pydantic ValidationErrors.
        with validation_errors_as_ours(type(self).__name__):
            super().__init__(**data)
        self._attach_encoder(encoder)

    @classmethod
    def class_name(cls) -> str:
        return "BGEM3SparseEmbedding"

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> BGEM3SparseEmbedding:
        """Wrap an already loaded core encoder (no second model load)."""
        fields.setdefault("model_name", encoder.identity.model_id)
        return cls(encoder=encoder, **fields)

    @classmethod
    def from_dense(cls, dense: BGEM3Embedding, **fields: Any) -> BGEM3SparseEmbedding:
        """The sparse side of ``dense``'s model, sharing its encoder and forward passes."""
        if not isinstance(dense, BGEM3Embedding):
            raise InvalidTypeError(f"from_dense expects a BGEM3Embedding, got {type(dense).__name__}")
        shared = {
            name: getattr(dense, name) for name in cls.model_fields if name in BGEM3Embedding.model_fields
        }
        shared.pop("callback_manager", None)
        return cls.from_encoder(dense.encoder, **{**shared, **fields})

    def _sparse(self, texts: list[str], kind: TextKind) -> list[SparseEmbedding]:
        if not texts:
            return []
        sparse = self._encode(texts, kind).sparse
        if sparse is None:
            raise InvalidInputError(f"model {self.model_name!r} returned no sparse vectors")
        return [dict(weights) for weights in sparse]

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return self._sparse([_check_text(query, "get_query_embedding")], "query")[0]

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return self._sparse([_check_text(text, "get_text_embedding")], "document")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return self._sparse(text_list(texts), "document")

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
