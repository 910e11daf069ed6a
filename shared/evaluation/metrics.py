"""Scoring: ranx metrics per query, bootstrap CIs, and :class:`EvalRow` (one scored run)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .configs import EvalConfig, EvalMode
from .data import BeirDataset

#: The metrics every row reports (ranx names).
METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
#: The metric spreads, deltas and plots are based on.
PRIMARY = "ndcg@10"


def _ranx_scores(
    qrels: Mapping[str, Mapping[str, int]], ranked: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Per-query metric arrays (in ``qrels`` order) from ranked doc-id lists, via ranx."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qids = list(qrels)
    run: dict[str, dict[str, float]] = {}
    for q in qids:
        docs = ranked.get(q, ())
        # Scores from ranks: ranx re-sorts by score, and fused scores can tie, so the
        # store's order is encoded explicitly.  A query with no hits gets a dummy doc.
        run[q] = {d: float(len(docs) - r) for r, d in enumerate(dict.fromkeys(docs))} or {"\x00none": 0.0}
    r = Run(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 cast warning inside ranx
        ranx_evaluate(Qrels({q: dict(v) for q, v in qrels.items()}), r, list(METRICS), return_mean=False)
    return {m: np.array([float(r.scores[m][q]) for q in qids]) for m in METRICS}


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n: int) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (``n`` resamples)."""
    if len(values) < 2 or n < 1:
        m = float(values.mean()) if len(values) else float("nan")
        return m, m
    means = np.empty(n)
    # Chunks bound memory on big query sets.
    chunk = max(1, 2_000_000 // len(values))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        idx = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class EvalRow:
    """The results of one (system, configuration, mode)."""

    system: str
    config: str
    mode: str
    metrics: dict[str, float]
    n_queries: int
    ndcg_std: float = 0.0
    ndcg_ci: tuple[float, float] = (0.0, 0.0)
    #: Paired nDCG@10 difference vs the best single mode of the reference config: (mean, lo, hi).
    delta_vs_best_single: tuple[float, float, float] | None = None
    #: nDCG@10 relative to the same mode on the reference (unquantized, full-dim) config.
    pct_of_reference: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    disk_bytes: int | None = None
    rss_delta_bytes: int | None = None
    ram_bytes_per_doc: float | None = None
    index_seconds: float | None = None
    note: str = ""
    per_query: dict[str, list[float]] = field(default_factory=dict, repr=False)
    #: Which configuration/mode this row is (None for external systems).
    config_obj: EvalConfig | None = field(default=None, repr=False)
    mode_obj: EvalMode | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return (
            f"{self.system}:{self.config}:{self.mode}"
            if self.system != "m3-hybrid"
            else f"{self.config}:{self.mode}"
        )


def score_run(
    dataset: BeirDataset,
    ranked: Mapping[str, Sequence[str]],
    *,
    system: str = "m3-hybrid",
    config: str = "",
    mode: str = "",
    latencies_s: Sequence[float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    note: str = "",
) -> EvalRow:
    """Score ranked doc-id lists (query id -> ids, best first) of any system.

    Missing queries count as empty results.  ``latencies_s`` (one per query, seconds)
    gives p50/p95.  Use it to put other systems in the same :class:`EvalReport`.
    """
    labels = {"system": system, "config": config, "mode": mode, "note": note}
    return scored_row(dataset, ranked, latencies_s=latencies_s, bootstrap=bootstrap, seed=seed, **labels)


def scored_row(
    dataset: BeirDataset,
    ranked: Mapping[str, Sequence[str]],
    *,
    latencies_s: Sequence[float] | None,
    bootstrap: int,
    seed: int,
    **context: Any,
) -> EvalRow:
    """The row of ``ranked``, built once: its scores plus ``context`` (the other
    :class:`EvalRow` fields: system, config, mode, sizes, ...)."""
    unknown = [q for q in ranked if q not in dataset.qrels]
    if unknown:
        raise InvalidInputError(f"run has query id {unknown[0]!r} that the dataset does not score")
    per_query = _ranx_scores(dataset.qrels, ranked)
    rng = np.random.default_rng(seed)
    ndcg = per_query[PRIMARY]
    p50, p95 = _latency_percentiles_ms(latencies_s)
    return EvalRow(
        metrics={m: float(v.mean()) for m, v in per_query.items()},
        n_queries=len(ndcg),
        ndcg_std=float(ndcg.std(ddof=1)) if len(ndcg) > 1 else 0.0,
        ndcg_ci=bootstrap_ci(ndcg, rng, bootstrap),
        per_query={m: v.tolist() for m, v in per_query.items()},
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        **context,
    )


def _latency_percentiles_ms(latencies_s: Sequence[float] | None) -> tuple[float | None, float | None]:
    if latencies_s is None or not len(latencies_s):
        return None, None
    lat = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 95))
