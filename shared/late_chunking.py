"""Late chunking in the store: group chunk records by document, find each document's text,
and fill the records' vectors from one pass per document (:mod:`shared.encoders.late`).

Every record carries :class:`~shared.types.ChunkOf` (its document's key and its character
offsets; the adapters fill it from LlamaIndex's ``ref_doc_id`` / ``start_char_idx`` /
``end_char_idx`` or LangChain's metadata key and ``start_index``). A document's text is

* given (``documents={key: text}``): each chunk's text must equal ``text[start:end]``;
* or rebuilt from its chunks: each chunk's text placed at its offsets. Chunks may overlap
  (splitters overlap them by design) but must agree on the characters they share; a gap
  between chunks (what a splitter drops: whitespace, a separator) is filled with spaces,
  since its text is not known, and the text ends with the last chunk.

A chunk's vectors always come from its document's pass: vectors a record brings (an
embedding LlamaIndex's index computed from the chunk alone) are replaced. Everything is
checked and encoded before the store writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .encoders.late import require_late_chunking
from .errors import InvalidInputError, InvalidTypeError
from .types import ChunkOf, Record

__all__ = [
    "DEFAULT_DOCUMENT_KEY",
    "HOW_TO_LOCATE",
    "chunk_from_metadata",
    "chunk_from_offsets",
    "documents_by_key",
    "late_chunk_records",
    "rebuild_document",
]

#: The metadata key that names a LangChain chunk's document (LangChain's loaders set ``source``).
DEFAULT_DOCUMENT_KEY = "source"
#: Where a LangChain splitter with ``add_start_index=True`` puts a chunk's first character.
START_INDEX_KEY = "start_index"

#: What each framework's chunks need to be late-chunked (for error messages).
HOW_TO_LOCATE = (
    "late chunking needs each chunk's document key and character offsets (LlamaIndex: nodes from a "
    "node parser, with ref_doc_id and start/end_char_idx; LangChain: a splitter with "
    "add_start_index=True and the document key in metadata; Python: Record.chunk_of)"
)
#: Documents encoded per call of the encoder (their windows are batched together).
_DOCUMENTS_PER_CALL = 64


def chunk_from_offsets(document: Any, start: Any, end: Any) -> ChunkOf | None:
    """A chunk's place from a document key and offsets (None when any is missing: not located)."""
    if document is None or start is None or end is None:
        return None
    return ChunkOf(str(document), start, end)


def chunk_from_metadata(metadata: Mapping[str, Any], key: str, text: str) -> ChunkOf | None:
    """A LangChain chunk's place: ``metadata[key]``, ``metadata["start_index"]`` and its length."""
    start = metadata.get(START_INDEX_KEY)
    end = start + len(text) if isinstance(start, int) and not isinstance(start, bool) else None
    return chunk_from_offsets(metadata.get(key), start, end)


def documents_by_key(pairs: Sequence[tuple[Mapping[str, Any], str]], key: str) -> dict[str, str]:
    """Whole documents' texts by their key (``metadata[key]``), for ``documents=``."""
    out: dict[str, str] = {}
    for i, (metadata, text) in enumerate(pairs):
        value = metadata.get(key)
        if value is None:
            raise InvalidInputError(f"source document {i} has no metadata {key!r} (the document key)")
        out[str(value)] = text
    return out


def _name(rec: Record, index: int) -> str:
    return f"record {rec.id!r} (index {index})"


def _located(records: Sequence[Record]) -> dict[str, list[int]]:
    """Record indices per document key, in first-seen order; refuses a record that has no place."""
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        where = rec.chunk_of
        if where is None:
            raise InvalidInputError(f"{_name(rec, i)}: no document key and offsets; {HOW_TO_LOCATE}")
        if not isinstance(where, ChunkOf):
            raise InvalidTypeError(f"{_name(rec, i)}: chunk_of must be a shared.types.ChunkOf")
        if not isinstance(rec.text, str) or not rec.text:
            raise InvalidInputError(f"{_name(rec, i)}: a late-chunked record needs its chunk text")
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (where.start, where.end))
        if not ok or not 0 <= where.start < where.end:
            raise InvalidInputError(
                f"{_name(rec, i)}: offsets ({where.start!r}, {where.end!r}) are not a character range"
            )
        if where.end - where.start != len(rec.text):
            raise InvalidInputError(
                f"{_name(rec, i)}: offsets ({where.start}, {where.end}) span {where.end - where.start} "
                f"characters but its text has {len(rec.text)}: they do not locate it in the document"
            )
        groups.setdefault(where.document, []).append(i)
    return groups


def rebuild_document(records: Sequence[Record], indices: Sequence[int]) -> str:
    """The document text the chunks ``records[i]`` (``i`` in ``indices``) were cut from."""
    order = sorted(indices, key=lambda i: (_at(records[i]).start, _at(records[i]).end))
    end = max(_at(records[i]).end for i in order)
    chars: list[str | None] = [None] * end
    owner: list[int] = [-1] * end
    for i in order:
        rec, at = records[i], _at(records[i])
        text = rec.text or ""
        for k, ch in enumerate(text):
            pos = at.start + k
            if chars[pos] is not None and chars[pos] != ch:
                other = owner[pos]
                raise InvalidInputError(
                    f"{_name(rec, i)} and {_name(records[other], other)} of document {at.document!r} "
                    f"overlap at character {pos} with different text: their offsets do not match "
                    "one document (pass the document's text to check them against it)"
                )
            chars[pos], owner[pos] = ch, i
    return "".join(" " if ch is None else ch for ch in chars)


def _at(rec: Record) -> ChunkOf:
    assert rec.chunk_of is not None  # _located checked every record
    return rec.chunk_of


def _document_text(
    key: str, records: Sequence[Record], indices: list[int], documents: Mapping[str, str] | None
) -> str:
    if documents is None or key not in documents:
        return rebuild_document(records, indices)
    text = documents[key]
    if not isinstance(text, str):
        raise InvalidTypeError(f"documents[{key!r}] must be the document's text (str)")
    for i in indices:
        rec, at = records[i], _at(records[i])
        if at.end > len(text):
            raise InvalidInputError(
                f"{_name(rec, i)}: offsets ({at.start}, {at.end}) are outside document {key!r} "
                f"({len(text)} characters)"
            )
        found = text[at.start : at.end]
        if found != rec.text:
            raise InvalidInputError(
                f"{_name(rec, i)}: offsets ({at.start}, {at.end}) do not match document {key!r}: "
                f"the document has {found[:40]!r}... there, the chunk {(rec.text or '')[:40]!r}..."
            )
    return text


def late_chunk_records(
    records: Sequence[Record],
    documents: Mapping[str, str] | None,
    encoder: Any,
    outputs: Sequence[str],
    batch_size: int,
) -> list[Record]:
    """Copies of ``records`` with the vectors ``outputs`` late-chunked (see the module docstring)."""
    if documents is not None and not isinstance(documents, Mapping):
        raise InvalidTypeError(f"documents must map document keys to texts, got {type(documents).__name__}")
    chunker = require_late_chunking(encoder)
    groups = _located(records)
    keys = list(groups)
    texts = [_document_text(k, records, groups[k], documents) for k in keys]
    out = list(records)
    if not outputs:
        return out
    for s in range(0, len(keys), _DOCUMENTS_PER_CALL):
        part = keys[s : s + _DOCUMENTS_PER_CALL]
        idx = [groups[k] for k in part]
        results = chunker.encode_chunks_batch(
            texts[s : s + _DOCUMENTS_PER_CALL],
            [[(_at(records[i]).start, _at(records[i]).end) for i in doc] for doc in idx],
            outputs=list(outputs),
            batch_size=batch_size,
            chunk_names=[[_name(records[i], i) for i in doc] for doc in idx],
        )
        for doc, result in zip(idx, results, strict=True):
            for row, i in enumerate(doc):
                out[i] = replace(
                    records[i],
                    dense=result.dense[row] if result.dense is not None else records[i].dense,
                    sparse=result.sparse[row] if result.sparse is not None else records[i].sparse,
                    colbert=result.colbert[row] if result.colbert is not None else records[i].colbert,
                )
    return out
