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
    assert set(PRESETS) == {
        "none",
        "float16",
        "int8",
        "binary",
        "binary-1.5bit",
        "binary-2bit",
        "turbo-1bit",
        "turbo-1.5bit",
        "turbo-2bit",
        "turbo-4bit",
        "turbo-8bit",
    }
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
        (
            models.TurboQuantization(
                turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS2)
            ),
            "turbo",
            2.0,
        ),
        (qe.TurboQuantQuantizationConfig(bits=qe.TurboQuantBitSize.Bits1_5), "turbo", 1.5),
        (models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS8), "turbo", 8.0),
    ],
)
def test_raw_configs_become_presets(raw, method: str, detail) -> None:
    p = get_preset(raw)
    assert p.method == method and p.rescore is True
    assert detail in (p.scalar_quantile, p.binary_encoding, p.product_compression, p.turbo_bits)
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


# -- TurboQuant -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("turbo-1bit", 1.0),
        ("turbo-1.5bit", 1.5),
        ("turbo-2bit", 2.0),
        ("turbo-4bit", 4.0),
        ("turbo-8bit", 8.0),
    ],
)
def test_turbo_presets_translate_to_both_engines(name: str, bits: float) -> None:
    p = get_preset(name)
    assert (p.method, p.turbo_bits, p.code_bits, p.rescore) == ("turbo", bits, bits, True)
    assert p.oversampling is not None and p.oversampling >= 1.0
    assert QuantizationPreset.from_dict(p.to_dict()) == p
    edge = edge_config(p, on_disk=True)
    assert isinstance(edge, qe.TurboQuantQuantizationConfig) and edge.memory == qe.Memory.Pinned
    assert str(edge.bits).endswith("Bits" + f"{bits:g}".replace(".", "_"))
    remote = remote_config(p, on_disk=False)
    assert isinstance(remote, models.TurboQuantization)
    assert remote.turbo.bits == models.TurboQuantBitSize("bits" + f"{bits:g}".replace(".", "_"))
    assert remote.turbo.always_ram is None and remote_config(p, on_disk=True).turbo.always_ram is True
    # A raw config of the same size becomes the same preset, with the same search defaults.
    raw = get_preset(remote)
    assert (raw.name, raw.turbo_bits, raw.rescore, raw.oversampling) == (
        f"custom-{name}",
        bits,
        p.rescore,
        p.oversampling,
    )


def test_code_bits_rank_presets_by_memory() -> None:
    bits = {n: get_preset(n).code_bits for n in PRESETS}
    assert bits["none"] == bits["float16"] == 0.0
    assert bits["binary"] == bits["turbo-1bit"] == 1.0
    assert bits["binary-2bit"] == bits["turbo-2bit"] == 2.0 and bits["int8"] == bits["turbo-8bit"] == 8.0
    assert (
        get_preset(
            models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X16)
            )
        ).code_bits
        == 2.0
    )


@pytest.mark.parametrize("spec", ["turbo-3bit", "turbo-16bit", "turbo3", "turbo-0.5bit"])
def test_wrong_turbo_bit_size_is_named(spec: str) -> None:
    with pytest.raises(InvalidInputError, match=r"TurboQuant has no .*-bit size.*turbo-1bit.*turbo-8bit"):
        get_preset(spec)


def test_wrong_turbo_bits_in_a_preset_or_raw_config() -> None:
    with pytest.raises(InvalidInputError, match=r"TurboQuant bit size 3 .*choose one of 1, 1.5, 2, 4, 8"):
        QuantizationPreset("mine", "turbo", turbo_bits=3)
    with pytest.raises(InvalidInputError, match="needs turbo_bits"):
        QuantizationPreset("mine", "turbo")
    with pytest.raises(InvalidInputError, match="unknown quantization method 'turbo4'"):
        QuantizationPreset("mine", "turbo4")  # type: ignore[arg-type]
    # A raw config with no size takes the engines' default (4 bits).
    assert get_preset(models.TurboQuantization(turbo=models.TurboQuantQuantizationConfig())).turbo_bits == 4.0
