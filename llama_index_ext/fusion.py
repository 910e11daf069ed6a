"""``HybridFusionRetriever``: the replacement for ``QueryFusionRetriever([vector, BM25Retriever], mode=...)``.

Before (two retrievers, BM25 in memory, fused in Python)::

    index = VectorStoreIndex(nodes, embed_model=embed_model)
    bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=5)
    retriever = QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=5), bm25],
        similarity_top_k=5, num_queries=1, mode="reciprocal_rerank",
    )

After (dense + BM25 in one Qdrant collection, the IDF kept by the engine, fused in one request)::

    retriever = HybridFusionRetriever.from_nodes(
        nodes, embed_model, similarity_top_k=5, mode="reciprocal_rerank"
    )

``mode`` takes ``QueryFusionRetriever``'s modes (``FUSION_MODES`` or their strings) and
``retriever_weights`` (dense first, as in ``retrievers=[vector_retriever, bm25_retriever]``);
:mod:`shared.ensembles` maps them to the engine's fusions (reciprocal_rerank -> rrf,
dist_based_score and relative_score -> dbsf; simple and None -> the store's measured
default). There is no query generation (``num_queries=1``). This module only translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.constants import DEFAULT_SIMILARITY_TOP_K
from llama_index.core.schema import BaseNode, Document, MetadataMode, TransformComponent

from shared.encoders.bm25 import bm25_for_corpus
from shared.ensembles import from_query_fusion_mode
from shared.errors import InvalidTypeError
from shared.query.options import choose_mode

from .embeddings import BGEM3SparseEmbedding
from .retriever import HybridQdrantRetriever, check_documents, split_documents
from .vector_store import HybridQdrantVectorStore

__all__ = ["HybridFusionRetriever"]


class HybridFusionRetriever(HybridQdrantRetriever):
    """Dense + BM25 hybrid retrieval from one collection (see the module docstring)."""

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        embed_model: BaseEmbedding | None = None,
        *,
        mode: Any = None,
        similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
        retriever_weights: Sequence[float] | None = None,
        language: str = "english",
        **store_kwargs: Any,
    ) -> HybridFusionRetriever:
        """Store ``nodes`` with dense (``embed_model``) and BM25 vectors and return the retriever.

        BM25's ``avg_len`` is the mean length of the nodes' embedded text, as a BM25 index built
        from them has; ``language`` is its stemmer's. ``store_kwargs`` go to
        :class:`HybridQdrantVectorStore` (``path=``, ``client=``, ...).
        """
        if isinstance(nodes, BaseNode) or not isinstance(nodes, Sequence):
            raise InvalidTypeError(f"nodes must be a list of nodes, got {type(nodes).__name__}")
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InvalidTypeError(f"nodes[{i}] is a {type(node).__name__}, expected a LlamaIndex node")
        fusion = from_query_fusion_mode(mode, retriever_weights)
        bm25 = bm25_for_corpus([n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes], language)
        store = HybridQdrantVectorStore(
            embed_model=embed_model,
            sparse_embed_model=BGEM3SparseEmbedding.from_encoder(bm25),
            **{**fusion.store_options(), **store_kwargs},
        )
        with store.closed_on_error():
            store.add(list(nodes))
        mode = choose_mode(None, has_dense=embed_model is not None, has_sparse=True).value
        return cls(store, similarity_top_k=similarity_top_k, mode=mode)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        embed_model: BaseEmbedding | None = None,
        *,
        mode: Any = None,
        similarity_top_k: int = DEFAULT_SIMILARITY_TOP_K,
        retriever_weights: Sequence[float] | None = None,
        language: str = "english",
        transformations: Sequence[TransformComponent] | None = None,
        show_progress: bool = False,
        **store_kwargs: Any,
    ) -> HybridFusionRetriever:
        """Split ``documents`` (``transformations``, default: LlamaIndex's node parser), then
        :meth:`from_nodes`."""
        check_documents(documents)
        return cls.from_nodes(
            split_documents(documents, transformations, show_progress),
            embed_model,
            mode=mode,
            similarity_top_k=similarity_top_k,
            retriever_weights=retriever_weights,
            language=language,
            **store_kwargs,
        )
