"""What client-side hybrid ensembles mean in the engine's terms.

The drop-ins for LangChain's ``EnsembleRetriever`` and LlamaIndex's ``QueryFusionRetriever``
(``langchain_ext/ensemble.py``, ``llama_index_ext/fusion.py``) take the arguments their
users already pass and hand them here; this module decides which engine fusion, RRF
constant and per-side weights reproduce them, so the adapters only translate.

* LangChain ``EnsembleRetriever(retrievers, weights, c)`` scores a document
  ``sum_i weights[i] / (rank_i + c)`` with 1-based ranks. The engine's RRF uses 0-based
  ranks, so ``rrf_k = c + 1`` gives the same scores. Equal weights (the usual
  ``[0.5, 0.5]``) rank as no weights do, and go to the engine as none: exactly LangChain's
  order. Unequal weights are passed on, where they act as Qdrant's weighted RRF does (a
  side's 1-based rank divided by its weight, :mod:`shared.query.modes`): the same
  preference, not LangChain's exact scores.
* LlamaIndex ``QueryFusionRetriever(mode=...)``: ``reciprocal_rerank`` is RRF with
  ``k = 60`` over 0-based ranks (LlamaIndex ignores ``retriever_weights`` there; given
  weights are honoured here, as weighted RRF); ``dist_based_score`` normalises each side
  by its mean +- 3 standard deviations and sums, which is the engine's ``dbsf``;
  ``relative_score`` (min-max normalisation, then a weighted sum) has no engine
  counterpart and takes ``dbsf``, the engine's normalised sum (it has no per-side
  weights: unequal weights are refused, naming the modes that take them); ``simple``
  (each document's best raw score across retrievers, comparing a BM25 score with a
  cosine) has no meaning across scales and takes the store's default fusion.
* Nothing given: the store's default fusion and weights (chosen by measurement,
  ``benchmarks/hybrid_vs_ensembles.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from .query.modes import FusionMethod
from .validation import non_negative_number

__all__ = [
    "LLAMA_INDEX_FUSION_MODES",
    "LLAMA_INDEX_RRF_K",
    "EnsembleFusion",
    "from_ensemble_retriever",
    "from_query_fusion_mode",
]

#: LlamaIndex's reciprocal-rank constant (``QueryFusionRetriever._reciprocal_rerank_fusion``).
LLAMA_INDEX_RRF_K = 60

#: LlamaIndex ``FUSION_MODES`` values -> the engine's fusion (None: the store's default).
LLAMA_INDEX_FUSION_MODES: dict[str, FusionMethod | None] = {
    "reciprocal_rerank": FusionMethod.RRF,
    "dist_based_score": FusionMethod.DBSF,
    "relative_score": FusionMethod.DBSF,
    "simple": None,
}


@dataclass(frozen=True)
class EnsembleFusion:
    """Store options that reproduce an ensemble's fusion; None fields keep the store's defaults."""

    fusion: FusionMethod | None = None
    rrf_k: int | None = None
    dense_weight: float | None = None
    sparse_weight: float | None = None

    def store_options(self) -> dict[str, Any]:
        """The given fields, as :class:`shared.config.StoreConfig` keywords."""
        opts = {
            "fusion": self.fusion.value if self.fusion is not None else None,
            "rrf_k": self.rrf_k,
            "dense_weight": self.dense_weight,
            "sparse_weight": self.sparse_weight,
        }
        return {k: v for k, v in opts.items() if v is not None}


def _two_weights(weights: Sequence[Any], name: str) -> tuple[float, float]:
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise InvalidTypeError(f"{name} must be a sequence of two numbers, got {type(weights).__name__}")
    if len(weights) != 2:
        raise InvalidInputError(
            f"{name} must have two entries, one per side (BM25 and dense), got {len(weights)}"
        )
    a, b = (non_negative_number(w, f"{name}[{i}]") for i, w in enumerate(weights))
    if a == 0.0 and b == 0.0:
        raise InvalidInputError(f"{name} are both 0: nothing would be retrieved")
    return a, b


def from_ensemble_retriever(weights: Sequence[float] | None = None, c: int | None = None) -> EnsembleFusion:
    """LangChain ``EnsembleRetriever(weights=[bm25, dense], c=c)`` as engine RRF.

    ``weights`` in the order of LangChain's documented ``retrievers=[bm25_retriever,
    vector_retriever]``. Neither given: the store's defaults.
    """
    if weights is None and c is None:
        return EnsembleFusion()
    rrf_k = None
    if c is not None:
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise InvalidInputError(f"c must be an int >= 0, got {c!r}")
        rrf_k = c + 1  # LangChain ranks from 1, the engine from 0
    else:
        rrf_k = 60 + 1  # EnsembleRetriever's default c=60
    sparse_w, dense_w = _two_weights(weights, "weights") if weights is not None else (1.0, 1.0)
    return EnsembleFusion(FusionMethod.RRF, rrf_k, *_rrf_weights(dense_w, sparse_w))


def _rrf_weights(dense: float, sparse: float) -> tuple[float, float]:
    """Equal weights as none (1, 1): the engine divides ranks by its weights, so only (1, 1)
    keeps plain RRF, whose order equal weights have in the client-side ensembles."""
    return (1.0, 1.0) if dense == sparse else (dense, sparse)


def from_query_fusion_mode(
    mode: Any = None, retriever_weights: Sequence[float] | None = None
) -> EnsembleFusion:
    """LlamaIndex ``QueryFusionRetriever(mode=..., retriever_weights=[dense, bm25])`` as an engine fusion.

    ``retriever_weights`` in the order of LlamaIndex's documented ``retrievers=[vector_retriever,
    bm25_retriever]``. ``mode`` None: the store's default fusion.
    """
    value = getattr(mode, "value", mode)
    if value is None:
        fusion = None
    else:
        if not isinstance(value, str) or value not in LLAMA_INDEX_FUSION_MODES:
            raise InvalidInputError(
                f"unknown fusion mode {mode!r}; choose one of {', '.join(LLAMA_INDEX_FUSION_MODES)}"
            )
        fusion = LLAMA_INDEX_FUSION_MODES[value]
    dense_w = sparse_w = None
    if retriever_weights is not None:
        dense_w, sparse_w = _two_weights(retriever_weights, "retriever_weights")
        if fusion is FusionMethod.DBSF and dense_w != sparse_w:
            raise UnsupportedOperationError(
                f"mode={value!r} runs as the engine's dbsf, which has no per-side weights; use "
                "mode='reciprocal_rerank' (weighted RRF) for retriever_weights"
            )
        if fusion is FusionMethod.DBSF:
            dense_w = sparse_w = None
        else:
            dense_w, sparse_w = _rrf_weights(dense_w, sparse_w)
    rrf_k = LLAMA_INDEX_RRF_K if fusion is FusionMethod.RRF else None
    return EnsembleFusion(fusion, rrf_k, dense_w, sparse_w)
