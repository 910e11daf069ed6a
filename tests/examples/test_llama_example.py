"""examples/llama_index_hybrid.py end to end on the small models: what it prints is right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_answers_with_hybrid_alpha_filter_and_query_engine() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "llama_index_hybrid.py"),
            "--query",
            "why do plants need sunlight?",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    # No hub here: the default model falls back to the small models and says so.
    assert "could not be loaded" in proc.stderr and "small models" in proc.stderr
    out = proc.stdout
    assert "indexed 20 nodes" in out
    sections = out.split("\n\n")

    def first_hit(title: str) -> str:
        block = next(s for s in sections if s.lstrip().startswith(title))
        return next(line for line in block.splitlines() if line.strip().startswith("1."))

    for title in ("Q (hybrid):", "Q (alpha=0.0, sparse only):", "Q (alpha=1.0, dense only):"):
        assert "[photosynthesis]" in first_hit(title), out
    filtered = next(s for s in sections if "topic == general" in s)
    assert "[photosynthesis]" in first_hit("Q (hybrid, topic == general)")
    tech = (
        "[qdrant-hnsw]",
        "[qdrant-quant]",
        "[binary-quant]",
        "[bge-m3]",
        "[splade]",
        "[bm25]",
        "[rrf]",
        "[mrl]",
    )
    assert filtered.count("score=") == 3 and not any(t in filtered for t in tech), filtered
    engine = out[out.index("Query engine (MockLLM)") :]
    assert "[photosynthesis]" in engine.splitlines()[1]
