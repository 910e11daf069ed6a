"""Readers for what ``m3-hybrid index`` ingests: JSONL, Parquet, CSV, a directory of text/Markdown
files, or Python records; a ``ray.data.Dataset`` is read by :mod:`shared.indexing.ray_runner`.

Every reader yields :class:`Row` batches: one row per input record (or per chunk when a
chunker is given), carrying the record or the reason it is bad, and *where* it came from
(``file:line``, ``file:row``, the file itself, or ``item N``), so a bad record is reported
with its id and place while the others go on. Ids are the source's own (``--id-field``) or,
when a record has none, deterministic: ``<file>:<line>`` (``<file>`` relative to the
source), so a rerun gives every record the same id and skips what is already stored.

Sources are split into *parts* (one per file) that can be read independently, in one
process or by Ray tasks; a part is read lazily in batches, so memory stays bounded.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError, MissingDependencyError
from ..types import Record
from ..validation import check_utf8

__all__ = [
    "FORMATS",
    "TEXT_SUFFIXES",
    "Chunker",
    "Fields",
    "Row",
    "SourcePart",
    "chunk_rows",
    "plan_parts",
    "read_part",
    "rows_from_items",
]

#: The file formats ``--from`` understands (chosen by suffix, or ``format=``).
FORMATS = ("jsonl", "parquet", "csv", "text")
#: Files a directory source reads as one document each (other files are ignored).
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
_SUFFIX_FORMAT = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
}

#: Splits one document's text into chunk texts (e.g. a LangChain/LlamaIndex splitter's ``split_text``).
Chunker = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class Fields:
    """Which field holds what: ``text`` and ``id`` (None: derived from the place), and the
    metadata fields (None: every other field)."""

    text: str = "text"
    id: str | None = "id"
    metadata: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text:
            raise InvalidInputError(f"the text field must be a non-empty name, got {self.text!r}")


@dataclass
class Row:
    """One record to index, or the reason it cannot be (``error``), with where it came from."""

    where: str
    id: str | None = None
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ref_doc_id: str | None = None
    error: str | None = None

    def to_record(self) -> Record:
        assert self.id is not None and self.error is None
        return Record(id=self.id, text=self.text, metadata=self.metadata, ref_doc_id=self.ref_doc_id)


@dataclass(frozen=True)
class SourcePart:
    """One independently readable piece of a source: a file, with its name in ids."""

    path: str
    format: str
    #: The file's name in derived ids and error places (relative to the source).
    name: str


def plan_parts(source: str | os.PathLike[str], format: str | None = None) -> list[SourcePart]:
    """The parts of a file or directory source, in a stable order.

    A directory is read as text/Markdown documents (one per file, ids = relative paths)
    unless ``format`` names a structured format, then every file of that format in it is read.
    """
    path = Path(source).expanduser()
    if format is not None and format not in FORMATS:
        raise InvalidInputError(f"unknown source format {format!r}; use one of {', '.join(FORMATS)}")
    if path.is_dir():
        fmt = format or "text"
        if fmt == "text":
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES]
        else:
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and _format_of(p) == fmt]
        if not files:
            wanted = ", ".join(TEXT_SUFFIXES) if fmt == "text" else f"{fmt} files"
            raise InvalidInputError(f"no {wanted} in the directory {path}")
        return [SourcePart(str(p), fmt, p.relative_to(path).as_posix()) for p in files]
    if not path.is_file():
        raise InvalidInputError(f"no file or directory at {path}")
    found = format or _format_of(path)
    if found is None:
        raise InvalidInputError(
            f"cannot tell the format of {path} from its suffix; give the format ({', '.join(FORMATS)})"
        )
    return [SourcePart(str(path), found, path.name)]


def _format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    return _SUFFIX_FORMAT.get(suffix)


def read_part(part: SourcePart, fields: Fields, batch_size: int) -> Iterator[list[Row]]:
    """The rows of one part, ``batch_size`` at a time (the file is streamed, never loaded whole)."""
    if part.format == "text":
        yield from _batches(_text_file(part), batch_size)
    elif part.format == "jsonl":
        yield from _batches(_jsonl(part, fields), batch_size)
    elif part.format == "csv":
        yield from _batches(_csv(part, fields), batch_size)
    elif part.format == "parquet":
        yield from _parquet(part, fields, batch_size)
    else:  # plan_parts checked it
        raise InvalidInputError(f"unknown source format {part.format!r}")


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _text_file(part: SourcePart) -> Iterator[Row]:
    where = part.name
    try:
        text = Path(part.path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        yield Row(where, id=part.name, error=f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return
    yield Row(where, id=part.name, text=text, metadata={"source": part.name})


def _jsonl(part: SourcePart, fields: Fields) -> Iterator[Row]:
    with open(part.path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{part.name}:{line_no}"
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Row(where, error=f"not valid JSON: {exc}")
                continue
            if not isinstance(obj, dict):
                yield Row(where, error=f"a JSON object was expected, got {type(obj).__name__}")
                continue
            yield row_from_mapping(obj, fields, where)


def _csv(part: SourcePart, fields: Fields) -> Iterator[Row]:
    with open(part.path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return
        if fields.text not in reader.fieldnames:
            raise InvalidInputError(
                f"{part.name} has no column {fields.text!r} (columns: {', '.join(reader.fieldnames)})"
            )
        while True:
            line_no = reader.line_num + 1
            try:
                obj = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(f"{part.name}:{line_no}", error=f"not valid CSV: {exc}")
                continue
            if None in obj:  # more cells than header columns
                yield Row(f"{part.name}:{line_no}", error="more cells than the header has columns")
                continue
            yield row_from_mapping(obj, fields, f"{part.name}:{line_no}")


def _parquet(part: SourcePart, fields: Fields, batch_size: int) -> Iterator[list[Row]]:
    pq = import_pyarrow_parquet()
    pf = pq.ParquetFile(part.path)
    names = pf.schema_arrow.names
    if fields.text not in names:
        raise InvalidInputError(f"{part.name} has no column {fields.text!r} (columns: {', '.join(names)})")
    row_no = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        rows = []
        for obj in batch.to_pylist():
            row_no += 1
            rows.append(row_from_mapping(obj, fields, f"{part.name}:row {row_no}"))
        yield rows


def import_pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            'reading Parquet needs pyarrow: pip install "m3-hybrid[ray]" (or pip install pyarrow)'
        ) from None
    return pq


def row_from_mapping(obj: Mapping[str, Any], fields: Fields, where: str) -> Row:
    """A :class:`Row` from one input object (a JSON object, a CSV row, a Parquet/Ray row)."""
    rid: Any = obj.get(fields.id) if fields.id is not None else None
    if rid is None or rid == "":
        rid = where
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return Row(
            where, error=f"field {fields.id!r} (the id) must be a string or an integer, got {rid!r:.60}"
        )
    rid = str(rid)
    text = obj.get(fields.text)
    if text is None:
        return Row(where, id=rid, error=f"no text: field {fields.text!r} is missing or null")
    if not isinstance(text, str):
        return Row(where, id=rid, error=f"field {fields.text!r} must be a string, got {type(text).__name__}")
    try:
        check_utf8(text, f"field {fields.text!r}")
        check_utf8(rid, "the id")
    except InvalidInputError as exc:
        return Row(where, id=rid, error=str(exc))
    if fields.metadata is None:
        skip = {fields.text, fields.id}
        metadata = {k: v for k, v in obj.items() if k not in skip}
    else:
        metadata = {k: obj[k] for k in fields.metadata if k in obj}
    try:
        # Metadata travels as JSON between processes (Ray) and is stored as JSON: check it once here,
        # so a bad value is reported the same way in-process and on Ray.
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        return Row(where, id=rid, error=f"metadata is not JSON: {exc}")
    return Row(where, id=rid, text=text, metadata=metadata)


def rows_from_items(items: Iterable[Any], fields: Fields, batch_size: int) -> Iterator[list[Row]]:
    """Rows from Python objects: :class:`~shared.types.Record` (kept as given, without vectors) or
    mappings read like JSON objects; an item without an id gets ``item <index>``."""
    if isinstance(items, (str, bytes, Mapping)):
        raise InvalidTypeError(
            f"records must be an iterable of Record or mappings, not a single {type(items).__name__}"
        )

    def rows() -> Iterator[Row]:
        for i, item in enumerate(items):
            where = f"item {i}"
            if isinstance(item, Record):
                if item.dense is not None or item.sparse is not None or item.colbert is not None:
                    yield Row(where, id=str(item.id), error="records to index must not carry vectors")
                elif not isinstance(item.text_to_embed, str):
                    yield Row(where, id=str(item.id), error="a record to index needs a text")
                else:
                    yield Row(
                        where,
                        id=item.id if item.id else where,
                        text=item.text,
                        metadata=dict(item.metadata),
                        ref_doc_id=item.ref_doc_id,
                    )
            elif isinstance(item, Mapping):
                yield row_from_mapping(item, fields, where)
            else:
                yield Row(where, error=f"expected a Record or a mapping, got {type(item).__name__}")

    return _batches(rows(), batch_size)


def chunk_rows(rows: Sequence[Row], chunker: Chunker | None) -> list[Row]:
    """``rows`` with each document split into chunks by ``chunker``.

    Chunk ``k`` of document ``D`` gets the id ``D#k`` and ``ref_doc_id`` ``D`` (so
    ``delete(ref_doc_ids=[D])`` removes all of them), and the document's metadata.
    """
    if chunker is None:
        return list(rows)
    out: list[Row] = []
    for row in rows:
        if row.error is not None or row.text is None:
            out.append(row)
            continue
        try:
            pieces = list(chunker(row.text))
        except Exception as exc:  # a user's splitter: report the document, keep going
            out.append(Row(row.where, id=row.id, error=f"the chunker failed: {type(exc).__name__}: {exc}"))
            continue
        for k, piece in enumerate(pieces):
            if not isinstance(piece, str):
                out.append(
                    Row(row.where, id=f"{row.id}#{k}", error=f"the chunker returned a {type(piece).__name__}")
                )
                continue
            out.append(
                Row(row.where, id=f"{row.id}#{k}", text=piece, metadata=dict(row.metadata), ref_doc_id=row.id)
            )
    return out
