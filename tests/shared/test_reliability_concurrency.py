"""Concurrent use of one HybridStore: 8 query threads while another thread adds documents.

Both backends: the embedded Qdrant Edge shard and the remote backend on
qdrant-client local mode. Properties: no errors in any thread, readers never see
a count outside [initial, final] or going backwards, no lost writes (final count
== written), and after the writer finishes every written id is retrievable and a
query for its vector finds it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from shared.store import HybridStore
from shared.types import Record

DIM = 16
READERS = 8


def make(i: int) -> Record:
    rng = np.random.default_rng(i)
    terms = rng.choice(2000, size=8, replace=False)
    return Record(
        id=f"doc-{i}",
        text=f"text {i}",
        metadata={"i": i, "even": i % 2 == 0},
        ref_doc_id=f"ref-{i // 10}",
        dense=rng.normal(size=DIM).astype(np.float32),
        sparse={int(t): float(w) for t, w in zip(terms, rng.uniform(0.1, 2, size=8), strict=True)},
    )


@pytest.fixture(params=["embedded", "remote-local"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[HybridStore]:
    if request.param == "embedded":
        s = HybridStore("conc", path=tmp_path, dense_dim=DIM)
    else:
        s = HybridStore("conc", client=QdrantClient(":memory:"), dense_dim=DIM)
    with s:
        yield s


def test_queries_from_8_threads_while_a_thread_adds(store: HybridStore) -> None:
    initial = [make(i) for i in range(40)]
    store.add(initial)
    written = [make(1000 + i) for i in range(240)]
    errors: list[str] = []
    counts: list[list[int]] = [[] for _ in range(READERS)]
    writer_done = threading.Event()
    reads = [0] * READERS

    def reader(k: int) -> None:
        rng = np.random.default_rng(100 + k)
        try:
            while not writer_done.is_set() or reads[k] < 5:
                probe = initial[int(rng.integers(len(initial)))]
                mode = ("dense", "sparse", "hybrid")[reads[k] % 3]
                hits = store.query(dense=probe.dense, sparse=probe.sparse, mode=mode, limit=5)
                if not hits or (mode == "dense" and hits[0].id != probe.id):
                    errors.append(f"reader {k}: {mode} query for {probe.id} gave {[h.id for h in hits]}")
                got = store.get([probe.id])
                if [r.id for r in got] != [probe.id]:
                    errors.append(f"reader {k}: get({probe.id}) gave {[r.id for r in got]}")
                counts[k].append(store.count())
                reads[k] += 1
        except Exception as exc:  # any error in a thread fails the test
            errors.append(f"reader {k}: {type(exc).__name__}: {exc}")

    def writer() -> None:
        try:
            for start in range(0, len(written), 10):
                store.add(written[start : start + 10])
        except Exception as exc:
            errors.append(f"writer: {type(exc).__name__}: {exc}")
        finally:
            writer_done.set()

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(READERS)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []
    final = len(initial) + len(written)
    for seen in counts:
        assert seen and all(len(initial) <= c <= final for c in seen)
        assert seen == sorted(seen), "a reader saw the count go backwards"
    # No lost writes, and everything written is readable and findable.
    assert store.count() == final
    ids = [r.id for r in written]
    assert [r.id for r in store.get(ids)] == ids
    for rec in written[::23]:
        assert store.query(dense=rec.dense, mode="dense", limit=1, exact=True)[0].id == rec.id
        assert store.query(sparse=rec.sparse, mode="sparse", limit=1)[0].id == rec.id


def test_concurrent_writers_lose_nothing(store: HybridStore) -> None:
    """Four threads adding disjoint documents (and overlapping re-adds) at once."""
    errors: list[str] = []

    def writer(k: int) -> None:
        try:
            for b in range(6):
                base = k * 1000 + b * 10
                store.add([make(base + j) for j in range(10)])
                store.add([make(99_000 + j) for j in range(5)])  # the same ids from every thread: upserts
        except Exception as exc:
            errors.append(f"writer {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert store.count() == 4 * 60 + 5
    ids = [f"doc-{k * 1000 + j}" for k in range(4) for j in range(60)]
    assert len(store.get(ids)) == len(ids)


@pytest.mark.parametrize("backend", ["embedded", "remote-local"])
async def test_async_queries_while_adding(tmp_path: Any, backend: str) -> None:
    """The async API under concurrency: gathered aquery calls while aadd runs."""
    if backend == "embedded":
        s = HybridStore("aconc", path=tmp_path, dense_dim=DIM)
    else:
        s = HybridStore("aconc", aclient=AsyncQdrantClient(":memory:"), dense_dim=DIM)
    async with s:
        await s.aadd([make(i) for i in range(20)])
        written = [make(500 + i) for i in range(60)]

        async def write() -> None:
            for start in range(0, len(written), 10):
                await s.aadd(written[start : start + 10])

        async def read(k: int) -> int:
            n = 0
            for _ in range(10):
                probe = make(k)
                hits = await s.aquery(dense=probe.dense, mode="dense", limit=3)
                assert hits[0].id == probe.id
                n += 1
            return n

        results = await asyncio.gather(write(), *(read(k) for k in range(READERS)))
        assert results[1:] == [10] * READERS
        assert await s.acount() == 80
        assert len(await s.aget([r.id for r in written])) == 60
