"""What the client-side ensembles' arguments become in the engine (shared/ensembles.py)."""

from __future__ import annotations

import pytest

from shared.ensembles import EnsembleFusion, from_ensemble_retriever, from_query_fusion_mode
from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.query.modes import FusionMethod


def test_langchain_weights_and_c_are_engine_rrf() -> None:
    # LangChain ranks from 1 (w / (rank + c)), the engine from 0: k = c + 1 gives the same scores.
    got = from_ensemble_retriever([0.3, 0.7], c=60)
    assert got == EnsembleFusion(FusionMethod.RRF, 61, dense_weight=0.7, sparse_weight=0.3)
    assert got.store_options() == {"fusion": "rrf", "rrf_k": 61, "dense_weight": 0.7, "sparse_weight": 0.3}
    assert from_ensemble_retriever(c=10).rrf_k == 11
    # Equal weights rank as plain RRF in LangChain; the engine gets none (it divides ranks by them).
    equal = from_ensemble_retriever([0.5, 0.5])
    assert (equal.dense_weight, equal.sparse_weight) == (1.0, 1.0)
    assert from_query_fusion_mode("reciprocal_rerank", [0.5, 0.5]).sparse_weight == 1.0
    assert from_ensemble_retriever().store_options() == {}  # nothing given: the store's defaults


def test_langchain_bad_weights() -> None:
    with pytest.raises(InvalidInputError, match="two entries"):
        from_ensemble_retriever([0.2, 0.3, 0.5])
    with pytest.raises(InvalidInputError, match="both 0"):
        from_ensemble_retriever([0, 0])
    with pytest.raises(InvalidInputError, match="c must be"):
        from_ensemble_retriever(c=-1)


def test_llama_index_modes() -> None:
    assert from_query_fusion_mode("reciprocal_rerank") == EnsembleFusion(FusionMethod.RRF, 60)
    assert from_query_fusion_mode("dist_based_score").fusion is FusionMethod.DBSF
    assert from_query_fusion_mode("relative_score").fusion is FusionMethod.DBSF
    assert from_query_fusion_mode("simple").store_options() == {}
    assert from_query_fusion_mode(None).store_options() == {}
    weighted = from_query_fusion_mode("reciprocal_rerank", [0.8, 0.2])
    assert (weighted.dense_weight, weighted.sparse_weight) == (0.8, 0.2)
    with pytest.raises(UnsupportedOperationError, match="no per-side weights"):
        from_query_fusion_mode("relative_score", [0.8, 0.2])
    with pytest.raises(InvalidInputError, match="unknown fusion mode"):
        from_query_fusion_mode("fancy")


def test_llama_index_enum_is_accepted() -> None:
    from llama_index.core.retrievers.fusion_retriever import FUSION_MODES

    assert from_query_fusion_mode(FUSION_MODES.DIST_BASED_SCORE).fusion is FusionMethod.DBSF
    assert from_query_fusion_mode(FUSION_MODES.RECIPROCAL_RANK).fusion is FusionMethod.RRF
