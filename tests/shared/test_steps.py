"""The one step driver (shared.steps): sync and async run the same steps, retries, thread use."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.backends import Connection, open_backend
from shared.backends.edge import EdgeBackend
from shared.backends.remote import RemoteBackend
from shared.errors import InvalidInputError
from shared.layouts import get_layout
from shared.retry import RetryPolicy
from shared.steps import Call, Steps, arun, call, call_async, one_step, run
from shared.store import HybridStore
from shared.types import Record

FAST = RetryPolicy(attempts=3, backoff_s=0.0, jitter=0.0)


class Log:
    """Which callable ran each step, and on which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def blocking(self, x: int, *, scale: int = 1) -> int:
        self.calls.append(("blocking", threading.get_ident()))
        return x * scale

    def twin(self, x: int) -> int:
        self.calls.append(("twin", threading.get_ident()))
        return x + 100

    async def atwin(self, x: int) -> int:
        self.calls.append(("atwin", threading.get_ident()))
        return x + 100

    def fail(self, x: int) -> int:
        self.calls.append(("fail", threading.get_ident()))
        raise ValueError(f"bad {x}")


def operation(log: Log, xs: list[int]) -> Steps[list[Any]]:
    out: list[Any] = []
    for x in xs:
        out.append((yield call(log.blocking, x, scale=3)))
        out.append((yield call_async(log.twin, log.atwin, x)))
        try:
            yield call(log.fail, x)
        except ValueError as exc:  # the step's error is thrown in at its yield
            out.append(f"caught {exc}")
    return out


def test_sync_and_async_run_the_same_steps_to_the_same_result() -> None:
    sync_log, async_log = Log(), Log()
    main = threading.get_ident()
    expected = [6, 102, "caught bad 2", 15, 105, "caught bad 5"]
    assert run(operation(sync_log, [2, 5])) == expected

    async def go() -> list[Any]:
        return await arun(operation(async_log, [2, 5]))

    assert asyncio.run(go()) == expected
    # Sync: every step on the caller's thread, the plain callables only.
    assert [name for name, _ in sync_log.calls] == ["blocking", "twin", "fail"] * 2
    assert {tid for _, tid in sync_log.calls} == {main}
    # Async: the same steps in the same order; the native twin awaited on the loop's
    # thread, blocking callables in worker threads.
    assert [name for name, _ in async_log.calls] == ["blocking", "atwin", "fail"] * 2
    for name, tid in async_log.calls:
        assert (tid == main) == (name == "atwin"), name


def test_an_uncaught_step_error_reaches_the_caller_and_closes_the_operation() -> None:
    closed: list[str] = []

    def op(log: Log) -> Steps[int]:
        try:
            return (yield call(log.fail, 7))
        finally:
            closed.append("done")

    with pytest.raises(ValueError, match="bad 7"):
        run(op(Log()))
    with pytest.raises(ValueError, match="bad 7"):
        asyncio.run(arun(op(Log())))
    assert closed == ["done", "done"]


def test_a_cancelled_async_run_closes_the_operation() -> None:
    closed: list[str] = []

    def op(gate: Any) -> Steps[None]:
        try:
            yield call_async(lambda: None, gate)
        finally:
            closed.append("closed")

    async def go() -> None:
        entered = asyncio.Event()

        async def forever() -> None:
            entered.set()
            await asyncio.sleep(3600)

        task = asyncio.create_task(arun(op(forever)))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert closed == ["closed"]


class Flaky:
    """Fails ``failures`` times with ``exc``, then answers."""

    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures = failures
        self.exc = exc
        self.tries = 0

    def __call__(self) -> str:
        self.tries += 1
        if self.tries <= self.failures:
            raise self.exc
        return "ok"

    async def native(self) -> str:
        return self()


def _one(step: Call[str]) -> Steps[str]:
    result: str = yield step
    return result


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("native", [False, True])
def test_transient_failures_of_idempotent_calls_are_retried(asynchronous: bool, native: bool) -> None:
    def attempt(failures: int, name: str, exc: Exception, idempotent: bool = True) -> tuple[Any, int]:
        flaky = Flaky(failures, exc)
        # Only a call declared safe to repeat carries a policy (remote.ClientCall(..., retry=True)).
        policy = FAST if idempotent else None
        step = Call(flaky, afn=flaky.native if native else None, retry=policy, name=name)
        try:
            result: Any = asyncio.run(arun(_one(step))) if asynchronous else run(_one(step))
        except Exception as e:
            result = e
        return result, flaky.tries

    refused = ConnectionRefusedError("refused")
    assert attempt(2, "query_points", refused) == ("ok", 3)
    # Out of attempts: the last failure is raised.
    result, tries = attempt(3, "query_points", refused)
    assert result is refused and tries == 3
    # Not idempotent (a repeat could undo a lost success): never retried.
    result, tries = attempt(1, "create_collection", refused, idempotent=False)
    assert result is refused and tries == 1
    # Not transient: the request itself is wrong.
    wrong = ValueError("bad request")
    result, tries = attempt(1, "query_points", wrong)
    assert result is wrong and tries == 1


def test_a_call_without_a_retry_policy_is_never_retried() -> None:
    flaky = Flaky(1, ConnectionRefusedError("refused"))
    with pytest.raises(ConnectionRefusedError):
        run(_one(Call(flaky, name="query_points")))
    assert flaky.tries == 1


def test_the_remote_backend_retries_its_client_calls_under_its_policy() -> None:
    backend = RemoteBackend("r", Connection(client=QdrantClient(":memory:"), retry=FAST))
    real = backend._client.collection_exists  # type: ignore[union-attr]
    failures = [ConnectionResetError("reset")]

    def flaky(**kwargs: Any) -> bool:
        if failures:
            raise failures.pop()
        return bool(real(**kwargs))

    backend._client.collection_exists = flaky  # type: ignore[method-assign,union-attr]
    assert run(backend.read_guard()) is None
    assert failures == []
    run(backend.close())


# -- the embedded backend on the async path ---------------------------------------------


def _records(n: int, dim: int = 8) -> list[Record]:
    rng = np.random.default_rng(3)
    return [
        Record(id=f"r{i}", text=f"t{i}", dense=rng.normal(size=dim).tolist(), sparse={i + 1: 1.0})
        for i in range(n)
    ]


def test_embedded_calls_do_not_block_the_event_loop() -> None:
    """An engine call of ``aquery`` waits until another coroutine on the loop has run: that
    can only happen when the call runs in a worker thread, not on the loop's thread."""
    store = HybridStore("nb", dense_dim=8)
    store.add(_records(20))
    backend = store._backend
    assert isinstance(backend, EdgeBackend)
    real = EdgeBackend.query.__wrapped__  # type: ignore[attr-defined]  # the blocking engine call
    loop_ran = threading.Event()
    threads: list[int] = []

    def query(plan: Any) -> Any:
        threads.append(threading.get_ident())
        assert loop_ran.wait(timeout=30), "the loop was blocked while the engine call ran"
        return real(backend, plan)

    backend.query = one_step(query)  # type: ignore[method-assign]

    async def go() -> tuple[Any, ...]:
        async def other() -> None:
            await asyncio.sleep(0)
            loop_ran.set()

        return tuple(await asyncio.gather(store.aquery(dense=_records(1)[0].dense, mode="dense"), other()))

    hits, _ = asyncio.run(go())
    assert threads and threads[0] != threading.get_ident()
    assert [h.id for h in hits] == [h.id for h in store.query(dense=_records(1)[0].dense, mode="dense")]
    store.close()


def test_sync_and_async_store_operations_give_the_same_answers() -> None:
    with HybridStore("sa", dense_dim=8) as a, HybridStore("sb", dense_dim=8) as b:
        recs = _records(30)
        q = recs[4].dense

        async def go() -> tuple[Any, ...]:
            await b.aadd(recs)
            return (
                await b.aquery(dense=q, sparse={5: 1.0}, limit=5),
                await b.ammr(dense=q, limit=3, fetch_k=10),
                await b.aget(["r3", "r1"]),
                await b.acount(),
                await b.ascroll(limit=4),
            )

        a.add(recs)
        hits, diverse, got, count, page = asyncio.run(go())
        assert [(h.id, h.score) for h in hits] == [
            (h.id, h.score) for h in a.query(dense=q, sparse={5: 1.0}, limit=5)
        ]
        assert [h.id for h in diverse] == [h.id for h in a.mmr(dense=q, limit=3, fetch_k=10)]
        assert [r.id for r in got] == [r.id for r in a.get(["r3", "r1"])]
        assert count == a.count() == 30
        assert [r.id for r in page] == [r.id for r in a.scroll(limit=4)]


# -- backend choice -----------------------------------------------------------------------


def test_open_backend_chooses_by_the_options_given(tmp_path: Any) -> None:
    edge = open_backend("c", Connection(path=tmp_path))
    assert isinstance(edge, EdgeBackend) and not edge.is_remote
    run(edge.close())
    remote = open_backend("c", Connection(client=QdrantClient(":memory:"), retry=FAST))
    assert isinstance(remote, RemoteBackend) and remote.is_remote
    run(remote.close())


@pytest.mark.parametrize(
    ("connection", "kwargs", "message"),
    [
        (Connection(path="x", url="http://127.0.0.1:9"), {}, "either path"),
        (Connection(url="http://127.0.0.1:9"), {"compact_every": 10}, "compact_every"),
        (Connection(api_key="k"), {}, "api_key"),
        (Connection(retry=FAST), {}, "retry"),
        (Connection(), {"layout": get_layout("langchain")}, "qdrant-client"),
    ],
)
def test_open_backend_refuses_options_of_the_other_kind(
    connection: Connection, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        open_backend("c", connection, **kwargs)
