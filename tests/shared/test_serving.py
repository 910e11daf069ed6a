"""Micro-batching of concurrent queries (shared.serving) and HybridStore.query_batch (issue 19).

Batched results must be what each caller gets alone: the same vectors (within 1e-6: a
joined pass pads shorter texts, which moves float32 results by ~1e-7) and the same hits,
for every mode and fusion, from threads and from coroutines; a failing caller fails
alone; a cancelled caller never takes or spoils another's result.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.encoders import load_encoder
from shared.errors import InvalidInputError, InvalidTypeError
from shared.serving import MicroBatcher, query_encoder, shared_batcher
from shared.store import HybridStore
from shared.types import Encoder, EncodeResult, EncoderIdentity, Hit, TextKind
from tests.support.checkpoint import sample_corpus

QUERIES = [
    "what does a dense vector capture",
    "quantization of large collections",
    "the quick brown fox",
    "who wrote the novel about the sea",
    "capital of France",
    "history of the city by the river",
    "how do search engines rank passages",
    "scientists measure light",
]
MODES = [
    ("dense", None),
    ("sparse", None),
    ("hybrid", "rrf"),
    ("hybrid", "dbsf"),
    ("hybrid", "m3"),
]


class Gated:
    """A real encoder whose calls can be held at a gate (to line callers up deterministically);
    a text "boom" makes a call fail, like a model error on one input."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []

    @property
    def identity(self) -> EncoderIdentity:
        return self.inner.identity

    @property
    def dense_dim(self) -> int | None:
        return self.inner.dense_dim

    @property
    def outputs(self) -> frozenset[str]:
        return self.inner.outputs

    @property
    def forward_passes(self) -> int:
        return self.inner.forward_passes

    def encode(
        self,
        texts: Sequence[str],
        kind: TextKind = "document",
        *,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> EncodeResult:
        self.calls.append(list(texts))
        self.entered.set()
        assert self.gate.wait(30)
        if "boom" in texts:
            raise InvalidInputError("the model failed on 'boom'")
        return self.inner.encode(texts, kind, outputs=outputs, batch_size=batch_size, show_progress=False)


def same_vectors(got: EncodeResult, alone: EncodeResult) -> None:
    assert got.token_counts == alone.token_counts
    if alone.dense is not None:
        assert got.dense is not None and got.dense.shape == alone.dense.shape
        np.testing.assert_allclose(got.dense, alone.dense, atol=1e-6)
    if alone.sparse is not None:
        assert got.sparse is not None
        for g, a in zip(got.sparse, alone.sparse, strict=True):
            assert set(g) == set(a)
            np.testing.assert_allclose([g[k] for k in a], list(a.values()), atol=1e-6)
    if alone.colbert is not None:
        assert got.colbert is not None
        for g, a in zip(got.colbert, alone.colbert, strict=True):
            np.testing.assert_allclose(g, a, atol=1e-6)


def close(a: float, b: float) -> bool:
    """Within 1e-6 for cosine and rank (rrf) scores; sparse dot products (SPLADE, up to ~20) differ
    in float32 by a few parts in 1e6 between a padded joined pass and a lone one: 1e-5 relative."""
    return abs(a - b) <= max(1e-6, 1e-5 * abs(b))


def same_hits(got: list[Hit], alone: list[Hit]) -> None:
    """Same ids with the same scores (within 1e-6), ranked the same (exact score ties in any order)."""
    assert len(got) == len(alone)
    mine = {h.id: h.score for h in got}
    assert set(mine) == {h.id for h in alone}
    for g, a in zip(got, alone, strict=True):
        assert close(g.score, a.score) and close(mine[a.id], a.score)


@pytest.fixture(scope="module")
def bge(tiny_bge_m3_dir: Path) -> Encoder:
    # No result cache: a joined pass must really compute, not replay the lone call's vectors.
    return load_encoder(tiny_bge_m3_dir, show_progress=False, cache_size=0)


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, splade_dir: Path
) -> Iterator[HybridStore]:
    enc = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False, cache_size=0)
    s = HybridStore("serving", encoder=enc, path=tmp_path_factory.mktemp("serving"), query_batch_wait_ms=20)
    texts = sample_corpus()[:60]
    s.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
    yield s
    s.close()


# -- the micro-batcher -----------------------------------------------------------


def test_concurrent_calls_share_one_pass_and_get_their_own_rows(bge: Encoder) -> None:
    gated = Gated(bge)
    batcher = MicroBatcher(gated, max_wait=0.05)
    outputs = ["dense", "sparse", "colbert"]
    texts = [[q] for q in QUERIES[:6]] + [QUERIES[6:8]]  # one caller sends two texts
    gated.gate.clear()
    with ThreadPoolExecutor(len(texts)) as pool:
        first = pool.submit(batcher.encode, texts[0], "query", outputs=outputs)
        assert gated.entered.wait(30)  # the first call runs at once (the encoder was idle) ...
        rest = [pool.submit(batcher.encode, t, "query", outputs=outputs) for t in texts[1:]]
        deadline = time.monotonic() + 30
        while batcher.waiting < 7 and time.monotonic() < deadline:  # ... the others queue behind it
            time.sleep(0.005)
        gated.gate.set()
        results = [first.result(30)] + [f.result(30) for f in rest]
    # Two passes: the first caller alone, then everyone who queued during it.
    assert gated.calls == [texts[0], [t for ts in texts[1:] for t in ts]]
    assert (batcher.batches, batcher.requests) == (2, len(texts))
    for t, got in zip(texts, results, strict=True):
        same_vectors(got, bge.encode(t, "query", outputs=outputs))


def test_a_lone_call_runs_at_once_in_its_thread_and_frees_the_encoder_even_when_it_fails(
    bge: Encoder,
) -> None:
    seen: list[int] = []

    class Where(Gated):
        def encode(self, texts: Sequence[str], kind: TextKind = "document", **kw: Any) -> EncodeResult:
            seen.append(threading.get_ident())
            return super().encode(texts, kind, **kw)

    batcher = MicroBatcher(Where(bge), max_wait=30.0)
    same_vectors(batcher.encode(["alone"], "query"), bge.encode(["alone"], "query"))
    with pytest.raises(InvalidInputError, match="boom"):
        batcher.encode(["boom"], "query")
    assert (batcher.batches, batcher.requests) == (1, 1)  # a failed call serves nobody
    # The failure released the encoder: the next call (another thread) runs at once, in that thread.
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(lambda: (threading.get_ident(), batcher.encode(["again"], "query")))
        ident, got = other.result(30)
    same_vectors(got, bge.encode(["again"], "query"))
    assert seen == [threading.get_ident(), threading.get_ident(), ident]
    assert (batcher.batches, batcher.requests, batcher.waiting) == (2, 2, 0)


def test_an_unknown_option_is_refused_alone_and_joined(bge: Encoder) -> None:
    batcher = MicroBatcher(bge, max_wait=0.05)
    with pytest.raises(TypeError, match="outptus"):
        batcher.encode(["a lone call"], "query", outptus=["sparse"])  # type: ignore[call-arg]
    batcher._last_overlap = time.monotonic()  # queries overlapped just now: the call joins
    with pytest.raises(TypeError, match="outptus"):
        batcher.encode(["a joining call"], "query", outptus=["sparse"])  # type: ignore[call-arg]
    batcher.close()


def test_a_failing_caller_fails_alone(bge: Encoder) -> None:
    gated = Gated(bge)
    batcher = MicroBatcher(gated, max_wait=0.05)
    gated.gate.clear()
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.encode, ["first"], "query")
        assert gated.entered.wait(30)
        calls = {t: pool.submit(batcher.encode, [t], "query") for t in ("alpha", "boom", "gamma", "delta")}
        deadline = time.monotonic() + 30
        while batcher.waiting < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        # Bad input is refused in its caller's thread before it can join anyone's batch.
        with pytest.raises(InvalidTypeError):
            batcher.encode([3], "query")  # type: ignore[list-item]
        gated.gate.set()
        same_vectors(first.result(30), bge.encode(["first"], "query"))
        with pytest.raises(InvalidInputError, match="boom"):
            calls.pop("boom").result(30)
        for text, fut in calls.items():
            same_vectors(fut.result(30), bge.encode([text], "query"))


def test_calls_with_other_outputs_or_kinds_are_not_mixed(bge: Encoder) -> None:
    gated = Gated(bge)
    batcher = MicroBatcher(gated, max_wait=0.05)
    gated.gate.clear()
    asks: list[tuple[str, TextKind, list[str]]] = [
        ("first", "query", ["dense"]),
        ("a", "query", ["dense"]),
        ("b", "query", ["sparse"]),
        ("c", "document", ["dense"]),
        ("d", "query", ["dense"]),
    ]
    with ThreadPoolExecutor(len(asks)) as pool:
        futs = [pool.submit(batcher.encode, [asks[0][0]], asks[0][1], outputs=asks[0][2])]
        assert gated.entered.wait(30)
        futs += [pool.submit(batcher.encode, [t], k, outputs=o) for t, k, o in asks[1:]]
        deadline = time.monotonic() + 30
        while batcher.waiting < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        gated.gate.set()
        results = [f.result(30) for f in futs]
    assert sorted(map(sorted, gated.calls)) == [["a", "d"], ["b"], ["c"], ["first"]]
    for (text, kind, outputs), got in zip(asks, results, strict=True):
        assert (got.dense is None) == ("dense" not in outputs)
        assert (got.sparse is None) == ("sparse" not in outputs)
        same_vectors(got, bge.encode([text], kind, outputs=outputs))


async def test_a_cancelled_coroutine_loses_nothing_for_the_others(bge: Encoder) -> None:
    gated = Gated(bge)
    batcher = MicroBatcher(gated, max_wait=0.05)
    gated.gate.clear()
    first = asyncio.ensure_future(batcher.aencode(["first"], "query"))
    assert await asyncio.to_thread(gated.entered.wait, 30)
    # Queued behind the running pass: one caller gives up before its batch starts ...
    tasks = [asyncio.ensure_future(batcher.aencode([t], "query")) for t in ("alpha", "beta", "gamma")]
    while batcher.waiting < 3:
        await asyncio.sleep(0.005)
    tasks[1].cancel()
    gated.gate.set()
    same_vectors(await first, bge.encode(["first"], "query"))
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    for text, task in (("alpha", tasks[0]), ("gamma", tasks[2])):
        same_vectors(await task, bge.encode([text], "query"))
    assert gated.calls[1] == ["alpha", "gamma"]  # the cancelled request was dropped, not computed

    # ... and one gives up while its batch runs: the others still get their own rows.
    gated.entered.clear()
    gated.gate.clear()
    lead = asyncio.ensure_future(batcher.aencode(["lead"], "query"))
    assert await asyncio.to_thread(gated.entered.wait, 30)
    gated.entered.clear()
    joined = [asyncio.ensure_future(batcher.aencode([t], "query")) for t in ("one", "two", "three")]
    while batcher.waiting < 3:
        await asyncio.sleep(0.005)
    gated.gate.set()
    assert await asyncio.to_thread(gated.entered.wait, 30)  # the joined pass has started
    joined[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await joined[0]
    same_vectors(await lead, bge.encode(["lead"], "query"))
    for text, task in (("two", joined[1]), ("three", joined[2])):
        same_vectors(await task, bge.encode([text], "query"))


def test_a_lone_query_does_not_wait_and_zero_turns_batching_off(bge: Encoder) -> None:
    batcher = MicroBatcher(bge, max_wait=30.0)
    t = time.perf_counter()
    same_vectors(batcher.encode(["alone"], "query"), bge.encode(["alone"], "query"))
    assert time.perf_counter() - t < 15  # no overlap seen: encoded at once, not after max_wait
    assert query_encoder(bge, 0.0, 32) is bge  # 0: off
    # The default settings share the process's batcher (with other stores and the embedding classes).
    assert query_encoder(bge, 2.0, 32) is shared_batcher(bge)
    own = query_encoder(bge, 5.0, 32)
    assert isinstance(own, MicroBatcher) and own is not shared_batcher(bge) and own.max_wait == 0.005
    with pytest.raises(InvalidInputError, match="query_batch_wait_ms"):
        HybridStore("bad", encoder=bge, query_batch_wait_ms=-1)
    with pytest.raises(InvalidInputError, match="query_batch_size"):
        HybridStore("bad", encoder=bge, query_batch_size=0)


def test_a_one_text_query_model_is_called_side_by_side_not_queued(bge: Encoder, tmp_path: Path) -> None:
    """A framework's embed_query (one text a call: a FunctionEncoder) gets no batcher: two
    concurrent queries are inside the model at the same moment (a batcher would hold the second
    until the first returned, and the barrier below would break), in the store and in the
    embedding classes' encode path alike."""
    from shared.encoders.functions import encoder_from_functions, pair_encoders
    from shared.serving import encode

    barrier = threading.Barrier(2, timeout=10)

    def query(text: str) -> dict[int, float]:
        barrier.wait()  # both callers must be here at once
        return {len(text): 1.0}

    def documents(texts: list[str]) -> list[dict[int, float]]:
        return [{len(t): 1.0} for t in texts]

    sparse = encoder_from_functions(model_id="one-at-a-time", sparse_documents=documents, sparse_query=query)
    assert not sparse.joins_queries and query_encoder(sparse, 2.0, 32) is sparse
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda t: encode(sparse, [t], "query").sparse, ["ab", "abc"]))
    assert got == [[{2: 1.0}], [{3: 1.0}]]
    store = HybridStore("side", path=tmp_path / "s", encoder=sparse, retrieval_mode="sparse")
    store.add_texts(["ab", "abc"], ids=["a", "b"])
    with ThreadPoolExecutor(2) as pool:
        hits = list(pool.map(lambda t: store.query(t, limit=1), ["xy", "xyz"]))
    assert [h[0].id for h in hits] == ["a", "b"]
    store.close()
    # Paired with a model that batches its texts, the pair is batched (that half shares passes).
    pair = pair_encoders(bge, sparse)
    assert pair is not None and isinstance(query_encoder(pair, 2.0, 32), MicroBatcher)


# -- the store: batched results identical to one by one --------------------------


@pytest.mark.parametrize(("mode", "fusion"), MODES)
async def test_batched_queries_match_one_by_one(store: HybridStore, mode: str, fusion: str | None) -> None:
    opts: dict[str, Any] = {"mode": mode, "limit": 8}
    if fusion is not None:
        opts["fusion"] = fusion
    alone = [store.query(q, **opts) for q in QUERIES]  # one at a time: never joined
    batcher = store._query_encoder
    assert isinstance(batcher, MicroBatcher)
    before = batcher.requests
    with ThreadPoolExecutor(len(QUERIES)) as pool:
        threaded = list(pool.map(lambda q: store.query(q, **opts), QUERIES))
    gathered = await asyncio.gather(*(store.aquery(q, **opts) for q in QUERIES))
    assert batcher.requests - before == 2 * len(QUERIES)  # every threaded and gathered query went through it
    for results in (store.query_batch(QUERIES, **opts), await store.aquery_batch(QUERIES, **opts)):
        for got, ref in zip(results, alone, strict=True):
            same_hits(got, ref)
    for got, ref in zip(threaded, alone, strict=True):
        same_hits(got, ref)
    for got, ref in zip(gathered, alone, strict=True):
        same_hits(got, ref)


async def test_coroutines_under_gather_share_passes(store: HybridStore) -> None:
    batcher = store._query_encoder
    assert isinstance(batcher, MicroBatcher)
    batches, requests = batcher.batches, batcher.requests
    await asyncio.gather(*(store.aquery(q) for q in QUERIES))
    # The coroutines queue on the event loop while the first pass runs: far fewer passes than queries.
    assert batcher.requests - requests == len(QUERIES)
    assert batcher.batches - batches < len(QUERIES)


async def test_mixed_failing_and_succeeding_store_callers(store: HybridStore) -> None:
    calls = [store.aquery(q) for q in QUERIES[:3]]
    bad = [store.aquery(QUERIES[3], mode="nope"), store.aquery(7)]  # type: ignore[call-overload, arg-type]
    results = await asyncio.gather(*calls[:2], bad[0], calls[2], bad[1], return_exceptions=True)
    assert isinstance(results[2], InvalidInputError) and isinstance(results[4], InvalidTypeError)
    for got, q in zip([results[0], results[1], results[3]], QUERIES[:3], strict=True):
        assert isinstance(got, list)
        same_hits(got, store.query(q))


def test_query_batch_arguments(store: HybridStore) -> None:
    assert store.query_batch([]) == []
    with pytest.raises(InvalidInputError, match="dense"):
        store.query_batch(["a"], dense=[0.1] * 384)
    with pytest.raises(InvalidTypeError, match=r"texts\[1\]"):
        store.query_batch(["a", 3])  # type: ignore[list-item]
    passes = store.encoder.forward_passes  # type: ignore[union-attr]
    # Texts no other test encodes: the encoder's cache (shared with other tests) holds none of them.
    store.query_batch([f"{q} (query_batch_arguments)" for q in QUERIES])
    assert store.encoder.forward_passes - passes == 2  # type: ignore[union-attr]  # one pass per model


def test_query_batch_on_qdrant_client_local_mode(minilm_dir: Path, splade_dir: Path) -> None:
    from qdrant_client import QdrantClient

    enc = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False, cache_size=0)
    texts = sample_corpus()[:40]
    with HybridStore("remote", encoder=enc, client=QdrantClient(":memory:")) as s:
        s.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
        for mode in ("dense", "sparse", "hybrid"):
            batched = s.query_batch(QUERIES, mode=mode, limit=5)
            for got, q in zip(batched, QUERIES, strict=True):
                same_hits(got, s.query(q, mode=mode, limit=5))
