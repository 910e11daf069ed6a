"""One code path for sync and async: operations are written once as generators of calls.

An operation (add, search, ...) is a generator that yields :class:`Call` objects for the
I/O it needs (embedding a query, querying the store) and returns its result.  The sync
driver runs each call with the plain method, the async driver with the ``a``-prefixed
method when the target has one (the core store and LangChain embeddings do), else the
plain method in LangChain's executor.  The planning and translation between the calls
is therefore shared, not duplicated.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.runnables.config import run_in_executor

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """``target.method(*args, **kwargs)``, or its ``a``-prefixed async twin."""

    target: Any
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


Steps = Generator[Call, Any, T]


def run_sync(steps: Steps[T]) -> T:
    """Run an operation with the targets' sync methods."""
    try:
        call = next(steps)
        while True:
            result = getattr(call.target, call.method)(*call.args, **call.kwargs)
            call = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        steps.close()


async def run_async(steps: Steps[T]) -> T:
    """Run an operation with the targets' async methods (worker thread when there is none)."""
    try:
        call = next(steps)
        while True:
            native = getattr(call.target, "a" + call.method, None)
            if native is not None:
                result = await native(*call.args, **call.kwargs)
            else:
                result = await run_in_executor(
                    None, getattr(call.target, call.method), *call.args, **call.kwargs
                )
            call = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        steps.close()
