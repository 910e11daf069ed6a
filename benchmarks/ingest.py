"""``m3-hybrid index`` throughput and memory: in-process vs Ray Data with 1 and 2 workers.

Part ``speed``: passages/s of ``index()`` end to end (model loading included, Ray's cluster
start not), the steady-state passages/s once every encoder is loaded (from the times the batches'
writes finished: from the batch by which each worker has written one, to the last), and peak
memory, at equal cores (2): in-process with 2 encoder threads, Ray with 1 worker x 2
threads, Ray with 2 workers x 1 thread; on all-MiniLM-L6-v2 and on a checkpoint of BGE-M3's
exact shape (24 layers, hidden 1024, random weights: speed does not depend on them), both as
ONNX int8 exports (``--m3-export DIR`` takes an existing export of the BGE-M3-shaped
checkpoint: building and exporting one takes long); passages of ~128 tokens (bible-dev verses
joined; fewer words for the BGE-M3-shaped checkpoint, whose test tokenizer splits finer). Each run is its own
process, writing to a new embedded store. Peak memory: the driver's peak RSS, and the peak
of the summed RSS of the driver and every process under it (Ray's raylet, GCS, workers;
shared pages counted once per process, so an upper bound).

Part ``rss``: the driver's peak RSS at 1k vs a large corpus (the tiny BGE-M3 checkpoint as
ONNX fp32, so encoding is cheap and the corpus size is what varies), Ray 2 workers and
in-process (``--rss-ray-only``: Ray only, the run the target is about).

    python benchmarks/ingest.py                       # both parts; writes the ingest section of RESULTS.md
    python benchmarks/ingest.py --passages 64 --m3-passages 16 --large 5000 --no-write   # quick run
    python benchmarks/ingest.py --m3-export /path/to/m3-int8-export ...                  # reuse an export
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTION = "## ingest: m3-hybrid index in-process vs Ray Data (1 and 2 workers)"
BIBLE = ROOT / "benchmarks" / "data" / "bible-dev" / "corpus.jsonl"


def passages(n: int, words: int = 100) -> list[str]:
    """``n`` distinct passages of about ``words`` words (~128 tokens) from bible-dev verses."""
    verses = [json.loads(line)["text"] for line in BIBLE.read_text().splitlines()]
    out, i = [], 0
    while len(out) < n:
        text: list[str] = []
        while len(text) < words:
            text.extend(verses[i % len(verses)].split())
            i += 1
        out.append(" ".join(text[:words]))
    return out


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with open(path, "w") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"id": f"p{i}", "text": t, "n": i}) + "\n")
    return path


class TreeRss:
    """Samples the RSS of this process (``own``) and the sum over it and its descendants (``peak``).

    Sampled, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over ``exec`` from the forking parent.
    """

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self.own = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                self.own = max(self.own, self._me.memory_info().rss)
            for p in [self._me, *self._me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.own, self.peak


def child(config: dict[str, Any]) -> dict[str, Any]:
    """One run in this process: ``index()`` with ``config``; returns its figures."""
    from shared.indexing import index

    tree = TreeRss()
    marks: list[tuple[float, int]] = []  # (time, written) each time a batch's figures arrive
    ray_start = 0.0
    if config["mode"] == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        ray_start = time.perf_counter() - t
    options = {"backend": "onnx", "precision": config["precision"], "threads": config["threads"]}
    kwargs: dict[str, Any] = {}
    if config["mode"] == "ray":
        kwargs = {"ray": True, "workers": config["workers"], "cpus_per_worker": config["threads"]}
    t, wall = time.perf_counter(), time.time()
    result = index(
        config["source"],
        config["target"],
        "bench",
        model=config["model"],
        encoder_options=options,
        batch_size=config["batch"],
        # When each batch's write finished (on Ray the figures reach the driver later, in bursts).
        progress=lambda r: marks.append((r.last_written_at or time.time(), r.written)),
        **kwargs,
    )
    seconds = time.perf_counter() - t
    # Steady state: from the batch by which every worker has delivered one (its encoder is
    # loaded and warm) to the last; ``workers`` batches arrive about together at first.
    first = config["workers"] - 1 if config["mode"] == "ray" else 0
    steady = None
    if len(marks) > first + 1 and marks[-1][0] > marks[first][0]:
        steady = (marks[-1][1] - marks[first][1]) / (marks[-1][0] - marks[first][0])
    own, tree_peak = tree.stop()
    if config["mode"] == "ray":
        import ray

        ray.shutdown()
    return {
        "written": result.written,
        "count": result.count,
        "seconds": seconds,
        "per_s": result.written / seconds,
        "steady_per_s": steady,
        "first_batch_s": marks[0][0] - wall if marks else None,
        "ray_start_s": ray_start,
        "driver_peak_mb": own / 2**20,
        "tree_peak_mb": tree_peak / 2**20,
    }


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"run {config} failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({**{k: config[k] for k in ("label", "mode")}, **figures}), file=sys.stderr, flush=True)
    return figures


CONFIGS = (
    ("in-process, 2 threads", {"mode": "local", "workers": 1, "threads": 2}),
    ("Ray, 1 worker x 2 threads", {"mode": "ray", "workers": 1, "threads": 2}),
    ("Ray, 2 workers x 1 thread", {"mode": "ray", "workers": 2, "threads": 1}),
)


def speed(work: Path, models: dict[str, tuple[str, int, int, int]]) -> list[str]:
    lines = [
        "| model (ONNX int8) | run | passages | end to end passages/s | vs in-process "
        "| first write at (s) | steady passages/s | vs in-process | Ray start (s) "
        "| driver peak RSS (MB) | all processes peak RSS (MB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (model, n, words, batch) in models.items():
        source = write_jsonl(work / f"{name}-{n}.jsonl", passages(n, words))
        base = steady_base = None
        for label, cfg in CONFIGS:
            target = tempfile.mkdtemp(dir=work, prefix="store-")
            figures = run_child(
                {
                    **cfg,
                    "label": f"{name}: {label}",
                    "source": str(source),
                    "target": target,
                    "model": model,
                    "precision": "int8",
                    "batch": batch,
                }
            )
            assert figures["count"] == n, figures
            base = figures["per_s"] if base is None else base
            steady = figures["steady_per_s"]
            steady_base = steady if steady_base is None else steady_base
            steady_cells = (
                f"{steady:.2f} | {steady / steady_base:.2f}" if steady and steady_base else "n/a | n/a"
            )
            lines.append(
                f"| {name} | {label} | {n} | {figures['per_s']:.2f} | {figures['per_s'] / base:.2f} | "
                f"{figures['first_batch_s']:.0f} | {steady_cells} | "
                f"{figures['ray_start_s']:.0f} | {figures['driver_peak_mb']:.0f} | "
                f"{figures['tree_peak_mb']:.0f} |"
            )
    return lines


def rss(work: Path, model: str, small: int, large: int, batch: int, ray_only: bool) -> list[str]:
    lines = [
        "| run | records | end to end records/s | steady records/s | first write at (s) "
        "| driver peak RSS (MB) | all processes peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    texts = passages(large, words=20)
    for label, cfg in (CONFIGS[2],) if ray_only else (CONFIGS[2], CONFIGS[0]):
        for n in (small, large):
            source = write_jsonl(work / f"tiny-{n}.jsonl", texts[:n])
            target = tempfile.mkdtemp(dir=work, prefix="store-")
            figures = run_child(
                {
                    **cfg,
                    "label": f"tiny: {label}",
                    "source": str(source),
                    "target": target,
                    "model": model,
                    "precision": "fp32",
                    "batch": batch,
                }
            )
            assert figures["count"] == n, figures
            lines.append(
                f"| {label} | {n:,} | {figures['per_s']:.0f} | {figures['steady_per_s'] or 0:.0f} | "
                f"{figures['first_batch_s']:.0f} | {figures['driver_peak_mb']:.0f} | "
                f"{figures['tree_peak_mb']:.0f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--passages", type=int, default=256, help="MiniLM passages per run")
    parser.add_argument("--m3-passages", type=int, default=48, help="BGE-M3-shaped passages per run")
    parser.add_argument("--small", type=int, default=1000, help="small corpus of the rss part")
    parser.add_argument("--large", type=int, default=100_000, help="large corpus of the rss part")
    parser.add_argument("--batch", type=int, default=32, help="records per batch (--records-per-batch)")
    parser.add_argument("--m3-batch", type=int, default=4, help="records per batch, BGE-M3 shape")
    parser.add_argument("--m3-words", type=int, default=50, help="words per BGE-M3-shaped passage")
    parser.add_argument("--m3-export", help="an existing ONNX int8 export of the BGE-M3-shaped checkpoint")
    parser.add_argument("--rss-ray-only", action="store_true", help="rss part: the Ray run only")
    parser.add_argument("--only", choices=("speed", "rss"), help="run one part")
    parser.add_argument("--skip-m3", action="store_true", help="MiniLM only in the speed part")
    parser.add_argument("--workdir", help="keep the exports here (reused when present)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    from shared.encoders import MINILM
    from shared.encoders.onnx import export_onnx, is_onnx_export
    from tests.support.checkpoint import make_bge_m3_checkpoint

    work = Path(args.workdir or tempfile.mkdtemp(prefix="m3-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    exports = {"minilm": work / "minilm-int8", "m3": work / "m3-int8", "tiny": work / "tiny-fp32"}
    if args.m3_export:
        exports["m3"] = Path(args.m3_export).expanduser()
        if not is_onnx_export(exports["m3"]) or not (exports["m3"] / "model_int8.onnx").is_file():
            raise SystemExit(f"--m3-export {args.m3_export}: not an ONNX export with an int8 graph")
    if not is_onnx_export(exports["minilm"]):
        export_onnx(MINILM, exports["minilm"], int8=True)
    if not args.skip_m3 and args.only != "rss" and not is_onnx_export(exports["m3"]):
        ckpt = work / "m3-ckpt"
        if not (ckpt / "config.json").is_file():
            make_bge_m3_checkpoint(
                ckpt,
                num_layers=24,
                hidden_size=1024,
                num_heads=16,
                intermediate_size=4096,
                max_position_embeddings=8194,
            )
        export_onnx(ckpt, exports["m3"], int8=True)
    if args.only != "speed" and not is_onnx_export(exports["tiny"]):
        export_onnx(make_bge_m3_checkpoint(work / "tiny-ckpt"), exports["tiny"])
    print(f"exports ready in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    out = [
        f"{SECTION}, {dt.date.today().isoformat()}",
        "",
        f"Date {dt.date.today().isoformat()}; machine: 2 shared cores (other jobs running), no GPU; "
        f"Python {platform.python_version()}. "
        f"Command: `python benchmarks/ingest.py {' '.join(sys.argv[1:] if argv is None else argv)}`.",
        "",
    ]
    if args.only != "rss":
        models = {"MiniLM": (str(exports["minilm"]), args.passages, 100, args.batch)}
        if not args.skip_m3:
            models["BGE-M3 shape"] = (str(exports["m3"]), args.m3_passages, args.m3_words, args.m3_batch)
        out += ["Speed at equal cores (2), ~128-token passages, into a new embedded store:", ""]
        out += speed(work, models)
        out.append("")
    if args.only != "speed":
        out += ["Driver memory against corpus size (tiny BGE-M3 ONNX fp32, 20-word records):", ""]
        out += rss(work, str(exports["tiny"]), args.small, args.large, args.batch, args.rss_ray_only)
        out.append("")
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        from benchmarks._results import write_section

        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
