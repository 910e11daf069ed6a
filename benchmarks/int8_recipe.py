"""Which dynamic-int8 recipe keeps MiniLM's vectors closest to fp32 (per channel? 7-bit weights?).

Exports all-MiniLM-L6-v2 once, quantizes its fp32 graph four ways with onnxruntime's
``quantize_dynamic`` and prints the dense cosine of each int8 encoder's vectors to the
torch path's, on the first 300 bible-dev verses (a markdown table).

    python benchmarks/int8_recipe.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from onnx import TensorProto
from onnxruntime.quantization import QuantType, quantize_dynamic

from shared.encoders import MINILM, load_encoder
from shared.encoders.onnx import OnnxEncoder, export_onnx

CORPUS = Path(__file__).with_name("data") / "bible-dev" / "corpus.jsonl"


def main() -> int:
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    with CORPUS.open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line, _ in zip(fh, range(300), strict=False)]
    out = export_onnx(MINILM, Path(tempfile.mkdtemp()) / "minilm")
    ref = load_encoder(MINILM, show_progress=False).encode(texts).dense
    print("| per_channel | reduce_range (7-bit weights) | min cosine to fp32 | mean cosine to fp32 |")
    print("|---|---|---|---|")
    for per_channel in (True, False):
        for reduce_range in (True, False):
            quantize_dynamic(
                out / "model.onnx",
                out / "model_int8.onnx",
                op_types_to_quantize=["MatMul", "Attention"],
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
            )
            got = OnnxEncoder(out, precision="int8", show_progress=False).encode(texts).dense
            cos = np.sum(ref * got, axis=1)
            print(f"| {per_channel} | {reduce_range} | {cos.min():.4f} | {cos.mean():.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
