"""The examples are part of the product: run each one end to end on the real small models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(
    name: str, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )


def test_quickstart_small_models_answers_with_hybrid_retrieval() -> None:
    proc = run_example(
        "quickstart.py", "--small-models", "--query", "how does reciprocal rank fusion combine rankings?"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    first_hit = next(line for line in lines if line.strip().startswith("1."))
    assert "[rrf]" in first_hit, proc.stdout
    assert "indexed 20 passages" in proc.stdout


def test_quickstart_without_hub_falls_back_to_small_models_and_says_so() -> None:
    proc = run_example("quickstart.py", "--query", "why do plants need sunlight?")
    assert proc.returncode == 0, proc.stderr
    assert "could not be loaded" in proc.stderr and "small models" in proc.stderr
    first_hit = next(line for line in proc.stdout.splitlines() if line.strip().startswith("1."))
    assert "[photosynthesis]" in first_hit, proc.stdout


def test_quickstart_named_model_that_cannot_load_exits_with_advice(tmp_path: Path) -> None:
    proc = run_example("quickstart.py", "--model", str(tmp_path / "no-such-model"))
    assert proc.returncode != 0
    assert "could not load model" in proc.stderr
    assert "local directory" in proc.stderr
