"""Pure tests of shared.layouts: conversions both ways, detection, refusals."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from shared.backends.base import ResultPoint
from shared.errors import InvalidInputError, UnsupportedOperationError
from shared.layouts import (
    LANGCHAIN,
    LLAMA_INDEX,
    LLAMA_INDEX_OLD_SPARSE,
    M3_HYBRID,
    CollectionInfo,
    Layout,
    StoredParts,
    convert_point,
    detect_layout,
    get_layout,
    langchain_layout,
    llama_index_layout,
)
from shared.schema import CollectionSchema, point_id

VEC = {"dense": [0.1, 0.2], "sparse": ([1, 5], [0.5, 0.25])}


def to_stored(layout: Layout, *args: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return layout.to_point(*args)


def from_stored(layout: Layout, pid: Any, vectors: dict[str, Any], payload: dict[str, Any]) -> StoredParts:
    """What the store reads back from a raw point."""
    return layout.record(ResultPoint(pid, None, payload, vectors))


def build_payload(doc_id: str, text: str, metadata: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """This package's payload, spelled out."""
    return {"text": text, "metadata": metadata, "doc_id": doc_id, "ref_doc_id": ref}


def test_ours_matches_the_store_payload_and_point_ids() -> None:
    pid, vectors, payload = to_stored(M3_HYBRID, "doc-1", "hello", {"a": 1}, "ref", VEC)
    assert pid == point_id("doc-1")
    assert vectors == VEC
    assert payload == build_payload("doc-1", "hello", {"a": 1}, "ref")
    parts = from_stored(M3_HYBRID, pid, vectors, payload)
    assert (parts.id, parts.text, parts.metadata, parts.ref_doc_id) == ("doc-1", "hello", {"a": 1}, "ref")
    assert parts.vectors == VEC


def test_langchain_round_trip_with_custom_keys_and_unnamed_dense() -> None:
    layout = langchain_layout("", "my-sparse", "body", "meta")
    uid = str(uuid.uuid4())
    pid, vectors, payload = to_stored(layout, uid, "hello", {"a": 1}, None, VEC)
    assert pid == uid
    assert set(vectors) == {"", "my-sparse"}
    assert payload == {"body": "hello", "meta": {"a": 1}}  # nothing langchain-qdrant does not write
    parts = from_stored(layout, pid, vectors, payload)
    assert (parts.id, parts.text, parts.metadata, parts.vectors) == (uid, "hello", {"a": 1}, VEC)
    # A non-UUID id gets a deterministic UUID point id and is kept next to langchain's keys.
    # langchain-qdrant cannot read a null text: a record without text is stored with "".
    assert to_stored(layout, uid, None, {}, None, VEC)[2]["body"] == ""
    pid2, _, payload2 = to_stored(layout, "doc-1", "t", {}, None, {"dense": [1.0]})
    assert pid2 == layout.point_id("doc-1") and pid2 != "doc-1"
    assert from_stored(layout, pid2, {}, payload2).id == "doc-1"
    # Unsigned integer ids stay integers (langchain-qdrant accepts them).
    assert layout.point_id("42") == 42
    assert layout.payload_key("metadata.a") == "meta.a"
    assert layout.payload_key("ref_doc_id") == "meta.ref_doc_id"


def test_llama_payload_is_what_llama_index_reads() -> None:
    node = TextNode(
        id_=str(uuid.uuid4()),
        text="the text",
        metadata={"author": "x"},
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-9")},
    )
    md = node_to_metadata_dict(node, remove_text=True)  # what our LlamaIndex adapter stores
    pid, vectors, payload = to_stored(LLAMA_INDEX, node.node_id, "the text", md, "doc-9", VEC)
    assert set(vectors) == {"text-dense", "text-sparse-new"}
    assert payload["doc_id"] == "doc-9" and payload["author"] == "x"
    back = metadata_dict_to_node(payload)
    assert back.node_id == node.node_id and back.get_content() == "the text"
    assert back.ref_doc_id == "doc-9"
    parts = from_stored(LLAMA_INDEX, pid, vectors, payload)
    assert (parts.id, parts.text, parts.ref_doc_id) == (node.node_id, "the text", "doc-9")


def test_llama_payload_built_for_plain_records() -> None:
    uid = str(uuid.uuid4())
    _, _, payload = to_stored(LLAMA_INDEX_OLD_SPARSE, uid, "plain", {"k": "v"}, None, VEC)
    node = metadata_dict_to_node(payload)
    assert node.node_id == uid and node.get_content() == "plain" and node.metadata == {"k": "v"}
    assert payload["doc_id"] == "None" and payload["k"] == "v"
    assert from_stored(LLAMA_INDEX_OLD_SPARSE, uid, {}, payload).ref_doc_id is None
    assert LLAMA_INDEX_OLD_SPARSE.vector_name("sparse") == "text-sparse"
    assert json.loads(payload["_node_content"])["text"] == "plain"


def test_convert_point_between_layouts_keeps_ids_text_and_vectors() -> None:
    uid = str(uuid.uuid4())
    lc_pid, lc_vec, lc_payload = to_stored(LANGCHAIN, uid, "hello", {"a": 1}, None, VEC)
    pid, vectors, payload = convert_point(lc_pid, lc_vec, lc_payload, LANGCHAIN)
    assert pid == point_id(uid) and vectors == VEC
    assert payload == build_payload(uid, "hello", {"a": 1}, None)
    back = convert_point(pid, vectors, payload, M3_HYBRID, LANGCHAIN)
    assert back == (lc_pid, lc_vec, lc_payload)


def test_foreign_layouts_refuse_what_they_cannot_hold() -> None:
    with pytest.raises(UnsupportedOperationError, match="ColBERT"):
        to_stored(LANGCHAIN, "a", "t", {}, None, {"colbert": [[1.0]]})
    with pytest.raises(UnsupportedOperationError, match="MRL"):
        LLAMA_INDEX.check_schema(CollectionSchema(dense_dim=8, mrl_dim=4))
    with pytest.raises(UnsupportedOperationError, match="ColBERT"):
        LANGCHAIN.check_schema(CollectionSchema(dense_dim=8, colbert=True, colbert_dim=4))
    M3_HYBRID.check_schema(CollectionSchema(dense_dim=8, mrl_dim=4, colbert=True, colbert_dim=4))


def test_detect_layout() -> None:
    assert detect_layout(CollectionInfo(dense={"dense": 4}, sparse={"sparse": False})) is M3_HYBRID
    assert detect_layout(CollectionInfo(dense={"": 4}, sparse={"langchain-sparse": False})) == LANGCHAIN
    named = detect_layout(CollectionInfo(dense={"vec": 4}, sparse={"langchain-sparse": False}))
    assert named == langchain_layout("vec")
    assert (
        detect_layout(CollectionInfo(dense={"text-dense": 4}, sparse={"text-sparse-new": True}))
        == LLAMA_INDEX
    )
    assert (
        detect_layout(CollectionInfo(dense={"text-dense": 4}, sparse={"text-sparse": False}))
        == LLAMA_INDEX_OLD_SPARSE
    )
    unnamed_llama = detect_layout(
        CollectionInfo(dense={"": 4}, sparse={}, sample_payload={"_node_content": "{}"})
    )
    assert unnamed_llama == llama_index_layout("")
    assert detect_layout(CollectionInfo(dense={"": 4}, sparse={})) == LANGCHAIN
    # The payload decides over the vector names once points are stored.
    custom = CollectionInfo(
        dense={"vec": 4}, sparse={"langchain-sparse": False}, sample_payload={"body": "t", "meta": {}}
    )
    assert detect_layout(custom) == langchain_layout(
        "vec", content_payload_key="body", metadata_payload_key="meta"
    )
    named_dense = CollectionInfo(
        dense={"dense": 4}, sparse={}, sample_payload={"page_content": "t", "metadata": None}
    )
    assert detect_layout(named_dense) == langchain_layout("dense")
    renamed = CollectionInfo(dense={"v": 4}, sparse={"s": False}, sample_payload={"body": "t", "meta": None})
    assert detect_layout(renamed) == langchain_layout("v", "s", "body", "meta")
    ours = CollectionInfo(dense={"dense": 4}, sparse={}, sample_payload=build_payload("a", "t", {}, None))
    assert detect_layout(ours) is M3_HYBRID
    with pytest.raises(InvalidInputError, match="layout="):
        detect_layout(CollectionInfo(dense={"v": 4}, sparse={}, sample_payload={"x": 1}))
    assert get_layout("llama_index") is LLAMA_INDEX and get_layout(LANGCHAIN) is LANGCHAIN
    with pytest.raises(InvalidInputError, match="unknown layout"):
        get_layout("chroma")
