"""HybridQdrantVectorStore on a Qdrant server API (qdrant-client local mode), with third-party
LlamaIndex embedding models, and without leaking secrets."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from test_llama_support import METADATA, ModelSetup, documents, embed_text, make_setup

from llama_index_ext import BGEM3Embedding, HybridQdrantVectorStore
from shared.errors import BackendError, InvalidInputError, InvalidTypeError, ModelMismatchError

WORDS = re.compile(r"[a-z]+")


def _bucket(word: str, size: int) -> int:
    return int(hashlib.sha1(word.encode()).hexdigest(), 16) % size


class HashingEmbedding(BaseEmbedding):
    """A third-party-style dense model: hashed bag of words (a real, deterministic embedding)."""

    dim: int = 1024

    def _vec(self, text: str) -> Embedding:
        vec = [0.0] * self.dim
        for word in WORDS.findall(text.lower()):
            vec[_bucket(word, self.dim)] += 1.0
        vec[0] += 0.01  # never the zero vector
        return vec

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._vec(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._vec(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._vec(text)


class TermCountSparse(BaseSparseEmbedding):
    """A third-party-style sparse model: term counts keyed by a hashed term id."""

    def _sparse(self, text: str) -> SparseEmbedding:
        out: dict[int, float] = {}
        for word in WORDS.findall(text.lower()):
            key = _bucket(word, 2**20)
            out[key] = out.get(key, 0.0) + 1.0
        return out

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return self._sparse(query)

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return self._sparse(query)

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return self._sparse(text)

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return self._sparse(text)


@pytest.fixture(scope="module")
def small(minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path) -> ModelSetup:
    return make_setup("small", minilm_dir, splade_dir, tiny_bge_m3_dir)


def refs(result: object) -> list[str]:
    return [n.ref_doc_id for n in result.nodes or []]  # type: ignore[attr-defined]


# -- Qdrant server API (local mode) ------------------------------------------------------


def test_remote_client_index_hybrid_filters_and_delete(small: ModelSetup) -> None:
    client = QdrantClient(":memory:")
    with HybridQdrantVectorStore("remote", client=client, **small.store_kwargs()) as store:
        index = VectorStoreIndex.from_documents(
            documents(),
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=small.embed,
        )
        assert client.count("remote").count == len(METADATA)
        hybrid = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3)
        assert hybrid.retrieve("why do plants need sunlight?")[0].node.ref_doc_id == "photosynthesis"
        sparse_only = index.as_retriever(vector_store_query_mode="hybrid", alpha=0.0, similarity_top_k=3)
        sparse = index.as_retriever(vector_store_query_mode="sparse", similarity_top_k=3)
        assert [n.score for n in sparse_only.retrieve("prison tunnel")] == [
            n.score for n in sparse.retrieve("prison tunnel")
        ]
        filters = MetadataFilters(
            filters=[MetadataFilter(key="tags", value=["classic", "law"], operator="all")]
        )
        filtered = index.as_retriever(similarity_top_k=10, filters=filters).retrieve("stories")
        assert sorted(n.node.ref_doc_id for n in filtered) == ["godfather", "mockingbird"]
        index.delete_ref_doc("godfather")
        assert "godfather" not in [
            n.node.ref_doc_id for n in index.as_retriever(similarity_top_k=10).retrieve("mafia")
        ]


async def test_async_client_alpha_zero_and_nodes(small: ModelSetup) -> None:
    async with HybridQdrantVectorStore(
        "aremote", aclient=AsyncQdrantClient(":memory:"), **small.store_kwargs()
    ) as store:
        nodes = [TextNode(id_=doc_id, text=embed_text(doc_id)) for doc_id in METADATA]
        assert await store.async_add(nodes) == list(METADATA)
        q = VectorStoreQuery(query_str="prison tunnel banker", mode=VectorStoreQueryMode.HYBRID, alpha=0.0)
        q.similarity_top_k = 3
        sparse = VectorStoreQuery(query_str="prison tunnel banker", mode=VectorStoreQueryMode.SPARSE)
        sparse.similarity_top_k = 3
        got, expected = await store.aquery(q), await store.aquery(sparse)
        assert got.ids == expected.ids and got.similarities == expected.similarities
        assert got.ids and got.ids[0] == "shawshank"
        assert [n.node_id for n in await store.aget_nodes(["orwell", "rrf"])] == ["orwell", "rrf"]
        await store.adelete_nodes(["orwell"])
        dense = VectorStoreQuery(query_str=embed_text("orwell"), similarity_top_k=10)
        assert "orwell" not in ((await store.aquery(dense)).ids or [])
        await store.aclear()
        assert (await store.aquery(dense)).ids == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_api_key_never_appears_in_reprs_dumps_or_errors() -> None:
    with pytest.raises(BackendError) as info:
        HybridQdrantVectorStore(url="http://127.0.0.1:9", api_key="sk-very-secret", timeout=1)
    assert "sk-very-secret" not in str(info.value) and "sk-very-secret" not in repr(info.value)
    store = HybridQdrantVectorStore.model_construct(api_key="sk-very-secret", url="http://q")
    assert "sk-very-secret" not in str(store) and "sk-very-secret" not in repr(store)
    assert "sk-very-secret" not in store.to_json() and "api_key" not in store.to_dict()


# -- third-party LlamaIndex models -------------------------------------------------------


def test_any_llamaindex_models_embed_nodes_and_queries(tmp_path: Path) -> None:
    embed, sparse = HashingEmbedding(), TermCountSparse()
    with HybridQdrantVectorStore(
        "foreign", path=tmp_path, embed_model=embed, sparse_embed_model=sparse
    ) as store:
        store.add([TextNode(id_=doc_id, text=embed_text(doc_id)) for doc_id in METADATA])
        for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.HYBRID):
            result = store.query(
                VectorStoreQuery(query_str="banker prison tunnel", mode=mode, similarity_top_k=2)
            )
            assert result.ids and result.ids[0] == "shawshank", mode
        stored = store.store.get(["rrf"], with_vectors=True)[0]
        assert stored.sparse == {k: v for k, v in sparse.get_text_embedding(embed_text("rrf")).items()}
    # The guard records the third-party models too.
    with pytest.raises(ModelMismatchError):
        HybridQdrantVectorStore(
            "foreign", path=tmp_path, embed_model=HashingEmbedding(dim=512), sparse_embed_model=sparse
        )


def test_our_dense_model_with_a_third_party_sparse_model(small: ModelSetup, tmp_path: Path) -> None:
    with HybridQdrantVectorStore(
        "mixed", path=tmp_path, embed_model=small.embed, sparse_embed_model=TermCountSparse()
    ) as store:
        assert store.store.identity is not None and store.store.identity.sparse_model_id is not None
        store.add([TextNode(id_=doc_id, text=embed_text(doc_id)) for doc_id in METADATA])
        result = store.query(
            VectorStoreQuery(query_str="why do plants need sunlight?", mode=VectorStoreQueryMode.HYBRID)
        )
        assert result.ids == ["photosynthesis"]


def test_sparse_only_model_with_precomputed_dense(small: ModelSetup, tmp_path: Path) -> None:
    # The index embeds with a dense model the store does not know; the store adds sparse vectors.
    with HybridQdrantVectorStore(
        "split", path=tmp_path, sparse_embed_model=small.sparse, dense_dim=small.embed.dimension
    ) as store:
        index = VectorStoreIndex.from_documents(
            documents(),
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=small.embed,
        )
        hits = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=2).retrieve(
            "why do plants need sunlight?"
        )
        assert hits[0].node.ref_doc_id == "photosynthesis"
        with pytest.raises(InvalidInputError, match="needs a dense query vector"):
            store.query(VectorStoreQuery(query_str="plants", similarity_top_k=2))  # no dense model, no vector


def test_type_errors_name_the_argument(small: ModelSetup) -> None:
    with pytest.raises(InvalidTypeError, match="sparse_embed_model"):
        HybridQdrantVectorStore(sparse_embed_model=small.embed)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="sparse=False"):
        HybridQdrantVectorStore(embed_model=small.embed, sparse_embed_model=small.sparse, sparse=False)
    with HybridQdrantVectorStore(embed_model=small.embed, sparse_embed_model=small.sparse) as store:
        with pytest.raises(TypeError, match=r"nodes\[1\]"):
            store.add([TextNode(text="ok"), "not a node"])  # type: ignore[list-item]
        with pytest.raises(TypeError, match=r"qdrant_client\.models\.Filter"):
            store.query(VectorStoreQuery(query_str="x"), qdrant_filters={"must": []})
        raw = models.Filter(
            must=[models.FieldCondition(key="metadata.k", match=models.MatchValue(value="v"))]
        )
        store.add([TextNode(id_="a", text="alpha", metadata={"k": "v"}), TextNode(id_="b", text="alpha")])
        assert store.query(
            VectorStoreQuery(query_str="alpha", similarity_top_k=5), qdrant_filters=raw
        ).ids == ["a"]


def test_embed_model_is_optional_for_our_dense_class(tiny_bge_m3_dir: Path) -> None:
    dense = BGEM3Embedding(model_name=str(tiny_bge_m3_dir))
    with HybridQdrantVectorStore(embed_model=dense, sparse=False) as store:
        assert store.store.schema.sparse is False
        store.add([TextNode(id_="x", text="only dense vectors here")])
        with pytest.raises(Exception, match="sparse"):
            store.query(VectorStoreQuery(query_str="dense", mode=VectorStoreQueryMode.SPARSE))


def test_quantization_mrl_and_fusion_settings_reach_the_collection(small: ModelSetup, tmp_path: Path) -> None:
    options = {
        "quantization": "int8",
        "mrl_dim": 128,
        "fusion": "m3",
        "sparse_weight": 0.5,
        "sparse_normalization": "none",  # SPLADE's raw dot product, to check the sum below
    }
    with HybridQdrantVectorStore("tuned", path=tmp_path, **small.store_kwargs(), **options) as store:
        store.add([TextNode(id_=doc_id, text=embed_text(doc_id)) for doc_id in METADATA])
        schema = store.store.schema
        assert schema.quantization.name == "int8" and schema.mrl_dim == 128
        q = VectorStoreQuery(query_str="why do plants need sunlight?", mode=VectorStoreQueryMode.HYBRID)
        q.similarity_top_k = 3
        hybrid = store.query(q)
        dense = store.query(VectorStoreQuery(query_str=q.query_str, similarity_top_k=8))
        sparse = store.query(VectorStoreQuery(query_str=q.query_str, mode=VectorStoreQueryMode.SPARSE))
        assert hybrid.ids and hybrid.ids[0] == "photosynthesis"
        d = dict(zip(dense.ids or [], dense.similarities or [], strict=True))
        s = dict(zip(sparse.ids or [], sparse.similarities or [], strict=True))
        # m3 with the store's weights and raw sparse scores: 1.0 * dense + 0.5 * sparse (int8
        # rescored with the originals).
        top = hybrid.ids[0]
        assert (hybrid.similarities or [])[0] == pytest.approx(d[top] + 0.5 * s.get(top, 0.0), abs=2e-3)
