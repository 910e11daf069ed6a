"""The torch (transformers) encoder class for a model directory: which class reads which layout."""

from __future__ import annotations

import os

from ._hf import ResolvedModel, TransformerEncoder, detect_model_kind, resolve_model
from .bge_m3 import BGEM3Encoder
from .config import EncoderConfig
from .dense import DenseEncoder
from .splade import SpladeEncoder

__all__ = ["NATIVE_CLASSES", "native_encoder"]

#: The class of each model kind :func:`~shared.encoders._hf.detect_model_kind` tells apart.
NATIVE_CLASSES: dict[str, type[TransformerEncoder]] = {
    "bge-m3": BGEM3Encoder,
    "dense": DenseEncoder,
    "splade": SpladeEncoder,
}


def native_encoder(
    model: str | os.PathLike[str] | ResolvedModel, config: EncoderConfig, *, what: str = "model"
) -> TransformerEncoder:
    """The torch encoder of ``model`` (hub id, directory or resolved), of the class its layout needs."""
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model, what=what)
    return NATIVE_CLASSES[detect_model_kind(resolved)](resolved, config)
