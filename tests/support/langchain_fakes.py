"""Small deterministic LangChain models for tests that need the framework's own embed API."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

#: A small vocabulary for tests whose texts are made of known words.
WORDS = [
    *("alpha", "beta", "gamma", "delta", "epsilon", "zeta"),
    *("eta", "theta", "iota", "kappa", "lambda", "mu"),
]


def word_chunks(docs: int, chunks: Callable[[int], int], step: int) -> Iterator[tuple[int, int, str]]:
    """``(document, chunk, text)`` of ``docs`` documents of ``chunks(d)`` chunks, each text four
    known words (shifted by ``step`` per document) and its own numbers (no two texts equal)."""
    for d in range(docs):
        for c in range(chunks(d)):
            words = " ".join(WORDS[(d * step + c * 3 + j) % len(WORDS)] for j in range(4))
            yield d, c, f"{words} {d} {c}"


def jittered_word_weights(text: str) -> dict[int, float]:
    """One weight per known word of ``text``, plus a per-text jitter so that no two texts
    tie (ties would make rankings depend on the engine's order)."""
    jitter = zlib.crc32(text.encode()) % 1_000_000 / 2e6  # steps of 5e-7: above float32's resolution
    return {WORDS.index(w): 1.0 + i / 10 + jitter for i, w in enumerate(text.split()) if w in WORDS}


class LangChainWordSparse:
    """langchain-qdrant's SparseEmbeddings interface, returning indices/values objects."""

    class Vector:
        def __init__(self, weights: dict[int, float]) -> None:
            self.indices, self.values = list(weights), list(weights.values())

    def __init__(self, weights: Callable[[str], dict[int, float]] | None = None) -> None:
        #: A text's weights (default: 1.0 per distinct word, hashed to a token id).
        self.weights = weights if weights is not None else self._word_weights

    @staticmethod
    def _word_weights(text: str) -> dict[int, float]:
        return {sum(map(ord, w)) % 5000: 1.0 for w in text.lower().split()}

    def embed_documents(self, texts: list[str]) -> list[Any]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> Any:
        return self.Vector(self.weights(text))
