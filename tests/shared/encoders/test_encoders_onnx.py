"""The ONNX Runtime backend: parity with the torch path, identity, int8, errors, batching,
the export command, the export cache and a torch-free process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from shared.cli import main as cli_main
from shared.encoders import clear_registry, load_encoder
from shared.encoders.batching import plan_batches, validate_threads
from shared.encoders.onnx import EXPORT_META, OnnxEncoder, cached_export, export_onnx
from shared.errors import InvalidInputError, MissingDependencyError, ModelLoadError, ModelMismatchError
from shared.store import HybridStore
from shared.types import EncoderIdentity
from tests.support.checkpoint import sample_corpus

TEXTS = [*sample_corpus()[:10], "", "   ", "Ünïcödé façade naïve", "word " * 700]


@pytest.fixture(scope="module")
def m3_export(tiny_bge_m3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_bge_m3_dir, tmp_path_factory.mktemp("onnx") / "m3", int8=True)


@pytest.fixture(scope="module")
def minilm_export(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(minilm_dir, tmp_path_factory.mktemp("onnx") / "minilm", int8=True)


@pytest.fixture(scope="module")
def splade_export(splade_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(splade_dir, tmp_path_factory.mktemp("onnx") / "splade")


def _compare(torch_enc, onnx_enc, *, max_length_texts: list[str] = TEXTS) -> None:
    outputs = sorted(torch_enc.outputs)
    for kind in ("query", "document"):
        with pytest.warns(UserWarning):  # the long text is truncated by both, with the same flags
            a = torch_enc.encode(max_length_texts, kind, outputs=outputs)
        with pytest.warns(UserWarning):
            b = onnx_enc.encode(max_length_texts, kind, outputs=outputs)
        assert a.token_counts == b.token_counts and a.truncated == b.truncated and any(b.truncated)
        if a.dense is not None:
            assert b.dense is not None and b.dense.dtype == np.float32
            assert float(np.min(np.sum(a.dense * b.dense, axis=1))) >= 0.99999
            assert np.abs(a.dense - b.dense).max() <= 1e-5
        if a.sparse is not None:
            assert b.sparse is not None
            for x, y in zip(a.sparse, b.sparse, strict=True):
                assert x.keys() == y.keys()
                assert all(abs(x[k] - y[k]) <= 1e-5 for k in x)
        if a.colbert is not None:
            assert b.colbert is not None
            for x, y in zip(a.colbert, b.colbert, strict=True):
                assert x.shape == y.shape and np.abs(x - y).max() <= 1e-5


def test_bge_m3_export_matches_torch_and_keeps_identity(tiny_bge_m3_dir: Path, m3_export: Path) -> None:
    torch_enc = load_encoder(tiny_bge_m3_dir, show_progress=False, cache_size=0)
    onnx_enc = load_encoder(m3_export, backend="onnx", show_progress=False, cache_size=0)
    assert isinstance(onnx_enc, OnnxEncoder) and onnx_enc.outputs == torch_enc.outputs
    assert onnx_enc.identity == torch_enc.identity  # model id, hash, prompts, dims
    _compare(torch_enc, onnx_enc)
    # Dense, sparse and ColBERT from ONE forward pass per batch.
    before = onnx_enc.forward_passes
    onnx_enc.encode(TEXTS[:5], outputs=["dense", "sparse", "colbert"], batch_size=8)
    assert onnx_enc.forward_passes - before == 1


def test_dense_and_splade_exports_match_torch(
    minilm_dir: Path, minilm_export: Path, splade_dir: Path, splade_export: Path
) -> None:
    for src, exp in ((minilm_dir, minilm_export), (splade_dir, splade_export)):
        torch_enc = load_encoder(src, show_progress=False, cache_size=0)
        onnx_enc = load_encoder(exp, backend="onnx", show_progress=False, cache_size=0)
        assert onnx_enc.identity == torch_enc.identity and onnx_enc.max_length == torch_enc.max_length
        _compare(torch_enc, onnx_enc)


def test_pair_of_exports_matches_the_torch_pair(
    minilm_dir: Path, splade_dir: Path, minilm_export: Path, splade_export: Path
) -> None:
    a = load_encoder(minilm_dir, sparse_model=splade_dir, show_progress=False, truncate_dim=128)
    b = load_encoder(
        minilm_export, sparse_model=splade_export, backend="onnx", show_progress=False, truncate_dim=128
    )
    assert a.identity == b.identity and b.dense_dim == 128
    ra, rb = a.encode(TEXTS[:6]), b.encode(TEXTS[:6])
    assert np.abs(ra.dense - rb.dense).max() <= 1e-5
    assert [x.keys() for x in ra.sparse] == [y.keys() for y in rb.sparse]


def test_collection_guard_treats_fp32_export_as_the_model_and_int8_as_another(
    tiny_bge_m3_dir: Path, m3_export: Path, tmp_path: Path
) -> None:
    torch_enc = load_encoder(tiny_bge_m3_dir, show_progress=False)
    with HybridStore("m", path=tmp_path, encoder=torch_enc) as s:
        s.add_texts(TEXTS[:4], ids=[f"t{i}" for i in range(4)])
    fp32 = load_encoder(m3_export, backend="onnx", show_progress=False)
    with HybridStore("m", path=tmp_path, encoder=fp32) as s:
        assert s.query(TEXTS[2], limit=1)[0].id == "t2"
    int8 = load_encoder(m3_export, backend="onnx", precision="int8", show_progress=False)
    assert int8.identity.precision == "int8" and int8.identity != fp32.identity
    with pytest.raises(ModelMismatchError, match="precision"):
        HybridStore("m", path=tmp_path, encoder=int8)


def test_identity_precision_is_backward_compatible() -> None:
    old = {
        "model_id": "m",
        "model_hash": "h",
        "dense_dim": 4,
        "truncate_dim": None,
        "query_prompt": "",
        "document_prompt": "",
        "sparse_kind": None,
    }
    ident = EncoderIdentity.from_dict(old)
    assert "precision" not in ident.to_dict()  # fingerprints of fp32 identities did not change
    int8 = EncoderIdentity.from_dict({**old, "precision": "int8"})
    assert int8.to_dict()["precision"] == "int8" and int8.fingerprint() != ident.fingerprint()
    assert ident.differences(int8) == {"precision": ("fp32", "int8")}
    assert int8.differences(ident) == {"precision": ("int8", "fp32")}


def test_int8_is_close_to_fp32(m3_export: Path, minilm_export: Path) -> None:
    texts = sample_corpus()[:16]
    for exp in (m3_export, minilm_export):
        fp32 = OnnxEncoder(exp, show_progress=False)
        int8 = OnnxEncoder(exp, precision="int8", show_progress=False)
        a, b = fp32.encode(texts), int8.encode(texts)
        cos = np.sum(a.dense * b.dense, axis=1)
        assert cos.min() > 0.95 and not np.array_equal(a.dense, b.dense)


def test_errors(tiny_bge_m3_dir: Path, splade_export: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="needs backend='onnx'"):
        load_encoder(tiny_bge_m3_dir, precision="int8")
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        load_encoder(splade_export, backend="onnx", precision="int4")
    with pytest.raises(InvalidInputError, match="fp16"):
        load_encoder(splade_export, backend="onnx", fp16=True)
    with pytest.raises(ModelLoadError, match="--int8"):
        load_encoder(splade_export, backend="onnx", precision="int8")
    with pytest.raises(InvalidInputError, match="threads"):
        load_encoder(splade_export, backend="onnx", threads=0)
    with pytest.raises(InvalidInputError, match="max_batch_tokens"):
        load_encoder(splade_export, backend="onnx", max_batch_tokens=-3)
    with pytest.raises(InvalidInputError, match="truncate_dim"):
        load_encoder(splade_export, backend="onnx", truncate_dim=8)
    with pytest.raises(InvalidInputError, match="max_length"):
        OnnxEncoder(splade_export, max_length=10**6)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("user data")
    with pytest.raises(InvalidInputError, match="not empty"):
        export_onnx(tiny_bge_m3_dir, busy)
    assert (busy / "keep.txt").read_text() == "user data"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / EXPORT_META).write_text(json.dumps({"format": 99}))
    with pytest.raises(ModelLoadError, match="not an m3-hybrid ONNX export"):
        OnnxEncoder(bad)


def test_token_budget_batches() -> None:
    lengths = [8192, 5, 7, 3, 12, 8000, 9, 1]
    batches = plan_batches(lengths, batch_size=4, max_batch_tokens=64)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    order = [i for b in batches for i in b]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)  # length sorting kept
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 64
    assert batches[0] == [0] and batches[1] == [5]  # each long text alone
    assert plan_batches(lengths, 3, None) == [[0, 5, 4], [6, 2, 1], [3, 7]]
    assert plan_batches([], 4, 10) == []


@pytest.mark.parametrize("backend", ["native", "onnx"])
def test_max_batch_tokens_splits_batches_without_changing_results(
    backend: str, tiny_bge_m3_dir: Path, m3_export: Path
) -> None:
    src = m3_export if backend == "onnx" else tiny_bge_m3_dir
    texts = ["short text", "another one", "long " * 300, "tiny"]
    plain = load_encoder(src, backend=backend, show_progress=False, cache_size=0)
    ref = plain.encode(texts, outputs=["dense", "sparse"])
    clear_registry()
    bounded = load_encoder(src, backend=backend, show_progress=False, cache_size=0, max_batch_tokens=64)
    assert bounded.max_batch_tokens == 64
    before = bounded.forward_passes
    got = bounded.encode(texts, outputs=["dense", "sparse"], batch_size=32)
    # The 300-word text alone, the three short ones together.
    assert bounded.forward_passes - before == 2
    assert np.abs(ref.dense - got.dense).max() <= 1e-5


def test_threads(m3_export: Path) -> None:
    assert validate_threads(None) >= 1 and validate_threads(3) == 3
    enc = OnnxEncoder(m3_export, threads=1, show_progress=False)
    assert enc.threads == 1 and enc.session.get_session_options().intra_op_num_threads == 1


def test_export_cli_writes_a_loadable_export(tiny_bge_m3_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli-export"
    assert cli_main(["export-onnx", str(tiny_bge_m3_dir), str(out), "--int8"]) == 0
    assert {"model.onnx", "model_int8.onnx", "tokenizer.json", EXPORT_META} <= {p.name for p in out.iterdir()}
    enc = load_encoder(out, backend="onnx", precision="int8", show_progress=False)
    assert enc.encode(["hello world"]).dense.shape == (1, enc.dense_dim)
    # A second export into the same (now non-empty) directory: one-line error, exit 2, nothing lost.
    assert cli_main(["export-onnx", str(tiny_bge_m3_dir), str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err and (out / "model_int8.onnx").is_file()


def test_eval_cli_runs_the_onnx_int8_backend(tmp_path: Path, capsys) -> None:
    from tests.shared.evaluation.test_evaluation_e2e import write_dataset

    root = write_dataset(tmp_path / "d")
    argv = ["eval", "--data", str(root), "--small-models", "--presets", "none", "--modes", "dense,rrf"]
    argv += ["--bootstrap", "10", "--quiet", "--backend", "onnx", "--precision", "int8", "--threads", "1"]
    assert cli_main([*argv, "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {r["mode"] for r in report["rows"]} == {"dense", "hybrid-rrf"}
    assert all(r["metrics"]["ndcg@10"] > 0 for r in report["rows"])


def test_model_directory_with_onnx_backend_is_exported_once_into_the_cache(
    tiny_bge_m3_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M3_HYBRID_CACHE", str(tmp_path / "cache"))
    clear_registry()
    enc = load_encoder(tiny_bge_m3_dir, backend="onnx", precision="int8", show_progress=False)
    exports = list((tmp_path / "cache" / "onnx").iterdir())
    assert len(exports) == 1 and (exports[0] / "model_int8.onnx").is_file()
    assert isinstance(enc, OnnxEncoder) and enc.identity.model_id == str(tiny_bge_m3_dir.resolve())
    stamp = (exports[0] / "model.onnx").stat().st_mtime_ns
    clear_registry()

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported twice")

    monkeypatch.setattr("shared.encoders.onnx.export_onnx", no_second_export)
    again = load_encoder(tiny_bge_m3_dir, backend="onnx", show_progress=False)
    assert again.identity == load_encoder(tiny_bge_m3_dir, show_progress=False).identity
    assert cached_export(tiny_bge_m3_dir, "fp32") == exports[0]
    assert (exports[0] / "model.onnx").stat().st_mtime_ns == stamp


def test_adapters_pass_backend_and_precision_through(m3_export: Path, tiny_bge_m3_dir: Path) -> None:
    from langchain_ext import BGEM3Embeddings
    from llama_index_ext import BGEM3Embedding

    lc = BGEM3Embeddings(model_name=str(m3_export), backend="onnx", precision="int8", threads=1)
    li = BGEM3Embedding(model_name=str(m3_export), backend="onnx", max_batch_tokens=512)
    assert isinstance(lc.encoder, OnnxEncoder) and lc.encoder.precision == "int8"
    assert isinstance(li.encoder, OnnxEncoder) and li.encoder.max_batch_tokens == 512
    ref = load_encoder(tiny_bge_m3_dir, show_progress=False).encode(["a query"], "query").dense[0]
    assert np.abs(np.asarray(li.get_query_embedding("a query")) - ref).max() <= 1e-5


def test_torch_free_process_loads_encodes_and_queries(m3_export: Path, minilm_export: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[3]), *sys.path])}
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[2] / "torch_free_check.py"),
            str(m3_export),
            str(minilm_export),
            "--block-torch",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch-free ok" in proc.stdout


def test_missing_torch_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_bge_m3_dir: Path) -> None:
    from shared.encoders import _hf

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"m3-hybrid\[torch\]"):
        _hf.require_torch()


@pytest.mark.parametrize("optimize", [True, False])
def test_graphs_over_the_protobuf_limit_keep_weights_in_one_external_file(
    optimize: bool, tiny_bge_m3_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BGE-M3 in fp32 is over 2 GiB; pretend the tiny model is, to run the same code path.
    monkeypatch.setattr("shared.encoders.onnx._EXTERNAL_DATA_BYTES", 0)
    out = export_onnx(tiny_bge_m3_dir, tmp_path / "big", int8=True, optimize=optimize)
    names = {p.name for p in out.iterdir()}
    assert names == {"model.onnx", "model.onnx.data", "model_int8.onnx", "tokenizer.json", EXPORT_META}
    assert (out / "model.onnx").stat().st_size < (out / "model.onnx.data").stat().st_size
    ref = load_encoder(tiny_bge_m3_dir, show_progress=False).encode(TEXTS[:4])
    for precision in ("fp32", "int8"):
        got = OnnxEncoder(out, precision=precision, show_progress=False).encode(TEXTS[:4])
        assert np.sum(ref.dense * got.dense, axis=1).min() >= (0.99999 if precision == "fp32" else 0.95)


def test_pass_cost_cuts_where_padding_outweighs_a_pass() -> None:
    lengths = [30, 18, 29, 19, 30, 18, 29, 20]
    batches = plan_batches(lengths, batch_size=32, max_batch_tokens=None, pass_tokens=8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    order = [i for b in batches for i in b]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)  # length sorting kept
    # Long and short apart: 4 x 30 + 4 x 20 + 2 passes beats 8 x 30 + 1 pass.
    assert [sorted(lengths[i] for i in b) for b in batches] == [[29, 29, 30, 30], [18, 18, 19, 20]]
    # A pass dearer than all the padding: one batch, as without a pass cost.
    assert plan_batches(lengths, 32, None, pass_tokens=1000) == [order]
    # Equal lengths never split; the row and token bounds still hold.
    assert sorted(len(b) for b in plan_batches([10] * 5, 2, None, pass_tokens=8)) == [1, 2, 2]
    widths = [9, 8, 7, 6, 5, 4, 3, 2]
    for b in plan_batches(widths, 4, 16, pass_tokens=100):
        assert len(b) <= 4 and (len(b) == 1 or len(b) * max(widths[i] for i in b) <= 16)
    assert plan_batches([], 4, None, pass_tokens=8) == []
