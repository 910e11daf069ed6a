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
=================  ===========================================  =====================

Any raw Qdrant quantization config (``qdrant_client.models.ScalarQuantization``,
``BinaryQuantization``, ``ProductQuantization`` or their ``*Config`` bodies, or the
``qdrant_edge`` configs) is accepted too and becomes a ``custom-*`` preset.

With ``on_disk=True`` the float originals are kept on disk (mmap) and the quantized
codes are always held in RAM, so memory per point is the size of the codes.

Sparse vectors cannot be quantized in Qdrant. Their index weights can be stored
smaller instead: ``sparse_datatype="float16"`` or ``"uint8"`` (see
:data:`SPARSE_DATATYPES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .errors import InvalidInputError, InvalidTypeError

Method = Literal["none", "scalar", "binary", "product"]

#: Storage datatypes accepted for the sparse index weights.
SPARSE_DATATYPES = ("float32", "float16", "uint8")

_BINARY_ENCODINGS = ("one_bit", "one_and_half_bits", "two_bits")
_PRODUCT_COMPRESSIONS = ("x4", "x8", "x16", "x32", "x64")


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
    #: Default: re-score quantized candidates with the original vectors.
    rescore: bool | None = None
    #: Default oversampling factor of the quantized search.
    oversampling: float | None = None

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
    for attr in ("scalar", "binary", "product"):
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
        if enc not in _BINARY_ENCODINGS:
            raise InvalidInputError(f"unsupported binary quantization encoding {cfg.encoding!r}")
        return QuantizationPreset(
            f"custom-binary-{enc}", "binary", binary_encoding=enc, rescore=True, oversampling=3.0
        )
    if cls == "ProductQuantizationConfig":
        comp = _enum_value(cfg.compression)
        if comp not in _PRODUCT_COMPRESSIONS:
            raise InvalidInputError(f"unsupported product quantization compression {cfg.compression!r}")
        return QuantizationPreset(
            f"custom-product-{comp}", "product", product_compression=comp, rescore=True, oversampling=3.0
        )
    raise InvalidTypeError(
        f"quantization must be a preset name ({', '.join(PRESETS)}), a QuantizationPreset, or a Qdrant "
        f"Scalar/Binary/Product quantization config; got {cls}"
    )
