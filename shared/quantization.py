"""Quantization presets for the dense vectors, with their default search parameters.

A preset is backend-neutral; each backend translates it to its own Qdrant config.

=================  ===========================================  =====================
preset             storage                                      search defaults
=================  ===========================================  =====================
``none``           float32 originals                            -
``float16``        float16 originals (vector datatype, halves     -
                   memory, no quantized copy)
``int8``           scalar int8 codes + originals                rescore, oversampling 2
``binary``         1-bit codes + originals                      rescore, oversampling 3
``binary-1.5bit``  1.5-bit codes + originals                    rescore, oversampling 3
``binary-2bit``    2-bit codes + originals                      rescore, oversampling 3
``turbo-1bit``     TurboQuant 1-bit codes + originals           rescore, oversampling 4
``turbo-1.5bit``   TurboQuant 1.5-bit codes + originals         rescore, oversampling 4
``turbo-2bit``     TurboQuant 2-bit codes + originals           rescore, oversampling 3
``turbo-4bit``     TurboQuant 4-bit codes + originals           rescore, oversampling 1.5
``turbo-8bit``     TurboQuant 8-bit codes + originals           rescore, oversampling 1.5
=================  ===========================================  =====================

TurboQuant (Qdrant 1.18+, ``qdrant-edge-py`` 0.9, ``qdrant-client`` 1.20) rotates each
vector before quantizing it, so its codes lose less than binary codes of the same size.
Their oversampling defaults are measured (``benchmarks/presets.py``, results in
``benchmarks/RESULTS.md``): the smallest of 1, 1.5, 2, 3, 4 whose recall@10 against exact
search is within 0.005 of the best reached (float HNSW, or the preset at 4).  A query can
override both ``rescore`` and ``oversampling``.

Any raw Qdrant quantization config (``qdrant_client.models.ScalarQuantization``,
``BinaryQuantization``, ``ProductQuantization``, ``TurboQuantization`` or their
``*Config`` bodies, or the ``qdrant_edge`` configs) is accepted too and becomes a
``custom-*`` preset.

With ``on_disk=True`` the float originals are kept on disk (mmap) and the quantized
codes are always held in RAM, so memory per point is the size of the codes.

Sparse vectors cannot be quantized in Qdrant. Their index weights can be stored
smaller instead: ``sparse_datatype="float16"`` or ``"uint8"`` (see
:data:`SPARSE_DATATYPES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .errors import InvalidInputError, InvalidTypeError

Method = Literal["none", "scalar", "binary", "product", "turbo"]

#: Storage datatypes of stored vectors (the originals: float32 or float16).
DATATYPES = ("float32", "float16", "uint8")
#: Storage datatypes accepted for the sparse index weights.
SPARSE_DATATYPES = DATATYPES

#: Binary quantization encodings (bits per dimension: 1, 1.5, 2).
BINARY_ENCODINGS = ("one_bit", "one_and_half_bits", "two_bits")
#: Product quantization compression ratios.
PRODUCT_COMPRESSIONS = ("x4", "x8", "x16", "x32", "x64")
#: TurboQuant code sizes (bits per dimension) the engines accept.
TURBO_BITS = (1.0, 1.5, 2.0, 4.0, 8.0)
_METHODS = ("none", "scalar", "binary", "product", "turbo")


@dataclass(frozen=True)
class QuantizationPreset:
    """A named quantization setup and its default search parameters."""

    name: str
    method: Method = "none"
    #: Storage datatype of the float originals ("float32" or "float16").
    datatype: str = "float32"
    binary_encoding: str | None = None
    scalar_quantile: float | None = None
    product_compression: str | None = None
    #: TurboQuant bits per dimension (one of :data:`TURBO_BITS`).
    turbo_bits: float | None = None
    #: Default: re-score quantized candidates with the original vectors.
    rescore: bool | None = None
    #: Default oversampling factor of the quantized search.
    oversampling: float | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise InvalidInputError(
                f"unknown quantization method {self.method!r}; choose one of {', '.join(_METHODS)}"
            )
        if self.method == "turbo":
            if self.turbo_bits is None or isinstance(self.turbo_bits, bool):
                raise InvalidInputError(
                    f"TurboQuant preset {self.name!r} needs turbo_bits, one of {_bits_list()}"
                )
            if float(self.turbo_bits) not in TURBO_BITS:
                raise InvalidInputError(
                    f"TurboQuant bit size {self.turbo_bits!r} of preset {self.name!r} is not supported; "
                    f"choose one of {_bits_list()}"
                )
            object.__setattr__(self, "turbo_bits", float(self.turbo_bits))

    @property
    def code_bits(self) -> float:
        """Bits per dimension of the quantized codes held in RAM (0 when not quantized)."""
        if self.method == "scalar":
            return 8.0
        if self.method == "binary":
            return {"one_bit": 1.0, "one_and_half_bits": 1.5, "two_bits": 2.0}[
                self.binary_encoding or "one_bit"
            ]
        if self.method == "turbo":
            return float(self.turbo_bits or 0.0)
        if self.method == "product":
            return 32.0 / int((self.product_compression or "x16")[1:])
        return 0.0

    @property
    def quantized(self) -> bool:
        """True when a quantized copy of the vectors is searched."""
        return self.method != "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantizationPreset:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _bits_name(bits: float) -> str:
    return f"{bits:g}"


def _bits_list() -> str:
    return ", ".join(_bits_name(b) for b in TURBO_BITS)


# Oversampling defaults per TurboQuant size (all rescore with the originals): measured,
# see the module docstring.
_TURBO_DEFAULTS: dict[float, float] = {1.0: 4.0, 1.5: 4.0, 2.0: 3.0, 4.0: 1.5, 8.0: 1.5}

PRESETS: dict[str, QuantizationPreset] = {
    "none": QuantizationPreset("none"),
    "float16": QuantizationPreset("float16", datatype="float16"),
    "int8": QuantizationPreset("int8", "scalar", scalar_quantile=0.99, rescore=True, oversampling=2.0),
    "binary": QuantizationPreset(
        "binary", "binary", binary_encoding="one_bit", rescore=True, oversampling=3.0
    ),
    "binary-1.5bit": QuantizationPreset(
        "binary-1.5bit", "binary", binary_encoding="one_and_half_bits", rescore=True, oversampling=3.0
    ),
    "binary-2bit": QuantizationPreset(
        "binary-2bit", "binary", binary_encoding="two_bits", rescore=True, oversampling=3.0
    ),
    **{
        f"turbo-{_bits_name(bits)}bit": QuantizationPreset(
            f"turbo-{_bits_name(bits)}bit", "turbo", turbo_bits=bits, rescore=True, oversampling=ov
        )
        for bits, ov in _TURBO_DEFAULTS.items()
    },
}


def validate_sparse_datatype(datatype: str) -> str:
    if datatype not in SPARSE_DATATYPES:
        raise InvalidInputError(
            f"unknown sparse_datatype {datatype!r}; choose one of {', '.join(SPARSE_DATATYPES)} "
            "(sparse vectors cannot be quantized in Qdrant, only stored in a smaller datatype)"
        )
    return datatype


def get_preset(spec: str | QuantizationPreset | Any) -> QuantizationPreset:
    """Resolve a preset name, a preset, or a raw Qdrant quantization config."""
    if isinstance(spec, QuantizationPreset):
        return spec
    if spec is None:
        return PRESETS["none"]
    if isinstance(spec, str):
        try:
            return PRESETS[spec]
        except KeyError:
            m = re.fullmatch(r"turbo-?([0-9.]+)(?:-?bits?)?", spec.strip().lower())
            if m:
                raise InvalidInputError(
                    f"unknown quantization preset {spec!r}: TurboQuant has no {m.group(1)}-bit size; "
                    f"choose one of {', '.join(n for n in PRESETS if n.startswith('turbo-'))}"
                ) from None
            raise InvalidInputError(
                f"unknown quantization preset {spec!r}; choose one of {', '.join(PRESETS)} "
                "or pass a Qdrant quantization config"
            ) from None
    return _from_raw(spec)


def _enum_value(value: Any) -> str:
    """Lower-case name of a qdrant_client (str enum) or qdrant_edge enum member."""
    if value is None:
        return ""
    raw = getattr(value, "value", None)
    if isinstance(raw, str):
        return raw.lower()
    name = getattr(value, "name", None) or str(value).rsplit(".", 1)[-1]
    return str(name).lower()


_EDGE_BINARY = {"onebit": "one_bit", "twobits": "two_bits", "oneandhalfbits": "one_and_half_bits"}


def _from_raw(cfg: Any) -> QuantizationPreset:
    """Translate a qdrant_client or qdrant_edge quantization config to a neutral preset."""
    cls = type(cfg).__name__
    # qdrant_client wrappers hold the body in .scalar / .binary / .product.
    for attr in ("scalar", "binary", "product", "turbo"):
        inner = getattr(cfg, attr, None)
        if inner is not None and cls.endswith("Quantization"):
            cfg, cls = inner, type(inner).__name__
            break
    if cls == "ScalarQuantizationConfig":
        if _enum_value(cfg.type) not in ("int8",):
            raise InvalidInputError(f"unsupported scalar quantization type {cfg.type!r} (only int8)")
        return QuantizationPreset(
            "custom-int8", "scalar", scalar_quantile=cfg.quantile, rescore=True, oversampling=2.0
        )
    if cls == "BinaryQuantizationConfig":
        enc = _enum_value(cfg.encoding) or "one_bit"
        enc = _EDGE_BINARY.get(enc.replace("_", ""), enc)
        return _coded_preset("binary", "encoding", enc, cfg.encoding, BINARY_ENCODINGS)
    if cls == "ProductQuantizationConfig":
        comp = _enum_value(cfg.compression)
        return _coded_preset("product", "compression", comp, cfg.compression, PRODUCT_COMPRESSIONS)
    if cls == "TurboQuantQuantizationConfig":
        bits = _turbo_bits(cfg.bits)
        default = PRESETS[f"turbo-{_bits_name(bits)}bit"]
        return QuantizationPreset(
            f"custom-turbo-{_bits_name(bits)}bit",
            "turbo",
            turbo_bits=bits,
            rescore=default.rescore,
            oversampling=default.oversampling,
        )
    raise InvalidTypeError(
        f"quantization must be a preset name ({', '.join(PRESETS)}), a QuantizationPreset, or a Qdrant "
        f"Scalar/Binary/Product/TurboQuant quantization config; got {cls}"
    )


def _coded_preset(
    method: Method, what: str, code: str, raw: Any, allowed: tuple[str, ...]
) -> QuantizationPreset:
    """The preset of a binary or product config: ``code`` (its encoding or compression, read
    from ``raw``) must be one of ``allowed``; quantized candidates are re-scored, 3x oversampled."""
    if code not in allowed:
        raise InvalidInputError(f"unsupported {method} quantization {what} {raw!r}")
    return QuantizationPreset(
        f"custom-{method}-{code}",
        method,
        binary_encoding=code if method == "binary" else None,
        product_compression=code if method == "product" else None,
        rescore=True,
        oversampling=3.0,
    )


def _turbo_bits(value: Any) -> float:
    """Bits per dimension of a ``TurboQuantBitSize`` (qdrant_client or qdrant_edge; None: 4)."""
    if value is None:
        return 4.0
    name = _enum_value(value).replace("bits", "").replace("_", ".")
    try:
        bits = float(name)
    except ValueError:
        bits = float("nan")
    if bits not in TURBO_BITS:
        raise InvalidInputError(f"unsupported TurboQuant bit size {value!r}; choose one of {_bits_list()}")
    return bits
