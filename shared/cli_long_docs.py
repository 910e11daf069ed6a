"""``m3-hybrid eval --long-docs``: chunking strategies compared on your long documents.

The arguments (:func:`add_arguments`) and the command (:func:`run`) that ``m3-hybrid eval``
hands over to when one of them is given; the measurements are
:mod:`shared.evaluation.long_docs`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EPILOG", "add_arguments", "requested", "run"]

EPILOG = """\
long documents (--long-docs, or any option of its group):
  Compares chunking strategies instead of presets: naive (each chunk embedded alone), late
  (late chunking: each chunk pooled from one pass over its document), hierarchical (chunks
  and whole documents in one collection, both levels searched in one request), each also
  as NAME+group (one hit per document). The corpus holds whole documents, cut by
  --splitter paragraph|sentence|chars into chunks of at most --chunk-size characters
  (chunk i of document D is "D#i"), or chunks already cut with --document-key KEY naming
  each chunk's document. Qrels judge documents or chunks. Scored at the chunk level (when
  chunks are judged) and at the document level (each document at its best hit), nDCG@10
  with 95% CIs and the paired difference to the first strategy. --recommend: another
  strategy than the first only when that difference's CI is above 0 (at the judged level,
  first mode). Writes long_docs.md/.json (and recommendation.md/.json).
  m3-hybrid eval --long-docs --corpus docs.jsonl --queries q.jsonl --qrels q.tsv --small-models --recommend
  m3-hybrid eval --corpus chunks.jsonl --document-key doc_id --queries q.jsonl --qrels q.tsv \\
      --strategies naive,late,late+group
"""

#: The eval options that choose presets or layouts, which a chunking comparison does not take.
_REFUSED = ("presets", "mrl_dim", "colbert", "on_disk", "cache", "threshold", "corpus_limit", "limit_queries")


def add_arguments(ev: argparse.ArgumentParser) -> None:
    """The eval options of a chunking comparison, as one argument group."""
    from .cli_args import positive_int
    from .evaluation.long_docs import DEFAULT_CHUNK_SIZE, SPLITTERS

    options: dict[str, dict[str, Any]] = {
        "--long-docs": {"action": "store_true", "help": "compare chunking strategies on long documents"},
        "--strategies": {
            "metavar": "LIST",
            "help": "comma-separated: naive, late, hierarchical, each optionally +group (default: all)",
        },
        "--splitter": {
            "choices": SPLITTERS,
            "help": "how documents are cut into chunks (default: paragraph)",
        },
        "--chunk-size": {
            "type": positive_int,
            "metavar": "CHARS",
            "help": f"the most characters of a chunk (default: {DEFAULT_CHUNK_SIZE})",
        },
        "--document-key": {
            "metavar": "KEY",
            "help": "the corpus holds chunks already cut; KEY names each chunk's document",
        },
    }
    group = ev.add_argument_group("long documents (see below)")
    for flag, spec in options.items():
        group.add_argument(flag, **spec)


def requested(args: argparse.Namespace) -> bool:
    """Whether the eval command line asks for a chunking comparison."""
    given = (args.strategies, args.splitter, args.chunk_size, args.document_key)
    return bool(args.long_docs or any(v is not None for v in given))


def run(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    load_encoder: Callable[[argparse.Namespace, argparse.ArgumentParser], Any],
) -> int:
    """The chunking comparison of ``m3-hybrid eval`` (``load_encoder``: the eval's model flags)."""
    from .evaluation.long_docs import (
        DEFAULT_CHUNK_SIZE,
        evaluate_chunking,
        load_long_docs,
        parse_strategies,
    )

    for name in _REFUSED:
        if getattr(args, name) not in (None, False):
            parser.error(f"--{name.replace('_', '-')} does not apply to a chunking comparison")
    if args.document_key is not None and (args.splitter or args.chunk_size):
        parser.error("--document-key gives chunks already cut; drop --splitter/--chunk-size")
    if args.data:
        if args.corpus or args.queries or args.qrels:
            parser.error("give either --data or --corpus/--queries/--qrels, not both")
        root = Path(args.data)
        files = (root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{args.split}.tsv")
    else:
        if not (args.corpus and args.queries and args.qrels):
            parser.error("give --corpus, --queries and --qrels (or a folder with --data)")
        if len(args.queries) != 1 or len(args.qrels) != 1:
            parser.error("a chunking comparison takes one --queries and one --qrels file")
        files = (Path(args.corpus), Path(args.queries[0]), Path(args.qrels[0]))
    strategies = parse_strategies(args.strategies or "all")  # before the (slow) model loads
    data = load_long_docs(
        *files,
        document_key=args.document_key,
        splitter=args.splitter or "paragraph",
        chunk_size=args.chunk_size if args.chunk_size is not None else DEFAULT_CHUNK_SIZE,
    )
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    log(
        f"{data.name}: {len(data.documents):,} documents, {data.num_chunks:,} chunks, "
        f"{len(data.queries):,} scored queries"
    )
    encoder = load_encoder(args, parser)
    modes = args.modes or ("hybrid-m3" if "sparse" in encoder.outputs else "dense")
    report = evaluate_chunking(
        encoder,
        data,
        strategies,
        modes,
        k=args.k,
        bootstrap=args.bootstrap,
        seed=args.seed,
        workdir=args.workdir,
        keep_indexes=args.keep_indexes,
        progress=log,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = report.to_markdown()
    (out / "long_docs.md").write_text(table, encoding="utf-8")
    (out / "long_docs.json").write_text(report.to_json(), encoding="utf-8")
    print(table)
    if args.recommend:
        rec = report.recommend()
        text = rec.to_text()
        (out / "recommendation.md").write_text(text, encoding="utf-8")
        (out / "recommendation.json").write_text(json.dumps(rec.to_dict(), indent=2), encoding="utf-8")
        print(text)
    log(f"wrote {out / 'long_docs.md'}, {out / 'long_docs.json'}")
    return 0
