"""``HybridQdrantVectorStore``: a LlamaIndex vector store over the shared ``HybridStore``.

It only translates LlamaIndex types (nodes, ``VectorStoreQuery``, ``MetadataFilters``)
to and from the core: encoding, fusion and every Qdrant call live in :mod:`shared`.
Unlike LlamaIndex's own Qdrant store it fuses hybrid results inside Qdrant (one
request), honours ``alpha=0.0`` (sparse only) in sync and async alike, and translates
every filter operator (see :mod:`llama_index_ext.filters`).

Nodes are stored with their full serialised form (LlamaIndex's ``node_to_metadata_dict``,
JSON, inside the ``metadata`` payload), so retrievers get back real nodes with their
metadata and relationships.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from qdrant_client import models

from shared.config import ADD_BATCH_SIZE, StoreConfig, connection_from, option_doc
from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from shared.filters import and_filters
from shared.hierarchy import Hierarchy
from shared.lifecycle import Closing
from shared.options import check_options
from shared.query.options import SEARCH_OPTIONS, mmr_fetch_k
from shared.retry import RetryPolicy
from shared.schema import REF_DOC_ID_KEY
from shared.store import QUERY_DEFAULT_OPTIONS, HybridStore
from shared.types import Hit, Record
from shared.validation import id_list, positive_int

from ._encoders import late_chunking_of, store_encoder
from ._nodes import chunk_of
from ._validation import validation_errors_as_ours
from .filters import group_key, to_qdrant_filter

__all__ = ["HybridQdrantVectorStore"]

#: Keys ``node_to_metadata_dict`` adds next to the caller's metadata.
_NODE_CONTENT_KEY = "_node_content"

#: ``query(**kwargs)`` options passed through to ``HybridStore.query``: the store's search
#: options, less the sizes a ``VectorStoreQuery`` itself gives (top-k's, no offset).
_QUERY_OPTIONS = SEARCH_OPTIONS - {"offset", "dense_candidates", "sparse_candidates", "mrl_candidates"}
_MMR_OPTIONS = frozenset({"mmr_prefetch_k", "mmr_prefetch_factor"})
_KNOWN_OPTIONS = _QUERY_OPTIONS | _MMR_OPTIONS
#: The store options defaults: every field below that is a store option takes its default here.
_D = StoreConfig()


@dataclass
class _StoreQuery:
    """One planned ``HybridStore`` search: ``query``, or ``mmr`` when ``mmr``, with ``kwargs``."""

    mmr: bool
    kwargs: dict[str, Any]


class HybridQdrantVectorStore(Closing, BasePydanticVectorStore):
    """Dense + sparse hybrid retrieval on Qdrant (embedded Qdrant Edge, or a server).

    * ``path``: directory of the embedded store (a temporary one when neither ``path``
      nor ``url``/``client``/``aclient`` is given).  ``url``/``api_key``/``client``/
      ``aclient``: a Qdrant server.
    * ``embed_model``: computes the dense vectors of nodes that come without one (and
      query vectors when none is given).  With a BGE-M3 ``BGEM3Embedding`` it also
      gives the sparse vectors from the same forward pass.
    * ``sparse_embed_model``: any ``BaseSparseEmbedding``; the store computes the
      sparse vectors of nodes and queries with it.
    * ``bm25``: BM25 as a third signal beside the learned sparse model (``True``, a
      language, or a ``shared.encoders.bm25.Bm25Encoder``), weighted by ``bm25_weight``;
      the engine keeps its IDF. For dense + BM25 alone, BM25 is the sparse model
      (``HybridFusionRetriever``).
    * ``quantization``, ``mrl_dim``, ``fusion`` (``rrf``/``dbsf``/``m3``), ``rrf_k``,
      ``dense_weight``, ``sparse_weight``, ``candidate_k``, ``sparse_normalization``,
      ``query_batch_wait_ms``, ``query_batch_size`` (concurrent queries share one encoder
      pass): see :class:`shared.store.HybridStore`.
    * Hybrid queries: ``alpha`` in [0, 1] weighs dense against sparse (``alpha=0``
      sparse only, ``alpha=1`` dense only, otherwise weights ``alpha`` / ``1 - alpha``).
      Sizes as in LlamaIndex's own Qdrant store: ``similarity_top_k`` dense and
      ``sparse_top_k`` (default ``similarity_top_k``) sparse candidates are fused into
      ``hybrid_top_k`` (default ``similarity_top_k``) results, except that each side
      fetches at least ``candidate_k`` (default 100) candidates; ``candidate_k=1`` gives
      LlamaIndex's exact sizes.
    * Long documents (query kwargs, e.g. a retriever's ``vector_store_kwargs``):
      ``group_by="ref_doc_id"`` (or a metadata key) returns one node per document
      (``group_size`` nodes each); ``HierarchicalNodeParser`` nodes are stored with their
      level (``root``/``intermediate``/``leaf``), parent and offset, so
      ``levels=["leaf"], unit="parent"`` returns the best leaves' parents without a docstore;
      ``context_window`` / ``with_parent`` add the neighbours (``window``, as
      ``MetadataReplacementPostProcessor`` reads it) or the parent's text to each node.
    * ``client=`` on a collection written by llama-index's ``QdrantVectorStore`` (or by
      langchain-qdrant) works in that collection's own layout, detected or given as
      ``layout=``, so the other library keeps reading and writing it.
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    flat_metadata: bool = Field(default=False, description="refuse nested metadata values")

    collection_name: str = Field(default="m3_hybrid", description="Qdrant collection name")
    path: str | None = Field(default=None, description="embedded store directory (None: temporary)")
    url: str | None = Field(default=None, description="Qdrant server URL")
    api_key: str | None = Field(default=None, exclude=True, repr=False, description="Qdrant API key")
    timeout: float | None = Field(default=None, description="request timeout in seconds (remote)")
    retry: RetryPolicy | None = Field(
        default=None, exclude=True, description="retries of transient remote failures (None: 3 tries)"
    )
    embed_model: BaseEmbedding | None = Field(default=None, exclude=True, description="dense model")
    sparse_embed_model: BaseSparseEmbedding | None = Field(
        default=None, exclude=True, description="sparse model"
    )
    # Store options: defaults and descriptions from shared.config.StoreConfig.
    dense_dim: int | None = Field(default=_D.dense_dim, description=option_doc("dense_dim"))
    sparse: bool | None = Field(default=_D.sparse, description=option_doc("sparse"))
    sparse_idf: bool = Field(default=_D.sparse_idf, description=option_doc("sparse_idf"))
    colbert: bool = Field(default=_D.colbert, description=option_doc("colbert"))
    quantization: Any = Field(default=_D.quantization, description=option_doc("quantization"))
    on_disk: bool | None = Field(default=_D.on_disk, description=option_doc("on_disk"))
    compact_every: int | None = Field(default=_D.compact_every, description=option_doc("compact_every"))
    background_index_min: int | None = Field(
        default=_D.background_index_min, description=option_doc("background_index_min")
    )
    mrl_dim: int | None = Field(default=_D.mrl_dim, description=option_doc("mrl_dim"))
    bm25: Any = Field(default=_D.bm25, exclude=True, description=option_doc("bm25"))
    mrl_quantization: Any = Field(default=_D.mrl_quantization, description=option_doc("mrl_quantization"))
    fusion: str = Field(default=str(_D.fusion), description=option_doc("fusion"))
    rrf_k: int = Field(default=_D.rrf_k, description=option_doc("rrf_k"))
    dense_weight: float = Field(default=_D.dense_weight, description=option_doc("dense_weight"))
    sparse_weight: float | None = Field(default=_D.sparse_weight, description=option_doc("sparse_weight"))
    bm25_weight: float | None = Field(default=_D.bm25_weight, description=option_doc("bm25_weight"))
    candidate_k: int = Field(default=_D.candidate_k, description=option_doc("candidate_k"))
    sparse_normalization: str = Field(
        default=str(_D.sparse_normalization), description=option_doc("sparse_normalization")
    )
    query_batch_wait_ms: float = Field(
        default=_D.query_batch_wait_ms, description=option_doc("query_batch_wait_ms")
    )
    query_batch_size: int = Field(default=_D.query_batch_size, description=option_doc("query_batch_size"))
    batch_size: int = Field(default=ADD_BATCH_SIZE, gt=0, description="nodes per write")
    layout: Any = Field(default=_D.layout, exclude=True, description=option_doc("layout"))
    recreate: bool = Field(default=_D.recreate, description=option_doc("recreate"))
    late_chunking: bool = Field(default=_D.late_chunking, description=option_doc("late_chunking"))
    tenant: Any = Field(default=_D.tenant, description=option_doc("tenant"))
    tenant_key: str = Field(default=_D.tenant_key, description=option_doc("tenant_key"))
    indexed_fields: Mapping[str, str] | None = Field(
        default=_D.indexed_fields, description=option_doc("indexed_fields")
    )
    acorn: bool = Field(default=_D.acorn, description=option_doc("acorn"))
    shard_key: Any = Field(default=_D.shard_key, exclude=True, description=option_doc("shard_key"))
    hierarchy: Any = Field(default=_D.hierarchy, description=option_doc("hierarchy"))

    _store: HybridStore = PrivateAttr()

    def __init__(
        self,
        collection_name: str = "m3_hybrid",
        *,
        path: str | os.PathLike[str] | None = None,
        client: Any = None,
        aclient: Any = None,
        **kwargs: Any,
    ) -> None:
        fields: dict[str, Any] = {
            "collection_name": collection_name,
            "path": None if path is None else os.fspath(path),
        }
        # pydantic would drop an unknown keyword without a word (a typo such as
        # quantisation="int8" would build a float collection): refuse it by name.
        check_options(kwargs, type(self).model_fields, type(self).__name__)
        with validation_errors_as_ours(type(self).__name__):
            super().__init__(**fields, **kwargs)
        values = dict(self)
        self._store = HybridStore(
            self.collection_name,
            encoder=store_encoder(self.embed_model, self.sparse_embed_model, self.sparse),
            # The connection fields, and the clients (arguments only: they are not fields).
            **connection_from({**values, "client": client, "aclient": aclient}),
            # An embed_model built with late_chunking=True turns it on for the store too.
            config=StoreConfig.from_values(
                values,
                late_chunking=self.late_chunking
                or late_chunking_of(self.embed_model, self.sparse_embed_model),
            ),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        # A query default set on the adapter after construction is the core store's from then on.
        if name in QUERY_DEFAULT_OPTIONS and "_store" in (self.__pydantic_private__ or {}):
            self._store.set_query_defaults(**{name: value})

    @classmethod
    def class_name(cls) -> str:
        return "HybridQdrantVectorStore"

    @property
    def client(self) -> HybridStore:
        """The shared core store this adapter wraps (LlamaIndex's vector stores must have ``client``)."""
        return self._store

    #: Alias of :attr:`client`, under the name the LangChain adapter uses too.
    store = client

    def for_tenant(self, tenant: str) -> HybridQdrantVectorStore:
        """This store scoped to ``tenant`` over the same open collection (``HybridStore.for_tenant``)."""
        store = self._store.for_tenant(tenant)
        view = self.model_copy(update={"tenant": tenant})
        view._store = store
        return view

    def __repr__(self) -> str:
        # Never the api_key; the core store's repr names backend and encoder.
        store = (self.__pydantic_private__ or {}).get("_store")
        return (
            f"HybridQdrantVectorStore(collection_name={self.collection_name!r}, path={self.path!r}, "
            f"url={self.url!r}, fusion={self.fusion!r}, store={store!r})"
        )

    # -- nodes <-> records ------------------------------------------------------

    def _records(self, nodes: Sequence[BaseNode]) -> list[Record]:
        """Records for ``nodes`` (CPU work: run in a thread when async); the store fills missing vectors."""
        if isinstance(nodes, BaseNode) or not isinstance(nodes, Sequence):
            raise InvalidTypeError(f"nodes must be a list of LlamaIndex nodes, got {type(nodes).__name__}")
        records: list[Record] = []
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InvalidTypeError(
                    f"nodes[{i}] is a {type(node).__name__}, expected a LlamaIndex BaseNode"
                )
            try:
                metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            except ValueError as exc:
                raise InvalidInputError(f"nodes[{i}] (id {node.node_id!r}): {exc}") from None
            metadata = _hierarchy_fields(node, metadata, self._store.hierarchy)
            records.append(
                Record(
                    id=node.node_id,
                    text=node.get_content(metadata_mode=MetadataMode.NONE),
                    metadata=metadata,
                    ref_doc_id=node.ref_doc_id,
                    dense=node.embedding,
                    # LlamaIndex embeds nodes with their embed-visible metadata, and so does the
                    # store (its encoder cache then reuses an embed model's pass over the same strings).
                    embed_text=node.get_content(metadata_mode=MetadataMode.EMBED),
                    chunk_of=chunk_of(node),
                )
            )
        return records

    @staticmethod
    def _node(hit: Hit | Record) -> BaseNode:
        """A LlamaIndex node back from a stored point."""
        metadata = dict(hit.metadata or {})
        node: BaseNode
        if _NODE_CONTENT_KEY in metadata:
            node = metadata_dict_to_node(metadata, text=hit.text)
        else:
            # A point written by another client (e.g. the LangChain adapter): a plain TextNode.
            # No relationships argument without a source: validating an empty one costs as much
            # as a third of the node (every query builds ten).
            text = hit.text or ""
            if hit.ref_doc_id:
                source = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.ref_doc_id)}
                node = TextNode(id_=hit.id, text=text, metadata=metadata, relationships=source)
            else:
                node = TextNode(id_=hit.id, text=text, metadata=metadata)
        if isinstance(hit, Hit):
            extra = hit.annotations()
            if extra:
                _annotate(node, extra)
        return node

    # -- add --------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes (upsert by node id); vectors they lack are computed by the store's models."""
        return self._store.add(self._records(nodes), batch_size=self.batch_size)

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await self._store.aadd(self._records(nodes), batch_size=self.batch_size)

    # -- delete / get / clear ----------------------------------------------------

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        self._store.delete(ref_doc_ids=[_non_empty_id(ref_doc_id, "ref_doc_id")])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._store.adelete(ref_doc_ids=[_non_empty_id(ref_doc_id, "ref_doc_id")])

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete the nodes in ``node_ids`` that match ``filters`` (either may be omitted, not both)."""
        self._store.delete(filter=_nodes_filter(node_ids, filters))

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        await self._store.adelete(filter=_nodes_filter(node_ids, filters))

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Stored nodes of ``node_ids`` and/or matching ``filters``.

        With ``node_ids`` the result follows their order (ids not stored are skipped);
        by ``filters`` alone every matching node is read (paged scroll, any collection).
        """
        ids, flt = _get_request(node_ids, filters)
        found = self._store.get(ids or []) if flt is None else self._store.scroll(flt)
        return self._nodes_found(found, ids, flt)

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        ids, flt = _get_request(node_ids, filters)
        found = await (self._store.aget(ids or []) if flt is None else self._store.ascroll(flt))
        return self._nodes_found(found, ids, flt)

    def _nodes_found(self, records: list[Record], ids: list[str] | None, flt: Any) -> list[BaseNode]:
        """Nodes of the records read: by ids (``get``: already in their order), or scrolled by the
        filter (in ``ids`` order when given, each once; else as read)."""
        if flt is None or ids is None:
            return [self._node(r) for r in records]
        by_id = {r.id: r for r in records}
        return [self._node(by_id[i]) for i in dict.fromkeys(ids) if i in by_id]

    def clear(self) -> None:
        """Delete every node (the collection and its encoder record stay)."""
        self._store.clear()

    async def aclear(self) -> None:
        await self._store.aclear()

    def count(self, filters: MetadataFilters | None = None) -> int:
        """Number of stored nodes (matching ``filters``)."""
        return self._store.count(to_qdrant_filter(filters))

    # -- query ------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Dense (DEFAULT), SPARSE, HYBRID or MMR search; see the class docstring for ``alpha``."""
        request = self._plan(query, kwargs)
        store = self._store
        hits = store.mmr(**request.kwargs) if request.mmr else store.query(**request.kwargs)
        return self._result(hits)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        request = self._plan(query, kwargs)
        store = self._store
        hits = await (store.ammr(**request.kwargs) if request.mmr else store.aquery(**request.kwargs))
        return self._result(hits)

    def _plan(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> _StoreQuery:
        """Translate a ``VectorStoreQuery`` into one core call (pure: no I/O, no encoding).

        The store encodes the query text into whatever vectors the query lacks.
        """
        if not isinstance(query, VectorStoreQuery):
            raise InvalidTypeError(f"query must be a VectorStoreQuery, got {type(query).__name__}")
        options = dict(kwargs)
        raw_filter = options.pop("qdrant_filters", None)  # checked by and_filters
        unknown = sorted(options.keys() - _KNOWN_OPTIONS) if options else None
        if unknown:
            raise InvalidInputError(
                f"unknown query options {unknown}; "
                f"known: {sorted(_KNOWN_OPTIONS | {'qdrant_filters'})}"
            )
        flt = None
        if query.filters is not None or query.doc_ids or query.node_ids or raw_filter is not None:
            flt = and_filters(
                to_qdrant_filter(query.filters),
                _id_filter(REF_DOC_ID_KEY, query.doc_ids, "doc_ids"),
                _has_ids(query.node_ids, "node_ids"),
                raw_filter,
            )
        top_k = positive_int(query.similarity_top_k, "similarity_top_k")
        mode = query.mode if type(query.mode) is VectorStoreQueryMode else VectorStoreQueryMode(query.mode)
        vectors = {"text": query.query_str, "dense": query.query_embedding, "filter": flt}
        if mode == VectorStoreQueryMode.MMR:
            mmr = {name: options.pop(name, None) for name in _MMR_OPTIONS}
            if options:
                raise InvalidInputError(f"options {sorted(options)} do not apply to MMR queries")
            fetch_k = mmr_fetch_k(
                top_k, prefetch_k=mmr["mmr_prefetch_k"], prefetch_factor=mmr["mmr_prefetch_factor"]
            )
            return _StoreQuery(
                True, {**vectors, "limit": top_k, "fetch_k": fetch_k, "lambda_mult": query.mmr_threshold}
            )
        for name in _MMR_OPTIONS & options.keys():
            raise InvalidInputError(f"option {name!r} only applies to MMR queries")
        sizes = _MODE_SIZES.get(mode)
        if sizes is None:
            raise UnsupportedOperationError(
                f"query mode {mode.value!r} is not supported; use default (dense), sparse, hybrid or mmr"
            )
        if "group_by" in options:
            options["group_by"] = group_key(options["group_by"])
        return _StoreQuery(False, {**vectors, **options, **sizes(self, query, top_k, options)})

    def _hybrid_sizes(self, query: VectorStoreQuery, top_k: int, options: dict[str, Any]) -> dict[str, Any]:
        """LlamaIndex's hybrid sizes, as its own Qdrant store defines them: a dense prefetch of
        ``similarity_top_k``, a sparse one of ``sparse_top_k``, fused to ``hybrid_top_k``, weighed
        by ``alpha``. The core's resolver widens each side to the query's ``candidate_k``."""
        return {
            "mode": "hybrid",
            "limit": _k_or(query.hybrid_top_k, top_k, "hybrid_top_k"),
            "alpha": query.alpha,
            "dense_k": top_k,
            "sparse_k": _k_or(query.sparse_top_k, top_k, "sparse_top_k"),
        }

    def _result(self, hits: list[Hit]) -> VectorStoreQueryResult:
        return VectorStoreQueryResult(
            nodes=[self._node(h) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    # -- lifecycle --------------------------------------------------------------

    def wait_indexed(self) -> None:
        """Wait until the index builds that adds left running are in (:meth:`HybridStore.wait_indexed`):
        an add returns with every node searchable, a large one before its HNSW index is built."""
        self._store.wait_indexed()

    async def await_indexed(self) -> None:
        """Async :meth:`wait_indexed`."""
        await self._store.await_indexed()

    def close(self) -> None:
        """Release the store (the embedded shard's lock; a temporary store is deleted)."""
        self._store.close()

    async def aclose(self) -> None:
        await self._store.aclose()


#: Levels of ``HierarchicalNodeParser`` nodes (by their place in the tree).
HIERARCHICAL_LEVELS = ("root", "intermediate", "leaf")


def _hierarchy_fields(node: BaseNode, metadata: dict[str, Any], hierarchy: Hierarchy) -> dict[str, Any]:
    """A hierarchical node's place in its tree (``HierarchicalNodeParser``: parent and child
    links) as the store's hierarchy fields (``shared.hierarchy``): its parent's id, its offset
    in the parent and its level (root, intermediate or leaf); other nodes unchanged."""
    parent, children = node.parent_node, node.child_nodes
    if parent is None and not children:
        return metadata
    level = HIERARCHICAL_LEVELS[0] if parent is None else HIERARCHICAL_LEVELS[2 if not children else 1]
    return hierarchy.chunk_metadata(
        metadata,
        level=level,
        parent_id=None if parent is None else parent.node_id,
        position=getattr(node, "start_char_idx", None),  # a TextNode's offset in its parent
    )


def _annotate(node: BaseNode, extra: dict[str, Any]) -> None:
    """Add what the query asked for (group id, ...) to a node's metadata, kept out of what
    it embeds and what an LLM reads (as LlamaIndex's own added keys are)."""
    node.metadata.update(extra)
    for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
        keys.extend(k for k in extra if k not in keys)


def _non_empty_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidTypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _k_or(value: Any, default: int, name: str) -> int:
    """A ``VectorStoreQuery`` size left None means ``similarity_top_k``."""
    return default if value is None else positive_int(value, name)


def _id_filter(key: str, ids: Any, name: str) -> models.Filter | None:
    # LlamaIndex passes an empty list for "no restriction" (as_retriever's node_ids).
    if not ids:
        return None
    return models.Filter(must=[models.FieldCondition(key=key, match=models.MatchAny(any=id_list(ids, name)))])


def _has_ids(ids: Any, name: str) -> models.Filter | None:
    if not ids:
        return None
    # Caller ids: the core maps them to point ids.
    return models.Filter(must=[models.HasIdCondition(has_id=id_list(ids, name))])  # type: ignore[arg-type]


def _nodes_filter(node_ids: Any, filters: MetadataFilters | None) -> models.Filter:
    if node_ids is not None and not node_ids:
        raise InvalidInputError("node_ids is empty; pass the ids to delete (or clear() to delete everything)")
    flt = and_filters(_has_ids(node_ids, "node_ids"), to_qdrant_filter(filters))
    if flt is None:
        raise InvalidInputError("delete_nodes needs node_ids or filters (use clear() to delete everything)")
    return flt


def _get_request(
    node_ids: Any, filters: MetadataFilters | None
) -> tuple[list[str] | None, models.Filter | None]:
    """(ids, filter) of a get_nodes call; the filter also holds the ids when both are given."""
    if node_ids is None and (filters is None or not filters.filters):
        raise InvalidInputError("get_nodes needs node_ids or filters")
    ids = None if node_ids is None else id_list(node_ids, "node_ids")
    flt = to_qdrant_filter(filters)
    if flt is not None and ids:
        flt = and_filters(flt, _has_ids(ids, "node_ids"))
    return ids, flt


#: The store arguments of each (non-MMR) LlamaIndex query mode.
_SizesOf = Callable[[HybridQdrantVectorStore, VectorStoreQuery, int, dict[str, Any]], dict[str, Any]]
_MODE_SIZES: dict[VectorStoreQueryMode, _SizesOf] = {
    VectorStoreQueryMode.DEFAULT: lambda _s, _q, top_k, _o: {"mode": "dense", "limit": top_k},
    VectorStoreQueryMode.SPARSE: lambda _s, q, top_k, _o: {
        "mode": "sparse",
        "limit": _k_or(q.sparse_top_k, top_k, "sparse_top_k"),
    },
    VectorStoreQueryMode.HYBRID: HybridQdrantVectorStore._hybrid_sizes,
}
