"""Encoding throughput: our native BGE-M3 encoder vs FlagEmbedding's BGEM3FlagModel.

Both run the SAME checkpoint (the tiny one and a base-size 12 x 768 random XLM-R
in BGE-M3's layout, from ``shared.testing``) on the same texts, producing dense +
sparse + ColBERT, side by side in one run; the ratio is ours / FlagEmbedding's.
Outputs are checked for equality in the same run.  A second table counts model
passes per text for dense + sparse of N texts: one shared encoder behind the dense
and the sparse framework classes (ours) vs two independent encoders (the usual
two-class setup).

    python benchmarks/encode.py                  # CPU, appends to benchmarks/RESULTS.md
    python benchmarks/encode.py --device cuda    # GPU (fp16 for both)
    python benchmarks/encode.py --no-append --sizes tiny
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from shared.encoders import BGEM3Encoder
from shared.testing import BASE_SIZE, TINY_SIZE, make_bge_m3_checkpoint, sample_corpus

RESULTS = Path(__file__).with_name("RESULTS.md")


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Deterministic mix of realistic lengths: 1/4 short queries, 3/4 passages of 2-8 sentences."""
    rng = random.Random(seed)
    sentences = sample_corpus()
    texts = []
    for i in range(n):
        if i % 4 == 0:
            words = rng.choice(sentences).rstrip(".").split()
            texts.append(" ".join(words[: rng.randint(4, 10)]) + "?")
        else:
            texts.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(2, 8))))
    return texts


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compare(ours: Any, flag: dict[str, Any]) -> dict[str, float | bool]:
    """Max differences between our EncodeResult and FlagEmbedding's output dict."""
    dense_cos = float(np.min(np.sum(ours.dense * np.asarray(flag["dense_vecs"]), axis=1)))
    keys_equal = True
    sparse_diff = 0.0
    for a, b in zip(ours.sparse, flag["lexical_weights"], strict=True):
        b = {int(k): float(v) for k, v in b.items()}
        keys_equal &= a.keys() == b.keys()
        if a.keys() == b.keys() and a:
            sparse_diff = max(sparse_diff, max(abs(a[k] - b[k]) for k in a))
    colbert_diff = 0.0
    shapes_equal = True
    for a, b in zip(ours.colbert, flag["colbert_vecs"], strict=True):
        shapes_equal &= a.shape == b.shape
        if a.shape == b.shape and a.size:
            colbert_diff = max(colbert_diff, float(np.abs(a - b).max()))
    return {
        "dense_cos_min": dense_cos,
        "sparse_keys_equal": keys_equal,
        "sparse_max_diff": sparse_diff,
        "colbert_shapes_equal": shapes_equal,
        "colbert_max_diff": colbert_diff,
    }


def bench_size(
    name: str, ckpt: Path, texts: list[str], args: argparse.Namespace
) -> tuple[list[str], dict[str, Any]]:
    from FlagEmbedding import BGEM3FlagModel

    fp16 = args.device.startswith("cuda")
    ours = BGEM3Encoder(
        ckpt,
        device=args.device,
        fp16=fp16,
        max_length=args.max_length,
        batch_size=args.batch_size,
        show_progress=False,
        cache_size=0,  # measure the model, not the cache
    )
    flag = BGEM3FlagModel(str(ckpt), use_fp16=fp16, devices=[args.device], batch_size=args.batch_size)
    flag_calls = [0]
    flag.model.model.register_forward_pre_hook(lambda *_: flag_calls.__setitem__(0, flag_calls[0] + 1))
    outputs = ["dense", "sparse", "colbert"]

    def run_ours() -> Any:
        return ours.encode(texts, outputs=outputs)

    def run_flag() -> dict[str, Any]:
        return flag.encode(
            texts,
            batch_size=args.batch_size,
            max_length=args.max_length,
            return_dense=True,
            return_sparse=True,
            return_colbert_vecs=True,
        )

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    # Warm-up (allocator, kernels, lazy init) on a few texts.
    ours.encode(texts[:4], outputs=outputs)
    flag.encode(texts[:4], return_dense=True, return_sparse=True, return_colbert_vecs=True)
    times: dict[str, list[float]] = {"ours": [], "flag": []}
    calls = {"ours": 0, "flag": 0}
    result_ours: Any = None
    result_flag: dict[str, Any] = {}
    for _ in range(args.repeats):  # interleaved so drift on a shared machine hits both
        for label, fn in (("ours", run_ours), ("flag", run_flag)):
            sync()
            before = ours.forward_passes if label == "ours" else flag_calls[0]
            t0 = time.perf_counter()
            out = fn()
            sync()
            times[label].append(time.perf_counter() - t0)
            calls[label] = (ours.forward_passes if label == "ours" else flag_calls[0]) - before
            if label == "ours":
                result_ours = out
            else:
                result_flag = out
    tokens = sum(result_ours.token_counts)
    check = compare(result_ours, result_flag)
    t_ours, t_flag = statistics.median(times["ours"]), statistics.median(times["flag"])
    identical = (
        check["dense_cos_min"] >= (0.999 if fp16 else 0.99999)
        and check["sparse_keys_equal"]
        and check["colbert_shapes_equal"]
        and check["sparse_max_diff"] <= (1e-2 if fp16 else 1e-4)
        and check["colbert_max_diff"] <= (1e-2 if fp16 else 1e-4)
    )
    rows = [
        f"| {name} | m3-hybrid native | {len(texts) / t_ours:,.1f} | {tokens / t_ours:,.0f} | "
        f"{calls['ours']} | {t_flag / t_ours:.2f}x | {'yes' if identical else 'NO'} |",
        f"| {name} | FlagEmbedding BGEM3FlagModel | {len(texts) / t_flag:,.1f} | {tokens / t_flag:,.0f} | "
        f"{calls['flag']} | 1.00x | reference |",
    ]
    detail = {"tokens": tokens, "t_ours": times["ours"], "t_flag": times["flag"], **check}
    return rows, detail


def count_passes(ckpt: Path, texts: list[str], args: argparse.Namespace) -> list[str]:
    """Text-passes (rows through a model) for dense + sparse of N texts."""

    def rows_counter(enc: BGEM3Encoder) -> list[int]:
        seen = [0]
        enc.model.register_forward_pre_hook(
            lambda _m, a, kw: seen.__setitem__(0, seen[0] + int(kw["input_ids"].shape[0])), with_kwargs=True
        )
        return seen

    kw = {"device": args.device, "batch_size": args.batch_size, "show_progress": False}
    shared = BGEM3Encoder(ckpt, **kw)
    seen_shared = rows_counter(shared)
    shared.encode(texts, outputs=["dense"])  # the dense framework class
    shared.encode(texts, outputs=["sparse"])  # the sparse framework class, same encoder
    dense_only = BGEM3Encoder(ckpt, **kw)
    sparse_only = BGEM3Encoder(ckpt, **kw)
    seen_a, seen_b = rows_counter(dense_only), rows_counter(sparse_only)
    dense_only.encode(texts, outputs=["dense"])
    sparse_only.encode(texts, outputs=["sparse"])
    n = len(texts)
    return [
        f"| m3-hybrid: dense + sparse classes sharing one encoder | {seen_shared[0]} | "
        f"{seen_shared[0] / n:.0f}N |",
        f"| two independent encoders (one per class) | {seen_a[0] + seen_b[0]} | "
        f"{(seen_a[0] + seen_b[0]) / n:.0f}N |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=64, help="texts for the tiny model (default 64)")
    parser.add_argument(
        "--base-texts", type=int, default=32, help="texts for the base-size model (default 32)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side (median reported)")
    parser.add_argument("--sizes", default="tiny,base", help="comma list of tiny, base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-append", action="store_true", help=f"do not append to {RESULTS.name}")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = {"tiny": TINY_SIZE, "base": BASE_SIZE}
    chosen = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in sizes]
    if unknown:
        parser.error(f"unknown sizes {unknown}")

    table = [
        "| model | implementation | texts/s | tokens/s | model calls | speed vs FlagEmbedding "
        "| identical outputs |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    details = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = {}
        for size in chosen:
            ckpts[size] = make_bge_m3_checkpoint(Path(tmp) / size, **sizes[size])
            label = f"{size} ({sizes[size]['num_layers']}x{sizes[size]['hidden_size']})"
            print(f"benchmarking {label} ...", file=sys.stderr, flush=True)
            texts = make_texts(args.texts if size == "tiny" else args.base_texts)
            rows, detail = bench_size(label, ckpts[size], texts, args)
            table += rows
            details.append(f"{label}: {detail}")
        passes = [
            f"| setup ({args.texts} texts, dense + sparse, {next(iter(ckpts))} checkpoint) "
            "| text-passes | per text |",
            "| --- | ---: | ---: |",
            *count_passes(next(iter(ckpts.values())), make_texts(args.texts), args),
        ]

    texts = make_texts(args.texts)
    words_per_text = statistics.mean(len(t.split()) for t in texts)
    machine = (
        f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    if args.device.startswith("cuda"):
        machine += f", GPU {torch.cuda.get_device_name(0)}"
    if hasattr(os, "getloadavg"):
        # Shared machines: a high load makes absolute numbers noisy (ratios are interleaved runs).
        machine += f", load average {os.getloadavg()[0]:.1f} at the end"
    command = "python benchmarks/encode.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = "\n".join(
        [
            f"## encode: BGE-M3 dense+sparse+ColBERT throughput, {dt.date.today().isoformat()}",
            "",
            f"- machine: {machine}; device: {args.device}",
            f"- command: `{command.strip()}`",
            f"- texts: {args.texts} (tiny) / {args.base_texts} (base), ~{words_per_text:.0f} words each "
            "(1/4 short queries, 3/4 passages of 2-8 sentences); tokens counted below; "
            f"batch size {args.batch_size}, "
            f"max_length {args.max_length}, median of {args.repeats} interleaved runs; same checkpoint and "
            "same texts for both; outputs compared in the same run. FlagEmbedding's model calls include "
            "the extra pass it runs on its longest batch to probe the batch size.",
            "",
            *table,
            "",
            *passes,
            "",
            "<details><summary>raw</summary>",
            "",
            *[f"    {d}" for d in details],
            "",
            "</details>",
            "",
        ]
    )
    print(report)
    if not args.no_append:
        with RESULTS.open("a", encoding="utf-8") as f:
            if RESULTS.stat().st_size == 0:
                f.write("# Benchmark results\n\n")
            f.write(report + "\n")
        print(f"appended to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
