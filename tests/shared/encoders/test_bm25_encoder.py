"""BM25 in the engine: our term weights + Qdrant's IDF modifier score as a reference BM25.

The reference is bm25s (method "lucene": the same IDF, ``ln(1 + (N - n + 0.5) / (n + 0.5))``)
over the engine's own tokenisation (:meth:`Bm25Encoder.term_counts`), with the same k1 and b.
Qdrant's weights carry BM25's ``(k1 + 1)`` factor, which Lucene's dropped: scores are
compared up to that constant. After adds and deletes the corpus mean changes while the
encoder keeps its ``avg_len`` (a fixed parameter, as in Qdrant's BM25), so from then on
the reference is the same formula with ``avgdl = avg_len``, checked against bm25s first.
"""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.encoders import Bm25Encoder, encoder_from_functions, load_encoder, pair_encoders
from shared.encoders.bm25 import bm25_for_corpus
from shared.errors import InvalidInputError, ModelMismatchError
from shared.store import HybridStore
from tests.support.bm25 import QUERIES, bm25_reference, verses

K1, B = 1.2, 0.75


def _verses(start: int, n: int) -> list[tuple[str, str]]:
    return [(r["id"], r["text"]) for r in verses(start, n)]


def _reference(enc: Bm25Encoder, docs: dict[str, str], query: str, avgdl: float) -> dict[str, float]:
    return bm25_reference(enc, docs, query, avgdl)


def _engine_scores(store: HybridStore, query: str) -> dict[str, float]:
    hits = store.query(query, mode="sparse", limit=1000)
    return {h.id: h.score for h in hits}


def _assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=2e-5), key


def test_reference_formula_is_bm25s_lucene() -> None:
    """The test's reference equals bm25s (lucene) x (k1 + 1) when avgdl is the corpus mean."""
    docs = dict(_verses(0, 300))
    enc = Bm25Encoder(k1=K1, b=B)
    counts = enc.term_counts(list(docs.values()))
    avgdl = float(np.mean([sum(c.values()) for c in counts]))
    tokens = [[str(t) for t, k in c.items() for _ in range(k)] for c in counts]
    index = bm25s.BM25(method="lucene", k1=K1, b=B)
    index.index(tokens, show_progress=False)
    ids = list(docs)
    for query in QUERIES:
        q = [str(t) for t in enc.term_counts([query])[0]]
        ref = _reference(enc, docs, query, avgdl)
        theirs = index.get_scores(q)
        for j, i in enumerate(ids):
            assert (K1 + 1) * float(theirs[j]) == pytest.approx(ref.get(i, 0.0), rel=1e-5, abs=1e-9)


@pytest.fixture(params=["edge", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    if request.param == "edge":
        return {"path": tmp_path / "edge"}
    return {"client": QdrantClient(path=str(tmp_path / "local"))}


def test_engine_idf_equals_reference_before_and_after_changes(backend: dict, tmp_path: Path) -> None:
    first = dict(_verses(0, 300))
    avg = Bm25Encoder().mean_length(first.values())
    enc = Bm25Encoder(k1=K1, b=B, avg_len=avg)
    store = HybridStore("bm25", encoder=enc, **backend)
    assert store.schema.sparse_idf  # BM25 asks the engine for the IDF without being told
    store.add_texts(list(first.values()), ids=list(first))
    live = dict(first)
    for query in QUERIES:
        _assert_close(_engine_scores(store, query), _reference(enc, live, query, avg))

    # Deletes, adds and updates: the engine's IDF follows, nothing is rebuilt.
    gone = list(first)[::5]
    store.delete(gone)
    for i in gone:
        del live[i]
    added = dict(_verses(300, 80))
    store.add_texts(list(added.values()), ids=list(added))
    live.update(added)
    changed = {i: f"{live[i]} And the light was upon the waters of the deep." for i in list(live)[1:40:4]}
    store.add_texts(list(changed.values()), ids=list(changed))
    live.update(changed)
    assert store.count() == len(live)
    for query in QUERIES:
        _assert_close(_engine_scores(store, query), _reference(enc, live, query, avg))
    store.close()

    if "path" in backend:  # persistence: the embedded store reopened from its path
        reopened = HybridStore("bm25", encoder=Bm25Encoder(k1=K1, b=B, avg_len=avg), path=backend["path"])
        for query in QUERIES:
            _assert_close(_engine_scores(reopened, query), _reference(enc, live, query, avg))
        reopened.close()
        # The guard records BM25's parameters: another avg_len would score differently.
        with pytest.raises(ModelMismatchError, match="avg_len"):
            HybridStore("bm25", encoder=Bm25Encoder(avg_len=avg + 1), path=backend["path"])


def test_hybrid_with_dense_model(minilm_dir: Path, tmp_path: Path) -> None:
    """``load_encoder(model, sparse_model="bm25")``: dense + BM25 in one collection, fused in one request."""
    enc = load_encoder(minilm_dir, sparse_model="bm25", show_progress=False)
    assert enc.identity.sparse_kind == "bm25"
    docs = dict(_verses(0, 120))
    with HybridStore("hybrid", encoder=enc, path=tmp_path) as store:
        assert store.schema.sparse_idf and store.schema.has_dense
        store.add_texts(list(docs.values()), ids=list(docs))
        hits = store.query("Let there be light: and there was light", limit=3)
        assert hits[0].id == "Gen.1.3"
    # Reopened with a dense model alone, the collection is refused (the guard names BM25).
    with pytest.raises(ModelMismatchError, match="bm25"):
        HybridStore("hybrid", encoder=load_encoder(minilm_dir, show_progress=False), path=tmp_path)


def test_bad_input() -> None:
    with pytest.raises(InvalidInputError, match=r"klingon.*not supported.*english"):
        Bm25Encoder("klingon")
    with pytest.raises(InvalidInputError, match="not supported"):
        load_encoder(None, sparse_model="bm25:elvish")
    enc = Bm25Encoder()
    with pytest.raises(InvalidInputError, match="empty document"):
        enc.encode(["fine words", "   "])
    with pytest.raises(InvalidInputError, match="empty query"):
        enc.encode([""], "query")
    with pytest.raises(InvalidInputError, match="b must be"):
        Bm25Encoder(b=1.5)
    with pytest.raises(InvalidInputError, match="avg_len"):
        Bm25Encoder(avg_len=0)


def test_language_option_stems_that_language() -> None:
    french = Bm25Encoder("french")
    # Snowball French: "chevaux" and "cheval" are one term; English stemming keeps two.
    assert french.term_counts(["chevaux cheval"])[0] == {next(iter(french.term_counts(["cheval"])[0])): 2}
    assert len(Bm25Encoder("english").term_counts(["chevaux cheval"])[0]) == 2
    # Stop words are kept unless asked for (IDF discounts them).
    assert len(Bm25Encoder().term_counts(["the light"])[0]) == 2
    assert len(Bm25Encoder(stopwords=True).term_counts(["the light"])[0]) == 1


def test_store_writes_what_encode_gives(tmp_path: Path) -> None:
    """The store weights documents on its write path (no cache, no dict per document): the
    stored vectors are encode()'s, a text with no term gets no BM25 vector (a dense one
    stays), and a blank text is refused naming its record, before anything is written."""
    enc = Bm25Encoder(avg_len=12)
    docs = dict(_verses(0, 40))
    want = dict(zip(docs, enc.encode(list(docs.values())).sparse or [], strict=True))
    with HybridStore("w", encoder=enc, path=tmp_path) as store:
        store.add_texts(list(docs.values()), ids=list(docs))
        got = {r.id: r.sparse for r in store.scroll(with_vectors=True)}
    assert got == want

    dense = encoder_from_functions(
        model_id="fixed", embed_documents=lambda ts: [[1.0, 0.5]] * len(ts), embed_query=lambda t: [1.0, 0.5]
    )
    with HybridStore("p", encoder=pair_encoders(dense, Bm25Encoder()), path=tmp_path) as store:
        store.add_texts(["light and darkness", "!!! ..."], ids=["a", "b"])
        stored = {r.id: r for r in store.scroll(with_vectors=True)}
        assert stored["a"].sparse and not stored["b"].sparse and stored["b"].dense is not None
        with pytest.raises(InvalidInputError, match=r"'c' \(index 1\).*empty document"):
            store.add_texts(["fine words", "   "], ids=["x", "c"])
        assert store.count() == 2


def test_corpus_weights_are_the_engines_from_one_tokenisation() -> None:
    """bm25_for_corpus tokenises each text once: its avg_len is the corpus mean, and the weights
    it keeps for the store's add are embed_document's, bit for bit, each taken once (a repeated
    text is weighed again by the engine, a text without terms still refused)."""
    texts = [r["text"] for r in verses(0, 300)] + ["Let there be light", "!!!"]
    enc = bm25_for_corpus(texts, k1=0.9, b=0.6, stopwords=True)
    assert enc.avg_len == round(Bm25Encoder(stopwords=True).mean_length(texts), 1)
    engine = Bm25Encoder(k1=0.9, b=0.6, stopwords=True, avg_len=enc.avg_len)
    words = [*texts[:-1], texts[0]]  # the first verse twice: the second time from the engine
    assert enc.document_arrays(words) == engine.document_arrays(words)
    assert enc._corpus is not None and list(enc._corpus.positions) == ["!!!"]  # only what was not stored
    fresh = bm25_for_corpus(texts)
    with pytest.raises(InvalidInputError, match=r"text 1: no words"):
        fresh.document_arrays([texts[0], "!!!"])
    fresh.forget_corpus()
    assert fresh._corpus is None
    assert fresh.document_arrays(texts[:2]) == Bm25Encoder(avg_len=fresh.avg_len).document_arrays(texts[:2])
    with pytest.raises(InvalidInputError, match="at least one text"):
        bm25_for_corpus([])


def test_an_add_keeps_no_corpus_weights_it_did_not_take(tmp_path: Path) -> None:
    """Weights kept for texts the add never stored (another text was embedded) go with the add."""
    docs = dict(_verses(0, 30))
    enc = bm25_for_corpus([*docs.values(), "a text that is never added"])
    with HybridStore("w", encoder=enc, path=tmp_path) as store:
        store.add_texts(list(docs.values()), ids=list(docs))
        assert enc._corpus is None
        got = {r.id: r.sparse for r in store.scroll(with_vectors=True)}
    want = Bm25Encoder(avg_len=enc.avg_len).encode(list(docs.values())).sparse or []
    assert got == dict(zip(docs, want, strict=True))
