"""Retry policy for calls to a Qdrant server: transient failures of idempotent calls only.

A call is retried when BOTH hold:

* it is idempotent: repeating it leaves the collection as one success would
  (reads; ``upsert`` — point ids are deterministic, so a repeated upsert writes the
  same points; ``delete`` by ids or filter; payload-index creation). Creating or
  deleting a collection is never retried: a repeat after a lost answer would fail
  or undo the first success. Each client call declares this once, next to the call
  (``ClientCall(..., retry=True)`` in :mod:`shared.backends.remote`); only those calls
  carry a policy (:attr:`shared.steps.Call.retry`).
* the failure is transient: the connection was refused/reset/dropped before an
  answer, or the server said 429/502/503/504. A timeout is NOT retried: ``timeout=``
  is the caller's budget for the call, and a retry would silently multiply it.

Waits grow exponentially (``backoff_s * 2**attempt``, capped at ``max_backoff_s``)
with a little jitter so many clients do not retry in lockstep; a server's
``Retry-After`` (429) is honoured up to ``max_backoff_s``. The decision is the pure
function :func:`retry_delay`, shared by the sync and the async driver.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

#: HTTP statuses that say "try again later" rather than "this request is wrong".
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})

# httpx exception names raised before any answer arrived (the request may be repeated).
_TRANSIENT_HTTPX = frozenset({"ConnectError", "RemoteProtocolError", "ReadError", "WriteError"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure (``attempts`` counts the first try)."""

    attempts: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 1:
            raise InvalidInputError(f"retry attempts must be an int >= 1, got {self.attempts!r}")
        for name in ("backoff_s", "max_backoff_s", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise InvalidInputError(f"retry {name} must be a number >= 0, got {value!r}")


#: Never retry (``retry=NO_RETRY``).
NO_RETRY = RetryPolicy(attempts=1)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure that a later identical request may not meet."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUS
    if type(exc).__name__ == "ResourceExhaustedResponse":  # 429 with Retry-After
        return True
    source = getattr(exc, "source", None)  # qdrant-client wraps httpx errors
    if isinstance(source, BaseException):
        return is_transient(source)
    if type(exc).__name__ in _TRANSIENT_HTTPX:
        return True
    code = getattr(exc, "code", None)  # gRPC
    if callable(code):
        try:
            return getattr(code(), "name", "") in ("UNAVAILABLE", "RESOURCE_EXHAUSTED")
        except Exception:
            return False
    return isinstance(exc, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError))


def retry_delay(policy: RetryPolicy, exc: BaseException, attempt: int, rng: Any = random) -> float | None:
    """Seconds to wait before retrying an idempotent call after failed try ``attempt`` (0-based);
    None: give up."""
    if attempt + 1 >= policy.attempts or not is_transient(exc):
        return None
    delay = min(policy.backoff_s * 2**attempt, policy.max_backoff_s)
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, (int, float)) and retry_after > 0:
        if retry_after > policy.max_backoff_s:
            return None  # the server asks for more patience than we were given
        delay = max(delay, float(retry_after))
    return float(delay * (1.0 + policy.jitter * rng.random()))


def describe_error(exc: BaseException) -> str:
    """A short, specific description of a client failure (never credentials: no headers)."""
    source = getattr(exc, "source", None)
    inner = source if isinstance(source, BaseException) else exc
    name = type(inner).__name__
    text = str(inner).strip()
    if "Timeout" in name or isinstance(inner, TimeoutError):
        kind = "timed out: no answer within the timeout"
    elif name == "ConnectError" or isinstance(inner, ConnectionError):
        kind = "cannot connect"
    elif isinstance(getattr(inner, "status_code", None), int):
        kind = f"HTTP {inner.status_code}"  # type: ignore[attr-defined]
    else:
        kind = "failed"
    return f"{kind} ({name}{': ' + text if text else ''})"


__all__ = [
    "NO_RETRY",
    "RetryPolicy",
    "describe_error",
    "is_transient",
    "retry_delay",
]
