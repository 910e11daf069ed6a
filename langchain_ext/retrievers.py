"""``HybridQdrantRetriever``: a LangChain retriever over :class:`HybridQdrantVectorStore`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict, Field
from qdrant_client import models

from shared.errors import InvalidInputError
from shared.options import check_options
from shared.validation import positive_int

from .filters import to_qdrant_filter
from .vectorstores import HybridQdrantVectorStore

__all__ = ["HybridQdrantRetriever"]


class HybridQdrantRetriever(BaseRetriever):
    """Retrieve the ``k`` best documents from a :class:`HybridQdrantVectorStore`.

    ``mode`` (``"dense"``/``"sparse"``/``"hybrid"``, default: the store's), ``filter``
    (dict of metadata conditions or a Qdrant ``Filter``) and ``search_kwargs`` (the
    store's search options, e.g. ``{"fusion": "dbsf", "candidate_k": 200}``) apply to
    every query; ``invoke(query, k=..., filter=..., mode=...)`` overrides them per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    vectorstore: HybridQdrantVectorStore
    k: int = Field(default=4, gt=0, description="number of documents to return")
    mode: str | None = Field(
        default=None, description="retrieval mode, string or RetrievalMode (None: the store's)"
    )
    filter: dict[str, Any] | models.Filter | None = Field(default=None, description="metadata filter")
    search_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra store search options")

    def __init__(self, **data: Any) -> None:
        # Our error naming the nearest field (a ValueError, as pydantic's extra="forbid" one was).
        check_options(data, type(self).model_fields, type(self).__name__, InvalidInputError)
        super().__init__(**data)
        # Checked after pydantic's validation so our errors reach the caller unwrapped, and at
        # construction rather than at the first query.
        if self.mode is not None:
            self.mode = self.vectorstore._checked_mode(getattr(self.mode, "value", self.mode))
        to_qdrant_filter(self.filter)

    def _search_args(self, kwargs: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Merge per-call overrides into this retriever's settings (pure)."""
        extra = dict(kwargs)
        extra.pop("verbose", None)  # LangChain's callback flag, not a search option
        k = positive_int(extra.pop("k", self.k), "k")
        args: dict[str, Any] = {**self.search_kwargs}
        if self.filter is not None:
            args["filter"] = self.filter
        if self.mode is not None:
            args["mode"] = self.mode
        args.update(extra)
        return k, args

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, args = self._search_args(kwargs)
        return self.vectorstore.similarity_search(query, k=k, **args)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, args = self._search_args(kwargs)
        return await self.vectorstore.asimilarity_search(query, k=k, **args)

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = "HybridQdrantVectorStore"
        embedding = self.vectorstore.embeddings
        if embedding is not None:
            params["ls_embedding_provider"] = type(embedding).__name__
        return params
