"""Issue 12, part 2: collections written by langchain-qdrant and llama-index's Qdrant store.

The collections are built by those libraries' own classes (``langchain_qdrant.QdrantVectorStore``,
``llama_index.vector_stores.qdrant.QdrantVectorStore``) with the real small models (MiniLM dense,
SPLADE-tiny sparse) on a slice of the labelled bible-dev set, in qdrant-client local mode. On them:

* our dense results equal theirs on the same queries (ids and scores);
* our hybrid (rrf, the default) is not worse than theirs on the labelled queries (MRR@10, recall@10);
* every fusion, sparse search, filters and MMR work, and ids are the ones the other library used;
* rows we add are read back by the original classes through their dense and hybrid queries, and
  our deletes are seen by them;
* the cross-framework case (a LlamaIndex collection opened from LangChain and the other way round);
* the guard: identity recorded on the first write, a different model or dense size refused before
  any write, never advice to drop the collection; what the layout cannot hold is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore as LangChainQdrant
from langchain_qdrant import RetrievalMode
from llama_index.core import Document as LlamaDocument
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant
from qdrant_client import QdrantClient, models

from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings
from langchain_ext import HybridQdrantVectorStore as OurLangChain
from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding
from llama_index_ext import HybridQdrantVectorStore as OurLlama
from shared.encoders import load_encoder
from shared.errors import InvalidInputError, ModelMismatchError, UnsupportedOperationError
from shared.layouts import LANGCHAIN, LLAMA_INDEX, LLAMA_INDEX_OLD_SPARSE, langchain_layout
from shared.store import HybridStore

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "bible-dev"
N_CORPUS = 500  # Gen 1.1 - Gen 20.4: 45 labelled queries fall in it
K = 10


@dataclass
class Slice:
    ids: list[str]  # verse ids
    texts: list[str]
    metadatas: list[dict[str, Any]]
    queries: list[tuple[str, str]]  # (query text, relevant verse id)

    def uid(self, verse: str) -> str:
        """The UUID both libraries store the verse under (they only take UUIDs or integers)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, verse))


@pytest.fixture(scope="module")
def data() -> Slice:
    docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")][:N_CORPUS]
    ids = [d["id"] for d in docs]
    wanted = set(ids)
    qrels = {}
    for line in (DATA / "qrels_web.tsv").open(encoding="utf-8"):
        q, doc, _ = line.rstrip("\n").split("\t")
        if doc in wanted:
            qrels[q] = doc
    queries = [
        (q["text"], qrels[q["id"]])
        for q in map(json.loads, (DATA / "queries_web.jsonl").open(encoding="utf-8"))
        if q["id"] in qrels
    ]
    metadatas = [{"verse": d["id"], "chapter": int(d["id"].split(".")[1])} for d in docs]
    return Slice(ids, [d["text"] for d in docs], metadatas, queries)


@pytest.fixture(scope="module")
def lc_dense(minilm_dir: Path) -> BGEM3Embeddings:
    return BGEM3Embeddings(model_name=str(minilm_dir))


@pytest.fixture(scope="module")
def lc_sparse(splade_dir: Path) -> BGEM3SparseEmbeddings:
    return BGEM3SparseEmbeddings(model_name=str(splade_dir))


@pytest.fixture(scope="module")
def ll_dense(minilm_dir: Path) -> BGEM3Embedding:
    return BGEM3Embedding(model_name=str(minilm_dir))


@pytest.fixture(scope="module")
def ll_sparse(splade_dir: Path) -> BGEM3SparseEmbedding:
    return BGEM3SparseEmbedding(model_name=str(splade_dir))


@pytest.fixture(scope="module")
def sparse_fns(splade_dir: Path) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """SPLADE-tiny as llama-index's ``sparse_doc_fn`` / ``sparse_query_fn``."""
    enc = load_encoder(None, sparse_model=str(splade_dir))

    def make(kind: Any) -> Callable[[list[str]], tuple[list[list[int]], list[list[float]]]]:
        def fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
            rows = enc.encode(texts, kind, outputs=["sparse"]).sparse
            assert rows is not None
            return [list(r) for r in rows], [list(r.values()) for r in rows]

        return fn

    return make("document"), make("query")


# -- collections built by the other libraries ------------------------------------------------

LANGCHAIN_VARIANTS = {
    # langchain-qdrant's defaults: unnamed dense vector, page_content / metadata.
    "default": {},
    # A named dense vector and custom payload keys, as a caller may have configured them.
    "custom": {
        "vector_name": "vec",
        "sparse_vector_name": "my-sparse",
        "content_payload_key": "body",
        "metadata_payload_key": "meta",
    },
}


def langchain_collection(
    data: Slice, dense: Any, sparse: Any, name: str, mode: RetrievalMode, n: int | None = None, **keys: Any
) -> LangChainQdrant:
    n = len(data.ids) if n is None else n
    return LangChainQdrant.from_texts(
        data.texts[:n],
        dense,
        metadatas=data.metadatas[:n],
        ids=[data.uid(v) for v in data.ids[:n]],
        location=":memory:",
        collection_name=name,
        retrieval_mode=mode,
        sparse_embedding=sparse if mode != RetrievalMode.DENSE else None,
        **keys,
    )


def langchain_reader(
    theirs: LangChainQdrant, mode: RetrievalMode, dense: Any, sparse: Any
) -> LangChainQdrant:
    """langchain-qdrant's own store in ``mode`` over the same collection."""
    return LangChainQdrant(
        client=theirs.client,
        collection_name=theirs.collection_name,
        embedding=dense,
        sparse_embedding=sparse,
        retrieval_mode=mode,
        vector_name=theirs.vector_name,
        sparse_vector_name=theirs.sparse_vector_name,
        content_payload_key=theirs.content_payload_key,
        metadata_payload_key=theirs.metadata_payload_key,
    )


def open_ours_langchain(theirs: LangChainQdrant, dense: Any, sparse: Any, **kwargs: Any) -> OurLangChain:
    """Ours on their collection, with langchain-qdrant's keyword names (the custom ones only)."""
    defaults = {
        "vector_name": "",
        "sparse_vector_name": "langchain-sparse",
        "content_payload_key": "page_content",
        "metadata_payload_key": "metadata",
    }
    keys = {k: getattr(theirs, k) for k, v in defaults.items() if getattr(theirs, k) != v}
    return OurLangChain.from_existing_collection(
        theirs.collection_name, dense, sparse_embedding=sparse, client=theirs.client, **keys, **kwargs
    )


def llama_nodes(data: Slice, n: int | None = None) -> list[TextNode]:
    n = len(data.ids) if n is None else n
    return [
        TextNode(
            id_=data.uid(v),
            text=t,
            metadata=dict(m),
            # Embed the text alone (as langchain does), so both libraries embed the same strings.
            excluded_embed_metadata_keys=list(m),
            excluded_llm_metadata_keys=list(m),
        )
        for v, t, m in zip(data.ids[:n], data.texts[:n], data.metadatas[:n], strict=True)
    ]


def llama_collection(
    data: Slice, dense: BGEM3Embedding, fns: tuple[Any, Any], name: str, n: int | None = None
) -> LlamaQdrant:
    client = QdrantClient(":memory:")
    if name.endswith("old"):
        # A collection from llama-index's older releases: the sparse vector is "text-sparse".
        client.create_collection(
            name,
            vectors_config={"text-dense": models.VectorParams(size=384, distance=models.Distance.COSINE)},
            sparse_vectors_config={"text-sparse": models.SparseVectorParams()},
        )
    theirs = LlamaQdrant(
        name, client=client, enable_hybrid=True, sparse_doc_fn=fns[0], sparse_query_fn=fns[1]
    )
    VectorStoreIndex(
        llama_nodes(data, n),
        storage_context=StorageContext.from_defaults(vector_store=theirs),
        embed_model=dense,
    )
    return theirs


@pytest.fixture(scope="module", params=list(LANGCHAIN_VARIANTS))
def lc_hybrid(request: pytest.FixtureRequest, data: Slice, lc_dense: Any, lc_sparse: Any) -> LangChainQdrant:
    return langchain_collection(
        data,
        lc_dense,
        lc_sparse,
        f"lc-{request.param}",
        RetrievalMode.HYBRID,
        **LANGCHAIN_VARIANTS[request.param],
    )


@pytest.fixture(scope="module")
def ll_hybrid(data: Slice, ll_dense: BGEM3Embedding, sparse_fns: Any) -> LlamaQdrant:
    return llama_collection(data, ll_dense, sparse_fns, "ll")


# -- measuring ---------------------------------------------------------------------------------


def mrr_recall(ranked: list[list[str]], relevant: list[str]) -> tuple[float, float]:
    mrr = recall = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        if rel in ids[:K]:
            recall += 1
            mrr += 1 / (ids.index(rel) + 1)
    return mrr / len(relevant), recall / len(relevant)


def verse_of_lc(doc: Document, meta_key: str = "verse") -> str:
    return str(doc.metadata[meta_key])


# -- langchain-qdrant collections -----------------------------------------------------------------


def test_langchain_layout_detected_or_given(
    lc_hybrid: LangChainQdrant, lc_dense: Any, lc_sparse: Any
) -> None:
    ours = open_ours_langchain(lc_hybrid, lc_dense, lc_sparse)
    layout = ours.store.layout
    assert layout.name == "langchain"
    assert (layout.dense_vector, layout.sparse_vector) == (
        lc_hybrid.vector_name,
        lc_hybrid.sparse_vector_name,
    )
    assert (layout.text_key, layout.metadata_key) == (
        lc_hybrid.content_payload_key,
        lc_hybrid.metadata_payload_key,
    )
    assert ours.store.schema.dense_dim == 384 and ours.store.schema.sparse
    # Opening it does not write anything (the guard is recorded on the first write).
    assert lc_hybrid.client.get_collection(lc_hybrid.collection_name).config.metadata is None
    ours.close()
    # Without the keyword names, the layout (custom payload keys included) is detected.
    detected = OurLangChain(
        lc_dense,
        sparse_embedding=lc_sparse,
        collection_name=lc_hybrid.collection_name,
        client=lc_hybrid.client,
    )
    assert detected.store.layout == layout
    detected.close()


def test_langchain_dense_results_equal_langchain_qdrant(
    data: Slice, lc_hybrid: LangChainQdrant, lc_dense: Any, lc_sparse: Any
) -> None:
    theirs = langchain_reader(lc_hybrid, RetrievalMode.DENSE, lc_dense, None)
    ours = open_ours_langchain(lc_hybrid, lc_dense, lc_sparse)
    for text, _ in data.queries[:15]:
        mine = ours.similarity_search_with_score(text, k=K, mode="dense")
        their = theirs.similarity_search_with_score(text, k=K)
        assert [d.id for d, _ in mine] == [d.metadata["_id"] for d, _ in their]
        assert [s for _, s in mine] == pytest.approx([s for _, s in their], abs=1e-5)
        assert [d.page_content for d, _ in mine] == [d.page_content for d, _ in their]
        assert mine[0][0].metadata == {k: v for k, v in their[0][0].metadata.items() if not k.startswith("_")}
    ours.close()


def test_langchain_hybrid_not_worse_than_langchain_qdrant(
    data: Slice, lc_hybrid: LangChainQdrant, lc_dense: Any, lc_sparse: Any
) -> None:
    theirs = langchain_reader(lc_hybrid, RetrievalMode.HYBRID, lc_dense, lc_sparse)
    ours = open_ours_langchain(lc_hybrid, lc_dense, lc_sparse)
    relevant = [rel for _, rel in data.queries]
    their_runs = [[verse_of_lc(d) for d in theirs.similarity_search(q, k=K)] for q, _ in data.queries]
    scores = {"langchain-qdrant hybrid": mrr_recall(their_runs, relevant)}
    for fusion in ("rrf", "dbsf", "m3"):
        runs = [
            [verse_of_lc(d) for d in ours.similarity_search(q, k=K, fusion=fusion)] for q, _ in data.queries
        ]
        scores[f"ours {fusion}"] = mrr_recall(runs, relevant)
    print(f"\n{lc_hybrid.collection_name} ({len(relevant)} queries) MRR@10, recall@10: {scores}")
    their_mrr, their_recall = scores["langchain-qdrant hybrid"]
    assert scores["ours rrf"][0] >= their_mrr and scores["ours rrf"][1] >= their_recall
    for fusion in ("dbsf", "m3"):
        assert scores[f"ours {fusion}"][1] >= 0.5 * their_recall  # every fusion works on this layout
    ours.close()


def test_langchain_sparse_filters_mmr_and_ids(
    data: Slice, lc_hybrid: LangChainQdrant, lc_dense: Any, lc_sparse: Any
) -> None:
    ours = open_ours_langchain(lc_hybrid, lc_dense, lc_sparse)
    text, rel = data.queries[0]
    # Sparse search equals langchain-qdrant's sparse search.
    sparse_theirs = langchain_reader(lc_hybrid, RetrievalMode.SPARSE, None, lc_sparse)
    assert [d.id for d in ours.similarity_search(text, k=5, mode="sparse")] == [
        d.metadata["_id"] for d in sparse_theirs.similarity_search(text, k=5)
    ]
    # A metadata filter, ours as a dict and theirs as a Qdrant filter on their metadata key.
    chapter = int(rel.split(".")[1])
    mine = ours.similarity_search(text, k=5, mode="dense", filter={"chapter": chapter})
    assert mine and all(d.metadata["chapter"] == chapter for d in mine)
    their_filter = models.Filter(
        must=[
            models.FieldCondition(
                key=f"{lc_hybrid.metadata_payload_key}.chapter", match=models.MatchValue(value=chapter)
            )
        ]
    )
    their = langchain_reader(lc_hybrid, RetrievalMode.DENSE, lc_dense, None).similarity_search(
        text, k=5, filter=their_filter
    )
    assert [d.id for d in mine] == [d.metadata["_id"] for d in their]
    for fusion in ("rrf", "dbsf", "m3"):
        hits = ours.similarity_search(text, k=5, fusion=fusion, filter={"chapter": chapter})
        assert hits and all(d.metadata["chapter"] == chapter for d in hits)
    # MMR: k distinct documents, the most relevant first.
    mmr = ours.max_marginal_relevance_search(text, k=4, fetch_k=20, lambda_mult=0.5)
    assert len({d.id for d in mmr}) == 4
    assert mmr[0].id == ours.similarity_search(text, k=1, mode="dense")[0].id
    # get_by_ids with the ids langchain-qdrant stored the documents under.
    wanted = [data.uid(rel), data.uid(data.ids[3])]
    got = ours.get_by_ids(wanted)
    assert [d.id for d in got] == wanted
    assert got[0].page_content == data.texts[data.ids.index(rel)]
    assert got[1].metadata == data.metadatas[3]
    assert ours.count() == len(data.ids)
    assert ours.count(filter={"chapter": chapter}) == sum(m["chapter"] == chapter for m in data.metadatas)
    ours.close()


@pytest.mark.parametrize("variant", list(LANGCHAIN_VARIANTS))
def test_langchain_rows_we_write_are_read_by_langchain_qdrant(
    variant: str, data: Slice, lc_dense: Any, lc_sparse: Any
) -> None:
    theirs = langchain_collection(
        data, lc_dense, lc_sparse, f"w-{variant}", RetrievalMode.HYBRID, n=60, **LANGCHAIN_VARIANTS[variant]
    )
    ours = open_ours_langchain(theirs, lc_dense, lc_sparse)
    new = [
        "The dragon slept under the mountain, guarding a heap of gold.",
        "Quantum computers use qubits that can hold superpositions.",
    ]
    ids = ours.add_texts(
        new, metadatas=[{"chapter": 99, "verse": "new.1"}, {"chapter": 98, "verse": "new.2"}]
    )
    ids.append(ours.add_texts(["A recipe for sourdough bread"], ids=["my-own-id"])[0])
    assert theirs.client.count(theirs.collection_name).count == 63
    for mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID):
        reader = langchain_reader(theirs, mode, lc_dense, lc_sparse)
        for text, meta in zip(
            new, ({"chapter": 99, "verse": "new.1"}, {"chapter": 98, "verse": "new.2"}), strict=True
        ):
            top = reader.similarity_search(text, k=1)[0]
            assert top.page_content == text
            assert {k: v for k, v in top.metadata.items() if not k.startswith("_")} == meta
        assert reader.similarity_search("sourdough bread recipe", k=1)[0].page_content == (
            "A recipe for sourdough bread"
        )
    # langchain-qdrant finds them by the ids we returned (UUIDs; "my-own-id" gets a UUIDv5 point id).
    assert {d.page_content for d in theirs.get_by_ids(ids[:2])} == set(new)
    assert ours.get_by_ids(["my-own-id"])[0].page_content == "A recipe for sourdough bread"
    # The guard was recorded on this first write.
    guard = theirs.client.get_collection(theirs.collection_name).config.metadata["m3_hybrid"]
    assert guard["schema"]["dense_dim"] == 384 and guard["identity"]["model_id"]
    assert guard["layout"]["name"] == "langchain"
    # Our deletes are seen by langchain-qdrant.
    ours.delete(ids)
    assert theirs.client.count(theirs.collection_name).count == 60
    for mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID):
        reader = langchain_reader(theirs, mode, lc_dense, lc_sparse)
        assert all(d.page_content not in new for d in reader.similarity_search(new[0], k=5))
    assert theirs.get_by_ids(ids[:2]) == []
    # Their writes after ours are read by us.
    their_id = theirs.add_texts(["A lighthouse keeper watched the storm."], metadatas=[{"chapter": 7}])[0]
    # (langchain-qdrant generates hex UUIDs; Qdrant gives them back hyphenated.)
    assert uuid.UUID(ours.similarity_search("lighthouse in a storm", k=1)[0].id) == uuid.UUID(their_id)
    ours.close()


def test_langchain_dense_only_collection_and_generic_embeddings(data: Slice, lc_dense: Any) -> None:
    theirs = langchain_collection(data, lc_dense, None, "dense-only", RetrievalMode.DENSE, n=40)
    ours = OurLangChain(lc_dense, collection_name="dense-only", client=theirs.client)
    assert ours.store.layout.name == "langchain" and not ours.store.schema.sparse
    text = data.texts[5]
    assert ours.similarity_search(text, k=1)[0].id == data.uid(data.ids[5])
    # A generic Embeddings of another size is refused before anything is written.
    fake = OurLangChain(
        DeterministicFakeEmbedding(size=8), collection_name="dense-only", client=theirs.client
    )
    with pytest.raises(InvalidInputError, match="size 8, the collection expects 384"):
        fake.add_texts(["nope"])
    assert theirs.client.count("dense-only").count == 40
    assert theirs.client.get_collection("dense-only").config.metadata is None
    ours.close()


def test_from_existing_collection_takes_langchain_qdrant_keywords(
    data: Slice, lc_dense: Any, lc_sparse: Any
) -> None:
    keys = LANGCHAIN_VARIANTS["custom"]
    theirs = langchain_collection(data, lc_dense, lc_sparse, "kw", RetrievalMode.HYBRID, n=30, **keys)
    ours = OurLangChain.from_existing_collection(
        collection_name="kw",
        embedding=lc_dense,
        sparse_embedding=lc_sparse,
        retrieval_mode=RetrievalMode.HYBRID,  # langchain-qdrant's own enum
        client=theirs.client,
        **keys,
    )
    assert ours.retrieval_mode == "hybrid"
    assert ours.store.layout == langchain_layout(**keys)
    top = ours.similarity_search(data.texts[7], k=1)[0]
    assert top.page_content == data.texts[7] and top.metadata == data.metadatas[7]
    ours.close()
    # Keys that do not match the collection are refused with the names involved.
    with pytest.raises(ModelMismatchError, match="no dense vector 'other'"):
        OurLangChain.from_existing_collection(
            "kw", lc_dense, sparse_embedding=lc_sparse, client=theirs.client, vector_name="other"
        )


# -- llama-index collections --------------------------------------------------------------------


def test_llama_dense_results_equal_llama_index(
    data: Slice, ll_hybrid: LlamaQdrant, ll_dense: BGEM3Embedding, ll_sparse: BGEM3SparseEmbedding
) -> None:
    ours = OurLlama("ll", client=ll_hybrid.client, embed_model=ll_dense, sparse_embed_model=ll_sparse)
    assert ours.store.layout == LLAMA_INDEX
    for text, _ in data.queries[:15]:
        q = VectorStoreQuery(query_embedding=ll_dense.get_query_embedding(text), similarity_top_k=K)
        mine, their = ours.query(q), ll_hybrid.query(q)
        assert mine.ids == their.ids
        assert mine.similarities == pytest.approx(their.similarities, abs=1e-5)
        assert [n.get_content() for n in mine.nodes] == [n.get_content() for n in their.nodes]
        assert mine.nodes[0].metadata == their.nodes[0].metadata
    # Filters: the same MetadataFilters give the same results as llama-index's.
    chapter = int(data.queries[0][1].split(".")[1])
    flt = MetadataFilters(filters=[MetadataFilter(key="chapter", value=chapter)])
    q = VectorStoreQuery(
        query_embedding=ll_dense.get_query_embedding(data.queries[0][0]), similarity_top_k=5, filters=flt
    )
    mine, their = ours.query(q), ll_hybrid.query(q)
    assert mine.ids == their.ids and all(n.metadata["chapter"] == chapter for n in mine.nodes)
    ours.close()


def test_llama_hybrid_not_worse_than_llama_index(
    data: Slice, ll_hybrid: LlamaQdrant, ll_dense: BGEM3Embedding, ll_sparse: BGEM3SparseEmbedding
) -> None:
    ours = OurLlama("ll", client=ll_hybrid.client, embed_model=ll_dense, sparse_embed_model=ll_sparse)
    relevant = [rel for _, rel in data.queries]

    def run(store: Any, text: str, **kwargs: Any) -> list[str]:
        q = VectorStoreQuery(
            query_str=text,
            query_embedding=ll_dense.get_query_embedding(text),
            similarity_top_k=K,
            mode=VectorStoreQueryMode.HYBRID,
        )
        return [n.metadata["verse"] for n in store.query(q, **kwargs).nodes]

    scores = {"llama-index hybrid": mrr_recall([run(ll_hybrid, q) for q, _ in data.queries], relevant)}
    for fusion in ("rrf", "dbsf", "m3"):
        scores[f"ours {fusion}"] = mrr_recall(
            [run(ours, q, fusion=fusion) for q, _ in data.queries], relevant
        )
    print(f"\nllama-index collection ({len(relevant)} queries) MRR@10, recall@10: {scores}")
    their_mrr, their_recall = scores["llama-index hybrid"]
    assert scores["ours rrf"][0] >= their_mrr and scores["ours rrf"][1] >= their_recall
    for fusion in ("dbsf", "m3"):
        assert scores[f"ours {fusion}"][1] >= 0.5 * their_recall
    # Sparse and MMR on the same collection.
    text, rel = data.queries[1]
    sparse = ours.query(
        VectorStoreQuery(query_str=text, similarity_top_k=5, mode=VectorStoreQueryMode.SPARSE)
    )
    assert len(sparse.ids) == 5
    mmr = ours.query(
        VectorStoreQuery(
            query_embedding=ll_dense.get_query_embedding(text),
            similarity_top_k=4,
            mode=VectorStoreQueryMode.MMR,
            mmr_threshold=0.5,
        )
    )
    assert len(set(mmr.ids)) == 4
    # get_nodes with llama-index's node ids.
    nodes = ours.get_nodes([data.uid(rel), data.uid(data.ids[0])])
    assert [n.node_id for n in nodes] == [data.uid(rel), data.uid(data.ids[0])]
    assert nodes[1].get_content() == data.texts[0]
    ours.close()


@pytest.mark.parametrize("name", ["wl", "wl-old"])
def test_llama_rows_we_write_are_read_by_llama_index(
    name: str, data: Slice, ll_dense: BGEM3Embedding, ll_sparse: BGEM3SparseEmbedding, sparse_fns: Any
) -> None:
    theirs = llama_collection(data, ll_dense, sparse_fns, name, n=40)
    ours = OurLlama(name, client=theirs.client, sparse_embed_model=ll_sparse)  # dense from the index
    assert ours.store.layout == (LLAMA_INDEX_OLD_SPARSE if name.endswith("old") else LLAMA_INDEX)
    index = VectorStoreIndex.from_vector_store(ours, embed_model=ll_dense)
    index.insert(
        LlamaDocument(text="The dragon slept under the mountain, guarding gold.", doc_id="doc-dragon")
    )
    node = TextNode(text="Quantum computers use qubits in superposition.", metadata={"topic": "physics"})
    index.insert_nodes([node])
    assert theirs.client.count(name).count == 42

    def their_top(text: str, mode: VectorStoreQueryMode) -> Any:
        q = VectorStoreQuery(
            query_str=text, query_embedding=ll_dense.get_query_embedding(text), similarity_top_k=1, mode=mode
        )
        return theirs.query(q)

    for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.HYBRID):
        got = their_top("qubits and superposition", mode)
        assert got.ids == [node.node_id] and got.nodes[0].get_content() == node.text
        assert got.nodes[0].metadata == {"topic": "physics"}
        dragon = their_top("a dragon guarding gold", mode).nodes[0]
        assert dragon.get_content().startswith("The dragon") and dragon.ref_doc_id == "doc-dragon"
    # llama-index's own get_nodes reads our node back.
    assert theirs.get_nodes([node.node_id])[0].get_content() == node.text
    # Our deletes (by document and by node) are seen by llama-index.
    ours.delete("doc-dragon")
    ours.delete_nodes([node.node_id])
    assert theirs.client.count(name).count == 40
    for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.HYBRID):
        assert their_top("a dragon guarding gold", mode).nodes[0].ref_doc_id != "doc-dragon"
        assert their_top("qubits and superposition", mode).ids != [node.node_id]
    ours.close()


# -- cross-framework (llama_index #16587) ----------------------------------------------------------


def test_llama_collection_opened_from_langchain(
    data: Slice, ll_dense: BGEM3Embedding, sparse_fns: Any, lc_dense: Any, lc_sparse: Any
) -> None:
    theirs = llama_collection(data, ll_dense, sparse_fns, "x-ll", n=60)
    ours = OurLangChain(lc_dense, sparse_embedding=lc_sparse, collection_name="x-ll", client=theirs.client)
    assert ours.store.layout == LLAMA_INDEX and ours.retrieval_mode == "hybrid"
    for fusion in ("rrf", "dbsf", "m3"):
        top = ours.similarity_search(data.texts[12], k=1, fusion=fusion)[0]
        assert top.page_content == data.texts[12] and top.id == data.uid(data.ids[12])
    got = ours.get_by_ids([data.uid(data.ids[3])])
    assert got[0].page_content == data.texts[3] and got[0].metadata["verse"] == data.ids[3]
    [new_id] = ours.add_texts(["The lighthouse keeper watched the storm."], metadatas=[{"chapter": 77}])
    q = VectorStoreQuery(
        query_str="lighthouse keeper in a storm",
        query_embedding=ll_dense.get_query_embedding("lighthouse keeper in a storm"),
        similarity_top_k=1,
        mode=VectorStoreQueryMode.HYBRID,
    )
    res = theirs.query(q)
    assert res.ids == [new_id] and res.nodes[0].get_content() == "The lighthouse keeper watched the storm."
    assert res.nodes[0].metadata == {"chapter": 77}
    ours.delete([new_id])
    assert theirs.client.count("x-ll").count == 60
    ours.close()


def test_langchain_collection_opened_from_llama_index(
    data: Slice, lc_dense: Any, lc_sparse: Any, ll_dense: BGEM3Embedding, ll_sparse: BGEM3SparseEmbedding
) -> None:
    theirs = langchain_collection(data, lc_dense, lc_sparse, "x-lc", RetrievalMode.HYBRID, n=60)
    ours = OurLlama("x-lc", client=theirs.client, embed_model=ll_dense, sparse_embed_model=ll_sparse)
    assert ours.store.layout == LANGCHAIN
    index = VectorStoreIndex.from_vector_store(ours, embed_model=ll_dense)
    for mode in ("default", "sparse", "hybrid"):
        top = index.as_retriever(similarity_top_k=1, vector_store_query_mode=mode).retrieve(data.texts[20])[0]
        assert top.node.get_content() == data.texts[20] and top.node.node_id == data.uid(data.ids[20])
        assert top.node.metadata == data.metadatas[20]
    nodes = ours.get_nodes([data.uid(data.ids[4])])
    assert nodes[0].get_content() == data.texts[4]
    index.insert_nodes([TextNode(text="The lighthouse keeper watched the storm.", metadata={"chapter": 77})])
    for mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID):
        top = langchain_reader(theirs, mode, lc_dense, lc_sparse).similarity_search("lighthouse keeper", k=1)[
            0
        ]
        assert top.page_content == "The lighthouse keeper watched the storm."
        assert top.metadata["chapter"] == 77
    ours.close()


# -- the guard ---------------------------------------------------------------------------------


def test_guard_recorded_on_first_write_then_enforced(
    data: Slice, lc_dense: Any, lc_sparse: Any, minilm_dir: Path, splade_dir: Path, tiny_bge_m3_dir: Path
) -> None:
    theirs = langchain_collection(data, lc_dense, lc_sparse, "g", RetrievalMode.HYBRID, n=20)
    client = theirs.client
    # A different dense size is refused at open, before anything is written, without drop advice.
    with pytest.raises(ModelMismatchError, match="384-d") as e:
        OurLangChain(BGEM3Embeddings(model_name=str(tiny_bge_m3_dir)), collection_name="g", client=client)
    assert "recreate" not in str(e.value)
    assert client.get_collection("g").config.metadata is None and client.count("g").count == 20
    ours = OurLangChain(lc_dense, sparse_embedding=lc_sparse, collection_name="g", client=client)
    assert client.get_collection("g").config.metadata is None  # opening alone writes nothing
    ours.add_texts(["one more"])
    assert client.get_collection("g").config.metadata["m3_hybrid"]["identity"] is not None
    ours.close()
    # Now the identity is known: the same size with another query prompt is a different encoder.
    other = BGEM3Embeddings(model_name=str(minilm_dir), query_instruction="query: ")
    with pytest.raises(ModelMismatchError, match=r"identity\.query_prompt"):
        OurLangChain(other, sparse_embedding=lc_sparse, collection_name="g", client=client)
    again = OurLangChain(lc_dense, sparse_embedding=lc_sparse, collection_name="g", client=client)
    assert again.store.layout.name == "langchain" and again.count() == 21
    again.close()


def test_what_a_foreign_layout_cannot_hold_is_refused(data: Slice, lc_dense: Any, lc_sparse: Any) -> None:
    theirs = langchain_collection(data, lc_dense, lc_sparse, "r", RetrievalMode.HYBRID, n=10)
    with pytest.raises(UnsupportedOperationError, match="MRL funnel"):
        OurLangChain(
            lc_dense, sparse_embedding=lc_sparse, collection_name="r", client=theirs.client, mrl_dim=64
        )
    with pytest.raises(UnsupportedOperationError, match="ColBERT"):
        HybridStore("r", client=theirs.client, colbert=True)
    with pytest.raises(UnsupportedOperationError, match="ColBERT"):
        HybridStore("new", client=theirs.client, layout="llama-index", colbert=True, dense_dim=8)
    with pytest.raises(InvalidInputError, match="qdrant-client"):
        HybridStore("new", layout="langchain", dense_dim=8)  # the embedded store keeps our layout
    assert theirs.client.count("r").count == 10


def test_new_collection_in_a_foreign_layout_is_readable_by_that_library(
    data: Slice, lc_dense: Any, lc_sparse: Any
) -> None:
    client = QdrantClient(":memory:")
    ours = OurLangChain(
        lc_dense, sparse_embedding=lc_sparse, collection_name="fresh", client=client, layout="langchain"
    )
    ids = ours.add_texts(data.texts[:10], metadatas=data.metadatas[:10])
    reader = LangChainQdrant(
        client=client,
        collection_name="fresh",
        embedding=lc_dense,
        sparse_embedding=lc_sparse,
        retrieval_mode=RetrievalMode.HYBRID,
    )
    top = reader.similarity_search(data.texts[2], k=1)[0]
    assert top.page_content == data.texts[2] and top.metadata["_id"] == ids[2]
    ours.close()
    # Reopened without layout=: the recorded guard says which layout it is.
    again = OurLangChain(lc_dense, sparse_embedding=lc_sparse, collection_name="fresh", client=client)
    assert again.store.layout == LANGCHAIN
    with pytest.raises(InvalidInputError, match="not the layout= given"):
        OurLangChain(
            lc_dense, sparse_embedding=lc_sparse, collection_name="fresh", client=client, layout="llama-index"
        )
    again.close()


def test_llama_non_hybrid_collection_with_its_unnamed_vector(data: Slice, ll_dense: BGEM3Embedding) -> None:
    client = QdrantClient(":memory:")
    theirs = LlamaQdrant("plain", client=client)  # enable_hybrid=False: one unnamed dense vector
    VectorStoreIndex(
        llama_nodes(data, 30),
        storage_context=StorageContext.from_defaults(vector_store=theirs),
        embed_model=ll_dense,
    )
    ours = OurLlama("plain", client=client, embed_model=ll_dense)
    assert ours.store.layout.name == "llama-index" and ours.store.layout.dense_vector == ""
    assert not ours.store.schema.sparse
    index = VectorStoreIndex.from_vector_store(ours, embed_model=ll_dense)
    node = TextNode(text="Kittens meow for their supper.")
    index.insert_nodes([node])
    q = VectorStoreQuery(query_embedding=ll_dense.get_query_embedding("a kitten meowing"), similarity_top_k=3)
    assert theirs.query(q).ids == ours.query(q).ids and theirs.query(q).ids[0] == node.node_id
    ours.close()


def test_langchain_sparse_only_collection(data: Slice, lc_sparse: Any) -> None:
    theirs = langchain_collection(data, None, lc_sparse, "sparse-only", RetrievalMode.SPARSE, n=30)
    ours = OurLangChain(sparse_embedding=lc_sparse, collection_name="sparse-only", client=theirs.client)
    assert ours.store.schema.dense_dim is None and ours.retrieval_mode == "sparse"
    assert ours.similarity_search(data.texts[9], k=1)[0].id == data.uid(data.ids[9])
    [new_id] = ours.add_texts(["Kittens meow for their supper."])
    top = theirs.similarity_search("kittens meow", k=1)[0]
    assert top.page_content == "Kittens meow for their supper." and top.metadata["_id"] == new_id
    ours.close()


async def test_async_on_a_foreign_collection(data: Slice, lc_dense: Any, lc_sparse: Any) -> None:
    theirs = langchain_collection(data, lc_dense, lc_sparse, "async", RetrievalMode.HYBRID, n=20)
    ours = OurLangChain(lc_dense, sparse_embedding=lc_sparse, collection_name="async", client=theirs.client)
    hits = await ours.asimilarity_search(data.texts[4], k=1)
    assert hits[0].id == data.uid(data.ids[4])
    [new_id] = await ours.aadd_texts(["Kittens meow for their supper."])
    assert theirs.client.get_collection("async").config.metadata["m3_hybrid"]["layout"]["name"] == "langchain"
    assert [d.page_content for d in await ours.aget_by_ids([new_id])] == ["Kittens meow for their supper."]
    await ours.adelete([new_id])
    assert theirs.client.count("async").count == 20
    await ours.aclose()


def test_vectors_and_scroll_pages_on_a_langchain_collection() -> None:
    emb = DeterministicFakeEmbedding(size=8)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(7)]
    theirs = LangChainQdrant.from_texts(
        [f"text {i}" for i in range(7)], emb, ids=ids, location=":memory:", collection_name="v"
    )
    store = HybridStore("v", client=theirs.client)
    [rec] = store.get([ids[2]], with_vectors=True)
    assert rec.text == "text 2" and rec.dense is not None
    assert rec.dense.tolist() == pytest.approx(
        theirs.client.retrieve("v", [ids[2]], with_vectors=True)[0].vector
    )
    store.scroll_page_size = 3  # several engine pages, resumed from a caller's id
    pages, offset = [], None
    while page := store.scroll(limit=2, offset=offset):
        pages.append([r.id for r in page])
        offset = page[-1].id
    assert [i for p in pages for i in p] == ids and all(len(p) <= 2 for p in pages)
    store.close()
