"""The checks every layer shares: one validator per concept, its fast path inside it.

Id lists, positive ints, numbers, text lists, and the vectors: dense (one vector or a
batch matrix), sparse (a mapping or ``indices``/``values``), ColBERT multivectors. The
store's queries, ingest, the encoders and both adapters call these, so the same bad input
gets the same message, naming the offending item. Each vector check first tries the
cheap whole-input test (one numpy pass, or builtins only for sparse items) and only goes
item by item once something is wrong, to name it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError, InvalidTypeError

__all__ = [
    "TOKEN_LIMIT",
    "check_utf8",
    "colbert_vectors",
    "dense_matrix",
    "dense_query",
    "dense_vector",
    "id_list",
    "is_plain_sparse",
    "non_negative_number",
    "positive_int",
    "single_text",
    "sparse_arrays",
    "text_list",
]

#: Token ids are u32 in Qdrant.
TOKEN_LIMIT = 2**32


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int > 0 (numpy ints accepted, bools refused)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, got {value}")
    return int(value)


def payload_key(value: Any, name: str) -> str:
    """``value`` as a payload key (a dotted path such as ``metadata.source``, no empty part)."""
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a payload key (str), got {type(value).__name__}")
    if not value or any(not part for part in value.split(".")):
        raise InvalidInputError(f"{name} must be a payload key such as 'metadata.source', got {value!r}")
    return value


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
    if type(texts) is not list and not isinstance(texts, Iterable):  # a list skips the ABC check
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
        and max(keys) < TOKEN_LIMIT
        and all(map(math.isfinite, values))
    )


# ---------------------------------------------------------------------------
# dense vectors
# ---------------------------------------------------------------------------


def dense_vector(
    value: Any,
    what: str,
    dim: int | None = None,
    *,
    check_values: bool = True,
    expects: str = "the collection expects",
) -> np.ndarray:
    """``value`` as a float32 vector: 1-d, non-empty, ``dim`` long when given; with
    ``check_values`` also finite and not all zeros (cosine needs a norm). ``what`` names it,
    ``expects`` says whose size ``dim`` is."""
    return _checked_dense(value, what, dim, check_values, expects)[0]


def dense_query(value: Any, what: str, dim: int | None, *, keep_list: bool = True) -> np.ndarray | list[Any]:
    """A query's dense vector checked as :func:`dense_vector` checks it, in the form an engine
    reads fastest: a list of numbers as it came (a framework's query embedding: Qdrant Edge builds
    its query from a list in half the time it takes from an array's buffer), else the float32 array.
    ``keep_list=False``: always the array (a caller that computes with it)."""
    arr, packed = _checked_dense(value, what, dim, True, "the collection expects")
    return value if packed and keep_list else arr


def _checked_dense(
    value: Any, what: str, dim: int | None, check_values: bool, expects: str
) -> tuple[np.ndarray, bool]:
    """The checks of :func:`dense_vector`; also whether ``value`` is a flat list of numbers (packed
    as it is, so an engine reads the same values from it)."""
    arr: np.ndarray | None = None
    if type(value) is list:
        # Fast path for the list a framework carries: struct packs a flat list of numbers into
        # float32 in C with numpy's rounding, cheaper than fromiter and than np.asarray (which
        # inspects the list for nesting first); anything else (nested, strings, None) fails
        # here and takes the general conversion below, which names it.
        arr = np.empty(len(value), dtype=np.float32)
        try:
            struct.pack_into(f"{len(value)}f", arr.data, 0, *value)
        except (struct.error, TypeError, OverflowError):
            arr = None
    packed = arr is not None
    if arr is None:
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise InvalidTypeError(f"{what} must be a sequence of numbers") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise InvalidInputError(f"{what} must be a non-empty 1-d sequence of numbers, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise InvalidInputError(f"{what} has size {arr.shape[0]}, {expects} {dim}")
    if check_values:
        # Fast path: one dot product is finite and non-zero for every usable vector
        # (ndarray.dot: the same BLAS call as @ with less dispatch, cheaper still with cold caches).
        sq = float(arr.dot(arr))
        if not (math.isfinite(sq) and sq > 0.0):
            if not np.isfinite(arr).all():
                raise InvalidInputError(f"{what} contains NaN or infinity")
            if not arr.any():
                raise InvalidInputError(f"{what} is all zeros (cosine similarity is undefined)")
    return arr, packed


def dense_matrix(rows: Sequence[Any], dim: int | None, what: Callable[[int], str]) -> np.ndarray:
    """``rows`` as one checked float32 matrix (see :func:`dense_vector`); ``what(i)`` names row ``i``.

    One numpy conversion and two vectorised checks for the whole batch; only a batch
    that fails them goes row by row, to name the offending row.
    """
    try:
        mat: np.ndarray | None = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        mat = None  # ragged or not numeric
    if mat is None or mat.ndim != 2 or mat.shape[1] == 0 or (dim is not None and mat.shape[1] != dim):
        size = dim
        for i, row in enumerate(rows):
            size = dense_vector(row, what(i), size, check_values=False).shape[0]
        raise AssertionError("unreachable: a dense row failed the batch check")  # pragma: no cover
    bad = ~np.isfinite(mat).all(axis=1)
    if bad.any():
        raise InvalidInputError(f"{what(int(np.argmax(bad)))} contains NaN or infinity")
    zero = ~mat.any(axis=1)
    if zero.any():
        raise InvalidInputError(f"{what(int(np.argmax(zero)))} is all zeros (cosine similarity is undefined)")
    return mat


# ---------------------------------------------------------------------------
# sparse vectors
# ---------------------------------------------------------------------------


def sparse_arrays(vector: Any, what: str) -> tuple[list[int], list[float]]:
    """Token ids and weights of a sparse vector, zero weights dropped; raises naming the bad item.

    ``vector``: a mapping token id -> weight, or an object with ``indices`` and ``values``
    (LangChain's, Qdrant's). Plain int ids and float weights (what models return) take a
    builtins-only path; anything else a vectorised numpy check; only a vector that fails
    it goes item by item, to name the offending token.
    """
    if type(vector) is dict or isinstance(vector, Mapping):  # a dict skips the ABC check
        if not vector:
            return [], []
        keys, vals = list(vector), list(vector.values())
        unique = True
    else:
        indices, values = getattr(vector, "indices", None), getattr(vector, "values", None)
        if indices is None or values is None or callable(values):
            raise InvalidTypeError(
                f"{what} must be a mapping of token id -> weight (or have `indices` and `values`), "
                f"got {type(vector).__name__}"
            )
        keys, vals = list(indices), list(values)
        if len(keys) != len(vals):
            raise InvalidInputError(f"{what}: {len(keys)} indices but {len(vals)} values")
        unique = False
    if is_plain_sparse(keys, vals):
        if not unique:
            _no_repeats(keys, what)
        if 0 in vals:
            kept = [(k, v) for k, v in zip(keys, vals, strict=True) if v != 0]
            return [k for k, _ in kept], [float(v) for _, v in kept]
        return keys, vals if set(map(type, vals)) == {float} else [float(v) for v in vals]
    karr, varr = np.asarray(keys), np.asarray(vals)
    ok = (
        karr.dtype.kind in "iu"
        and varr.dtype.kind in "iuf"
        and bool not in set(map(type, keys))
        and bool not in set(map(type, vals))
        and int(karr.min()) >= 0
        and int(karr.max()) < TOKEN_LIMIT
        and bool(np.isfinite(varr).all())
    )
    if not ok:
        return _sparse_items(keys, vals, what, unique)  # raises naming the offending token
    if not unique:
        _no_repeats(karr.tolist(), what)
    varr = varr.astype(np.float64, copy=False)
    nonzero = varr != 0.0
    if not nonzero.all():
        karr, varr = karr[nonzero], varr[nonzero]
    return karr.tolist(), varr.tolist()


def _no_repeats(keys: list[int], what: str) -> None:
    if len(set(keys)) != len(keys):
        seen: set[int] = set()
        for k in keys:
            if k in seen:
                raise InvalidInputError(f"{what}: sparse index {k} appears twice")
            seen.add(k)


def _sparse_items(keys: list[Any], vals: list[Any], what: str, unique: bool) -> tuple[list[int], list[float]]:
    """Item-by-item check of sparse items (slow; names the offending token)."""
    out: dict[int, float] = {}
    for key, value in zip(keys, vals, strict=True):
        if not isinstance(key, (int, np.integer)) or isinstance(key, bool) or not 0 <= key < TOKEN_LIMIT:
            raise InvalidInputError(
                f"{what}: sparse index {key!r} refused: token ids must be ints in [0, 2**32), got {key!r}"
            )
        if not unique and int(key) in out:
            raise InvalidInputError(f"{what}: sparse index {key} appears twice")
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            raise InvalidTypeError(
                f"{what}: weight of token {key} must be a number, got {type(value).__name__}"
            )
        fval = float(value)
        if not math.isfinite(fval):
            raise InvalidInputError(f"{what}: weight of token {key} is NaN or infinity")
        out[int(key)] = fval
    kept = {k: v for k, v in out.items() if v != 0.0}
    return list(kept), list(kept.values())


# ---------------------------------------------------------------------------
# ColBERT multivectors
# ---------------------------------------------------------------------------


def colbert_vectors(vectors: Any, dim: int | None, what: str = "colbert query vectors") -> np.ndarray:
    """A ColBERT multivector, a query's or a stored document's: 2-d, non-empty, ``dim`` wide, finite."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"{what} must be a 2-d array of numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InvalidInputError(f"{what} must be a non-empty 2-d array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInputError(f"{what} have width {arr.shape[1]}, the collection expects {dim}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{what} contain NaN or infinity")
    return arr
