"""The report: rows side by side, paired comparisons, Markdown, JSON and the PNG plot."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .metrics import PRIMARY, EvalRow, bootstrap_ci
from .units import fmt_bytes


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fmt_ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def ndcg_cell(r: EvalRow) -> str:
    """A row's nDCG@10 with its 95% CI, as the Markdown tables show it."""
    return f"{r.metrics[PRIMARY]:.4f} ({r.ndcg_ci[0]:.4f}–{r.ndcg_ci[1]:.4f})"


def delta_cell(r: EvalRow) -> str:
    """A row's paired difference to the best single mode with its 95% CI ("–": none)."""
    d = r.delta_vs_best_single
    return "–" if d is None else f"{d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f})"


@dataclass
class EvalReport:
    """Results of :func:`evaluate`: one :class:`EvalRow` per (configuration, mode), plus context."""

    dataset: str
    num_docs: int
    num_queries: int
    rows: list[EvalRow] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bootstrap: int = 1000
    seed: int = 0

    # -- derived comparisons

    def row(self, config: str, mode: str, system: str = "m3-hybrid") -> EvalRow:
        for r in self.rows:
            if r.system == system and r.config == config and r.mode == mode:
                return r
        raise KeyError(f"no row for system={system!r} config={config!r} mode={mode!r}")

    def best_single(self) -> EvalRow | None:
        """The best single mode (dense or sparse) of the reference configuration."""
        singles = [
            r
            for r in self.rows
            if r.system == "m3-hybrid"
            and r.mode_obj is not None
            and r.mode_obj.is_single
            and r.config_obj is not None
            and r.config_obj.is_reference
        ] or [
            r
            for r in self.rows
            if r.system == "m3-hybrid" and r.mode_obj is not None and r.mode_obj.is_single
        ]
        return max(singles, key=lambda r: r.metrics[PRIMARY]) if singles else None

    def best(self, *, system: str = "m3-hybrid", modes: Sequence[str] | None = None) -> EvalRow | None:
        """The row with the highest nDCG@10 among ``system``'s rows (optionally only ``modes``)."""
        rows = [r for r in self.rows if r.system == system and (modes is None or r.mode in modes)]
        return max(rows, key=lambda r: r.metrics[PRIMARY]) if rows else None

    def paired_delta(self, a: EvalRow, b: EvalRow, metric: str = PRIMARY) -> tuple[float, float, float]:
        """Mean per-query ``a - b`` of ``metric`` with a paired bootstrap 95% CI: (mean, lo, hi)."""
        da, db = np.asarray(a.per_query[metric]), np.asarray(b.per_query[metric])
        if da.shape != db.shape:
            raise InvalidInputError(f"rows {a.label!r} and {b.label!r} were scored on different queries")
        diff = da - db
        lo, hi = bootstrap_ci(diff, np.random.default_rng(self.seed + 2), self.bootstrap)
        return float(diff.mean()), lo, hi

    def add_row(self, row: EvalRow) -> None:
        """Add a row (e.g. another system scored with :func:`score_run`) and refresh the comparisons."""
        if len(row.per_query.get(PRIMARY, ())) != self.num_queries:
            raise InvalidInputError(
                f"row {row.label!r} was scored on {len(row.per_query.get(PRIMARY, ()))} queries, "
                f"the report on {self.num_queries}"
            )
        self.rows.append(row)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the paired deltas vs the best single mode and the % of the reference config."""
        best = self.best_single()
        ref_by_mode: dict[str, EvalRow] = {}
        for r in self.rows:  # the first reference configuration listed wins
            c = r.config_obj
            if r.system == "m3-hybrid" and c is not None and c.is_reference and not c.colbert:
                ref_by_mode.setdefault(r.mode, r)
        rng = np.random.default_rng(self.seed + 1)
        for r in self.rows:
            if best is not None:
                diff = np.asarray(r.per_query[PRIMARY]) - np.asarray(best.per_query[PRIMARY])
                lo, hi = bootstrap_ci(diff, rng, self.bootstrap)
                r.delta_vs_best_single = (float(diff.mean()), lo, hi)
            ref = ref_by_mode.get(r.mode.removesuffix("-norescore"))
            r.pct_of_reference = (
                100.0 * r.metrics[PRIMARY] / ref.metrics[PRIMARY]
                if ref is not None and ref.metrics[PRIMARY] > 0 and r.system == "m3-hybrid"
                else None
            )

    # -- output

    def to_markdown(self) -> str:
        """A Markdown table with one line per row, then what the columns mean."""
        best = self.best_single()
        head = (
            "| system | config | mode | nDCG@10 (95% CI) | ± std | Δ vs best single (95% CI) | % of float "
            "| R@10 | R@100 | MRR@10 | p50 ms | p95 ms | disk | RSS Δ | vec RAM/doc |"
        )
        lines = [head, "|" + " --- |" * (head.count("|") - 1)]
        for r in self.rows:
            lines.append(
                f"| {r.system} | {r.config or '–'} | {r.mode or '–'} "
                f"| {ndcg_cell(r)} | {r.ndcg_std:.3f} | {delta_cell(r)} | {_fmt(r.pct_of_reference, 2)} "
                f"| {r.metrics['recall@10']:.4f} | {r.metrics['recall@100']:.4f} | {r.metrics['mrr@10']:.4f} "
                f"| {_fmt_ms(r.latency_p50_ms)} | {_fmt_ms(r.latency_p95_ms)} "
                f"| {fmt_bytes(r.disk_bytes)} | {fmt_bytes(r.rss_delta_bytes)} "
                f"| {fmt_bytes(r.ram_bytes_per_doc)} |"
            )
        ref = f"{best.config}:{best.mode}" if best else "none"
        legend = [
            "",
            f"Dataset `{self.dataset}`: {self.num_docs:,} documents, {self.num_queries:,} queries. "
            f"CIs: bootstrap over queries ({self.bootstrap} resamples, seed {self.seed}).",
            f"Δ vs best single: paired per-query nDCG@10 difference against `{ref}` (best of dense/sparse "
            "on the reference configuration); a CI that spans 0 is no measurable difference. "
            "% of float: nDCG@10 relative to the same mode on the unquantized full-dimension configuration.",
            "p50/p95: store query time only (queries were encoded beforehand), after a warm-up. "
            "disk: index folder size; RSS Δ: process memory growth while building the index (in-process, "
            "noisy); vec RAM/doc: vector bytes per document the layout keeps in RAM (computed, "
            "excludes HNSW links and payload).",
        ]
        for key, value in self.meta.items():
            if isinstance(value, (str, int, float)) and value != "":
                legend.append(f"- {key}: {value}")
        legend += [f"- note: {n}" for n in self.notes]
        for r in self.rows:
            if r.note:
                legend.append(f"- `{r.label}`: {r.note}")
        return "\n".join(lines + legend) + "\n"

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = {k: v for k, v in asdict(r).items() if k not in ("per_query", "config_obj", "mode_obj")}
            if per_query:
                d["per_query_ndcg@10"] = r.per_query.get(PRIMARY, [])
            rows.append(d)
        return {
            "dataset": self.dataset,
            "num_docs": self.num_docs,
            "num_queries": self.num_queries,
            "bootstrap": self.bootstrap,
            "seed": self.seed,
            "meta": self.meta,
            "notes": self.notes,
            "rows": rows,
        }

    def to_json(self, *, per_query: bool = False, indent: int | None = 2) -> str:
        """The report as JSON (``per_query`` adds each row's per-query nDCG@10 list)."""
        return json.dumps(self.to_dict(per_query=per_query), indent=indent)

    def plot(
        self,
        path: str | os.PathLike[str],
        *,
        title: str | None = None,
        recommended: tuple[str, str] | None = None,
    ) -> Path:
        """PNG: nDCG@10 (95% CI) against vector RAM per document, one colour per mode.

        Markers tell the preset family (float, int8, binary, TurboQuant, MRL funnel); the
        Pareto front (no other point has less memory and higher nDCG@10) is drawn and its
        points labelled; ``recommended`` = (config, mode) is ringed.  Experiment modes
        (names that are not built-in modes) and latency stay in the table, not here.
        Other systems are grey squares drawn under ours.
        """
        from .plot import plot_report

        return plot_report(self, path, title=title, recommended=recommended)
