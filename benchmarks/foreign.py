"""Ours vs langchain-qdrant and llama-index's Qdrant store, on the collections they wrote.

Each library builds its own hybrid collection (qdrant-client local mode) from a slice of bible-dev
with MiniLM (dense) + SPLADE-tiny (sparse); then the same queries run through the library's own
class and through ours opened on that very collection (layout detected). Reported: nDCG@10,
MRR@10, Recall@10 over the labelled queries, and how many dense top-10 lists are identical.
Local mode searches brute force: no speed claims from this run.

    python benchmarks/foreign.py --corpus-size 3000
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import uuid
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "bible-dev"
K = 10


def load(n: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")][:n]
    ids = {d["id"] for d in docs}
    qrels = {}
    for line in (DATA / "qrels_web.tsv").open(encoding="utf-8"):
        q, doc, _ = line.rstrip("\n").split("\t")
        if doc in ids:
            qrels[q] = doc
    queries = [
        (q["text"], qrels[q["id"]])
        for q in map(json.loads, (DATA / "queries_web.jsonl").open(encoding="utf-8"))
        if q["id"] in qrels
    ]
    return docs, queries


def metrics(runs: list[list[str]], relevant: list[str]) -> dict[str, float]:
    ndcg = mrr = recall = 0.0
    for ids, rel in zip(runs, relevant, strict=True):
        if rel in ids[:K]:
            rank = ids.index(rel) + 1
            ndcg += 1 / math.log2(rank + 1)
            mrr += 1 / rank
            recall += 1
    n = len(relevant)
    return {"nDCG@10": ndcg / n, "MRR@10": mrr / n, "Recall@10": recall / n}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-size", type=int, default=3000)
    args = parser.parse_args()

    from langchain_qdrant import QdrantVectorStore as LangChainQdrant
    from langchain_qdrant import RetrievalMode
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
    from llama_index.vector_stores.qdrant import QdrantVectorStore as LlamaQdrant
    from qdrant_client import QdrantClient

    from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings
    from langchain_ext import HybridQdrantVectorStore as OurLangChain
    from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding
    from llama_index_ext import HybridQdrantVectorStore as OurLlama
    from shared.encoders import MINILM, SPLADE_TINY, load_encoder

    docs, queries = load(args.corpus_size)
    relevant = [rel for _, rel in queries]
    texts = [d["text"] for d in docs]
    uid = {d["id"]: str(uuid.uuid5(uuid.NAMESPACE_URL, d["id"])) for d in docs}
    verse_of = {v: k for k, v in uid.items()}
    cache = 2 * len(docs) + 2 * len(queries)
    lc_dense = BGEM3Embeddings(model_name=MINILM, cache_size=cache)
    lc_sparse = BGEM3SparseEmbeddings(model_name=SPLADE_TINY, cache_size=cache)
    ll_dense = BGEM3Embedding(model_name=MINILM, cache_size=cache)
    ll_sparse = BGEM3SparseEmbedding(model_name=SPLADE_TINY, cache_size=cache)
    splade = load_encoder(None, sparse_model=SPLADE_TINY, cache_size=cache)
    rows: list[tuple[str, str, dict[str, float]]] = []

    def report(who: str, what: str, m: dict[str, float]) -> None:
        rows.append((who, what, m))
        print(f"# {who} | {what} | {m} | {time.perf_counter() - t0:.0f} s", flush=True)

    identical: dict[str, str] = {}
    t0 = time.perf_counter()

    # -- langchain-qdrant ------------------------------------------------------------------
    theirs_lc = LangChainQdrant.from_texts(
        texts,
        lc_dense,
        metadatas=[{"verse": d["id"]} for d in docs],
        ids=[uid[d["id"]] for d in docs],
        location=":memory:",
        collection_name="lc",
        retrieval_mode=RetrievalMode.HYBRID,
        sparse_embedding=lc_sparse,
    )
    built = time.perf_counter() - t0
    print(f"# langchain-qdrant collection built in {built:.0f} s", flush=True)

    def lc_reader(mode: Any) -> Any:
        return LangChainQdrant(
            client=theirs_lc.client,
            collection_name="lc",
            embedding=lc_dense,
            sparse_embedding=lc_sparse,
            retrieval_mode=mode,
        )

    ours_lc = OurLangChain(
        lc_dense, sparse_embedding=lc_sparse, collection_name="lc", client=theirs_lc.client
    )
    dense_theirs = [
        [d.metadata["verse"] for d in lc_reader(RetrievalMode.DENSE).similarity_search(q, k=K)]
        for q, _ in queries
    ]
    dense_ours = [
        [d.metadata["verse"] for d in ours_lc.similarity_search(q, k=K, mode="dense")] for q, _ in queries
    ]
    identical["langchain-qdrant"] = (
        f"{sum(a == b for a, b in zip(dense_theirs, dense_ours, strict=True))}/{len(queries)}"
    )
    report("langchain-qdrant", "their dense", metrics(dense_theirs, relevant))
    report("langchain-qdrant", "our dense", metrics(dense_ours, relevant))
    hyb = lc_reader(RetrievalMode.HYBRID)
    their_runs = [[d.metadata["verse"] for d in hyb.similarity_search(q, k=K)] for q, _ in queries]
    report("langchain-qdrant", "their hybrid (RRF)", metrics(their_runs, relevant))
    for fusion in ("rrf", "dbsf", "m3"):
        runs = [
            [d.metadata["verse"] for d in ours_lc.similarity_search(q, k=K, fusion=fusion)]
            for q, _ in queries
        ]
        report("langchain-qdrant", f"our hybrid {fusion}", metrics(runs, relevant))

    # -- llama-index ---------------------------------------------------------------------------
    def sparse_fn(kind: Any) -> Any:
        def fn(batch: list[str]) -> tuple[list[list[int]], list[list[float]]]:
            out = splade.encode(batch, kind, outputs=["sparse"]).sparse
            assert out is not None
            return [list(r) for r in out], [list(r.values()) for r in out]

        return fn

    client = QdrantClient(":memory:")
    theirs_ll = LlamaQdrant(
        "ll",
        client=client,
        enable_hybrid=True,
        sparse_doc_fn=sparse_fn("document"),
        sparse_query_fn=sparse_fn("query"),
    )
    nodes = [
        TextNode(
            id_=uid[d["id"]],
            text=d["text"],
            metadata={"verse": d["id"]},
            excluded_embed_metadata_keys=["verse"],
        )
        for d in docs
    ]
    VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(vector_store=theirs_ll), embed_model=ll_dense
    )
    ours_ll = OurLlama("ll", client=client, embed_model=ll_dense, sparse_embed_model=ll_sparse)

    def ll_run(store: Any, text: str, mode: Any, **kw: Any) -> list[str]:
        q = VectorStoreQuery(
            query_str=text, query_embedding=ll_dense.get_query_embedding(text), similarity_top_k=K, mode=mode
        )
        return [verse_of.get(i, i) for i in store.query(q, **kw).ids]

    d_theirs = [ll_run(theirs_ll, q, VectorStoreQueryMode.DEFAULT) for q, _ in queries]
    d_ours = [ll_run(ours_ll, q, VectorStoreQueryMode.DEFAULT) for q, _ in queries]
    identical["llama-index"] = f"{sum(a == b for a, b in zip(d_theirs, d_ours, strict=True))}/{len(queries)}"
    report("llama-index", "their dense", metrics(d_theirs, relevant))
    report("llama-index", "our dense", metrics(d_ours, relevant))
    their_runs = [ll_run(theirs_ll, q, VectorStoreQueryMode.HYBRID) for q, _ in queries]
    report("llama-index", "their hybrid (relative score)", metrics(their_runs, relevant))
    for fusion in ("rrf", "dbsf", "m3"):
        runs = [ll_run(ours_ll, q, VectorStoreQueryMode.HYBRID, fusion=fusion) for q, _ in queries]
        report("llama-index", f"our hybrid {fusion}", metrics(runs, relevant))
    total = time.perf_counter() - t0

    print(
        "## Foreign collections: ours on collections langchain-qdrant and llama-index wrote, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print(
        f"- machine: {platform.machine()}, Python {platform.python_version()}; "
        "qdrant-client local mode (brute force)"
    )
    print(f"- command: `python benchmarks/foreign.py --corpus-size {args.corpus_size}`")
    print(
        f"- data: bible-dev, first {len(docs)} KJV verses, the {len(queries)} WEB-paraphrase queries "
        "whose verse is among them; MiniLM (dense) + SPLADE-tiny (sparse) for every side; top-10 per query"
    )
    print(f"- identical dense top-10 lists, ours vs theirs: {identical}")
    print(f"- wall time {total:.0f} s (building the langchain-qdrant collection {built:.0f} s)\n")
    print("| collection written by | search | nDCG@10 | MRR@10 | Recall@10 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for who, what, m in rows:
        print(f"| {who} | {what} | {m['nDCG@10']:.4f} | {m['MRR@10']:.4f} | {m['Recall@10']:.4f} |")


if __name__ == "__main__":
    main()
