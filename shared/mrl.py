"""Matryoshka (MRL) truncation of dense vectors.

Models trained with Matryoshka Representation Learning keep most of their quality
when a vector is cut to its first ``k`` dimensions and renormalised.  Other models
(BGE-M3 included) can be truncated too, but with an unknown quality loss, so that is
allowed with one warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import InvalidInputError, InvalidTypeError
from .families import match_family

__all__ = [
    "MRL_REGISTRY",
    "MRLSpec",
    "MRLWarning",
    "lookup_mrl",
    "truncate",
    "validate_truncate_dim",
]


class MRLWarning(UserWarning):
    """Truncating a model that was not trained for it (quality loss is unknown)."""


@dataclass(frozen=True)
class MRLSpec:
    """An MRL-trained model family: full size and the sizes it was trained at."""

    family: str
    full_dim: int
    trained_dims: tuple[int, ...]


# First match on the lower-cased model id wins.  Sizes are the ones each model card
# documents (smaller sizes work too, with more loss).
_REGISTRY: tuple[tuple[str, MRLSpec], ...] = (
    (r"nomic-embed-text-v1\.5", MRLSpec("nomic-embed-text-v1.5", 768, (768, 512, 256, 128, 64))),
    (r"nomic-embed-text-v2", MRLSpec("nomic-embed-text-v2", 768, (768, 256))),
    (r"mxbai-embed-large-v1", MRLSpec("mxbai-embed-large-v1", 1024, (1024, 512, 256, 128, 64))),
    (r"snowflake-arctic-embed-m-v1\.5", MRLSpec("snowflake-arctic-embed-m-v1.5", 768, (768, 256))),
    (r"snowflake-arctic-embed-m-v2", MRLSpec("snowflake-arctic-embed-m-v2.0", 768, (768, 256))),
    (r"snowflake-arctic-embed-l-v2", MRLSpec("snowflake-arctic-embed-l-v2.0", 1024, (1024, 256))),
    (
        r"gte-multilingual-base",
        MRLSpec("gte-multilingual-base", 768, (768, 512, 384, 256, 128)),
    ),
    (
        r"jina-embeddings-v3",
        MRLSpec("jina-embeddings-v3", 1024, (1024, 768, 512, 256, 128, 64, 32)),
    ),
)

#: Public read-only view: family -> spec.
MRL_REGISTRY: Mapping[str, MRLSpec] = {spec.family: spec for _, spec in _REGISTRY}


def lookup_mrl(model_id: str) -> MRLSpec | None:
    """The MRL entry for ``model_id`` (hub id or directory), or None if not MRL-trained."""
    return match_family(_REGISTRY, model_id)


def validate_truncate_dim(truncate_dim: int | None, full_dim: int, model_id: str = "") -> int | None:
    """Check ``truncate_dim`` against the model's size; warn once if not MRL-trained.

    Returns ``None`` when no truncation applies (``None`` or the full size).  Call it
    once per encoder: the :class:`MRLWarning` is emitted on every call.
    """
    if truncate_dim is None:
        return None
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer)):
        raise InvalidTypeError(f"truncate_dim must be an int, not {type(truncate_dim).__name__}")
    dim = int(truncate_dim)
    if dim <= 0 or dim > full_dim:
        raise InvalidInputError(
            f"truncate_dim={dim} is out of range: it must be between 1 and the model's size {full_dim}"
        )
    if dim == full_dim:
        return None
    spec = lookup_mrl(model_id) if model_id else None
    if spec is None:
        warnings.warn(
            f"{model_id or 'this model'} is not known to be Matryoshka-trained: truncating its "
            f"{full_dim}-d vectors to {dim} may lose much more quality than for an MRL model",
            MRLWarning,
            stacklevel=3,
        )
    return dim


def truncate(dense: npt.ArrayLike, dim: int | None) -> npt.NDArray[np.float32]:
    """Keep the first ``dim`` columns of ``dense`` ([n, d] or [d]) and renormalise rows.

    ``dim=None`` only casts to float32.  A zero row stays zero (no division by zero).
    """
    arr = np.asarray(dense, dtype=np.float32)
    if dim is None:
        return arr
    if dim <= 0 or dim > arr.shape[-1]:
        raise InvalidInputError(f"cannot truncate {arr.shape[-1]}-d vectors to {dim} dimensions")
    cut = arr[..., :dim]
    norms = np.linalg.norm(cut, axis=-1, keepdims=True)
    return np.divide(cut, norms, out=np.zeros_like(cut), where=norms > 0).astype(np.float32, copy=False)
