"""Relevance in [0, 1] of a query's raw scores (LangChain's relevance scores), per mode and fusion.

Follows the score semantics of :mod:`shared.query.modes`: cosine for dense, a squash
for sparse dot products and ColBERT MaxSim sums, and per fusion for hybrid.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .modes import FusionMethod, RetrievalMode
from .options import QueryOptions

__all__ = [
    "cosine_relevance",
    "dbsf_relevance",
    "dbsf_relevance_of",
    "m3_relevance",
    "relevance_function",
    "rrf_relevance",
    "unbounded_relevance",
]


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def cosine_relevance(score: float) -> float:
    """Cosine similarity in [-1, 1] -> [0, 1]."""
    return _clip01((1.0 + score) / 2.0)


def unbounded_relevance(score: float) -> float:
    """Sparse dot products (and MaxSim sums) are >= 0 and unbounded: a monotone squash onto [0, 1)."""
    return 0.0 if score <= 0 else score / (1.0 + score)


def rrf_relevance(rrf_k: float, total_weight: float) -> Callable[[float], float]:
    """Weighted RRF is ``sum w / (k + rank)`` with 0-based ranks: the best score is ``sum(w) / k``."""
    best = total_weight / rrf_k if rrf_k > 0 else math.inf

    def fn(score: float) -> float:
        return _clip01(score / best) if 0 < best < math.inf else (1.0 if score > 0 else 0.0)

    return fn


def dbsf_relevance(score: float) -> float:
    """DBSF normalises each of the two lists to [0, 1] and sums them (no weights)."""
    return _clip01(score / 2.0)


def dbsf_relevance_of(signals: int) -> Callable[[float], float]:
    """:func:`dbsf_relevance` for ``signals`` fused lists (each in [0, 1], summed)."""
    return lambda score: _clip01(score / signals)


def m3_relevance(dense_weight: float, sparse_weight: float) -> Callable[[float], float]:
    """M3's weighted sum: a cosine part in [-w_d, w_d] plus an unbounded sparse part >= 0.

    ``1 - exp(-(score + w_d) / w_d)`` is strictly increasing, 0 for the worst possible
    score and below 1 for any finite one (a sum cannot be split back into its parts).
    """
    scale = dense_weight if dense_weight > 0 else max(sparse_weight, 1e-9)
    offset = max(dense_weight, 0.0)

    def fn(score: float) -> float:
        return _clip01(1.0 - math.exp(-max(score + offset, 0.0) / scale))

    return fn


def relevance_function(opts: QueryOptions) -> Callable[[float], float]:
    """Maps the raw scores of a query with ``opts`` onto [0, 1] (1 = most relevant).

    Follows the score semantics of the module docstring: cosine for dense, a squash
    for sparse dot products and ColBERT MaxSim sums, and per fusion for hybrid.
    """
    if opts.colbert_rerank:
        return unbounded_relevance  # MaxSim sums have no fixed range
    if opts.levels is not None and len(opts.levels) > 1:
        return rrf_relevance(float(opts.rrf_k), float(len(opts.levels)))  # levels fused by RRF
    if opts.mode is RetrievalMode.DENSE:
        return cosine_relevance
    if opts.mode is RetrievalMode.SPARSE:
        return unbounded_relevance
    # Dense, sparse and, when fused, BM25: the lexical weights add up like one sparse side's.
    dense_w, *lexical = opts.signal_weights
    if opts.fusion is FusionMethod.RRF:
        return rrf_relevance(float(opts.rrf_k), dense_w + sum(lexical))
    if opts.fusion is FusionMethod.DBSF:
        return dbsf_relevance if len(lexical) == 1 else dbsf_relevance_of(1 + len(lexical))
    return m3_relevance(dense_w, sum(lexical))
