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
  ``SparseEmbeddings`` methods) becomes a core encoder through
  :func:`shared.encoders.encoder_from_functions`, handed its LangChain embed methods;
  the store then encodes with it like with ours (the dense size is learned from the first
  add, the collection records the model).
"""

from __future__ import annotations

import copy
import inspect
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from qdrant_client import models
from typing_extensions import Self

from shared.config import ADD_BATCH_SIZE, StoreConfig, connection_from
from shared.encoders import encoder_from_functions, pair_encoders
from shared.errors import InvalidInputError, InvalidTypeError
from shared.hierarchy import Hierarchy
from shared.late_chunking import DEFAULT_DOCUMENT_KEY, chunk_from_metadata, documents_by_key
from shared.layouts import Layout, langchain_layout
from shared.lifecycle import Closing
from shared.options import check_options, refuse_unknown_keywords
from shared.query.options import SEARCH_OPTIONS, choose_mode
from shared.retry import RetryPolicy
from shared.types import Encoder, Hit, Record
from shared.validation import id_list, positive_int, text_list

from .embeddings import BGEM3Embeddings, BGEM3SparseEmbeddings
from .filters import group_key, to_qdrant_filter

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient, QdrantClient

    from shared.store import HybridStore

__all__ = ["HybridQdrantVectorStore"]

#: The store options' defaults (shared.config.StoreConfig): this class's keywords take theirs.
_D = StoreConfig()
#: The keywords ``add_texts`` / ``add_documents`` take besides texts, metadatas and ids.
_ADD_OPTIONS = frozenset({"batch_size", "show_progress", "ids", "source_documents"})


def _is_sparse_embeddings(obj: Any) -> bool:
    """Duck-typed check for langchain-qdrant's ``SparseEmbeddings`` interface."""
    return callable(getattr(obj, "embed_documents", None)) and callable(getattr(obj, "embed_query", None))


def _documents(hits: Sequence[Hit]) -> list[tuple[Document, float]]:
    # Metadata is returned as stored (no `_id`/score keys), plus what the query asked for
    # (a grouped query's group id: Hit.annotations).
    return [
        (
            Document(page_content=h.text or "", metadata={**h.metadata, **h.annotations()}, id=h.id),
            float(h.score),
        )
        for h in hits
    ]


def _record_documents(records: Sequence[Record]) -> list[Document]:
    return [Document(page_content=r.text or "", metadata=dict(r.metadata), id=r.id) for r in records]


def _source_pairs(documents: Any) -> list[tuple[Mapping[str, Any], str]]:
    """The whole documents chunks were split from (``source_documents=``), as (metadata, text)."""
    if isinstance(documents, Document) or not isinstance(documents, Sequence):
        raise InvalidTypeError("source_documents must be a list of langchain Documents")
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InvalidTypeError(f"source_documents[{i}] is {type(doc).__name__}, expected a Document")
    return [(d.metadata, d.page_content) for d in documents]


def _model_id(model: Any) -> str:
    name = getattr(model, "model", None) or getattr(model, "model_name", None)
    return f"langchain:{type(model).__name__}" + (f":{name}" if isinstance(name, str) and name else "")


def _store_encoder(embedding: Embeddings | None, sparse_embedding: Any | None) -> Encoder:
    """The one core encoder for the two embeddings: ours as they are, foreign ones wrapped."""
    if embedding is not None and not isinstance(embedding, Embeddings):
        raise InvalidTypeError(
            f"embedding must be a LangChain Embeddings (e.g. BGEM3Embeddings), got {type(embedding).__name__}"
        )
    if sparse_embedding is not None and not (
        _is_sparse_embeddings(sparse_embedding) or isinstance(sparse_embedding, Encoder)
    ):
        raise InvalidTypeError(
            "sparse_embedding must have embed_documents/embed_query returning sparse vectors "
            f"(e.g. BGEM3SparseEmbeddings), got {type(sparse_embedding).__name__}"
        )
    dense: Encoder | None = None
    if isinstance(embedding, BGEM3Embeddings):
        dense = embedding.encoder
    elif embedding is not None:
        dense = encoder_from_functions(
            model_id=_model_id(embedding),
            embed_documents=embedding.embed_documents,
            embed_query=embedding.embed_query,
        )
    sparse: Encoder | None = None
    if isinstance(sparse_embedding, BGEM3SparseEmbeddings):
        sparse = sparse_embedding.encoder
    elif isinstance(sparse_embedding, Encoder):  # a core encoder, e.g. shared.encoders.Bm25Encoder
        sparse = sparse_embedding
    elif sparse_embedding is not None:
        sparse = encoder_from_functions(
            model_id=_model_id(sparse_embedding),
            sparse_documents=sparse_embedding.embed_documents,
            sparse_query=sparse_embedding.embed_query,
            sparse_kind=f"langchain:{type(sparse_embedding).__name__}",
        )
    encoder = pair_encoders(dense, sparse)
    if encoder is None:
        raise InvalidInputError("pass an embedding, a sparse_embedding, or both")
    return encoder


class HybridQdrantVectorStore(Closing, VectorStore):
    """Dense, sparse or hybrid (fused) retrieval from Qdrant with BGE-M3.

    Args:
        embedding: dense embeddings; a :class:`BGEM3Embeddings` is encoded by the core
            (with BGE-M3 the sparse vectors come from the same forward pass), any other
            LangChain ``Embeddings`` works in dense mode.
        sparse_embedding: sparse embeddings (BGE-M3 / SPLADE via
            :class:`BGEM3SparseEmbeddings`, or anything implementing langchain-qdrant's
            ``SparseEmbeddings``, or a core encoder such as ``shared.encoders.Bm25Encoder()``
            for BM25 with the IDF kept by the engine); derived automatically when
            ``embedding`` is BGE-M3.
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
        background_index_min: embedded store: an index build of at least this many unindexed
            points runs in a writer process on a copy of the shard, so queries keep flowing
            (None: the engine's indexing threshold; 0: never, index in this process).
        mrl_dim: size of the Matryoshka funnel's first-stage vectors (None: off).
        bm25: BM25 as a third signal beside the learned sparse model (``True``, a language, or
            a ``shared.encoders.bm25.Bm25Encoder``), fused with weight ``bm25_weight`` (None:
            per fusion); the engine keeps its IDF. For dense + BM25 alone, BM25 is the sparse
            model (``HybridEnsembleRetriever``).
        fusion: ``"rrf"``, ``"dbsf"`` or ``"m3"`` with ``rrf_k``, ``dense_weight``,
            ``sparse_weight`` and ``candidate_k`` (candidates per side before fusion).
        sparse_normalization: m3 fusion only: ``"none"`` adds the raw sparse dot product,
            ``"query"`` divides it by the query's own ``q . q``; ``"auto"`` (default) is
            ``"none"`` for BGE-M3 lexical weights, ``"query"`` for other sparse models.
        colbert: store ColBERT vectors for re-ranking (BGE-M3 only; False: follow the collection).
        sparse_idf: IDF modifier on the sparse vectors (False: follow the collection).
        mrl_quantization: quantization of the MRL copy (None: the collection's, ``"binary"``
            for a new one).
        query_batch_wait_ms, query_batch_size: concurrent queries are encoded in one pass
            (``batch``/``abatch``, threads, ``asyncio.gather``); the most an idle encoder waits
            for company once queries overlap (0: off; a lone query never waits) and the most
            queries per pass.
        batch_size: documents encoded and written per batch by ``add_texts``.
        recreate: drop a collection built by another encoder instead of refusing it.
        hierarchy: how chunks relate (``shared.hierarchy.Hierarchy`` or a dict of its fields:
            ``levels``, ``level_key``, ``parent_key``, ``position_key``; e.g.
            ``{"parent_key": "metadata.source", "position_key": "metadata.start_index"}`` for
            a splitter's chunks); used by ``levels``, ``unit``, ``context_window`` and
            ``with_parent`` searches.
        late_chunking: each chunk's vectors pooled from one pass over its whole document
            (also on when the embeddings were built with ``late_chunking=True``). Chunks come
            from a splitter with ``add_start_index=True`` and name their document in
            ``metadata[late_chunking_key]`` (``"source"``, as LangChain's loaders set it).
            The document's text is given with ``add_documents(chunks, source_documents=docs)``
            (each chunk checked against it), else rebuilt from the chunks (gaps between them
            filled with spaces). The collection records it: writers must all late-chunk or none.
        layout: where the collection keeps vectors and payload (``"m3-hybrid"``, ``"langchain"``,
            ``"llama-index"`` or a ``shared.layouts.Layout``); None: detected from an existing
            collection (one written by langchain-qdrant or llama-index's Qdrant store keeps its
            layout, so those libraries keep reading it), this package's for a new one.
        tenant, tenant_key: scope every operation to one tenant of a shared collection
            (``shared.tenancy``; ``shared.ALL``: the explicit cross-tenant view).
        indexed_fields: metadata fields given a payload index (``{"year": "integer"}``).
        acorn: filtered dense searches use ACORN. shard_key: a server's custom shard key (or
            a rule tenant -> shard key, ``shared.tenancy.TieredShards``) every request is routed to.

    Scores from ``similarity_search_with_score`` are similarities (higher is better):
    cosine for dense, dot product for sparse, the fused score for hybrid.  The store is
    a context manager; :meth:`close` releases the embedded store's lock.
    """

    @refuse_unknown_keywords
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
        quantization: str | Any = _D.quantization,
        on_disk: bool | None = _D.on_disk,
        compact_every: int | None = _D.compact_every,
        background_index_min: int | None = _D.background_index_min,
        mrl_dim: int | None = _D.mrl_dim,
        bm25: bool | str | Any = _D.bm25,
        mrl_quantization: str | Any = _D.mrl_quantization,
        fusion: str | Any = _D.fusion,
        rrf_k: int = _D.rrf_k,
        dense_weight: float = _D.dense_weight,
        sparse_weight: float | None = _D.sparse_weight,
        bm25_weight: float | None = _D.bm25_weight,
        candidate_k: int = _D.candidate_k,
        sparse_normalization: str = _D.sparse_normalization,
        query_batch_wait_ms: float = _D.query_batch_wait_ms,
        query_batch_size: int = _D.query_batch_size,
        colbert: bool = _D.colbert,
        sparse_idf: bool = _D.sparse_idf,
        recreate: bool = _D.recreate,
        hierarchy: Hierarchy | Mapping[str, Any] | None = _D.hierarchy,
        batch_size: int = ADD_BATCH_SIZE,
        layout: str | Layout | None = _D.layout,
        late_chunking: bool = _D.late_chunking,
        late_chunking_key: str = DEFAULT_DOCUMENT_KEY,
        tenant: str | Any = _D.tenant,
        tenant_key: str = _D.tenant_key,
        indexed_fields: Mapping[str, str] | None = _D.indexed_fields,
        acorn: bool = _D.acorn,
        shard_key: str | Any = _D.shard_key,
    ) -> None:
        from shared.store import HybridStore

        self._embedding = embedding
        self._sparse_embedding = sparse_embedding
        encoder = _store_encoder(embedding, sparse_embedding)
        self._outputs = encoder.outputs
        self._retrieval_mode = self._checked_mode(retrieval_mode)
        self._batch_size = positive_int(batch_size, "batch_size")
        if not isinstance(late_chunking_key, str) or not late_chunking_key:
            raise InvalidInputError(
                f"late_chunking_key must be a metadata key (str), got {late_chunking_key!r}"
            )
        self._document_key = late_chunking_key
        # Embeddings built with late_chunking=True turn it on for the store too.
        late_chunking = late_chunking or any(
            isinstance(m, (BGEM3Embeddings, BGEM3SparseEmbeddings)) and m.late_chunking
            for m in (embedding, sparse_embedding)
        )
        self._store: HybridStore = HybridStore(
            collection_name,
            encoder=encoder,
            **connection_from(locals()),
            # The keywords that are StoreConfig fields, read back by name (their names
            # and defaults are checked against StoreConfig by tests/shared/test_options.py).
            config=StoreConfig.from_values(
                locals(), sparse="sparse" in encoder.outputs, retrieval_mode=self._retrieval_mode
            ),
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
        return self._retrieval_mode

    @property
    def store(self) -> HybridStore:
        """The core store (shared with the LlamaIndex adapter's API)."""
        return self._store

    def for_tenant(self, tenant: str) -> Self:
        """This store scoped to ``tenant`` over the same open collection (``HybridStore.for_tenant``)."""
        view = copy.copy(self)
        view._store = self._store.for_tenant(tenant)
        return view

    @property
    def collection_name(self) -> str:
        """The Qdrant collection's name."""
        return self._store.collection_name

    def _checked_mode(self, mode: Any) -> str:
        """``mode`` checked against the models (None: the default they allow), as a string."""
        outputs = self._outputs
        return choose_mode(mode, has_dense="dense" in outputs, has_sparse="sparse" in outputs).value

    # ---------------------------------------------------------------------- adding

    def _records_for(
        self,
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None,
        ids: Iterable[str | None] | None,
    ) -> list[Record]:
        """Records of the caller's texts/metadatas/ids, all checked before anything is written."""
        # Materialised first so that a length mismatch is caught before anything is written.
        text_list_ = text_list(texts)
        n = len(text_list_)
        meta_list: list[Mapping[str, Any] | None] = [None] * n if metadatas is None else list(metadatas)
        if len(meta_list) != n:
            raise InvalidInputError(f"got {len(meta_list)} metadatas for {n} texts")
        ids_given: list[str | None] = [None] * n if ids is None else list(ids)
        if len(ids_given) != n:
            raise InvalidInputError(f"got {len(ids_given)} ids for {n} texts")
        seen: dict[str, int] = {}
        records = []
        for i, (text, meta, id_) in enumerate(zip(text_list_, meta_list, ids_given, strict=True)):
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
            md = dict(meta or {})
            # Where the chunk sits in its document (a splitter's start_index): late chunking reads it.
            records.append(
                Record(
                    id=id_, text=text, metadata=md, chunk_of=chunk_from_metadata(md, self._document_key, text)
                )
            )
        return records

    def _add_args(
        self,
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, Any] | None] | None,
        ids: Iterable[str | None] | None,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """The core ``add`` arguments of an add (records, batch_size, show_progress)."""
        batch_size = kwargs.pop("batch_size", self._batch_size)
        # (_ADD_OPTIONS names the two keywords read here.)
        show_progress = kwargs.pop("show_progress", False)
        source = kwargs.pop("source_documents", None)
        if kwargs:
            raise InvalidInputError(f"unexpected keyword arguments for adding texts: {sorted(kwargs)}")
        records = self._records_for(texts, metadatas, ids)
        args = {"records": records, "batch_size": batch_size, "show_progress": show_progress}
        if source is not None:
            args["documents"] = documents_by_key(_source_pairs(source), self._document_key)
        return args

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
        return self._store.add(**self._add_args(texts, metadatas, ids, dict(kwargs)))

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async :meth:`add_texts`."""
        return await self._store.aadd(**self._add_args(texts, metadatas, ids, dict(kwargs)))

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
        doc_ids: list[str | None] = [d.id for d in docs] if ids is None else list(ids)
        return [d.page_content for d in docs], [d.metadata for d in docs], doc_ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Store ``documents``; ``Document.id`` is used as the id unless ``ids=`` is given."""
        texts, metadatas, ids = self._split_documents(documents, kwargs)
        return self._store.add(**self._add_args(texts, metadatas, ids, kwargs))

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async :meth:`add_documents`."""
        texts, metadatas, ids = self._split_documents(documents, kwargs)
        return await self._store.aadd(**self._add_args(texts, metadatas, ids, kwargs))

    # ------------------------------------------------------------------- searching

    def _query_mode(self, kwargs: dict[str, Any]) -> str | None:
        """The ``mode`` (or ``retrieval_mode``) of a search, checked; None: the store's default."""
        mode = kwargs.pop("mode", None)
        alias = kwargs.pop("retrieval_mode", None)
        if mode is not None and alias is not None:
            raise InvalidInputError("pass either mode or retrieval_mode, not both")
        chosen = mode if mode is not None else alias
        return None if chosen is None else self._checked_mode(chosen)

    def _search_args(
        self,
        query: str | None,
        k: int,
        kwargs: dict[str, Any],
        *,
        dense: Any = None,
        sparse: Any = None,
    ) -> dict[str, Any]:
        """Translate a search into the arguments of one core query (the store encodes the text)."""
        k = positive_int(k, "k")
        if query is not None and not isinstance(query, str):
            raise InvalidTypeError(f"query must be a str, got {type(query).__name__}")
        mode = self._query_mode(kwargs)
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        if "group_by" in kwargs:  # a metadata field, as in filters
            kwargs["group_by"] = group_key(kwargs["group_by"])
        unknown = set(kwargs) - SEARCH_OPTIONS
        if unknown:
            raise InvalidInputError(
                f"unexpected search arguments {sorted(unknown)}; "
                f"supported: filter, mode, {sorted(SEARCH_OPTIONS)}"
            )
        return {
            "text": query,
            "dense": dense,
            "sparse": sparse,
            "mode": mode,
            "limit": k,
            "filter": flt,
            **kwargs,
        }

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents most relevant to ``query``.

        Keyword arguments: ``filter`` (dict of metadata conditions or a Qdrant
        ``Filter``), ``mode``, and the store's search options (``fusion``, ``rrf_k``,
        ``dense_weight``, ``sparse_weight``, ``candidate_k``, ``hnsw_ef``, ``exact``,
        ``rescore``, ``oversampling``, ``score_threshold``, ``offset``).
        ``group_by="source"`` (a metadata field) returns one document per value of it, ``k``
        groups of ``group_size`` (default 1) documents, each with its ``group_id`` in metadata.
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Async :meth:`similarity_search`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search`, with each document's score (higher is better)."""
        return _documents(self._store.query(**self._search_args(query, k, dict(kwargs))))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score`."""
        return _documents(await self._store.aquery(**self._search_args(query, k, dict(kwargs))))

    def _by_vector_args(self, embedding: Any, k: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        # As given: the store checks it (a mapping, or LangChain's/Qdrant's indices + values).
        sparse = kwargs.pop("sparse_vector", None)
        # No text: the store searches with what is given (dense only -> dense, both -> hybrid).
        return self._search_args(None, k, kwargs, dense=embedding, sparse=sparse)

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
        return _documents(self._store.query(**self._by_vector_args(embedding, k, dict(kwargs))))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score_by_vector`."""
        return _documents(await self._store.aquery(**self._by_vector_args(embedding, k, dict(kwargs))))

    # --------------------------------------------------------------- relevance

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] for the default retrieval mode and fusion (the core's mapping)."""
        return self._store.relevance_function()

    def _relevance_function_for(self, kwargs: dict[str, Any]) -> Callable[[float], float]:
        """Relevance in [0, 1] of the scores of a search with ``kwargs`` (the core's mapping)."""
        options = {k: v for k, v in kwargs.items() if k in SEARCH_OPTIONS}
        mode = self._query_mode(dict(kwargs))
        return self._store.relevance_function(mode=mode, **options)

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        fn = self._relevance_function_for(kwargs)
        return [(doc, fn(score)) for doc, score in self.similarity_search_with_score(query, k, **kwargs)]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        fn = self._relevance_function_for(kwargs)
        return [
            (doc, fn(score)) for doc, score in await self.asimilarity_search_with_score(query, k, **kwargs)
        ]

    # --------------------------------------------------------------------- MMR

    def _mmr_args(
        self,
        query: str | None,
        embedding: Any,
        k: int,
        fetch_k: int,
        lambda_mult: float,
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Translate an MMR search into the arguments of the core ``mmr``."""
        k = positive_int(k, "k")
        fetch_k = positive_int(fetch_k, "fetch_k")
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        if kwargs:
            raise InvalidInputError(f"unexpected MMR arguments {sorted(kwargs)}; supported: filter")
        if query is not None and not isinstance(query, str):
            raise InvalidTypeError(f"query must be a str, got {type(query).__name__}")
        return {
            "text": query,
            "dense": embedding,
            "limit": k,
            "fetch_k": fetch_k,
            "lambda_mult": lambda_mult,
            "filter": flt,
        }

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents relevant to ``query`` yet diverse (MMR over ``fetch_k`` dense candidates)."""
        args = self._mmr_args(query, None, k, fetch_k, lambda_mult, dict(kwargs))
        return [doc for doc, _ in _documents(self._store.mmr(**args))]

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search`."""
        args = self._mmr_args(query, None, k, fetch_k, lambda_mult, dict(kwargs))
        return [doc for doc, _ in _documents(await self._store.ammr(**args))]

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """MMR from a dense query vector."""
        args = self._mmr_args(None, embedding, k, fetch_k, lambda_mult, dict(kwargs))
        return [doc for doc, _ in _documents(self._store.mmr(**args))]

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search_by_vector`."""
        args = self._mmr_args(None, embedding, k, fetch_k, lambda_mult, dict(kwargs))
        return [doc for doc, _ in _documents(await self._store.ammr(**args))]

    # ----------------------------------------------------------- get / delete

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids, in the order given (missing ids are skipped)."""
        return _record_documents(self._store.get(id_list(ids)))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids`."""
        return _record_documents(await self._store.aget(id_list(ids)))

    @staticmethod
    def _delete_args(ids: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The core ``delete`` arguments (ids, filter); None: nothing to delete."""
        flt = to_qdrant_filter(kwargs.pop("filter", None))
        if kwargs:
            raise InvalidInputError(f"unexpected delete arguments {sorted(kwargs)}; supported: ids, filter")
        if ids is None and flt is None:
            # LangChain leaves delete() with no ids store-defined; deleting everything by accident loses data.
            raise InvalidInputError("delete needs ids or a filter; to remove every document call clear()")
        doomed = None if ids is None else id_list(ids)
        if doomed is not None and not doomed and flt is None:
            return None
        return {"ids": doomed, "filter": flt}

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id and/or ``filter=``; missing ids are ignored. Returns True."""
        args = self._delete_args(ids, dict(kwargs))
        if args is not None:
            self._store.delete(**args)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async :meth:`delete`."""
        args = self._delete_args(ids, dict(kwargs))
        if args is not None:
            await self._store.adelete(**args)
        return True

    def count(self, filter: Mapping[str, Any] | models.Filter | None = None) -> int:
        """Number of stored documents (matching ``filter``)."""
        return self._store.count(to_qdrant_filter(filter))

    async def acount(self, filter: Mapping[str, Any] | models.Filter | None = None) -> int:
        """Async :meth:`count`."""
        return await self._store.acount(to_qdrant_filter(filter))

    def clear(self) -> None:
        """Remove every document (the collection and its settings stay)."""
        self._store.clear()

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self._store.aclear()

    # --------------------------------------------------------------- lifecycle

    def wait_indexed(self) -> None:
        """Wait until the index builds that adds left running are in (:meth:`HybridStore.wait_indexed`):
        an add returns with every document searchable, a large one before its HNSW index is built."""
        self._store.wait_indexed()

    async def await_indexed(self) -> None:
        """Async :meth:`wait_indexed`."""
        await self._store.await_indexed()

    def close(self) -> None:
        """Release the store (the embedded store's lock, the clients)."""
        self._store.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self._store.aclose()

    def __repr__(self) -> str:
        # Never include api_key or client objects.
        return (
            f"{type(self).__name__}(collection_name={self.collection_name!r}, "
            f"retrieval_mode={self._retrieval_mode!r}, fusion={self._store.query_defaults.fusion.value!r}, "
            f"remote={self._store.is_remote})"
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
    def _new(cls, embedding: Embeddings, kwargs: dict[str, Any]) -> tuple[Self, dict[str, Any]]:
        """A store built with the constructor's keywords in ``kwargs``, and the rest (``add_texts``')."""
        params = inspect.signature(cls.__init__).parameters
        init = {k: v for k, v in kwargs.items() if k in params and k not in ("self", "embedding")}
        add = {k: v for k, v in kwargs.items() if k not in init}
        # Anything neither the constructor nor add_texts takes is a typo: name it here.
        check_options(add, {*params, *_ADD_OPTIONS} - {"self", "embedding"}, cls.__name__)
        return cls(embedding, **init), add

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
        store, add = cls._new(embedding, kwargs)
        with store.closed_on_error():
            store.add_texts(texts, metadatas, ids=ids, **add)
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
        store, add = cls._new(embedding, kwargs)
        async with store.closed_on_error():
            await store.aadd_texts(texts, metadatas, ids=ids, **add)
        return store
