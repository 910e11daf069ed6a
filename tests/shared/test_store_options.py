"""The store's options have one declaration (``StoreConfig``) and the retrieval decisions one home.

Checks that ``HybridStore``'s keyword defaults are ``StoreConfig``'s, that ``config=`` and
keywords open the same store, that ``None`` storage options follow an existing collection
without a warning, that the query keywords are the declared ``QueryArgs``, and the
decisions the adapters translate into (mode, alpha, MMR sizes, relevance per fusion).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from shared.config import StoreConfig, option_default, option_doc
from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from shared.query.modes import FusionMethod, RetrievalMode
from shared.query.options import (
    QUERY_ARGUMENTS,
    SEARCH_OPTIONS,
    QueryOptions,
    choose_mode,
    mmr_fetch_k,
    uses_dense_query,
    weighted_hybrid,
)
from shared.query.relevance import cosine_relevance, relevance_function, unbounded_relevance
from shared.store import HybridStore
from shared.types import Record

DIM = 8


def _records(n: int = 6) -> list[Record]:
    rng = np.random.default_rng(0)
    return [
        Record(id=f"r{i}", text=f"text {i}", dense=rng.normal(size=DIM).tolist(), sparse={i: 1.0, 99: 0.5})
        for i in range(n)
    ]


# ----------------------------------------------------------------------------- StoreConfig


def test_store_keyword_defaults_are_the_store_config_defaults() -> None:
    params = inspect.signature(HybridStore.__init__).parameters
    for f in fields(StoreConfig):
        assert params[f.name].default == f.default == option_default(f.name), f.name
        assert option_doc(f.name)


def test_config_and_keywords_open_the_same_store(tmp_path: Path) -> None:
    cfg = StoreConfig(dense_dim=DIM, fusion="m3", candidate_k=7, quantization="int8")
    with HybridStore("c", path=tmp_path / "a", config=cfg) as by_config:
        assert by_config.config == cfg
        assert (
            by_config.query_defaults.fusion is FusionMethod.M3 and by_config.query_defaults.candidate_k == 7
        )
    with HybridStore(
        "c", path=tmp_path / "b", dense_dim=DIM, fusion="m3", candidate_k=7, quantization="int8"
    ) as by_keywords:
        assert by_keywords.config == StoreConfig(
            dense_dim=DIM, fusion="m3", candidate_k=7, quantization="int8"
        )


def test_config_and_keyword_options_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="config="):
        HybridStore("c", path=tmp_path / "a", fusion="dbsf", config=StoreConfig())
    with pytest.raises(InvalidTypeError, match="StoreConfig"):
        HybridStore("c", path=tmp_path / "a", config={"fusion": "m3"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("fusion", "average", "fusion"),
        ("retrieval_mode", "telepathy", "retrieval mode"),
        ("candidate_k", 0, "candidate_k must be > 0"),
        ("rrf_k", -1, "rrf_k"),
        ("dense_weight", -1.0, "dense_weight"),
        ("sparse_normalization", "max", "sparse_normalization"),
    ],
)
def test_store_config_validates_at_construction(option: str, value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        StoreConfig(**{option: value})  # type: ignore[arg-type]


def test_none_storage_options_follow_an_int8_collection_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with HybridStore("c", path=tmp_path / "s", dense_dim=DIM, quantization="int8") as store:
        store.add(_records())
    caplog.set_level(logging.WARNING)
    with HybridStore("c", path=tmp_path / "s") as reopened:
        assert reopened.schema.quantization.name == "int8"
    assert "keeps its own storage settings" not in caplog.text
    # An explicit, different value is still reported (the collection's own setting wins).
    with HybridStore("c", path=tmp_path / "s", quantization="none") as explicit:
        assert explicit.schema.quantization.name == "int8"
    assert "keeps its own storage settings" in caplog.text


# ----------------------------------------------------------------------------- query arguments


def test_query_keywords_are_the_declared_query_args(tmp_path: Path) -> None:
    with HybridStore("c", path=tmp_path / "s", dense_dim=DIM) as store:
        store.add(_records())
        q = _records()[0]
        hits = store.query(dense=q.dense, sparse=q.sparse, limit=2, fusion="m3", candidate_k=3)
        assert len(hits) == 2 and hits[0].id == "r0"
        with pytest.raises(InvalidTypeError, match="top_k"):
            store.query(dense=q.dense, top_k=2)  # type: ignore[call-arg]
    assert {"fusion", "candidate_k", "offset", "hnsw_ef"} <= SEARCH_OPTIONS < QUERY_ARGUMENTS
    # Every search option is resolved into a QueryOptions field of the same name.
    assert {f.name for f in fields(QueryOptions)} >= SEARCH_OPTIONS


async def test_aquery_takes_the_same_keywords(tmp_path: Path) -> None:
    with HybridStore("c", path=tmp_path / "s", dense_dim=DIM) as store:
        store.add(_records())
        q = _records()[1]
        sync = store.query(dense=q.dense, sparse=q.sparse, limit=3, fusion="dbsf")
        async_ = await store.aquery(dense=q.dense, sparse=q.sparse, limit=3, fusion="dbsf")
        assert [h.id for h in sync] == [h.id for h in async_]


# ----------------------------------------------------------------------------- decisions


def test_choose_mode_follows_the_models_and_checks_a_requested_mode() -> None:
    assert choose_mode(None, has_dense=True, has_sparse=True) is RetrievalMode.HYBRID
    assert choose_mode(None, has_dense=True, has_sparse=False) is RetrievalMode.DENSE
    assert choose_mode(None, has_dense=False, has_sparse=True) is RetrievalMode.SPARSE
    assert choose_mode("sparse", has_dense=True, has_sparse=True) is RetrievalMode.SPARSE
    with pytest.raises(InvalidInputError, match="needs sparse vectors"):
        choose_mode("hybrid", has_dense=True, has_sparse=False)
    with pytest.raises(InvalidInputError, match="needs dense vectors"):
        choose_mode(RetrievalMode.DENSE, has_dense=False, has_sparse=True)


def test_weighted_hybrid_maps_alpha_to_modes_weights_and_sizes() -> None:
    common = {"limit": 5, "dense_k": 5, "sparse_k": 3, "candidate_k": 100, "fusion": "rrf"}
    assert weighted_hybrid(None, weights_given=False, **common) == {
        "mode": RetrievalMode.HYBRID,
        "limit": 5,
        "dense_candidates": 100,
        "sparse_candidates": 100,
    }
    assert weighted_hybrid(0.0, weights_given=False, **common) == {"mode": RetrievalMode.SPARSE, "limit": 5}
    exact = {**common, "candidate_k": 1}
    assert weighted_hybrid(0.0, weights_given=False, **exact) == {"mode": RetrievalMode.SPARSE, "limit": 3}
    assert weighted_hybrid(1.0, weights_given=False, **exact) == {"mode": RetrievalMode.DENSE, "limit": 5}
    mixed = weighted_hybrid(0.25, weights_given=False, **exact)
    assert (mixed["dense_weight"], mixed["sparse_weight"]) == (0.25, 0.75)
    assert (mixed["dense_candidates"], mixed["sparse_candidates"]) == (5, 3)
    with pytest.raises(InvalidInputError, match="alpha"):
        weighted_hybrid(1.5, weights_given=False, **common)
    with pytest.raises(InvalidInputError, match="not both"):
        weighted_hybrid(0.5, weights_given=True, **common)
    with pytest.raises(UnsupportedOperationError, match="dbsf"):
        weighted_hybrid(0.5, weights_given=False, **{**common, "fusion": "dbsf"})


def test_uses_dense_query() -> None:
    assert uses_dense_query("dense") and uses_dense_query(RetrievalMode.HYBRID)
    assert uses_dense_query("hybrid", 0.5) and uses_dense_query("hybrid", 1.0)
    assert not uses_dense_query("sparse") and not uses_dense_query("hybrid", 0.0)


def test_mmr_fetch_k() -> None:
    assert mmr_fetch_k(3) == 12
    assert mmr_fetch_k(3, prefetch_factor=2.5) == 8
    assert mmr_fetch_k(3, prefetch_factor=0.1) == 3
    assert mmr_fetch_k(3, prefetch_k=7) == 7
    with pytest.raises(InvalidInputError, match="mmr_prefetch_k"):
        mmr_fetch_k(3, prefetch_k=0)


def test_relevance_function_per_mode_and_fusion() -> None:
    assert relevance_function(QueryOptions(mode=RetrievalMode.DENSE)) is cosine_relevance
    assert relevance_function(QueryOptions(mode=RetrievalMode.SPARSE)) is unbounded_relevance
    reranked = QueryOptions(mode=RetrievalMode.DENSE, colbert_rerank=True)
    assert relevance_function(reranked) is unbounded_relevance
    # RRF: a point ranked first (rank 0) on both sides scores sum(w) / k, which maps to 1.
    rrf = relevance_function(
        QueryOptions(fusion=FusionMethod.RRF, rrf_k=60, dense_weight=1.0, sparse_weight=0.5)
    )
    assert math.isclose(rrf(1.5 / 60), 1.0) and math.isclose(rrf(0.75 / 60), 0.5)
    dbsf = relevance_function(QueryOptions(fusion=FusionMethod.DBSF))
    assert dbsf(2.0) == 1.0 and dbsf(1.0) == 0.5
    m3 = relevance_function(QueryOptions(fusion=FusionMethod.M3))
    scores = [-1.0, 0.0, 0.5, 1.3, 5.0]
    mapped = [m3(s) for s in scores]
    assert mapped[0] == 0.0 and all(a < b for a, b in itertools.pairwise(mapped)) and mapped[-1] < 1.0


def test_store_relevance_function_follows_the_store_defaults(tmp_path: Path) -> None:
    with HybridStore(
        "c", path=tmp_path / "s", dense_dim=DIM, fusion="rrf", rrf_k=10, sparse_weight=3.0
    ) as store:
        store.add(_records())
        fn = store.relevance_function()
        assert math.isclose(fn(4.0 / 10), 1.0) and math.isclose(fn(2.0 / 10), 0.5)
        assert store.relevance_function(mode="dense") is cosine_relevance
        assert math.isclose(store.relevance_function(rrf_k=20)(4.0 / 20), 1.0)
