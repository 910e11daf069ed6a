"""Matryoshka truncation: renormalisation, the MRL registry, warnings and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from shared.errors import InvalidInputError, InvalidTypeError
from shared.mrl import MRL_REGISTRY, MRLWarning, lookup_mrl, truncate, validate_truncate_dim


def test_truncate_keeps_prefix_and_renormalises() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = truncate(x, 4)
    assert out.shape == (5, 4) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    # Same direction as the prefix.
    prefix = x[:, :4] / np.linalg.norm(x[:, :4], axis=1, keepdims=True)
    np.testing.assert_allclose(out, prefix, rtol=1e-6)
    # 1-D input and None
    np.testing.assert_allclose(truncate(x[0], 4), out[0], rtol=1e-6)
    assert truncate(x, None).shape == (5, 12)


def test_truncate_zero_row_stays_zero() -> None:
    x = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    out = truncate(x, 2)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_array_equal(out[1], [1.0, 0.0])


@pytest.mark.parametrize("dim", [0, -3, 13])
def test_truncate_out_of_range(dim: int) -> None:
    with pytest.raises(InvalidInputError):
        truncate(np.ones((2, 12), dtype=np.float32), dim)


def test_registry_lookup() -> None:
    spec = lookup_mrl("nomic-ai/nomic-embed-text-v1.5")
    assert spec is not None and spec.full_dim == 768 and 256 in spec.trained_dims
    assert lookup_mrl("Snowflake/snowflake-arctic-embed-l-v2.0").full_dim == 1024  # type: ignore[union-attr]
    assert lookup_mrl("/models/mxbai-embed-large-v1") is not None
    assert lookup_mrl("BAAI/bge-m3") is None  # BGE-M3 is not MRL-trained
    assert lookup_mrl("sentence-transformers/all-MiniLM-L6-v2") is None
    families = {"jina-embeddings-v3", "gte-multilingual-base", "snowflake-arctic-embed-m-v2.0"}
    assert families <= set(MRL_REGISTRY)


def test_validate_warns_once_for_non_mrl_models_only() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert validate_truncate_dim(256, 1024, "BAAI/bge-m3") == 256
    assert [w.category for w in caught] == [MRLWarning]
    assert "not known to be Matryoshka-trained" in str(caught[0].message)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning would fail here
        assert validate_truncate_dim(256, 768, "nomic-ai/nomic-embed-text-v1.5") == 256
        assert validate_truncate_dim(None, 768, "BAAI/bge-m3") is None
        # The full size is "no truncation": no warning either.
        assert validate_truncate_dim(1024, 1024, "BAAI/bge-m3") is None


@pytest.mark.parametrize("dim", [0, -1, 1025])
def test_validate_range(dim: int) -> None:
    with pytest.raises(InvalidInputError, match="truncate_dim"):
        validate_truncate_dim(dim, 1024, "BAAI/bge-m3")


@pytest.mark.parametrize("dim", [1.5, "256", True])
def test_validate_type(dim: object) -> None:
    with pytest.raises(InvalidTypeError, match="truncate_dim"):
        validate_truncate_dim(dim, 1024, "BAAI/bge-m3")  # type: ignore[arg-type]
