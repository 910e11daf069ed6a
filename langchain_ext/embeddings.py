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
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shared.errors import InvalidInputError, InvalidTypeError
from shared.serving import encode
from shared.types import Encoder, TextKind
from shared.validation import text_list

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


def _query_text(text: Any, method: str) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"{method} expects a str, got {type(text).__name__}")
    return text


class _EncoderBacked(BaseModel):
    """Settings and the shared encoder common to the dense and the sparse class."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    model_name: str = Field(default=DEFAULT_MODEL, description="hub id or local directory of the model")
    max_length: int | None = Field(default=None, description="token limit per text (None: the model's)")
    batch_size: int = Field(default=32, gt=0, description="texts per forward pass")
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
    show_progress: bool = Field(default=False, description="show a progress bar while encoding")
    cache_size: int = Field(default=1024, ge=0, description="entries of the encoder's result cache")

    _encoder: Encoder = PrivateAttr()

    def _load_kwargs(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "threads": self.threads,
            "max_batch_tokens": self.max_batch_tokens,
            "device": self.device,
            "fp16": self.fp16,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "show_progress": self.show_progress,
            "cache_size": self.cache_size,
        }

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Loaded here, after validation, so that the core's errors (ModelLoadError, ...) reach
        # the caller as they are instead of being wrapped in a pydantic ValidationError.
        encoder = _GIVEN_ENCODER.get()
        if encoder is None:
            # Imported here so that importing langchain_ext stays cheap (no torch) until a model is used.
            from shared.encoders import load_encoder

            encoder = load_encoder(self.model_name, **self._load_kwargs())
        self._check_encoder(encoder)
        self._encoder = encoder

    def _check_encoder(self, encoder: Encoder) -> None:
        raise NotImplementedError

    @classmethod
    def _with_encoder(cls, encoder: Encoder, fields: dict[str, Any]) -> Any:
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

    def _encode(self, texts: list[str], kind: TextKind, output: str) -> Any:
        return encode(
            self._encoder,
            texts,
            kind,
            outputs=[output],
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

    query_instruction: str | None = Field(default=None, description="query prompt (None: registry default)")
    document_instruction: str | None = Field(
        default=None, description="document prompt (None: registry default)"
    )
    truncate_dim: int | None = Field(default=None, gt=0, description="MRL truncation size (None: full size)")

    def _load_kwargs(self) -> dict[str, Any]:
        return {
            **super()._load_kwargs(),
            "truncate_dim": self.truncate_dim,
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
        }

    def _check_encoder(self, encoder: Encoder) -> None:
        if "dense" not in encoder.outputs:
            raise InvalidInputError(
                f"model {self.model_name!r} produces no dense vectors; use BGEM3SparseEmbeddings for it"
            )

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> BGEM3Embeddings:
        """Wrap an already loaded core encoder (no second model load)."""
        result: BGEM3Embeddings = cls._with_encoder(encoder, dict(fields))
        return result

    @property
    def dimension(self) -> int:
        """Size of the vectors returned (after MRL truncation)."""
        dim = self._encoder.dense_dim
        assert dim is not None  # guaranteed by _check_encoder
        return dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (with the document prompt, if the model has one)."""
        items = text_list(texts)
        if not items:
            return []
        dense = self._encode(items, "document", "dense").dense
        return [[float(x) for x in row] for row in dense.tolist()]

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (with the query prompt, if the model has one)."""
        query = _query_text(text, "embed_query")
        dense = self._encode([query], "query", "dense").dense
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

    query_instruction: str | None = Field(default=None, description="query prompt (None: registry default)")
    document_instruction: str | None = Field(
        default=None, description="document prompt (None: registry default)"
    )

    def _load_kwargs(self) -> dict[str, Any]:
        return {
            **super()._load_kwargs(),
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
        }

    def _check_encoder(self, encoder: Encoder) -> None:
        if "sparse" not in encoder.outputs:
            raise InvalidInputError(
                f"model {self.model_name!r} produces no sparse vectors; use BGE-M3 or a SPLADE model"
            )

    @classmethod
    def from_encoder(cls, encoder: Encoder, **fields: Any) -> BGEM3SparseEmbeddings:
        """Wrap an already loaded core encoder (no second model load)."""
        result: BGEM3SparseEmbeddings = cls._with_encoder(encoder, dict(fields))
        return result

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
        sparse = self._encode(items, "document", "sparse").sparse
        return [SparseVector.from_dict(weights) for weights in sparse]

    def embed_query(self, text: str) -> SparseVector:
        """Sparse vector of a search query."""
        query = _query_text(text, "embed_query")
        return SparseVector.from_dict(self._encode([query], "query", "sparse").sparse[0])

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
