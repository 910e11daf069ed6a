"""Which hybrid fusion should be the library's default? Measured on every model path we have.

The default must serve users whose models we do not know, so it is chosen across model paths,
not on one:

* ``minilm+splade``: all-MiniLM-L6-v2 (dense) + SPLADE-tiny (sparse), the small real models;
* ``tiny-bge-m3``: the BGE-M3-format checkpoint the tests build (random weights): BGE-M3's own
  one-pass dense + lexical outputs, on scales no real model was trained for. It stands for every
  model whose score scales the m3 weights were not tuned to.

On bible-dev (23k KJV verses, 2,000 WEB queries), one unquantized Qdrant Edge index per path,
each fusion with its default weights (nothing tuned here). For each fusion and path: the paired
per-query nDCG@10 difference to the best single mode (dense or sparse) of that path, with a
bootstrap 95% CI.

Rule (:func:`choose`): a fusion measurably worse than the best single mode on any path (CI
entirely below 0) is out; of the rest, the highest mean difference over the paths wins. The run
checks that the library's default is that fusion and says so.

    python benchmarks/fusion.py                          # full run; replaces its RESULTS.md section
    python benchmarks/fusion.py --corpus-limit 3000 --limit-queries 300 --no-append   # quick

Vectors are cached in ``benchmarks/.cache/`` (shared with quality.py for MiniLM + SPLADE-tiny).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402
from benchmarks.quality import encoded_vectors, load_data, load_models, machine  # noqa: E402
from shared.evaluation import EvalConfig, EvalReport, evaluate, parse_modes  # noqa: E402
from shared.query_planning import QueryOptions  # noqa: E402
from shared.types import Encoder  # noqa: E402

SECTION = "Default fusion, measured across model paths"
FUSIONS = ("hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
MODES = ("dense", "sparse", *FUSIONS)
TINY_DIR = ROOT / "benchmarks" / ".cache" / "tiny-bge-m3"

#: (mean difference, CI low, CI high) of one fusion on one path.
Delta = tuple[float, float, float]


def tiny_bge_m3() -> Encoder:
    from shared.encoders import load_encoder
    from shared.testing import make_bge_m3_checkpoint

    if not (TINY_DIR / "config.json").is_file():
        make_bge_m3_checkpoint(TINY_DIR)
    return load_encoder(str(TINY_DIR), show_progress=True)


def run_path(name: str, encoder: Encoder, args: argparse.Namespace) -> EvalReport:
    full = load_data(None, None)
    ds = (
        load_data(args.limit_queries, args.corpus_limit)
        if (args.limit_queries or args.corpus_limit)
        else full
    )
    enc = encoded_vectors(encoder, ds, full)
    workdir = Path(tempfile.mkdtemp(prefix=f"m3-fusion-{name}-"))
    try:
        return evaluate(
            encoder,
            ds,
            [EvalConfig("none")],
            parse_modes(",".join(MODES)),
            encoded=enc,
            bootstrap=args.bootstrap,
            workdir=workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def deltas(report: EvalReport) -> dict[str, Delta]:
    """Each fusion's paired nDCG@10 difference to the path's best single mode."""
    out: dict[str, Delta] = {}
    for row in report.rows:
        if row.mode in FUSIONS and row.delta_vs_best_single is not None:
            out[row.mode] = row.delta_vs_best_single
    return out


def choose(per_path: Mapping[str, Mapping[str, Delta]]) -> str | None:
    """The fusion never measurably below the best single mode, with the best mean difference."""
    fusions = set.intersection(*(set(d) for d in per_path.values())) if per_path else set()
    eligible = [f for f in fusions if all(d[f][2] >= 0.0 for d in per_path.values())]
    if not eligible:
        return None
    return max(sorted(eligible), key=lambda f: sum(d[f][0] for d in per_path.values()) / len(per_path))


def _fmt(d: Delta | None) -> str:
    return "n/a" if d is None else f"{d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f})"


def section(
    reports: Mapping[str, EvalReport], per_path: Mapping[str, Mapping[str, Delta]], argv: Sequence[str]
) -> str:
    picked = choose(per_path)
    chosen = picked.removeprefix("hybrid-") if picked else None
    default = QueryOptions().fusion.value
    paths = list(reports)
    any_report = next(iter(reports.values()))
    lines = [
        f"## {SECTION} (2026-12-01)",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/fusion.py', *argv])}`",
        f"- data: bible-dev, {any_report.num_docs:,} verses, {any_report.num_queries:,} queries; "
        "one unquantized Qdrant Edge index per model path; default weights (rrf k=60; m3 1.0/0.3 with "
        "sparse_normalization auto); nothing tuned on this set",
        "- paths: `minilm+splade` = all-MiniLM-L6-v2 + SPLADE-tiny; `tiny-bge-m3` = the BGE-M3-format "
        "checkpoint the tests build (random weights: its score scales are not BGE-M3's)",
        "- cell: paired per-query nDCG@10 difference to the path's best single mode (95% bootstrap CI)",
        "- rule: a fusion measurably below the best single mode on any path (CI entirely below 0) is out; "
        "of the rest, the best mean difference over the paths wins",
        "",
        "| fusion | " + " | ".join(paths) + " | mean | eligible |",
        "| --- | " + " | ".join("---:" for _ in paths) + " | ---: | --- |",
    ]
    for f in FUSIONS:
        cells = [per_path[p].get(f) for p in paths]
        vals = [c for c in cells if c is not None]
        mean = sum(c[0] for c in vals) / len(vals) if vals else float("nan")
        ok = "yes" if vals and all(c[2] >= 0.0 for c in vals) else "no"
        lines.append(
            f"| {f.removeprefix('hybrid-')} | "
            + " | ".join(_fmt(c) for c in cells)
            + f" | {mean:+.4f} | {ok} |"
        )
    lines += [
        "",
        "nDCG@10 per path:",
        "",
        "| mode | " + " | ".join(paths) + " |",
        "| --- | " + " | ".join("---:" for _ in paths) + " |",
    ]
    for m in MODES:
        vals = []
        for p in paths:
            row = next((r for r in reports[p].rows if r.mode == m), None)
            vals.append(
                "n/a" if row is None else f"{row.metrics['ndcg@10']:.4f} (p50 {row.latency_p50_ms:.2f} ms)"
            )
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    verdict = (
        f"the library's default, `{default}`, is the measured choice"
        if chosen == default
        else f"MISMATCH: the rule picks `{chosen}`, the library's default is `{default}`"
    )
    lines += ["", f"Chosen by the rule: **{chosen}**; {verdict}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-queries", type=int)
    ap.add_argument("--corpus-limit", type=int)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--paths", default="minilm+splade,tiny-bge-m3")
    ap.add_argument("--no-append", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    loaders = {"minilm+splade": load_models, "tiny-bge-m3": tiny_bge_m3}
    reports: dict[str, EvalReport] = {}
    for name in args.paths.split(","):
        if name not in loaders:
            ap.error(f"unknown path {name!r}; choose from {', '.join(loaders)}")
        print(f"path {name} ...", file=sys.stderr)
        reports[name] = run_path(name, loaders[name](), args)
    per_path = {p: deltas(r) for p, r in reports.items()}
    text = section(reports, per_path, argv)
    print(text)
    if not args.no_append and not (args.limit_queries or args.corpus_limit):
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
