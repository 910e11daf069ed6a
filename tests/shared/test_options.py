"""Every option has one home (StoreConfig, EncoderConfig); the public signatures that repeat
them for IDEs are checked against it here, and unknown options are refused by name."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from shared.config import STORE_OPTIONS, StoreConfig, option_doc
from shared.errors import InvalidTypeError
from shared.store import HybridStore

_DEFAULTS = StoreConfig()

#: Store options an adapter deliberately does not take, and why (anything else missing fails).
_LANGCHAIN_LEAVES_OUT = {
    "dense_dim": "the embedding's size is learned from the Embeddings object",
    "sparse": "derived from the sparse embeddings given",
    "sparse_datatype": "a server-side storage detail not exposed by langchain-qdrant either",
    "shard_number": "as above",
    "replication_factor": "as above",
    "write_consistency_factor": "as above",
}
_LLAMA_LEAVES_OUT = {
    "sparse_datatype": "a server-side storage detail not exposed by llama-index's Qdrant store either",
    "shard_number": "as above",
    "replication_factor": "as above",
    "write_consistency_factor": "as above",
    "retrieval_mode": "LlamaIndex picks the mode per VectorStoreQuery",
}
#: Where an adapter's default is a deliberate, documented difference.
_LANGCHAIN_OWN_DEFAULTS = {"retrieval_mode": None}


def _keyword_defaults(func: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"
    }


def test_hybrid_store_keywords_are_exactly_the_store_config() -> None:
    params = _keyword_defaults(HybridStore.__init__)
    missing = [name for name in STORE_OPTIONS if name not in params]
    assert not missing, f"HybridStore.__init__ lacks StoreConfig options {missing}"
    wrong = {n: params[n] for n in STORE_OPTIONS if params[n] != getattr(_DEFAULTS, n)}
    assert not wrong, f"HybridStore.__init__ defaults differ from StoreConfig: {wrong}"


def test_hybrid_store_passes_every_keyword_into_its_config(tmp_path: Any) -> None:
    # One non-default value per option that a fresh embedded collection accepts.
    given = {
        "dense_dim": 8, "sparse": True, "sparse_idf": True, "quantization": "int8", "on_disk": True,
        "compact_every": 7, "background_index_min": 9, "mrl_dim": 4, "mrl_quantization": "int8",
        "sparse_datatype": "float16",
        "retrieval_mode": "dense", "fusion": "dbsf", "rrf_k": 30, "dense_weight": 0.5,
        "sparse_weight": 0.25, "candidate_k": 42, "sparse_normalization": "query",
    }  # fmt: skip
    store = HybridStore("opts", path=str(tmp_path), **given)
    try:
        got = {name: getattr(store.config, name) for name in given}
    finally:
        store.close()
    assert got == given


def test_llama_index_store_fields_follow_the_store_config() -> None:
    from llama_index_ext import HybridQdrantVectorStore

    model_fields = HybridQdrantVectorStore.model_fields
    missing = [n for n in STORE_OPTIONS if n not in model_fields and n not in _LLAMA_LEAVES_OUT]
    assert not missing, f"HybridQdrantVectorStore (LlamaIndex) lacks store options {missing}"
    for name in STORE_OPTIONS:
        if name in model_fields:
            assert model_fields[name].default == getattr(_DEFAULTS, name), name
            assert model_fields[name].description == option_doc(name), name


def test_langchain_store_keywords_follow_the_store_config() -> None:
    from langchain_ext import HybridQdrantVectorStore

    params = _keyword_defaults(HybridQdrantVectorStore.__init__)
    missing = [n for n in STORE_OPTIONS if n not in params and n not in _LANGCHAIN_LEAVES_OUT]
    assert not missing, f"HybridQdrantVectorStore (LangChain) lacks store options {missing}"
    doc = inspect.getdoc(HybridQdrantVectorStore) or ""
    for name in STORE_OPTIONS:
        if name in params:
            expected = _LANGCHAIN_OWN_DEFAULTS.get(name, getattr(_DEFAULTS, name))
            assert params[name] == expected, name
            assert name in doc, f"the LangChain store's docstring does not describe {name}"


def test_store_config_describes_every_option() -> None:
    for f in dataclasses.fields(StoreConfig):
        assert option_doc(f.name).strip(), f.name


@pytest.mark.parametrize(
    ("build", "owner"),
    [
        (lambda p: HybridStore("x", path=p, dense_dim=4, quantisation="int8"), "HybridStore"),
        (
            lambda p: __import__("llama_index_ext").HybridQdrantVectorStore(
                "x", path=p, dense_dim=4, quantisation="int8"
            ),
            "HybridQdrantVectorStore",
        ),
        (
            lambda p: __import__("langchain_ext").HybridQdrantVectorStore(None, path=p, quantisation="int8"),
            "HybridQdrantVectorStore",
        ),
    ],
    ids=["core", "llama_index", "langchain"],
)
def test_a_misspelt_store_option_is_refused_with_the_near_name(build: Any, owner: str, tmp_path: Any) -> None:
    near = r"unknown option 'quantisation' \(did you mean 'quantization'\?\)"
    with pytest.raises(InvalidTypeError, match=rf"{owner} got {near}"):
        build(str(tmp_path))
    # Nothing was created under the misspelt option: the same path opens as a new collection.
    assert not any(tmp_path.iterdir()) or HybridStore("x", path=str(tmp_path), dense_dim=4).close() is None


def test_an_unknown_option_with_no_near_name_lists_the_valid_ones(tmp_path: Any) -> None:
    with pytest.raises(InvalidTypeError, match=r"valid options: .*quantization"):
        HybridStore("x", path=str(tmp_path), dense_dim=4, zzz=1)
