"""Deterministic tiny BGE-M3-format checkpoints for tests and benchmarks.

:func:`make_bge_m3_checkpoint` writes a directory laid out exactly like the
``BAAI/bge-m3`` hub snapshot (XLM-R ``config.json``, ``model.safetensors``, an
XLM-R-style fast tokenizer, ``sparse_linear.pt`` and ``colbert_linear.pt``) but with
seeded random weights and a tokenizer built offline from a fixed English word list,
so tests and benchmarks never need the model hub.  Same arguments -> byte-identical
files.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["BASE_SIZE", "TINY_SIZE", "make_bge_m3_checkpoint", "sample_corpus"]

#: Keyword arguments of :func:`make_bge_m3_checkpoint` for the default tiny model.
TINY_SIZE: dict[str, Any] = {"num_layers": 2, "hidden_size": 32}
#: Keyword arguments for a base-size model (XLM-R base / BGE-M3-like compute per token).
BASE_SIZE: dict[str, Any] = {"num_layers": 12, "hidden_size": 768, "num_heads": 12, "intermediate_size": 3072}

# A fixed English text the tokenizer vocabulary is built from.  Embedded (rather than
# read from stdlib docstrings) so the vocabulary cannot drift between Python versions.
_CORPUS = """
Hybrid retrieval combines dense vectors with sparse lexical weights. A dense vector captures the
meaning of a sentence, while sparse weights reward the exact words a query shares with a document.
The model reads every passage once and returns both representations from a single forward pass.
Search engines index millions of documents, and each query is compared with the stored vectors to
find the most relevant passages. Quantization stores vectors in fewer bits so that large collections
fit in memory; rescoring with the original vectors restores most of the lost accuracy.
The quick brown fox jumps over the lazy dog. A cat sat on the mat near the window in the morning.
Python is a programming language that lets you work quickly and integrate systems more effectively.
Water boils at one hundred degrees at sea level, and ice melts when the temperature rises above zero.
The history of the city begins with a small village by the river, where people traded grain, fish,
wood and wool. Over many years the village grew into a town with a market, a school and a library.
Scientists study the stars, the planets and the moon; they measure light and time to learn how the
universe changed. Doctors treat patients in hospitals, and nurses help them recover after surgery.
Children play football in the park after school while their parents talk about work, food and news.
What is the capital of France? Paris is the capital and the largest city of France.
How do I reset my password? Open the settings page, choose security, and follow the instructions.
Who wrote the novel? The author was born in a northern country and wrote stories about the sea.
Where can I find the report? The annual report is available on the company website under investors.
When did the war end? The conflict ended after long negotiations and a treaty signed by both sides.
Why is the sky blue? Sunlight is scattered by the air, and blue light is scattered more than red.
Machine learning models learn patterns from data; training adjusts the weights to reduce the error.
An embedding maps text to numbers, and similar texts receive similar vectors in the same space.
Questions, answers, products, reviews, prices, orders, customers, services, systems, networks.
Running, walking, reading, writing, building, testing, searching, learning, making, working.
Quickly, slowly, really, nearly, easily, clearly, usually, finally, recently, simply, strongly.
Information, education, organization, application, communication, population, production.
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June
July August September October November December spring summer autumn winter north south east west.
One two three four five six seven eight nine ten eleven twelve twenty thirty hundred thousand million.
"""

# Sub-word pieces (no word-start marker) so unseen words still split into a few tokens.
_SUFFIXES = (
    *("s", "es", "ed", "er", "ers", "est", "ing", "ings", "ly", "tion", "tions", "ment", "ments", "ness"),
    *("able", "al", "ic", "ive", "ity", "ous", "ful", "less", "ize", "ise", "th", "en", "an", "on", "in"),
    *("re", "de", "un", "ch", "sh", "st", "tr", "pr", "ou", "ea", "ai", "ee", "oo", "ar", "or", "ur"),
)

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
_WORD_RE = re.compile(r"[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]")


def sample_corpus() -> list[str]:
    """The fixed English sentences the tiny tokenizer was built from (handy test texts)."""
    text = " ".join(_CORPUS.split())
    return [s.strip() + "." for s in text.split(".") if s.strip()]


def _vocab() -> list[tuple[str, float]]:
    """A deterministic SentencePiece-style Unigram vocabulary (piece, log-prob score)."""
    words = Counter(_WORD_RE.findall(_CORPUS))
    for w, c in list(words.items()):
        if w.isalpha() and w[0].isupper():
            words[w.lower()] += c
    # Characters: both as word-start ("▁a") and as continuation ("a") pieces, so any
    # ASCII text tokenizes without <unk>; a few accented letters for non-English tests.
    chars = [chr(c) for c in range(33, 127)] + list("àáâäçèéêëíîïñóôöúûüßæøåœ")
    counts: dict[str, float] = {}
    for w, c in sorted(words.items()):
        counts["▁" + w] = counts.get("▁" + w, 0) + c * 3
    for suf in _SUFFIXES:
        counts.setdefault(suf, 2.0)
    for ch in chars:
        counts.setdefault(ch, 1.0)
        counts.setdefault("▁" + ch, 1.0)
    counts.setdefault("▁", 1.0)
    total = sum(counts.values())
    pieces = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(p, math.log(c / total)) for p, c in pieces]


def _build_tokenizer(max_length: int) -> Any:
    """An XLM-R-style fast tokenizer (Metaspace Unigram, ``<s> A </s>`` template)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizerFast

    # XLM-R's id layout: <s>=0 <pad>=1 </s>=2 <unk>=3, pieces, <mask> last.
    vocab = [(s, 0.0) for s in _SPECIALS] + _vocab() + [("<mask>", 0.0)]
    tok = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    mask_id = len(vocab) - 1
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_length,
    )
    assert fast.mask_token_id == mask_id and fast.pad_token_id == 1 and fast.cls_token_id == 0
    return fast


def make_bge_m3_checkpoint(
    path: str | os.PathLike[str],
    *,
    num_layers: int = 2,
    hidden_size: int = 32,
    num_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 514,
    colbert_dim: int | None = None,
    seed: int = 0,
    sparse_heads: bool = True,
    colbert_head: bool = True,
) -> Path:
    """Write a deterministic BGE-M3-format checkpoint into ``path`` and return it.

    The layout is the hub snapshot's: ``config.json`` (``XLMRobertaModel``),
    ``model.safetensors``, tokenizer files, ``sparse_linear.pt`` (``Linear(hidden, 1)``
    state dict) and ``colbert_linear.pt`` (``Linear(hidden, colbert_dim or hidden)``).
    ``sparse_heads=False`` / ``colbert_head=False`` leave a head file out (for
    error-path tests).  ``max_position_embeddings`` follows XLM-R: max tokens + 2.
    Use ``**BASE_SIZE`` for a 12-layer x 768 model with BGE-M3's compute per token.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    if num_layers < 1 or hidden_size < 1:
        raise ValueError("num_layers and hidden_size must be positive")
    heads = num_heads if num_heads is not None else max(1, hidden_size // 16)
    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {heads}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer(max_position_embeddings - 2)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    config.architectures = ["XLMRobertaModel"]

    # A private generator keeps the global RNG state of the caller untouched.
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = XLMRobertaModel(config, add_pooling_layer=True)
        # Default init gives near-identical hidden states for every token; a larger
        # embedding scale makes tokens distinguishable so sparse/colbert tests mean something.
        with torch.no_grad():
            model.embeddings.word_embeddings.weight.normal_(0.0, 0.5)
        sparse = torch.nn.Linear(hidden_size, 1)
        colbert = torch.nn.Linear(hidden_size, colbert_dim or hidden_size)
        with torch.no_grad():
            sparse.weight.normal_(0.0, 1.0 / math.sqrt(hidden_size))
            sparse.bias.fill_(0.05)
    finally:
        torch.random.set_rng_state(state)

    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if sparse_heads:
        _save_state_dict(sparse.state_dict(), out / "sparse_linear.pt")
    if colbert_head:
        _save_state_dict(colbert.state_dict(), out / "colbert_linear.pt")
    return out


def _save_state_dict(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` in the zip format, made byte-deterministic.

    torch writes a random ``.data/serialization_id`` record into every archive (and the
    legacy format keys storages by memory address), so two saves of equal tensors
    differ.  We overwrite that record's bytes with zeros and fix its CRC-32 in the
    local and central zip headers; the file stays an ordinary ``torch.load``-able
    archive, like the ``.pt`` heads BGE-M3 ships.
    """
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = next((i for i in zf.infolist() if i.filename.endswith(".data/serialization_id")), None)
        if info is None:  # older torch: no random record, already deterministic
            path.write_bytes(bytes(data))
            return
        old = zf.read(info)
        start_dir = zf.start_dir
    new = b"0" * len(old)
    new_crc = struct.pack("<I", zlib.crc32(new))
    # Local header: fixed 30 bytes, then name and extra, then the (stored) data.
    off = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, off + 26)
    data_off = off + 30 + name_len + extra_len
    if bytes(data[data_off : data_off + len(old)]) != old:
        raise RuntimeError("unexpected torch archive layout")  # e.g. compressed records
    data[data_off : data_off + len(old)] = new
    data[off + 14 : off + 18] = new_crc
    # Central directory: find this entry's record and patch its CRC too.
    pos = start_dir
    while data[pos : pos + 4] == b"PK\x01\x02":
        n, e, c = struct.unpack_from("<HHH", data, pos + 28)
        if bytes(data[pos + 46 : pos + 46 + n]).decode() == info.filename:
            data[pos + 16 : pos + 20] = new_crc
            break
        pos += 46 + n + e + c
    path.write_bytes(bytes(data))
