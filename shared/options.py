"""Refusing unknown options: one check and one message for every constructor that takes options.

A typo in an option name must fail loudly (``quantisation="int8"`` silently building a
float collection is the bug this prevents), naming the unknown keyword and the nearest
valid one.  The error is :class:`~shared.errors.InvalidTypeError`, a ``TypeError`` like
Python's own "unexpected keyword argument".
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from .errors import InvalidTypeError, M3HybridError

__all__ = ["check_options", "refuse_unknown_keywords", "unknown_option_error"]

P = ParamSpec("P")
R = TypeVar("R")


def unknown_option_error(
    unknown: Iterable[str], valid: Iterable[str], owner: str, error: type[M3HybridError] = InvalidTypeError
) -> M3HybridError:
    """The error for ``unknown`` keywords given to ``owner``, with the nearest valid name of each.

    ``error``: InvalidTypeError (a TypeError, like Python's unexpected keyword) unless a
    class refused extra fields with a ValueError before (pydantic's ``extra="forbid"``).
    """
    choices = sorted(set(valid))
    parts = []
    guessed = True
    for name in sorted(unknown):
        near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        guessed = guessed and bool(near)
        parts.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    # The full list only where no near name was found (it can be 30 names long).
    listing = "" if guessed else f"; valid options: {', '.join(choices)}"
    plural = "s" if len(parts) > 1 else ""
    return error(
        f"{owner} got unknown option{plural} {', '.join(parts)}{listing} "
        "(extra options are refused, not ignored)"
    )


def check_options(
    given: Iterable[str],
    valid: Iterable[str] | frozenset[str],
    owner: str,
    error: type[M3HybridError] = InvalidTypeError,
) -> None:
    """Raise :func:`unknown_option_error` when a name in ``given`` is not in ``valid``."""
    allowed = valid if isinstance(valid, frozenset) else frozenset(valid)
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise unknown_option_error(unknown, allowed, owner, error)


def refuse_unknown_keywords(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function with explicit keywords: an unknown one raises our error, not Python's.

    The signature (and so IDE completion and type checking) is the function's own; the
    check is one set lookup per call.
    """
    params = inspect.signature(func).parameters
    valid = frozenset(n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    owner = func.__qualname__.removesuffix(".__init__")

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not valid.issuperset(kwargs):
            check_options(kwargs, valid - {"self", "cls"}, owner)
        return func(*args, **kwargs)

    return wrapper
