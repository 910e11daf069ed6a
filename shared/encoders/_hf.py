"""Transformers plumbing shared by the native encoders: resolving a hub id or a
directory, device/dtype selection, tokenisation with truncation flags, and the
length-sorted batch loop.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, MissingDependencyError, ModelLoadError
from ..prompts import lookup_prompts, resolve_prompts
from ..types import FloatArray, SparseDict, TextKind
from .base import Entry, ModelEncoder, ModelShape
from .batching import encode_in_batches, validate_threads
from .late import LateChunker, TokenStates
from .packaged import PACKAGED_MODELS, packaged_model_dir, packaged_model_path

__all__ = [
    "ResolvedModel",
    "TransformerEncoder",
    "detect_model_kind",
    "local_model_hash",
    "require_torch",
    "resolve_model",
    "select_device",
    "tokenize_with_flags",
]

#: Longest input any encoder accepts by default (BGE-M3's limit).
MAX_LENGTH_CAP = 8192
# Files never needed to run a model from the hub snapshot (BGE-M3 ships a 2 GB ONNX copy).
_IGNORE_PATTERNS = ["onnx/*", "*.onnx", "*.msgpack", "*.h5", "*.ot", "imgs/*", "*.png", "*.jpg"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ResolvedModel:
    """A model directory on disk and the id it is known by (hub id or the path)."""

    path: Path
    model_id: str
    from_hub: bool


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a directory.
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def resolve_model(name: str | os.PathLike[str], *, what: str = "model") -> ResolvedModel:
    """A local directory as is, or a hub id downloaded with ``snapshot_download``.

    Offline (or unknown ids) raise :class:`ModelLoadError` saying how to pass a local
    directory instead.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise InvalidTypeError(f"{what} must be a hub id or a directory path, not {type(name).__name__}")
    if not name.strip():
        raise InvalidInputError(f"{what} must not be empty")
    path = Path(name).expanduser()
    if path.is_dir():
        return ResolvedModel(path.resolve(), str(path.resolve()), False)
    if path.exists():
        raise ModelLoadError(f"{what} {name!r} is a file; pass the model's directory")
    if _looks_like_path(name):
        raise ModelLoadError(f"{what} directory {name!r} does not exist")
    packaged = PACKAGED_MODELS.get(name)
    shipped = packaged_model_dir(name)
    if packaged is not None and shipped is not None:
        # Known by its name; a hub id gets the identity of the hub's copy (no local hash).
        return ResolvedModel(shipped, name, packaged.on_hub)
    if packaged is not None and not packaged.on_hub:
        packaged_model_path(name)  # raises, saying which package to install
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id=name, ignore_patterns=_IGNORE_PATTERNS)
    except Exception as exc:  # offline, unknown repo, auth, network: all mean "not loadable"
        raise ModelLoadError(
            f"could not download {what} {name!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            f"If you are offline, download it once elsewhere (e.g. `huggingface-cli download {name} "
            f"--local-dir ./{name.split('/')[-1]}`) and pass that local directory as the model name"
            + (f", or install its package: {packaged.install}." if packaged is not None else ".")
        ) from exc
    return ResolvedModel(Path(local), name, True)


def local_model_hash(path: Path) -> str:
    """sha256 over ``config.json`` (and pooling config) contents plus weight file names/sizes.

    Cheap (no weight bytes are read) yet changes when the checkpoint is swapped.
    """
    h = hashlib.sha256()
    for rel in ("config.json", "1_Pooling/config.json", "modules.json"):
        f = path / rel
        if f.is_file():
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES):
            h.update(f"{f.name}:{f.stat().st_size}\0".encode())
    return h.hexdigest()


def read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise ModelLoadError(f"{path} has no config.json: it is not a transformers model directory")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {cfg}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{cfg} is not a JSON object")
    return data


def require_torch(what: str = "backend='native'") -> None:
    """MissingDependencyError naming the extra when torch or transformers is not installed."""
    import importlib.util

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # a blocked or broken module counts as absent
            return True

    missing = [m for m in ("torch", "transformers") if absent(m)]
    if missing:
        raise MissingDependencyError(
            f"{what} needs {' and '.join(missing)}, which is not installed: "
            'pip install "m3-hybrid[torch]" (or use backend="onnx" with an exported model, '
            'pip install "m3-hybrid[onnx]")'
        )


def select_device(device: str | None) -> Any:
    """``torch.device`` for ``device`` or the best available (cuda, mps, cpu)."""
    require_torch()
    import torch

    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise InvalidTypeError(f"device must be a str such as 'cpu' or 'cuda:0', not {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise InvalidInputError(f"invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError(f"device {device!r} requested but MPS is not available")
    return dev


def default_max_length(config: dict[str, Any], tokenizer: Any) -> int:
    """Longest input the model can take: positions (minus XLM-R's pad offset), capped."""
    limit = MAX_LENGTH_CAP
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        if config.get("model_type") in ("xlm-roberta", "roberta", "camembert", "xlm-roberta-xl"):
            # RoBERTa-style position ids start after the padding index (usually 2 slots lost).
            positions -= int(config.get("pad_token_id", 1) or 0) + 1
        limit = min(limit, positions)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < limit:
        limit = tok_max
    return limit


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:
        raise ModelLoadError(f"cannot load the tokenizer from {path}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise ModelLoadError(f"{path} has no fast tokenizer (tokenizer.json); one is required")
    return tok


def tokenize_with_flags(
    tokenizer: Any, texts: list[str], max_length: int
) -> tuple[list[list[int]], list[bool]]:
    """Token ids (specials included, truncated to ``max_length``) and per-text truncation flags."""
    enc = tokenizer(texts, truncation=True, max_length=max_length, verbose=False)
    ids: list[list[int]] = enc["input_ids"]
    encodings = enc.encodings
    if encodings is not None:
        # The Rust tokenizer keeps what truncation cut off in `overflowing`.
        return ids, [bool(e.overflowing) for e in encodings]
    full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]  # pragma: no cover
    return ids, [len(f) > len(i) for f, i in zip(full, ids, strict=True)]  # pragma: no cover


@dataclass
class BatchOutput:
    """What one model batch produced, rows in batch order."""

    dense: FloatArray | None = None
    sparse: list[SparseDict] | None = None
    colbert: list[FloatArray] | None = None


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


class TransformerEncoder(LateChunker, ModelEncoder):
    """An encoder backed by one transformers model and its fast tokenizer.

    :meth:`_open` resolves the model; :meth:`_load` sets up device, threads, tokenizer and
    ``max_length``, then calls the model class's :meth:`_load_model`.  The model class
    writes :meth:`_load_model` and :meth:`_forward_batch` (its pooling / post-processing).
    """

    #: Only the ONNX Runtime backend has an int8 graph.
    _unused_options = frozenset({"precision"})

    def _open(self, model: Any) -> tuple[str, str]:
        require_torch()
        self.resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
        #: The model's config.json.
        self.config = read_config(self.resolved.path)
        return resolve_prompts(self.resolved.model_id, model_prompts=self._shipped_prompts())

    def _shipped_prompts(self) -> dict[str, str]:
        """Prompts the model directory ships (sentence-transformers models); none by default."""
        return {}

    def _load(self) -> ModelShape:
        cfg = self.options
        self.max_batch_tokens = cfg.max_batch_tokens
        self.device = select_device(cfg.device)
        self.threads = validate_threads(cfg.threads)
        if self.device.type == "cpu":
            import torch

            # torch's thread pool is per process: the last encoder created sets it.
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
        self.fp16 = bool(self.device.type in ("cuda", "mps") if cfg.fp16 is None else cfg.fp16)
        self.tokenizer = load_tokenizer(self.resolved.path)
        self._max_length_limit = default_max_length(self.config, self.tokenizer)
        self.max_length = cfg.max_length_within(self._max_length_limit)
        specials = {
            getattr(self.tokenizer, f"{name}_token_id", None) for name in ("cls", "eos", "sep", "pad", "unk")
        }
        self._skip_ids = np.array(sorted(i for i in specials if i is not None), dtype=np.int64)
        self._pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        return self._load_model()

    def _shape(self, outputs: set[str], **parts: Any) -> ModelShape:
        """The :class:`ModelShape` of this model: its id and hash, and what it makes."""
        resolved = self.resolved
        return ModelShape(
            model_id=resolved.model_id,
            model_hash="" if resolved.from_hub else local_model_hash(resolved.path),
            outputs=frozenset(outputs),
            **parts,
        )

    def _load_pretrained(self, auto_class: Any, what: str) -> Any:
        """``auto_class.from_pretrained`` of the model directory, placed on the device."""
        try:
            model = auto_class.from_pretrained(str(self.resolved.path))
        except Exception as exc:
            raise ModelLoadError(f"cannot load {what} from {self.resolved.path}: {exc}") from exc
        return self._place(model)

    @abstractmethod
    def _load_model(self) -> ModelShape:
        """Load the weights (tokenizer and device are set up); what the model makes."""

    def _place(self, module: Any) -> Any:
        """Move to the device and an explicit dtype (transformers 5 loads 'auto' dtype by default)."""
        import torch

        return module.to(device=self.device, dtype=torch.float16 if self.fp16 else torch.float32).eval()

    # -- tokenisation and batching ----------------------------------------------------

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids (with specials, truncated to ``max_length``) and per-text truncation flags."""
        return tokenize_with_flags(self.tokenizer, texts, self.max_length)

    def _pad(self, rows: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        import torch

        prompt = self.prompt_for(kind)
        ids, truncated = self.tokenize([prompt + t for t in texts])

        def run(rows: list[list[int]]) -> tuple[Any, Any, Any]:
            out = self._forward_batch(*self._pad(rows), outputs)
            return out.dense, out.sparse, out.colbert

        with torch.inference_mode():
            return encode_in_batches(
                ids,
                truncated,
                run,
                batch_size=batch_size,
                max_batch_tokens=self.max_batch_tokens,
                desc=f"Encoding {kind}s",
                show_progress=show_progress,
            )

    @abstractmethod
    def _forward_batch(self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]) -> BatchOutput:
        """Run the model on one padded batch (inside ``torch.inference_mode``)."""

    # -- late chunking (shared.encoders.late) ------------------------------------------

    def _late_tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """Token ids of the whole ``text`` (specials, no truncation), offsets, special flags."""
        enc = self.tokenizer(
            text,
            add_special_tokens=True,
            truncation=False,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            verbose=False,
        )
        return enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]

    def _token_states(self, rows: list[list[int]], outputs: frozenset[str]) -> Iterator[TokenStates]:
        import torch

        with torch.inference_mode():
            yield from self._states_batch(*self._pad(rows), outputs)

    @abstractmethod
    def _states_batch(
        self, input_ids: Any, attention_mask: Any, outputs: frozenset[str]
    ) -> Iterable[TokenStates]:
        """Per-token states of one padded batch, each row cut to its own tokens (late chunking)."""
