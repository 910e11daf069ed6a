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

The MiniLM + SPLADE-tiny path reads quality.py's last full run (``benchmarks/quality.json``: the
same data, code and defaults; encoding 23k verses takes ~40 min on 2 cores) unless ``--rerun``.
Vectors are cached in ``benchmarks/.cache/`` (shared with quality.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402
from benchmarks.quality import encoded_vectors, load_data, load_models, machine  # noqa: E402
from shared.config import StoreConfig  # noqa: E402
from shared.evaluation import PRIMARY, EvalConfig, EvalReport, evaluate, parse_modes  # noqa: E402
from shared.types import Encoder  # noqa: E402

SECTION = "Default fusion, measured across model paths"
FUSIONS = ("hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
MODES = ("dense", "sparse", *FUSIONS)
QUALITY_JSON = ROOT / "benchmarks" / "quality.json"
TINY_DIR = ROOT / "benchmarks" / ".cache" / "tiny-bge-m3"

#: (mean difference, CI low, CI high) of one fusion on one path.
Delta = tuple[float, float, float]


def tiny_bge_m3() -> Encoder:
    from shared.encoders import load_encoder
    from tests.support.checkpoint import make_bge_m3_checkpoint

    if not (TINY_DIR / "config.json").is_file():
        make_bge_m3_checkpoint(TINY_DIR)
    return load_encoder(str(TINY_DIR), show_progress=True)


@dataclass
class PathResult:
    """One model path: each mode's nDCG@10 and p50, each fusion's difference to the best single mode."""

    ndcg: dict[str, float]
    p50_ms: dict[str, float | None]
    deltas: dict[str, Delta]
    num_docs: int
    num_queries: int
    source: str


def from_report(report: EvalReport, source: str) -> PathResult:
    rows = [r for r in report.rows if r.config == "none" and r.mode in MODES]
    return PathResult(
        ndcg={r.mode: r.metrics[PRIMARY] for r in rows},
        p50_ms={r.mode: r.latency_p50_ms for r in rows},
        deltas={r.mode: r.delta_vs_best_single for r in rows if r.mode in FUSIONS and r.delta_vs_best_single},
        num_docs=report.num_docs,
        num_queries=report.num_queries,
        source=source,
    )


def from_quality_json(path: Path) -> PathResult | None:
    """MiniLM + SPLADE-tiny rows of quality.py's last full run (same data, code and defaults), if any."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    rows = {
        r["mode"]: r
        for r in saved.get("rows", [])
        if r.get("system") == "m3-hybrid" and r.get("config") == "none" and r.get("mode") in MODES
    }
    if set(rows) != set(MODES) or saved.get("num_queries") != load_data(None, None).num_queries:
        return None
    return PathResult(
        ndcg={m: r["metrics"][PRIMARY] for m, r in rows.items()},
        p50_ms={m: r.get("latency_p50_ms") for m, r in rows.items()},
        deltas={m: tuple(r["delta_vs_best_single"]) for m, r in rows.items() if m in FUSIONS},
        num_docs=int(saved["num_docs"]),
        num_queries=int(saved["num_queries"]),
        source=f"`{path.relative_to(ROOT)}` (quality.py's last full run)",
    )


def run_path(name: str, encoder: Encoder, args: argparse.Namespace) -> PathResult:
    full = load_data(None, None)
    subset = bool(args.limit_queries or args.corpus_limit)
    ds = load_data(args.limit_queries, args.corpus_limit) if subset else full
    enc = encoded_vectors(encoder, ds, full)
    workdir = Path(tempfile.mkdtemp(prefix=f"m3-fusion-{name}-"))
    try:
        report = evaluate(
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
    return from_report(report, "this run")


def choose(per_path: Mapping[str, Mapping[str, Delta]]) -> str | None:
    """The fusion never measurably below the best single mode, with the best mean difference."""
    fusions = set.intersection(*(set(d) for d in per_path.values())) if per_path else set()
    eligible = [f for f in fusions if all(d[f][2] >= 0.0 for d in per_path.values())]
    if not eligible:
        return None
    return max(sorted(eligible), key=lambda f: sum(d[f][0] for d in per_path.values()) / len(per_path))


def _fmt(d: Delta | None) -> str:
    return "n/a" if d is None else f"{d[0]:+.4f} ({d[1]:+.4f}, {d[2]:+.4f})"


def section(results: Mapping[str, PathResult], argv: Sequence[str]) -> str:
    per_path = {p: r.deltas for p, r in results.items()}
    picked = choose(per_path)
    chosen = picked.removeprefix("hybrid-") if picked else None
    default = str(StoreConfig().fusion)
    paths = list(results)
    first = next(iter(results.values()))
    lines = [
        f"## {SECTION} (2026-12-01)",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/fusion.py', *argv])}`",
        f"- data: bible-dev, {first.num_docs:,} verses, {first.num_queries:,} queries; one unquantized "
        "Qdrant Edge index per model path; default weights (rrf k=60; m3 1.0/0.3 with "
        "sparse_normalization auto); nothing tuned on this set",
        "- paths: `minilm+splade` = all-MiniLM-L6-v2 + SPLADE-tiny; `tiny-bge-m3` = the BGE-M3-format "
        "checkpoint the tests build (random weights: its score scales are not BGE-M3's)",
        *(f"- `{p}` figures from {r.source}" for p, r in results.items()),
        "- cell: paired per-query nDCG@10 difference to the path's best single mode (95% bootstrap CI)",
        "- rule: a fusion measurably below the best single mode on any path (CI entirely below 0) is "
        "out; of the rest, the best mean difference over the paths wins",
        "",
        "| fusion | " + " | ".join(paths) + " | mean | eligible |",
        "| --- | " + " | ".join("---:" for _ in paths) + " | ---: | --- |",
    ]
    for f in FUSIONS:
        cells = [per_path[p].get(f) for p in paths]
        vals = [c for c in cells if c is not None]
        mean = sum(c[0] for c in vals) / len(vals) if vals else float("nan")
        ok = "yes" if vals and all(c[2] >= 0.0 for c in vals) else "no"
        row = " | ".join(_fmt(c) for c in cells)
        lines.append(f"| {f.removeprefix('hybrid-')} | {row} | {mean:+.4f} | {ok} |")
    lines += [
        "",
        "nDCG@10 (query p50) per path:",
        "",
        "| mode | " + " | ".join(paths) + " |",
        "| --- | " + " | ".join("---:" for _ in paths) + " |",
    ]
    for m in MODES:
        cells_m = []
        for p in paths:
            r = results[p]
            p50 = r.p50_ms.get(m)
            cells_m.append(
                f"{r.ndcg[m]:.4f}" + (f" ({p50:.2f} ms)" if p50 is not None else "") if m in r.ndcg else "n/a"
            )
        lines.append(f"| {m} | " + " | ".join(cells_m) + " |")
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
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="encode and run MiniLM + SPLADE-tiny here instead of reading quality.py's last full run",
    )
    ap.add_argument("--no-append", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    loaders = {"minilm+splade": load_models, "tiny-bge-m3": tiny_bge_m3}
    subset = bool(args.limit_queries or args.corpus_limit)
    results: dict[str, PathResult] = {}
    for name in args.paths.split(","):
        if name not in loaders:
            ap.error(f"unknown path {name!r}; choose from {', '.join(loaders)}")
        saved = None if (args.rerun or subset or name != "minilm+splade") else from_quality_json(QUALITY_JSON)
        if saved is not None:
            results[name] = saved
            continue
        print(f"path {name} ...", file=sys.stderr)
        results[name] = run_path(name, loaders[name](), args)
    text = section(results, argv)
    print(text)
    if not args.no_append and not subset:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
