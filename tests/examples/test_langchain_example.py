"""examples/langchain_hybrid.py end to end: offline it falls back to the small models, finds the passages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_langchain_example_falls_back_offline_and_ranks_the_relevant_passages_first() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langchain_hybrid.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "could not be loaded" in proc.stderr and "small models" in proc.stderr
    out = proc.stdout
    assert "mode: hybrid  documents: 20" in out
    firsts = re.findall(r"^  1\. \[([\w-]+)\]", out, flags=re.M)
    assert firsts == ["rrf", "bge-m3", "photosynthesis"], out
    filtered = out.split('{"topic": "general"}', 1)[1].split("MMR", 1)[0]
    assert "[bread]" in filtered and "[rrf]" not in filtered
    # The chain's prompt carries the retrieved passage as context.
    assert "Answer using only this context:\n[rrf] Reciprocal rank fusion" in out
