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

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from shared.filters import and_filters, check_filter
from shared.retry import RetryPolicy
from shared.schema import REF_DOC_ID_KEY
from shared.steps import Steps, arun, call, call_async, run
from shared.store import HybridStore
from shared.types import Hit, Record

from ._encoders import EncoderPlan, plan_encoders
from ._validation import our_errors
from .filters import to_qdrant_filter

__all__ = ["HybridQdrantVectorStore"]

#: Keys ``node_to_metadata_dict`` adds next to the caller's metadata.
_NODE_CONTENT_KEY = "_node_content"

#: ``query(**kwargs)`` options passed through to ``HybridStore.query``.
_QUERY_OPTIONS = frozenset(
    {
        "fusion",
        "rrf_k",
        "dense_weight",
        "sparse_weight",
        "candidate_k",
        "sparse_normalization",
        "colbert_rerank",
        "exact",
        "hnsw_ef",
        "rescore",
        "oversampling",
        "score_threshold",
    }
)
_MMR_OPTIONS = frozenset({"mmr_prefetch_k", "mmr_prefetch_factor"})
_DEFAULT_MMR_PREFETCH_FACTOR = 4


@dataclass
class _StoreQuery:
    """One planned ``HybridStore`` search: ``HybridStore.query``, or ``.mmr`` when ``mmr``, with ``kwargs``.

    ``text`` is the query text whose missing ``need`` vectors the adapter computes first.
    """

    mmr: bool
    kwargs: dict[str, Any]
    text: str | None = None
    need: tuple[str, ...] = ()
    given: dict[str, Any] = field(default_factory=dict)


class HybridQdrantVectorStore(BasePydanticVectorStore):
    """Dense + sparse hybrid retrieval on Qdrant (embedded Qdrant Edge, or a server).

    * ``path``: directory of the embedded store (a temporary one when neither ``path``
      nor ``url``/``client``/``aclient`` is given).  ``url``/``api_key``/``client``/
      ``aclient``: a Qdrant server.
    * ``embed_model``: computes the dense vectors of nodes that come without one (and
      query vectors when none is given).  With a BGE-M3 ``BGEM3Embedding`` it also
      gives the sparse vectors from the same forward pass.
    * ``sparse_embed_model``: any ``BaseSparseEmbedding``; the store computes the
      sparse vectors of nodes and queries with it.
    * ``quantization``, ``mrl_dim``, ``fusion`` (``rrf``/``dbsf``/``m3``), ``rrf_k``,
      ``dense_weight``, ``sparse_weight``, ``candidate_k``, ``sparse_normalization``: see
      :class:`shared.store.HybridStore`.
    * Hybrid queries: ``alpha`` in [0, 1] weighs dense against sparse (``alpha=0``
      sparse only, ``alpha=1`` dense only, otherwise weights ``alpha`` / ``1 - alpha``).
      Sizes as in LlamaIndex's own Qdrant store: ``similarity_top_k`` dense and
      ``sparse_top_k`` (default ``similarity_top_k``) sparse candidates are fused into
      ``hybrid_top_k`` (default ``similarity_top_k``) results, except that each side
      fetches at least ``candidate_k`` (default 100) candidates; ``candidate_k=1`` gives
      LlamaIndex's exact sizes.
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
    dense_dim: int | None = Field(default=None, gt=0, description="dense size when there is no embed_model")
    sparse: bool | None = Field(
        default=None, description="store sparse vectors (None: if a model makes them)"
    )
    sparse_idf: bool = Field(default=False, description="IDF modifier on the sparse vectors")
    colbert: bool = Field(default=False, description="store BGE-M3 ColBERT vectors for re-ranking")
    quantization: Any = Field(default="none", description="quantization preset or Qdrant config")
    on_disk: bool = Field(default=False, description="original vectors on disk")
    compact_every: int | None = Field(
        default=None,
        ge=0,
        description="embedded store: reopen the shard every this many points written, which bounds "
        "the engine's memory (None: 100,000 with on_disk, else never; 0: never)",
    )
    mrl_dim: int | None = Field(default=None, gt=0, description="MRL funnel size")
    mrl_quantization: Any = Field(default="binary", description="quantization of the MRL copy")
    fusion: str = Field(default="rrf", description="hybrid fusion: rrf, dbsf or m3")
    rrf_k: int = Field(default=60, gt=0, description="RRF constant")
    dense_weight: float = Field(default=1.0, ge=0, description="dense weight in hybrid fusion")
    sparse_weight: float | None = Field(default=None, ge=0, description="sparse weight (None: per fusion)")
    candidate_k: int = Field(
        default=100,
        gt=0,
        description="least candidates per side in hybrid (and the ColBERT re-rank window)",
    )
    sparse_normalization: str = Field(
        default="auto",
        description="m3 fusion: sparse term as is (none) or divided by the query's q.q (query); "
        "auto: none for BGE-M3, query for other sparse models",
    )
    batch_size: int = Field(default=256, gt=0, description="nodes per write")
    layout: Any = Field(
        default=None,
        exclude=True,
        description="collection layout: m3-hybrid, langchain, llama-index or a shared.layouts.Layout "
        "(None: detected from an existing collection, m3-hybrid's for a new one)",
    )
    recreate: bool = Field(default=False, description="drop a collection built by another encoder")

    _store: HybridStore = PrivateAttr()
    _encoders: EncoderPlan = PrivateAttr()

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
        with our_errors(type(self).__name__):
            super().__init__(**fields, **kwargs)
        self._encoders = plan_encoders(self.embed_model, self.sparse_embed_model, self.sparse)
        self._store = HybridStore(
            self.collection_name,
            encoder=self._encoders.store,
            path=self.path,
            url=self.url,
            api_key=self.api_key,
            client=client,
            aclient=aclient,
            timeout=self.timeout,
            retry=self.retry,
            dense_dim=self.dense_dim,
            sparse=self.sparse,
            sparse_idf=self.sparse_idf,
            colbert=self.colbert,
            quantization=self.quantization,
            on_disk=self.on_disk,
            compact_every=self.compact_every,
            mrl_dim=self.mrl_dim,
            mrl_quantization=self.mrl_quantization,
            fusion=self.fusion,
            rrf_k=self.rrf_k,
            dense_weight=self.dense_weight,
            sparse_weight=self.sparse_weight,
            candidate_k=self.candidate_k,
            sparse_normalization=self.sparse_normalization,
            layout=self.layout,
            recreate=self.recreate,
        )

    @classmethod
    def class_name(cls) -> str:
        return "HybridQdrantVectorStore"

    @property
    def client(self) -> HybridStore:
        """The shared core store this adapter wraps."""
        return self._store

    @property
    def store(self) -> HybridStore:
        """The shared core store this adapter wraps (same as :attr:`client`)."""
        return self._store

    def __repr__(self) -> str:
        # Never the api_key; the core store's repr names backend and encoder.
        store = (self.__pydantic_private__ or {}).get("_store")
        return (
            f"HybridQdrantVectorStore(collection_name={self.collection_name!r}, path={self.path!r}, "
            f"url={self.url!r}, fusion={self.fusion!r}, store={store!r})"
        )

    # -- nodes <-> records ------------------------------------------------------

    def _records(self, nodes: Sequence[BaseNode]) -> list[Record]:
        """Records for ``nodes`` with every vector filled (CPU work: run in a thread when async)."""
        if isinstance(nodes, BaseNode) or not isinstance(nodes, Sequence):
            raise InvalidTypeError(f"nodes must be a list of LlamaIndex nodes, got {type(nodes).__name__}")
        records: list[Record] = []
        embed_texts: list[str] = []
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InvalidTypeError(
                    f"nodes[{i}] is a {type(node).__name__}, expected a LlamaIndex BaseNode"
                )
            try:
                metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            except ValueError as exc:
                raise InvalidInputError(f"nodes[{i}] (id {node.node_id!r}): {exc}") from None
            records.append(
                Record(
                    id=node.node_id,
                    text=node.get_content(metadata_mode=MetadataMode.NONE),
                    metadata=metadata,
                    ref_doc_id=node.ref_doc_id,
                    dense=node.embedding,
                )
            )
            # What the vectors are computed from: LlamaIndex embeds nodes with their
            # embed-visible metadata, and so do we (and the encoder cache then reuses
            # an embed model's earlier pass over the very same strings).
            embed_texts.append(node.get_content(metadata_mode=MetadataMode.EMBED))
        self._fill_vectors(records, embed_texts)
        return records

    def _fill_vectors(self, records: list[Record], texts: list[str]) -> None:
        schema = self._store.schema
        enc = self._encoders
        # Before the first add the dense size is learned from the nodes' own embeddings
        # (as LlamaIndex's index computes them): only a store with an embed_model insists.
        wants_dense = schema.has_dense or (not schema.complete and enc.dense is not None)
        missing = [i for i, r in enumerate(records) if r.dense is None]
        if missing and wants_dense:
            if enc.dense is None:
                i = missing[0]
                raise InvalidInputError(
                    f"nodes[{i}] (id {records[i].id!r}) has no embedding and the store has no "
                    "embed_model to compute it (pass embed_model= or embed the nodes first)"
                )
            outputs = ["dense"]
            if enc.sparse is enc.dense and schema.sparse:
                outputs.append("sparse")
            result = enc.dense.encode([texts[i] for i in missing], "document", outputs=outputs)
            assert result.dense is not None
            for pos, i in enumerate(missing):
                records[i].dense = result.dense[pos]
                if result.sparse is not None:
                    records[i].sparse = result.sparse[pos]
        if schema.sparse and enc.sparse is not None:
            todo = [i for i, r in enumerate(records) if r.sparse is None]
            if todo:
                sparse = enc.sparse.encode([texts[i] for i in todo], "document", outputs=["sparse"]).sparse
                assert sparse is not None
                for pos, i in enumerate(todo):
                    records[i].sparse = sparse[pos]

    @staticmethod
    def _node(hit: Hit | Record) -> BaseNode:
        """A LlamaIndex node back from a stored point."""
        metadata = dict(hit.metadata or {})
        if _NODE_CONTENT_KEY in metadata:
            return metadata_dict_to_node(metadata, text=hit.text)
        # A point written by another client (e.g. the LangChain adapter): a plain TextNode.
        relationships = {}
        if hit.ref_doc_id:
            relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=hit.ref_doc_id)
        return TextNode(id_=hit.id, text=hit.text or "", metadata=metadata, relationships=relationships)

    # -- add --------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes (upsert by node id); vectors they lack are computed by the store's models."""
        return run(self._add_steps(nodes))

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await arun(self._add_steps(nodes))

    def _add_steps(self, nodes: Sequence[BaseNode]) -> Steps[list[str]]:
        records = yield call(self._records, nodes)
        store = self._store
        ids: list[str] = yield call_async(store.add, store.aadd, records, batch_size=self.batch_size)
        return ids

    # -- delete / get / clear ----------------------------------------------------

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``."""
        self._store.delete(ref_doc_ids=[_check_id(ref_doc_id, "ref_doc_id")])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._store.adelete(ref_doc_ids=[_check_id(ref_doc_id, "ref_doc_id")])

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
        return run(self._get_steps(node_ids, filters))

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        return await arun(self._get_steps(node_ids, filters))

    def _get_steps(
        self, node_ids: list[str] | None, filters: MetadataFilters | None
    ) -> Steps[list[BaseNode]]:
        ids, flt = _get_request(node_ids, filters)
        store = self._store
        if flt is None:
            found: list[Record] = yield call_async(store.get, store.aget, ids or [])
            return [self._node(r) for r in found]
        return self._ordered((yield call_async(store.scroll, store.ascroll, flt)), ids)

    def _ordered(self, records: list[Record], ids: list[str] | None) -> list[BaseNode]:
        """Nodes of the scrolled ``records``: in ``ids`` order when given (each once), else as read."""
        if ids is None:
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
        return run(self._query_steps(query, kwargs))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await arun(self._query_steps(query, kwargs))

    def _query_steps(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> Steps[VectorStoreQueryResult]:
        request = self._plan(query, kwargs)
        vectors = yield call(self._query_vectors, request)
        store = self._store
        search = (
            call_async(store.mmr, store.ammr, **request.kwargs, **vectors)
            if request.mmr
            else call_async(store.query, store.aquery, **request.kwargs, **vectors)
        )
        hits: list[Hit] = yield search
        return self._result(hits)

    def _plan(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> _StoreQuery:
        """Translate a ``VectorStoreQuery`` into one core call (pure: no I/O, no encoding)."""
        if not isinstance(query, VectorStoreQuery):
            raise InvalidTypeError(f"query must be a VectorStoreQuery, got {type(query).__name__}")
        options = dict(kwargs)
        raw_filter = check_filter(options.pop("qdrant_filters", None))
        unknown = sorted(set(options) - _QUERY_OPTIONS - _MMR_OPTIONS)
        if unknown:
            raise InvalidInputError(
                f"unknown query options {unknown}; "
                f"known: {sorted(_QUERY_OPTIONS | _MMR_OPTIONS | {'qdrant_filters'})}"
            )
        flt = and_filters(
            to_qdrant_filter(query.filters),
            _id_filter(REF_DOC_ID_KEY, query.doc_ids, "doc_ids"),
            _has_ids(query.node_ids, "node_ids"),
            raw_filter,
        )
        top_k = _top_k(query.similarity_top_k, "similarity_top_k")
        mode = VectorStoreQueryMode(query.mode)
        text = query.query_str
        given: dict[str, Any] = {}
        if query.query_embedding is not None:
            given["dense"] = query.query_embedding

        if mode == VectorStoreQueryMode.MMR:
            prefetch_k = options.pop("mmr_prefetch_k", None)
            factor = options.pop("mmr_prefetch_factor", _DEFAULT_MMR_PREFETCH_FACTOR)
            if options:
                raise InvalidInputError(f"options {sorted(options)} do not apply to MMR queries")
            fetch_k = (
                _top_k(prefetch_k, "mmr_prefetch_k")
                if prefetch_k is not None
                else max(top_k, math.ceil(top_k * float(factor)))
            )
            lambda_mult = 0.5 if query.mmr_threshold is None else float(query.mmr_threshold)
            if not 0.0 <= lambda_mult <= 1.0:
                raise InvalidInputError(
                    f"mmr_threshold (lambda) must be in [0, 1], got {query.mmr_threshold}"
                )
            return _StoreQuery(
                True,
                {"limit": top_k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, "filter": flt},
                text=text,
                need=("dense",),
                given=given,
            )
        for name in _MMR_OPTIONS & set(options):
            raise InvalidInputError(f"option {name!r} only applies to MMR queries")

        call = _StoreQuery(False, {"filter": flt, **options}, text=text, given=given)
        if mode == VectorStoreQueryMode.DEFAULT:
            call.kwargs.update(mode="dense", limit=top_k)
            call.need = ("dense",)
        elif mode == VectorStoreQueryMode.SPARSE:
            limit = top_k if query.sparse_top_k is None else _top_k(query.sparse_top_k, "sparse_top_k")
            call.kwargs.update(mode="sparse", limit=limit)
            call.need = ("sparse",)
        elif mode == VectorStoreQueryMode.HYBRID:
            # As LlamaIndex's own Qdrant store defines them: a dense prefetch of similarity_top_k,
            # a sparse prefetch of sparse_top_k (default similarity_top_k), fused to hybrid_top_k
            # (default similarity_top_k) results; but never fewer than candidate_k per side, since
            # fusing LlamaIndex's default 2 + 2 candidates throws away most of what hybrid adds
            # (set candidate_k=1 for LlamaIndex's exact sizes).
            final = top_k if query.hybrid_top_k is None else _top_k(query.hybrid_top_k, "hybrid_top_k")
            sparse_k = top_k if query.sparse_top_k is None else _top_k(query.sparse_top_k, "sparse_top_k")
            call.kwargs.update(
                limit=final,
                dense_candidates=max(top_k, self.candidate_k),
                sparse_candidates=max(sparse_k, self.candidate_k),
            )
            self._apply_alpha(call, query.alpha)
        else:
            raise UnsupportedOperationError(
                f"query mode {mode.value!r} is not supported; use default (dense), sparse, hybrid or mmr"
            )
        return call

    def _apply_alpha(self, call: _StoreQuery, alpha: float | None) -> None:
        if alpha is None:
            call.kwargs["mode"] = "hybrid"
            call.need = ("dense", "sparse")
            return
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
            raise InvalidInputError(f"alpha must be a number in [0, 1], got {alpha!r}")
        if "dense_weight" in call.kwargs or "sparse_weight" in call.kwargs:
            raise InvalidInputError("give either alpha or dense_weight/sparse_weight, not both")
        alpha = float(alpha)
        # alpha is LlamaIndex's dense share: 0 means sparse only and 1 dense only, exactly:
        # the one side's prefetch, cut to the final size.
        if alpha in (0.0, 1.0):
            side = "sparse" if alpha == 0.0 else "dense"
            prefetch = call.kwargs.pop(f"{side}_candidates")
            call.kwargs.pop("dense_candidates", None)
            call.kwargs.pop("sparse_candidates", None)
            call.kwargs.update(mode=side, limit=min(call.kwargs["limit"], prefetch))
            call.need = (side,)
        else:
            fusion = call.kwargs.get("fusion", self.fusion)
            if fusion == "dbsf":
                raise UnsupportedOperationError(
                    f"alpha={alpha} needs per-side weights, which dbsf fusion does not have; use rrf or m3"
                )
            call.kwargs.update(mode="hybrid", dense_weight=alpha, sparse_weight=1.0 - alpha)
            call.need = ("dense", "sparse")

    def _query_vectors(self, call: _StoreQuery) -> dict[str, Any]:
        """The query vectors ``call`` needs: given ones, else computed by the store's models."""
        vectors = {k: v for k, v in call.given.items() if k in call.need}
        enc = self._encoders
        for side in call.need:
            if side in vectors:
                continue
            encoder = enc.dense if side == "dense" else enc.sparse
            if encoder is None:
                model = "embed_model" if side == "dense" else "sparse_embed_model (or a BGE-M3 embed_model)"
                raise InvalidInputError(
                    f"this query needs a {side} query vector: pass it in the query "
                    f"or give the store a {model}"
                )
            if call.text is None:
                raise InvalidInputError(f"this query needs query_str to compute its {side} vector")
            result = encoder.encode([call.text], "query", outputs=[side])
            vectors[side] = (
                result.dense[0]
                if side == "dense" and result.dense is not None
                else (result.sparse[0] if result.sparse is not None else None)
            )
        return vectors

    def _result(self, hits: list[Hit]) -> VectorStoreQueryResult:
        return VectorStoreQueryResult(
            nodes=[self._node(h) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Release the store (the embedded shard's lock; a temporary store is deleted)."""
        self._store.close()

    async def aclose(self) -> None:
        await self._store.aclose()

    def __enter__(self) -> HybridQdrantVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> HybridQdrantVectorStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _check_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidTypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _id_list(ids: Any, name: str) -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, (list, tuple)):
        raise InvalidTypeError(f"{name} must be a list of str, got {type(ids).__name__}")
    for i, x in enumerate(ids):
        if not isinstance(x, str):
            raise InvalidTypeError(f"{name}[{i}] must be a str, got {type(x).__name__}: {x!r}")
    return list(ids)


def _id_filter(key: str, ids: Any, name: str) -> models.Filter | None:
    # LlamaIndex passes an empty list for "no restriction" (as_retriever's node_ids).
    if not ids:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=key, match=models.MatchAny(any=_id_list(ids, name)))]
    )


def _has_ids(ids: Any, name: str) -> models.Filter | None:
    if not ids:
        return None
    # Caller ids: the core maps them to point ids.
    return models.Filter(must=[models.HasIdCondition(has_id=_id_list(ids, name))])  # type: ignore[arg-type]


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
    ids = None if node_ids is None else _id_list(node_ids, "node_ids")
    flt = to_qdrant_filter(filters)
    if flt is not None and ids:
        flt = and_filters(flt, _has_ids(ids, "node_ids"))
    return ids, flt


def _top_k(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, got {value}")
    return value
