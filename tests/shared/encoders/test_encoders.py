"""The native BGE-M3 encoder and the shared encoder machinery, on the tiny checkpoint.

Everything here runs the real transformers model built by
``tests.support.checkpoint.make_bge_m3_checkpoint``; nothing is mocked.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.encoders import BGEM3Encoder, TruncationWarning, clear_registry, load_encoder
from shared.errors import InvalidInputError, InvalidTypeError, ModelLoadError
from shared.mrl import MRLWarning, truncate
from shared.types import Encoder
from tests.support.checkpoint import sample_corpus

TEXTS = [*sample_corpus()[:9], "short", "What is the capital of France?"]


@pytest.fixture(scope="module")
def enc(tiny_bge_m3_dir: Path) -> BGEM3Encoder:
    return BGEM3Encoder(tiny_bge_m3_dir, device="cpu", batch_size=4, show_progress=False)


def fresh(path: Path, **kw: object) -> BGEM3Encoder:
    kw.setdefault("device", "cpu")
    return BGEM3Encoder(path, show_progress=False, **kw)  # type: ignore[arg-type]


# -- outputs -------------------------------------------------------------------------


def test_implements_encoder_protocol(enc: BGEM3Encoder) -> None:
    assert isinstance(enc, Encoder)
    assert enc.outputs == frozenset({"dense", "sparse", "colbert"})
    assert enc.dense_dim == 32


def test_dense_sparse_colbert_shapes_and_types(enc: BGEM3Encoder) -> None:
    r = enc.encode(TEXTS, outputs=["dense", "sparse", "colbert"])
    assert len(r) == len(TEXTS)
    assert r.dense is not None and r.dense.shape == (len(TEXTS), 32) and r.dense.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(r.dense, axis=1), 1.0, rtol=1e-5)
    assert r.sparse is not None and r.colbert is not None
    specials = {enc.tokenizer.cls_token_id, enc.tokenizer.eos_token_id, enc.tokenizer.pad_token_id}
    specials.add(enc.tokenizer.unk_token_id)
    for i, weights in enumerate(r.sparse):
        assert weights, f"text {i} has no sparse terms"
        assert all(type(k) is int and type(v) is float for k, v in weights.items())
        assert all(v > 0 for v in weights.values())
        assert not specials & weights.keys()
        # Every term is a token of the text.
        assert set(weights) <= set(enc.tokenizer(TEXTS[i])["input_ids"])
    for i, vecs in enumerate(r.colbert):
        # One vector per real token except the CLS (the trailing </s> is kept).
        assert vecs.shape == (r.token_counts[i] - 1, 32) and vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert r.token_counts == [len(enc.tokenizer(t)["input_ids"]) for t in TEXTS]
    assert r.truncated == [False] * len(TEXTS) and r.prompt == ""


def test_outputs_match_bge_m3_math_computed_by_hand(enc: BGEM3Encoder) -> None:
    """Dense = CLS, sparse = max relu(w.h) per id, colbert = W h[1:], all normalised."""
    text = "the cat sat on the mat near the cat"
    r = enc.encode([text], outputs=["dense", "sparse", "colbert"])
    ids = torch.tensor([enc.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        h = enc.model(input_ids=ids).last_hidden_state[0]
        dense = torch.nn.functional.normalize(h[0], dim=-1).numpy()
        w = torch.relu(enc.sparse_linear(h)).squeeze(-1).numpy()
        col = torch.nn.functional.normalize(enc.colbert_linear(h[1:]), dim=-1).numpy()
    np.testing.assert_allclose(r.dense[0], dense, atol=1e-5)  # type: ignore[index]
    expected: dict[int, float] = {}
    for tid, wt in zip(ids[0].tolist(), w.tolist(), strict=True):
        if tid not in (0, 1, 2, 3) and wt > 0:
            expected[tid] = max(expected.get(tid, 0.0), wt)
    assert r.sparse is not None and r.sparse[0].keys() == expected.keys()
    for k, v in expected.items():
        assert r.sparse[0][k] == pytest.approx(v, abs=1e-5)
    # "the" and "cat" repeat: one entry each, with the max weight.
    assert len(r.sparse[0]) < len(ids[0]) - 2
    np.testing.assert_allclose(r.colbert[0], col, atol=1e-5)  # type: ignore[index]


def test_default_outputs_exclude_colbert(enc: BGEM3Encoder) -> None:
    r = enc.encode(["hello"])
    assert r.dense is not None and r.sparse is not None and r.colbert is None
    r = enc.encode(["hello"], outputs=["sparse"])
    assert r.dense is None and r.sparse is not None


def test_input_order_restored_under_length_sorting(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, batch_size=3, cache_size=0)
    texts = ["a", TEXTS[1], "b c", TEXTS[0], TEXTS[4], "x", TEXTS[3]]
    together = e.encode(texts, outputs=["dense", "sparse", "colbert"])
    for i, t in enumerate(texts):
        alone = e.encode([t], outputs=["dense", "sparse", "colbert"])
        np.testing.assert_allclose(together.dense[i], alone.dense[0], atol=1e-5)  # type: ignore[index]
        assert together.sparse[i].keys() == alone.sparse[0].keys()  # type: ignore[index]
        np.testing.assert_allclose(together.colbert[i], alone.colbert[0], atol=1e-5)  # type: ignore[index]
        assert together.token_counts[i] == alone.token_counts[0]


def test_duplicates_in_one_call_are_encoded_once(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, batch_size=2, cache_size=0)
    same = "the same words again"
    r = e.encode([same, "other", same, same])
    assert r.sparse[2]  # type: ignore[index]
    assert e.forward_passes == 1  # 2 unique texts, one batch
    np.testing.assert_array_equal(r.dense[0], r.dense[2])  # type: ignore[index]
    # Results are independent copies: mutating one does not change the other.
    r.sparse[0].clear()  # type: ignore[index]
    assert r.sparse[2]  # type: ignore[index]


# -- one forward pass, the cache and the registry ------------------------------------


def test_dense_then_sparse_is_one_forward_pass(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, batch_size=4)
    docs = TEXTS[:8]
    e.encode(docs, outputs=["dense"])
    assert e.forward_passes == 2  # 8 texts / batch 4
    e.encode(docs, outputs=["sparse"])  # what the sparse adapter class asks next
    assert e.forward_passes == 2
    e.encode(docs[:3], kind="document")
    assert e.forward_passes == 2
    # ColBERT was never computed: asking for it runs the model once more, then it is cached too.
    r = e.encode(docs, outputs=["colbert"])
    assert e.forward_passes == 4 and r.colbert is not None
    e.encode(docs, outputs=["dense", "sparse", "colbert"])
    assert e.forward_passes == 4


def test_cache_is_keyed_by_kind_and_prompt(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, query_instruction="query: ")
    d = e.encode(["paris"], kind="document")
    q = e.encode(["paris"], kind="query")
    assert e.forward_passes == 2
    assert q.prompt == "query: " and d.prompt == ""
    assert q.token_counts[0] > d.token_counts[0]
    assert not np.allclose(q.dense, d.dense)  # type: ignore[arg-type]
    assert e.identity.query_prompt == "query: " and e.identity.document_prompt == ""


def test_cache_is_bounded(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, cache_size=2)
    e.encode(["one"])
    e.encode(["two"])
    e.encode(["three"])  # evicts "one"
    assert len(e.cache) == 2 and e.forward_passes == 3
    e.encode(["three", "two"])
    assert e.forward_passes == 3
    e.encode(["one"])
    assert e.forward_passes == 4


def test_load_encoder_shares_one_instance_per_configuration(tiny_bge_m3_dir: Path) -> None:
    clear_registry()
    a = load_encoder(str(tiny_bge_m3_dir), device="cpu", show_progress=False)
    b = load_encoder(tiny_bge_m3_dir, device="cpu", batch_size=8)  # batch size is per call
    assert a is b
    c = load_encoder(tiny_bge_m3_dir, device="cpu", query_instruction="q: ")
    assert c is not a and c.identity.query_prompt == "q: "
    assert load_encoder(tiny_bge_m3_dir, device="cpu", fp16=False) is a  # False is the CPU default
    # The dense and the sparse adapter classes: one forward pass for both.
    a.encode(TEXTS[:3], outputs=["dense"])
    passes = a.forward_passes
    b.encode(TEXTS[:3], outputs=["sparse"])
    assert b.forward_passes == passes


def test_registry_is_weak(tiny_bge_m3_dir: Path) -> None:
    import gc
    import weakref

    clear_registry()
    a = load_encoder(tiny_bge_m3_dir, device="cpu", max_length=64)
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is None


# -- identity ------------------------------------------------------------------------


def test_identity(enc: BGEM3Encoder, tiny_bge_m3_dir: Path) -> None:
    ident = enc.identity
    assert ident.model_id == str(tiny_bge_m3_dir.resolve())
    assert len(ident.model_hash) == 64
    assert ident.dense_dim == 32 and ident.truncate_dim is None
    assert ident.sparse_kind == "bge-m3" and ident.colbert_dim == 32
    assert ident.query_prompt == "" and ident.document_prompt == ""


def test_model_hash_changes_with_the_checkpoint(tiny_bge_m3_dir: Path, tmp_path: Path) -> None:
    from shared.encoders._hf import local_model_hash
    from tests.support.checkpoint import make_bge_m3_checkpoint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bge_m3_dir, copy)
    assert local_model_hash(copy) == local_model_hash(tiny_bge_m3_dir)
    bigger = make_bge_m3_checkpoint(tmp_path / "bigger", num_layers=3)
    assert local_model_hash(bigger) != local_model_hash(tiny_bge_m3_dir)


# -- MRL -----------------------------------------------------------------------------


def test_truncate_dim(enc: BGEM3Encoder, tiny_bge_m3_dir: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = fresh(tiny_bge_m3_dir, truncate_dim=16)
        r = e.encode(TEXTS[:4])
        e.encode(TEXTS[4:6])
    assert [w.category for w in caught] == [MRLWarning]  # once per encoder, not per call
    assert e.dense_dim == 16 and e.identity.dense_dim == 16 and e.identity.truncate_dim == 16
    assert r.dense is not None and r.dense.shape == (4, 16)
    full = enc.encode(TEXTS[:4]).dense
    np.testing.assert_allclose(r.dense, truncate(full, 16), atol=1e-6)  # type: ignore[arg-type]
    np.testing.assert_allclose(np.linalg.norm(r.dense, axis=1), 1.0, rtol=1e-5)
    assert e.encode([]).dense.shape == (0, 16)  # type: ignore[union-attr]


@pytest.mark.parametrize("dim", [0, -4, 33])
def test_truncate_dim_out_of_range(tiny_bge_m3_dir: Path, dim: int) -> None:
    with pytest.raises(InvalidInputError, match="truncate_dim"):
        fresh(tiny_bge_m3_dir, truncate_dim=dim)


# -- long texts ----------------------------------------------------------------------


def test_default_max_length_follows_the_position_table(enc: BGEM3Encoder) -> None:
    # XLM-R: 514 positions minus the 2 reserved by the padding offset.
    assert enc.max_length == 512


def test_truncation_is_reported_with_one_warning_per_call(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, max_length=16)
    long_a, long_b = " ".join(TEXTS[:3]), " ".join(TEXTS[3:6])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = e.encode(["short", long_a, "tiny", long_b], outputs=["dense", "sparse", "colbert"])
    assert r.truncated == [False, True, False, True] and r.num_truncated == 2
    assert r.token_counts[1] == r.token_counts[3] == 16
    assert r.colbert[1].shape[0] == 15  # type: ignore[index]
    trunc = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(trunc) == 1
    assert "2 of 4 texts" in str(trunc[0].message) and "max_length=16" in str(trunc[0].message)
    # Truncation keeps the start of the text and the closing </s>.
    assert e.tokenize([long_a])[0][0][-1] == e.tokenizer.eos_token_id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert e.encode(["short"]).truncated == [False]


@pytest.mark.parametrize("bad", [0, 3, 513])
def test_max_length_out_of_range(tiny_bge_m3_dir: Path, bad: int) -> None:
    with pytest.raises(InvalidInputError, match="max_length"):
        fresh(tiny_bge_m3_dir, max_length=bad)


# -- bad input -----------------------------------------------------------------------


def test_empty_list(enc: BGEM3Encoder) -> None:
    r = enc.encode([], outputs=["dense", "sparse", "colbert"])
    assert r.dense is not None and r.dense.shape == (0, 32) and r.dense.dtype == np.float32
    assert r.sparse == [] and r.colbert == [] and r.token_counts == [] and r.truncated == []


@pytest.mark.parametrize(("texts", "where"), [(["ok", None], r"texts\[1\]"), ([3, "ok"], r"texts\[0\]")])
def test_non_str_items_name_the_index(enc: BGEM3Encoder, texts: list[object], where: str) -> None:
    with pytest.raises(InvalidTypeError, match=where):
        enc.encode(texts)  # type: ignore[arg-type]


def test_bare_string_and_non_iterable_rejected(enc: BGEM3Encoder) -> None:
    with pytest.raises(InvalidTypeError, match="single str"):
        enc.encode("hello")
    with pytest.raises(InvalidTypeError):
        enc.encode(None)  # type: ignore[arg-type]


def test_blank_texts_give_valid_vectors_and_no_terms(enc: BGEM3Encoder) -> None:
    r = enc.encode(["", "   \n\t", "real words"], outputs=["dense", "sparse", "colbert"])
    assert r.dense is not None and np.all(np.isfinite(r.dense))
    np.testing.assert_allclose(np.linalg.norm(r.dense, axis=1), 1.0, rtol=1e-5)
    assert r.sparse is not None and r.sparse[0] == {} and r.sparse[1] == {} and r.sparse[2]
    # A prompt does not give a blank text any terms either.
    e = fresh(enc.resolved.path, query_instruction="query: ")
    assert e.encode([" "], kind="query").sparse == [{}]


def test_bad_kind_and_outputs(enc: BGEM3Encoder) -> None:
    with pytest.raises(InvalidInputError, match="kind"):
        enc.encode(["x"], kind="passage")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown outputs"):
        enc.encode(["x"], outputs=["dense", "bm25"])
    with pytest.raises(InvalidInputError, match="at least one"):
        enc.encode(["x"], outputs=[])
    with pytest.raises(InvalidInputError, match="batch_size"):
        enc.encode(["x"], batch_size=0)


def test_nan_output_names_the_text(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, cache_size=16)
    poisoned = e.tokenizer("zebra")["input_ids"][1]
    with torch.no_grad():
        e.model.embeddings.word_embeddings.weight[poisoned] = float("nan")
    with pytest.raises(InvalidInputError, match=r"texts\[2\]"):
        e.encode(["fine", "also fine", "zebra"])
    with pytest.raises(InvalidInputError, match=r"texts\[0\]"):
        e.encode(["zebra"], outputs=["sparse"])
    # A NaN result is never cached as if it were valid.
    assert all(np.all(np.isfinite(v.dense)) for v in e.cache._data.values())  # type: ignore[arg-type]


def test_infinite_sparse_weights_are_refused_and_not_cached(tiny_bge_m3_dir: Path) -> None:
    e = fresh(tiny_bge_m3_dir, cache_size=16)
    with torch.no_grad():
        e.sparse_linear.bias.fill_(float("inf"))  # dense output untouched: only the sparse check can see it
    with pytest.raises(InvalidInputError, match=r"NaN or inf for texts\[0\]"):
        e.encode(["fine", "also fine"], outputs=["sparse"])
    assert len(e.cache) == 0


def test_fp16_runs_and_returns_float32(tiny_bge_m3_dir: Path, enc: BGEM3Encoder) -> None:
    """The half-precision path (the GPU default) on CPU: same outputs within fp16 error."""
    half = fresh(tiny_bge_m3_dir, fp16=True)
    assert half.fp16 and next(half.model.parameters()).dtype == torch.float16
    a = half.encode(TEXTS[:4], outputs=["dense", "sparse", "colbert"])
    b = enc.encode(TEXTS[:4], outputs=["dense", "sparse", "colbert"])
    assert a.dense is not None and a.dense.dtype == np.float32 and a.colbert[0].dtype == np.float32  # type: ignore[index]
    assert np.sum(a.dense * b.dense, axis=1).min() > 0.999  # type: ignore[operator]
    for x, y in zip(a.sparse, b.sparse, strict=True):  # type: ignore[arg-type]
        assert all(type(v) is float for v in x.values())
        common = x.keys() & y.keys()
        assert len(common) >= 0.9 * len(y)
        assert max(abs(x[k] - y[k]) for k in common) < 0.02


def test_unsupported_device(tiny_bge_m3_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="device"):
        fresh(tiny_bge_m3_dir, device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            fresh(tiny_bge_m3_dir, device="cuda")


# -- loading errors ------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["sparse_linear.pt", "colbert_linear.pt"])
def test_missing_head_file_is_a_load_error(tiny_bge_m3_dir: Path, tmp_path: Path, missing: str) -> None:
    broken = tmp_path / "no-heads"
    shutil.copytree(tiny_bge_m3_dir, broken)
    (broken / missing).unlink()
    with pytest.raises(ModelLoadError, match=missing):
        fresh(broken)
    # load_encoder still sees an XLM-R checkpoint without pooling files as BGE-M3 and says so.
    (broken / "sparse_linear.pt").unlink(missing_ok=True)
    (broken / "colbert_linear.pt").unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match=r"sparse_linear\.pt, colbert_linear\.pt"):
        load_encoder(broken, device="cpu")


def test_wrong_head_shape_is_a_load_error(tiny_bge_m3_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "bad-head"
    shutil.copytree(tiny_bge_m3_dir, broken)
    torch.save(torch.nn.Linear(16, 1).state_dict(), broken / "sparse_linear.pt")
    with pytest.raises(ModelLoadError, match=r"sparse_linear.pt .*Linear\(32"):
        fresh(broken)


def test_not_an_xlmr_checkpoint(minilm_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="xlm-roberta"):
        fresh(minilm_dir)


def test_missing_directory_and_config(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_encoder(str(tmp_path / "nope" / "model"), device="cpu")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_encoder(tmp_path, device="cpu")


def test_hub_id_offline_explains_how_to_pass_a_directory() -> None:
    with pytest.raises(ModelLoadError) as info:
        load_encoder("m3-hybrid-tests/no-such-model", device="cpu")
    msg = str(info.value)
    assert "m3-hybrid-tests/no-such-model" in msg and "local directory" in msg
    assert "huggingface-cli download" in msg


def test_bad_backend_and_arguments(tiny_bge_m3_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="backend"):
        load_encoder(tiny_bge_m3_dir, backend="openvino")
    with pytest.raises(InvalidInputError, match="both be None"):
        load_encoder(None)
    with pytest.raises(InvalidTypeError, match="query_instruction"):
        load_encoder(tiny_bge_m3_dir, query_instruction=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="flagembedding"):
        load_encoder(tiny_bge_m3_dir, backend="flagembedding", sparse_model=tiny_bge_m3_dir)
