"""Remote faults: unreachable and silent servers, and the retry policy.

Only loopback addresses. The "servers" are started by the tests on 127.0.0.1:
a TCP socket that accepts and never answers, and a fault-injection HTTP server
that answers Qdrant's "does the collection exist" request with N failures before
the real answer (qdrant-client parses it as usual), and fails everything else.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from shared.backends import Connection, remote
from shared.errors import BackendError, InvalidInputError, InvalidTypeError
from shared.retry import NO_RETRY, RetryPolicy, is_transient, retry_delay
from shared.store import HybridStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now: connections are refused
    return port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(timeout=5)
    for c in conns:
        c.close()
    srv.close()


class FaultServer:
    """HTTP on 127.0.0.1: ``GET /collections/<c>/exists`` fails ``failures`` times with
    ``status``, then answers "does not exist"; every other request but ``GET /`` fails."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.hits: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                path = self.path.split("?")[0]
                with server.lock:
                    key = (self.command, path)
                    n = server.hits[key] = server.hits.get(key, 0) + 1
                if path == "/":  # qdrant-client's version check
                    self._send(200, {"title": "qdrant", "version": "1.20.0"})
                elif path.endswith("/exists") and n > server.failures:
                    self._send(200, {"result": {"exists": False}, "status": "ok", "time": 0.0})
                else:
                    self._send(server.status, {"status": {"error": "injected failure"}, "time": 0.0})

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, method: str, suffix: str) -> int:
        return sum(n for (m, p), n in self.hits.items() if m == method and p.endswith(suffix))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fault_server() -> Iterator[Any]:
    servers: list[FaultServer] = []

    def make(failures: int, status: int = 503) -> FaultServer:
        servers.append(FaultServer(failures, status))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


# -- unreachable and silent servers ---------------------------------------------------


def test_unreachable_url_is_a_clear_backend_error() -> None:
    port = closed_port()
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        HybridStore("x", url=f"http://127.0.0.1:{port}", timeout=1, dense_dim=4)
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "cannot connect" in msg and "refused" in msg.lower()
    assert elapsed < 5  # a few quick retries of a refused connection, never a hang


async def test_unreachable_url_async_is_a_clear_backend_error() -> None:
    port = closed_port()
    store = HybridStore("x", aclient=AsyncQdrantClient(url=f"http://127.0.0.1:{port}", timeout=1))
    with pytest.raises(BackendError, match="cannot connect"):
        await store.acount()
    await store.aclose()


@pytest.mark.parametrize("timeout", [1, 2])
def test_silent_server_times_out_within_the_timeout(silent_server: str, timeout: int) -> None:
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="timed out") as info:
        HybridStore("x", url=silent_server, timeout=timeout, dense_dim=4)
    elapsed = time.monotonic() - t0
    assert silent_server.split("//")[1] in str(info.value)
    # The timeout is honoured once: not retried (that would multiply the caller's budget).
    assert timeout * 0.9 <= elapsed < timeout * 2


async def test_silent_server_times_out_async(silent_server: str) -> None:
    store = HybridStore("x", aclient=AsyncQdrantClient(url=silent_server, timeout=1))
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        await store.aquery(dense=[1.0, 0.0], mode="dense")
    assert time.monotonic() - t0 < 2
    await store.aclose()


# -- retries through a real qdrant-client against the fault server -----------------


def test_transient_failures_are_retried_then_succeed(fault_server: Any) -> None:
    srv = fault_server(failures=2)
    with HybridStore("x", url=srv.url, timeout=2) as store:
        assert store.count() == 0
    assert srv.count("GET", "/exists") == 3  # two 503s, then the answer


def test_retries_are_bounded(fault_server: Any) -> None:
    srv = fault_server(failures=100)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="503"):
        HybridStore("x", url=srv.url, timeout=2)
    assert srv.count("GET", "/exists") == RetryPolicy().attempts
    assert time.monotonic() - t0 >= RetryPolicy().backoff_s * (1 + 2)  # it did back off


@pytest.mark.parametrize("status", [400, 404, 500])
def test_non_transient_status_is_not_retried(fault_server: Any, status: int) -> None:
    srv = fault_server(failures=100, status=status)
    with pytest.raises(BackendError, match=str(status)):
        HybridStore("x", url=srv.url, timeout=2)
    assert srv.count("GET", "/exists") == 1


def test_non_idempotent_create_is_not_retried(fault_server: Any) -> None:
    srv = fault_server(failures=0)  # "exists" answers at once; creating the collection fails (503)
    with pytest.raises(BackendError, match="creating the collection"):
        HybridStore("x", url=srv.url, timeout=2, dense_dim=4)
    assert srv.count("PUT", "/collections/x") == 1


async def test_async_calls_are_retried_too(fault_server: Any) -> None:
    srv = fault_server(failures=2)
    store = HybridStore("x", aclient=AsyncQdrantClient(url=srv.url, timeout=2))
    assert await store.acount() == 0
    assert srv.count("GET", "/exists") == 3
    await store.aclose()


# -- the policy is configurable on the store and on both adapters ----------------------


def test_store_retry_policy_sets_the_number_of_tries(fault_server: Any) -> None:
    srv = fault_server(failures=4)  # one more failure than the default policy tolerates
    with HybridStore("x", url=srv.url, timeout=2, retry=RetryPolicy(attempts=5, backoff_s=0.01)) as s:
        assert s.count() == 0
    assert srv.count("GET", "/exists") == 5


def test_store_no_retry_fails_on_the_first_transient_error(fault_server: Any) -> None:
    srv = fault_server(failures=1)
    with pytest.raises(BackendError, match="503"):
        HybridStore("x", url=srv.url, timeout=2, retry=NO_RETRY)
    assert srv.count("GET", "/exists") == 1


def test_store_retry_option_is_checked(tmp_path: Any) -> None:
    with pytest.raises(InvalidInputError, match="retry is only used with url"):
        HybridStore("x", path=tmp_path, dense_dim=4, retry=RetryPolicy())
    with pytest.raises(InvalidTypeError, match=r"retry must be a shared\.retry\.RetryPolicy"):
        HybridStore("x", url="http://127.0.0.1:1", retry=3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_llama_index_store_passes_its_retry_policy(fault_server: Any) -> None:
    from llama_index_ext import HybridQdrantVectorStore

    srv = fault_server(failures=4)
    vs = HybridQdrantVectorStore("x", url=srv.url, timeout=2, retry=RetryPolicy(attempts=5, backoff_s=0.01))
    assert srv.count("GET", "/exists") == 5
    assert "retry" not in vs.model_dump()  # a runtime object, like the clients
    vs.close()
    srv2 = fault_server(failures=1)
    with pytest.raises(BackendError, match="503"):
        HybridQdrantVectorStore("x", url=srv2.url, timeout=2, retry=NO_RETRY)
    assert srv2.count("GET", "/exists") == 1


def test_langchain_store_passes_its_retry_policy(fault_server: Any) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_ext import HybridQdrantVectorStore

    emb = DeterministicFakeEmbedding(size=4)  # never called: only the connection is exercised
    srv = fault_server(failures=4)
    vs = HybridQdrantVectorStore(
        emb, collection_name="x", url=srv.url, timeout=2, retry=RetryPolicy(attempts=5, backoff_s=0.01)
    )
    assert srv.count("GET", "/exists") == 5
    vs.close()
    srv2 = fault_server(failures=1)
    with pytest.raises(BackendError, match="503"):
        HybridQdrantVectorStore(emb, collection_name="x", url=srv2.url, timeout=2, retry=NO_RETRY)
    assert srv2.count("GET", "/exists") == 1


# -- the policy itself ---------------------------------------------------------------


def _conn_refused() -> Exception:
    return ResponseHandlingException(httpx.ConnectError("[Errno 111] Connection refused"))


def _status(code: int) -> Exception:
    return UnexpectedResponse(code, "x", b"", httpx.Headers())


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_conn_refused(), True),
        (ResponseHandlingException(httpx.RemoteProtocolError("closed")), True),
        (ResponseHandlingException(httpx.ReadTimeout("timed out")), False),
        (ResponseHandlingException(httpx.ConnectTimeout("timed out")), False),
        (ResponseHandlingException(ValueError("bad json")), False),
        (_status(503), True),
        (_status(502), True),
        (_status(429), True),
        (_status(504), True),
        (_status(500), False),
        (_status(400), False),
        (_status(404), False),
        (ResourceExhaustedResponse("slow down", 1), True),
        (ConnectionResetError(), True),
        (ValueError("x"), False),
    ],
)
def test_transient_classification(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_only_idempotent_client_calls_are_retried() -> None:
    declared = {
        c.name: c.retry for c in vars(remote.RemoteBackend).values() if isinstance(c, remote.ClientCall)
    }
    for method in ("query_points", "retrieve", "count", "upsert", "delete", "collection_exists"):
        assert declared[method] is True
    for method in ("create_collection", "delete_collection", "close", "update_collection"):
        assert declared[method] is False
    # Only the retried calls get the backend's policy.
    backend = remote.RemoteBackend("r", Connection(client=QdrantClient(":memory:")))
    assert next(backend._call("x", remote.RemoteBackend.COUNT, collection_name="r")).retry is not None
    assert next(backend._call("x", remote.RemoteBackend.CREATE_COLLECTION, collection_name="r")).retry is None
    policy = RetryPolicy(attempts=5, backoff_s=0.1, jitter=0.0)
    assert retry_delay(policy, _conn_refused(), 0) == pytest.approx(0.1)


def test_backoff_grows_is_capped_and_bounded() -> None:
    policy = RetryPolicy(attempts=6, backoff_s=0.5, max_backoff_s=3.0, jitter=0.0)
    delays = [retry_delay(policy, _status(503), a) for a in range(6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, None]
    assert retry_delay(NO_RETRY, _status(503), 0) is None


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(backoff_s=1.0, jitter=0.25)
    rng = random.Random(0)
    delays = [retry_delay(policy, _status(503), 0, rng) for _ in range(200)]
    assert all(d is not None and 1.0 <= d <= 1.25 for d in delays)
    assert len(set(delays)) > 100  # clients do not retry in lockstep


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=4.0, jitter=0.0)
    assert retry_delay(policy, ResourceExhaustedResponse("x", 3), 0) == 3.0
    assert retry_delay(policy, ResourceExhaustedResponse("x", 60), 0) is None


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"attempts": 1.5}, {"backoff_s": -1}, {"jitter": float("nan")}]
)
def test_bad_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        RetryPolicy(**kwargs)
