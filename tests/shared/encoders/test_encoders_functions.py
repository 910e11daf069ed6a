"""``encoder_from_functions`` / ``pair_encoders``: any model's embed functions as one core encoder.

Framework-free: plain functions stand in for a model here; the adapters' tests check
the wrapper against LlamaIndex's and LangChain's own embed calls.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shared.encoders import PairEncoder, encoder_from_functions, pair_encoders, sparse_dict
from shared.errors import InvalidInputError, InvalidTypeError
from shared.store import HybridStore
from shared.types import Record


class Counting:
    """A deterministic 'model': dense = character histogram, sparse = word ids."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def docs(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(("docs", len(texts)))
        return [self._vec(t) for t in texts]

    def query(self, text: str) -> list[float]:
        self.calls.append(("query", 1))
        return self._vec("q " + text)

    @staticmethod
    def _vec(text: str) -> list[float]:
        v = [1.0] + [0.0] * 5
        for ch in text:
            v[ord(ch) % 6] += 1.0
        return v

    def sparse_docs(self, texts: list[str]) -> list[dict[int, float]]:
        self.calls.append(("sparse_docs", len(texts)))
        return [self._words(t) for t in texts]

    def sparse_query(self, text: str) -> SimpleNamespace:
        self.calls.append(("sparse_query", 1))
        words = self._words(text)
        return SimpleNamespace(indices=list(words), values=list(words.values()))

    @staticmethod
    def _words(text: str) -> dict[int, float]:
        return {sum(map(ord, w)) % 1000: 1.0 for w in text.split()}


def test_dense_functions_give_unit_rows_and_the_right_kind_of_call() -> None:
    model = Counting()
    enc = encoder_from_functions(model_id="m", embed_documents=model.docs, embed_query=model.query)
    assert enc.outputs == frozenset({"dense"}) and enc.dense_dim is None
    docs = enc.encode(["ab", "cd"], "document")
    assert docs.dense is not None and docs.dense.shape == (2, 6)
    assert np.allclose(np.linalg.norm(docs.dense, axis=1), 1.0)
    expected = np.asarray(model._vec("ab"), dtype=np.float32)
    assert np.allclose(docs.dense[0], expected / np.linalg.norm(expected))
    query = enc.encode(["ab"], "query").dense
    assert query is not None and not np.allclose(query[0], docs.dense[0])  # the model's query side
    assert model.calls == [("docs", 2), ("query", 1)]
    assert enc.dense_dim == 6  # learned from the first vectors
    enc.encode(["ab"], "document")  # cached: no new call
    assert model.calls == [("docs", 2), ("query", 1)]


def test_probe_and_given_size() -> None:
    model = Counting()
    probed = encoder_from_functions(
        model_id="m", embed_documents=model.docs, embed_query=model.query, probe_dim=True
    )
    assert probed.dense_dim == 6 and probed.identity.dense_dim == 6
    wrong = encoder_from_functions(
        model_id="m", embed_documents=model.docs, embed_query=model.query, dense_dim=5
    )
    with pytest.raises(InvalidInputError, match=r"size 6.*expected 5"):
        wrong.encode(["x"])


def test_sparse_functions_accept_mappings_and_indices_values() -> None:
    model = Counting()
    enc = encoder_from_functions(
        model_id="s", sparse_documents=model.sparse_docs, sparse_query=model.sparse_query, sparse_kind="words"
    )
    assert enc.outputs == frozenset({"sparse"}) and enc.identity.sparse_kind == "words"
    res = enc.encode(["tea cup"], "query")
    assert res.sparse == [model._words("tea cup")]


@pytest.mark.parametrize(
    ("vector", "error", "message"),
    [
        ({-1: 1.0}, InvalidInputError, "sparse index -1"),
        ({1: float("nan")}, InvalidInputError, "NaN"),
        ({1: "x"}, InvalidTypeError, "must be a number"),
        (SimpleNamespace(indices=[1, 1], values=[1.0, 2.0]), InvalidInputError, "appears twice"),
        (SimpleNamespace(indices=[1], values=[1.0, 2.0]), InvalidInputError, "1 indices but 2 values"),
        ([1.0, 2.0], InvalidTypeError, "indices"),
    ],
)
def test_sparse_dict_refuses_bad_vectors(vector: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        sparse_dict(vector, "v")


def _counting_pair(model: Counting, dense_dim: int | None = None) -> Any:
    """``model``'s dense and sparse functions as one core encoder (models "d" and "s")."""
    return encoder_from_functions(
        model_id="d",
        embed_documents=model.docs,
        embed_query=model.query,
        sparse_documents=model.sparse_docs,
        sparse_query=model.sparse_query,
        sparse_model_id="s",
        dense_dim=dense_dim,
    )


def test_pairing_runs_only_the_model_asked_for() -> None:
    model = Counting()
    pair = _counting_pair(model, dense_dim=6)
    assert isinstance(pair, PairEncoder)
    assert pair.identity.model_id == "d" and pair.identity.sparse_model_id == "s"
    pair.encode(["a b"], outputs=["sparse"])
    assert model.calls == [("sparse_docs", 1)]
    both = pair.encode(["a b"], outputs=["dense", "sparse"])
    assert model.calls == [("sparse_docs", 1), ("docs", 1)]  # the sparse side came from the cache
    assert both.dense is not None and both.sparse == [model._words("a b")]


def test_pair_encoders_keeps_one_model_once() -> None:
    model = Counting()
    dense = encoder_from_functions(model_id="d", embed_documents=model.docs, embed_query=model.query)
    assert pair_encoders(dense, None) is dense and pair_encoders(None, dense) is dense
    assert pair_encoders(dense, dense) is dense
    assert pair_encoders(None, None) is None


def test_the_store_encodes_with_wrapped_functions_and_embed_text(tmp_path: Path) -> None:
    model = Counting()
    enc = _counting_pair(model)
    with HybridStore("c", path=tmp_path / "s", encoder=enc) as store:
        store.add(
            [
                Record(id="a", text="stored text", embed_text="title: tea\nstored text"),
                Record(id="b", text="coffee beans"),
            ]
        )
        [a] = store.get(["a"], with_vectors=True)
        assert a.text == "stored text"  # stored as given; embedded with its embed_text
        expected = np.asarray(model._vec("title: tea\nstored text"), dtype=np.float32)
        assert a.dense is not None and np.allclose(a.dense, expected / np.linalg.norm(expected), atol=1e-6)
        assert a.sparse == model._words("title: tea\nstored text")
        assert store.query("coffee beans", limit=1)[0].id == "b"
    with HybridStore("c", path=tmp_path / "s", encoder=enc) as reopened:
        assert reopened.identity == enc.identity


def test_sparse_dict_fast_path_matches_the_checked_path() -> None:
    from shared.encoders.functions import sparse_dict

    plain = {5: 0.5, 7: 0.0, 2**32 - 1: 1e308, 9: 1e308}
    assert sparse_dict(plain, "v") == {5: 0.5, 2**32 - 1: 1e308, 9: 1e308}
    for bad in ({1: float("nan")}, {1: float("inf")}, {-1: 1.0}, {2**32: 1.0}, {True: 1.0}):
        with pytest.raises(InvalidInputError, match="v:"):
            sparse_dict(bad, "v")


def test_document_dense_is_encode_in_one_call_without_the_cache() -> None:
    """The store's write path: the rows encode() gives, bit for bit, from one call of the model,
    nothing cached; a zero row stays zero; bad rows are refused as encode() refuses them."""
    model = Counting()
    enc = encoder_from_functions(model_id="m", embed_documents=model.docs, embed_query=model.query)
    texts = ["ab", "cd", "", "zzzz zz"]
    mat = enc.document_dense(texts)
    assert model.calls == [("docs", 4)] and len(enc.cache) == 0 and enc.dense_dim == 6
    want = enc.encode(texts, "document").dense
    assert mat is not None and want is not None and mat.dtype == np.float32
    assert np.array_equal(mat, want)
    rows = {
        "zero": [[0.0, 0.0], [3.0, 4.0]],
        "nan": [[1.0, 0.0], [float("nan"), 1.0]],
        "ragged": [[1.0], [1.0, 2.0]],
    }

    def fixed(name: str) -> Any:
        return encoder_from_functions(
            model_id=name, embed_documents=lambda t: rows[name][: len(t)], embed_query=lambda t: [1.0, 0.0]
        )

    zero = fixed("zero").document_dense(["a", "b"])
    assert zero is not None and np.array_equal(zero, np.asarray([[0.0, 0.0], [0.6, 0.8]], dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"NaN or inf for texts\[1\]"):
        fixed("nan").encode(["a", "b"])
    with pytest.raises(InvalidInputError, match=r"NaN or inf for texts\[1\]"):
        fixed("nan").document_dense(["a", "b"])
    ragged = fixed("ragged").document_dense(["a", "b"])  # row by row: the store names the odd one
    assert ragged is not None and [r.shape for r in ragged] == [(1,), (2,)]


def test_pair_document_dense_is_its_dense_models() -> None:
    model = Counting()
    pair = _counting_pair(model)
    mat = pair.document_dense(["a b", "c"])
    assert model.calls == [("docs", 2)]  # the sparse model is not run
    want = pair.encode(["a b", "c"], outputs=["dense"]).dense
    assert mat is not None and want is not None and np.array_equal(mat, want)
    assert isinstance(pair, PairEncoder)
    with pytest.warns(UserWarning, match="Matryoshka"):
        truncated = PairEncoder(pair.dense_encoder, pair.sparse_encoder, truncate_dim=3)
    assert truncated.document_dense(["ab"]) is None  # encode() truncates row by row
