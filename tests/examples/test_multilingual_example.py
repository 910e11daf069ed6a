"""examples/multilingual.py and the quickstart's offline fallback answer questions in other languages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )


def test_multilingual_example_finds_the_english_passage_for_each_language() -> None:
    proc = run("multilingual.py")
    assert proc.returncode == 0, proc.stderr
    assert "20 English passages; mode hybrid, fusion m3" in proc.stdout
    firsts = re.findall(r"^  1\. \[([\w-]+)\]", proc.stdout, flags=re.M)
    assert firsts == ["photosynthesis", "jupiter", "tea", "rrf"], proc.stdout


def test_quickstart_offline_fallback_answers_a_spanish_question() -> None:
    proc = run("quickstart.py")
    assert proc.returncode == 0, proc.stderr
    assert "could not be loaded" in proc.stderr and "Spanish" in proc.stderr
    spanish = proc.stdout.split("Q: ¿Por qué las plantas necesitan la luz del sol?", 1)[1]
    first_hit = next(line for line in spanish.splitlines() if line.strip().startswith("1."))
    assert "[photosynthesis]" in first_hit, proc.stdout
