"""LlamaIndex adapters for m3-hybrid: BGE-M3 dense + sparse embeddings and Qdrant hybrid retrieval.

* :class:`BGEM3Embedding` / :class:`BGEM3SparseEmbedding`: LlamaIndex embedding classes
  (one forward pass for both when they use the same BGE-M3 model).
* :class:`HybridQdrantVectorStore`: a LlamaIndex vector store (embedded Qdrant Edge or a
  Qdrant server) with in-engine hybrid fusion and every LlamaIndex filter operator.
* :class:`HybridQdrantRetriever`: a drop-in retriever over that store.
* :class:`HybridFusionRetriever`: the replacement for ``QueryFusionRetriever`` over a vector
  retriever + ``BM25Retriever`` (dense + BM25 in one collection).
"""

from .embeddings import BGEM3Embedding, BGEM3SparseEmbedding
from .filters import to_qdrant_filter
from .fusion import HybridFusionRetriever
from .retriever import HybridQdrantRetriever
from .vector_store import HybridQdrantVectorStore

__all__ = [
    "BGEM3Embedding",
    "BGEM3SparseEmbedding",
    "HybridFusionRetriever",
    "HybridQdrantRetriever",
    "HybridQdrantVectorStore",
    "to_qdrant_filter",
]
