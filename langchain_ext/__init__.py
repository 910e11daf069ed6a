"""LangChain adapters for m3-hybrid: BGE-M3 dense + sparse embeddings and hybrid Qdrant retrieval.

* :class:`BGEM3Embeddings`: dense ``Embeddings`` (BGE-M3 or any supported dense model).
* :class:`BGEM3SparseEmbeddings`: sparse vectors (BGE-M3 or SPLADE), langchain-qdrant compatible.
* :class:`HybridQdrantVectorStore`: dense / sparse / hybrid ``VectorStore`` on Qdrant Edge or a server.
* :class:`HybridQdrantRetriever`: a retriever over that store.

``RetrievalMode`` and ``FusionMethod`` are re-exported; plain strings work everywhere too.
"""

from shared.query.modes import FusionMethod, RetrievalMode

from .embeddings import BGEM3Embeddings, BGEM3SparseEmbeddings, SparseVector
from .filters import to_qdrant_filter
from .retrievers import HybridQdrantRetriever
from .vectorstores import HybridQdrantVectorStore

__all__ = [
    "BGEM3Embeddings",
    "BGEM3SparseEmbeddings",
    "FusionMethod",
    "HybridQdrantRetriever",
    "HybridQdrantVectorStore",
    "RetrievalMode",
    "SparseVector",
    "to_qdrant_filter",
]
