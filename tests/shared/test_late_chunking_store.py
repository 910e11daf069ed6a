"""Late chunking in HybridStore: stored vectors are the encoder's late-chunked ones, on both
backends; documents given or rebuilt; the guard; bad input refused with nothing written."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from shared.encoders import encoder_from_functions, load_encoder
from shared.errors import InvalidInputError, InvalidTypeError, ModelMismatchError, UnsupportedOperationError
from shared.store import HybridStore
from shared.types import ChunkOf, Record
from tests.shared.encoders.test_late_chunking import DOC, SPANS

OTHER = "Paris is the capital of France. It is the largest city of the country and a centre of art."
OTHER_SPANS = [(0, 31), (32, len(OTHER))]


@pytest.fixture(scope="module")
def m3(tiny_bge_m3_dir: Path) -> Any:
    return load_encoder(tiny_bge_m3_dir, show_progress=False)


def _chunks(doc: str, spans: list[tuple[int, int]], key: str) -> list[Record]:
    return [
        Record(id=f"{key}-{i}", text=doc[a:b], ref_doc_id=key, chunk_of=ChunkOf(key, a, b))
        for i, (a, b) in enumerate(spans)
    ]


@pytest.mark.parametrize("remote", [False, True])
def test_stored_vectors_are_the_late_chunked_ones(m3: Any, remote: bool) -> None:
    where: dict[str, Any] = {"client": QdrantClient(":memory:")} if remote else {}
    with HybridStore("late", encoder=m3, late_chunking=True, colbert=True, **where) as store:
        records = _chunks(DOC, SPANS, "a") + _chunks(OTHER, OTHER_SPANS, "b")
        # Chunks of two documents, interleaved: grouped by their key.
        store.add([records[0], records[4], records[1], records[3], records[2]])
        expected = {
            **dict(zip([r.id for r in records[:3]], m3.encode_chunks(DOC, SPANS).dense, strict=True)),
            **dict(zip([r.id for r in records[3:]], m3.encode_chunks(OTHER, OTHER_SPANS).dense, strict=True)),
        }
        got = store.get(list(expected), with_vectors=True)
        assert [r.id for r in got] == list(expected)
        for rec in got:
            np.testing.assert_allclose(rec.dense, expected[rec.id], atol=1e-5)
        sparse = m3.encode_chunks(DOC, SPANS).sparse[1]
        assert {int(k): pytest.approx(v, rel=1e-5) for k, v in got[1].sparse.items()} == sparse
        # Query encoding is unchanged: a query's dense vector is the plain query encoding.
        hits = store.query("capital of France", mode="dense", limit=5, colbert_rerank=False)
        q = m3.encode(["capital of France"], "query").dense[0]
        for hit in hits:
            assert hit.score == pytest.approx(float(np.dot(q, expected[hit.id])), abs=1e-4)
        assert store.schema.late_chunking


def test_rebuilt_document_gives_the_vectors_of_the_given_one(minilm_dir: Path) -> None:
    dense = load_encoder(minilm_dir, show_progress=False)
    with (
        HybridStore("a", encoder=dense, late_chunking=True) as given,
        HybridStore("b", encoder=dense, late_chunking=True) as rebuilt,
    ):
        given.add(_chunks(DOC, SPANS, "d"), documents={"d": DOC})
        # The spaces between the sentences are not in any chunk: rebuilt as spaces.
        rebuilt.add(_chunks(DOC, SPANS, "d"))
        ids = [f"d-{i}" for i in range(len(SPANS))]
        for a, b in zip(given.get(ids, with_vectors=True), rebuilt.get(ids, with_vectors=True), strict=True):
            np.testing.assert_allclose(a.dense, b.dense, atol=1e-6)
        # Overlapping chunks that agree are fine (splitters overlap them by design).
        rebuilt.add(
            [Record(id="o", text=DOC[10:80], chunk_of=ChunkOf("e", 10, 80)), *_chunks(DOC, SPANS, "e")]
        )


def test_add_document(m3: Any) -> None:
    with HybridStore("doc", encoder=m3, late_chunking=True) as store:
        ids = store.add_document(
            DOC, SPANS, document_id="d1", ids=["x", "y", "z"], metadatas=[{"n": i} for i in range(3)]
        )
        assert ids == ["x", "y", "z"]
        got = store.get(ids, with_vectors=True)
        assert [r.ref_doc_id for r in got] == ["d1"] * 3 and got[2].metadata == {"n": 2}
        np.testing.assert_allclose(
            np.stack([r.dense for r in got]), m3.encode_chunks(DOC, SPANS).dense, atol=1e-5
        )
        assert got[0].text == DOC[slice(*SPANS[0])]
        # The async twin runs the same steps.
        asyncio.run(store.aadd_document(OTHER, OTHER_SPANS, document_id="d2", ids=["u", "v"]))
        late = m3.encode_chunks(OTHER, OTHER_SPANS).dense
        np.testing.assert_allclose(
            np.stack([r.dense for r in store.get(["u", "v"], with_vectors=True)]), late, atol=1e-5
        )
        with pytest.raises(InvalidTypeError, match="document_ids"):
            store.add_document(DOC, SPANS, document_ids="typo")  # type: ignore[call-arg]


def test_single_chunk_document_is_stored_as_normal_encoding(m3: Any) -> None:
    with (
        HybridStore("late", encoder=m3, late_chunking=True) as late,
        HybridStore("plain", encoder=m3) as plain,
    ):
        late.add_document(DOC, [(0, len(DOC))], ids=["one"])
        plain.add_texts([DOC], ids=["one"])
        a, b = late.get(["one"], with_vectors=True)[0], plain.get(["one"], with_vectors=True)[0]
        assert np.array_equal(np.asarray(a.dense), np.asarray(b.dense))
        assert a.sparse == b.sparse


def _nothing_written(store: HybridStore, records: list[Record], match: str, **kwargs: Any) -> None:
    with pytest.raises(InvalidInputError, match=match):
        store.add(records, **kwargs)
    assert store.count() == 0


def test_bad_chunks_are_refused_with_nothing_written(tiny_bge_m3_dir: Path) -> None:
    enc = load_encoder(tiny_bge_m3_dir, show_progress=False, max_length=32)
    with HybridStore("bad", encoder=enc, late_chunking=True) as store:
        good = _chunks(OTHER, OTHER_SPANS, "b")
        # A chunk without its document key and offsets.
        _nothing_written(
            store, [*good, Record(id="lost", text="some text")], r"record 'lost' \(index 2\): no document key"
        )
        # Offsets that do not match the given document's text, naming the chunk.
        shifted = Record(id="shifted", text=DOC[0:20], chunk_of=ChunkOf("a", 1, 21))
        _nothing_written(
            store, [shifted], r"record 'shifted' .* do not match document 'a'", documents={"a": DOC}
        )
        # Offsets outside the document.
        far = Record(id="far", text="x" * 10, chunk_of=ChunkOf("a", len(DOC), len(DOC) + 10))
        _nothing_written(store, [far], r"record 'far' .* outside document 'a'", documents={"a": DOC})
        # Offsets that do not span the chunk's text.
        short = Record(id="short", text="abcdef", chunk_of=ChunkOf("a", 0, 3))
        _nothing_written(store, [short], r"record 'short' .* span 3 characters but its text has 6")
        # Overlapping chunks that disagree on their shared characters: both named.
        one = Record(id="one", text="hello world", chunk_of=ChunkOf("c", 0, 11))
        two = Record(id="two", text="there", chunk_of=ChunkOf("c", 6, 11))
        _nothing_written(store, [one, two], r"record 'two' .* and record 'one' .* overlap at character 6")
        # A chunk longer than the model's window (32 tokens).
        _nothing_written(
            store,
            [*good, *_chunks(DOC, [(0, 150), (151, len(DOC))], "long")],
            r"record 'long-0' .* longer than the model's window",
        )


def test_mixed_late_and_normal_chunks_are_refused(m3: Any, tmp_path: Path) -> None:
    with HybridStore("c", encoder=m3, path=tmp_path, late_chunking=True) as late:
        late.add(_chunks(DOC, SPANS, "a"))
    with HybridStore("c", encoder=m3, path=tmp_path) as plain:
        assert plain.query("village", limit=1)  # reading is fine
        with pytest.raises(ModelMismatchError, match="late-chunked; this store writes them chunked normally"):
            plain.add_texts(["another"])
        assert plain.count() == 3
    with HybridStore("n", encoder=m3, path=tmp_path) as plain:
        plain.add_texts(["normal"])
    with HybridStore("n", encoder=m3, path=tmp_path, late_chunking=True) as late:
        with pytest.raises(
            ModelMismatchError, match=r"chunked normally .* this store writes them late-chunked"
        ):
            late.add(_chunks(DOC, SPANS, "a"))
        assert late.count() == 1


def test_options_need_a_model_that_can_late_chunk() -> None:
    foreign = encoder_from_functions(
        model_id="f", embed_documents=lambda t: [[1.0, 0.0]] * len(t), embed_query=lambda t: [1.0, 0.0]
    )
    with pytest.raises(UnsupportedOperationError, match="token states"):
        HybridStore("x", encoder=foreign, late_chunking=True)
    with (
        HybridStore("x", encoder=foreign) as store,
        pytest.raises(InvalidInputError, match="documents= is for late"),
    ):
        store.add(_chunks(DOC, SPANS, "a"), documents={"a": DOC})
