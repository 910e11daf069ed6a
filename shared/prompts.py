"""Instruction prefixes ("prompts") of embedding-model families.

Many retrieval models were trained with a prefix on queries and/or documents and
lose accuracy without it.  :func:`resolve_prompts` picks the right pair for a model
id from :data:`PROMPT_REGISTRY`; an explicit instruction always wins, ``""``
disables a prompt, and ``None`` means "the registry default".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidInputError, InvalidTypeError
from .families import match_family

__all__ = [
    "DEFAULT_E5_INSTRUCT_TASK",
    "PROMPT_REGISTRY",
    "PromptSpec",
    "lookup_prompts",
    "resolve_prompts",
]

#: The task E5-instruct and gte-Qwen models were evaluated with for web-search retrieval.
DEFAULT_E5_INSTRUCT_TASK = "Given a web search query, retrieve relevant passages that answer the query"

_BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
_BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："


@dataclass(frozen=True)
class PromptSpec:
    """The prompts of one model family.

    ``query`` may contain ``{task}``, filled from the caller's task or ``default_task``.
    """

    family: str
    query: str = ""
    document: str = ""
    default_task: str | None = None

    def query_prompt(self, task: str | None = None) -> str:
        if "{task}" not in self.query:
            return self.query
        return self.query.replace("{task}", task or self.default_task or "")


# Ordered: the first pattern that matches the model id (lower-cased, searched
# anywhere, so "BAAI/bge-m3" and "/models/bge-m3" both match) wins.  More specific
# patterns come before general ones (e5-instruct before e5, bge-m3 before bge).
_REGISTRY: tuple[tuple[str, PromptSpec], ...] = (
    (r"bge-m3", PromptSpec("bge-m3")),
    (r"bge-(small|base|large)-en-v1\.5|bge-(small|base|large)-en\b", PromptSpec("bge-en", _BGE_EN_QUERY)),
    (r"bge-(small|base|large)-zh", PromptSpec("bge-zh", _BGE_ZH_QUERY)),
    (
        r"e5-[a-z0-9-]*instruct",
        PromptSpec("e5-instruct", "Instruct: {task}\nQuery: ", "", DEFAULT_E5_INSTRUCT_TASK),
    ),
    (r"(^|[/_-])e5-|multilingual-e5", PromptSpec("e5", "query: ", "passage: ")),
    (r"nomic-embed-text", PromptSpec("nomic", "search_query: ", "search_document: ")),
    (r"mxbai-embed-large", PromptSpec("mxbai", _BGE_EN_QUERY)),
    # Arctic-embed v2.0 (m and l) use "query: " on queries only; v1/v1.5 use the BGE query prompt.
    (r"snowflake-arctic-embed-[a-z]+-v2", PromptSpec("arctic-v2", "query: ")),
    (r"snowflake-arctic-embed", PromptSpec("arctic", _BGE_EN_QUERY)),
    # gte-Qwen*-instruct: instruction on queries; the BERT-style gte models take no prompt.
    (
        r"gte-qwen[0-9.]*-[0-9.]+b-instruct",
        PromptSpec("gte-qwen-instruct", "Instruct: {task}\nQuery: ", "", DEFAULT_E5_INSTRUCT_TASK),
    ),
    (r"(^|[/_-])gte-", PromptSpec("gte")),
)

#: Public read-only view: family name -> spec.
PROMPT_REGISTRY: Mapping[str, PromptSpec] = {spec.family: spec for _, spec in _REGISTRY}


def lookup_prompts(model_id: str) -> PromptSpec | None:
    """The registry entry for ``model_id`` (hub id or directory), or None if unknown."""
    return match_family(_REGISTRY, model_id)


def _check(value: str | None, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a str or None, not {type(value).__name__}")


def resolve_prompts(
    model_id: str,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    *,
    task: str | None = None,
    model_prompts: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Return the ``(query_prompt, document_prompt)`` to prepend for ``model_id``.

    Precedence per side: the explicit instruction (``""`` disables), then the
    registry entry, then ``model_prompts`` (prompts shipped in the model directory,
    e.g. ``config_sentence_transformers.json``: keys ``query`` and ``document`` /
    ``passage``), then no prompt.  ``task`` fills ``{task}`` in instruct-style prompts.
    """
    _check(query_instruction, "query_instruction")
    _check(document_instruction, "document_instruction")
    _check(task, "task")
    if task is not None and not task.strip():
        raise InvalidInputError("task must not be empty")
    spec = lookup_prompts(model_id)
    shipped = dict(model_prompts or {})
    if spec is not None:
        default_q, default_d = spec.query_prompt(task), spec.document
    else:
        default_q = shipped.get("query", "")
        default_d = shipped.get("document", shipped.get("passage", ""))
    query = default_q if query_instruction is None else query_instruction
    document = default_d if document_instruction is None else document_instruction
    return query, document
