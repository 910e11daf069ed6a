"""What is compared: stored configurations (:class:`EvalConfig`, one index each) and
query-time modes (:class:`EvalMode`, reusing the index), and the RAM a layout keeps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError


@dataclass(frozen=True)
class EvalConfig:
    """One stored configuration: everything that needs its own index.

    Query-time choices (retrieval mode, fusion, rescoring) are :class:`EvalMode` and reuse
    the index.
    """

    quantization: str = "none"
    mrl_dim: int | None = None
    colbert: bool = False
    on_disk: bool = False
    #: Preset of the MRL funnel's truncated copy (the store's default: binary).
    mrl_quantization: str = "binary"

    def store_options(self) -> dict[str, Any]:
        """The store options that build this configuration's index (each field is one, by name)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def name(self) -> str:
        parts = [self.quantization]
        if self.mrl_dim:
            parts.append(
                f"mrl{self.mrl_dim}"
                + ("" if self.mrl_quantization == "binary" else f"-{self.mrl_quantization}")
            )
        if self.colbert:
            parts.append("colbert")
        if self.on_disk:
            parts.append("on-disk")
        return "+".join(parts)

    @property
    def is_reference(self) -> bool:
        """Full-precision, full-dimension dense vectors: what the others are compared to."""
        return self.quantization == "none" and not self.mrl_dim


@dataclass(frozen=True)
class EvalMode:
    """One query-time retrieval mode (passed to ``HybridStore.query``)."""

    name: str
    retrieval_mode: str  # "dense" | "sparse" | "hybrid"
    fusion: str | None = None
    colbert_rerank: bool = False
    #: None: the preset's default (quantized presets rescore with the originals).
    rescore: bool | None = None
    dense_weight: float | None = None
    sparse_weight: float | None = None
    rrf_k: int | None = None
    #: m3 fusion only: "none", "query" or "auto" (None: the store's default, "auto");
    #: see :mod:`shared.query.modes`.
    sparse_normalization: str | None = None

    @property
    def needs(self) -> frozenset[str]:
        need = set()
        if self.retrieval_mode in ("dense", "hybrid"):
            need.add("dense")
        if self.retrieval_mode in ("sparse", "hybrid"):
            need.add("sparse")
        if self.colbert_rerank:
            need.add("colbert")
        return frozenset(need)

    @property
    def is_single(self) -> bool:
        return self.retrieval_mode in ("dense", "sparse") and not self.colbert_rerank

    def query_kwargs(self) -> dict[str, Any]:
        # colbert_rerank is always explicit: the store's default turns it on for ColBERT
        # collections, which would re-encode the query with the model inside the timing.
        kw: dict[str, Any] = {"mode": self.retrieval_mode, "colbert_rerank": self.colbert_rerank}
        # The other options only where set (None: the store's default).
        for name in ("fusion", "rescore", "dense_weight", "sparse_weight", "rrf_k", "sparse_normalization"):
            value = getattr(self, name)
            if value is not None:
                kw[name] = value
        return kw


#: The built-in modes, by name (``<name>-norescore`` disables rescoring of quantized vectors).
MODES: dict[str, EvalMode] = {
    m.name: m
    for m in (
        EvalMode("dense", "dense"),
        EvalMode("sparse", "sparse"),
        EvalMode("hybrid-rrf", "hybrid", "rrf"),
        EvalMode("hybrid-dbsf", "hybrid", "dbsf"),
        EvalMode("hybrid-m3", "hybrid", "m3"),
        # The paper's raw sum whatever the sparse model: to see what the normalisation does.
        EvalMode("hybrid-m3-raw", "hybrid", "m3", sparse_normalization="none"),
        EvalMode("colbert", "hybrid", "rrf", colbert_rerank=True),
    )
}
_ALIASES = {"rrf": "hybrid-rrf", "dbsf": "hybrid-dbsf", "m3": "hybrid-m3", "hybrid": "hybrid-rrf"}
DEFAULT_MODES: tuple[str, ...] = ("dense", "sparse", "hybrid-rrf", "hybrid-dbsf", "hybrid-m3", "colbert")


def parse_modes(spec: str | Iterable[str | EvalMode]) -> list[EvalMode]:
    """Modes from names (comma-separated string or list); unknown names are an error."""
    items: Iterable[str | EvalMode] = spec.split(",") if isinstance(spec, str) else spec
    out: list[EvalMode] = []
    for i, item in enumerate(items):
        if isinstance(item, EvalMode):
            out.append(item)
            continue
        if not isinstance(item, str):
            raise InvalidTypeError(f"mode {i} must be a name or EvalMode, got {type(item).__name__}")
        raw = item.strip().lower()
        if not raw:
            continue
        norescore = raw.endswith("-norescore")
        base = _ALIASES.get(raw.removesuffix("-norescore"), raw.removesuffix("-norescore"))
        if base not in MODES:
            raise InvalidInputError(
                f"unknown mode {item!r} (item {i}); choose from {', '.join(MODES)}, "
                "optionally with the suffix -norescore"
            )
        mode = MODES[base]
        out.append(replace(mode, name=f"{base}-norescore", rescore=False) if norescore else mode)
    names = [m.name for m in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InvalidInputError(f"mode {sorted(dup)[0]!r} is listed twice")
    if not out:
        raise InvalidInputError("no retrieval mode given")
    return out


def _known_presets() -> tuple[str, ...] | None:
    try:
        from .. import quantization
    except ImportError:  # the store module set is incomplete; the store will validate
        return None
    presets = getattr(quantization, "PRESETS", None)
    return tuple(presets) if presets else None


def parse_configs(
    presets: str | Iterable[str],
    *,
    mrl_dims: Iterable[int | None] = (None,),
    colbert: bool = False,
    on_disk: bool = False,
) -> list[EvalConfig]:
    """The cross product presets x MRL dims (x ColBERT), validated against the known presets."""
    names = [
        p.strip().lower() for p in (presets.split(",") if isinstance(presets, str) else presets) if p.strip()
    ]
    if not names:
        raise InvalidInputError("no quantization preset given")
    known = _known_presets()
    for i, n in enumerate(names):
        if known is not None and n not in known:
            from ..quantization import get_preset

            try:
                get_preset(n)  # its message names the nearest mistake (e.g. a TurboQuant bit size)
            except InvalidInputError as exc:
                raise InvalidInputError(f"item {i}: {exc}") from None
    dims = list(mrl_dims)
    for d in dims:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 1):
            raise InvalidInputError(f"MRL dim must be a positive integer, got {d!r}")
    configs = [EvalConfig(p, d, colbert, on_disk) for d in dims for p in names]
    seen: set[str] = set()
    unique = []
    for c in configs:
        if c.name not in seen:
            seen.add(c.name)
            unique.append(c)
    return unique


def vector_ram_bytes(config: EvalConfig, dense_dim: int | None, mean_sparse_nnz: float = 0.0) -> float:
    """Vector bytes per document kept in RAM under ``config`` (an estimate from the layout).

    Dense originals are float32 (float16 for the ``float16`` preset) and stay in RAM unless
    ``on_disk`` with something quantized to search instead (a preset's codes or the MRL
    funnel); quantized codes are always in RAM at the preset's bits per dimension
    (:attr:`~shared.quantization.QuantizationPreset.code_bits`: int8 8, binary 1 / 1.5 / 2,
    turbo 1 / 1.5 / 2 / 4 / 8).  The MRL funnel adds ``mrl_dim`` codes of its own preset plus
    their float32 originals (unless on disk).  Sparse vectors cost 8 bytes per non-zero (u32
    index + f32 weight).  Index structures (HNSW links, payload) are not included: see
    ``benchmarks/presets.py`` for the engine's measured bytes per point.
    """
    from ..quantization import get_preset

    total = 8.0 * mean_sparse_nnz
    if dense_dim:
        preset = get_preset(config.quantization)
        original = dense_dim * (2 if preset.datatype == "float16" else 4)
        bits = preset.code_bits
        searched_elsewhere = bool(bits) or bool(config.mrl_dim)
        total += (0 if config.on_disk and searched_elsewhere else original) + dense_dim * bits / 8
        if config.mrl_dim:
            mq = get_preset(config.mrl_quantization)
            mbits = mq.code_bits
            total += config.mrl_dim * mbits / 8 + (0 if config.on_disk and mbits else config.mrl_dim * 4)
    return total
