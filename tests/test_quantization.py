"""Quantization presets and raw Qdrant configs."""

from __future__ import annotations

import pytest
import qdrant_edge as qe
from qdrant_client import models

from shared.backends.edge import quantization_config as edge_config
from shared.backends.remote import quantization_config as remote_config
from shared.errors import InvalidInputError, InvalidTypeError
from shared.quantization import PRESETS, QuantizationPreset, get_preset, validate_sparse_datatype


def test_presets_and_search_defaults() -> None:
    assert set(PRESETS) == {"none", "float16", "int8", "binary", "binary-1.5bit", "binary-2bit"}
    assert not get_preset("none").quantized and get_preset("float16").datatype == "float16"
    assert (get_preset("int8").rescore, get_preset("int8").oversampling) == (True, 2.0)
    for name in ("binary", "binary-1.5bit", "binary-2bit"):
        assert (get_preset(name).rescore, get_preset(name).oversampling) == (True, 3.0)
    assert get_preset("binary-1.5bit").binary_encoding == "one_and_half_bits"
    p = get_preset("int8")
    assert QuantizationPreset.from_dict(p.to_dict()) == p
    with pytest.raises(InvalidInputError, match=r"unknown quantization preset .int4.*binary-2bit"):
        get_preset("int4")


@pytest.mark.parametrize(
    ("raw", "method", "detail"),
    [
        (
            models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.9)
            ),
            "scalar",
            0.9,
        ),
        (
            models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(encoding=models.BinaryQuantizationEncoding.TWO_BITS)
            ),
            "binary",
            "two_bits",
        ),
        (
            models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X32)
            ),
            "product",
            "x32",
        ),
        (qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.5), "scalar", 0.5),
        (
            qe.BinaryQuantizationConfig(encoding=qe.BinaryQuantizationEncoding.OneAndHalfBits),
            "binary",
            "one_and_half_bits",
        ),
        (qe.ProductQuantizationConfig(qe.CompressionRatio.X4), "product", "x4"),
    ],
)
def test_raw_configs_become_presets(raw, method: str, detail) -> None:
    p = get_preset(raw)
    assert p.method == method and p.rescore is True
    assert detail in (p.scalar_quantile, p.binary_encoding, p.product_compression)
    # Both backends can translate the neutral preset back.
    assert edge_config(p, on_disk=True) is not None
    assert remote_config(p, on_disk=True) is not None


def test_unknown_raw_config_is_a_type_error() -> None:
    with pytest.raises(InvalidTypeError, match="quantization must be"):
        get_preset(42)


def test_on_disk_keeps_codes_in_ram() -> None:
    p = get_preset("int8")
    assert remote_config(p, on_disk=True).scalar.always_ram is True
    assert remote_config(p, on_disk=False).scalar.always_ram is None
    assert edge_config(p, on_disk=True).memory == qe.Memory.Pinned
    assert edge_config(get_preset("none"), on_disk=True) is None


def test_sparse_datatypes() -> None:
    for dt in ("float32", "float16", "uint8"):
        assert validate_sparse_datatype(dt) == dt
    with pytest.raises(InvalidInputError, match="cannot be quantized"):
        validate_sparse_datatype("int8")
