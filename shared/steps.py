"""The one step driver: every operation is written once and run sync or async.

An operation (the store's ``add``/``query``, a backend's client round trips, an
adapter's search) is a generator of steps. Each step is a :class:`Call`: a bound
callable and its arguments, checked by mypy where it is built (:func:`call`,
:func:`call_async`), never a method name. The generator receives each call's
result (or its exception, thrown in at the ``yield``, so it can add context or
finish up) and returns the operation's result.

:func:`run` executes the calls in the current thread. :func:`arun` executes the same
generator on the event loop: a call with a native coroutine function (``afn``:
``AsyncQdrantClient``'s methods, ``HybridStore.aquery``, ``Embeddings.aembed_query``)
is awaited; any other call (Qdrant Edge, which blocks and holds the GIL; encoding; a
sync-only client) runs in a worker thread (``asyncio.to_thread``), so the loop never
blocks on it. That is the only difference between the two runners.

A call may carry a :class:`~shared.retry.RetryPolicy`: both runners then retry its
transient failures as :func:`~shared.retry.retry_delay` decides. Only a call declared
safe to repeat carries one (each backend declares that next to the call:
:func:`one_step` for the embedded engine, ``ClientCall`` in :mod:`shared.backends.remote`).

There is one driver: the store. A backend is a library of operations (each a
generator of its engine calls, usually one); the store's operations ``yield from``
them, and the adapters call the store's sync or async method directly.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from .retry import RetryPolicy, describe_error, retry_delay

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")

_NO_KWARGS: Mapping[str, Any] = {}


# Not frozen: a frozen dataclass's __init__ costs ~1 µs more, on every step of every query.
@dataclass(slots=True)
class Call(Generic[R]):
    """One step: ``fn(*args, **kwargs)``; on the async runner ``await afn(...)`` when given.

    ``name`` names the call in log lines (default: ``fn``'s name). ``retry``: the policy for
    transient failures, given only to a call that is safe to repeat.
    Built by :func:`call`/:func:`call_async` (or a backend); treated as immutable.
    """

    fn: Callable[..., R]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    afn: Callable[..., Awaitable[R]] | None = None
    retry: RetryPolicy | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or getattr(self.fn, "__name__", type(self.fn).__name__)


#: An operation: yields calls, receives their results, returns ``T``.
Steps = Generator[Call[Any], Any, T]


def call(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Call[R]:
    """A blocking call (the async runner runs it in a worker thread)."""
    return Call(fn, args, kwargs or _NO_KWARGS)


def call_async(
    fn: Callable[P, R], afn: Callable[P, Awaitable[R]] | None, /, *args: P.args, **kwargs: P.kwargs
) -> Call[R]:
    """A call with a native async form ``afn`` (same arguments), awaited by the async runner.

    ``afn=None``: there is none, the async runner runs ``fn`` in a worker thread.
    """
    return Call(fn, args, kwargs or _NO_KWARGS, afn)


def one_step(fn: Callable[P, R]) -> Callable[P, Steps[R]]:
    """Declare a blocking engine call as an operation of one step (no async twin, never retried).

    For an in-process engine (Qdrant Edge): the sync runner calls ``fn`` in place, the async
    runner in a worker thread; in-process calls have no transient failures to retry.
    The wrapped function stays reachable as ``__wrapped__``.
    """

    @functools.wraps(fn)
    def operation(*args: P.args, **kwargs: P.kwargs) -> Steps[R]:
        result: R = yield Call(fn, args, kwargs or _NO_KWARGS)
        return result

    return operation


def _retry_wait(step: Call[Any], exc: Exception, attempt: int) -> float | None:
    if step.retry is None:
        return None
    delay = retry_delay(step.retry, exc, attempt)
    if delay is not None:
        logger.warning(
            "%s failed (%s); retry %d in %.2f s", step.label, describe_error(exc), attempt + 1, delay
        )
    return delay


def _invoke(step: Call[Any]) -> tuple[Any, Exception | None]:
    """The call's (result, None), or (None, its error) once retries are spent."""
    attempt = 0
    while True:
        try:
            return step.fn(*step.args, **step.kwargs), None
        except Exception as exc:
            delay = _retry_wait(step, exc, attempt)
            if delay is None:
                return None, exc
            time.sleep(delay)
            attempt += 1


async def _ainvoke(step: Call[Any]) -> tuple[Any, Exception | None]:
    """:func:`_invoke` on the event loop: ``afn`` awaited, else ``fn`` in a worker thread."""
    attempt = 0
    while True:
        try:
            if step.afn is not None:
                return await step.afn(*step.args, **step.kwargs), None
            return await asyncio.to_thread(step.fn, *step.args, **step.kwargs), None
        except Exception as exc:
            delay = _retry_wait(step, exc, attempt)
            if delay is None:
                return None, exc
            await asyncio.sleep(delay)
            attempt += 1


def _resume(steps: Steps[Any], result: Any, error: Exception | None) -> Call[Any]:
    """The operation's next call, after its last call's result is sent in or its error thrown in
    (the operation sees its calls' errors, to add context or finish up)."""
    if error is None:
        return steps.send(result)
    return steps.throw(error)


def run(steps: Steps[T]) -> T:
    """Run an operation in this thread."""
    try:
        step = next(steps)
        while True:
            step = _resume(steps, *_invoke(step))
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()


async def arun(steps: Steps[T]) -> T:
    """Run the same operation on the event loop (blocking calls in a worker thread)."""
    try:
        step = next(steps)
        while True:
            step = _resume(steps, *await _ainvoke(step))
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()


# -- a public sync/async method pair from one operation ----------------------------------


def run_method(steps: Callable[Concatenate[S, P], Steps[T]]) -> Callable[Concatenate[S, P], T]:
    """The method that runs the operation ``steps`` (a ``_NAME_steps`` method) as ``NAME``.

    With :func:`arun_method` a public sync/async pair is written once: the operation's
    signature and docstring are the pair's, for type checkers and ``help()`` alike.
    """

    def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return run(steps(self, *args, **kwargs))

    return _named(method, steps, "")


def arun_method(
    steps: Callable[Concatenate[S, P], Steps[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The coroutine method that runs the operation ``steps`` on the event loop, as ``aNAME``."""

    async def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await arun(steps(self, *args, **kwargs))

    return _named(method, steps, "a")


def _named(method: Callable[..., Any], steps: Callable[..., Any], prefix: str) -> Any:
    """``method`` named after ``steps`` (``_scroll_steps`` -> ``scroll``), with its docstring and
    its signature (the operation's result type in place of ``Steps[...]``)."""
    name = steps.__name__
    if not (name.startswith("_") and name.endswith("_steps")):
        raise TypeError(f"an operation method is named _NAME_steps, got {name}")
    functools.update_wrapper(method, steps)
    method.__name__ = prefix + name[1 : -len("_steps")]
    method.__qualname__ = f"{steps.__qualname__.rpartition('.')[0]}.{method.__name__}".lstrip(".")
    signature = inspect.signature(steps)
    result = signature.return_annotation
    if isinstance(result, str) and result.startswith("Steps[") and result.endswith("]"):
        signature = signature.replace(return_annotation=result[len("Steps[") : -1])
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


__all__ = ["Call", "Steps", "arun", "arun_method", "call", "call_async", "one_step", "run", "run_method"]
