"""The reference BM25 the BM25 tests compare the engine's scores with, and their documents."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from shared.encoders import Bm25Encoder

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "bible-dev" / "corpus.jsonl"
QUERIES = (
    "And God said, Let there be light",
    "the waters of the deep and the firmament",
    "Abraham begat Isaac and Isaac begat Jacob",
    "he made the stars also and the greater light",
    "they heard the voice of the Lord God walking in the garden",
)


def verses(start: int, n: int) -> list[dict[str, str]]:
    """bible-dev KJV verses ``start`` to ``start + n`` (``id``, ``text``, ``book``)."""
    with CORPUS.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(start + n), fh, strict=False)]
    return rows[start:]


def bm25_reference(
    enc: Bm25Encoder, docs: dict[str, str], query: str, avgdl: float | None = None
) -> dict[str, float]:
    """Textbook BM25 over the engine's term counts: Lucene's IDF ``ln(1 + (N - n + 0.5) / (n + 0.5))``,
    Robertson's ``(k1 + 1)`` factor, ``enc``'s k1 and b, ``avgdl`` (default: ``enc.avg_len``).

    Only the documents with a positive score, as the engine returns them.
    """
    avg = enc.avg_len if avgdl is None else avgdl
    counts = dict(zip(docs, enc.term_counts(list(docs.values())), strict=True))
    q_terms = set(enc.term_counts([query])[0])
    df = Counter(t for c in counts.values() for t in c)
    n, out = len(docs), {}
    for i, c in counts.items():
        dl = sum(c.values())
        s = sum(
            math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            * c[t]
            * (enc.k1 + 1)
            / (c[t] + enc.k1 * (1 - enc.b + enc.b * dl / avg))
            for t in q_terms & set(c)
        )
        if s > 0:
            out[i] = s
    return out
