"""EncoderConfig is the one home of the encoder options: every class and load_encoder use it,
the adapters' fields follow it, unknown options are refused by name, and the small models
are found by name in the packages that ship them."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from shared.encoders import (
    ENCODER_OPTIONS,
    MINILM,
    PACKAGED_MODELS,
    SPLADE_TINY,
    DenseEncoder,
    EncoderConfig,
    EncoderOptions,
    SpladeEncoder,
    load_encoder,
    packaged_model_path,
)
from shared.encoders._hf import resolve_model
from shared.encoders.config import encoder_option_default, encoder_option_doc, options_from
from shared.encoders.packaged import PackagedModel, packaged_model_dir
from shared.errors import InvalidInputError, InvalidTypeError, ModelLoadError


def test_the_typed_keywords_are_exactly_the_config_fields() -> None:
    hints = typing.get_type_hints(EncoderOptions)
    fields = {f.name: f for f in dataclasses.fields(EncoderConfig)}
    assert set(hints) == set(fields) == ENCODER_OPTIONS
    config_hints = typing.get_type_hints(EncoderConfig)
    assert {n: hints[n] for n in fields} == {n: config_hints[n] for n in fields}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"batch_size": 0}, InvalidInputError, "batch_size"),
        ({"cache_size": -1}, InvalidInputError, "cache_size"),
        ({"threads": 0}, InvalidInputError, "threads"),
        ({"max_batch_tokens": -3}, InvalidInputError, "max_batch_tokens"),
        ({"precision": "int4"}, InvalidInputError, "precision must be one of"),
        ({"fp16": "yes"}, InvalidTypeError, "fp16"),
        ({"max_length": 1.5}, InvalidTypeError, "max_length"),
        ({"query_instruction": 3}, InvalidTypeError, "query_instruction"),
    ],
)
def test_each_option_is_checked_once_when_the_config_is_built(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        EncoderConfig(**options)


def test_max_length_is_checked_against_the_models_limit() -> None:
    assert EncoderConfig().max_length_within(512) == 512
    assert EncoderConfig().max_length_within(512, default=256) == 256
    assert EncoderConfig(max_length=64).max_length_within(512) == 64
    with pytest.raises(InvalidInputError, match=r"max_length=600 is out of range: this model takes 4\.\.512"):
        EncoderConfig(max_length=600).max_length_within(512)


def test_the_sharing_key_holds_what_changes_the_vectors_only() -> None:
    base = EncoderConfig()
    assert EncoderConfig(batch_size=8, cache_size=0, threads=1, show_progress=False).sharing_key() == (
        base.sharing_key()
    )
    assert EncoderConfig(truncate_dim=128).sharing_key() != base.sharing_key()
    assert EncoderConfig(query_instruction="").sharing_key() != base.sharing_key()


def test_adapter_fields_take_the_config_defaults_and_descriptions() -> None:
    from langchain_ext import BGEM3Embeddings, BGEM3SparseEmbeddings
    from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding

    renamed = {"embed_batch_size": "batch_size", "text_instruction": "document_instruction"}
    own_defaults = {"show_progress"}  # off in both frameworks: they show their own progress
    for cls in (BGEM3Embedding, BGEM3SparseEmbedding, BGEM3Embeddings, BGEM3SparseEmbeddings):
        seen = set()
        for name, info in cls.model_fields.items():
            option = renamed.get(name, name)
            if option not in ENCODER_OPTIONS:
                continue
            seen.add(option)
            assert info.description == encoder_option_doc(option), (cls.__name__, name)
            if option not in own_defaults:
                assert info.default == encoder_option_default(option), (cls.__name__, name)
        # Every option but the ones the classes decide themselves is a field.
        assert ENCODER_OPTIONS - seen <= {"truncate_dim"}, (cls.__name__, ENCODER_OPTIONS - seen)


def test_options_from_reads_fields_under_their_framework_names() -> None:
    values = {"embed_batch_size": 8, "text_instruction": "", "device": "cpu", "model_name": "x"}
    got = options_from(values, {"batch_size": "embed_batch_size", "document_instruction": "text_instruction"})
    assert got == {"batch_size": 8, "document_instruction": "", "device": "cpu"}


# -- unknown options ------------------------------------------------------------------


def test_load_encoder_refuses_a_misspelt_option_naming_the_near_one(minilm_dir: Path) -> None:
    with pytest.raises(
        InvalidTypeError,
        match=r"load_encoder got unknown option 'trunc_dim' \(did you mean 'truncate_dim'\?\)",
    ):
        load_encoder(minilm_dir, trunc_dim=128)  # type: ignore[call-arg]


def test_an_encoder_class_refuses_a_misspelt_option_and_one_it_does_not_use(minilm_dir: Path) -> None:
    with pytest.raises(
        InvalidTypeError, match=r"DenseEncoder got unknown option 'batchsize' \(did you mean 'batch_size'\?\)"
    ):
        DenseEncoder(minilm_dir, batchsize=4)  # type: ignore[call-arg]
    with pytest.raises(InvalidInputError, match="DenseEncoder does not use precision"):
        DenseEncoder(minilm_dir, precision="int8")


def test_a_config_and_keywords_combine(minilm_dir: Path) -> None:
    enc = DenseEncoder(minilm_dir, EncoderConfig(device="cpu", cache_size=3), show_progress=False)
    assert enc.options == EncoderConfig(device="cpu", cache_size=3, show_progress=False)
    assert enc.cache.maxsize == 3 and enc.show_progress is False


def test_the_embedding_classes_refuse_unknown_fields(minilm_dir: Path) -> None:
    from langchain_ext import BGEM3Embeddings
    from llama_index_ext import BGEM3Embedding

    # LlamaIndex's pydantic base dropped unknown keywords without a word.
    with pytest.raises(
        InvalidTypeError,
        match=r"BGEM3Embedding got unknown option 'truncate_dims' \(did you mean 'truncate_dim'\?\)",
    ):
        BGEM3Embedding(model_name=str(minilm_dir), truncate_dims=128)
    with pytest.raises(InvalidInputError, match=r"did you mean 'batch_size'"):
        BGEM3Embeddings(model_name=str(minilm_dir), batchsize=4)  # type: ignore[call-arg]


def test_the_llama_index_retriever_and_langchain_constructors_refuse_unknown_options(
    minilm_dir: Path, tmp_path: Path
) -> None:
    from langchain_ext import BGEM3Embeddings
    from langchain_ext import HybridQdrantVectorStore as LangChainStore
    from llama_index_ext import HybridQdrantRetriever, HybridQdrantVectorStore

    store = HybridQdrantVectorStore("r", path=tmp_path / "llama", dense_dim=4)
    try:
        with pytest.raises(InvalidTypeError, match=r"did you mean 'similarity_top_k'"):
            HybridQdrantRetriever(store, similarity_topk=3)  # type: ignore[call-arg]
    finally:
        store.client.close()
    emb = BGEM3Embeddings(model_name=str(minilm_dir))
    for build in (
        lambda: LangChainStore.from_texts(["a"], emb, path=str(tmp_path / "a"), quantisation="int8"),
        lambda: LangChainStore.from_existing_collection("c", emb, path=str(tmp_path / "b"), fusoin="dbsf"),
    ):
        with pytest.raises(InvalidTypeError, match="did you mean"):
            build()


# -- packaged small models --------------------------------------------------------------


def test_a_packaged_model_is_found_by_name_offline() -> None:
    minilm = resolve_model(MINILM)
    assert minilm.path == packaged_model_path(MINILM) and minilm.model_id == MINILM
    assert minilm.from_hub  # the hub's model by id: the same identity as its hub copy
    splade = resolve_model(SPLADE_TINY)
    assert splade.model_id == SPLADE_TINY and not splade.from_hub
    assert isinstance(load_encoder(MINILM, device="cpu"), DenseEncoder)
    assert isinstance(load_encoder(None, sparse_model=SPLADE_TINY, device="cpu"), SpladeEncoder)


def test_a_packaged_model_without_its_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.encoders.packaged as packaged

    missing = PackagedModel("no_such_package_m3h", "model", "pip install no-such-package==1", False)
    monkeypatch.setitem(packaged.PACKAGED_MODELS, "tiny-thing", missing)  # type: ignore[index]
    assert packaged_model_dir("tiny-thing") is None
    with pytest.raises(ModelLoadError, match=r"no_such_package_m3h.*pip install no-such-package==1"):
        resolve_model("tiny-thing")
    with pytest.raises(ModelLoadError, match="not a packaged model"):
        packaged_model_path("not-registered")
    assert set(PACKAGED_MODELS) >= {MINILM, SPLADE_TINY}


def test_the_langchain_retriever_refuses_an_unknown_field_naming_the_near_one(
    minilm_dir: Path, tmp_path: Path
) -> None:
    from langchain_ext import BGEM3Embeddings, HybridQdrantRetriever
    from langchain_ext import HybridQdrantVectorStore as LangChainStore

    store = LangChainStore(BGEM3Embeddings(model_name=str(minilm_dir)), path=str(tmp_path))
    with store, pytest.raises(InvalidInputError, match=r"did you mean 'search_kwargs'"):
        HybridQdrantRetriever(vectorstore=store, search_kwarg={"fusion": "m3"})  # type: ignore[call-arg]
