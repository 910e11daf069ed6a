"""The query vocabulary: retrieval modes, fusions, the sparse scale, and their defaults.

Modes and score semantics of the returned hits (the plan that runs them is
:mod:`shared.query.plan`, their mapping onto [0, 1] :mod:`shared.query.relevance`):

* ``dense``: cosine similarity of the full dense vectors (with ``mrl_dim`` the
  candidates come from the quantized truncated ``dense_mrl`` copy, then are
  re-scored with the full vector: the MRL funnel).
* ``sparse``: dot product of the sparse weights (Qdrant applies IDF when the
  collection has the IDF modifier).
* ``hybrid``: a dense prefetch of ``dense_candidates`` and a sparse prefetch of
  ``sparse_candidates`` points (each ``max(limit + offset, candidate_k)`` unless
  given; a given count is used as is, even below the final limit), fused inside Qdrant.
  A collection that keeps BM25 beside its learned sparse vector (``bm25=``) adds a third
  prefetch of the sparse side's size on its ``bm25`` vector when the query has a text,
  weighted by ``bm25_weight`` (each fusion's sparse default unless given):

  - ``rrf``: reciprocal rank fusion, ``sum_side 1 / (k + rank)`` with a 0-based
    rank; scores are rank-based, not similarities. A weight ``w`` divides a side's
    1-based rank (Qdrant's weighted RRF): ``1 / (k + (rank + 1) / w - 1)``, nothing at
    ``w = 0`` (measured: ``tests/shared/test_store_bm25_signal.py``). Qdrant's own default
    k is 2; we default to 60 (the value of the RRF paper, and what most hybrid
    search stacks use) so that a single side's top hit cannot dominate.
  - ``dbsf``: distribution-based score fusion (each side normalised by its
    mean +- 3 std, then summed); no per-side weights.
  - ``m3``: the BGE-M3 paper's weighted sum ``w_d * dense + w_s * sparse``
    (defaults 1.0 and 0.3). The union of the dense and sparse candidates is
    re-scored on both sides, so a candidate found by one side only still gets
    its true score on the other (0 when it shares no term with the query).
    Scores are the weighted similarity sums. The paper's weights assume BGE-M3's
    lexical weight scale (top sparse scores ~0.1-0.3 next to cosines ~0.5-0.8);
    another sparse model's dot products live on their own scale (SPLADE's reach
    10-30 and would swamp the cosine). ``sparse_normalization`` says what the
    sparse term is: ``"none"`` the raw dot product; ``"query"`` the dot product
    divided by the query's own ``q . q`` (a document holding exactly the query's
    weights scores 1, like a cosine). ``"auto"`` (the store default) is ``"none"``
    for BGE-M3 lexical weights and ``"query"`` for any other or unknown sparse
    model. It is one scalar per query (same single request) and changes nothing
    for rrf, dbsf or sparse-only rankings, which do not depend on the scale.

* ``colbert_rerank``: the fused candidates are re-ranked by ColBERT MaxSim on
  ``colbert``; scores are then MaxSim sums (not normalised).
* MMR (:func:`shared.query.plan.plan_mmr`): Qdrant's MMR on ``dense``; scores are the dense
  similarities of the selected points.

* ``levels`` (:mod:`shared.hierarchy`): with several levels, scores are RRF scores over
  the per-level rankings (``rrf_k``); with one, the mode's own.
* ``group_by`` (:mod:`shared.query.groups`) and ``unit="parent"`` keep the scores of the
  ranking they group (a parent: the score of its best chunk).

Filters are applied inside every prefetch and at the final stage.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from ..errors import InvalidInputError

try:  # Python 3.11+
    from enum import StrEnum as _StrEnum
except ImportError:  # pragma: no cover - Python 3.10

    class _StrEnum(str, Enum):  # type: ignore[no-redef]
        pass


__all__ = [
    "DEFAULT_CANDIDATE_K",
    "DEFAULT_MMR_LAMBDA",
    "DEFAULT_MMR_PREFETCH_FACTOR",
    "DEFAULT_RRF_K",
    "DEFAULT_SPARSE_WEIGHT",
    "UNITS",
    "FusionMethod",
    "RetrievalMode",
    "SparseNormalization",
    "parse_fusion",
    "parse_mode",
    "parse_sparse_normalization",
]


class RetrievalMode(_StrEnum):
    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


class FusionMethod(_StrEnum):
    RRF = "rrf"
    DBSF = "dbsf"
    M3 = "m3"


#: Default weight of the sparse side per fusion (BGE-M3 paper for m3).
DEFAULT_SPARSE_WEIGHT = {FusionMethod.RRF: 1.0, FusionMethod.DBSF: 1.0, FusionMethod.M3: 0.3}
DEFAULT_RRF_K = 60
DEFAULT_CANDIDATE_K = 100
#: MMR over LlamaIndex-style queries: candidates fetched per result (``mmr_prefetch_factor``).
DEFAULT_MMR_PREFETCH_FACTOR = 4
#: MMR balance when none is given: as much relevance as diversity.
DEFAULT_MMR_LAMBDA = 0.5
#: What a query returns (:mod:`shared.hierarchy`): the best chunks, or their parents.
UNITS = ("chunk", "parent")

_E = TypeVar("_E", bound=Enum)


def _parse_choice(cls: type[_E], value: Any, what: str) -> _E:
    """``cls(value)``, or an error naming the bad value and the choices."""
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise InvalidInputError(f"unknown {what} {value!r}; choose one of {choices}") from None


def parse_mode(value: str | RetrievalMode) -> RetrievalMode:
    return _parse_choice(RetrievalMode, value, "retrieval mode")


def parse_fusion(value: str | FusionMethod) -> FusionMethod:
    return _parse_choice(FusionMethod, value, "fusion")


class SparseNormalization(_StrEnum):
    """What the sparse term of the ``m3`` weighted sum is (see the module docstring)."""

    AUTO = "auto"
    NONE = "none"
    QUERY = "query"


def parse_sparse_normalization(value: str | SparseNormalization) -> SparseNormalization:
    return _parse_choice(SparseNormalization, value, "sparse_normalization")
