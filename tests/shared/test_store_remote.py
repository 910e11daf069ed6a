"""The remote backend on qdrant-client local mode: same answers as the embedded backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from shared.errors import BackendError, ModelMismatchError, UnsupportedOperationError
from shared.filters import metadata_filter
from shared.store import HybridStore
from shared.types import Record
from tests.shared.test_store import DIM, assert_same_hits, make_records


@pytest.fixture(scope="module")
def recs() -> list[Record]:
    return make_records(60, seed=11)


@pytest.fixture(scope="module")
def pair(recs: list[Record]):
    client = QdrantClient(":memory:")
    remote = HybridStore("r", client=client, dense_dim=DIM)
    embedded = HybridStore("e", dense_dim=DIM)
    remote.add(recs)
    embedded.add(recs)
    yield remote, embedded
    remote.close()
    embedded.close()


def _q(recs: list[Record]) -> dict[str, Any]:
    dense = np.random.default_rng(5).normal(size=DIM)
    sparse = {**recs[3].sparse, **recs[4].sparse, **recs[17].sparse}  # type: ignore[dict-item]
    return {"dense": dense, "sparse": sparse}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "dense"},
        {"mode": "sparse"},
        {"mode": "hybrid"},
        {"mode": "hybrid", "fusion": "rrf", "rrf_k": 10, "dense_weight": 2.0, "sparse_weight": 0.5},
        {"mode": "hybrid", "fusion": "dbsf"},
        {"mode": "hybrid", "fusion": "m3"},
        {"mode": "hybrid", "fusion": "m3", "candidate_k": 4},
        {"mode": "hybrid", "offset": 3},
        {"mode": "hybrid", "filter": metadata_filter({"parity": "odd"})},
        {"mode": "dense", "filter": metadata_filter({"i": {"gte": 10, "lt": 40}})},
    ],
)
def test_remote_equals_embedded_on_exact_search(pair, recs: list[Record], kwargs: dict[str, Any]) -> None:
    remote, embedded = pair
    q = _q(recs)
    if kwargs["mode"] == "dense":
        q.pop("sparse")
    if kwargs["mode"] == "sparse":
        q.pop("dense")
    a = remote.query(**q, **kwargs, limit=7, exact=True)
    b = embedded.query(**q, **kwargs, limit=7, exact=True)
    assert_same_hits(a, b)
    by_id = {y.id: y for y in b}
    for x in a:
        if x.id in by_id:
            y = by_id[x.id]
            assert (x.text, x.metadata, x.ref_doc_id) == (y.text, y.metadata, y.ref_doc_id)


def test_remote_mmr_and_reads_equal_embedded(pair, recs: list[Record]) -> None:
    remote, embedded = pair
    q = _q(recs)["dense"]
    for lam in (0.0, 0.4, 1.0):
        assert [h.id for h in remote.mmr(dense=q, limit=5, fetch_k=20, lambda_mult=lam)] == [
            h.id for h in embedded.mmr(dense=q, limit=5, fetch_k=20, lambda_mult=lam)
        ]
    got_r = remote.get(["doc-9", "missing", "doc-2"], with_vectors=True)
    got_e = embedded.get(["doc-9", "missing", "doc-2"], with_vectors=True)
    assert [g.id for g in got_r] == [g.id for g in got_e] == ["doc-9", "doc-2"]
    assert np.allclose(got_r[0].dense, got_e[0].dense, atol=1e-6)
    assert got_r[0].sparse == pytest.approx(got_e[0].sparse)
    flt = metadata_filter({"tags": ["t1"]})
    assert remote.count(flt) == embedded.count(flt) > 0


def test_remote_writes_and_deletes(recs: list[Record]) -> None:
    client = QdrantClient(":memory:")
    with HybridStore("w", client=client, dense_dim=DIM) as s:
        s.add(recs[:20])
        s.add([Record(id="doc-0", text="new", dense=recs[0].dense)])
        assert s.count() == 20 and s.get(["doc-0"])[0].text == "new"
        s.delete(["doc-1"])
        s.delete(ref_doc_ids=["ref-1"])
        s.delete(filter=metadata_filter({"i": {"gte": 16}}))
        assert s.count() == 20 - 1 - 4 - 4
        s.clear()
        assert s.count() == 0
        # The collection and its guard survive clear().
        assert client.get_collection("w").config.metadata["m3_hybrid"]["schema"]["dense_dim"] == DIM


def test_remote_guard_in_collection_metadata(recs: list[Record]) -> None:
    client = QdrantClient(":memory:")
    with HybridStore("g", client=client, dense_dim=DIM) as s:
        s.add(recs[:3])
    with pytest.raises(ModelMismatchError, match="dense_dim: collection has 16, store asks 32"):
        HybridStore("g", client=client, dense_dim=2 * DIM)
    with HybridStore("g", client=client) as s:
        assert s.count() == 3  # no write happened above
    with HybridStore("g", client=client, dense_dim=2 * DIM, recreate=True) as s:
        assert s.count() == 0 and s.schema.dense_dim == 2 * DIM


def test_foreign_collection_with_another_distance_is_refused_untouched() -> None:
    client = QdrantClient(":memory:")
    client.create_collection(
        "foreign", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    with pytest.raises(UnsupportedOperationError, match="dot distance") as e:
        HybridStore("foreign", client=client, dense_dim=4)
    assert "recreate" not in str(e.value)
    assert client.get_collection("foreign").config.metadata is None  # nothing recorded


class _SpyClient:
    """Forwards to a real local-mode client and records create_collection arguments."""

    def __init__(self) -> None:
        self.real = QdrantClient(":memory:")
        self.created: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def create_collection(self, **kwargs: Any) -> Any:
        self.created = kwargs
        return self.real.create_collection(**kwargs)


def test_distributed_options_reach_new_collections() -> None:
    spy = _SpyClient()
    with HybridStore(
        "d",
        client=spy,
        dense_dim=DIM,
        shard_number=3,
        replication_factor=2,
        write_consistency_factor=2,
        quantization="int8",
        on_disk=True,
    ) as s:
        assert s.is_remote
    c = spy.created
    assert (c["shard_number"], c["replication_factor"], c["write_consistency_factor"]) == (3, 2, 2)
    dense = c["vectors_config"]["dense"]
    assert dense.on_disk is True
    assert dense.quantization_config.scalar.always_ram is True
    assert c["sparse_vectors_config"]["sparse"].modifier is None


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_api_key_never_shown() -> None:
    with pytest.raises(BackendError) as info:
        HybridStore("x", url="http://127.0.0.1:9", api_key="s3cr3t-key", timeout=1)
    assert "s3cr3t-key" not in str(info.value)
    assert "127.0.0.1:9" in str(info.value)
    from shared.backends import Connection
    from shared.backends.remote import RemoteBackend

    connection = Connection(url="http://127.0.0.1:9", api_key="s3cr3t-key")
    assert "s3cr3t-key" not in repr(connection)
    backend = RemoteBackend("x", connection)
    assert "s3cr3t-key" not in repr(backend)


async def test_async_only_client(recs: list[Record]) -> None:
    aclient = AsyncQdrantClient(":memory:")
    store = HybridStore("a", aclient=aclient, dense_dim=DIM)
    with pytest.raises(UnsupportedOperationError, match="only an async client"):
        store.count()
    await store.aadd(recs[:10])
    assert await store.acount() == 10
    hits = await store.aquery(dense=recs[4].dense, sparse=dict(recs[4].sparse), limit=3)  # type: ignore[arg-type]
    assert hits[0].id == "doc-4"
    await store.adelete(["doc-4"])
    assert [r.id for r in await store.aget(["doc-4", "doc-5"])] == ["doc-5"]
    await store.aclose()


async def test_async_with_sync_client_offloads(recs: list[Record]) -> None:
    client = QdrantClient(":memory:")
    async with HybridStore("s", client=client, dense_dim=DIM) as store:
        await store.aadd(recs[:10])
        hits = await store.aquery(dense=recs[2].dense, mode="dense", limit=1)
        assert hits[0].id == "doc-2"
        assert store.count() == 10
