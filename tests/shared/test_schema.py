"""Collection schema, point ids and the collection guard."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import InvalidInputError, InvalidTypeError, ModelMismatchError
from shared.schema import CollectionSchema, point_id
from shared.types import EncoderIdentity

IDENT = EncoderIdentity(
    model_id="BAAI/bge-m3",
    model_hash="",
    dense_dim=1024,
    truncate_dim=None,
    query_prompt="",
    document_prompt="",
    sparse_kind="bge-m3",
    colbert_dim=1024,
)


def test_point_id_is_deterministic_uuid5() -> None:
    a = point_id("doc-1")
    assert a == point_id("doc-1") != point_id("doc-2")
    assert uuid.UUID(a).version == 5
    assert point_id("") != point_id(" ")
    with pytest.raises(InvalidTypeError):
        point_id(3)  # type: ignore[arg-type]


def test_schema_from_identity() -> None:
    s = CollectionSchema.build(IDENT, colbert=True, mrl_dim=256)
    assert (s.dense_dim, s.sparse, s.colbert_dim, s.mrl_dim) == (1024, True, 1024, 256)
    assert s.vector_names == ("dense", "dense_mrl", "sparse", "colbert")
    truncated = EncoderIdentity(**{**IDENT.to_dict(), "truncate_dim": 512})
    assert CollectionSchema.build(truncated).dense_dim == 512
    dense_only = EncoderIdentity(**{**IDENT.to_dict(), "sparse_kind": None})
    assert not CollectionSchema.build(dense_only).sparse
    with pytest.raises(InvalidInputError, match="contradicts"):
        CollectionSchema.build(IDENT, dense_dim=768)


def test_guard_round_trip_and_mismatch_lists_fields() -> None:
    s = CollectionSchema.build(IDENT, quantization="int8")
    guard = s.guard_dict()
    assert CollectionSchema.from_guard(guard) == s
    assert s.check_guard(guard, "c") == {}
    other = EncoderIdentity(**{**IDENT.to_dict(), "model_id": "other/model", "query_prompt": "q: "})
    with pytest.raises(ModelMismatchError) as info:
        CollectionSchema.build(other, quantization="int8").check_guard(guard, "collection c")
    msg = str(info.value)
    assert "identity.model_id" in msg and "identity.query_prompt" in msg and "collection c" in msg
    with pytest.raises(ModelMismatchError, match="mrl_dim"):
        CollectionSchema.build(IDENT, mrl_dim=128, quantization="int8").check_guard(guard, "c")
    # Storage-only differences are reported, not refused.
    diffs = CollectionSchema.build(IDENT, quantization="binary").check_guard(guard, "c")
    assert set(diffs) == {"quantization"}
    with pytest.raises(ModelMismatchError, match="no guard record this version of m3-hybrid can read") as e:
        s.check_guard({}, "c")
    assert "recreate" not in str(e.value)  # never advise dropping the user's data
