"""Serving: concurrent query encodings share one forward pass (micro-batching).

:class:`MicroBatcher` wraps any core :class:`~shared.types.Encoder`. Calls that arrive
together, from threads (:meth:`MicroBatcher.encode`) or coroutines
(:meth:`MicroBatcher.aencode`), are joined into one ``encode`` call of the wrapped
encoder, which plans its own sub-batches (its ``batch_size`` and ``max_batch_tokens``
are the token budget); each caller gets back exactly its own rows. A store and the
embedding classes batch only an encoder whose ``joins_queries`` is true: a framework's
one-text ``embed_query`` (:class:`~shared.encoders.functions.FunctionEncoder`) gains
nothing from a joined call and would serve its callers one after another.

How a batch forms (no background thread while traffic is one query at a time):

* A call that finds the encoder idle runs at once, in the caller's thread. When
  queries have overlapped within the last :data:`OVERLAP_WINDOW` seconds, it first
  waits up to ``max_wait`` seconds for company (or until ``max_batch`` texts are
  waiting): a lone query never waits, a burst (a fan-out of 4, a busy service) is
  joined.
* A call that arrives while a pass runs waits for it; everything that queued during
  the pass goes as the next batch, run by the batcher's one runner thread (the caller
  that ran the first pass returns as soon as its own rows are ready).
* Coroutines never block the event loop: they wait on a future, and a batch they start
  runs on the runner thread.

Errors are the caller's own: when a joined call fails, each request of the batch is
encoded alone, so a bad request fails by itself and the others get their results.
A cancelled coroutine's request is dropped if its batch has not started; if it has,
the result is discarded. No request can receive another's rows: each owns its future.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInputError, InvalidTypeError
from .readonly import ReadOnly
from .types import EncodeOptions, Encoder, EncodeResult, EncoderIdentity, TextKind
from .validation import non_negative_number, positive_int, text_list

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_WAIT_MS",
    "OVERLAP_WINDOW",
    "MicroBatcher",
    "encode",
    "query_encoder",
    "shared_batcher",
]

#: The store's default ``query_batch_wait_ms`` (:class:`shared.config.StoreConfig`) and the
#: wait of the process-wide batchers: short next to one encode (~20 ms at BGE-M3's shape).
DEFAULT_WAIT_MS = 2.0
#: The store's default ``query_batch_size``: most query texts in one joined call.
DEFAULT_BATCH_SIZE = 32

#: Seconds after two queries last overlapped during which an idle encoder still waits
#: ``max_wait`` for company; outside it a query is encoded at once (a lone query pays nothing).
OVERLAP_WINDOW = 1.0


class _Request:
    __slots__ = ("future", "key", "texts")

    def __init__(self, texts: list[str], key: tuple[Any, ...]) -> None:
        self.texts = texts
        self.key = key
        # Given when the request queues: a lone call that runs at once never needs one.
        self.future: Future[EncodeResult]


def _rows(result: EncodeResult, start: int, stop: int) -> EncodeResult:
    """Rows ``start:stop`` of a joined result, as the caller's own objects."""
    return EncodeResult(
        dense=None if result.dense is None else np.array(result.dense[start:stop], copy=True),
        sparse=None if result.sparse is None else result.sparse[start:stop],
        colbert=None if result.colbert is None else result.colbert[start:stop],
        token_counts=result.token_counts[start:stop],
        truncated=result.truncated[start:stop],
        prompt=result.prompt,
    )


class MicroBatcher:
    """An :class:`~shared.types.Encoder` that joins concurrent small calls into one pass.

    ``max_wait``: seconds an idle encoder waits for more callers once queries overlap
    (0: no batching at all, every call goes straight through). ``max_batch``: most texts
    in one joined call; a call with more texts, or with its own ``batch_size`` /
    ``show_progress``, goes straight through.
    """

    def __init__(self, encoder: Encoder, *, max_wait: float = 0.002, max_batch: int = 32) -> None:
        if not isinstance(encoder, Encoder):
            raise InvalidTypeError(
                f"encoder must implement shared.types.Encoder, got {type(encoder).__name__}"
            )
        non_negative_number(max_wait, "max_wait")
        positive_int(max_batch, "max_batch")
        self._inner = encoder
        self.max_wait = float(max_wait)
        self.max_batch = int(max_batch)
        # The lone path (every query when traffic is one at a time) takes the condition's lock
        # directly: Condition's own ``with`` runs two Python-level calls per enter and exit.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: list[_Request] = []
        self._waiting_texts = 0
        self._busy = False
        self._last_overlap = -OVERLAP_WINDOW - 1.0
        self._runner: ThreadPoolExecutor | None = None
        #: Joined calls made to the wrapped encoder, and the requests they served.
        self.batches = 0
        self.requests = 0

    # -- the Encoder protocol -------------------------------------------------------

    inner: ReadOnly[Encoder] = ReadOnly("_inner", doc="The wrapped encoder.")
    identity: ReadOnly[EncoderIdentity] = ReadOnly("_inner.identity")
    dense_dim: ReadOnly[int | None] = ReadOnly("_inner.dense_dim")
    outputs: ReadOnly[frozenset[str]] = ReadOnly("_inner.outputs")
    forward_passes: ReadOnly[int] = ReadOnly("_inner.forward_passes")
    waiting: ReadOnly[int] = ReadOnly(
        "_waiting_texts", doc="Texts queued for the next joined call (not yet started)."
    )

    def encode(
        self, texts: Sequence[str], kind: TextKind = "document", **options: Unpack[EncodeOptions]
    ) -> EncodeResult:
        """The wrapped encoder's ``encode``, joined with concurrent calls of the same kind and outputs."""
        # A lone call runs at once, as the batch of one it would be (the encoder checks it).
        if self._joins(options.get("batch_size"), options.get("show_progress")) and self._claim_alone():
            # The batch of one that _lead would run, in the caller's thread without the future
            # (the same encode call, so the same rows); calls that queued meanwhile go on as the
            # next batch. Every option goes through: the encoder refuses an unknown one.
            try:
                result = self._inner.encode(texts, kind, **options)
                self.batches += 1
                self.requests += 1
                return result
            finally:
                self._release()
        request = self._request(texts, kind, **options)
        if request is None:
            return self._inner.encode(texts, kind, **options)
        if self._enqueue(request):
            self._lead()
        return request.future.result()

    async def aencode(
        self,
        texts: Sequence[str],
        kind: TextKind = "document",
        *,
        outputs: Sequence[str] | None = None,
    ) -> EncodeResult:
        """:meth:`encode` for a coroutine: waits without blocking the event loop (or a worker thread)."""
        request = self._request(texts, kind, outputs)
        if request is None:
            return await asyncio.to_thread(self._inner.encode, texts, kind, outputs=outputs)
        if self._enqueue(request):
            self._runner_pool().submit(self._lead)
        return await asyncio.wrap_future(request.future)

    def close(self) -> None:
        """Stop the runner thread (pending requests are served first)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"MicroBatcher({self._inner!r}, max_wait={self.max_wait}, max_batch={self.max_batch})"

    # -- internals ------------------------------------------------------------------

    def _request(
        self,
        texts: Sequence[str],
        kind: Any,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> _Request | None:
        """A request to join, or None when the call goes straight through (an unknown option
        is refused here, as the wrapped encoder would refuse it)."""
        if not self._joins(batch_size, show_progress):
            return None
        # Checked here, so a bad call fails alone, in its caller, before it can join a batch.
        items = text_list(texts)
        if not items or len(items) >= self.max_batch:
            return None
        if kind not in ("query", "document"):
            raise InvalidInputError(f"kind must be 'query' or 'document', got {kind!r}")
        if isinstance(outputs, str):
            outputs = [outputs]
        key = (kind, None if outputs is None else tuple(sorted(set(outputs))))
        return _Request(items, key)

    def _joins(self, batch_size: int | None, show_progress: bool | None) -> bool:
        """Whether a call may join others: batching is on and the call sets no batching of its own."""
        return self.max_wait > 0 and batch_size is None and not show_progress

    def _claim_alone(self) -> bool:
        """True when this call may run alone at once: the encoder is idle and queries have not
        overlapped lately (nothing to wait for). It then holds the encoder as a batch would."""
        with self._lock:
            if self._busy or time.monotonic() - self._last_overlap <= OVERLAP_WINDOW:
                return False
            self._busy = True
            return True

    def _runner_pool(self) -> ThreadPoolExecutor:
        with self._cond:
            if self._runner is None:
                self._runner = ThreadPoolExecutor(1, thread_name_prefix="m3-hybrid-microbatch")
            return self._runner

    def _enqueue(self, request: _Request) -> bool:
        """Queue ``request``; True when the caller must start the batch (the encoder was idle)."""
        request.future = Future()
        with self._cond:
            self._pending.append(request)
            self._waiting_texts += len(request.texts)
            if self._busy:
                self._last_overlap = time.monotonic()
                self._cond.notify()
                return False
            self._busy = True
            return True

    def _lead(self) -> None:
        """Run the first batch (after the wait for company), then hand the queue to the runner."""
        try:
            with self._cond:
                now = time.monotonic()
                if now - self._last_overlap <= OVERLAP_WINDOW:
                    deadline = now + self.max_wait
                    while self._waiting_texts < self.max_batch:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                batch = self._take()
            self._run(batch)
        finally:
            self._release()

    def _release(self) -> None:
        """After a first batch: free the encoder, or hand what queued meanwhile to the runner."""
        with self._lock:
            more = bool(self._pending)
            if not more:
                self._busy = False
        if more:
            self._runner_pool().submit(self._drain)

    def _drain(self) -> None:
        """Runner thread: serve whatever queued, batch after batch, until the queue is empty."""
        while True:
            with self._cond:
                batch = self._take()
                if not batch:
                    self._busy = False
                    return
            self._run(batch)

    def _take(self) -> list[_Request]:
        """The next batch (under the lock): the oldest request and those with its kind and
        outputs that fit ``max_batch``. Requests whose caller gave up are dropped."""
        batch: list[_Request] = []
        keep: list[_Request] = []
        size = 0
        for r in self._pending:
            fits = not batch or (r.key == batch[0].key and size + len(r.texts) <= self.max_batch)
            if not fits:
                keep.append(r)
            elif r.future.set_running_or_notify_cancel():
                batch.append(r)
                size += len(r.texts)
        self._pending = keep
        self._waiting_texts = sum(len(r.texts) for r in keep)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """One joined call; every request of ``batch`` gets its rows or its own error."""
        if not batch:
            return
        kind, outputs = batch[0].key
        texts = [t for r in batch for t in r.texts]
        try:
            try:
                result = self._inner.encode(texts, kind, outputs=outputs)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].future.set_exception(exc)
                    return
                # Someone's request failed the joined call: each one alone gets its own outcome.
                for r in batch:
                    try:
                        r.future.set_result(self._inner.encode(r.texts, kind, outputs=outputs))
                    except Exception as own:
                        r.future.set_exception(own)
                return
            self.batches += 1
            self.requests += len(batch)
            start = 0
            for r in batch:
                stop = start + len(r.texts)
                r.future.set_result(_rows(result, start, stop))
                start = stop
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: nobody is left waiting
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
            raise


_SHARED_LOCK = threading.Lock()
#: Where an encoder keeps its process-wide batcher (an attribute, not a weak-keyed map: the
#: batcher refers to its encoder, which would keep a map's key alive forever).
_SHARED_ATTR = "_m3_hybrid_shared_batcher"


def shared_batcher(encoder: Encoder) -> MicroBatcher | None:
    """The process's one default :class:`MicroBatcher` of ``encoder`` (None when the encoder
    object cannot carry it): the stores with default settings and both adapters' embedding
    classes queue their queries there, so all of them share passes."""
    with _SHARED_LOCK:
        batcher = getattr(encoder, _SHARED_ATTR, None)
        if isinstance(batcher, MicroBatcher) and batcher.inner is encoder:
            return batcher
        batcher = MicroBatcher(encoder, max_wait=DEFAULT_WAIT_MS / 1000, max_batch=DEFAULT_BATCH_SIZE)
        try:
            setattr(encoder, _SHARED_ATTR, batcher)
        except (AttributeError, TypeError):  # slots or a frozen object
            return None
        return batcher


def _shares_passes(encoder: Encoder) -> bool:
    """Whether joining ``encoder``'s concurrent query calls shares work (an encoder of the
    protocol that does not say is assumed to, as a model batching its texts does)."""
    return bool(getattr(encoder, "joins_queries", True))


def query_encoder(encoder: Encoder | None, max_wait_ms: float, max_batch: int) -> Encoder | None:
    """What a store encodes queries with: ``encoder`` behind a :class:`MicroBatcher` (the
    process's shared one with the default settings), or as is when ``max_wait_ms`` is 0
    (batching off), there is no encoder, or the encoder embeds one query at a time."""
    if encoder is None or max_wait_ms <= 0 or not _shares_passes(encoder):
        return encoder
    if (max_wait_ms, max_batch) == (DEFAULT_WAIT_MS, DEFAULT_BATCH_SIZE):
        shared = shared_batcher(encoder)
        if shared is not None:
            return shared
    return MicroBatcher(encoder, max_wait=max_wait_ms / 1000, max_batch=max_batch)


def encode(
    encoder: Encoder, texts: Sequence[str], kind: TextKind, **options: Unpack[EncodeOptions]
) -> EncodeResult:
    """An embedding class's encode call: a few query texts join concurrent queries in the
    process's shared batcher; anything else goes straight to ``encoder``."""
    if kind == "query" and len(texts) < DEFAULT_BATCH_SIZE and _shares_passes(encoder):
        batcher = shared_batcher(encoder)
        if batcher is not None:
            return batcher.encode(texts, kind, outputs=options.get("outputs"))
    return encoder.encode(texts, kind, **options)
