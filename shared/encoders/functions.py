"""Any model that embeds through plain functions, as a core :class:`~shared.types.Encoder`.

The framework adapters wrap their users' foreign models (a LlamaIndex
``BaseEmbedding``, a LangChain ``Embeddings``, a sparse embedding) with
:func:`encoder_from_functions`, handing over the model's own embed methods as plain
callables; nothing here knows a framework. The wrapped model then goes through the
core like ours: the store encodes with it, its vectors get the core's checks, cache and
an identity (the collection guard refuses a collection reopened with another model), and
:func:`pair_encoders` pairs it with a model of the other kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError
from ..types import Encoder, EncoderIdentity, SparseDict, TextKind
from ..validation import dense_vector, sparse_arrays
from .base import BaseEncoder, Entry, _check_finite

__all__ = ["FunctionEncoder", "encoder_from_functions", "pair_encoders", "sparse_dict"]

#: The text a dense model embeds once to learn its vector size (``probe_dim=True``).
PROBE_TEXT = "dimension probe"

DenseDocuments = Callable[[list[str]], Sequence[Any]]
DenseQuery = Callable[[str], Any]


def sparse_dict(vector: Any, where: str) -> SparseDict:
    """A sparse vector given as a mapping or as ``indices``/``values`` -> ``{token id: weight}``.

    Zero weights are dropped; a repeated index, a bad index or weight is refused naming
    ``where`` (:func:`shared.validation.sparse_arrays`, the one sparse check).
    """
    return dict(zip(*sparse_arrays(vector, where), strict=True))


class FunctionEncoder(BaseEncoder):
    """One model (dense or sparse) that embeds through the functions it was given.

    Dense rows are L2-normalised (the core's contract; cosine ranking is unchanged).
    The model applies its own prompts, so none are added here.
    """

    def __init__(
        self,
        *,
        model_id: str,
        documents: Callable[[list[str]], Sequence[Any]],
        query: Callable[[str], Any],
        kind: str,
        sparse_kind: str | None = None,
        dense_dim: int | None = None,
        probe_dim: bool = False,
        batch_size: int = 32,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(batch_size=batch_size, show_progress=False, cache_size=cache_size)
        if kind not in ("dense", "sparse"):
            raise InvalidInputError(f"kind must be 'dense' or 'sparse', got {kind!r}")
        if not callable(documents) or not callable(query):
            raise InvalidTypeError(f"{model_id}: the document and query embed functions must be callable")
        self.model_id = model_id
        self._documents = documents
        self._query = query
        self._outputs = frozenset({kind})
        self._full_dim = None
        if kind == "dense":
            if dense_dim is None and probe_dim:
                probe = self._dense_row(query(PROBE_TEXT), "the probe vector", None)
                dense_dim = probe.shape[0]
            self._full_dim = dense_dim
        self._identity = self._make_identity(
            model_id=model_id, model_hash="", sparse_kind=sparse_kind if kind == "sparse" else None
        )

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        rows = [self._query(t) for t in texts] if kind == "query" else list(self._documents(texts))
        self._count_forward()
        if len(rows) != len(texts):
            raise InvalidInputError(f"{self.model_id} returned {len(rows)} vectors for {len(texts)} texts")
        if "dense" in self._outputs:
            dense = self._dense_rows(rows)
            if self._full_dim is None and dense:
                # The size was not given: learned from the first vectors (the collection is then
                # created at that size by the first add).
                self._full_dim = dense[0].shape[0]
            return [Entry(dense=d, sparse=None, colbert=None, token_count=0, truncated=False) for d in dense]
        return [
            Entry(
                dense=None,
                sparse=sparse_dict(row, f"{self.model_id}: sparse vector of texts[{i}]"),
                colbert=None,
                token_count=0,
                truncated=False,
            )
            for i, row in enumerate(rows)
        ]

    @property
    def joins_queries(self) -> bool:
        # The query function takes one text: a joined call would run its callers' queries one
        # after another (an embedding API's round trips in a row) instead of side by side.
        return False

    def document_dense(self, texts: list[str]) -> np.ndarray | list[np.ndarray] | None:
        """The model's rows of ``texts``, unit float32, checked as :meth:`encode` checks them:
        one matrix, or the rows one by one where they make none (the store's size check then
        names the wrong one). None with ``truncate_dim`` (:meth:`encode` truncates row by row)."""
        if "dense" not in self._outputs or self._truncate_dim is not None:
            return None
        rows = list(self._documents(texts))
        self._count_forward()
        if len(rows) != len(texts):
            raise InvalidInputError(f"{self.model_id} returned {len(rows)} vectors for {len(texts)} texts")
        mat = self._matrix(rows)
        if mat is None:
            out = self._dense_rows(rows)
            for i, row in enumerate(out):
                _check_finite(_dense_entry(row), f"texts[{i}]")
            if self._full_dim is None and out:
                self._full_dim = out[0].shape[0]
            return out
        # _unit's arithmetic for every row at once: each row's float32 norm from its own dot
        # product (as _unit takes it); a row of norm 0 or not finite is divided by 1.
        norms = np.sqrt(np.fromiter((v.dot(v) for v in mat), dtype=np.float32, count=len(mat)))
        unit = mat / np.where((norms > 0) & np.isfinite(norms), norms, np.float32(1.0))[:, None]
        finite = np.isfinite(unit).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            _check_finite(_dense_entry(unit[bad]), f"texts[{bad}]")
        if self._full_dim is None:
            self._full_dim = unit.shape[1]
        return unit

    def _matrix(self, rows: list[Any]) -> np.ndarray | None:
        """The rows as one float32 matrix, or None when they are not one (ragged, not numeric,
        another size than the model's): the row-by-row path then says which row is wrong."""
        dim = self._full_dim
        if len(rows) < 2 or any(isinstance(row, (str, bytes)) for row in rows):
            return None
        try:
            mat = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            return None
        if mat.ndim != 2 or mat.shape[1] == 0 or (dim is not None and mat.shape[1] != dim):
            return None
        return mat

    def _dense_rows(self, rows: list[Any]) -> list[np.ndarray]:
        """The rows as unit float32 vectors: one numpy conversion for a batch of equal-size rows
        (the same arithmetic as :meth:`_dense_row`, row by row), else row by row, which names
        a bad row."""
        mat = self._matrix(rows)
        if mat is None:
            return [self._dense_row(row, f"texts[{i}]", self._full_dim) for i, row in enumerate(rows)]
        return [_unit(vec) for vec in mat]

    def _dense_row(self, row: Any, where: str, dim: int | None) -> np.ndarray:
        if isinstance(row, (str, bytes)):
            raise InvalidTypeError(f"{self.model_id} returned a {type(row).__name__} for {where}")
        # Shape only: NaN/inf are the encoders' own output check (base._check_finite).
        what = f"the vector {self.model_id} returned for {where}"
        return _unit(dense_vector(row, what, dim, check_values=False, expects="expected"))


def _dense_entry(vec: np.ndarray) -> Entry:
    return Entry(dense=vec, sparse=None, colbert=None, token_count=0, truncated=False)


def _unit(vec: np.ndarray) -> np.ndarray:
    """``vec`` (float32, 1-d) divided by its norm (``np.linalg.norm``'s: the float32 square root
    of ``vec . vec``), or itself (a copy) when the norm is 0 or not finite."""
    norm = float(np.sqrt(vec.dot(vec)))
    return vec / norm if norm > 0 and math.isfinite(norm) else vec.copy()


def encoder_from_functions(
    *,
    model_id: str,
    embed_documents: DenseDocuments | None = None,
    embed_query: DenseQuery | None = None,
    sparse_documents: Callable[[list[str]], Sequence[Any]] | None = None,
    sparse_query: Callable[[str], Any] | None = None,
    sparse_model_id: str | None = None,
    sparse_kind: str | None = None,
    dense_dim: int | None = None,
    probe_dim: bool = False,
    batch_size: int = 32,
    cache_size: int = 1024,
) -> BaseEncoder:
    """A core encoder over a model's own embed functions (dense, sparse, or both).

    ``embed_documents(texts) -> vectors`` / ``embed_query(text) -> vector`` for a dense
    model; ``sparse_documents`` / ``sparse_query`` (mappings or ``indices``/``values``)
    for a sparse one. ``model_id`` (and ``sparse_model_id``) name the models in the
    collection guard. The dense size is ``dense_dim``, else embedded once from a probe
    text (``probe_dim=True``), else learned from the first vectors.
    """
    dense_given = embed_documents is not None or embed_query is not None
    sparse_given = sparse_documents is not None or sparse_query is not None
    if dense_given and (embed_documents is None or embed_query is None):
        raise InvalidInputError("a dense model needs both embed_documents and embed_query")
    if sparse_given and (sparse_documents is None or sparse_query is None):
        raise InvalidInputError("a sparse model needs both sparse_documents and sparse_query")
    if not dense_given and not sparse_given:
        raise InvalidInputError("encoder_from_functions needs dense or sparse embed functions")
    dense = sparse = None
    if dense_given:
        assert embed_documents is not None and embed_query is not None
        dense = FunctionEncoder(
            model_id=model_id,
            documents=embed_documents,
            query=embed_query,
            kind="dense",
            dense_dim=dense_dim,
            probe_dim=probe_dim,
            batch_size=batch_size,
            cache_size=cache_size,
        )
    if sparse_given:
        assert sparse_documents is not None and sparse_query is not None
        sparse = FunctionEncoder(
            model_id=sparse_model_id or model_id,
            documents=sparse_documents,
            query=sparse_query,
            kind="sparse",
            sparse_kind=sparse_kind or sparse_model_id or model_id,
            batch_size=batch_size,
            cache_size=cache_size,
        )
    if dense is not None and sparse is not None:
        return _pair(dense, sparse)
    result = dense or sparse
    assert result is not None
    return result


def pair_encoders(dense: Encoder | None, sparse: Encoder | None) -> Encoder | None:
    """The one encoder a store gets for a dense and a sparse model (either may be None).

    The same model twice, or a dense model whose own sparse output comes from the
    same forward pass (BGE-M3) with no separate sparse model, is that model; two
    models become a :class:`~shared.encoders.PairEncoder`, so the collection guard
    records both.
    """
    if dense is None or sparse is None:
        return dense or sparse
    if sparse is dense or ("sparse" in dense.outputs and _same_model(dense.identity, sparse.identity)):
        return dense
    if not isinstance(dense, BaseEncoder) or not isinstance(sparse, BaseEncoder):
        raise InvalidTypeError(
            "pairing needs shared.encoders.BaseEncoder instances, got "
            f"{type(dense).__name__} and {type(sparse).__name__}"
        )
    return _pair(dense, sparse)


def _pair(dense: BaseEncoder, sparse: BaseEncoder) -> BaseEncoder:
    from .pair import PairEncoder

    # The dense encoder's own truncation is applied on top inside the pair.
    return PairEncoder(
        dense,
        sparse,
        truncate_dim=dense.truncate_dim,
        batch_size=dense.batch_size,
        show_progress=dense.show_progress,
        cache_size=dense.cache.maxsize,
    )


def _same_model(a: EncoderIdentity, b: EncoderIdentity) -> bool:
    return a.model_id == b.model_id
