"""``HybridQdrantVectorStore``: a LangChain ``VectorStore`` over the shared :class:`HybridStore`.

This module only translates: LangChain ``Document``/ids/metadata/filter dicts to the
core's ``Record``/``Hit``/``models.Filter`` and back.  Encoding, fusion, quantization,
the collection guard and every Qdrant call live in :mod:`shared`.

Where the vectors come from:

* :class:`~langchain_ext.embeddings.BGEM3Embeddings` (and our sparse class) hand their
  core encoder to the store, which encodes documents and queries itself; a BGE-M3
  encoder yields the dense and the sparse vector from one forward pass, so the sparse
  side is derived automatically, and the collection records the model (a store reopened
  with a different model is refused).
* Any other LangChain ``Embeddings`` (and any object with langchain-qdrant's
  ``SparseEmbeddings`` methods) is called through its LangChain interface and the
  vectors are passed to the store ready-made; the dense size is learned from the first add.
"""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from qdrant_client import models
from typing_extensions import Self

from shared.errors import InvalidInputError, InvalidTypeError
from shared.layouts import Layout, langchain_layout
from shared.query_planning import DEFAULT_RRF_K, DEFAULT_SPARSE_WEIGHT, FusionMethod, parse_fusion, parse_mode
from shared.retry import RetryPolicy
from shared.steps import Call, Steps, arun, call_async, run
from shared.types import Encoder, Hit, Record

from .embeddings import BGEM3Embeddings, BGEM3SparseEmbeddings, SparseVector
from .filters import to_qdrant_filter

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient, QdrantClient

    from shared.store import HybridStore

__all__ = ["HybridQdrantVectorStore"]

#: Search options passed through to ``HybridStore.query`` (besides text/vectors/limit/filter/mode).
_QUERY_OPTIONS = frozenset(
    {
        "offset",
        "fusion",
        "rrf_k",
        "dense_weight",
        "sparse_weight",
        "candidate_k",
        "sparse_normalization",
        "dense_candidates",
        "sparse_candidates",
        "mrl_candidates",
        "colbert_rerank",
        "exact",
        "hnsw_ef",
        "rescore",
        "oversampling",
        "score_threshold",
    }
)


def _mode(value: Any) -> str:
    """The plain string of a retrieval mode given as a string or a ``RetrievalMode``."""
    return parse_mode(value).value


def _fusion(value: Any) -> str:
    """The plain string of a fusion method given as a string or a ``FusionMethod``."""
    return parse_fusion(value).value


def _is_sparse_embeddings(obj: Any) -> bool:
    """Duck-typed check for langchain-qdrant's ``SparseEmbeddings`` interface."""
    return callable(getattr(obj, "embed_documents", None)) and callable(getattr(obj, "embed_query", None))


def _embed_documents(model: Any, texts: list[str]) -> Call[Any]:
    """``model.embed_documents(texts)`` through LangChain's interface (awaited as ``aembed_documents``)."""
    native = model.aembed_documents if hasattr(model, "aembed_documents") else None
    return call_async(model.embed_documents, native, texts)


def _embed_query(model: Any, text: str | None) -> Call[Any]:
    """``model.embed_query(text)`` through LangChain's interface (awaited as ``aembed_query``)."""
    native = model.aembed_query if hasattr(model, "aembed_query") else None
    return call_async(model.embed_query, native, text)


def _sparse_to_dict(vector: Any, where: str) -> dict[int, float]:
    """A ``SparseVector``-like object (``indices``/``values``) or a mapping -> the core's ``SparseDict``."""
    if isinstance(vector, SparseVector):
        return vector.to_dict()
    if isinstance(vector, Mapping):
        items = list(vector.items())
    else:
        indices, values = getattr(vector, "indices", None), getattr(vector, "values", None)
        if indices is None or values is None or callable(values):
            raise InvalidTypeError(
                f"{where}: expected a sparse vector with `indices` and `values` (or a dict), "
                f"got {type(vector).__name__}"
            )
        indices, values = list(indices), list(values)
        if len(indices) != len(values):
            raise InvalidInputError(f"{where}: {len(indices)} indices but {len(values)} values")
        items = list(zip(indices, values, strict=True))
    result: dict[int, float] = {}
    for index, weight in items:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidInputError(f"{where}: sparse index {index!r} is not a non-negative integer")
        if index in result:
            raise InvalidInputError(f"{where}: sparse index {index} appears twice")
        result[index] = float(weight)
    return result


def _dense_list(vector: Any, where: str) -> list[float]:
    if isinstance(vector, str | bytes) or not isinstance(vector, Iterable):
        raise InvalidTypeError(f"{where}: expected a list of floats, got {type(vector).__name__}")
    values = list(vector)
    if not values:
        raise InvalidInputError(f"{where}: the vector is empty")
    for i, x in enumerate(values):
        if isinstance(x, bool) or (not isinstance(x, int | float) and not hasattr(x, "__float__")):
            raise InvalidTypeError(f"{where}: component {i} is {type(x).__name__}, expected a number")
    return [float(x) for x in values]


def _documents(hits: Sequence[Hit]) -> list[tuple[Document, float]]:
    # Metadata is returned exactly as stored: no injected `_id`/score keys.
    return [
        (Document(page_content=h.text or "", metadata=dict(h.metadata), id=h.id), float(h.score))
        for h in hits
    ]


def _record_documents(records: Sequence[Record]) -> list[Document]:
    return [Document(page_content=r.text or "", metadata=dict(r.metadata), id=r.id) for r in records]


@dataclass(frozen=True)
class _Sources:
    """Where each kind of vector comes from (see the module docstring)."""

    encoder: Encoder | None
    dense: Embeddings | None  # foreign dense embeddings, called through LangChain
    sparse: Any | None  # foreign sparse embeddings, called through LangChain

    @property
    def has_dense(self) -> bool:
        return self.dense is not None or (self.encoder is not None and "dense" in self.encoder.outputs)

    @property
    def has_sparse(self) -> bool:
        return self.sparse is not None or (self.encoder is not None and "sparse" in self.encoder.outputs)


def _resolve_sources(embedding: Embeddings | None, sparse_embedding: Any | None) -> _Sources:
    if embedding is not None and not isinstance(embedding, Embeddings):
        raise InvalidTypeError(
            f"embedding must be a LangChain Embeddings (e.g. BGEM3Embeddings), got {type(embedding).__name__}"
        )
    if sparse_embedding is not None and not _is_sparse_embeddings(sparse_embedding):
        raise InvalidTypeError(
            "sparse_embedding must have embed_documents/embed_query returning sparse vectors "
            f"(e.g. BGEM3SparseEmbeddings), got {type(sparse_embedding).__name__}"
        )
    if embedding is None and sparse_embedding is None:
        raise InvalidInputError("pass an embedding, a sparse_embedding, or both")

    ours_dense = embedding if isinstance(embedding, BGEM3Embeddings) else None
    ours_sparse = sparse_embedding if isinstance(sparse_embedding, BGEM3SparseEmbeddings) else None
    foreign_dense = embedding if ours_dense is None else None

    if ours_dense is None:
        if ours_sparse is not None and foreign_dense is None:
            return _Sources(encoder=ours_sparse.encoder, dense=None, sparse=None)
        # A foreign dense model: the store cannot encode, so every vector is computed here.
        return _Sources(encoder=None, dense=foreign_dense, sparse=sparse_embedding)

    dense_encoder = ours_dense.encoder
    if sparse_embedding is None:
        return _Sources(encoder=dense_encoder, dense=None, sparse=None)  # sparse derived when BGE-M3
    if ours_sparse is None:
        return _Sources(encoder=dense_encoder, dense=None, sparse=sparse_embedding)
    sparse_encoder = ours_sparse.encoder
    if sparse_encoder is dense_encoder or (
        "sparse" in dense_encoder.outputs
        and dense_encoder.identity.model_id == sparse_encoder.identity.model_id
    ):
        # Same BGE-M3 model: the dense encoder's forward pass already yields the sparse vector.
        return _Sources(encoder=dense_encoder, dense=None, sparse=None)
    # Two models (e.g. MiniLM + SPLADE): one core pair encoder, so the collection guard records both.
    from shared.encoders import BaseEncoder, PairEncoder, load_encoder

    if isinstance(dense_encoder, BaseEncoder) and isinstance(sparse_encoder, BaseEncoder):
        # Pair the already loaded models (no second copy in memory); the dense encoder's own
        # truncation is not applied inside a pair, so the pair truncates.
        pair: Encoder = PairEncoder(
            dense_encoder,
            sparse_encoder,
            truncate_dim=ours_dense.truncate_dim,
            batch_size=ours_dense.batch_size,
            show_progress=ours_dense.show_progress,
            cache_size=ours_dense.cache_size,
        )
    else:
        pair = load_encoder(
            ours_dense.model_name, sparse_model=ours_sparse.model_name, **ours_dense._load_kwargs()
        )
    return _Sources(encoder=pair, dense=None, sparse=None)


class HybridQdrantVectorStore(VectorStore):
    """Dense, sparse or hybrid (fused) retrieval from Qdrant with BGE-M3.

    Args:
        embedding: dense embeddings; a :class:`BGEM3Embeddings` is encoded by the core
            (with BGE-M3 the sparse vectors come from the same forward pass), any other
            LangChain ``Embeddings`` works in dense mode.
        sparse_embedding: sparse embeddings (BGE-M3 / SPLADE via
            :class:`BGEM3SparseEmbeddings`, or anything implementing langchain-qdrant's
            ``SparseEmbeddings``); derived automatically when ``embedding`` is BGE-M3.
        collection_name: the Qdrant collection.
        path: directory of the embedded Qdrant Edge store (temporary when omitted and
            neither ``url`` nor ``client`` is given).
        url, api_key, client, aclient, timeout: a remote Qdrant server.
        retry: a ``shared.retry.RetryPolicy`` for transient failures of idempotent remote
            calls (None: 3 tries with exponential backoff; ``NO_RETRY`` turns it off).
        retrieval_mode: ``"dense"``, ``"sparse"`` or ``"hybrid"`` (string or enum);
            default hybrid when both kinds of vectors exist, else the one that does.
        quantization: preset name (``"none"``, ``"float16"``, ``"int8"``, ``"binary"``,
            ``"binary-1.5bit"``, ``"binary-2bit"``), a ``QuantizationPreset`` or a raw
            Qdrant quantization config.
        on_disk: original vectors, HNSW graphs and the sparse index memory-mapped.
        compact_every: embedded store: every this many points written, the shard is indexed
            and reopened, which gives back the engine's ingest memory (None: 100,000 with
            ``on_disk``, else never; 0: never).
        mrl_dim: size of the Matryoshka funnel's first-stage vectors (None: off).
        fusion: ``"rrf"``, ``"dbsf"`` or ``"m3"`` with ``rrf_k``, ``dense_weight``,
            ``sparse_weight`` and ``candidate_k`` (candidates per side before fusion).
        sparse_normalization: m3 fusion only: ``"none"`` adds the raw sparse dot product,
            ``"query"`` divides it by the query's own ``q . q``; ``"auto"`` (default) is
            ``"none"`` for BGE-M3 lexical weights, ``"query"`` for other sparse models.
        recreate: drop a collection built by another encoder instead of refusing it.
        layout: where the collection keeps vectors and payload (``"m3-hybrid"``, ``"langchain"``,
            ``"llama-index"`` or a ``shared.layouts.Layout``); None: detected from an existing
            collection (one written by langchain-qdrant or llama-index's Qdrant store keeps its
            layout, so those libraries keep reading it), this package's for a new one.

    Scores from ``similarity_search_with_score`` are similarities (higher is better):
    cosine for dense, dot product for sparse, the fused score for hybrid.  The store is
    a context manager; :meth:`close` releases the embedded store's lock.
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        sparse_embedding: Any | None = None,
        collection_name: str = "langchain",
        path: str | Any | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        aclient: AsyncQdrantClient | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        retrieval_mode: str | Any | None = None,
        quantization: str | Any = "none",
        on_disk: bool = False,
        compact_every: int | None = None,
        mrl_dim: int | None = None,
        mrl_quantization: str = "binary",
        fusion: str | Any = "rrf",
        rrf_k: int = DEFAULT_RRF_K,
        dense_weight: float = 1.0,
        sparse_weight: float | None = None,
        candidate_k: int = 100,
        sparse_normalization: str = "auto",
        colbert: bool = False,
        sparse_idf: bool = False,
        recreate: bool = False,
        batch_size: int = 256,
        layout: str | Layout | None = None,
    ) -> None:
        from shared.store import HybridStore

        self._embedding = embedding
        self._sparse_embedding = sparse_embedding
        self._sources = _resolve_sources(embedding, sparse_embedding)
        self._mode = self._check_mode(retrieval_mode)
        self._fusion = _fusion(fusion)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._batch_size = batch_size
        # Kept for the relevance functions (the store applies the same defaults).
        self._rrf_k, self._dense_weight, self._sparse_weight = rrf_k, dense_weight, sparse_weight
        self._store: HybridStore = HybridStore(
            collection_name,
            encoder=self._sources.encoder,
            path=path,
            url=url,
            api_key=api_key,
            client=client,
            aclient=aclient,
            timeout=timeout,
            retry=retry,
            sparse=self._sources.has_sparse,
            sparse_idf=sparse_idf,
            colbert=colbert,
            quantization=quantization,
            on_disk=on_disk,
            compact_every=compact_every,
            mrl_dim=mrl_dim,
            mrl_quantization=mrl_quantization,
            retrieval_mode=self._mode,
            fusion=self._fusion,
            rrf_k=rrf_k,
            dense_weight=dense_weight,
            sparse_weight=sparse_weight,
            candidate_k=candidate_k,
            sparse_normalization=sparse_normalization,
            layout=layout,
            recreate=recreate,
        )

    # ----------------------------------------------------------------- properties

    @property
    def embeddings(self) -> Embeddings | None:
        """The dense embeddings (LangChain's query-embedding accessor)."""
        return self._embedding

    @property
    def sparse_embeddings(self) -> Any | None:
        """The sparse embeddings given, if any (a derived BGE-M3 sparse side is not an object)."""
        return self._sparse_embedding

    @property
    def retrieval_mode(self) -> str:
        """The default retrieval mode: ``"dense"``, ``"sparse"`` or ``"hybrid"``."""
        return self._mode

    @property
    def store(self) -> HybridStore:
        """The core store (shared with the LlamaIndex adapter's API)."""
        return self._store

    @property
    def collection_name(self) -> str:
        """The Qdrant collection's name."""
        return self._store.collection_name

    def _check_mode(self, mode: Any) -> str:
        if mode is None:
            if self._sources.has_dense and self._sources.has_sparse:
                return "hybrid"
            return "dense" if self._sources.has_dense else "sparse"
        value = _mode(mode)
        if value in ("dense", "hybrid") and not self._sources.has_dense:
            raise InvalidInputError(
                f"retrieval_mode {value!r} needs dense vectors, but no dense embedding was given"
            )
        if value in ("sparse", "hybrid") and not self._sources.has_sparse:
            raise InvalidInputError(
                f"retrieval_mode {value!r} needs sparse vectors: pass sparse_embedding "
                "(e.g. BGEM3SparseEmbeddings) or a BGE-M3 embedding"
            )
        return value

    # ---------------------------------------------------------------------- adding

    def _plan_records(
        self,
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None,
        ids: Iterable[str | None] | None,
    ) -> list[Record]:
        """Validate the caller's texts/metadatas/ids and build the records (pure)."""
        if isinstance(texts, str):
            raise InvalidTypeError("texts must be an iterable of strings, got a single str")
        try:
            # Materialised first so that a length mismatch is caught before anything is written.
            text_list = list(texts)
        except TypeError as exc:
            raise InvalidTypeError(
                f"texts must be an iterable of strings, got {type(texts).__name__}"
            ) from exc
        n = len(text_list)
        for i, text in enumerate(text_list):
            if not isinstance(text, str):
                raise InvalidTypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        meta_list: list[Mapping[str, Any] | None] = [None] * n if metadatas is None else list(metadatas)
        if len(meta_list) != n:
            raise InvalidInputError(f"got {len(meta_list)} metadatas for {n} texts")
        id_list: list[str | None] = [None] * n if ids is None else list(ids)
        if len(id_list) != n:
            raise InvalidInputError(f"got {len(id_list)} ids for {n} texts")
        seen: dict[str, int] = {}
        records = []
        for i, (text, meta, id_) in enumerate(zip(text_list, meta_list, id_list, strict=True)):
            if meta is not None and not isinstance(meta, Mapping):
                raise InvalidTypeError(f"metadatas[{i}] is {type(meta).__name__}, expected a dict")
            if id_ is None:
                id_ = str(uuid.uuid4())
            elif not isinstance(id_, str):
                raise InvalidTypeError(f"ids[{i}] is {type(id_).__name__} {id_!r}, expected str")
            elif not id_:
                raise InvalidInputError(f"ids[{i}] is an empty string")
            if id_ in seen:
                raise InvalidInputError(f"duplicate id {id_!r} at positions {seen[id_]} and {i}")
            seen[id_] = i
            records.append(Record(id=id_, text=text, metadata=dict(meta or {})))
        return records

    def _add_steps(
        self,
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None,
        ids: Iterable[str | None] | None,
        kwargs: dict[str, Any],
    ) -> Steps[list[str]]:
        batch_size = kwargs.pop("batch_size", self._batch_size)
        show_progress = kwargs.pop("show_progress", False)
        if kwargs:
            raise InvalidInputError(f"unexpected keyword arguments for adding texts: {sorted(kwargs)}")
        records = self._plan_records(texts, metadatas, ids)
        if not records:
            return []
        batch = [r.text or "" for r in records]
        if self._sources.dense is not None:
            vectors = yield _embed_documents(self._sources.dense, batch)
            if len(vectors) != len(records):
                raise InvalidInputError(
                    f"the embedding returned {len(vectors)} vectors for {len(records)} texts"
                )
            for i, (record, vector) in enumerate(zip(records, vectors, strict=True)):
                record.dense = _dense_list(vector, f"embedding of texts[{i}]")
        if self._sources.sparse is not None:
            sparse = yield _embed_documents(self._sources.sparse, batch)
            if len(sparse) != len(records):
                raise InvalidInputError(
                    f"the sparse embedding returned {len(sparse)} vectors for {len(records)} texts"
                )
            for i, (record, vector) in enumerate(zip(records, sparse, strict=True)):
                record.sparse = _sparse_to_dict(vector, f"sparse embedding of texts[{i}]")
        store = self._store
        stored: list[str] = yield call_async(
            store.add, store.aadd, records, batch_size=batch_size, show_progress=show_progress
        )
        return stored

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store ``texts`` (any iterable, generators included) under the caller's ``ids``.

        Ids are kept exactly as given (a uuid4 string is generated where one is missing);
        adding an existing id replaces that document.  ``batch_size`` and
        ``show_progress`` are accepted as keyword arguments.
        """
        return run(self._add_steps(texts, metadatas, ids, dict(kwargs)))

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async :meth:`add_texts`."""
        return await arun(self._add_steps(texts, metadatas, ids, dict(kwargs)))

    @staticmethod
    def _split_documents(
        documents: Iterable[Document], kwargs: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, Any]], list[str | None]]:
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise InvalidTypeError(
                    f"documents[{i}] is {type(doc).__name__}, expected a langchain Document"
                )
        # Explicit ids win over Document.id, as in LangChain's base class.
        ids = kwargs.pop("ids", None)
        id_list: list[str | None] = [d.id for d in docs] if ids is None else list(ids)
        return [d.page_content for d in docs], [d.metadata for d in docs], id_list

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Store ``documents``; ``Document.id`` is used as the id unless ``ids=`` is given."""
        texts, metadatas, ids = self._split_documents(documents, kwargs)
        return run(self._add_steps(texts, metadatas, ids, kwargs))

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async :meth:`add_documents`."""
        texts, metadatas, ids = self._split_documents(documents, kwargs)
        return await arun(self._add_steps(texts, metadatas, ids, kwargs))

    # ------------------------------------------------------------------- searching

    def _query_mode(self, kwargs: dict[str, Any], default: str | None = None) -> str:
        mode = kwargs.pop("mode", None)
        alias = kwargs.pop("retrieval_mode", None)
        if mode is not None and alias is not None:
            raise InvalidInputError("pass either mode or retrieval_mode, not both")
        chosen = mode if mode is not None else alias
        return self._check_mode(chosen) if chosen is not None else (default or self._mode)

    @staticmethod
    def _check_k(k: Any, name: str = "k") -> int:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {k!r}")
        return k

    def _search_steps(
        self,
        query: str | None,
        k: int,
        kwargs: dict[str, Any],
        *,
        dense: list[float] | None = None,
        sparse: dict[int, float] | None = None,
        default_mode: str | None = None,
    ) -> Steps[list[tuple[Document, float]]]:
        """Plan a search, obtain any query vectors the store cannot compute, run it, translate the hits."""
        k = self._check_k(k)
        if query is not None and not isinstance(query, str):
            raise InvalidTypeError(f"query must be a str, got {type(query).__name__}")
        mode = self._query_mode(kwargs, default_mode)
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        unknown = set(kwargs) - _QUERY_OPTIONS
        if unknown:
            raise InvalidInputError(
                f"unexpected search arguments {sorted(unknown)}; "
                f"supported: filter, mode, {sorted(_QUERY_OPTIONS)}"
            )
        if "fusion" in kwargs:
            kwargs["fusion"] = _fusion(kwargs["fusion"])
        if query is not None and dense is None and mode != "sparse" and self._sources.dense is not None:
            dense = _dense_list((yield _embed_query(self._sources.dense, query)), "query embedding")
        if query is not None and sparse is None and mode != "dense" and self._sources.sparse is not None:
            sparse = _sparse_to_dict(
                (yield _embed_query(self._sources.sparse, query)), "query sparse embedding"
            )
        # The store encodes the text itself only when it has an encoder.
        text = query if self._sources.encoder is not None else None
        store = self._store
        hits: list[Hit] = yield call_async(
            store.query,
            store.aquery,
            text,
            dense=dense,
            sparse=sparse,
            mode=mode,
            limit=k,
            filter=flt,
            **kwargs,
        )
        return _documents(hits)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents most relevant to ``query``.

        Keyword arguments: ``filter`` (dict of metadata conditions or a Qdrant
        ``Filter``), ``mode``, and the store's search options (``fusion``, ``rrf_k``,
        ``dense_weight``, ``sparse_weight``, ``candidate_k``, ``hnsw_ef``, ``exact``,
        ``rescore``, ``oversampling``, ``score_threshold``, ``offset``).
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Async :meth:`similarity_search`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search`, with each document's score (higher is better)."""
        return run(self._search_steps(query, k, dict(kwargs)))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score`."""
        return await arun(self._search_steps(query, k, dict(kwargs)))

    def _by_vector_steps(
        self, embedding: Any, k: int, kwargs: dict[str, Any]
    ) -> Steps[list[tuple[Document, float]]]:
        dense = _dense_list(embedding, "embedding")
        sparse_vector = kwargs.pop("sparse_vector", None)
        sparse = None if sparse_vector is None else _sparse_to_dict(sparse_vector, "sparse_vector")
        # Only a dense vector is given unless sparse_vector is: search densely by default.
        default_mode = "hybrid" if sparse is not None else "dense"
        return (
            yield from self._search_steps(
                None, k, kwargs, dense=dense, sparse=sparse, default_mode=default_mode
            )
        )

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a dense query vector (``sparse_vector=`` adds a sparse one)."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`similarity_search_by_vector`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search_by_vector`, with scores."""
        return run(self._by_vector_steps(embedding, k, dict(kwargs)))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score_by_vector`."""
        return await arun(self._by_vector_steps(embedding, k, dict(kwargs)))

    # --------------------------------------------------------------- relevance

    def _relevance_fn(self, mode: str, kwargs: Mapping[str, Any]) -> Callable[[float], float]:
        """Map this store's raw scores for ``mode`` onto [0, 1] (1 = most relevant).

        The score semantics are the core's (see ``shared.query_planning``).
        """
        if kwargs.get("colbert_rerank"):
            return _unbounded_relevance  # MaxSim sums have no fixed range
        if mode == "dense":
            return _cosine_similarity_relevance
        if mode == "sparse":
            return _unbounded_relevance
        fusion = _fusion(kwargs.get("fusion", self._fusion))
        dense_w = float(kwargs.get("dense_weight", self._dense_weight))
        sparse_w = kwargs.get("sparse_weight", self._sparse_weight)
        sparse_w = float(DEFAULT_SPARSE_WEIGHT[FusionMethod(fusion)] if sparse_w is None else sparse_w)
        if fusion == "rrf":
            return _rrf_relevance(float(kwargs.get("rrf_k", self._rrf_k)), dense_w + sparse_w)
        if fusion == "dbsf":
            return _dbsf_relevance
        return _m3_relevance(dense_w, sparse_w)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] for the default retrieval mode and fusion."""
        return self._relevance_fn(self._mode, {})

    def _relevance_plan(self, kwargs: dict[str, Any]) -> Callable[[float], float]:
        mode = kwargs.get("mode", kwargs.get("retrieval_mode"))
        mode = self._mode if mode is None else _mode(mode)
        return self._relevance_fn(mode, kwargs)

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        fn = self._relevance_plan(kwargs)
        return [(doc, fn(score)) for doc, score in self.similarity_search_with_score(query, k, **kwargs)]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        fn = self._relevance_plan(kwargs)
        return [
            (doc, fn(score)) for doc, score in await self.asimilarity_search_with_score(query, k, **kwargs)
        ]

    # --------------------------------------------------------------------- MMR

    def _mmr_steps(
        self,
        query: str | None,
        embedding: Any,
        k: int,
        fetch_k: int,
        lambda_mult: float,
        kwargs: dict[str, Any],
    ) -> Steps[list[Document]]:
        k = self._check_k(k)
        fetch_k = self._check_k(fetch_k, "fetch_k")
        if (
            isinstance(lambda_mult, bool)
            or not isinstance(lambda_mult, int | float)
            or not 0 <= lambda_mult <= 1
        ):
            raise InvalidInputError(f"lambda_mult must be a number between 0 and 1, got {lambda_mult!r}")
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        if kwargs:
            raise InvalidInputError(f"unexpected MMR arguments {sorted(kwargs)}; supported: filter")
        if not self._sources.has_dense:
            raise InvalidInputError("max marginal relevance search needs dense vectors; this store has none")
        dense = None if embedding is None else _dense_list(embedding, "embedding")
        if query is not None and not isinstance(query, str):
            raise InvalidTypeError(f"query must be a str, got {type(query).__name__}")
        if dense is None and self._sources.dense is not None:
            dense = _dense_list((yield _embed_query(self._sources.dense, query)), "query embedding")
        text = query if dense is None else None
        store = self._store
        hits: list[Hit] = yield call_async(
            store.mmr,
            store.ammr,
            text,
            dense=dense,
            limit=k,
            fetch_k=max(fetch_k, k),
            lambda_mult=float(lambda_mult),
            filter=flt,
        )
        return [doc for doc, _ in _documents(hits)]

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents relevant to ``query`` yet diverse (MMR over ``fetch_k`` dense candidates)."""
        return run(self._mmr_steps(query, None, k, fetch_k, lambda_mult, dict(kwargs)))

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search`."""
        return await arun(self._mmr_steps(query, None, k, fetch_k, lambda_mult, dict(kwargs)))

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """MMR from a dense query vector."""
        return run(self._mmr_steps(None, embedding, k, fetch_k, lambda_mult, dict(kwargs)))

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search_by_vector`."""
        return await arun(self._mmr_steps(None, embedding, k, fetch_k, lambda_mult, dict(kwargs)))

    # ----------------------------------------------------------- get / delete

    @staticmethod
    def _id_list(ids: Any, method: str) -> list[str]:
        if isinstance(ids, str) or not isinstance(ids, Iterable):
            raise InvalidTypeError(f"{method} expects a list of ids, got {type(ids).__name__}")
        items = list(ids)
        for i, id_ in enumerate(items):
            if not isinstance(id_, str):
                raise InvalidTypeError(f"{method}: ids[{i}] is {type(id_).__name__} {id_!r}, expected str")
        return items

    def _get_steps(self, ids: Sequence[str]) -> Steps[list[Document]]:
        id_list = self._id_list(ids, "get_by_ids")
        if not id_list:
            return []
        records: list[Record] = yield call_async(self._store.get, self._store.aget, id_list)
        return _record_documents(records)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids, in the order given (missing ids are skipped)."""
        return run(self._get_steps(ids))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids`."""
        return await arun(self._get_steps(ids))

    def _delete_steps(self, ids: Any, kwargs: dict[str, Any]) -> Steps[bool]:
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        if kwargs:
            raise InvalidInputError(f"unexpected delete arguments {sorted(kwargs)}; supported: ids, filter")
        if ids is None and flt is None:
            # LangChain leaves delete() with no ids store-defined; deleting everything by accident loses data.
            raise InvalidInputError("delete needs ids or a filter; to remove every document call clear()")
        id_list = None if ids is None else self._id_list(ids, "delete")
        if id_list is not None and not id_list and flt is None:
            return True
        yield call_async(self._store.delete, self._store.adelete, id_list, filter=flt)
        return True

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id and/or ``filter=``; missing ids are ignored. Returns True."""
        return run(self._delete_steps(ids, dict(kwargs)))

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async :meth:`delete`."""
        return await arun(self._delete_steps(ids, dict(kwargs)))

    def _count_steps(self, filter: Any) -> Steps[int]:
        flt = to_qdrant_filter(filter)
        count: int = yield call_async(self._store.count, self._store.acount, flt)
        return count

    def count(self, filter: Mapping[str, Any] | models.Filter | None = None) -> int:
        """Number of stored documents (matching ``filter``)."""
        return run(self._count_steps(filter))

    async def acount(self, filter: Mapping[str, Any] | models.Filter | None = None) -> int:
        """Async :meth:`count`."""
        return await arun(self._count_steps(filter))

    def clear(self) -> None:
        """Remove every document (the collection and its settings stay)."""
        self._store.clear()

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self._store.aclear()

    # --------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Release the store (the embedded store's lock, the clients)."""
        self._store.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self._store.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Never include api_key or client objects.
        return (
            f"{type(self).__name__}(collection_name={self.collection_name!r}, retrieval_mode={self._mode!r}, "
            f"fusion={self._fusion!r}, remote={self._store.is_remote})"
        )

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_existing_collection(
        cls,
        collection_name: str,
        embedding: Embeddings | None = None,
        *,
        sparse_embedding: Any | None = None,
        retrieval_mode: str | Any | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        vector_name: str | None = None,
        sparse_vector_name: str | None = None,
        content_payload_key: str | None = None,
        metadata_payload_key: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Open an existing collection, with langchain-qdrant's keyword names.

        A collection langchain-qdrant or llama-index wrote keeps its layout (detected, or
        langchain-qdrant's with the ``vector_name`` / ``sparse_vector_name`` /
        ``content_payload_key`` / ``metadata_payload_key`` given). Other keyword arguments
        are the constructor's (``path=``, ``fusion=``, ``aclient=``, ...).
        """
        named = {
            "vector_name": vector_name,
            "sparse_vector_name": sparse_vector_name,
            "content_payload_key": content_payload_key,
            "metadata_payload_key": metadata_payload_key,
        }
        if any(v is not None for v in named.values()):
            if kwargs.get("layout") is not None:
                raise InvalidInputError(f"pass either layout= or {sorted(k for k, v in named.items() if v)}")
            kwargs["layout"] = langchain_layout(**{k: v for k, v in named.items() if v is not None})
        return cls(
            embedding,
            sparse_embedding=sparse_embedding,
            collection_name=collection_name,
            retrieval_mode=retrieval_mode,
            url=url,
            api_key=api_key,
            client=client,
            **kwargs,
        )

    @classmethod
    def _split_init_kwargs(cls, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        params = inspect.signature(cls.__init__).parameters
        init = {k: v for k, v in kwargs.items() if k in params and k not in ("self", "embedding")}
        add = {k: v for k, v in kwargs.items() if k not in init}
        return init, add

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Create a store (constructor keyword arguments) and add ``texts`` to it."""
        init, add = cls._split_init_kwargs(kwargs)
        store = cls(embedding, **init)
        try:
            store.add_texts(texts, metadatas, ids=ids, **add)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Async :meth:`from_texts`."""
        init, add = cls._split_init_kwargs(kwargs)
        store = cls(embedding, **init)
        try:
            await store.aadd_texts(texts, metadatas, ids=ids, **add)
        except BaseException:
            await store.aclose()
            raise
        return store


# ------------------------------------------------------------ relevance functions


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _cosine_similarity_relevance(score: float) -> float:
    """Cosine similarity in [-1, 1] -> [0, 1]."""
    return _clip01((1.0 + score) / 2.0)


def _unbounded_relevance(score: float) -> float:
    """Sparse dot products (and MaxSim sums) are >= 0 and unbounded: a monotone squash onto [0, 1)."""
    return 0.0 if score <= 0 else score / (1.0 + score)


def _rrf_relevance(rrf_k: float, total_weight: float) -> Callable[[float], float]:
    """Weighted RRF is ``sum w / (k + rank)`` with 0-based ranks: the best score is ``sum(w) / k``."""
    best = total_weight / rrf_k if rrf_k > 0 else math.inf

    def fn(score: float) -> float:
        return _clip01(score / best) if 0 < best < math.inf else (1.0 if score > 0 else 0.0)

    return fn


def _dbsf_relevance(score: float) -> float:
    """DBSF normalises each of the two lists to [0, 1] and sums them (no weights)."""
    return _clip01(score / 2.0)


def _m3_relevance(dense_weight: float, sparse_weight: float) -> Callable[[float], float]:
    """M3's weighted sum: a cosine part in [-w_d, w_d] plus an unbounded sparse part >= 0.

    ``1 - exp(-(score + w_d) / w_d)`` is strictly increasing, 0 for the worst possible
    score and below 1 for any finite one (a sum cannot be split back into its parts).
    """
    scale = dense_weight if dense_weight > 0 else max(sparse_weight, 1e-9)
    offset = max(dense_weight, 0.0)

    def fn(score: float) -> float:
        return _clip01(1.0 - math.exp(-max(score + offset, 0.0) / scale))

    return fn
