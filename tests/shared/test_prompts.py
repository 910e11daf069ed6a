"""The prompt registry: which prefix each model family gets, and overrides."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInputError, InvalidTypeError
from shared.prompts import DEFAULT_E5_INSTRUCT_TASK, PROMPT_REGISTRY, lookup_prompts, resolve_prompts

BGE_EN = "Represent this sentence for searching relevant passages: "


@pytest.mark.parametrize(
    ("model_id", "query", "document"),
    [
        ("BAAI/bge-m3", "", ""),
        ("BAAI/bge-small-en-v1.5", BGE_EN, ""),
        ("BAAI/bge-large-en-v1.5", BGE_EN, ""),
        ("intfloat/e5-base-v2", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large-instruct", f"Instruct: {DEFAULT_E5_INSTRUCT_TASK}\nQuery: ", ""),
        ("nomic-ai/nomic-embed-text-v1.5", "search_query: ", "search_document: "),
        ("mixedbread-ai/mxbai-embed-large-v1", BGE_EN, ""),
        ("Snowflake/snowflake-arctic-embed-m-v2.0", "query: ", ""),
        ("Snowflake/snowflake-arctic-embed-l-v2.0", "query: ", ""),
        ("Snowflake/snowflake-arctic-embed-m-v1.5", BGE_EN, ""),
        ("Alibaba-NLP/gte-multilingual-base", "", ""),
        ("thenlper/gte-base", "", ""),
        ("Alibaba-NLP/gte-Qwen2-1.5B-instruct", f"Instruct: {DEFAULT_E5_INSTRUCT_TASK}\nQuery: ", ""),
        ("sentence-transformers/all-MiniLM-L6-v2", "", ""),
    ],
)
def test_registry_defaults(model_id: str, query: str, document: str) -> None:
    assert resolve_prompts(model_id) == (query, document)


def test_local_directory_matches_on_its_own_name_not_its_parents() -> None:
    assert resolve_prompts("/models/e5-user/multilingual-e5-small") == ("query: ", "passage: ")
    # "e5-" and "gte-" appear only in parent directories: no prompt.
    assert lookup_prompts("/home/e5-user/gte-cache/models/minilm") is None
    assert resolve_prompts("/srv/bge-small-en-v1.5/") == (BGE_EN, "")


def test_explicit_instructions_override_and_empty_disables() -> None:
    assert resolve_prompts("intfloat/e5-base-v2", "Q: ", None) == ("Q: ", "passage: ")
    assert resolve_prompts("intfloat/e5-base-v2", None, "D: ") == ("query: ", "D: ")
    assert resolve_prompts("intfloat/e5-base-v2", "", "") == ("", "")
    assert resolve_prompts("BAAI/bge-m3", "query: ", "") == ("query: ", "")


def test_task_fills_instruct_prompts_only() -> None:
    q, d = resolve_prompts("intfloat/multilingual-e5-large-instruct", task="Find the matching law")
    assert q == "Instruct: Find the matching law\nQuery: " and d == ""
    # A task means nothing to a fixed-prefix family.
    assert resolve_prompts("intfloat/e5-base-v2", task="anything") == ("query: ", "passage: ")


def test_shipped_prompts_used_only_for_unknown_models() -> None:
    shipped = {"query": "find: ", "passage": "doc: "}
    assert resolve_prompts("/models/my-own-model", model_prompts=shipped) == ("find: ", "doc: ")
    assert resolve_prompts("/models/my-own-model", model_prompts={"document": "d: "}) == ("", "d: ")
    # The registry wins over shipped files for a known family.
    assert resolve_prompts("intfloat/e5-base-v2", model_prompts=shipped) == ("query: ", "passage: ")


def test_bad_arguments() -> None:
    with pytest.raises(InvalidTypeError, match="query_instruction"):
        resolve_prompts("BAAI/bge-m3", 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="document_instruction"):
        resolve_prompts("BAAI/bge-m3", None, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="task"):
        resolve_prompts("intfloat/multilingual-e5-large-instruct", task="  ")


def test_registry_view_lists_families() -> None:
    assert {"bge-m3", "bge-en", "e5", "e5-instruct", "nomic", "mxbai", "arctic-v2", "gte"} <= set(
        PROMPT_REGISTRY
    )
