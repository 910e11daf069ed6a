"""The argument checks every layer shares: id lists, positive ints, numbers, text lists.

One home for each check, so the store, the query planner, the encoders and both
adapters refuse the same bad input with the same message (naming the offending item).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import InvalidInputError, InvalidTypeError

__all__ = [
    "check_utf8",
    "id_list",
    "is_plain_sparse",
    "non_negative_number",
    "positive_int",
    "single_text",
    "text_list",
]


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int > 0 (numpy ints accepted, bools refused)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, got {value}")
    return int(value)


def non_negative_number(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0 (a weight, an oversampling factor)."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {number}")
    return number


def check_utf8(value: str, where: str) -> str:
    """``value`` if it can be encoded as UTF-8 (JSON, Qdrant, tokenizers); lone surrogates cannot."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            raise InvalidInputError(
                f"{where} is not valid Unicode text: lone surrogate {bad!r} at position {exc.start}"
            ) from None
    return value


def id_list(ids: Any, name: str = "ids") -> list[str]:
    """``ids`` (any iterable but a single str) as a list of str; names the first bad item."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidTypeError(f"{name} must be a sequence of str, got {type(ids).__name__}")
    out = list(ids)
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise InvalidTypeError(f"{name}[{i}] must be str, got {type(x).__name__}: {x!r}")
    return out


def text_list(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` (any iterable but a single str) as a list of valid Unicode str; names the first bad item."""
    if isinstance(texts, (str, bytes)):
        raise InvalidTypeError(
            f"{name} must be a sequence of str, not a single {type(texts).__name__}; wrap it in a list"
        )
    if not isinstance(texts, Iterable):
        raise InvalidTypeError(f"{name} must be a sequence of str, not {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidTypeError(f"{name}[{i}] must be a str, not {type(t).__name__}")
        # Lone surrogates cannot be tokenized or stored (JSON): refused here, named.
        check_utf8(t, f"{name}[{i}]")
    return out


def single_text(text: Any, method: str) -> str:
    """The one text an embedding method takes (``embed_query(text)``), which must be a str."""
    if not isinstance(text, str):
        raise InvalidTypeError(f"{method} expects a str, got {type(text).__name__}")
    return text


def is_plain_sparse(keys: list[Any], values: list[Any]) -> bool:
    """True when every token id is a Python int in [0, 2**32) and every weight a finite Python
    int or float (what encoders return): such sparse items need no item-by-item check.

    Builtins only (no numpy round trip); bools are neither (their type is ``bool``).
    """
    if not keys:
        return not values
    return (
        len(keys) == len(values)
        and set(map(type, keys)) <= {int}
        and set(map(type, values)) <= {float, int}
        and min(keys) >= 0
        and max(keys) < 2**32
        and all(map(math.isfinite, values))
    )
