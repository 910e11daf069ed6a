"""shared.validation.dense_vector: a list (the fast path) is checked exactly as any other sequence."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from shared.errors import InvalidInputError, InvalidTypeError, M3HybridError
from shared.validation import dense_vector

GOOD = [
    [0.25, -1.5, 3.0],
    [1, 2, 3],  # ints
    [True, 0.5, 2],  # bools are numbers to numpy
    [np.float64(0.1), np.float32(2.0), 3],  # numpy scalars
    ["1.5", "2", 3.0],  # numeric strings, as np.asarray reads them
    [Decimal("0.5"), 1.0, 2.0],
    [16777217.0, 1e-45, 0.1 + 2**-40],  # halfway (ties to even), a subnormal, a rounding case
    [1 / 3, -2 / 3, 2**-149 * 1.5],  # rounded to nearest, as numpy casts
]

BAD = [
    [],  # empty
    [1.0, 2.0],  # wrong size
    [[1.0, 2.0, 3.0]],  # nested
    [[1.0], [2.0], [3.0]],  # nested, right length
    [1.0, [2.0], 3.0],  # ragged
    [None, 1.0, 2.0],  # None reads as NaN
    [float("nan"), 1.0, 2.0],
    [float("inf"), 1.0, 2.0],
    [1e300, 1.0, 2.0],  # overflows float32
    [0.0, 0.0, 0.0],  # no norm
    ["a", 1.0, 2.0],
    [object(), 1.0, 2.0],
    [10**400, 1.0, 2.0],  # no float at all
]


@pytest.mark.parametrize("value", GOOD)
def test_list_reads_like_any_sequence(value: list[Any]) -> None:
    got = dense_vector(value, "q", 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.asarray(tuple(value), dtype=np.float32))


def _error(value: Any) -> tuple[type[Exception], str]:
    with pytest.raises(M3HybridError) as info:
        dense_vector(value, "dense query vector", 3)
    assert isinstance(info.value, (InvalidInputError, InvalidTypeError))
    return type(info.value), str(info.value)


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_bad_list_refused_as_the_tuple_is(value: list[Any]) -> None:
    # The tuple takes the general conversion: the list's fast path must not change the verdict.
    kind, message = _error(value)
    assert (kind, message) == _error(tuple(value))
    assert "dense query vector" in message
