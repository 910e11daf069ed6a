"""LangChain adapters for m3-hybrid: BGE-M3 dense + sparse embeddings and hybrid Qdrant retrieval.

* :class:`BGEM3Embeddings`: dense ``Embeddings`` (BGE-M3 or any supported dense model).
* :class:`BGEM3SparseEmbeddings`: sparse vectors (BGE-M3 or SPLADE), langchain-qdrant compatible.
* :class:`HybridQdrantVectorStore`: dense / sparse / hybrid ``VectorStore`` on Qdrant Edge or a server.
* :class:`HybridQdrantRetriever`: a retriever over that store.
* :class:`HybridParentDocumentRetriever`: ``ParentDocumentRetriever`` with the parents in the
  same collection as their chunks (no second store).
* :class:`HybridEnsembleRetriever`: the one-line replacement for ``EnsembleRetriever``
  over ``BM25Retriever`` + a vector retriever (dense + BM25 in one collection).

``RetrievalMode`` and ``FusionMethod`` are re-exported; plain strings work everywhere too.
"""

from shared.query.modes import FusionMethod, RetrievalMode

from .embeddings import BGEM3Embeddings, BGEM3SparseEmbeddings, SparseVector
from .ensemble import HybridEnsembleRetriever
from .filters import to_qdrant_filter
from .retrievers import HybridParentDocumentRetriever, HybridQdrantRetriever
from .vectorstores import HybridQdrantVectorStore

__all__ = [
    "BGEM3Embeddings",
    "BGEM3SparseEmbeddings",
    "FusionMethod",
    "HybridEnsembleRetriever",
    "HybridParentDocumentRetriever",
    "HybridQdrantRetriever",
    "HybridQdrantVectorStore",
    "RetrievalMode",
    "SparseVector",
    "to_qdrant_filter",
]
