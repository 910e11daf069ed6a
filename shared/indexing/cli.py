"""``m3-hybrid index``: the argument parser and the command (wired into :mod:`shared.cli`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from ..cli_args import add_command, api_key_for, positive_int
from ..errors import InvalidInputError

__all__ = ["add_index_parser"]

_HELP = "index a corpus (JSONL/Parquet/CSV/text files) into a collection, resumable, optionally on Ray"
_DESCRIPTION = """\
Index a corpus into a collection: read records, skip the ids already stored, encode the
rest, write them (dense + sparse, with the encoder guard, the --preset and the ids the
adapters would give: uuid5 of the record id).

SRC is a JSONL, Parquet or CSV file (--text-field, --id-field, --metadata-fields), or a
directory of text/Markdown files (one document each, id = relative path). A record without
an id gets FILE:LINE (FILE:row N for Parquet), so reruns give it the same id.

DST is a directory (embedded store), local:DIR (qdrant-client local mode) or an
http(s):// Qdrant server or cluster, as for `m3-hybrid migrate`.

Rerunning the same command after an interruption (even kill -9) finishes the job without
re-encoding what was written and without duplicates. A bad record (not JSON, no text,
metadata that is not JSON, ...) is reported with its id and line; the others go on; the
exit status is 1 if any failed (--max-errors N stops after N).

--ray runs the encoding in a Ray Data actor pool (pip install "m3-hybrid[ray]"): --workers
encoders of --cpus-per-worker CPUs (or --gpus-per-worker GPUs) each, on the cluster at
ADDRESS (default: RAY_ADDRESS, else a local one). Without --ray the same command runs in
this process, with the same result.
"""

_EPILOG = """\
examples:
  m3-hybrid index --from docs/ --to ./store --collection docs --model BAAI/bge-m3
  m3-hybrid index --from corpus.jsonl --id-field _id --to ./store --collection c \\
      --model ./bge-m3-onnx --backend onnx --precision int8 --preset int8
  m3-hybrid index --from s3data.parquet --to https://qdrant:6333 --collection c \\
      --model ./bge-m3-onnx --backend onnx --precision int8 --ray ray://head:10001 --workers 32
"""


def add_index_parser(sub: Any) -> None:
    """Add the ``index`` subcommand to ``m3-hybrid``'s subparsers."""
    p = add_command(sub, "index", help=_HELP, description=_DESCRIPTION, epilog=_EPILOG)
    io = p.add_argument_group("source and target")
    io.add_argument("--from", dest="source", required=True, metavar="SRC", help="file or directory to index")
    io.add_argument("--to", dest="target", required=True, metavar="DST", help="where the collection is")
    io.add_argument("--collection", required=True, metavar="NAME", help="the collection to write")
    io.add_argument("--format", choices=("jsonl", "parquet", "csv", "text"), help="default: from the suffix")
    io.add_argument("--text-field", default="text", metavar="F", help="field with the text (default: text)")
    io.add_argument("--id-field", default="id", metavar="F", help="field with the id (default: id)")
    io.add_argument(
        "--metadata-fields", metavar="A,B", help="fields stored as metadata (default: all but text and id)"
    )
    io.add_argument(
        "--chunker",
        metavar="MODULE:NAME",
        help="a callable text -> list of chunk texts (e.g. your splitter's split_text); chunk k of "
        "document D gets id D#k and ref_doc_id D",
    )
    io.add_argument(
        "--api-key", metavar="KEY", help="API key of an http(s):// target (default: $QDRANT_API_KEY)"
    )
    io.add_argument("--timeout", type=float, metavar="SECONDS", help="timeout of each call to a server")

    model = p.add_argument_group("model (load_encoder's options)")
    model.add_argument("--model", default="BAAI/bge-m3", metavar="NAME_OR_DIR", help="default: BAAI/bge-m3")
    model.add_argument("--sparse-model", metavar="NAME_OR_DIR", help="a SPLADE model beside a dense --model")
    model.add_argument("--backend", choices=("native", "flagembedding", "onnx"), default="native")
    model.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="onnx weights")
    model.add_argument("--device", help="torch device (e.g. cuda)")
    model.add_argument("--max-length", type=positive_int, metavar="TOKENS")
    model.add_argument("--batch-size", type=positive_int, default=32, help="encoder batch size (default: 32)")
    model.add_argument(
        "--max-batch-tokens", type=positive_int, metavar="N", help="bound each encoder batch by padded tokens"
    )
    model.add_argument("--threads", type=positive_int, help="encoder threads per process (default: cores)")

    store = p.add_argument_group("collection (a new one; an existing one keeps its settings)")
    store.add_argument(
        "--preset", metavar="P", help="quantization preset, e.g. int8, binary-2bit (default: none)"
    )
    store.add_argument("--colbert", action="store_true", help="store ColBERT multivectors (BGE-M3)")
    store.add_argument("--on-disk", action="store_true", help="originals on disk, quantized codes in RAM")
    store.add_argument("--shard-number", type=positive_int, metavar="N", help="shards on a server")
    store.add_argument("--replication-factor", type=positive_int, metavar="N", help="replicas on a server")

    run = p.add_argument_group("run")
    run.add_argument(
        "--records-per-batch",
        type=positive_int,
        default=64,
        metavar="N",
        help="records checked, encoded and written per step (default: 64)",
    )
    run.add_argument("--max-errors", type=int, metavar="N", help="stop once more than N records failed")
    run.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help="encode on Ray Data (ADDRESS: a cluster, e.g. ray://head:10001 or auto)",
    )
    run.add_argument("--workers", type=positive_int, default=1, help="encoder actors with --ray (default: 1)")
    run.add_argument("--cpus-per-worker", type=float, metavar="N", help="default: --threads or 1")
    run.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="N", help="GPUs per encoder actor")
    run.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=_cmd_index)


def _chunker(spec: str | None) -> Callable[[str], Any] | None:
    if spec is None:
        return None
    module, _, name = spec.partition(":")
    if not module or not name:
        raise InvalidInputError(f"--chunker must be MODULE:NAME, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module)
        for attr in name.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"--chunker {spec}: {exc}") from None
    if not callable(obj):
        raise InvalidInputError(f"--chunker {spec} is not callable")
    return obj


def _cmd_index(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .api import index
    from .sources import Fields

    if args.max_errors is not None and args.max_errors < 0:
        parser.error(f"--max-errors must be >= 0, got {args.max_errors}")
    if args.ray is None and (args.workers != 1 or args.gpus_per_worker or args.cpus_per_worker):
        parser.error("--workers, --cpus-per-worker and --gpus-per-worker go with --ray")
    encoder_options: dict[str, Any] = {
        "sparse_model": args.sparse_model,
        "backend": args.backend,
        "precision": args.precision,
        "device": args.device,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "max_batch_tokens": args.max_batch_tokens,
        "threads": args.threads,
    }
    store_options: dict[str, Any] = {}
    if args.preset:
        store_options["quantization"] = args.preset
    if args.colbert:
        store_options["colbert"] = True
    if args.on_disk:
        store_options["on_disk"] = True
    if args.shard_number:
        store_options["shard_number"] = args.shard_number
    if args.replication_factor:
        store_options["replication_factor"] = args.replication_factor
    api_key = api_key_for(args.api_key, args.target)
    metadata = tuple(f for f in args.metadata_fields.split(",") if f) if args.metadata_fields else None
    result = index(
        args.source,
        args.target,
        args.collection,
        model=args.model,
        encoder_options=encoder_options,
        store_options=store_options,
        fields=Fields(text=args.text_field, id=args.id_field or None, metadata=metadata),
        format=args.format,
        chunker=_chunker(args.chunker),
        batch_size=args.records_per_batch,
        max_errors=args.max_errors,
        api_key=api_key,
        timeout=args.timeout,
        ray=args.ray,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        show_progress=not args.quiet,
    )
    shown = 20
    for err in result.errors[:shown]:
        print(f"m3-hybrid: bad record: {err}", file=sys.stderr)
    if result.failed > shown:
        print(f"m3-hybrid: ... and {result.failed - shown:,} more bad records", file=sys.stderr)
    rate = result.written / result.seconds if result.seconds > 0 else 0.0
    how = " on Ray" if result.ray else ""
    print(
        f"indexed{how} into {result.target}: {result.written:,} written, {result.skipped:,} already "
        f"there, {result.failed:,} failed ({rate:,.1f} records/s); the collection holds "
        f"{result.count if result.count is not None else '?'} points"
        + ("; stopped early: more than --max-errors records failed" if result.aborted else "")
    )
    return 0 if result.ok else 1
