"""ONNX Runtime backend: export a native encoder once (needs torch), run it without torch.

An export directory holds

* ``model.onnx``: the fp32 graph, ``input_ids`` + ``attention_mask`` in, the pooled and
  normalised outputs out (the heads are part of the graph, so the only numpy work
  left is turning sparse weights into dicts);
* ``model_int8.onnx`` (optional): the same graph with dynamic int8 weights, per channel;
* ``tokenizer.json``: the fast tokenizer, run with the ``tokenizers`` library;
* ``m3_hybrid_onnx.json``: what the graph computes and the identity of the model it
  came from (id, hash, prompts, pooling), so a collection built with the torch model
  opens with its export, and an int8 graph is a different identity than fp32.

:class:`OnnxEncoder` needs only onnxruntime, tokenizers and numpy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
    ModelLoadError,
    UnsupportedOperationError,
)
from ..types import TextKind
from .base import Entry, ModelEncoder, ModelShape
from .batching import encode_in_batches, validate_threads
from .config import PRECISIONS, EncoderConfig, EncoderOptions
from .late import LateChunker, TokenStates

__all__ = [
    "EXPORT_META",
    "PRECISIONS",
    "OnnxEncoder",
    "cached_export",
    "export_onnx",
    "is_onnx_export",
    "quantize_export",
]

EXPORT_META = "m3_hybrid_onnx.json"
EXPORT_FORMAT = 1
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
_KINDS = ("bge-m3", "dense", "splade")
#: The graph output holding per-token states (exports made before late chunking lack it).
TOKENS = "tokens"
# SPLADE pools over a [rows, tokens, vocab] logit tensor inside the graph; cap its size per
# call (elements) like the torch path does, splitting a batch into row chunks.
_MAX_LOGIT_ELEMENTS = 64_000_000
#: What one more forward pass costs in padded tokens, for planning query batches (a joined pass
#: of concurrent queries): ONNX Runtime's per-pass cost is mostly reading the weights once, about
#: what 8 tokens' arithmetic costs at BGE-M3's shape (measured: benchmarks/RESULTS.md, serving).
#: Documents keep full batches (long texts; not measured with a pass cost).
_QUERY_PASS_TOKENS = 8


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by :func:`export_onnx`."""
    return (Path(path).expanduser() / EXPORT_META).is_file()


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            'backend="onnx" needs onnxruntime, which is not installed: pip install "m3-hybrid[onnx]"'
        ) from None
    return onnxruntime


def _require_onnx(what: str) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        msg = f'{what} needs the onnx package: pip install "m3-hybrid[onnx]"'
        raise MissingDependencyError(msg) from None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / EXPORT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path / EXPORT_META}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT or meta.get("kind") not in _KINDS:
        raise ModelLoadError(
            f"{path / EXPORT_META} is not an m3-hybrid ONNX export of format {EXPORT_FORMAT}; "
            "re-export the model with `m3-hybrid export-onnx`"
        )
    return meta


# -- export (needs torch) -------------------------------------------------------------------


def _graph_module(encoder: Any) -> tuple[Any, list[str]]:
    """A torch module computing the encoder's outputs from ids + mask, and its output names."""
    import torch
    import torch.nn.functional as F

    from .bge_m3 import BGEM3Encoder
    from .dense import DenseEncoder
    from .splade import SpladeEncoder

    class M3Graph(torch.nn.Module):
        def __init__(self, enc: BGEM3Encoder) -> None:
            super().__init__()
            self.model, self.sparse_linear, self.colbert_linear = (
                enc.model,
                enc.sparse_linear,
                enc.colbert_linear,
            )

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any, Any, Any]:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            dense = F.normalize(hidden[:, 0], dim=-1)
            sparse = torch.relu(self.sparse_linear(hidden)).squeeze(-1)
            col = self.colbert_linear(hidden[:, 1:]) * attention_mask[:, 1:, None].to(hidden.dtype)
            return dense, sparse, F.normalize(col, dim=-1), hidden

    class DenseGraph(torch.nn.Module):
        def __init__(self, enc: DenseEncoder) -> None:
            super().__init__()
            self.model, self.pooling = enc.model, enc.pooling

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return F.normalize(pooled, dim=-1), hidden

    class SpladeGraph(torch.nn.Module):
        def __init__(self, enc: SpladeEncoder) -> None:
            super().__init__()
            self.model = enc.model

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            weights = torch.log1p(torch.relu(logits))
            return (weights * attention_mask.unsqueeze(-1).to(logits.dtype)).amax(dim=1), weights

    # "tokens": the per-token states late chunking pools spans from (hidden states; SPLADE's
    # per-token term weights). A normal encode does not fetch it.
    if isinstance(encoder, BGEM3Encoder):
        return M3Graph(encoder).eval(), ["dense", "sparse", "colbert", TOKENS]
    if isinstance(encoder, DenseEncoder):
        return DenseGraph(encoder).eval(), ["dense", TOKENS]
    if isinstance(encoder, SpladeEncoder):
        return SpladeGraph(encoder).eval(), ["sparse", TOKENS]
    raise InvalidInputError(f"cannot export {type(encoder).__name__} to ONNX")  # pragma: no cover


def _torch_encoder(model: str | os.PathLike[str]) -> Any:
    """The native torch encoder of ``model`` on the CPU in fp32, with its default prompts."""
    from .native import native_encoder

    return native_encoder(model, EncoderConfig(device="cpu", fp16=False, show_progress=False, cache_size=0))


def _eager_attention(encoder: Any) -> None:
    """Reload the encoder's model with plain matmul attention (what ORT's fusions recognise).

    transformers picks SDPA by default, which traces into a graph onnxruntime's attention
    fusion does not match; the weights are the same.
    """
    cls = type(encoder.model)
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        model = cls.from_pretrained(str(encoder.resolved.path), attn_implementation="eager")
        encoder.model = encoder._place(model)


# Protobuf cannot hold more than 2 GiB: bigger graphs (BGE-M3 in fp32) keep their weights in
# one external data file next to the graph.
_EXTERNAL_DATA_BYTES = 1_800_000_000
_DATA_SUFFIX = ".data"


def _optimize_graph(src: Path, dst: Path, *, num_heads: int, hidden_size: int, large: bool) -> bool:
    """Fuse attention / skip-layernorm / gelu with onnxruntime's transformer optimizer.

    Hardware-independent (opt_level 0 + the BERT fusions), so the file stays portable.
    Returns False (and leaves ``dst`` absent) when the optimizer is not usable.
    """
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except Exception:  # pragma: no cover - onnxruntime build without the transformers tools
        return False
    with warnings.catch_warnings(), _quiet_logs():
        warnings.simplefilter("ignore")
        opt = optimize_model(
            str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0
        )
        opt.save_model_to_file(str(dst), use_external_data_format=large, all_tensors_to_one_file=True)
    return True


def _copy_graph(src: Path, dst: Path, *, large: bool) -> None:
    """``src`` (with any per-tensor external files) as ``dst`` (one external file when large)."""
    import onnx

    model = onnx.load(str(src), load_external_data=True)
    if large:
        onnx.save(
            model,
            str(dst),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=dst.name + _DATA_SUFFIX,
        )
    else:
        onnx.save(model, str(dst))


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    import logging

    names = ("onnxruntime", "onnx", "root")
    loggers = [logging.getLogger(n if n != "root" else None) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def quantize_export(path: str | os.PathLike[str]) -> Path:
    """Write ``model_int8.onnx`` next to ``model.onnx``: dynamic int8 weights, per channel.

    Activations are quantized per batch at run time (uint8), weights once per output
    channel; embeddings and layer norms stay fp32.
    """
    _require_onnx("int8 quantization")
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(path).expanduser()
    meta = _read_meta(out)
    src = out / GRAPH_FILES["fp32"]
    if not src.is_file():
        raise ModelLoadError(f"{out} has no {GRAPH_FILES['fp32']} to quantize")
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".int8-", suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings(), _quiet_logs():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                src,
                tmp,
                op_types_to_quantize=["MatMul", "Attention"],
                per_channel=True,
                # 7-bit weights: without AVX-512 VNNI, u8 x s8 products can saturate int16
                # accumulators; measured no worse than 8 bits on MiniLM (RESULTS.md), while
                # per-channel scales are what keep the vectors close to fp32.
                reduce_range=True,
                weight_type=QuantType.QInt8,
                # Fused contrib ops (Attention, SkipLayerNormalization) defeat onnx's shape
                # inference; everything in these graphs is float.
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
            )
        os.replace(tmp, out / GRAPH_FILES["int8"])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta.setdefault("precisions", [])
    if "int8" not in meta["precisions"]:
        meta["precisions"] = [*meta["precisions"], "int8"]
    _write_json(out / EXPORT_META, meta)
    return out


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def export_onnx(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    int8: bool = False,
    optimize: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (hub id or directory: BGE-M3, dense or SPLADE) to ``out``; needs torch.

    ``int8`` also writes the dynamic-int8 graph.  ``optimize`` fuses attention and
    layer norms offline.  The directory is written next to ``out`` and moved into place
    when complete, so a failed export never leaves a half-written model behind.
    """
    from ._hf import require_torch

    require_torch("export-onnx")
    _require_onnx("export-onnx")
    import torch

    dest = Path(out).expanduser()
    replaceable = overwrite and is_onnx_export(dest)
    if dest.exists() and not replaceable and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInputError(f"{dest} already exists and is not empty; choose a new directory")
    encoder = _torch_encoder(model)
    ident = encoder.identity
    kind = "bge-m3" if ident.sparse_kind == "bge-m3" else ("splade" if ident.sparse_kind else "dense")
    _eager_attention(encoder)
    module, output_names = _graph_module(encoder)
    cfg = encoder.model.config

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.export-"))
    try:
        # A padded dummy batch, so the traced graph keeps the general attention-mask path.
        pad, width = encoder._pad_id, 16
        ids = torch.full((2, width), pad, dtype=torch.long)
        mask = torch.zeros((2, width), dtype=torch.long)
        sample = encoder.tokenize(["an example sentence for the export trace", "short"])[0]
        for row, toks in enumerate(sample):
            toks = toks[:width]
            ids[row, : len(toks)] = torch.tensor(toks)
            mask[row, : len(toks)] = 1
        dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
        for name in output_names:
            dynamic[name] = {0: "batch"}
        dynamic[TOKENS] = {0: "batch", 1: "tokens"}
        if kind == "bge-m3":
            dynamic["sparse"] = {0: "batch", 1: "tokens"}
            dynamic["colbert"] = {0: "batch", 1: "tokens_minus_one"}
        (work / "raw").mkdir()
        raw = work / "raw" / "model.onnx"
        large = sum(p.numel() * p.element_size() for p in module.parameters()) > _EXTERNAL_DATA_BYTES
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (ids, mask),
                str(raw),
                input_names=["input_ids", "attention_mask"],
                output_names=output_names,
                dynamic_axes=dynamic,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        graph = work / GRAPH_FILES["fp32"]
        fused = optimize and _optimize_graph(
            raw, graph, num_heads=int(cfg.num_attention_heads), hidden_size=int(cfg.hidden_size), large=large
        )
        if not fused:
            _copy_graph(raw, graph, large=large)
        shutil.rmtree(work / "raw")
        tok = encoder.tokenizer.backend_tokenizer
        tok.no_truncation()
        tok.no_padding()
        tok.save(str(work / "tokenizer.json"))
        special = sorted(
            {int(i) for i in getattr(encoder.tokenizer, "all_special_ids", [])}
            | set(encoder._skip_ids.tolist())
        )
        meta = {
            "format": EXPORT_FORMAT,
            "kind": kind,
            "model_id": ident.model_id,
            "model_hash": ident.model_hash,
            "query_prompt": ident.query_prompt,
            "document_prompt": ident.document_prompt,
            "pooling": getattr(encoder, "pooling", "cls"),
            "dense_dim": encoder._full_dim,
            "colbert_dim": ident.colbert_dim,
            "vocab_size": int(getattr(cfg, "vocab_size", 0)),
            "max_length": int(encoder.max_length),
            "max_length_limit": int(encoder._max_length_limit),
            "pad_id": int(encoder._pad_id),
            "skip_ids": [int(i) for i in encoder._skip_ids.tolist()],
            "special_ids": sorted(special),
            "outputs": output_names,
            "fused": bool(fused),
            "precisions": ["fp32"],
        }
        _write_json(work / EXPORT_META, meta)
        if int8:
            quantize_export(work)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return dest


def _cache_root() -> Path:
    env = os.environ.get("M3_HYBRID_CACHE")
    if env:
        return Path(env).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "m3-hybrid" / "onnx"


_export_lock = threading.Lock()


def cached_export(model: str | os.PathLike[str], precision: str) -> Path:
    """The export of ``model`` in the cache directory, made on first use (needs torch then).

    The cache key is the model's id and hash (a changed checkpoint gets a new export).
    ``M3_HYBRID_CACHE`` moves the cache.
    """
    from ._hf import local_model_hash, require_torch, resolve_model

    require_torch(f'backend="onnx" with {os.fspath(model)!r} (not an ONNX export) exports it once, which')
    resolved = resolve_model(model)
    digest = hashlib.sha256(
        f"{EXPORT_FORMAT}\0{resolved.model_id}\0{resolved.path}\0"
        f"{'' if resolved.from_hub else local_model_hash(resolved.path)}".encode()
    ).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", resolved.model_id.strip("/"))[-60:]
    dest = _cache_root() / f"{name}-{digest}"
    with _export_lock:
        if not is_onnx_export(dest):
            export_onnx(resolved.path if not resolved.from_hub else resolved.model_id, dest, overwrite=True)
        if precision == "int8" and not (dest / GRAPH_FILES["int8"]).is_file():
            quantize_export(dest)
    return dest


# -- the encoder (onnxruntime + tokenizers + numpy) ------------------------------------------


class OnnxEncoder(LateChunker, ModelEncoder):
    """An exported BGE-M3, dense or SPLADE model run with onnxruntime (no torch).

    ``path``: a directory written by :func:`export_onnx`.  Options:
    :class:`~shared.encoders.EncoderConfig` (``config=`` or keywords); ``precision="int8"``
    runs the int8 graph; ``fp16`` does not apply.
    """

    _unused_options = frozenset({"fp16"})

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: EncoderConfig | None = None,
        **options: Unpack[EncoderOptions],
    ) -> None:
        super().__init__(path, config, **options)

    def _open(self, model: Any) -> tuple[str, str]:
        _require_onnxruntime()
        self.path = Path(model).expanduser().resolve()
        self.meta = _read_meta(self.path)
        return self.meta["query_prompt"], self.meta["document_prompt"]

    def _load(self) -> ModelShape:
        ort = _require_onnxruntime()
        from tokenizers import Tokenizer

        cfg, root, meta = self.options, self.path, self.meta
        self.kind: str = meta["kind"]
        self.precision = cfg.precision
        self.max_batch_tokens = cfg.max_batch_tokens
        self.threads = validate_threads(cfg.threads)
        graph = root / GRAPH_FILES[cfg.precision]
        if not graph.is_file():
            hint = (
                f"run `m3-hybrid export-onnx MODEL {root} --int8` (or quantize_export({str(root)!r}))"
                if cfg.precision == "int8"
                else "re-export the model"
            )
            raise ModelLoadError(f"{root} has no {cfg.precision} graph ({graph.name}); {hint}")
        device = cfg.device
        providers = ["CPUExecutionProvider"]
        if device not in (None, "cpu"):
            if not isinstance(device, str):
                raise InvalidTypeError(
                    f"device must be a str such as 'cpu' or 'cuda', not {type(device).__name__}"
                )
            if not device.startswith("cuda") or "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InvalidInputError(
                    f"device {device!r} is not available to onnxruntime "
                    f"(providers: {ort.get_available_providers()})"
                )
            providers = ["CUDAExecutionProvider", *providers]
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # No spin-waiting between parallel sections: a spinning intra-op thread is CPU charged to
        # the process for no work, which a lone or a joined run pays in full, and on a busy machine
        # it spins while its partner waits for a core (benchmarks/RESULTS.md, serving).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=providers)
            self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        except Exception as exc:
            raise ModelLoadError(f"cannot load the ONNX export in {root}: {exc}") from exc
        self.tokenizer.no_padding()
        # Late chunking reads whole documents: its own copy of the tokenizer, never truncating.
        self._whole_tokenizer: Any = None
        self._late_lock = threading.Lock()
        self.max_length = cfg.max_length_within(int(meta["max_length_limit"]), int(meta["max_length"]))
        self.tokenizer.enable_truncation(self.max_length)
        self._pad_id = int(meta["pad_id"])
        self._skip_ids = np.asarray(meta["skip_ids"], dtype=np.int64)
        self._special = np.asarray(meta["special_ids"], dtype=np.int64)
        outputs = {"bge-m3": {"dense", "sparse", "colbert"}, "dense": {"dense"}, "splade": {"sparse"}}
        return ModelShape(
            model_id=meta["model_id"],
            model_hash=meta["model_hash"],
            outputs=frozenset(outputs[self.kind]),
            full_dim=int(meta["dense_dim"]) if self.kind != "splade" else None,
            sparse_kind={"bge-m3": "bge-m3", "splade": "splade", "dense": None}[self.kind],
            colbert_dim=meta.get("colbert_dim") if self.kind == "bge-m3" else None,
            precision=cfg.precision,
        )

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids (with specials, truncated to ``max_length``) and per-text truncation flags."""
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return [e.ids for e in encodings], [bool(e.overflowing) for e in encodings]

    def _pad(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        prompt = self.prompt_for(kind)
        ids, truncated = self.tokenize([prompt + t for t in texts])
        return encode_in_batches(
            ids,
            truncated,
            lambda rows: self._run(rows, outputs),
            batch_size=batch_size,
            max_batch_tokens=self.max_batch_tokens,
            desc=f"Encoding {kind}s",
            show_progress=show_progress,
            pass_tokens=_QUERY_PASS_TOKENS if kind == "query" else None,
        )

    def _splade_runs(self, input_ids: np.ndarray, mask: np.ndarray, output: str) -> Iterator[tuple[int, Any]]:
        """(first row, ``output``) of a SPLADE batch in row chunks: its logit tensor is
        [rows, tokens, vocab], so its size per call is capped (as on the torch path)."""
        step = max(1, _MAX_LOGIT_ELEMENTS // (input_ids.shape[1] * max(1, int(self.meta["vocab_size"]))))
        for s in range(0, len(input_ids), step):
            feeds = {"input_ids": input_ids[s : s + step], "attention_mask": mask[s : s + step]}
            (got,) = self.session.run([output], feeds)
            self._count_forward()
            yield s, got

    def _run(self, rows: list[list[int]], outputs: frozenset[str]) -> tuple[Any, Any, Any]:
        from .late import sparse_from_token_weights

        input_ids, mask = self._pad(rows)
        lengths = [len(r) for r in rows]
        if self.kind == "splade":
            parts = [got for _, got in self._splade_runs(input_ids, mask, "sparse")]
            vec = np.concatenate(parts).astype(np.float32, copy=False)
            vec[:, self._special[self._special < vec.shape[1]]] = 0.0
            terms = []
            for row in vec:
                nz = np.flatnonzero(row)
                terms.append(dict(zip(nz.tolist(), row[nz].astype(np.float64).tolist(), strict=True)))
            return None, terms, None
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if self.kind == "dense":
            (dense,) = self.session.run(["dense"], feeds)
            self._count_forward()
            return dense.astype(np.float32, copy=False), None, None
        names = ["dense", "sparse"] + (["colbert"] if "colbert" in outputs else [])
        got = self.session.run(names, feeds)
        self._count_forward()
        dense = got[0].astype(np.float32, copy=False) if "dense" in outputs else None
        sparse = (
            sparse_from_token_weights(input_ids, got[1], lengths, self._skip_ids)
            if "sparse" in outputs
            else None
        )
        colbert = None
        if "colbert" in outputs:
            vecs = got[2].astype(np.float32, copy=False)
            colbert = [np.ascontiguousarray(vecs[i, : n - 1]) for i, n in enumerate(lengths)]
        return dense, sparse, colbert

    # -- late chunking (shared.encoders.late) ------------------------------------------

    def _late_tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """Token ids of the whole ``text`` (specials, no truncation), offsets, special flags."""
        if TOKENS not in self.meta.get("outputs", ()):
            raise UnsupportedOperationError(
                f"the ONNX export in {self.path} predates late chunking (its graph has no per-token "
                "output); export the model again (`m3-hybrid export-onnx MODEL DIR --overwrite`, or "
                "delete that directory when it is the automatic export cache)"
            )
        with self._late_lock:
            if self._whole_tokenizer is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                tok.no_padding()
                tok.no_truncation()
                self._whole_tokenizer = tok
        enc = self._whole_tokenizer.encode(text, add_special_tokens=True)
        return enc.ids, enc.offsets, enc.special_tokens_mask

    def _token_states(self, rows: list[list[int]], outputs: frozenset[str]) -> Iterator[TokenStates]:
        input_ids, mask = self._pad(rows)
        lengths = [len(r) for r in rows]
        if self.kind == "splade":
            # Row chunks one by one: the caller pools each window's [T, vocab] weights and drops them.
            for s, weights in self._splade_runs(input_ids, mask, TOKENS):
                for i, n in enumerate(lengths[s : s + len(weights)]):
                    yield TokenStates(
                        ids=input_ids[s + i, :n], vocab_weights=weights[i, :n], skip_ids=self._special
                    )
            return
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if self.kind == "dense":
            (hidden,) = self.session.run([TOKENS], feeds)
            self._count_forward()
            yield from [
                TokenStates(ids=input_ids[i, :n], hidden=hidden[i, :n]) for i, n in enumerate(lengths)
            ]
            return
        names = [TOKENS, "sparse"] + (["colbert"] if "colbert" in outputs else [])
        got = self.session.run(names, feeds)
        self._count_forward()
        colbert = None
        if "colbert" in outputs:
            # The graph's ColBERT rows start after the CLS: put them back at their tokens' rows.
            colbert = np.concatenate([np.zeros_like(got[2][:, :1]), got[2]], axis=1)
        yield from [
            TokenStates(
                ids=input_ids[i, :n],
                hidden=got[0][i, :n],
                term_weights=got[1][i, :n],
                colbert=colbert[i, :n] if colbert is not None else None,
                skip_ids=self._skip_ids,
            )
            for i, n in enumerate(lengths)
        ]

    def __repr__(self) -> str:
        return (
            f"OnnxEncoder(model_id={self._identity.model_id!r}, kind={self.kind!r}, "
            f"precision={self.precision!r}, dense_dim={self.dense_dim}, threads={self.threads})"
        )
