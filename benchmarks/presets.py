"""Quantization presets: measured RAM per point, and the recall behind their search defaults.

Two measurements, each written as one section of ``benchmarks/RESULTS.md``:

``--memory``: for every preset, at 384-d (MiniLM) and 1024-d (BGE-M3), a store of
``--points`` random unit vectors (dense only, the store's own layout: HNSW m=16) is built
with ``HybridStore`` and closed; a fresh process then opens it (after opening an empty
store of the same layout, so one-off allocations do not count), runs 200 queries and
reports the resident memory per point the engine holds: anonymous RSS (heap: codes,
in-RAM originals, graph) and file-backed RSS (memory-mapped pages the queries touched,
which the kernel can evict). Two layouts: originals in RAM (``on_disk=False``) and
originals on disk (``on_disk=True``: originals, graph and index memory-mapped, codes
pinned in RAM).

``--recall``: the dense recall@10 of each quantized preset against exact float search,
with rescoring, for oversampling 1 to 4, and without rescoring; on the bible-dev
MiniLM vectors (the corpus and 500 of its queries' vectors, no relevance labels used:
this is search fidelity, not quality). A TurboQuant preset's default oversampling is the
smallest whose recall is within 0.005 of the best reached: the float index (HNSW, no
quantization), or the preset itself at oversampling 4 when that is lower.

    python benchmarks/presets.py --memory --recall
    python benchmarks/presets.py --memory --points 5000 --no-append   # quick
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import write_section  # noqa: E402
from shared.quantization import PRESETS, get_preset  # noqa: E402
from shared.store import HybridStore  # noqa: E402
from shared.types import Record  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
MEMORY_JSON = ROOT / "benchmarks" / "presets_memory.json"
RECALL_JSON = ROOT / "benchmarks" / "presets_recall.json"
QUANTIZED = [n for n, p in PRESETS.items() if p.quantized]
OVERSAMPLING = (1.0, 1.5, 2.0, 3.0, 4.0)

_CHILD = """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1])
from shared.store import HybridStore

def mem():
    out = {}
    for line in open('/proc/self/status'):
        k, _, v = line.partition(':')
        if k in ('RssAnon', 'RssFile'):
            out[k] = int(v.split()[0]) * 1024
    return out

path, warm_path, dim = sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(1)
qs = rng.standard_normal((200, dim)).astype(np.float32)
warm = HybridStore('m', path=warm_path)
warm.query(dense=qs[0], limit=10, mode='dense')
before = mem()
store = HybridStore('m', path=path)
for q in qs:
    store.query(dense=q, limit=10, mode='dense')
after = mem()
store.close(); warm.close()
print(json.dumps({k: after[k] - before[k] for k in after}))
"""


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _build(path: Path, preset: str, dim: int, on_disk: bool, n: int) -> None:
    rng = np.random.default_rng(0)
    with HybridStore("m", path=path, dense_dim=dim, sparse=False, quantization=preset, on_disk=on_disk) as s:
        for start in range(0, n, 2000):
            vecs = _unit(rng, min(2000, n - start), dim)
            s.add([Record(id=str(start + i), dense=v) for i, v in enumerate(vecs)])


def measure_memory(
    presets: Sequence[str],
    dims: Sequence[int],
    n: int,
    workdir: Path,
    layouts: Sequence[bool] = (False, True),
) -> list[dict]:
    rows = []
    for dim in dims:
        for on_disk in layouts:
            for preset in presets:
                p = get_preset(preset)
                if on_disk and not p.quantized:
                    continue  # nothing in RAM to compare: everything is memory-mapped
                # Two one-point stores of the same layout: one warms the process, the other
                # measures what any store costs (WAL, segment files), subtracted below.
                empty = [workdir / f"empty{i}-{preset}-{dim}-{on_disk}" for i in (0, 1)]
                for e in empty:
                    _build(e, preset, dim, on_disk, 1)
                path = workdir / f"{preset}-{dim}-{on_disk}"
                t0 = time.perf_counter()
                _build(path, preset, dim, on_disk, n)
                build_s = time.perf_counter() - t0
                fixed, full = (
                    json.loads(
                        subprocess.run(
                            [sys.executable, "-c", _CHILD, str(ROOT), str(target), str(empty[0]), str(dim)],
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        .stdout.strip()
                        .splitlines()[-1]
                    )
                    for target in (empty[1], path)
                )
                row = {
                    "preset": preset,
                    "dim": dim,
                    "on_disk": on_disk,
                    "points": n,
                    "anon_per_point": (full["RssAnon"] - fixed["RssAnon"]) / n,
                    "file_per_point": (full["RssFile"] - fixed["RssFile"]) / n,
                    "code_bytes": dim * p.code_bits / 8,
                    "build_s": build_s,
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
                for d in (path, *empty):
                    shutil.rmtree(d, ignore_errors=True)
    return rows


def memory_section(rows: list[dict], command: str) -> str:
    dims = sorted({r["dim"] for r in rows})
    by = {(r["preset"], r["dim"], r["on_disk"]): r for r in rows}
    head = "| preset | " + " | ".join(
        f"{d}-d codes | {d}-d originals in RAM | {d}-d originals on disk: heap | "
        f"{d}-d originals on disk: mapped pages touched"
        for d in dims
    )
    lines = [head + " |", "| --- |" + " ---: |" * (4 * len(dims))]
    for preset in dict.fromkeys(r["preset"] for r in rows):
        cells = [preset]
        for d in dims:
            ram, disk = by.get((preset, d, False)), by.get((preset, d, True))
            cells.append(f"{ram['code_bytes']:,.0f}" if ram else "–")
            cells.append(f"{ram['anon_per_point'] + ram['file_per_point']:,.0f}" if ram else "–")
            cells.append(f"{disk['anon_per_point']:,.0f}" if disk else "–")
            cells.append(f"{disk['file_per_point']:,.0f}" if disk else "–")
        lines.append("| " + " | ".join(cells) + " |")
    n = rows[0]["points"] if rows else 0
    return (
        f"## Quantization presets: RAM per point, measured ({_dt.date.today().isoformat()})\n\n"
        f"- machine: {_machine()}\n- command: `{command}`\n"
        f"- {n:,} random unit vectors per store (dense only, HNSW m=16), built with `HybridStore` and "
        "closed; a fresh process opens it (after a one-point store of the same layout) and runs 200 "
        "queries; the resident memory it gained, less what a one-point store of the same layout gains, "
        "divided by the points. Bytes per point. originals in RAM: anonymous + file-backed resident "
        "memory (the engine keeps in-RAM vectors in populated memory maps); originals on disk: heap = "
        "anonymous resident memory (codes pinned in RAM, ids, bookkeeping), mapped pages touched = "
        "file-backed pages the 200 queries read (originals for rescoring, graph; page cache, "
        "evictable, grows with traffic). codes: the preset's code size, dims x bits / 8 (computed).\n\n"
        + "\n".join(lines)
        + "\n"
    )


def readme_table(rows: list[dict]) -> str:
    """The README's quantization table: bytes per point by preset, dims and layout."""
    dims = sorted({r["dim"] for r in rows})
    by = {(r["preset"], r["dim"], r["on_disk"]): r for r in rows}
    head = ["preset", "bits/dim"]
    for d in dims:
        head += [f"{d}-d codes", f"{d}-d originals in RAM: heap + mapped", f"{d}-d originals on disk: heap"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for preset in dict.fromkeys(r["preset"] for r in rows):
        p = get_preset(preset)
        cells = [
            f"`{preset}`",
            f"{p.code_bits:g}" if p.quantized else ("16 (originals)" if preset == "float16" else "–"),
        ]
        for d in dims:
            ram, disk = by.get((preset, d, False)), by.get((preset, d, True))
            cells.append(f"{d * p.code_bits / 8:,.0f}" if p.quantized else "–")
            cells.append(f"{ram['anon_per_point']:,.0f} + {ram['file_per_point']:,.0f}" if ram else "–")
            cells.append(f"**{disk['anon_per_point']:,.0f}**" if disk else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- recall


def _bible_vectors() -> tuple[np.ndarray, np.ndarray]:
    from shared.evaluation import EncodedDataset

    cache = sorted((ROOT / "benchmarks" / ".cache").glob("bible-dev-*.npz"), key=lambda p: p.stat().st_size)
    if not cache:
        raise SystemExit("no bible-dev vectors in benchmarks/.cache: run benchmarks/quality.py --encode-only")
    enc = EncodedDataset.load_npz(cache[-1])
    assert enc.docs.dense is not None and enc.queries.dense is not None
    rng = np.random.default_rng(0)
    pick = rng.choice(len(enc.queries.dense), size=min(500, len(enc.queries.dense)), replace=False)
    return np.asarray(enc.docs.dense, np.float32), np.asarray(enc.queries.dense, np.float32)[pick]


def measure_recall(presets: Sequence[str], workdir: Path) -> list[dict]:
    docs, queries = _bible_vectors()
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    truth = [set(map(str, row)) for row in exact]
    recs = [Record(id=str(i), dense=v) for i, v in enumerate(docs)]
    rows = []

    def recall(store: HybridStore, **kw: object) -> float:
        got = [{h.id for h in store.query(dense=q, limit=10, mode="dense", **kw)} for q in queries]
        return float(np.mean([len(g & t) / 10 for g, t in zip(got, truth, strict=True)]))

    for preset in ["none", *presets]:
        path = workdir / f"r-{preset}"
        with HybridStore("r", path=path, dense_dim=docs.shape[1], sparse=False, quantization=preset) as s:
            s.add(recs, batch_size=2000)
            row: dict = {"preset": preset, "default_oversampling": get_preset(preset).oversampling}
            if preset == "none":
                row["hnsw"] = recall(s)
            else:
                row["no_rescore"] = recall(s, rescore=False, oversampling=1.0)
                for ov in OVERSAMPLING:
                    row[f"ov{ov:g}"] = recall(s, rescore=True, oversampling=ov)
            print(json.dumps(row), flush=True)
            rows.append(row)
        shutil.rmtree(path, ignore_errors=True)
    return rows


def recall_section(rows: list[dict], command: str) -> str:
    ceiling = rows[0]["hnsw"]
    lines = [
        "| preset | no rescore | "
        + " | ".join(f"rescore, oversampling {ov:g}" for ov in OVERSAMPLING)
        + " | smallest within 0.005 of the best reached | default |",
        "| --- |" + " ---: |" * (len(OVERSAMPLING) + 3),
    ]
    for r in rows[1:]:
        target = min(ceiling, max(r[f"ov{ov:g}"] for ov in OVERSAMPLING)) - 0.005
        best = next((ov for ov in OVERSAMPLING if r[f"ov{ov:g}"] >= target), None)
        lines.append(
            f"| {r['preset']} | {r['no_rescore']:.4f} | "
            + " | ".join(f"{r[f'ov{ov:g}']:.4f}" for ov in OVERSAMPLING)
            + f" | {'–' if best is None else f'{best:g}'} | {r['default_oversampling']:g} |"
        )
    return (
        f"## Quantization presets: dense recall@10 against exact search ({_dt.date.today().isoformat()})\n\n"
        f"- machine: {_machine()}\n- command: `{command}`\n"
        "- bible-dev MiniLM-L6 vectors (384-d, 23,093 verses), 500 query vectors (no relevance "
        "labels used); recall@10 = overlap of the store's top 10 with exact float cosine search. "
        f"Float HNSW (no quantization) reaches {ceiling:.4f}. The TurboQuant defaults are the smallest "
        "oversampling within 0.005 of the best reached (float, or the preset at 4); the older presets keep "
        "their earlier defaults.\n\n" + "\n".join(lines) + "\n"
    )


# --------------------------------------------------------------------------- main


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs, load {load:.1f}), "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", action="store_true", help="measure RAM per point")
    ap.add_argument("--recall", action="store_true", help="measure recall against exact search")
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--dims", default="384,1024")
    ap.add_argument("--layouts", default="ram,disk", help="originals in RAM (ram), on disk (disk) or both")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--no-append", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    command = "python benchmarks/presets.py " + " ".join(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="m3-presets-"))
    sections = []
    try:
        if args.memory:
            layouts = [{"ram": False, "disk": True}[x] for x in args.layouts.split(",")]
            mem = measure_memory(presets, [int(d) for d in args.dims.split(",")], args.points, work, layouts)
            sections.append(("Quantization presets: RAM per point", memory_section(mem, command)))
            if not args.no_append:
                MEMORY_JSON.write_text(json.dumps(mem, indent=1), encoding="utf-8")
        if args.recall:
            rec = measure_recall([p for p in presets if get_preset(p).quantized], work)
            sections.append(("Quantization presets: dense recall@10", recall_section(rec, command)))
            if not args.no_append:
                RECALL_JSON.write_text(json.dumps(rec, indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for _, section in sections:
        print(section)
        if not args.no_append:
            write_section(section, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
