"""Pick the quantization preset (and fusion) that keeps your quality, from your own data.

:func:`recommendation_configs` lists what to try: every quantization preset (or the ones
given; quantized ones with their originals on disk, the layout quantization saves memory
in) and the MRL funnel at the sizes the model was trained for.  :func:`evaluate` (in
:mod:`shared.evaluation`) measures them; :func:`recommend` reads the report:

* the fusion: the hybrid fusion with the highest nDCG@10 on the full-precision index
  (dense alone when the encoder has no sparse output);
* the preset: in that mode, the configuration with the least vector RAM per document whose
  nDCG@10 is at least ``threshold`` (default 99.5%) of the full-precision index's.

:func:`recommend_for` does both in one call.  The CLI is ``m3-hybrid eval --recommend``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError
from .evaluation import PRIMARY, EvalConfig, EvalReport, EvalRow, evaluate, parse_configs
from .mrl import lookup_mrl
from .quantization import PRESETS, get_preset

if TYPE_CHECKING:
    from .evaluation import BeirDataset, EncodedDataset
    from .types import Encoder

__all__ = [
    "DEFAULT_THRESHOLD",
    "RECOMMEND_MODES",
    "Candidate",
    "Recommendation",
    "recommend",
    "recommend_for",
    "recommend_languages",
    "recommendation_configs",
]

#: Default quality to keep: 99.5% of the full-precision index's nDCG@10.
DEFAULT_THRESHOLD = 0.995
#: The modes a recommendation run scores (the fusions, and the single modes next to them).
RECOMMEND_MODES = ("dense", "sparse", "hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
_FUSIONS = {"hybrid-rrf": "rrf", "hybrid-dbsf": "dbsf", "hybrid-m3": "m3"}


def recommendation_configs(
    presets: str | Iterable[str] | None = None,
    *,
    mrl_dims: Iterable[int] | None = None,
    model_id: str = "",
    dense_dim: int | None = None,
) -> list[EvalConfig]:
    """The configurations a recommendation compares.

    ``presets``: names (default: every preset); the full-precision ``none`` is always
    added (it is the reference).  Quantized presets keep their float originals on disk.
    ``mrl_dims``: MRL funnel sizes (full-precision originals on disk, binary funnel codes);
    default: the sizes ``model_id`` was trained at below ``dense_dim`` (none when the model
    is not known to be Matryoshka-trained).
    """
    names = list(PRESETS) if presets is None else [c.quantization for c in parse_configs(presets)]
    if "none" not in names:
        names.insert(0, "none")
    configs = [EvalConfig(n, on_disk=get_preset(n).quantized) for n in dict.fromkeys(names)]
    if mrl_dims is None:
        spec = lookup_mrl(model_id) if model_id else None
        mrl_dims = [d for d in spec.trained_dims if dense_dim is None or d < dense_dim] if spec else []
    for d in dict.fromkeys(mrl_dims):
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise InvalidInputError(f"MRL dim must be a positive integer, got {d!r}")
        if dense_dim is not None and d >= dense_dim:
            raise InvalidInputError(f"MRL dim {d} must be below the model's size {dense_dim}")
        configs.append(EvalConfig("none", mrl_dim=d, on_disk=True))
    return configs


@dataclass(frozen=True)
class Candidate:
    """One configuration in the recommended mode, against the full-precision reference."""

    config: EvalConfig
    row: EvalRow
    #: nDCG@10 relative to the reference (1.0 = equal).
    ratio: float
    #: Paired per-query nDCG@10 difference to the reference: (mean, lo, hi) of a 95% CI.
    delta: tuple[float, float, float]
    ram_bytes_per_doc: float
    meets: bool
    dense_row: EvalRow | None = None


@dataclass
class Recommendation:
    """The outcome of :func:`recommend`: a table of candidates and the choice."""

    threshold: float
    mode: str
    fusion: str | None
    reference: EvalRow
    candidates: list[Candidate]
    choice: Candidate
    fusion_rows: dict[str, EvalRow] = field(default_factory=dict)
    fusion_note: str = ""

    @property
    def store_kwargs(self) -> dict[str, Any]:
        """The ``HybridStore`` (and adapter) keyword arguments that select the choice."""
        c = self.choice.config
        kw: dict[str, Any] = {}
        if c.quantization != "none":
            kw["quantization"] = c.quantization
        if c.mrl_dim:
            kw["mrl_dim"] = c.mrl_dim
            if c.mrl_quantization != "binary":
                kw["mrl_quantization"] = c.mrl_quantization
        if c.on_disk:
            kw["on_disk"] = True
        if self.fusion is not None:
            kw["fusion"] = self.fusion
        return kw

    @property
    def code(self) -> str:
        """The line of Python that opens a store with the recommended settings."""
        args = "".join(f", {k}={v!r}" for k, v in self.store_kwargs.items())
        return f'store = HybridStore("docs", path="./m3-index", encoder=encoder{args})'

    @property
    def cli(self) -> str:
        """The ``m3-hybrid eval`` options that rerun the choice alone next to the reference."""
        c = self.choice.config
        opts = f"--presets none,{c.quantization}" if c.quantization != "none" else "--presets none"
        if c.mrl_dim:
            opts += f" --mrl-dim {c.mrl_dim}"
        if c.on_disk:
            opts += " --on-disk"
        return opts + f" --modes {self.mode}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "mode": self.mode,
            "fusion": self.fusion,
            "fusion_note": self.fusion_note,
            "config": self.choice.config.name,
            "store_kwargs": self.store_kwargs,
            "code": self.code,
            "cli": self.cli,
            "candidates": [
                {
                    "config": c.config.name,
                    "ndcg@10": c.row.metrics[PRIMARY],
                    "ndcg_ci": list(c.row.ndcg_ci),
                    "ratio": c.ratio,
                    "delta": list(c.delta),
                    "ram_bytes_per_doc": c.ram_bytes_per_doc,
                    "meets": c.meets,
                }
                for c in self.candidates
            ],
        }

    def to_text(self) -> str:
        """A Markdown table of the candidates, then the recommendation."""
        pct = f"{100 * self.threshold:g}%"
        ref = self.reference.metrics[PRIMARY]
        lines = [
            f"| config | vector RAM/doc | {self.mode} nDCG@10 (95% CI) | % of float | Δ vs float (95% CI) "
            f"| dense nDCG@10 | >= {pct} |",
            "| --- | ---: | --- | ---: | --- | ---: | --- |",
        ]
        for c in self.candidates:
            r = c.row
            d = c.delta
            dense = f"{c.dense_row.metrics[PRIMARY]:.4f}" if c.dense_row is not None else "–"
            mark = " **<- recommended**" if c is self.choice else ""
            lines.append(
                f"| {c.config.name} | {_bytes(c.ram_bytes_per_doc)} | {r.metrics[PRIMARY]:.4f} "
                f"({r.ndcg_ci[0]:.4f}–{r.ndcg_ci[1]:.4f}) | {100 * c.ratio:.2f} "
                f"| {d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f}) | {dense} | {'yes' if c.meets else 'no'}{mark} |"
            )
        ch = self.choice
        lines += [
            "",
            f"Fusion: {self.fusion or 'none (no sparse output: dense alone)'}. {self.fusion_note}".rstrip(),
            f"Recommended: {ch.config.name} in mode {self.mode}: nDCG@10 {ch.row.metrics[PRIMARY]:.4f} "
            f"(95% CI {ch.row.ndcg_ci[0]:.4f}–{ch.row.ndcg_ci[1]:.4f}) = {100 * ch.ratio:.2f}% of float "
            f"({ref:.4f}), {_bytes(ch.ram_bytes_per_doc)} of vectors in RAM per document: the least memory "
            f"that keeps >= {pct} of float nDCG@10.",
            f"  Python:  {self.code}",
            f"  check it alone:  m3-hybrid eval <same data options> {self.cli}",
        ]
        return "\n".join(lines) + "\n"


def _bytes(n: float) -> str:
    return f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n:.0f} B"


def recommend(report: EvalReport, *, threshold: float = DEFAULT_THRESHOLD) -> Recommendation:
    """The fusion and the smallest configuration of ``report`` that keeps ``threshold`` of float."""
    if not 0.0 < threshold <= 1.0:
        raise InvalidInputError(f"threshold must be within (0, 1], e.g. 0.995; got {threshold!r}")
    ours = [r for r in report.rows if r.system == "m3-hybrid" and r.config_obj is not None]
    refs = [
        r for r in ours if r.config_obj is not None and r.config_obj.is_reference and not r.config_obj.colbert
    ]
    if not refs:
        raise InvalidInputError(
            "the report has no full-precision configuration (preset 'none') to compare to"
        )
    ref_config = refs[0].config
    fusion_rows = {r.mode: r for r in refs if r.config == ref_config and r.mode in _FUSIONS}
    if fusion_rows:
        best = max(fusion_rows.values(), key=lambda r: r.metrics[PRIMARY])
        mode, fusion = best.mode, _FUSIONS[best.mode]
        notes = []
        for other in fusion_rows.values():
            if other is best:
                continue
            d = report.paired_delta(best, other)
            verdict = "measurably better" if d[1] > 0 else "no measurable difference"
            notes.append(
                f"vs {_FUSIONS[other.mode]} {d[0]:+.4f} (95% CI {d[1]:+.4f}, {d[2]:+.4f}): {verdict}"
            )
        note = f"{fusion} scores highest on the full-precision index ({'; '.join(notes)})." if notes else ""
    elif any(r.mode == "dense" for r in refs):
        mode, fusion, note = "dense", None, ""
    else:
        raise InvalidInputError("the report has neither a hybrid nor a dense mode to recommend from")
    reference, candidates = _candidates(report, mode, threshold)
    choice = next(c for c in candidates if c.meets)  # the reference itself always meets it
    return Recommendation(threshold, mode, fusion, reference, candidates, choice, fusion_rows, note)


def _reference_rows(report: EvalReport) -> list[EvalRow]:
    """The rows of the first full-precision configuration (no ColBERT)."""
    refs = [
        r
        for r in report.rows
        if r.system == "m3-hybrid"
        and r.config_obj is not None
        and r.config_obj.is_reference
        and not r.config_obj.colbert
    ]
    return [r for r in refs if r.config == refs[0].config] if refs else []


def _candidates(report: EvalReport, mode: str, threshold: float) -> tuple[EvalRow, list[Candidate]]:
    """The reference row of ``mode`` and every configuration in ``mode`` against it, least RAM first."""
    ours = [r for r in report.rows if r.system == "m3-hybrid" and r.config_obj is not None]
    reference = next(r for r in _reference_rows(report) if r.mode == mode)
    dense_by_config = {r.config: r for r in ours if r.mode == "dense"}
    candidates = []
    for r in ours:
        if r.mode != mode or (r.config_obj is not None and r.config_obj.colbert):
            continue
        assert r.config_obj is not None
        ratio = r.metrics[PRIMARY] / reference.metrics[PRIMARY] if reference.metrics[PRIMARY] > 0 else 0.0
        candidates.append(
            Candidate(
                config=r.config_obj,
                row=r,
                ratio=ratio,
                delta=report.paired_delta(r, reference),
                ram_bytes_per_doc=float(r.ram_bytes_per_doc or 0.0),
                meets=ratio >= threshold - 1e-12,
                dense_row=dense_by_config.get(r.config),
            )
        )
    candidates.sort(key=lambda c: (c.ram_bytes_per_doc, -c.row.metrics[PRIMARY]))
    return reference, candidates


def recommend_languages(
    reports: Mapping[str, EvalReport], *, threshold: float = DEFAULT_THRESHOLD
) -> Recommendation:
    """One fusion and configuration for queries in several languages (one report per language).

    * the fusion: of the fusions never measurably below the language's best single mode in any
      language (paired 95% CI), the highest mean nDCG@10 over the languages (if none is, the
      highest mean of all); dense alone without a sparse output;
    * the configuration: the least vector RAM per document that keeps ``threshold`` of the
      full-precision index's nDCG@10 in EVERY language.

    The candidates shown are the first language's, with ``meets`` true only where every language meets.
    """
    if not reports:
        raise InvalidInputError("no per-language reports to recommend from")
    singles = {lang: recommend(rep, threshold=threshold) for lang, rep in reports.items()}  # checks each
    first_lang = next(iter(reports))
    refs = {lang: {r.mode: r for r in _reference_rows(rep)} for lang, rep in reports.items()}
    fusions = [m for m in _FUSIONS if all(m in rows for rows in refs.values())]
    notes = []
    if fusions:

        def mean(m: str) -> float:
            return sum(rows[m].metrics[PRIMARY] for rows in refs.values()) / len(refs)

        def holds(m: str) -> bool:
            return all((d := rows[m].delta_vs_best_single) is None or d[2] >= 0.0 for rows in refs.values())

        eligible = [m for m in fusions if holds(m)]
        mode = max(eligible or fusions, key=mean)
        fusion: str | None = _FUSIONS[mode]
        per_lang = ", ".join(f"{lang} {rows[mode].metrics[PRIMARY]:.4f}" for lang, rows in refs.items())
        why = (
            "never measurably below the best single mode in any language, highest mean nDCG@10"
            if eligible
            else "every fusion is measurably below the best single mode in some language; highest mean"
        )
        notes.append(f"{fusion} over {len(refs)} languages ({per_lang}): {why}.")
    else:
        mode, fusion = singles[first_lang].mode, singles[first_lang].fusion
    per_language = {lang: _candidates(rep, mode, threshold) for lang, rep in reports.items()}
    meets_all = {
        c.config.name
        for c in per_language[first_lang][1]
        if all(
            any(o.config.name == c.config.name and o.meets for o in cands)
            for _, cands in per_language.values()
        )
    }
    reference, candidates = per_language[first_lang]
    candidates = [replace(c, meets=c.config.name in meets_all) for c in candidates]
    choice = next(c for c in candidates if c.meets)  # the reference meets in every language
    notes.append(f"{choice.config.name} keeps >= {100 * threshold:g}% of float nDCG@10 in every language.")
    fusion_rows = {m: refs[first_lang][m] for m in fusions}
    return Recommendation(
        threshold, mode, fusion, reference, candidates, choice, fusion_rows, " ".join(notes)
    )


def recommend_for(
    encoder: Encoder,
    dataset: BeirDataset,
    presets: str | Iterable[str] | None = None,
    *,
    mrl_dims: Iterable[int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    encoded: EncodedDataset | None = None,
    modes: Sequence[str] = RECOMMEND_MODES,
    **evaluate_options: Any,
) -> tuple[EvalReport, Recommendation]:
    """Evaluate the presets (and MRL sizes) on ``dataset`` and recommend one.

    ``evaluate_options`` go to :func:`shared.evaluation.evaluate` (``workdir``,
    ``bootstrap``, ``store_options``...).  Returns the full report and the recommendation.
    """
    if not 0.0 < threshold <= 1.0:
        raise InvalidInputError(f"threshold must be within (0, 1], e.g. 0.995; got {threshold!r}")
    dense_dim = None
    if encoded is not None and encoded.docs.dense is not None:
        dense_dim = int(encoded.docs.dense.shape[1])
    elif "dense" in encoder.outputs:
        dense_dim = encoder.dense_dim if isinstance(getattr(encoder, "dense_dim", None), int) else None
    configs = recommendation_configs(
        presets, mrl_dims=mrl_dims, model_id=encoder.identity.model_id, dense_dim=dense_dim
    )
    usable = [m for m in modes if not ({"sparse"} & _needs(m)) or "sparse" in encoder.outputs]
    report = evaluate(encoder, dataset, configs, usable, encoded=encoded, **evaluate_options)
    return report, recommend(report, threshold=threshold)


def _needs(mode: str) -> set[str]:
    return {"sparse"} if mode == "sparse" or mode.startswith("hybrid") else set()
