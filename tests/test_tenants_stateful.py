"""Tenants never see, change or delete each other's points: a stateful property test (issue 22).

Three tenants share one collection and do random adds (ids collide across tenants), gets,
deletes by id and by filter, searches with ordinary and hostile filters (``should`` /
``must_not`` on the tenant key, aimed at another tenant) and counts, through the core store
and both adapters, on the embedded store and on qdrant-client local mode. After every step
each tenant's contents equal a plain-Python model of that tenant alone.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from qdrant_client import QdrantClient, models

TENANTS = ("t1", "t2", "t3")
IDS = ("a", "b", "c", "d")
CATS = ("x", "y")
DIM = 8
#: More than every point of every tenant: a search returns all of a tenant's matches.
LIMIT = 50


def _vec(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


def _hostile(own: str, other: str, key: str) -> list[models.Filter]:
    """Filters that try to reach ``other``'s points from ``own``'s store."""
    on = models.FieldCondition
    return [
        models.Filter(should=[on(key=key, match=models.MatchValue(value=other))]),
        models.Filter(must_not=[on(key=key, match=models.MatchValue(value=own))]),
        models.Filter(should=[on(key=f"metadata.{key}", match=models.MatchValue(value=other))]),
        models.Filter(
            should=[
                on(key="metadata.cat", match=models.MatchValue(value="x")),
                on(key=key, match=models.MatchAny(any=list(TENANTS))),
            ]
        ),
    ]


# ---------------------------------------------------------------------------
# one surface per API: the same operations through the core store and each adapter
# ---------------------------------------------------------------------------


class Surface:
    """Three tenants' stores of one collection: views of one store on the embedded shard (it is
    locked to one store object), separate stores sharing one client on qdrant-client local mode."""

    def __init__(self, backend: str) -> None:
        self.closers: list[Any] = []
        if backend == "edge":
            base = self.open(TENANTS[0], None)  # a temporary shard (no WAL)
            self.closers.append(base.close)
            self.stores = {t: base if t == TENANTS[0] else base.for_tenant(t) for t in TENANTS}
        else:
            client = QdrantClient(":memory:")
            self.stores = {t: self.open(t, client) for t in TENANTS}

    def open(self, tenant: str, client: Any) -> Any:
        raise NotImplementedError

    def count(self, tenant: str) -> int:
        return int(self.stores[tenant].count())

    def close(self) -> None:
        for close in self.closers:
            close()


class CoreSurface(Surface):
    """``HybridStore`` itself: explicit vectors, every query mode, MMR and scroll."""

    def open(self, tenant: str, client: Any) -> Any:
        from shared.store import HybridStore

        return HybridStore("c", client=client, dense_dim=DIM, tenant=tenant)

    def add(self, tenant: str, items: dict[str, tuple[str, str]]) -> None:
        from shared.types import Record

        self.stores[tenant].add(
            [
                Record(id=i, text=text, metadata={"cat": cat}, dense=_vec(text), sparse={1: 1.0})
                for i, (text, cat) in items.items()
            ]
        )

    def get(self, tenant: str, ids: list[str]) -> dict[str, tuple[str, str]]:
        return {r.id: (r.text or "", r.metadata["cat"]) for r in self.stores[tenant].get(ids)}

    def contents(self, tenant: str) -> dict[str, tuple[str, str]]:
        return {r.id: (r.text or "", r.metadata["cat"]) for r in self.stores[tenant].scroll()}

    def delete_ids(self, tenant: str, ids: list[str]) -> None:
        self.stores[tenant].delete(ids)

    def delete_cat(self, tenant: str, cat: str) -> None:
        from shared.filters import metadata_filter

        self.stores[tenant].delete(filter=metadata_filter({"cat": cat}))

    def search(self, tenant: str, cat: str | None, flt: Any, mode: str) -> set[str]:
        from shared.filters import and_filters, metadata_filter

        store = self.stores[tenant]
        f = and_filters(metadata_filter({"cat": cat}) if cat else None, flt)
        if mode == "mmr":
            return {h.id for h in store.mmr(dense=_vec("q"), limit=LIMIT, fetch_k=LIMIT, filter=f)}
        hits = store.query(dense=_vec("q"), sparse={1: 1.0}, mode=mode, limit=LIMIT, filter=f)
        return {h.id for h in hits}


class LangChainSurface(Surface):
    """The LangChain adapter (dense, ``DeterministicFakeEmbedding``)."""

    def open(self, tenant: str, client: Any) -> Any:
        from langchain_core.embeddings import DeterministicFakeEmbedding

        from langchain_ext import HybridQdrantVectorStore

        emb = DeterministicFakeEmbedding(size=DIM)
        return HybridQdrantVectorStore(emb, collection_name="c", client=client, tenant=tenant)

    def add(self, tenant: str, items: dict[str, tuple[str, str]]) -> None:
        ids = list(items)
        self.stores[tenant].add_texts(
            [items[i][0] for i in ids], [{"cat": items[i][1]} for i in ids], ids=ids
        )

    def get(self, tenant: str, ids: list[str]) -> dict[str, tuple[str, str]]:
        return {d.id: (d.page_content, d.metadata["cat"]) for d in self.stores[tenant].get_by_ids(ids)}

    def contents(self, tenant: str) -> dict[str, tuple[str, str]]:
        docs = self.stores[tenant].similarity_search("q", k=LIMIT)
        return {d.id: (d.page_content, d.metadata["cat"]) for d in docs}

    def delete_ids(self, tenant: str, ids: list[str]) -> None:
        self.stores[tenant].delete(ids)

    def delete_cat(self, tenant: str, cat: str) -> None:
        self.stores[tenant].delete(filter={"cat": cat})

    def search(self, tenant: str, cat: str | None, flt: Any, mode: str) -> set[str]:
        store = self.stores[tenant]
        if flt is not None:
            docs = store.similarity_search("q", k=LIMIT, filter=flt)
            if cat:
                docs = [d for d in docs if d.metadata["cat"] == cat]
        elif mode == "mmr":
            docs = store.max_marginal_relevance_search(
                "q", k=LIMIT, fetch_k=LIMIT, filter={"cat": cat} if cat else None
            )
        else:
            docs = store.similarity_search("q", k=LIMIT, filter={"cat": cat} if cat else None)
        return {d.id for d in docs if d.id is not None}


class LlamaSurface(Surface):
    """The LlamaIndex adapter (dense + sparse LlamaIndex models, nodes, ``VectorStoreQuery``)."""

    def open(self, tenant: str, client: Any) -> Any:
        from llama_index_ext import HybridQdrantVectorStore
        from tests.support.llama_fakes import HashEmbedding, WordSparse

        models_ = {"embed_model": HashEmbedding(), "sparse_embed_model": WordSparse()}
        return HybridQdrantVectorStore("c", client=client, tenant=tenant, **models_)

    def add(self, tenant: str, items: dict[str, tuple[str, str]]) -> None:
        from llama_index.core.schema import TextNode

        self.stores[tenant].add(
            [TextNode(id_=i, text=text, metadata={"cat": cat}) for i, (text, cat) in items.items()]
        )

    @staticmethod
    def _items(nodes: Any) -> dict[str, tuple[str, str]]:
        return {n.node_id: (n.get_content(), n.metadata["cat"]) for n in nodes}

    def get(self, tenant: str, ids: list[str]) -> dict[str, tuple[str, str]]:
        return self._items(self.stores[tenant].get_nodes(node_ids=ids))

    def contents(self, tenant: str) -> dict[str, tuple[str, str]]:
        from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

        both = MetadataFilters(filters=[MetadataFilter(key="cat", value=list(CATS), operator="in")])
        return self._items(self.stores[tenant].get_nodes(filters=both))

    def delete_ids(self, tenant: str, ids: list[str]) -> None:
        self.stores[tenant].delete_nodes(node_ids=ids)

    def delete_cat(self, tenant: str, cat: str) -> None:
        from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

        self.stores[tenant].delete_nodes(
            filters=MetadataFilters(filters=[MetadataFilter(key="cat", value=cat)])
        )

    def search(self, tenant: str, cat: str | None, flt: Any, mode: str) -> set[str]:
        from llama_index.core.vector_stores.types import (
            MetadataFilter,
            MetadataFilters,
            VectorStoreQuery,
            VectorStoreQueryMode,
        )

        filters = MetadataFilters(filters=[MetadataFilter(key="cat", value=cat)]) if cat else None
        qmode = {"dense": VectorStoreQueryMode.DEFAULT, "sparse": VectorStoreQueryMode.SPARSE}.get(
            mode, VectorStoreQueryMode.MMR if mode == "mmr" else VectorStoreQueryMode.HYBRID
        )
        query = VectorStoreQuery(
            query_str="q",
            similarity_top_k=LIMIT,
            sparse_top_k=LIMIT,
            hybrid_top_k=LIMIT,
            mode=qmode,
            filters=filters,
        )
        kwargs = {"qdrant_filters": flt} if flt is not None else {}
        if mode == "mmr":
            kwargs["mmr_prefetch_k"] = LIMIT
        result = self.stores[tenant].query(query, **kwargs)
        return {n.node_id for n in result.nodes or []}


SURFACES = {"core": CoreSurface, "langchain": LangChainSurface, "llama": LlamaSurface}


class TenantMachine(RuleBasedStateMachine):
    surface_name = "core"
    backend = "local"

    def __init__(self) -> None:
        super().__init__()
        self.api = SURFACES[self.surface_name](self.backend)
        self.model: dict[str, dict[str, tuple[str, str]]] = {t: {} for t in TENANTS}
        self.version = 0

    def teardown(self) -> None:
        self.api.close()

    @rule(
        tenant=st.sampled_from(TENANTS),
        ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True),
        cat=st.sampled_from(CATS),
    )
    def add(self, tenant: str, ids: list[str], cat: str) -> None:
        self.version += 1
        items = {i: (f"{tenant} {i} v{self.version}", cat) for i in ids}
        self.api.add(tenant, items)
        self.model[tenant].update(items)

    @rule(tenant=st.sampled_from(TENANTS), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=4))
    def get(self, tenant: str, ids: list[str]) -> None:
        got = self.api.get(tenant, ids)
        assert got == {i: self.model[tenant][i] for i in ids if i in self.model[tenant]}

    @rule(tenant=st.sampled_from(TENANTS), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=2))
    def delete_ids(self, tenant: str, ids: list[str]) -> None:
        self.api.delete_ids(tenant, ids)
        for i in ids:
            self.model[tenant].pop(i, None)

    @rule(tenant=st.sampled_from(TENANTS), cat=st.sampled_from(CATS))
    def delete_by_filter(self, tenant: str, cat: str) -> None:
        self.api.delete_cat(tenant, cat)
        self.model[tenant] = {i: v for i, v in self.model[tenant].items() if v[1] != cat}

    @rule(
        tenant=st.sampled_from(TENANTS),
        cat=st.one_of(st.none(), st.sampled_from(CATS)),
        mode=st.sampled_from(("dense", "sparse", "hybrid", "mmr")),
    )
    def search(self, tenant: str, cat: str | None, mode: str) -> None:
        if self.surface_name == "langchain" and mode in ("sparse", "hybrid"):
            mode = "dense"  # its model is dense only
        got = self.api.search(tenant, cat, None, mode)
        want = {i for i, (_, c) in self.model[tenant].items() if cat is None or c == cat}
        if mode in ("sparse", "mmr"):
            assert got <= want  # sparse: the points sharing a token; MMR: a diverse subset
        else:
            assert got == want

    @rule(tenant=st.sampled_from(TENANTS), other=st.sampled_from(TENANTS), which=st.integers(0, 3))
    def hostile_search(self, tenant: str, other: str, which: int) -> None:
        flt = _hostile(tenant, other, "tenant")[which]
        got = self.api.search(tenant, None, flt, "dense")
        assert got <= set(self.model[tenant])
        if which == 1:  # must_not the own tenant: nothing is left
            assert got == set()

    @invariant()
    def each_tenant_sees_only_its_own(self) -> None:
        for t in TENANTS:
            assert self.api.contents(t) == self.model[t]
            assert self.api.count(t) == len(self.model[t])


def _machine(surface: str, backend: str) -> Any:
    cls = type(
        f"TenantMachine_{surface}_{backend}", (TenantMachine,), {"surface_name": surface, "backend": backend}
    )
    cls.TestCase.settings = settings(
        max_examples=6,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=True,
        # A failure is reported with its steps as generated: shrinking them takes minutes.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    return cls.TestCase


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect")
@pytest.mark.filterwarnings("ignore:Local mode performs exact")
@pytest.mark.parametrize("backend", ["edge", "local"])
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_tenants_never_reach_each_other(surface: str, backend: str) -> None:
    case = _machine(surface, backend)
    case("runTest").runTest()
