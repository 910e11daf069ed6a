"""LangChain embedding classes backed by the shared m3-hybrid encoders.

:class:`BGEM3Embeddings` is a standard LangChain ``Embeddings`` (dense vectors);
:class:`BGEM3SparseEmbeddings` returns sparse vectors shaped like langchain-qdrant's
``SparseVector`` and implements its ``SparseEmbeddings`` interface by duck typing, so it
plugs into ``langchain_qdrant.QdrantVectorStore`` without that package being a
dependency.  Both only translate types: encoding, prompts, MRL truncation, batching and
the result cache live in :mod:`shared.encoders`.  Two instances with the same model and
settings share one encoder (``load_encoder`` returns one instance per configuration), so
embedding the same texts densely and sparsely costs one forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Self

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shared.config import option_default as store_option_default
from shared.config import option_doc as store_option_doc
from shared.encoders.config import encoder_option_default as option_default
from shared.encoders.config import encoder_option_doc as option_doc
from shared.encoders.config import options_from
from shared.encoders.framework import encoder_for_output
from shared.errors import InvalidInputError, InvalidTypeError
from shared.options import check_options
from shared.serving import encode
from shared.types import Encoder, TextKind
from shared.validation import single_text, text_list

__all__ = ["BGEM3Embeddings", "BGEM3SparseEmbeddings", "SparseVector"]

DEFAULT_MODEL = "BAAI/bge-m3"
#: Set by ``from_encoder`` for the duration of one construction (so no field is needed for it).
_GIVEN_ENCODER: ContextVar[Encoder | None] = ContextVar("m3_hybrid_given_encoder", default=None)


class SparseVector(BaseModel):
    """A sparse vector: parallel ``indices`` (token ids, ascending) and ``values`` (weights).

    Field-for-field the same as ``langchain_qdrant.SparseVector``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    indices: list[int] = Field(description="token ids, unique and ascending")
    values: list[float] = Field(description="weights, same length as indices")

    @classmethod
    def from_dict(cls, weights: Mapping[int, float]) -> SparseVector:
        """Build from a ``{token_id: weight}`` mapping (the core's ``SparseDict``)."""
        indices = sorted(int(i) for i in weights)
        return cls(indices=indices, values=[float(weights[i]) for i in indices])

    def to_dict(self) -> dict[int, float]:
        """The ``{token_id: weight}`` form the core uses."""
        return dict(zip(self.indices, self.values, strict=True))


class _EncoderBacked(BaseModel):
    """Settings and the shared encoder common to the dense and the sparse class.

    Defaults and descriptions of the encoder options come from
    :class:`shared.encoders.EncoderConfig`.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    model_name: str = Field(default=DEFAULT_MODEL, description="hub id or local directory of the model")
    max_length: int | None = Field(default=option_default("max_length"), description=option_doc("max_length"))
    batch_size: int = Field(default=option_default("batch_size"), gt=0, description=option_doc("batch_size"))
    device: str | None = Field(default=option_default("device"), description=option_doc("device"))
    fp16: bool | None = Field(default=option_default("fp16"), description=option_doc("fp16"))
    backend: str = Field(
        default="native", description='"native" (transformers), "onnx" (onnxruntime) or "flagembedding"'
    )
    precision: str = Field(default=option_default("precision"), description=option_doc("precision"))
    threads: int | None = Field(default=option_default("threads"), gt=0, description=option_doc("threads"))
    max_batch_tokens: int | None = Field(
        default=option_default("max_batch_tokens"), gt=0, description=option_doc("max_batch_tokens")
    )
    # Off by default here, unlike the core encoders: a LangChain app shows its own progress.
    show_progress: bool = Field(default=False, description=option_doc("show_progress"))
    cache_size: int = Field(default=option_default("cache_size"), ge=0, description=option_doc("cache_size"))
    query_instruction: str | None = Field(
        default=option_default("query_instruction"), description=option_doc("query_instruction")
    )
    document_instruction: str | None = Field(
        default=option_default("document_instruction"), description=option_doc("document_instruction")
    )
    late_chunking: bool = Field(
        default=store_option_default("late_chunking"),
        description=store_option_doc("late_chunking")
        + "; a HybridQdrantVectorStore given this model does it",
    )

    _encoder: Encoder = PrivateAttr()
    #: Which output of the encoder this class returns.
    _output: ClassVar[str] = "dense"

    def __init__(self, **data: Any) -> None:
        # Unknown keywords: our error naming the nearest field instead of pydantic's; a
        # ValueError as pydantic's extra="forbid" error was.
        check_options(data, type(self).model_fields, type(self).__name__, InvalidInputError)
        super().__init__(**data)
        # Loaded here, after validation, so that the core's errors (ModelLoadError, ...) reach
        # the caller as they are instead of being wrapped in a pydantic ValidationError.
        self._encoder = encoder_for_output(
            _GIVEN_ENCODER.get(),
            self.model_name,
            self.backend,
            options_from(dict(self)),
            output=self._output,
            other="BGEM3SparseEmbeddings" if self._output == "dense" else "BGEM3Embeddings",
            late_chunking=self.late_chunking,
        )

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> Self:
        """Wrap an already loaded core encoder (no second model load)."""
        if not isinstance(encoder, Encoder):
            raise InvalidTypeError(
                f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}"
            )
        fields.setdefault("model_name", encoder.identity.model_id)
        token = _GIVEN_ENCODER.set(encoder)
        try:
            return cls(**fields)
        finally:
            _GIVEN_ENCODER.reset(token)

    @property
    def encoder(self) -> Encoder:
        """The shared core encoder (also used by :class:`HybridQdrantVectorStore`)."""
        return self._encoder

    def _encode(self, texts: list[str], kind: TextKind) -> Any:
        # Any: the result has this class's output (checked in __init__), never None.
        return encode(
            self._encoder,
            texts,
            kind,
            outputs=[self._output],
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r})"


class BGEM3Embeddings(_EncoderBacked, Embeddings):
    """Dense embeddings from BGE-M3 (default) or any supported dense model.

    ``query_instruction`` / ``document_instruction``: ``None`` uses the model family's
    registered prompts, a string overrides them and ``""`` disables them.  ``truncate_dim``
    truncates and re-normalises MRL-trained vectors.  Vectors are lists of Python floats.
    """

    truncate_dim: int | None = Field(
        default=option_default("truncate_dim"), gt=0, description=option_doc("truncate_dim")
    )

    @property
    def dimension(self) -> int:
        """Size of the vectors returned (after MRL truncation)."""
        dim = self._encoder.dense_dim
        assert dim is not None  # guaranteed by __init__
        return dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (with the document prompt, if the model has one)."""
        items = text_list(texts)
        if not items:
            return []
        dense = self._encode(items, "document").dense
        return [[float(x) for x in row] for row in dense.tolist()]

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (with the query prompt, if the model has one)."""
        query = single_text(text, "embed_query")
        dense = self._encode([query], "query").dense
        return [float(x) for x in dense[0].tolist()]

    # One code path: the async methods run the sync ones in LangChain's executor
    # (the forward pass is CPU/GPU bound and releases the GIL in torch).
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`, run in a worker thread."""
        result: list[list[float]] = await run_in_executor(None, self.embed_documents, texts)
        return result

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`, run in a worker thread."""
        result: list[float] = await run_in_executor(None, self.embed_query, text)
        return result


class BGEM3SparseEmbeddings(_EncoderBacked):
    """Sparse lexical vectors from BGE-M3 (default) or a SPLADE model.

    Implements langchain-qdrant's ``SparseEmbeddings`` interface (``embed_documents``,
    ``embed_query`` and their async forms returning :class:`SparseVector`).  With the same
    model and settings as a :class:`BGEM3Embeddings` (or built with :meth:`from_dense`), it
    shares that instance's encoder, so dense and sparse vectors of the same texts come from
    one forward pass.
    """

    _output: ClassVar[str] = "sparse"

    @classmethod
    def from_dense(cls, dense: BGEM3Embeddings, **fields: Any) -> BGEM3SparseEmbeddings:
        """The sparse side of ``dense``'s model, sharing its encoder and forward passes."""
        if not isinstance(dense, BGEM3Embeddings):
            raise InvalidTypeError(f"from_dense expects a BGEM3Embeddings, got {type(dense).__name__}")
        shared = dense.model_dump(exclude={"truncate_dim"})
        return cls.from_encoder(dense.encoder, **{**shared, **fields})

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """Sparse vectors of passages."""
        items = text_list(texts)
        if not items:
            return []
        sparse = self._encode(items, "document").sparse
        return [SparseVector.from_dict(weights) for weights in sparse]

    def embed_query(self, text: str) -> SparseVector:
        """Sparse vector of a search query."""
        query = single_text(text, "embed_query")
        return SparseVector.from_dict(self._encode([query], "query").sparse[0])

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        """Async :meth:`embed_documents`, run in a worker thread."""
        result: list[SparseVector] = await run_in_executor(None, self.embed_documents, texts)
        return result

    async def aembed_query(self, text: str) -> SparseVector:
        """Async :meth:`embed_query`, run in a worker thread."""
        result: SparseVector = await run_in_executor(None, self.embed_query, text)
        return result


def _register_with_langchain_qdrant() -> None:
    """Make ``isinstance(x, langchain_qdrant.SparseEmbeddings)`` true when that package exists."""
    try:
        from langchain_qdrant.sparse_embeddings import SparseEmbeddings
    except ImportError:  # optional: the duck-typed interface works without it
        return
    SparseEmbeddings.register(BGEM3SparseEmbeddings)


_register_with_langchain_qdrant()
