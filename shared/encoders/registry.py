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

__all__ = ["clear_registry", "detect_model_kind", "load_encoder"]

_BACKENDS = ("native", "flagembedding")
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
) -> BaseEncoder:
    """The shared encoder for this configuration (created on first use).

    * ``model_name``: hub id or local directory.  BGE-M3-layout checkpoints give dense +
      sparse + ColBERT from one pass; sentence-transformers models give dense only;
      a masked-LM SPLADE model gives sparse only.  ``None`` with ``sparse_model``
      gives a sparse-only encoder.
    * ``sparse_model``: a SPLADE model paired with ``model_name``'s dense vectors.
    * ``backend="flagembedding"`` wraps FlagEmbedding's ``BGEM3FlagModel`` instead.

    Everything that changes the vectors (model, backend, device, fp16, max_length,
    truncate_dim, instructions) is part of the sharing key.  ``batch_size``,
    ``show_progress`` and ``cache_size`` are not: the first caller's values apply
    (``encode`` takes ``batch_size``/``show_progress`` per call), and the cache grows
    to the largest ``cache_size`` asked for.
    """
    if backend not in _BACKENDS:
        raise InvalidInputError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if model_name is None and sparse_model is None:
        raise InvalidInputError("model_name and sparse_model cannot both be None")
    instructions = {"query_instruction": query_instruction, "document_instruction": document_instruction}
    for name, value in instructions.items():
        if value is not None and not isinstance(value, str):
            raise InvalidTypeError(f"{name} must be a str or None, not {type(value).__name__}")
    if fp16 is not None and not isinstance(fp16, bool):
        raise InvalidTypeError(f"fp16 must be a bool or None, not {type(fp16).__name__}")
    dev = select_device(device)
    if fp16 is None:  # resolve the default so fp16=None and an explicit equal value share an instance
        fp16 = dev.type in ("cuda", "mps")
    key = (
        backend,
        _key_part(model_name),
        _key_part(sparse_model),
        str(dev),
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
            device=str(dev),
            fp16=fp16,
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

    common = {k: kw[k] for k in ("device", "fp16", "max_length", "batch_size", "show_progress", "cache_size")}
    prompts = {k: kw[k] for k in ("query_instruction", "document_instruction")}
    if backend == "flagembedding":
        if sparse_model is not None or model_name is None:
            raise InvalidInputError("backend='flagembedding' serves BGE-M3 only; it takes no sparse_model")
        from .flag import FlagM3Encoder

        return FlagM3Encoder(model_name, truncate_dim=kw["truncate_dim"], **prompts, **common)

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


def clear_registry() -> None:
    """Forget all shared instances (tests; or to force a reload after a model changed on disk)."""
    with _lock:
        _registry.clear()
