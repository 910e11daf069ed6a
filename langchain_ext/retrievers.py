"""``HybridQdrantRetriever``: a LangChain retriever over :class:`HybridQdrantVectorStore`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentTransformer, Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict, Field
from qdrant_client import models

from shared.errors import InvalidInputError
from shared.options import check_options
from shared.validation import positive_int

from .filters import to_qdrant_filter
from .vectorstores import HybridQdrantVectorStore

__all__ = ["HybridParentDocumentRetriever", "HybridQdrantRetriever"]


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


class HybridParentDocumentRetriever(HybridQdrantRetriever):
    """LangChain's ``ParentDocumentRetriever`` without a second store: the parents and their
    chunks live in the one collection of a :class:`HybridQdrantVectorStore`. The splitters
    are any document transformers (a ``RecursiveCharacterTextSplitter``, ...).

    :meth:`add_documents` stores each document (cut by ``parent_splitter`` first, when
    given) at level ``parent_level`` and its ``child_splitter`` chunks at ``child_level``,
    linked by the store's hierarchy fields (``shared.hierarchy``: parent id and position in
    the chunks' metadata). A query searches the chunks and returns the ``k`` parents of the
    best ones, each with the score of its best chunk, in one engine request plus one read of
    the parents (``unit="parent"``). ``mode``, ``filter`` and ``search_kwargs`` are
    :class:`HybridQdrantRetriever`'s.
    """

    child_splitter: BaseDocumentTransformer
    parent_splitter: BaseDocumentTransformer | None = Field(
        default=None, description="cuts documents into parents"
    )
    child_level: str = Field(default="child", description="level name of the chunks searched")
    parent_level: str = Field(default="parent", description="level name of the parents returned")

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        hierarchy = self.vectorstore.store.hierarchy
        hierarchy.check_levels([self.child_level, self.parent_level])

    def _documents_to_add(
        self, documents: Sequence[Document], ids: Sequence[str] | None
    ) -> tuple[list[Document], list[str], list[str]]:
        """The parents and their chunks as one batch of documents, their ids, and the parents' ids (pure)."""
        if ids is not None and self.parent_splitter is not None:
            raise InvalidInputError(
                "ids name the documents given; with a parent_splitter the parents are new pieces"
            )
        parents = (
            list(documents)
            if self.parent_splitter is None
            else list(self.parent_splitter.transform_documents(documents))
        )
        if ids is not None and len(ids) != len(parents):
            raise InvalidInputError(f"got {len(ids)} ids for {len(parents)} documents")
        hierarchy = self.vectorstore.store.hierarchy
        out: list[Document] = []
        out_ids: list[str] = []
        parent_ids: list[str] = []
        for i, parent in enumerate(parents):
            pid = ids[i] if ids is not None else (parent.id or str(uuid.uuid4()))
            parent_ids.append(pid)
            out.append(
                Document(
                    parent.page_content,
                    metadata=hierarchy.chunk_metadata(parent.metadata, level=self.parent_level),
                )
            )
            out_ids.append(pid)
            for position, child in enumerate(self.child_splitter.transform_documents([parent])):
                meta = hierarchy.chunk_metadata(
                    child.metadata, level=self.child_level, parent_id=pid, position=position
                )
                out.append(Document(child.page_content, metadata=meta))
                out_ids.append(f"{pid}#{position}")
        return out, out_ids, parent_ids

    def add_documents(self, documents: Sequence[Document], ids: Sequence[str] | None = None) -> list[str]:
        """Store the documents (as parents) and their chunks; returns the parents' ids."""
        docs, doc_ids, parent_ids = self._documents_to_add(documents, ids)
        self.vectorstore.add_documents(docs, ids=doc_ids)
        return parent_ids

    async def aadd_documents(
        self, documents: Sequence[Document], ids: Sequence[str] | None = None
    ) -> list[str]:
        """Async :meth:`add_documents`."""
        docs, doc_ids, parent_ids = self._documents_to_add(documents, ids)
        await self.vectorstore.aadd_documents(docs, ids=doc_ids)
        return parent_ids

    def _search_args(self, kwargs: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The chunks searched, their parents returned (``k`` parents)."""
        k, args = super()._search_args(kwargs)
        return k, {**args, "levels": [self.child_level], "unit": "parent"}
