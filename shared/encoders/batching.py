"""Batch planning and thread counts shared by the torch and the ONNX Runtime paths."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import InvalidInputError

__all__ = ["physical_cores", "plan_batches", "validate_max_batch_tokens", "validate_threads"]


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads do not speed up matmuls)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil is optional
        physical = None
    logical = os.cpu_count() or usable
    if physical and logical > physical:
        # Scale the affinity set by the SMT ratio (2 logical per core on most x86).
        usable = max(1, usable * physical // logical)
    return max(1, usable)


def validate_threads(threads: int | None) -> int:
    """``threads`` as a positive int; ``None`` means the physical core count."""
    if threads is None:
        return physical_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a positive int or None, got {threads!r}")
    return threads


def validate_max_batch_tokens(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"max_batch_tokens must be a positive int or None, got {value!r}")
    return value


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches, longest first.

    A batch holds at most ``batch_size`` texts and, when ``max_batch_tokens`` is set, at
    most that many *padded* tokens (rows x longest row), so one long document does not
    drag short ones into a huge padded tensor.  A single text longer than the budget
    gets a batch of its own.  Sorting longest first keeps padding low and makes an
    out-of-memory error show up at once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        n = max(1, lengths[i])
        if current:
            fits_rows = len(current) < batch_size
            fits_tokens = max_batch_tokens is None or (len(current) + 1) * max(width, n) <= max_batch_tokens
            if not (fits_rows and fits_tokens):
                batches.append(current)
                current, width = [], 0
        current.append(i)
        width = max(width, n)
    if current:
        batches.append(current)
    return batches
