"""``HybridQdrantRetriever``: a drop-in LlamaIndex retriever over :class:`HybridQdrantVectorStore`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.ingestion import run_transformations
from llama_index.core.schema import BaseNode, Document, NodeWithScore, QueryBundle, TransformComponent
from llama_index.core.settings import Settings
from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryMode

from shared.errors import InvalidInputError, InvalidTypeError
from shared.options import refuse_unknown_keywords
from shared.query.options import uses_dense_query
from shared.validation import positive_int

from .vector_store import HybridQdrantVectorStore

__all__ = ["HybridQdrantRetriever"]

#: Mode names accepted besides LlamaIndex's own ("default" is dense).
_MODE_ALIASES = {"dense": VectorStoreQueryMode.DEFAULT}
#: The core retrieval mode of each supported LlamaIndex mode (MMR diversifies dense hits).
_CORE_MODES = {
    VectorStoreQueryMode.DEFAULT: "dense",
    VectorStoreQueryMode.SPARSE: "sparse",
    VectorStoreQueryMode.HYBRID: "hybrid",
    VectorStoreQueryMode.MMR: "dense",
}
#: The retriever's keywords that are ``VectorStoreQuery`` fields of the same name (its settings).
_QUERY_SETTINGS = (
    "similarity_top_k",
    "mode",
    "filters",
    "alpha",
    "sparse_top_k",
    "hybrid_top_k",
    "doc_ids",
    "node_ids",
    "mmr_threshold",
)


def _parse_mode(mode: str | VectorStoreQueryMode) -> VectorStoreQueryMode:
    if isinstance(mode, str) and mode in _MODE_ALIASES:
        return _MODE_ALIASES[mode]
    try:
        parsed = VectorStoreQueryMode(mode)
    except ValueError:
        parsed = None
    if parsed not in _CORE_MODES:
        raise InvalidInputError(f"mode must be one of dense, sparse, hybrid, mmr; got {mode!r}")
    assert parsed is not None
    return parsed


def check_documents(documents: Any) -> None:
    """Refuse anything but a list of LlamaIndex ``Document``s, naming the offending item."""
    if isinstance(documents, Document) or not isinstance(documents, Sequence):
        raise InvalidTypeError(f"documents must be a list of Document, got {type(documents).__name__}")
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InvalidTypeError(
                f"documents[{i}] is a {type(doc).__name__}, expected a LlamaIndex Document"
            )


def split_documents(
    documents: Sequence[Document], transformations: Sequence[TransformComponent] | None, show_progress: bool
) -> list[BaseNode]:
    """``documents`` split by ``transformations`` (None: LlamaIndex's node parser, ``Settings``)."""
    steps = list(transformations) if transformations is not None else list(Settings.transformations)
    return list(run_transformations(list(documents), steps, show_progress=show_progress))


class HybridQdrantRetriever(BaseRetriever):
    """Retrieve nodes from a :class:`HybridQdrantVectorStore` (dense, sparse, hybrid or MMR).

    ``embed_model`` computes the dense query vector; when omitted, the store's own
    models compute every query vector.  ``alpha`` (hybrid only) in [0, 1] weighs dense
    against sparse: 0 is sparse only, 1 dense only.  ``vector_store_kwargs`` go to
    :meth:`HybridQdrantVectorStore.query` (e.g. ``fusion``, ``hnsw_ef``, ``qdrant_filters``).
    """

    @refuse_unknown_keywords
    def __init__(
        self,
        vector_store: HybridQdrantVectorStore,
        embed_model: BaseEmbedding | None = None,
        similarity_top_k: int = 10,
        mode: str | VectorStoreQueryMode = "hybrid",
        filters: MetadataFilters | None = None,
        alpha: float | None = None,
        sparse_top_k: int | None = None,
        hybrid_top_k: int | None = None,
        doc_ids: list[str] | None = None,
        node_ids: list[str] | None = None,
        mmr_threshold: float | None = None,
        vector_store_kwargs: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(vector_store, HybridQdrantVectorStore):
            raise InvalidTypeError(
                f"vector_store must be a HybridQdrantVectorStore, got {type(vector_store).__name__}"
            )
        if embed_model is not None and not isinstance(embed_model, BaseEmbedding):
            raise InvalidTypeError(
                f"embed_model must be a LlamaIndex BaseEmbedding, got {type(embed_model).__name__}"
            )
        positive_int(similarity_top_k, "similarity_top_k")
        if filters is not None and not isinstance(filters, MetadataFilters):
            raise InvalidTypeError(f"filters must be MetadataFilters, got {type(filters).__name__}")
        self._vector_store = vector_store
        self._embed_model = embed_model
        # The settings are one VectorStoreQuery; each query is a copy with its text and vector.
        settings = {**locals(), "mode": _parse_mode(mode)}
        self._settings = VectorStoreQuery(**{name: settings[name] for name in _QUERY_SETTINGS})
        self._kwargs = dict(vector_store_kwargs or {})
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def vector_store(self) -> HybridQdrantVectorStore:
        return self._vector_store

    @property
    def similarity_top_k(self) -> int:
        return self._settings.similarity_top_k

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        embed_model: BaseEmbedding | None = None,
        *,
        transformations: Sequence[TransformComponent] | None = None,
        show_progress: bool = False,
        similarity_top_k: int = 10,
        mode: str | VectorStoreQueryMode = "hybrid",
        filters: MetadataFilters | None = None,
        alpha: float | None = None,
        **store_kwargs: Any,
    ) -> HybridQdrantRetriever:
        """Split ``documents`` (``transformations``, default LlamaIndex's node parser), store
        them in a new :class:`HybridQdrantVectorStore` built with ``embed_model`` and
        ``store_kwargs`` (it embeds the nodes), and return a retriever over it."""
        check_documents(documents)
        store = HybridQdrantVectorStore(embed_model=embed_model, **store_kwargs)
        with store.closed_on_error():
            store.add(split_documents(documents, transformations, show_progress))
        return cls(store, similarity_top_k=similarity_top_k, mode=mode, filters=filters, alpha=alpha)

    # -- retrieval: one planning step, sync and async calls around it ---------------

    def _needs_dense(self, bundle: QueryBundle) -> bool:
        """Whether to embed the query here (LlamaIndex's retrievers embed ``embedding_strs``)."""
        if self._embed_model is None or bundle.embedding is not None:
            return False
        return uses_dense_query(_CORE_MODES[self._settings.mode], self._settings.alpha)

    def _query(self, bundle: QueryBundle, embedding: list[float] | None) -> VectorStoreQuery:
        return dataclasses.replace(self._settings, query_embedding=embedding, query_str=bundle.query_str)

    @staticmethod
    def _scored(result: Any) -> list[NodeWithScore]:
        nodes = result.nodes or []
        scores = result.similarities or [None] * len(nodes)
        return [NodeWithScore(node=n, score=s) for n, s in zip(nodes, scores, strict=True)]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding
        if self._needs_dense(query_bundle):
            assert self._embed_model is not None
            embedding = self._embed_model.get_agg_embedding_from_queries(query_bundle.embedding_strs)
        result = self._vector_store.query(self._query(query_bundle, embedding), **self._kwargs)
        return self._scored(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding
        if self._needs_dense(query_bundle):
            assert self._embed_model is not None
            embedding = await self._embed_model.aget_agg_embedding_from_queries(query_bundle.embedding_strs)
        result = await self._vector_store.aquery(self._query(query_bundle, embedding), **self._kwargs)
        return self._scored(result)
