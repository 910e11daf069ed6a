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
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from llama_index.core.schema import BaseNode

from shared.config import option_default as store_option_default
from shared.config import option_doc as store_option_doc
from shared.encoders.config import encoder_option_default as option_default
from shared.encoders.config import encoder_option_doc as option_doc
from shared.encoders.config import options_from
from shared.encoders.framework import encoder_for_output
from shared.errors import InvalidInputError, InvalidTypeError
from shared.late_chunking import late_chunk_records
from shared.options import check_options
from shared.serving import encode
from shared.types import Encoder, EncodeResult, Record, TextKind
from shared.validation import single_text, text_list

from ._nodes import chunk_record
from ._validation import validation_errors_as_ours

__all__ = ["DEFAULT_MODEL", "BGEM3Embedding", "BGEM3SparseEmbedding"]

DEFAULT_MODEL = "BAAI/bge-m3"
#: LlamaIndex's names of the shared encoder options these classes take under another name.
_RENAMED = {"batch_size": "embed_batch_size", "document_instruction": "text_instruction"}


class _EncoderBacked(BaseModel):
    """The settings, the shared encoder and the one encode path of both classes.

    Defaults and descriptions of the encoder options come from
    :class:`shared.encoders.EncoderConfig`.  Each class says which output it returns
    (``_output``) and how a result becomes LlamaIndex vectors (``_vectors``); the async
    methods run the sync ones in a worker thread (one per call or batch, never one per
    text; the forward pass releases the GIL in torch).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=("pydantic_model_",))

    model_name: str = Field(default=DEFAULT_MODEL, description="hub id or local directory of the model")
    embed_batch_size: int = Field(
        default=option_default("batch_size"), description=option_doc("batch_size"), gt=0, le=2048
    )
    query_instruction: str | None = Field(
        default=option_default("query_instruction"), description=option_doc("query_instruction")
    )
    text_instruction: str | None = Field(
        default=option_default("document_instruction"), description=option_doc("document_instruction")
    )
    max_length: int | None = Field(
        default=option_default("max_length"), description=option_doc("max_length"), gt=0
    )
    device: str | None = Field(default=option_default("device"), description=option_doc("device"))
    fp16: bool | None = Field(default=option_default("fp16"), description=option_doc("fp16"))
    backend: str = Field(
        default="native", description='"native" (transformers), "onnx" (onnxruntime) or "flagembedding"'
    )
    precision: str = Field(default=option_default("precision"), description=option_doc("precision"))
    threads: int | None = Field(default=option_default("threads"), description=option_doc("threads"), gt=0)
    max_batch_tokens: int | None = Field(
        default=option_default("max_batch_tokens"), description=option_doc("max_batch_tokens"), gt=0
    )
    # Off by default here, unlike the core encoders: LlamaIndex shows its own progress.
    show_progress: bool = Field(default=False, description=option_doc("show_progress"))
    cache_size: int = Field(default=option_default("cache_size"), description=option_doc("cache_size"), ge=0)
    late_chunking: bool = Field(
        default=store_option_default("late_chunking"),
        description=store_option_doc("late_chunking")
        + "; as a transformation (IngestionPipeline, from_documents' transformations) it embeds nodes "
        "this way, and a store given this model late-chunks",
    )

    _encoder: Encoder = PrivateAttr()
    #: Which output of the encoder this class returns.
    _output: ClassVar[str] = "dense"

    def __init__(self, *, encoder: Encoder | None = None, **data: Any) -> None:
        # pydantic would drop an unknown keyword silently: a typo must not go unnoticed.
        check_options(data, type(self).model_fields, type(self).__name__)
        # The encoder is attached after validation (not in a validator), so that load
        # errors surface as our own exceptions rather than pydantic ValidationErrors.
        with validation_errors_as_ours(type(self).__name__):
            super().__init__(**data)
        self._encoder = encoder_for_output(
            encoder,
            self.model_name,
            self.backend,
            options_from(dict(self), _RENAMED),
            output=self._output,
            other="BGEM3SparseEmbedding" if self._output == "dense" else "BGEM3Embedding",
            late_chunking=self.late_chunking,
        )

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> Self:
        """Wrap an already loaded core encoder (no second model load)."""
        fields.setdefault("model_name", encoder.identity.model_id)
        return cls(encoder=encoder, **fields)

    @property
    def encoder(self) -> Encoder:
        """The shared core encoder (also used by :class:`HybridQdrantVectorStore`)."""
        return self._encoder

    def _embed(self, texts: list[str], kind: TextKind) -> list[Any]:
        if not texts:
            return []
        result = encode(
            self._encoder,
            texts,
            kind,
            outputs=[self._output],
            batch_size=self.embed_batch_size,
            show_progress=self.show_progress,
        )
        return self._vectors(result)

    def _vectors(self, result: EncodeResult) -> list[Any]:
        raise NotImplementedError  # each class converts its output

    def _get_query_embedding(self, query: str) -> Any:
        return self._embed([single_text(query, "get_query_embedding")], "query")[0]

    def _get_text_embedding(self, text: str) -> Any:
        return self._embed([single_text(text, "get_text_embedding")], "document")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Any]:
        return self._embed(text_list(texts), "document")

    async def _aget_query_embedding(self, query: str) -> Any:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Any:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Any]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def _late_chunked(self, nodes: Sequence[BaseNode]) -> Sequence[BaseNode]:
        """Nodes with this class's vectors late-chunked (grouped by ``ref_doc_id``, by offsets)."""
        records = late_chunk_records(
            [chunk_record(n) for n in nodes], None, self._encoder, [self._output], self.embed_batch_size
        )
        vectors = self._vectors(_records_result(records, self._output))
        for node, vector in zip(nodes, vectors, strict=True):
            self._attach(node, vector)
        return nodes

    def _attach(self, node: BaseNode, vector: Any) -> None:
        node.embedding = vector


class BGEM3Embedding(_EncoderBacked, BaseEmbedding):
    """Dense embeddings from BGE-M3 (default) or any supported dense model id or local path.

    ``query_instruction`` / ``text_instruction``: ``None`` uses the model family's
    registered prompts, a string overrides them and ``""`` disables them.  ``truncate_dim``
    truncates and re-normalises the vectors of MRL-trained models.
    """

    truncate_dim: int | None = Field(
        default=option_default("truncate_dim"), description=option_doc("truncate_dim"), gt=0
    )

    _output: ClassVar[str] = "dense"

    @classmethod
    def class_name(cls) -> str:
        return "BGEM3Embedding"

    @property
    def dimension(self) -> int:
        """Size of the vectors returned (after MRL truncation)."""
        dim = self._encoder.dense_dim
        if dim is None:  # excluded by __init__; kept for the type checker
            raise InvalidInputError(f"model {self.model_name!r} has no dense output")
        return dim

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """As a transformation: embed ``nodes`` (late-chunked with ``late_chunking=True``)."""
        if not self.late_chunking:
            return super().__call__(nodes, **kwargs)
        return self._late_chunked(nodes)

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        if not self.late_chunking:
            return await super().acall(nodes, **kwargs)
        return await asyncio.to_thread(self._late_chunked, nodes)

    def _vectors(self, result: EncodeResult) -> list[Embedding]:
        if result.dense is None:
            raise InvalidInputError(f"model {self.model_name!r} returned no dense vectors")
        return [[float(x) for x in row] for row in result.dense.tolist()]


class BGEM3SparseEmbedding(_EncoderBacked, BaseSparseEmbedding):
    """Sparse lexical vectors (``{token_id: weight}``) from BGE-M3 (default) or a SPLADE model.

    With the same model and settings as a :class:`BGEM3Embedding` (or built with
    :meth:`from_dense`) it shares that instance's encoder, so dense and sparse vectors
    of the same texts come from one forward pass.  Prompts work as in :class:`BGEM3Embedding`.
    """

    _output: ClassVar[str] = "sparse"

    @classmethod
    def class_name(cls) -> str:
        return "BGEM3SparseEmbedding"

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

    def _vectors(self, result: EncodeResult) -> list[SparseEmbedding]:
        if result.sparse is None:
            raise InvalidInputError(f"model {self.model_name!r} returned no sparse vectors")
        return [dict(weights) for weights in result.sparse]


def _records_result(records: Sequence[Record], output: str) -> EncodeResult:
    """Late-chunked records' vectors of ``output`` as an encode result (for ``_vectors``)."""
    dense = np.stack([np.asarray(r.dense, dtype=np.float32) for r in records]) if output == "dense" else None
    sparse = [dict(r.sparse or {}) for r in records] if output == "sparse" else None
    n = len(records)
    return EncodeResult(dense=dense, sparse=sparse, colbert=None, token_counts=[0] * n, truncated=[False] * n)
