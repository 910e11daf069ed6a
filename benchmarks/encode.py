"""Encoding speed on a checkpoint of BGE-M3's exact shape, side by side in one run.

Paths (same checkpoint, same texts, dense + sparse + ColBERT, CPU, ``--threads``):
FlagEmbedding's ``BGEM3FlagModel``, our torch path (``load_encoder``), our ONNX Runtime
path in fp32 without and with the offline fusions, and in int8.  Outputs are checked
against the torch path in the same run.  The checkpoint is built with random weights
(speed does not depend on their values): 24 layers, hidden 1024, 16 heads, FFN 4096,
8194 positions, with the XLM-R-style (SentencePiece Unigram) tokenizer of
``tests.support.checkpoint``.  Also measured: peak memory of encoding 2k-token and short documents
with and without ``max_batch_tokens`` (separate processes), and model passes per text
for dense + sparse behind two framework classes.

    python benchmarks/encode.py                      # writes the encode section of RESULTS.md
    python benchmarks/encode.py --no-write --passages 8 --layers 2   # quick smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from shared.encoders import BGEM3Encoder, clear_registry, load_encoder
from tests.support.checkpoint import make_bge_m3_checkpoint, sample_corpus

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## encode: BGE-M3-shaped encoding speed, torch vs ONNX Runtime fp32/int8"


def cpu_info() -> str:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    missing = [f for f in ("avx512_vnni", "amx_int8") if f not in flags]
    return f"{name}; flags: {', '.join(shown) or 'none'}; without: {', '.join(missing) or 'none'}"


def passages(tokenizer: Any, n: int, tokens: int, seed: int = 0) -> list[str]:
    """``n`` texts of exactly ``tokens`` tokens (specials included) under ``tokenizer``."""
    rng = random.Random(seed)
    words = " ".join(sample_corpus()).split()
    out = []
    for _ in range(n):
        start = rng.randrange(len(words))
        text = " ".join(words[(start + i) % len(words)] for i in range(tokens * 2))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: tokens - 2]
        out.append(tokenizer.decode(ids))
    return out


def timed(fn: Any, repeats: int) -> float:
    best = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return statistics.median(best)


def p50(fn: Any, n: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def parity(ref: Any, got: Any) -> str:
    cos = float(np.min(np.sum(ref.dense * got.dense, axis=1)))
    sp = max(
        (abs(a[k] - b.get(k, 0.0)) for a, b in zip(ref.sparse, got.sparse, strict=True) for k in a),
        default=0.0,
    )
    cb = max(float(np.abs(a - b).max()) for a, b in zip(ref.colbert, got.colbert, strict=True))
    return f"cos ≥ {cos:.6f}, sparse Δ {sp:.1e}, ColBERT Δ {cb:.1e}"


def speed_table(ckpt: Path, export: Path, args: argparse.Namespace) -> list[str]:
    texts_for = {}
    torch_enc = load_encoder(ckpt, device="cpu", show_progress=False, cache_size=0, threads=args.threads)
    docs = passages(torch_enc.tokenizer, args.passages, args.tokens)
    query = "How do I reset my password in the settings page?"
    texts_for["docs"] = docs
    outs = ["dense", "sparse", "colbert"]
    n_tokens = sum(len(r) for r in torch_enc.tokenize(docs)[0])
    rows: list[tuple[str, float, float, str]] = []
    ref = torch_enc.encode(docs, outputs=outs, batch_size=args.batch_size)

    def measure(name: str, enc_fn: Any, query_fn: Any, check: Any = None) -> None:
        gc.collect()
        secs = timed(enc_fn, args.repeats)
        lat = p50(query_fn, args.queries)
        rows.append((name, n_tokens / secs, lat, check() if check else ""))
        print(f"{name}: {n_tokens / secs:.0f} tok/s, p50 {lat:.1f} ms", file=sys.stderr, flush=True)

    if not args.skip_flag:
        from FlagEmbedding import BGEM3FlagModel

        flag = BGEM3FlagModel(str(ckpt), use_fp16=False, devices="cpu")
        kw = {"return_dense": True, "return_sparse": True, "return_colbert_vecs": True}
        measure(
            "FlagEmbedding `BGEM3FlagModel` (torch)",
            lambda: flag.encode(docs, batch_size=args.batch_size, max_length=512, **kw),
            lambda: flag.encode([query], batch_size=1, max_length=512, **kw),
        )
        del flag
        clear_registry()
    measure(
        'm3-hybrid, torch (`backend="native"`)',
        lambda: torch_enc.encode(docs, outputs=outs, batch_size=args.batch_size),
        lambda: torch_enc.encode([query], "query", outputs=outs),
    )
    torch_enc.model = None  # free the torch weights before the ONNX sessions load
    gc.collect()
    for name, path, precision, level in (
        ("m3-hybrid, ONNX fp32, plain export, ORT basic optimizations", export / "plain", "fp32", "basic"),
        ("m3-hybrid, ONNX fp32, plain export, ORT all optimizations", export / "plain", "fp32", "all"),
        ("m3-hybrid, ONNX fp32, offline fusions (default export)", export / "fused", "fp32", "all"),
        ("m3-hybrid, ONNX int8, plain export", export / "plain", "int8", "all"),
        ("m3-hybrid, ONNX int8, offline fusions (default export)", export / "fused", "int8", "all"),
    ):
        from shared.encoders.onnx import OnnxEncoder

        enc = OnnxEncoder(path, precision=precision, threads=args.threads, show_progress=False, cache_size=0)
        if level == "basic":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            enc.session = ort.InferenceSession(
                str(path / f"model{'_int8' if precision == 'int8' else ''}.onnx"),
                so,
                providers=["CPUExecutionProvider"],
            )
        got: list[Any] = []
        measure(
            name,
            lambda enc=enc, got=got: got.append(enc.encode(docs, outputs=outs, batch_size=args.batch_size)),
            lambda enc=enc: enc.encode([query], "query", outputs=outs),
            lambda got=got: parity(ref, got[-1]),
        )
        del enc
        gc.collect()
    base = {r[0]: r for r in rows}
    flag_row = base.get("FlagEmbedding `BGEM3FlagModel` (torch)")
    torch_row = base['m3-hybrid, torch (`backend="native"`)']
    lines = [
        "| path (same checkpoint, one run) | tokens/s | × torch path | × FlagEmbedding | one-query p50 | "
        "outputs vs torch path |",
        "|---|---|---|---|---|---|",
    ]
    for name, tps, lat, check in rows:
        vs_flag = f"{tps / flag_row[1]:.2f}" if flag_row else "n/a"
        lines.append(
            f"| {name} | {tps:.0f} | {tps / torch_row[1]:.2f} | {vs_flag} | {lat:.0f} ms | {check or '-'} |"
        )
    lines.append("")
    lines.append(
        f"{args.passages} passages × {args.tokens} tokens = {n_tokens} tokens per timed run (median of "
        f"{args.repeats}), batch size {args.batch_size}; one-query p50 over {args.queries} runs of a "
        f"{len(query.split())}-word query, result cache off."
    )
    return lines


MEM_CHILD = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {root!r})
from shared.encoders.onnx import OnnxEncoder
enc = OnnxEncoder({export!r}, threads={threads}, show_progress=False, cache_size=0,
                  max_batch_tokens={budget}, max_length=1024)
long = " ".join(["retrieval"] * 4000)
texts = [f"{{i}} {{long}}" for i in range(2)] + [f"short query {{i}} about cats" for i in range(30)]
enc.encode(["warm-up"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
enc.encode(texts, outputs=["dense", "sparse"], batch_size=32)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"base": base, "peak": peak, "passes": enc.forward_passes}}))
"""


def memory_table(export: Path, args: argparse.Namespace) -> list[str]:
    lines = [
        "| max_batch_tokens | peak RSS (MiB) | growth while encoding (MiB) | forward passes |",
        "|---|---|---|---|",
    ]
    root = str(Path(__file__).resolve().parents[1])
    for budget in (None, 8192, 2048):
        code = MEM_CHILD.format(root=root, export=str(export), threads=args.threads, budget=budget)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            lines.append(f"| {budget} | failed: {proc.stderr.strip().splitlines()[-1][:120]} | | |")
            continue
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        lines.append(
            f"| {budget or 'none (32 texts per batch)'} | {got['peak'] / 1024:.0f} | "
            f"{(got['peak'] - got['base']) / 1024:.0f} | {got['passes'] - 1} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def count_passes(ckpt: Path, texts: list[str], args: argparse.Namespace) -> list[str]:
    """Text-passes (rows through a model) for dense + sparse of N texts."""

    def rows_counter(enc: BGEM3Encoder) -> list[int]:
        seen = [0]
        enc.model.register_forward_pre_hook(
            lambda _m, a, kw: seen.__setitem__(0, seen[0] + int(kw["input_ids"].shape[0])), with_kwargs=True
        )
        return seen

    kw = {"device": "cpu", "batch_size": args.batch_size, "show_progress": False}
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


def query_latency(export: Path, work: Path, args: argparse.Namespace) -> list[str]:
    """One-sentence queries through LangChain's HybridQdrantRetriever on an N-point store."""
    from store import DIM, Corpus

    from langchain_ext import BGEM3Embeddings, HybridQdrantRetriever, HybridQdrantVectorStore
    from shared.types import Record

    emb = BGEM3Embeddings(
        model_name=str(export), backend="onnx", precision="int8", threads=args.threads, cache_size=0
    )
    if emb.encoder.dense_dim != DIM:
        raise SystemExit(f"the store benchmark's corpus is {DIM}-d; the model is {emb.encoder.dense_dim}-d")
    path = work / f"store-{args.points}"
    vs = HybridQdrantVectorStore(emb, collection_name="bench", path=path)
    t = time.perf_counter()
    if vs.store.count() < args.points:
        corpus = Corpus(args.points)

        def records() -> Any:
            for start, dense, sparse, _topics in corpus.chunks(4096):
                for j in range(len(sparse)):
                    yield Record(
                        id=f"doc-{start + j}", text=f"doc {start + j}", dense=dense[j], sparse=sparse[j]
                    )

        vs.store.add(records(), batch_size=1024)
    ingest = time.perf_counter() - t
    retriever = HybridQdrantRetriever(vectorstore=vs, k=10)
    base = [s.rstrip(".") for s in sample_corpus() if 6 <= len(s.split()) <= 16]
    queries = [f"{base[i % len(base)]} {i}?" for i in range(args.queries * 2 + 2)]
    retriever.invoke(queries[0])  # warm-up
    enc = emb.encoder
    total, encode = [], []
    for q in queries[1 : args.queries + 1]:
        t = time.perf_counter()
        docs = retriever.invoke(q)
        total.append(time.perf_counter() - t)
        assert len(docs) == 10
    for q in queries[args.queries + 1 :]:
        t = time.perf_counter()
        enc.encode([q], "query", outputs=["dense", "sparse"])
        encode.append(time.perf_counter() - t)
    p_total, p_enc = statistics.median(total) * 1000, statistics.median(encode) * 1000
    vs.store.close()
    return [
        "| store | query p50 (encode + hybrid search) | encode only p50 | share encoding | target |",
        "|---|---|---|---|---|",
        f"| {args.points:,} points, Qdrant Edge, LangChain `HybridQdrantRetriever` (k=10, hybrid RRF) | "
        f"{p_total:.0f} ms | {p_enc:.0f} ms | {p_enc / p_total:.0%} | ≤ 80 ms: "
        f"{'yes' if p_total <= 80 else 'no'} |",
        "",
        f"ONNX int8 BGE-M3-shaped model (fused export), {args.threads} threads, {args.queries} distinct "
        f"one-sentence queries (result cache off); the store holds `benchmarks/store.py`'s synthetic "
        f"1024-d clustered dense + SPLADE-like sparse points (ingest + index {ingest:.0f} s, not timed "
        "in the query).",
    ]


def write_results(lines: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import write_section

    write_section("\n".join([f"{SECTION}, {dt.date.today().isoformat()}", "", *lines, ""]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--passages", type=int, default=16, help="128-token passages per timed run")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per path (median)")
    parser.add_argument("--queries", type=int, default=15, help="one-query runs per path (p50)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-flag", action="store_true", help="leave FlagEmbedding out")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--points", type=int, default=100_000, help="store size for the query latency")
    parser.add_argument(
        "--only", choices=("speed", "memory", "query", "passes"), help="run one part (and print it)"
    )
    parser.add_argument("--workdir", help="keep the checkpoint and exports here (reused when present)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args(argv)
    from shared.encoders.onnx import export_onnx, is_onnx_export

    work = Path(args.workdir or tempfile.mkdtemp(prefix="m3-encode-bench-"))
    ckpt = work / f"m3-{args.layers}x{args.hidden}"
    shape = {
        "num_layers": args.layers,
        "hidden_size": args.hidden,
        "num_heads": args.hidden // 64,
        "intermediate_size": 4 * args.hidden,
        "max_position_embeddings": 8194,
    }
    t0 = time.time()
    if not (ckpt / "config.json").is_file():
        make_bge_m3_checkpoint(ckpt, **shape)
    exports = work / f"onnx-{args.layers}x{args.hidden}"
    timings = {}
    for sub, optimize in (("fused", True), ("plain", False)):
        if not is_onnx_export(exports / sub):
            t = time.time()
            export_onnx(ckpt, exports / sub, int8=True, optimize=optimize)
            timings[sub] = time.time() - t
    print(f"checkpoint + exports ready in {time.time() - t0:.0f}s {timings}", file=sys.stderr, flush=True)
    parts = {args.only} if args.only else {"speed", "memory", "query", "passes"}
    lines = [
        f"Date 2026-12-01; machine: 2 shared cores, no GPU ({cpu_info()}); {args.threads} threads; "
        f"Python {platform.python_version()}.",
        "",
        f"Command: `python benchmarks/encode.py --threads {args.threads} --passages {args.passages}"
        f" --batch-size {args.batch_size} --points {args.points}`",
        "",
        f"Checkpoint: BGE-M3's shape with random weights ({args.layers} layers × {args.hidden}, "
        f"{shape['num_heads']} heads, FFN {shape['intermediate_size']}, 8194 positions), tokenizer "
        "`tests.support.checkpoint`'s XLM-R-style SentencePiece Unigram (small vocabulary: the embedding "
        "table is smaller than BGE-M3's 250k rows, which does not change compute per token). "
        "Dense + sparse + ColBERT from one pass on every path.",
        "",
    ]
    if "speed" in parts:
        load_before = os.getloadavg()
        lines += speed_table(ckpt, exports, args)
        load_after = os.getloadavg()
        lines += [
            "",
            f"Load average (1 min) before/after the speed table: {load_before[0]:.1f} / "
            f"{load_after[0]:.1f} (other jobs share these 2 cores: compare ratios within this run, "
            "not with other runs).",
            "",
            "bge-m3-lite 0.6.2 is not in the table: its loader (`hub.ensure_files`) always fetches "
            "BAAI/bge-m3's `sentencepiece.bpe.model` and head files and checks their pinned SHA-256 "
            "(also with `model_path=`), and its fused/int8 graphs are built from the hub's ONNX "
            "export; no hub is reachable here, so it cannot run on this checkpoint.",
        ]
    if "query" in parts:
        lines += [
            "",
            "### Query latency end to end (LangChain)",
            "",
            *query_latency(exports / "fused", work, args),
        ]
    if "memory" in parts and not args.skip_memory:
        mem_ckpt = work / "m3-2x1024-8k"
        if not (mem_ckpt / "config.json").is_file():
            make_bge_m3_checkpoint(mem_ckpt, **{**shape, "num_layers": 2})
        mem_export = work / "onnx-2x1024-8k"
        if not is_onnx_export(mem_export):
            export_onnx(mem_ckpt, mem_export)
        lines += [
            "",
            "### Peak memory and `max_batch_tokens`",
            "",
            "ONNX fp32, 2 layers × 1024 (BGE-M3's width, 8194 positions), 2 documents of 1024 tokens "
            "among 30 short ones, `batch_size=32`, `max_length=1024`; a fresh process per row "
            "(ru_maxrss).",
            "",
            *memory_table(mem_export, args),
        ]
    if "passes" in parts:
        lines += [
            "",
            "### Model passes for dense + sparse behind two framework classes",
            "",
            "| setup | text-passes for N=64 | per text |",
            "|---|---|---|",
            *count_passes(
                make_bge_m3_checkpoint(work / "tiny"),
                [f"{i}: " + " ".join(sample_corpus()[i % 20 : i % 20 + 3]) for i in range(64)],
                args,
            ),
        ]
    print("\n".join(lines))
    if not args.no_write and not args.only:
        write_results(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
