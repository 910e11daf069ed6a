"""Late chunking in the encoders: parity with pooling one full-document pass done by hand
(torch and ONNX), single-chunk = normal encoding, ColBERT spans = slices, windows, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.encoders import encoder_from_functions, load_encoder
from shared.encoders.late import _windows, require_late_chunking
from shared.errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError

DOC = (
    "The history of the city begins with a small village by the river. Over many years the village "
    "grew into a town with a market, a school and a library. Scientists study the stars and the moon."
)


def _spans(text: str) -> list[tuple[int, int]]:
    """The sentences of ``text`` as character spans (without the spaces between them)."""
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == "." and (i + 1 == len(text) or text[i + 1] == " "):
            out.append((start, i + 1))
            start = i + 2
    return out


SPANS = _spans(DOC)


def _token_span(offsets: list[tuple[int, int]], special: list[int], a: int, b: int) -> tuple[int, int]:
    """By hand: the first and end token whose characters overlap [a, b) (specials never)."""
    toks = [t for t, (s, e) in enumerate(offsets) if not special[t] and e > a and s < b]
    return toks[0], toks[-1] + 1


def _hand_tokens(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    return enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def m3(tiny_bge_m3_dir: Path) -> Any:
    return load_encoder(tiny_bge_m3_dir, show_progress=False, cache_size=0)


def test_bge_m3_torch_parity_with_one_pass_by_hand(m3: Any) -> None:
    import torch

    got = m3.encode_chunks(DOC, SPANS, outputs=["dense", "sparse", "colbert"])
    ids, offsets, special = _hand_tokens(m3.tokenizer, DOC)
    with torch.inference_mode():
        t = torch.tensor([ids])
        hidden = m3.model(input_ids=t, attention_mask=torch.ones_like(t)).last_hidden_state[0]
        weights = torch.relu(m3.sparse_linear(hidden)).squeeze(-1).numpy()
        colbert = torch.nn.functional.normalize(m3.colbert_linear(hidden), dim=-1).numpy()
    hidden = hidden.numpy()
    assert got.dense is not None and got.sparse is not None and got.colbert is not None
    for row, (a, b) in enumerate(SPANS):
        ta, tb = _token_span(offsets, special, a, b)
        # CLS-pooled BGE-M3: a span's dense vector is the mean of its token states.
        np.testing.assert_allclose(got.dense[row], _unit(hidden[ta:tb].mean(axis=0)), atol=1e-5)
        expected: dict[int, float] = {}
        for tok, w in zip(ids[ta:tb], weights[ta:tb], strict=True):
            if w > 0:
                expected[tok] = max(expected.get(tok, 0.0), float(w))
        assert got.sparse[row].keys() == expected.keys()
        np.testing.assert_allclose([got.sparse[row][k] for k in expected], list(expected.values()), rtol=1e-5)
        np.testing.assert_allclose(got.colbert[row], colbert[ta:tb], atol=1e-5)
        assert got.token_counts[row] == tb - ta


def test_colbert_span_vectors_are_the_slice_of_the_documents_colbert(m3: Any) -> None:
    whole = m3.encode([DOC], outputs=["colbert"]).colbert[0]  # rows: the tokens after the CLS
    got = m3.encode_chunks(DOC, SPANS, outputs=["colbert"]).colbert
    _, offsets, special = _hand_tokens(m3.tokenizer, DOC)
    for row, (a, b) in enumerate(SPANS):
        ta, tb = _token_span(offsets, special, a, b)
        np.testing.assert_allclose(got[row], whole[ta - 1 : tb - 1], atol=1e-5)


def test_mean_pooled_dense_and_splade_torch_parity(minilm_dir: Path, splade_dir: Path) -> None:
    import torch

    dense = load_encoder(minilm_dir, show_progress=False, cache_size=0)
    got = dense.encode_chunks(DOC, SPANS).dense
    ids, offsets, special = _hand_tokens(dense.tokenizer, DOC)
    with torch.inference_mode():
        t = torch.tensor([ids])
        hidden = dense.model(input_ids=t, attention_mask=torch.ones_like(t)).last_hidden_state[0].numpy()
    for row, (a, b) in enumerate(SPANS):
        ta, tb = _token_span(offsets, special, a, b)
        np.testing.assert_allclose(got[row], _unit(hidden[ta:tb].mean(axis=0)), atol=1e-5)

    splade = load_encoder(splade_dir, show_progress=False, cache_size=0)
    sparse = splade.encode_chunks(DOC, SPANS).sparse
    ids, offsets, special = _hand_tokens(splade.tokenizer, DOC)
    with torch.inference_mode():
        t = torch.tensor([ids])
        logits = splade.model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0]
        weights = torch.log1p(torch.relu(logits)).numpy()
    for row, (a, b) in enumerate(SPANS):
        ta, tb = _token_span(offsets, special, a, b)
        pooled = weights[ta:tb].max(axis=0)
        pooled[splade._special.numpy()] = 0
        nz = np.flatnonzero(pooled)
        assert sorted(sparse[row]) == nz.tolist()
        np.testing.assert_allclose([sparse[row][k] for k in nz.tolist()], pooled[nz], rtol=1e-5)
    # Context matters: a chunk's late vector is not its text encoded alone.
    alone = splade.encode([DOC[slice(*SPANS[1])]]).sparse[0]
    assert alone != sparse[1]


def test_single_chunk_document_is_exactly_normal_encoding(
    m3: Any, minilm_dir: Path, splade_dir: Path
) -> None:
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False)
    for enc, outputs in ((m3, ["dense", "sparse", "colbert"]), (pair, ["dense", "sparse"])):
        late = enc.encode_chunks(DOC, [(0, len(DOC))], outputs=outputs)
        normal = enc.encode([DOC], outputs=outputs)
        assert np.array_equal(late.dense, normal.dense)
        assert late.sparse == normal.sparse
        if "colbert" in outputs:
            assert np.array_equal(late.colbert[0], normal.colbert[0])


def test_pair_late_chunks_each_model_with_its_own_pass(minilm_dir: Path, splade_dir: Path) -> None:
    from shared.mrl import truncate

    dense = load_encoder(minilm_dir, show_progress=False)
    sparse = load_encoder(splade_dir, show_progress=False)
    pair = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False)
    got = pair.encode_chunks(DOC, SPANS)
    np.testing.assert_allclose(got.dense, dense.encode_chunks(DOC, SPANS).dense, atol=1e-6)
    assert got.sparse == sparse.encode_chunks(DOC, SPANS).sparse
    # The pair's MRL truncation applies to late chunks as to normal ones.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MiniLM is not MRL-trained: a warning, not the point here
        short = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False, truncate_dim=128)
    np.testing.assert_allclose(
        short.encode_chunks(DOC, SPANS).dense, truncate(dense.encode_chunks(DOC, SPANS).dense, 128), atol=1e-6
    )


def test_long_documents_use_windows_with_the_most_context(tiny_bge_m3_dir: Path) -> None:
    enc = load_encoder(tiny_bge_m3_dir, show_progress=False, max_length=24, cache_size=0)
    doc = " ".join([DOC] * 4)
    spans = _spans(doc)
    got = enc.encode_chunks(doc, spans)
    assert got.dense is not None and got.dense.shape == (len(spans), enc.dense_dim)
    assert np.isfinite(got.dense).all()
    # A chunk pooled from a window of its own equals that window encoded by hand.
    ids, offsets, special = _hand_tokens(enc.tokenizer, doc)
    ta, tb = _token_span(offsets, special, *spans[0])
    windows, chosen = _windows([(ta - 1, tb - 1)], len(ids) - 2, 22)
    ws, we = windows[chosen[0]]
    assert ws == 0  # the first sentence's best window starts at the document's start
    import torch

    row = [ids[0], *ids[1 + ws : 1 + we], ids[-1]]
    with torch.inference_mode():
        t = torch.tensor([row])
        hidden = enc.model(input_ids=t, attention_mask=torch.ones_like(t)).last_hidden_state[0].numpy()
    np.testing.assert_allclose(got.dense[0], _unit(hidden[ta - ws : tb - ws].mean(axis=0)), atol=1e-5)


def test_window_choice() -> None:
    # 100 tokens, windows of 20: a chunk in the middle gets a window centred around it.
    windows, chosen = _windows([(0, 5), (48, 52), (95, 100)], 100, 20)
    picked = [windows[c] for c in chosen]
    assert picked[0][0] == 0 and picked[2][1] == 100
    ws, we = picked[1]
    assert ws <= 48 and we >= 52 and min(48 - ws, we - 52) >= 4
    # A chunk no grid window holds gets a window centred on it.
    windows, chosen = _windows([(9, 27)], 100, 20)
    assert windows[chosen[0]][0] <= 9 and windows[chosen[0]][1] >= 27


def test_bad_spans_and_chunks_longer_than_the_window(tiny_bge_m3_dir: Path) -> None:
    enc = load_encoder(tiny_bge_m3_dir, show_progress=False, max_length=16)
    with pytest.raises(InvalidInputError, match=r"chunk 1: span \(10, 999\) is outside"):
        enc.encode_chunks(DOC, [(0, 5), (10, 999)])
    with pytest.raises(InvalidInputError, match="outside"):
        enc.encode_chunks(DOC, [(5, 5)])
    with pytest.raises(InvalidTypeError, match="int pair"):
        enc.encode_chunks(DOC, [(0.5, 3)])
    with pytest.raises(InvalidInputError, match="longer than the model's window of 14 tokens"):
        enc.encode_chunks(DOC, [(0, 120), (121, len(DOC))])


def test_encoders_without_token_states_refuse() -> None:
    foreign = encoder_from_functions(
        model_id="f", embed_documents=lambda t: [[1.0, 0.0]] * len(t), embed_query=lambda t: [1.0, 0.0]
    )
    assert not foreign.supports_late_chunking
    with pytest.raises(UnsupportedOperationError, match="token states"):
        require_late_chunking(foreign)


# -- ONNX -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exports(
    tiny_bge_m3_dir: Path, minilm_dir: Path, splade_dir: Path, tmp_path_factory: Any
) -> dict[str, Path]:
    from shared.encoders.onnx import export_onnx

    root = tmp_path_factory.mktemp("late-onnx")
    return {
        "m3": export_onnx(tiny_bge_m3_dir, root / "m3"),
        "minilm": export_onnx(minilm_dir, root / "minilm"),
        "splade": export_onnx(splade_dir, root / "splade"),
    }


def test_onnx_parity_with_one_pass_by_hand_and_with_torch(
    exports: dict[str, Path], tiny_bge_m3_dir: Path, minilm_dir: Path, splade_dir: Path
) -> None:
    for name, src in (("m3", tiny_bge_m3_dir), ("minilm", minilm_dir), ("splade", splade_dir)):
        onnx = load_encoder(exports[name], backend="onnx", show_progress=False, cache_size=0)
        outputs = sorted(onnx.outputs)
        got = onnx.encode_chunks(DOC, SPANS, outputs=outputs)
        # By hand: the graph's per-token output over the whole document, pooled over each span.
        enc = onnx._late_tokenize(DOC)
        ids, offsets, special = enc
        feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        (tokens,) = onnx.session.run(["tokens"], feeds)
        for row, (a, b) in enumerate(SPANS):
            ta, tb = _token_span(offsets, special, a, b)
            if got.dense is not None:
                np.testing.assert_allclose(got.dense[row], _unit(tokens[0, ta:tb].mean(axis=0)), atol=1e-5)
            if name == "splade":
                pooled = tokens[0, ta:tb].max(axis=0)
                pooled[onnx._special] = 0
                assert sorted(got.sparse[row]) == np.flatnonzero(pooled).tolist()
        torch_enc = load_encoder(src, show_progress=False, cache_size=0)
        ref = torch_enc.encode_chunks(DOC, SPANS, outputs=outputs)
        if ref.dense is not None:
            np.testing.assert_allclose(got.dense, ref.dense, atol=1e-4)
        if ref.sparse is not None:
            for mine, theirs in zip(got.sparse, ref.sparse, strict=True):
                assert mine.keys() == theirs.keys()
        if ref.colbert is not None:
            for mine, theirs in zip(got.colbert, ref.colbert, strict=True):
                np.testing.assert_allclose(mine, theirs, atol=1e-4)
        single = onnx.encode_chunks(DOC, [(0, len(DOC))], outputs=outputs)
        normal = onnx.encode([DOC], outputs=outputs)
        if normal.dense is not None:
            assert np.array_equal(single.dense, normal.dense)
        assert single.sparse == normal.sparse


def test_onnx_export_without_token_output_is_refused(exports: dict[str, Path]) -> None:
    onnx = load_encoder(exports["minilm"], backend="onnx", show_progress=False)
    meta = onnx.meta
    onnx.meta = {**meta, "outputs": ["dense"]}  # an export made before late chunking
    try:
        with pytest.raises(UnsupportedOperationError, match="predates late chunking"):
            onnx.encode_chunks(DOC, SPANS)
    finally:
        onnx.meta = meta
