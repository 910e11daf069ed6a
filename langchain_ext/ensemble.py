"""``HybridEnsembleRetriever``: the one-line replacement for ``EnsembleRetriever([BM25Retriever, vector])``.

Before (two retrievers, BM25 rebuilt in memory on every start, fused in Python)::

    bm25 = BM25Retriever.from_documents(docs, k=4)
    dense = InMemoryVectorStore.from_documents(docs, embeddings).as_retriever(search_kwargs={"k": 4})
    retriever = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5], c=60)

After (dense + BM25 in one Qdrant collection, the IDF kept by the engine, fused in one request)::

    retriever = HybridEnsembleRetriever.from_documents(docs, embeddings, k=4)

``weights`` (BM25 first, as in LangChain's ``retrievers=[bm25_retriever, vector_retriever]``)
and ``c`` are accepted and mean what they meant (weighted RRF); leaving them out takes the
store's measured default. Without ``embeddings`` it replaces ``BM25Retriever`` alone. This
module only translates: the fusion mapping is :mod:`shared.ensembles`, BM25 is
:class:`shared.encoders.bm25.Bm25Encoder`.

Unlike ``EnsembleRetriever``, which returns the union of its retrievers' ``k`` results (up
to ``2 k`` documents), this returns the ``k`` best of the fused ranking; each side's
candidates before fusion are the store's ``candidate_k`` (100 by default), not ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from shared.encoders.bm25 import bm25_for_corpus
from shared.ensembles import from_ensemble_retriever

from .retrievers import HybridQdrantRetriever
from .vectorstores import HybridQdrantVectorStore

__all__ = ["HybridEnsembleRetriever"]


class HybridEnsembleRetriever(HybridQdrantRetriever):
    """Dense + BM25 hybrid retrieval from one collection (see the module docstring)."""

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        embedding: Embeddings | None = None,
        metadatas: Sequence[dict[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
        k: int = 4,
        weights: Sequence[float] | None = None,
        c: int | None = None,
        language: str = "english",
        **kwargs: Any,
    ) -> HybridEnsembleRetriever:
        """Build the collection (``kwargs``: :class:`HybridQdrantVectorStore`'s) and a retriever on it.

        BM25's ``avg_len`` is the mean length of ``texts``, as a BM25 index built from them has.
        """
        documents = [
            Document(page_content=t, metadata=dict(m or {}), id=i)
            for t, m, i in zip(
                texts,
                metadatas if metadatas is not None else [None] * len(texts),
                ids if ids is not None else [None] * len(texts),
                strict=True,
            )
        ]
        return cls.from_documents(
            documents, embedding, k=k, weights=weights, c=c, language=language, **kwargs
        )

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        embedding: Embeddings | None = None,
        *,
        k: int = 4,
        weights: Sequence[float] | None = None,
        c: int | None = None,
        language: str = "english",
        **kwargs: Any,
    ) -> HybridEnsembleRetriever:
        """``EnsembleRetriever``'s arguments (documents, ``k``, ``weights``, ``c``) -> one hybrid collection.

        ``language``: BM25's stemmer language (``shared.encoders.bm25.BM25_LANGUAGES``).
        Other keywords go to :class:`HybridQdrantVectorStore` (``path=``, ``client=``, ...).
        """
        docs = list(documents)
        bm25 = bm25_for_corpus([d.page_content for d in docs], language)
        options = {**from_ensemble_retriever(weights, c).store_options(), **kwargs}
        # No embedding: BM25 alone (HybridQdrantVectorStore takes embedding=None; VectorStore's
        # from_documents is typed for a dense model).
        store = HybridQdrantVectorStore.from_documents(
            docs, cast(Embeddings, embedding), sparse_embedding=bm25, **options
        )
        return cls(vectorstore=store, k=k)
