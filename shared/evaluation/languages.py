"""Cross-lingual evaluation: queries in several languages against one corpus, scored per language.

The queries of every language go through ONE index per configuration (:func:`merge_languages`
joins them into one dataset); the report is then split into one :class:`EvalReport` per
language (:func:`split_by_language`): each language's rows get their own means, bootstrap CIs
and paired differences to that language's best single mode. :func:`cross_lingual_gaps` says
how far each language is below the reference language (English by default), mode by mode.

A query's language comes from the file it was read from (``LANG=FILE`` on the command line,
else the file name) or from a ``"language"`` (or ``"lang"``) field on its line
(:func:`query_languages`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .data import BeirDataset
from .metrics import METRICS, PRIMARY, EvalRow, bootstrap_ci
from .report import EvalReport, delta_cell, ndcg_cell

__all__ = [
    "LanguageGap",
    "cross_lingual_gaps",
    "languages_markdown",
    "merge_languages",
    "query_languages",
    "split_by_language",
]

_FIELDS = ("language", "lang")


def query_languages(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{query id: language}`` from the ``"language"``/``"lang"`` field of a queries JSONL file.

    Queries without the field are left out (an empty result: the file has no language field).
    """
    out: dict[str, str] = {}
    with Path(path).open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # load_beir reports it with the line number
            lang = next((obj[f] for f in _FIELDS if isinstance(obj, dict) and f in obj), None)
            if lang is None:
                continue
            if not isinstance(lang, str) or not lang.strip():
                raise InvalidInputError(f"{path}:{lineno}: the language field must be a non-empty string")
            qid = obj.get("_id", obj.get("id"))
            out[str(qid)] = lang.strip()
    return out


def merge_languages(parts: Mapping[str, BeirDataset]) -> tuple[BeirDataset, dict[str, str]]:
    """One dataset holding every language's queries (one corpus), and ``{query id: language}``.

    The parts must share the corpus; a query id used by two languages is refused by name.
    """
    if not parts:
        raise InvalidInputError("no query sets to merge")
    first_lang, first = next(iter(parts.items()))
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    languages: dict[str, str] = {}
    notes = list(first.notes)
    for lang, ds in parts.items():
        if ds.doc_ids != first.doc_ids:
            raise InvalidInputError(
                f"the {lang!r} queries come with another corpus than the {first_lang!r} ones; "
                "cross-lingual evaluation needs one corpus"
            )
        for qid, text in ds.queries.items():
            if qid in languages:
                raise InvalidInputError(
                    f"query id {qid!r} is used by both {languages[qid]!r} and {lang!r} queries; "
                    "give each language its own ids"
                )
            languages[qid] = lang
            queries[qid] = text
            qrels[qid] = dict(ds.qrels[qid])
        notes += [n for n in ds.notes if n not in notes]
    name = first.name if len(parts) == 1 else f"{first.name} ({', '.join(parts)})"
    return BeirDataset(first.doc_ids, first.doc_texts, queries, qrels, name, notes), languages


def _language_row(row: EvalRow, keep: np.ndarray, bootstrap: int, seed: int) -> EvalRow:
    per_query = {m: np.asarray(v)[keep] for m, v in row.per_query.items()}
    ndcg = per_query[PRIMARY]
    return replace(
        row,
        metrics={m: float(per_query[m].mean()) for m in METRICS if m in per_query},
        n_queries=len(ndcg),
        ndcg_std=float(ndcg.std(ddof=1)) if len(ndcg) > 1 else 0.0,
        ndcg_ci=bootstrap_ci(ndcg, np.random.default_rng(seed), bootstrap),
        per_query={m: v.tolist() for m, v in per_query.items()},
        delta_vs_best_single=None,
        pct_of_reference=None,
    )


def split_by_language(
    report: EvalReport, dataset: BeirDataset, languages: Mapping[str, str]
) -> dict[str, EvalReport]:
    """One report per language from a report over ``dataset`` (the merged queries).

    Each language's rows hold only its queries: means, CIs and the paired difference to
    that language's own best single mode are recomputed (latencies stay those of all queries).
    """
    order = list(dataset.qrels)  # the per-query arrays follow the qrels order
    missing = [q for q in order if q not in languages]
    if missing:
        raise InvalidInputError(f"query {missing[0]!r} has no language ({len(missing)} without one)")
    labels = np.array([languages[q] for q in order])
    out: dict[str, EvalReport] = {}
    for lang in dict.fromkeys(languages[q] for q in order):
        keep = labels == lang
        sub = EvalReport(
            f"{dataset.name} [{lang}]",
            report.num_docs,
            int(keep.sum()),
            rows=[_language_row(r, keep, report.bootstrap, report.seed) for r in report.rows],
            meta={**report.meta, "language": lang},
            notes=list(report.notes),
            bootstrap=report.bootstrap,
            seed=report.seed,
        )
        sub.refresh()
        out[lang] = sub
    return out


@dataclass(frozen=True)
class LanguageGap:
    """How far one language is below the reference language in one (config, mode)."""

    config: str
    mode: str
    language: str
    reference: str
    ndcg: float
    reference_ndcg: float
    #: ``1 - ndcg / reference_ndcg`` (0.05 = 5% below the reference language).
    gap: float
    #: ``ndcg - reference_ndcg`` with a bootstrap 95% CI (the two query sets resampled apart).
    difference: tuple[float, float, float]


def cross_lingual_gaps(reports: Mapping[str, EvalReport], reference: str | None = None) -> list[LanguageGap]:
    """Each other language's nDCG@10 against ``reference``'s (default: ``"en"``, else the first)."""
    if not reports:
        return []
    ref_lang = reference or ("en" if "en" in reports else next(iter(reports)))
    if ref_lang not in reports:
        raise InvalidInputError(f"reference language {ref_lang!r} is not among {sorted(reports)}")
    ref_rows = {(r.system, r.config, r.mode): r for r in reports[ref_lang].rows}
    gaps = []
    for lang, rep in reports.items():
        if lang == ref_lang:
            continue
        rng = np.random.default_rng(rep.seed + 3)
        for row in rep.rows:
            base = ref_rows.get((row.system, row.config, row.mode))
            if base is None:
                continue
            a, b = np.asarray(row.per_query[PRIMARY]), np.asarray(base.per_query[PRIMARY])
            lo, hi = _difference_ci(a, b, rng, rep.bootstrap)
            ref = base.metrics[PRIMARY]
            gaps.append(
                LanguageGap(
                    row.config,
                    row.mode,
                    lang,
                    ref_lang,
                    row.metrics[PRIMARY],
                    ref,
                    1.0 - row.metrics[PRIMARY] / ref if ref > 0 else float("nan"),
                    (float(a.mean() - b.mean()), lo, hi),
                )
            )
    return gaps


def _difference_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n: int) -> tuple[float, float]:
    if n < 1 or len(a) < 2 or len(b) < 2:
        d = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
        return d, d
    ia = rng.integers(0, len(a), size=(n, len(a)))
    ib = rng.integers(0, len(b), size=(n, len(b)))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def languages_markdown(reports: Mapping[str, EvalReport], gaps: list[LanguageGap] | None = None) -> str:
    """Per-language rows (nDCG@10 with CI, difference to that language's best single mode), then the gaps."""
    lines = [
        "| language | config | mode | queries | nDCG@10 (95% CI) | Δ vs best single (95% CI) "
        "| R@10 | MRR@10 |",
        "| --- | --- | --- | ---: | --- | --- | ---: | ---: |",
    ]
    for lang, rep in reports.items():
        for r in rep.rows:
            lines.append(
                f"| {lang} | {r.config or '–'} | {r.mode or '–'} | {r.n_queries:,} "
                f"| {ndcg_cell(r)} | {delta_cell(r)} "
                f"| {r.metrics['recall@10']:.4f} | {r.metrics['mrr@10']:.4f} |"
            )
    gaps = cross_lingual_gaps(reports) if gaps is None else gaps
    if gaps:
        lines += [
            "",
            "Cross-lingual gap (nDCG@10 against the reference language; difference with a 95% CI):",
            "",
            "| language | config | mode | nDCG@10 | reference nDCG@10 | gap | difference (95% CI) |",
            "| --- | --- | --- | ---: | ---: | ---: | --- |",
        ]
        for g in gaps:
            d = g.difference
            lines.append(
                f"| {g.language} vs {g.reference} | {g.config or '–'} | {g.mode or '–'} | {g.ndcg:.4f} "
                f"| {g.reference_ndcg:.4f} | {100 * g.gap:.1f}% | {d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f}) |"
            )
    return "\n".join(lines) + "\n"
