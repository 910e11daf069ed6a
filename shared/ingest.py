"""Record validation and point building for ``HybridStore.add`` (no I/O: the store writes).

A batch of :class:`~shared.types.Record` is checked as a whole where it can be: the dense
vectors of a batch as one numpy matrix, the sparse vectors of a batch in one pass over all
their items. Only once something is wrong does the check go item by item, to name the
offending record (its id and index in the input) and the offending value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any, TypeVar

import numpy as np

from .backends.base import PointData
from .encoders.bm25 import Bm25Encoder, bm25_model
from .errors import InvalidInputError, InvalidTypeError
from .mrl import truncate
from .schema import BM25, COLBERT, DENSE, DENSE_MRL, SPARSE, CollectionSchema
from .types import Encoder, Record
from .validation import check_utf8, colbert_vectors, dense_matrix, is_plain_sparse, sparse_arrays

T = TypeVar("T")

#: Deepest metadata nesting accepted: Qdrant stores deeper payloads but cannot read them back
#: (serde_json's 128-level limit), which would break every read and query returning the point.
MAX_METADATA_DEPTH = 64
#: Qdrant keeps JSON integers as i64/u64; larger ones would silently come back as floats.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


#: The key of a record's cleaned parts that lists the vectors its encoding must make.
NEEDS = "needs"

#: A record's parts -> (point id, named vectors, payload): ``Layout.to_point``'s signature.
ToPoint = Callable[..., tuple[str | int, dict[str, Any], dict[str, Any]]]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def clean_json(value: Any, where: str, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` (numpy scalars and tuples converted); raises on anything else."""
    if type(value) is dict and depth == 0:
        flat = _flat_dict(value)
        if flat is not None:
            return flat
    return _clean_json(value, where, depth)


def _flat_dict(value: dict[Any, Any]) -> dict[str, Any] | None:
    """A copy of a flat dict of plain JSON scalars (the usual metadata), or None to take the full path.

    No error is raised here: anything unusual (a nested value, a big int, a non-finite
    float, a non-ASCII string, a non-str key) goes to :func:`_clean_json`, which names it.
    """
    for k, v in value.items():
        if type(k) is not str or not k.isascii():
            return None
        t = type(v)
        if t is str:
            if not v.isascii():
                return None
        elif t is int:
            if not _INT_MIN <= v <= _INT_MAX:
                return None
        elif t is float:
            if not math.isfinite(v):
                return None
        elif v is not None and t is not bool:
            return None
    return dict(value)


def _clean_json(value: Any, where: str, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_utf8(value, where)
    if isinstance(value, (int, np.integer)):
        i = int(value)
        if not _INT_MIN <= i <= _INT_MAX:
            raise InvalidInputError(f"{where} is {i}, outside the 64-bit integer range Qdrant stores exactly")
        return i
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidInputError(f"{where} is {f} (NaN and infinity are not JSON)")
        return f
    if isinstance(value, (list, tuple, Mapping)) and depth >= MAX_METADATA_DEPTH:
        raise InvalidInputError(f"{where} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, (list, tuple)):
        return [_clean_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInputError(f"{where} has a non-str key {k!r} (JSON keys must be str)")
            out[check_utf8(k, f"{where} key")] = _clean_json(v, f"{where}[{k!r}]", depth + 1)
        return out
    raise InvalidInputError(f"{where} is not JSON-serialisable: {type(value).__name__} {value!r:.60}")


def where(chunk: Sequence[Record], start: int, i: int) -> str:
    """How errors name record ``i`` of a batch starting at input index ``start``."""
    return _name(chunk[i], start + i)


# ---------------------------------------------------------------------------
# one record
# ---------------------------------------------------------------------------


def missing_outputs(rec: Record, schema: CollectionSchema, encoder: Encoder | None) -> list[str]:
    """The vectors of ``rec`` the encoder has to compute."""
    needs = []
    if rec.dense is None and (
        schema.has_dense or (not schema.complete and (encoder is None or "dense" in encoder.outputs))
    ):
        # Before the size is known, a dense vector is still required unless the encoder
        # makes none (then the first add decides whether the collection has one).
        needs.append("dense")
    if rec.sparse is None and schema.sparse and encoder is not None and "sparse" in encoder.outputs:
        needs.append("sparse")
    if rec.colbert is None and schema.colbert:
        needs.append("colbert")
    return needs


def check_record(
    rec: Any, index: int, schema: CollectionSchema, encoder: Encoder | None, dims: dict[str, int]
) -> dict[str, Any]:
    """Validate one record's fields and given ColBERT vectors; returns the cleaned parts.

    Dense and sparse vectors are only collected here (``DENSE`` / ``SPARSE`` keys holding
    the given values): :func:`dense_batch` and :func:`sparse_batch` check a whole batch.
    """
    if not isinstance(rec, Record):
        raise InvalidTypeError(f"item {index} is a {type(rec).__name__}, expected shared.types.Record")
    rid = rec.id
    if not isinstance(rid, str) or not rid:
        raise InvalidInputError(f"record {index}: id must be a non-empty str, got {rid!r}")
    if not rid.isascii():
        check_utf8(rid, f"record {index}: id")
    _optional_text(rec, index, "text", rec.text)
    _optional_text(rec, index, "embed_text", rec.embed_text)
    _optional_text(rec, index, "ref_doc_id", rec.ref_doc_id)
    md = rec.metadata
    if not isinstance(md, Mapping):
        raise InvalidTypeError(f"{_name(rec, index)}: metadata must be a dict, got {type(md).__name__}")
    flat = _flat_dict(md) if type(md) is dict else None
    out: dict[str, Any] = {
        "metadata": flat if flat is not None else _clean_json(md, f"{_name(rec, index)}: metadata")
    }
    if rec.dense is not None:
        if not schema.has_dense and schema.complete:
            raise _not_stored(rec, index, "a dense vector")
        out[DENSE] = rec.dense
    if rec.sparse is not None:
        if not schema.sparse:
            raise _not_stored(rec, index, "a sparse vector")
        if not isinstance(rec.sparse, Mapping):
            raise InvalidTypeError(f"{_name(rec, index)}: sparse must be a mapping token id -> weight")
        out[SPARSE] = rec.sparse
    if rec.colbert is not None:
        if not schema.colbert:
            raise _not_stored(rec, index, "ColBERT vectors", " (colbert=False)")
        cb = colbert_vectors(
            rec.colbert, schema.colbert_dim or dims.get(COLBERT), f"{_name(rec, index)}: colbert vectors"
        )
        dims.setdefault(COLBERT, cb.shape[1])
        out[COLBERT] = cb
    if schema.bm25 is not None and rec.text_to_embed is None:
        raise InvalidInputError(
            f"{_name(rec, index)}: no text to weight with BM25 (the collection keeps BM25 beside its "
            "sparse vector)"
        )
    needs = missing_outputs(rec, schema, encoder)
    out[NEEDS] = needs
    if needs:
        if encoder is None:
            raise InvalidInputError(
                f"{_name(rec, index)}: no {'/'.join(needs)} vector given and the store has no encoder "
                "to compute it"
            )
        unmade = [n for n in needs if n not in encoder.outputs]
        if unmade:
            raise InvalidInputError(
                f"{_name(rec, index)}: no {'/'.join(unmade)} vector given and the store's encoder "
                f"({encoder.identity.model_id}) does not make one"
            )
        if rec.text_to_embed is None:
            raise InvalidInputError(
                f"{_name(rec, index)}: no text to encode the missing {'/'.join(needs)} vector from"
            )
    return out


def _not_stored(rec: Record, index: int, what: str, hint: str = "") -> InvalidInputError:
    """The error for a record that brings a vector kind the collection has no place for."""
    return InvalidInputError(f"{_name(rec, index)}: has {what} but the collection stores none{hint}")


def _optional_text(rec: Record, index: int, field: str, value: Any) -> None:
    """``value`` (a record's ``field``) is None or valid text; else an error naming the record."""
    if value is None or (type(value) is str and value.isascii()):
        return
    if not isinstance(value, str):
        got = type(value).__name__
        raise InvalidTypeError(f"{_name(rec, index)}: {field} must be str or None, got {got}")
    if not value.isascii():
        check_utf8(value, f"{_name(rec, index)}: {field}")


def _name(rec: Record, index: int) -> str:
    return f"record {rec.id!r} (index {index})"


# ---------------------------------------------------------------------------
# a batch
# ---------------------------------------------------------------------------


def dense_batch(
    chunk: Sequence[Record],
    cleaned: list[dict[str, Any]],
    start: int,
    dims: dict[str, int],
    schema: CollectionSchema,
) -> tuple[list[int], np.ndarray | None]:
    """Rows holding a dense vector and those vectors as one validated float32 matrix
    (:func:`shared.validation.dense_matrix`, which names the offending record)."""
    rows = [i for i, parts in enumerate(cleaned) if DENSE in parts]
    if not rows:
        return rows, None
    expected = schema.dense_dim if schema.dense_dim is not None else dims.get(DENSE)
    mat = dense_matrix(
        [cleaned[i][DENSE] for i in rows], expected, lambda j: f"{where(chunk, start, rows[j])}: dense vector"
    )
    dims.setdefault(DENSE, mat.shape[1])
    return rows, mat


def sparse_batch(chunk: Sequence[Record], cleaned: list[dict[str, Any]], start: int) -> None:
    """Replace every given sparse mapping in ``cleaned`` by its checked ``(indices, values)`` lists.

    One pass over the items of the whole batch; a batch with anything unusual (numpy
    scalars, zero weights, a bad token) goes record by record through
    :func:`~shared.validation.sparse_arrays`, which names the offending token.
    """
    rows = [i for i, parts in enumerate(cleaned) if SPARSE in parts]
    if not rows:
        return
    maps = [cleaned[i][SPARSE] for i in rows]
    keys = list(chain.from_iterable(maps))
    vals = list(chain.from_iterable(m.values() for m in maps))
    if not _plain_sparse(keys, vals):
        for i in rows:
            cleaned[i][SPARSE] = sparse_arrays(cleaned[i][SPARSE], f"{where(chunk, start, i)}: sparse vector")
        return
    pos = 0
    for i, m in zip(rows, maps, strict=True):
        end = pos + len(m)
        cleaned[i][SPARSE] = (keys[pos:end], vals[pos:end])
        pos = end


def _plain_sparse(keys: list[Any], vals: list[Any]) -> bool:
    """True when the batch's items need no item-by-item check: plain ids and finite, non-zero
    float weights (zeros are dropped by :func:`~shared.validation.sparse_arrays`)."""
    return set(map(type, vals)) <= {float} and is_plain_sparse(keys, vals) and 0.0 not in vals


def check_all(
    records: Sequence[Record], batch_size: int, schema: CollectionSchema, encoder: Encoder | None
) -> None:
    """Validate a whole materialised input (batch by batch: bounded extra memory)."""
    dims: dict[str, int] = {}
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        cleaned = [check_record(rec, start + i, schema, encoder, dims) for i, rec in enumerate(chunk)]
        sparse_batch(chunk, cleaned, start)
        dense_batch(chunk, cleaned, start, dims, schema)


def prepare_batch(
    chunk: Sequence[Record],
    start: int,
    schema: CollectionSchema,
    encoder: Encoder | None,
    bm25: Bm25Encoder | None = None,
    to_point: ToPoint | None = None,
) -> list[PointData]:
    """Validate a batch, encode what is missing, and build the points (nothing written yet).

    ``bm25``: the store's BM25 encoder when the collection keeps BM25 beside its sparse vector.
    ``to_point``: how a record becomes a point (default the layout's; a tenant's store
    passes its scope's, :meth:`shared.tenancy.TenantScope.to_point`).
    """
    dims: dict[str, int] = {}
    cleaned = [check_record(rec, start + i, schema, encoder, dims) for i, rec in enumerate(chunk)]
    sparse_batch(chunk, cleaned, start)
    todo: dict[str, list[int]] = {}
    for i, parts in enumerate(cleaned):
        for out in parts[NEEDS]:
            todo.setdefault(out, []).append(i)
    if todo:
        assert encoder is not None
        _encode_missing(chunk, cleaned, start, schema, encoder, todo, dims)
    if schema.bm25 is not None:
        assert bm25 is not None  # the store keeps the encoder of a collection with BM25
        _bm25_vectors(chunk, cleaned, start, bm25)
    dense_rows, mat = dense_batch(chunk, cleaned, start, dims, schema)
    if mat is not None:
        # The rows of the batch's float32 matrix: a backend converts them for its client (no
        # list of Python floats per point for the embedded engine, which reads the buffer).
        for i, row in zip(dense_rows, mat, strict=True):
            cleaned[i][DENSE] = row
        if schema.mrl_dim is not None and schema.complete:
            for i, row in zip(dense_rows, mrl_rows(mat, schema.mrl_dim), strict=True):
                cleaned[i][DENSE_MRL] = row
    return _points(chunk, cleaned, start, schema, to_point)


def mrl_rows(dense: np.ndarray, mrl_dim: int) -> list[list[float]]:
    """The ``dense_mrl`` vectors (the MRL funnel's first stage) of a matrix of dense vectors."""
    return truncate(dense, mrl_dim).tolist()


def add_mrl_vectors(points: Sequence[PointData], mrl_dim: int) -> None:
    """Give ``points`` built before the collection (and its ``mrl_dim``) existed their ``dense_mrl``."""
    rows = [p for p in points if DENSE in p.vectors]
    if rows:
        mat = np.asarray([p.vectors[DENSE] for p in rows], dtype=np.float32)
        for p, row in zip(rows, mrl_rows(mat, mrl_dim), strict=True):
            p.vectors[DENSE_MRL] = row


def _encode_missing(
    chunk: Sequence[Record],
    cleaned: list[dict[str, Any]],
    start: int,
    schema: CollectionSchema,
    encoder: Encoder,
    todo: dict[str, list[int]],
    dims: dict[str, int],
) -> None:
    sparse_rows = todo.get("sparse")
    bm25 = bm25_model(encoder) if sparse_rows else None
    if bm25 is not None and sparse_rows:
        # BM25 as the sparse model: the engine's weights as stored, without the encoders'
        # cache (each document is weighted once) or a dict and a check per document.
        arrays = bm25.document_arrays(
            [chunk[i].text_to_embed or "" for i in sparse_rows],
            lambda j: where(chunk, start, sparse_rows[j]),
            require_words=False,
        )
        for i, arr in zip(sparse_rows, arrays, strict=True):
            cleaned[i][SPARSE] = arr
        todo = {name: idx for name, idx in todo.items() if name != "sparse"}
        if not todo:
            return
    dense_rows = todo.get("dense")
    write_path = getattr(encoder, "document_dense", None)  # BaseEncoder's; not every Encoder's
    if dense_rows and write_path is not None:
        # The dense model's write path where it has one: one matrix for the batch, no cache.
        mat = write_path([chunk[i].text_to_embed or "" for i in dense_rows])
        if mat is not None:
            for i, row in zip(dense_rows, mat, strict=True):
                cleaned[i][DENSE] = row
            todo = {name: idx for name, idx in todo.items() if name != "dense"}
            if not todo:
                return
    rows = sorted({i for idx in todo.values() for i in idx})
    result = encoder.encode([chunk[i].text_to_embed or "" for i in rows], "document", outputs=sorted(todo))
    wanted = {name: set(idx) for name, idx in todo.items()}
    dense_wanted, sparse_wanted = wanted.get("dense", ()), wanted.get("sparse", ())
    colbert_wanted = wanted.get("colbert", ())
    for pos, i in enumerate(rows):
        if i in dense_wanted:
            if result.dense is None:
                raise InvalidInputError(f"{where(chunk, start, i)}: the encoder returned no dense vector")
            cleaned[i][DENSE] = result.dense[pos]
        if result.sparse is not None and i in sparse_wanted:
            cleaned[i][SPARSE] = sparse_arrays(result.sparse[pos], f"{where(chunk, start, i)}: sparse vector")
        if i in colbert_wanted:
            at = where(chunk, start, i)
            if result.colbert is None:
                raise InvalidInputError(f"{at}: the encoder returned no ColBERT vectors")
            cleaned[i][COLBERT] = colbert_vectors(
                result.colbert[pos], schema.colbert_dim or dims.get(COLBERT), f"{at}: colbert vectors"
            )
            dims.setdefault(COLBERT, cleaned[i][COLBERT].shape[1])


def _bm25_vectors(
    chunk: Sequence[Record], cleaned: list[dict[str, Any]], start: int, bm25: Bm25Encoder
) -> None:
    """Every record's BM25 vector, from the text its other vectors are encoded from."""
    arrays = bm25.document_arrays(
        [rec.text_to_embed or "" for rec in chunk], lambda i: where(chunk, start, i)
    )
    for parts, arr in zip(cleaned, arrays, strict=True):
        parts[BM25] = arr


def _points(
    chunk: Sequence[Record],
    cleaned: list[dict[str, Any]],
    start: int,
    schema: CollectionSchema,
    to_point: ToPoint | None = None,
) -> list[PointData]:
    points: list[PointData] = []
    if to_point is None:
        to_point = schema.stored_layout.to_point
    for i, (rec, parts) in enumerate(zip(chunk, cleaned, strict=True)):
        vectors: dict[str, Any] = {}
        if DENSE in parts:
            vectors[DENSE] = parts[DENSE]
            if DENSE_MRL in parts:
                vectors[DENSE_MRL] = parts[DENSE_MRL]
        if SPARSE in parts and parts[SPARSE][0]:
            vectors[SPARSE] = parts[SPARSE]
        if BM25 in parts:
            vectors[BM25] = parts[BM25]
        if COLBERT in parts:
            vectors[COLBERT] = parts[COLBERT].tolist()
        if not vectors:
            raise InvalidInputError(f"{where(chunk, start, i)}: no vector to store")
        points.append(PointData(*to_point(rec.id, rec.text, parts["metadata"], rec.ref_doc_id, vectors)))
    return points


__all__ = [
    "MAX_METADATA_DEPTH",
    "add_mrl_vectors",
    "batched",
    "check_all",
    "check_record",
    "clean_json",
    "dense_batch",
    "missing_outputs",
    "prepare_batch",
    "sparse_batch",
    "where",
]
