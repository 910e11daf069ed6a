"""Encoders: BGE-M3 (native, ONNX Runtime or FlagEmbedding), dense, SPLADE, BM25, multilingual USE
and dense+sparse pairs.

Use :func:`load_encoder` to get the one shared instance for a configuration; the
classes are importable for direct use.  Heavy modules (torch, transformers,
onnxruntime) load on first use, so importing this package needs none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import ALL_OUTPUTS, BaseEncoder, Entry, LRUCache, ModelEncoder, ModelShape, TruncationWarning
from .config import ENCODER_OPTIONS, EncoderConfig, EncoderOptions
from .functions import FunctionEncoder, encoder_from_functions, pair_encoders, sparse_dict
from .packaged import MINILM, PACKAGED_MODELS, SPLADE_TINY, packaged_model_path
from .registry import clear_registry, detect_model_kind, load_encoder

if TYPE_CHECKING:
    from .bge_m3 import BGEM3Encoder
    from .bm25 import Bm25Encoder
    from .dense import DenseEncoder
    from .flag import FlagM3Encoder
    from .onnx import OnnxEncoder
    from .pair import PairEncoder
    from .splade import SpladeEncoder
    from .usem3 import UniversalSentenceEncoder

__all__ = [
    "ALL_OUTPUTS",
    "ENCODER_OPTIONS",
    "MINILM",
    "PACKAGED_MODELS",
    "SPLADE_TINY",
    "BGEM3Encoder",
    "BaseEncoder",
    "Bm25Encoder",
    "DenseEncoder",
    "EncoderConfig",
    "EncoderOptions",
    "Entry",
    "FlagM3Encoder",
    "FunctionEncoder",
    "LRUCache",
    "ModelEncoder",
    "ModelShape",
    "OnnxEncoder",
    "PairEncoder",
    "SpladeEncoder",
    "TruncationWarning",
    "UniversalSentenceEncoder",
    "clear_registry",
    "detect_model_kind",
    "encoder_from_functions",
    "load_encoder",
    "packaged_model_path",
    "pair_encoders",
    "sparse_dict",
]

_LAZY = {
    "BGEM3Encoder": ".bge_m3",
    "Bm25Encoder": ".bm25",
    "DenseEncoder": ".dense",
    "FlagM3Encoder": ".flag",
    "OnnxEncoder": ".onnx",
    "PairEncoder": ".pair",
    "SpladeEncoder": ".splade",
    "UniversalSentenceEncoder": ".usem3",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
