"""Small deterministic LlamaIndex models for tests that need the framework's own embed API."""

from __future__ import annotations

import hashlib

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding

DIM = 8


class HashEmbedding(BaseEmbedding):
    """Dense vectors seeded by a hash of the text (the same in every process); queries differ."""

    def _vec(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).normal(size=DIM).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vec("query: " + query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vec(text)


class WordSparse(BaseSparseEmbedding):
    """One weight per distinct word."""

    def _words(self, text: str) -> dict[int, float]:
        return {sum(map(ord, w)) % 5000: 1.0 + len(w) / 10 for w in text.lower().split()}

    def _get_query_embedding(self, query: str) -> dict[int, float]:
        return self._words(query)

    async def _aget_query_embedding(self, query: str) -> dict[int, float]:
        return self._words(query)

    def _get_text_embedding(self, text: str) -> dict[int, float]:
        return self._words(text)

    async def _aget_text_embedding(self, text: str) -> dict[int, float]:
        return self._words(text)
