"""Tenant-scoped stores (shared.tenancy): bad input, the guard, indexes, per-tenant IDF, shard keys."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from shared import ALL
from shared.errors import InvalidInputError, InvalidTypeError, ModelMismatchError
from shared.filters import metadata_filter
from shared.query.modes import RetrievalMode
from shared.query.options import QueryOptions
from shared.query.plan import Nearest, iter_stages, plan_query, sparse_query, tune_filtered
from shared.schema import CollectionSchema
from shared.store import HybridStore
from shared.tenancy import TieredShards
from shared.types import Record

pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
]

DIM = 4


def _rec(i: str, md: dict[str, Any] | None = None, dense: Any = None, sparse: Any = None) -> Record:
    return Record(
        id=i,
        text=f"text {i}",
        metadata=md if md is not None else {"n": 1},
        dense=dense if dense is not None else [1.0, 0.0, 0.0, 0.0],
        sparse=sparse if sparse is not None else {1: 1.0},
    )


@pytest.fixture(params=["edge", "local"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Connection keywords of one collection on the embedded store or on qdrant-client local mode."""
    if request.param == "edge":
        return {"path": str(tmp_path)}
    return {"client": QdrantClient(":memory:")}


def _open(where: dict[str, Any], **kw: Any) -> HybridStore:
    return HybridStore("c", dense_dim=DIM, **where, **kw)


def _total(where: dict[str, Any]) -> int:
    with _open(where, tenant=ALL) as admin:
        return admin.count()


# ---------------------------------------------------------------------------
# bad input: a clear error, nothing written
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "error", "says"),
    [
        (5, InvalidTypeError, "tenant must be a str"),
        (b"acme", InvalidTypeError, "got bytes"),
        ("", InvalidInputError, "non-empty"),
        ("  ", InvalidInputError, "non-empty"),
    ],
)
def test_a_tenant_of_the_wrong_type_or_empty_is_refused_before_anything_exists(
    tmp_path: Path, tenant: Any, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        HybridStore("c", dense_dim=DIM, path=str(tmp_path), tenant=tenant)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("key", ["metadata", "text", "doc_id", "a.b", "x[0]", "", 3])
def test_a_tenant_key_a_layout_uses_or_that_is_no_plain_key_is_refused(tmp_path: Path, key: Any) -> None:
    with pytest.raises((InvalidInputError, InvalidTypeError), match="tenant_key"):
        HybridStore("c", dense_dim=DIM, path=str(tmp_path), tenant="a", tenant_key=key)


def test_an_unscoped_open_of_a_tenanted_collection_is_refused(where: dict[str, Any]) -> None:
    with _open(where, tenant="acme") as acme:
        acme.add([_rec("1")])
    with pytest.raises(InvalidInputError, match=r"several tenants' data \(tenant key 'tenant'\).*tenant="):
        _open(where)
    assert _total(where) == 1


def test_a_scoped_open_of_a_collection_without_tenants_is_refused(where: dict[str, Any]) -> None:
    with _open(where) as plain:
        plain.add([_rec("1")])
    with pytest.raises(ModelMismatchError, match="created without tenants"):
        _open(where, tenant="acme")
    with _open(where) as plain:
        assert plain.count() == 1


def test_another_tenant_key_than_the_collections_is_refused(where: dict[str, Any]) -> None:
    with _open(where, tenant="acme", tenant_key="org") as acme:
        acme.add([_rec("1")])
    with pytest.raises(ModelMismatchError, match="'org', not the tenant_key='tenant'"):
        _open(where, tenant="acme")


@pytest.mark.parametrize("materialised", [True, False])
def test_metadata_carrying_the_tenant_key_is_refused_and_nothing_is_written(
    where: dict[str, Any], materialised: bool
) -> None:
    with _open(where, tenant="acme") as acme:
        acme.add([_rec("0")])
        batch = [_rec("1"), _rec("2", {"tenant": "other"}), _rec("3")]
        with pytest.raises(
            InvalidInputError, match=r"record 1 \(id '2'\): metadata field 'tenant' is the tenant"
        ):
            acme.add(batch if materialised else iter(batch))
        assert acme.count() == 1
    assert _total(where) == 1


def test_with_another_tenant_key_that_key_is_refused_and_tenant_is_plain_metadata(
    where: dict[str, Any],
) -> None:
    with _open(where, tenant="acme", tenant_key="org") as acme:
        with pytest.raises(InvalidInputError, match="'org' is the tenant key"):
            acme.add([_rec("1", {"org": "x"})])
        acme.add([_rec("1", {"tenant": "not a scope"})])
        assert acme.get(["1"])[0].metadata == {"tenant": "not a scope"}


def test_the_cross_tenant_view_reads_and_deletes_every_tenant_but_cannot_add(where: dict[str, Any]) -> None:
    for t in ("a", "b"):
        with _open(where, tenant=t) as s:
            s.add([_rec("1"), _rec(f"only-{t}")])
    with _open(where, tenant=ALL) as admin:
        assert admin.count() == 4
        assert sorted(r.id for r in admin.scroll()) == ["1", "1", "only-a", "only-b"]
        with pytest.raises(InvalidInputError, match=r"tenant=ALL store .* cannot add"):
            admin.add([_rec("x")])
        assert admin.count() == 4


def test_the_cross_tenant_view_never_creates_a_collection(tmp_path: Path) -> None:
    with HybridStore("c", dense_dim=DIM, path=str(tmp_path), tenant=ALL) as admin:
        assert admin.count() == 0
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------
# ids and scope
# ---------------------------------------------------------------------------


def test_the_same_id_in_two_tenants_is_two_points_and_each_reads_and_deletes_its_own(
    where: dict[str, Any],
) -> None:
    a = _open(where, tenant="a")
    a.add([_rec("x", {"who": "a"})])
    b = a.for_tenant("b") if "path" in where else _open(where, tenant="b")
    b.add([_rec("x", {"who": "b"})])
    assert [r.metadata["who"] for r in a.get(["x"])] == ["a"]
    assert [r.metadata["who"] for r in b.get(["x"])] == ["b"]
    b.delete(["x"])
    assert b.get(["x"]) == [] and b.count() == 0
    assert [r.metadata["who"] for r in a.get(["x"])] == ["a"]
    b.add([_rec("y")])
    b.clear()  # a tenant's clear: its own points only
    assert a.count() == 1 and b.count() == 0
    for s in (b, a):
        s.close()


def test_a_hostile_filter_cannot_widen_the_scope_in_any_operation(where: dict[str, Any]) -> None:
    with _open(where, tenant="a") as a:
        a.add([_rec("1")])
    with _open(where, tenant="b") as b:
        b.add([_rec("2")])
        to_a = models.Filter(
            should=[models.FieldCondition(key="tenant", match=models.MatchValue(value="a"))],
            must_not=[models.FieldCondition(key="tenant", match=models.MatchValue(value="b"))],
        )
        assert b.count(to_a) == 0
        assert b.scroll(to_a) == []
        assert b.query(dense=[1.0, 0, 0, 0], sparse={1: 1.0}, filter=to_a) == []
        assert b.mmr(dense=[1.0, 0, 0, 0], filter=to_a) == []
        by_id = models.Filter(must=[models.HasIdCondition(has_id=["1"])])  # a's id, resolved as b's
        assert b.count(by_id) == 0
        b.delete(filter=to_a)
        b.delete(filter=models.Filter(must_not=[models.HasIdCondition(has_id=["2"])]))
        b.delete(ref_doc_ids=["none"])
        assert b.count() == 1
    assert _total(where) == 2


def test_for_tenant_needs_a_scoped_store_and_a_view_closes_nothing(tmp_path: Path) -> None:
    with (
        HybridStore("c", dense_dim=DIM, path=str(tmp_path)) as plain,
        pytest.raises(InvalidInputError, match="opened with tenant="),
    ):
        plain.for_tenant("a")
    with HybridStore("d", dense_dim=DIM, path=str(tmp_path), tenant=ALL) as admin:
        view = admin.for_tenant("a")
        view.add([_rec("1")])  # the view creates the tenanted collection; the admin sees it
        view.close()
        assert admin.count() == 1
        with pytest.raises(InvalidInputError, match="tenant id"):
            admin.for_tenant(ALL)  # type: ignore[arg-type]


def test_the_guard_records_the_tenant_key(tmp_path: Path) -> None:
    with HybridStore("c", dense_dim=DIM, path=str(tmp_path), tenant="a", tenant_key="org") as s:
        s.add([_rec("1")])
    guard = json.loads((tmp_path / "c" / "m3_hybrid.json").read_text())
    assert guard["tenancy"] == {"key": "org"}
    assert CollectionSchema.from_guard(guard).tenant_key == "org"
    untenanted = CollectionSchema(dense_dim=DIM).guard_dict()
    assert "tenancy" not in untenanted  # collections without tenants keep the record they had


# ---------------------------------------------------------------------------
# indexes, per-tenant graphs, ACORN, per-tenant IDF
# ---------------------------------------------------------------------------


def test_the_embedded_store_builds_the_tenant_index_per_tenant_graphs_and_declared_indexes(
    tmp_path: Path,
) -> None:
    with HybridStore(
        "c",
        dense_dim=DIM,
        path=str(tmp_path),
        tenant="a",
        indexed_fields={"year": "integer", "lang": "keyword"},
    ) as s:
        s.add([_rec("1", {"year": 2024, "lang": "en"})])
        schema = s._backend._shard.info().payload_schema  # type: ignore[attr-defined]
        assert schema["tenant"].params.is_tenant is True
        assert str(schema["metadata.year"].data_type).endswith("Integer")
        assert str(schema["metadata.lang"].data_type).endswith("Keyword")
        assert s.count(metadata_filter({"year": {"gte": 2020}})) == 1
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text())
    hnsw = config["vectors"]["dense"]["hnsw_config"]
    assert (hnsw["m"], hnsw["payload_m"]) == (0, 16)


def test_declared_indexes_are_added_to_an_existing_collection(tmp_path: Path) -> None:
    with HybridStore("c", dense_dim=DIM, path=str(tmp_path), tenant="a") as s:
        s.add([_rec("1", {"year": 2024})])
    with HybridStore(
        "c", dense_dim=DIM, path=str(tmp_path), tenant="a", indexed_fields={"year": "integer"}
    ) as s:
        assert "metadata.year" in s._backend._shard.info().payload_schema  # type: ignore[attr-defined]


def test_indexed_fields_refuses_unknown_kinds() -> None:
    with pytest.raises(InvalidInputError, match=r"indexed_fields\['year'\]: unknown index kind 'int'"):
        HybridStore("c", dense_dim=DIM, indexed_fields={"year": "int"})
    with pytest.raises(InvalidTypeError, match="indexed_fields must be a dict"):
        HybridStore("c", dense_dim=DIM, indexed_fields=["year"])


class RecordingClient(QdrantClient):
    """qdrant-client local mode that records the requests it gets (local mode has no sharding:
    the shard key's creation is recorded, not performed)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_shard_key(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_shard_key", kwargs))
        return True


def _recording(name: str) -> Any:
    def method(self: RecordingClient, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, kwargs))
        return getattr(QdrantClient, name)(self, *args, **kwargs)

    return method


for _name in (
    "create_payload_index", "create_collection", "upsert", "query_points", "query_batch_points",
    "retrieve", "scroll", "count", "delete",
):  # fmt: skip
    setattr(RecordingClient, _name, _recording(_name))


def test_a_server_collection_gets_the_tenant_index_per_tenant_graphs_and_declared_indexes() -> None:
    client = RecordingClient()
    with HybridStore("c", dense_dim=DIM, client=client, tenant="a", indexed_fields={"year": "integer"}) as s:
        s.add([_rec("1", {"year": 2024})])
        assert s.count(metadata_filter({"year": 2024})) == 1
    created = dict(client.calls)["create_collection"]
    assert (created["hnsw_config"].m, created["hnsw_config"].payload_m) == (0, 16)
    indexes = {
        kw["field_name"]: kw["field_schema"] for name, kw in client.calls if name == "create_payload_index"
    }
    assert indexes["tenant"] == models.KeywordIndexParams(
        type=models.KeywordIndexType.KEYWORD, is_tenant=True
    )
    assert indexes["metadata.year"] == models.PayloadSchemaType.INTEGER
    # Local mode accepted every request (it keeps no payload index and searches exactly).
    assert client.get_collection("c").payload_schema == {}


def test_filtered_plans_search_with_acorn_and_a_tenants_idf() -> None:
    schema = CollectionSchema(dense_dim=DIM, sparse_idf=True)
    flt = metadata_filter({"a": 1})
    opts = QueryOptions(mode=RetrievalMode.HYBRID, filter=flt)
    plan = plan_query(schema, opts, dense=np.ones(DIM, dtype=np.float32), sparse=sparse_query({1: 1.0}))
    tuned = tune_filtered(plan, acorn=True, idf_corpus=(("tenant", "a"),))
    stages = [s for s in iter_stages(tuned.root) if isinstance(s.query, Nearest)]
    dense = [s for s in stages if s.query.using == "dense" and s.params is not None]
    sparse = [s for s in stages if s.query.using == "sparse"]
    assert dense and all(s.params.acorn for s in dense)  # type: ignore[union-attr]
    assert sparse and all(s.params.idf_corpus == (("tenant", "a"),) for s in sparse)  # type: ignore[union-attr]
    assert not any(s.params.acorn for s in sparse)  # type: ignore[union-attr]
    off = tune_filtered(plan, acorn=False)
    assert not any(s.params is not None and s.params.acorn for s in iter_stages(off.root))


def test_sparse_idf_counts_the_tenants_own_points(where: dict[str, Any]) -> None:
    """IDF(t) = ln(1 + (N - n + 0.5) / (n + 0.5)) over the tenant's N points, n with term t."""
    with _open(where, tenant="big", sparse_idf=True) as big:
        big.add([_rec(f"b{i}", sparse={1: 1.0}) for i in range(10)])
        small = big.for_tenant("small")
        small.add([_rec("s1", sparse={1: 1.0}), _rec("s2", sparse={2: 1.0})])
        (hit,) = small.query(sparse={1: 1.0}, mode="sparse", limit=1)
        assert hit.id == "s1"
        assert hit.score == pytest.approx(math.log(1 + 1.5 / 1.5), rel=1e-4)
        collection_wide = math.log(1 + (12 - 11 + 0.5) / 11.5)
        assert abs(hit.score - collection_wide) > 0.3


# ---------------------------------------------------------------------------
# shard keys (a server's custom sharding; local mode has none: requests are checked)
# ---------------------------------------------------------------------------


def test_every_point_request_carries_the_tenants_shard_key() -> None:
    client = RecordingClient()
    rule = TieredShards({"acme": "acme"}, default="small")
    for tenant, key in (("acme", "acme"), ("tiny", "small")):
        client.calls.clear()
        with HybridStore("c", dense_dim=DIM, client=client, tenant=tenant, shard_key=rule) as s:
            s.add([_rec("1")])
            s.query(dense=[1.0, 0, 0, 0], sparse={1: 1.0})
            s.get(["1"])
            s.scroll()
            s.count()
            s.delete(["1"])
        routed = [
            (name, kw.get("shard_key_selector"))
            for name, kw in client.calls
            if name not in ("create_collection", "create_payload_index", "create_shard_key")
        ]
        assert routed and all(sel == key for _, sel in routed), routed
        assert ("create_shard_key", {"collection_name": "c", "shard_key": key}) in client.calls
    created = [kw for name, kw in client.calls if name == "create_collection"]
    assert not created  # the collection existed by the second tenant


def test_a_new_collection_with_shard_keys_uses_custom_sharding() -> None:
    client = RecordingClient()
    with HybridStore("c", dense_dim=DIM, client=client, tenant="a", shard_key="shared") as s:
        s.add([_rec("1")])
    created = dict(client.calls)["create_collection"]
    assert created["sharding_method"] == models.ShardingMethod.CUSTOM


def test_batch_queries_carry_the_shard_key_per_request() -> None:
    from shared.backends.remote import RemoteBackend
    from shared.steps import run

    client = RecordingClient()
    with HybridStore("c", dense_dim=DIM, client=client, tenant="a", shard_key="shared") as s:
        s.add([_rec("1")])
        backend = s._backend
        assert isinstance(backend, RemoteBackend)
        plan = plan_query(
            s.schema, QueryOptions(mode=RetrievalMode.DENSE), dense=np.ones(DIM, dtype=np.float32)
        )
        run(backend.query_batch([plan, plan]))
    (batch,) = [kw for name, kw in client.calls if name == "query_batch_points"]
    assert [r.shard_key for r in batch["requests"]] == ["shared", "shared"]


def test_shard_keys_are_for_servers_and_a_rule_needs_a_tenant(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="shard_key routes requests on a Qdrant server"):
        HybridStore("c", dense_dim=DIM, path=str(tmp_path), shard_key="x")
    with pytest.raises(InvalidInputError, match="needs tenant="):
        HybridStore("c", dense_dim=DIM, client=QdrantClient(":memory:"), shard_key=TieredShards({}))
    with pytest.raises(InvalidTypeError, match="shard_key must be"):
        HybridStore("c", dense_dim=DIM, client=QdrantClient(":memory:"), shard_key=7)


def test_local_mode_without_sharding_says_so() -> None:
    from shared.errors import BackendError

    with pytest.raises(BackendError, match=r"creating the shard key failed.*Sharding is not supported"):
        HybridStore("c", dense_dim=DIM, client=QdrantClient(":memory:"), tenant="a", shard_key="k")


# ---------------------------------------------------------------------------
# another framework's layout: the tenant in its metadata section
# ---------------------------------------------------------------------------


def test_a_langchain_layout_keeps_the_tenant_in_its_metadata_and_reads_it_back_without() -> None:
    client = QdrantClient(":memory:")
    with HybridStore("lc", dense_dim=DIM, client=client, layout="langchain", sparse=False, tenant="a") as a:
        a.add([Record(id="1", text="t", metadata={"k": 1}, dense=[1.0, 0, 0, 0])])
        (point,), _ = client.scroll("lc", with_payload=True)
        assert point.payload["metadata"] == {"k": 1, "tenant": "a"}
        assert point.payload["doc_id"] == "1"  # the point id is the tenant's, the caller's id kept
        assert a.get(["1"])[0].metadata == {"k": 1}
        assert a.query(dense=[1.0, 0, 0, 0])[0].metadata == {"k": 1}
    with HybridStore("lc", dense_dim=DIM, client=client, layout="langchain", sparse=False, tenant="b") as b:
        assert b.count() == 0 and b.get(["1"]) == []


# ---------------------------------------------------------------------------
# m3-hybrid migrate --tenant / eval --tenant
# ---------------------------------------------------------------------------


def _untenanted(path: Path, ids: list[str], who: str) -> None:
    with HybridStore("src", dense_dim=DIM, path=str(path)) as s:
        s.add([_rec(i, {"who": who}) for i in ids])


def test_migrate_makes_collections_without_tenants_tenants_of_one_collection(tmp_path: Path) -> None:
    from shared.cli import main

    _untenanted(tmp_path / "one", ["1", "2"], "acme")
    _untenanted(tmp_path / "two", ["1"], "beta")
    dst = str(tmp_path / "dst")
    common = ["migrate", "--collection", "src", "--to", dst, "--to-collection", "shared", "--quiet"]
    assert main([*common, "--from", str(tmp_path / "one"), "--tenant", "acme"]) == 0
    assert main([*common, "--from", str(tmp_path / "two"), "--tenant", "beta", "--append"]) == 0
    with HybridStore("shared", path=dst, tenant="acme") as acme:
        assert {r.id: r.metadata["who"] for r in acme.scroll()} == {"1": "acme", "2": "acme"}
        beta = acme.for_tenant("beta")
        assert {r.id: r.metadata["who"] for r in beta.get(["1", "2"])} == {"1": "beta"}
        assert beta.query(dense=[1.0, 0, 0, 0])[0].metadata == {"who": "beta"}
        assert "tenant" in acme._backend._shard.info().payload_schema  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="several tenants' data"):
        HybridStore("shared", path=dst)
    # A tenanted source: --tenant copies that tenant's points only, still tenanted.
    assert (
        main(
            [
                "migrate",
                "--from",
                dst,
                "--collection",
                "shared",
                "--to",
                str(tmp_path / "b"),
                "--tenant",
                "beta",
                "--quiet",
            ]
        )
        == 0
    )
    with HybridStore("shared", path=str(tmp_path / "b"), tenant=ALL) as copy:
        assert [r.metadata["who"] for r in copy.scroll()] == ["beta"]


def test_migrate_into_a_tenanted_target_refuses_an_untenanted_copy_and_the_tenant_key_in_metadata(
    tmp_path: Path,
) -> None:
    from shared.migrate import migrate

    _untenanted(tmp_path / "one", ["1"], "acme")
    migrate(str(tmp_path / "one"), "src", str(tmp_path / "dst"), tenant="acme")
    with pytest.raises(ModelMismatchError, match="tenant key: source copy None, target 'tenant'"):
        migrate(str(tmp_path / "one"), "src", str(tmp_path / "dst"), append=True)
    with HybridStore("src", dense_dim=DIM, path=str(tmp_path / "bad")) as s:
        s.add([_rec("1", {"tenant": "x"})])
    with pytest.raises(InvalidInputError, match="point '1' has a metadata field 'tenant', the tenant key"):
        migrate(str(tmp_path / "bad"), "src", str(tmp_path / "dst2"), tenant="acme")


def test_eval_tenant_scores_the_same_through_a_tenants_store(tmp_path: Path) -> None:
    from shared.cli import main
    from tests.shared.evaluation.test_evaluation_e2e import write_dataset

    root = write_dataset(tmp_path / "d")
    rows = {}
    for name, extra in (
        ("plain", []),
        ("tenant", ["--tenant", "acme", "--keep-indexes", "--workdir", str(tmp_path / "w")]),
    ):
        argv = ["eval", "--data", str(root), "--small-models", "--presets", "none", "--modes", "dense,rrf"]
        assert main([*argv, "--bootstrap", "100", "--quiet", "--out", str(tmp_path / name), *extra]) == 0
        report = json.loads((tmp_path / name / "report.json").read_text())
        rows[name] = [(r["mode"], r["metrics"]["ndcg@10"]) for r in report["rows"]]
    assert rows["tenant"] == rows["plain"]
    (guard,) = (tmp_path / "w").rglob("m3_hybrid.json")
    assert json.loads(guard.read_text())["tenancy"] == {"key": "tenant"}


def test_groups_parents_and_context_windows_stay_inside_the_tenant(where: dict[str, Any]) -> None:
    """The same document ids in two tenants: each tenant's parents and neighbours are its own."""

    def doc(tenant: str) -> list[Record]:
        parent = _rec("doc", {"level": "doc", "who": tenant})
        chunks = [
            _rec(f"c{i}", {"level": "chunk", "parent_id": "doc", "position": i, "who": tenant})
            for i in range(3)
        ]
        return [parent, *chunks]

    a = _open(where, tenant="a")
    a.add(doc("a"))
    b = a.for_tenant("b") if "path" in where else _open(where, tenant="b")
    b.add(doc("b"))
    q = {"dense": [1.0, 0, 0, 0], "sparse": {1: 1.0}, "levels": ["chunk"]}
    for s, who in ((a, "a"), (b, "b")):
        (parent,) = s.query(**q, unit="parent", limit=5)
        assert (parent.id, parent.metadata["who"]) == ("doc", who)
        hits = s.query(**q, with_parent=True, context_window=1, limit=5)
        assert {h.metadata["who"] for h in hits} == {who}
        assert {h.parent.metadata["who"] for h in hits if h.parent is not None} == {who}
        assert {r.metadata["who"] for h in hits for r in h.window or []} == {who}
        assert len({h.group for h in s.query(**q, group_by="metadata.parent_id", limit=5)}) == 1
    for s in (b, a):
        s.close()
