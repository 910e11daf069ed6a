"""HybridStore.scroll / ascroll: paging through the points matching a filter, on both backends
(embedded Qdrant Edge and qdrant-client local mode), and the LlamaIndex get_nodes built on it."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from qdrant_client import QdrantClient, models

from llama_index_ext import HybridQdrantVectorStore
from llama_index_ext._encoders import sparse_encoder
from shared.errors import BackendError, InvalidInputError, InvalidTypeError
from shared.filters import metadata_filter
from shared.store import HybridStore
from shared.types import Record

DIM = 8
N = 23


def records(n: int = N) -> list[Record]:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [
        Record(
            id=f"doc-{i}",
            text=f"text {i}",
            metadata={"group": i % 3, "tags": ["even" if i % 2 == 0 else "odd"], "nested": {"i": i}},
            ref_doc_id=f"src-{i // 4}",
            dense=vecs[i],
            sparse={i: 1.0 + i, 500: 0.5},
        )
        for i in range(n)
    ]


class WordCounts(BaseSparseEmbedding):
    """A deterministic third-party-style sparse model: word counts keyed by a CRC of the word."""

    def _sparse(self, text: str) -> SparseEmbedding:
        out: dict[int, float] = {}
        for word in text.lower().split():
            key = zlib.crc32(word.encode()) % 2**20
            out[key] = out.get(key, 0.0) + 1.0
        return out

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return self._sparse(query)

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return self._sparse(query)

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return self._sparse(text)

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return self._sparse(text)


def open_store(backend: str, tmp_path: Path, **kwargs: Any) -> HybridStore:
    if backend == "edge":
        return HybridStore("scroll", path=tmp_path, **kwargs)
    return HybridStore("scroll", client=QdrantClient(":memory:"), **kwargs)


BACKENDS = ["edge", "local"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[HybridStore]:
    with open_store(backend, tmp_path, dense_dim=DIM, sparse=True) as s:
        s.add(records())
        s.scroll_page_size = 4  # several engine requests for the 23 points
        yield s


class PageSpy:
    """Records the size of each engine scroll request (the calls still reach Qdrant)."""

    def __init__(self, store: HybridStore) -> None:
        self.limits: list[int] = []
        backend = store._backend
        # One operation for both runners: the store drives it sync or async.
        real = backend.scroll

        def scroll(flt: Any, offset: Any, limit: int, names: Any) -> Any:
            self.limits.append(limit)
            return real(flt, offset, limit, names)

        setattr(backend, "scroll", scroll)  # noqa: B010 - an instance attribute shadows the method


def test_scroll_returns_every_record_once_with_its_original_fields(store: HybridStore) -> None:
    spy = PageSpy(store)
    got = store.scroll()
    expected = {r.id: r for r in records()}
    assert sorted(r.id for r in got) == sorted(expected)
    assert len(got) == N
    for r in got:
        want = expected[r.id]
        assert (r.text, r.metadata, r.ref_doc_id) == (want.text, want.metadata, want.ref_doc_id)
        assert r.dense is None and r.sparse is None  # with_vectors=False
    # Bounded: never more than a page per request, and it took ceil(23 / 4) requests.
    assert max(spy.limits) <= 4
    assert len(spy.limits) == 6


def test_scroll_with_vectors_returns_the_stored_vectors(store: HybridStore) -> None:
    expected = {r.id: r for r in records()}
    got = store.scroll(with_vectors=True)
    assert len(got) == N
    for r in got:
        assert r.dense is not None and r.sparse is not None
        np.testing.assert_allclose(np.asarray(r.dense), np.asarray(expected[r.id].dense), atol=1e-6)
        assert r.sparse == pytest.approx(expected[r.id].sparse)


@pytest.mark.parametrize(
    ("flt", "predicate"),
    [
        (metadata_filter({"group": 1}), lambda i: i % 3 == 1),
        (metadata_filter({"tags": ["odd"], "group": [0, 2]}), lambda i: i % 2 == 1 and i % 3 != 1),
        (
            models.Filter(must=[models.HasIdCondition(has_id=["doc-3", "doc-17", "missing"])]),
            lambda i: i in (3, 17),
        ),
        (
            models.Filter(
                must=[models.FieldCondition(key="ref_doc_id", match=models.MatchValue(value="src-2"))]
            ),
            lambda i: i // 4 == 2,
        ),
        (metadata_filter({"group": 9}), lambda i: False),
    ],
)
def test_scroll_by_filter_returns_exactly_the_matching_records(
    store: HybridStore, flt: models.Filter, predicate: Any
) -> None:
    got = [r.id for r in store.scroll(flt)]
    assert sorted(got) == sorted(f"doc-{i}" for i in range(N) if predicate(i))
    assert len(got) == store.count(flt)


@pytest.mark.parametrize("page", [1, 4, 5, 23, 30])
def test_limit_and_offset_page_through_in_a_stable_order(store: HybridStore, page: int) -> None:
    full = [r.id for r in store.scroll()]
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        chunk = [r.id for r in store.scroll(limit=page, offset=cursor)]
        assert len(chunk) <= page
        if not chunk:
            break
        pages.append(chunk)
        cursor = chunk[-1]
    assert [i for p in pages for i in p] == full
    assert all(len(p) == page for p in pages[:-1])


def test_offset_is_a_cursor_that_survives_deletion_and_filters(store: HybridStore) -> None:
    full = [r.id for r in store.scroll()]
    cut = full[9]
    store.delete([cut])
    # The cursor's own record is gone: the scroll still resumes right after its place.
    assert [r.id for r in store.scroll(offset=cut)] == full[10:]
    assert [r.id for r in store.scroll(limit=3, offset=cut)] == full[10:13]
    # With a filter the cursor's record need not match it.
    group0 = metadata_filter({"group": 0})
    after = [r.id for r in store.scroll(group0, offset=full[4])]
    matching = {r.id for r in store.scroll(group0)}
    assert after == [i for i in full[5:] if i in matching]
    # The last record as cursor: nothing after it.
    assert store.scroll(offset=full[-1]) == []


async def test_ascroll_is_the_same_code_path(store: HybridStore) -> None:
    spy = PageSpy(store)
    flt = metadata_filter({"tags": ["even"]})
    sync = store.scroll(flt, limit=7, offset="doc-2", with_vectors=True)
    sync_calls = list(spy.limits)
    spy.limits.clear()
    got = await store.ascroll(flt, limit=7, offset="doc-2", with_vectors=True)
    assert [r.id for r in got] == [r.id for r in sync]
    assert [r.metadata for r in got] == [r.metadata for r in sync]
    assert spy.limits == sync_calls and max(sync_calls) <= 4


def test_scroll_on_a_sparse_only_collection(backend: str, tmp_path: Path) -> None:
    recs = [Record(id=f"s{i}", text=f"t{i}", metadata={"k": i % 2}, sparse={i + 1: 1.0}) for i in range(9)]
    # A sparse-only encoder makes a collection without dense vectors.
    with open_store(backend, tmp_path, encoder=sparse_encoder(WordCounts())) as s:
        s.add(recs)
        assert not s.schema.has_dense
        s.scroll_page_size = 2
        assert sorted(r.id for r in s.scroll(metadata_filter({"k": 1}))) == ["s1", "s3", "s5", "s7"]
        got = {r.id: r for r in s.scroll(with_vectors=True)}
        assert len(got) == 9 and got["s4"].sparse == {5: 1.0} and got["s4"].dense is None


def test_scroll_of_an_empty_or_not_yet_created_store(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path, dense_dim=DIM) as s:
        assert s.scroll() == []  # nothing added yet
        s.add(records(3))
        s.clear()
        assert s.scroll(metadata_filter({"group": 0})) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"limit": 0}, InvalidInputError, "limit must be > 0"),
        ({"limit": -2}, InvalidInputError, "limit must be > 0"),
        ({"limit": "5"}, InvalidTypeError, "limit must be an int"),
        ({"limit": True}, InvalidTypeError, "limit must be an int"),
        ({"offset": 5}, InvalidTypeError, "offset must be a record id"),
        ({"offset": ""}, InvalidInputError, "offset must be a non-empty"),
        ({"offset": "bad\ud800"}, InvalidInputError, "scroll offset is not valid Unicode"),
        ({"filter": {"group": 1}}, InvalidTypeError, "filter must be a qdrant_client.models.Filter"),
    ],
)
def test_bad_scroll_arguments_are_refused(
    store: HybridStore, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.scroll(**kwargs)
    with pytest.raises(error, match=match):
        asyncio.run(store.ascroll(**kwargs))


def test_scroll_on_a_closed_store_fails_clearly(backend: str, tmp_path: Path) -> None:
    s = open_store(backend, tmp_path, dense_dim=DIM)
    s.add(records(2))
    s.close()
    with pytest.raises(BackendError, match="closed"):
        s.scroll()


def test_scroll_reads_a_reopened_store(tmp_path: Path) -> None:
    with HybridStore("scroll", path=tmp_path, dense_dim=DIM) as s:
        s.add(records())
    with HybridStore("scroll", path=tmp_path) as s:
        assert sorted(r.id for r in s.scroll()) == sorted(r.id for r in records())


# -- LlamaIndex get_nodes(filters=...) is a scroll ------------------------------------------


def llama_store(backend: str, tmp_path: Path, **kwargs: Any) -> HybridQdrantVectorStore:
    if backend == "edge":
        return HybridQdrantVectorStore("nodes", path=tmp_path, **kwargs)
    return HybridQdrantVectorStore("nodes", client=QdrantClient(":memory:"), **kwargs)


def group(value: int) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key="group", value=value)])


@pytest.mark.parametrize("dense", [False, True], ids=["sparse-only", "dense+sparse"])
async def test_llama_get_nodes_by_filters_scrolls_any_collection(
    backend: str, tmp_path: Path, dense: bool
) -> None:
    kwargs: dict[str, Any] = {"sparse_embed_model": WordCounts()}
    if dense:
        kwargs["dense_dim"] = DIM
    nodes = [
        TextNode(
            id_=f"n{i}",
            text=f"zebra word{i}",
            metadata={"group": i % 3},
            embedding=[1.0, float(i)] + [0.0] * (DIM - 2) if dense else None,
        )
        for i in range(11)
    ]
    with llama_store(backend, tmp_path, **kwargs) as store:
        store.add(nodes)
        assert store.store.schema.has_dense is dense
        store.store.scroll_page_size = 2  # the 11 nodes take several engine requests
        got = store.get_nodes(filters=group(1))
        assert sorted(n.node_id for n in got) == ["n1", "n10", "n4", "n7"]
        assert all(isinstance(n, TextNode) and n.metadata == {"group": 1} for n in got)
        assert {n.node_id: n.get_content() for n in got}["n4"] == "zebra word4"
        # node_ids and filters: the intersection, in the order of node_ids.
        got = store.get_nodes(["n7", "n2", "n1", "n7"], filters=group(1))
        assert [n.node_id for n in got] == ["n7", "n1"]
        assert sorted(n.node_id for n in await store.aget_nodes(filters=group(0))) == ["n0", "n3", "n6", "n9"]
        assert [n.node_id for n in await store.aget_nodes(["n9", "n0"], filters=group(0))] == ["n9", "n0"]
        assert store.get_nodes(filters=group(5)) == []
