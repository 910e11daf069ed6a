"""BM25 as a sparse model: the engine's own tokeniser and term weights, the engine's IDF.

:class:`Bm25Encoder` wraps Qdrant's BM25 (``qdrant_edge.Bm25``, the same model as the
server's ``qdrant/bm25`` inference): it tokenises, drops the language's stop words,
stems (Snowball), hashes each term to a token id, and weights each document term by
BM25's saturated, length-normalised term frequency

    w(t, d) = tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avg_len))

while a query term weighs 1. The IDF factor is not in the vectors: the store keeps the
collection's sparse vector with Qdrant's IDF modifier (:data:`IDF_SPARSE_KINDS`), so
the engine multiplies each query term by ``ln(1 + (N - n + 0.5) / (n + 0.5))`` over the
points stored at query time. Adds and deletes therefore keep the scores those of BM25
over the current collection, without any rebuild. ``avg_len`` is a fixed parameter (as
in Qdrant's BM25): part of the encoder's identity, so a collection is always searched
with the length normalisation it was built with.

Nothing here is a tokeniser of our own: stop words, stemming and hashing are the engine's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError
from ..types import SparseDict, TextKind
from ..validation import text_list
from .base import BaseEncoder, Entry

if TYPE_CHECKING:
    import qdrant_edge as qe

__all__ = [
    "BM25_LANGUAGES",
    "BM25_MODEL_NAME",
    "IDF_SPARSE_KINDS",
    "Bm25Encoder",
    "bm25_encoder",
    "bm25_for_corpus",
    "bm25_from_name",
    "bm25_model",
    "is_bm25_name",
    "needs_idf",
]

#: ``load_encoder(sparse_model=...)`` names that select BM25: ``"bm25"`` (English) or
#: ``"bm25:<language>"`` (e.g. ``"bm25:french"``).
BM25_MODEL_NAME = "bm25"
#: The ``EncoderIdentity.sparse_kind`` of BM25 vectors.
BM25_KIND = "bm25"
#: Sparse kinds whose vectors carry term frequencies only: the collection's sparse
#: vector gets Qdrant's IDF modifier, so the engine supplies the IDF.
IDF_SPARSE_KINDS = frozenset({BM25_KIND})

#: Languages the engine's BM25 accepts (stop words and, where Snowball has one, a stemmer).
BM25_LANGUAGES = (
    "arabic",
    "azerbaijani",
    "basque",
    "bengali",
    "catalan",
    "chinese",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hebrew",
    "hinglish",
    "hungarian",
    "indonesian",
    "italian",
    "japanese",
    "kazakh",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "slovene",
    "spanish",
    "swedish",
    "tajik",
    "turkish",
)

#: Qdrant's BM25 defaults (k1, b, avg_len).
DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
DEFAULT_AVG_LEN = 256.0
#: A saturation so large that a term's weight is its count (to within 1e-8): the engine's
#: own tokenisation, counted (:meth:`Bm25Encoder.term_counts`).
_COUNTING_K = 1e9


def needs_idf(sparse_kind: str | None) -> bool:
    """Whether a collection of this sparse kind must keep its sparse vector with the IDF modifier."""
    return sparse_kind in IDF_SPARSE_KINDS


def is_bm25_name(name: Any) -> bool:
    """Whether ``name`` (a ``sparse_model`` argument) selects BM25."""
    return isinstance(name, str) and (name == BM25_MODEL_NAME or name.startswith(BM25_MODEL_NAME + ":"))


def bm25_from_name(name: str, **kw: Any) -> Bm25Encoder:
    """The BM25 encoder a ``sparse_model`` name asks for (``"bm25"`` or ``"bm25:<language>"``)."""
    _, _, language = name.partition(":")
    return Bm25Encoder(language=language or "english", **kw)


def bm25_for_corpus(texts: Iterable[str], language: str = "english", **kw: Any) -> Bm25Encoder:
    """A BM25 encoder whose ``avg_len`` is the mean length of ``texts`` (as a BM25 index built
    from them has), rounded to 0.1 so that the same corpus gives the same identity.

    What the drop-ins for client-side BM25 retrievers use: they are given the corpus up front,
    and store it next. The engine's tokeniser runs once per text: the lengths that make
    ``avg_len`` also give each text's weights (:meth:`Bm25Encoder.remember_corpus`), which
    the store's add then takes instead of tokenising the text again.
    """
    items = text_list(texts)
    if not items:
        raise InvalidInputError("mean_length needs at least one text")
    probe = Bm25Encoder(language, **{k: v for k, v in kw.items() if k != "avg_len"})
    counts = probe._counted(items)
    avg = max(round(int(counts.lengths.sum()) / len(items), 1), 0.1)
    enc = Bm25Encoder(language, **{**kw, "avg_len": avg})
    enc.remember_corpus(items, counts)
    return enc


class _Counted(NamedTuple):
    """Texts tokenised once by the engine, flat (no list per text: a corpus' worth of small
    objects that live on would cost the garbage collector full passes over the heap): every
    token id and count in the texts' order, each text's start in them (and the end), and
    each text's length (its number of terms)."""

    indices: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray


class _CorpusWeights(NamedTuple):
    """The weights :meth:`Bm25Encoder.remember_corpus` keeps: each text's position (taken
    once), and its token ids and weights at ``offsets[position]:offsets[position + 1]``."""

    positions: dict[str, int]
    offsets: list[int]
    indices: np.ndarray
    values: np.ndarray


def bm25_model(encoder: Any) -> Bm25Encoder | None:
    """The BM25 encoder that makes ``encoder``'s sparse vectors (itself, or a pair's sparse
    model); None when its sparse vectors come from another model."""
    from .pair import PairEncoder  # the pair module imports the encoders' base, not this one

    if isinstance(encoder, PairEncoder):
        encoder = encoder.sparse_encoder
    return encoder if isinstance(encoder, Bm25Encoder) else None


def bm25_encoder(spec: Any) -> Bm25Encoder | None:
    """The BM25 encoder a store's ``bm25`` option asks for (``StoreConfig.bm25``).

    ``True``: English with Qdrant's defaults; a str: that language (``"french"``, or a
    ``sparse_model`` name ``"bm25:french"``); a :class:`Bm25Encoder`: itself (e.g.
    :func:`bm25_for_corpus`, whose ``avg_len`` fits the corpus); ``False``/``None``: none.
    """
    if spec is None or spec is False:
        return None
    if spec is True:
        return Bm25Encoder()
    if isinstance(spec, Bm25Encoder):
        return spec
    if isinstance(spec, str):
        return bm25_from_name(spec) if is_bm25_name(spec) else Bm25Encoder(language=spec)
    raise InvalidTypeError(
        f"bm25 must be True/False, a language name or a shared.encoders.bm25.Bm25Encoder, "
        f"got {type(spec).__name__}"
    )


def _number(value: Any, name: str, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < low or (high is not None and v > high):
        bound = f"within [{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


#: The parameters that change the vectors: :meth:`Bm25Encoder.config` records them (beside the
#: ``model_id`` that names them all), :meth:`Bm25Encoder.from_config` reads them back.
_PARAMETERS = ("language", "stopwords", "stemming", "k1", "b", "avg_len")


class Bm25Encoder(BaseEncoder):
    """BM25 term weights from the engine's tokeniser (sparse output only; see the module docstring).

    * ``language``: the stemmer (and the stop words when ``stopwords=True``); one of
      :data:`BM25_LANGUAGES`, default English.
    * ``stopwords``: drop the language's stop words. Off by default, like Lucene's and
      Elasticsearch's standard analyzer: IDF already discounts them, and on short texts
      they carry signal (bible-dev OT, BM25 alone: nDCG@10 .976 kept, .950 dropped).
    * ``stemming``: Snowball stemming for the language (on by default).
    * ``k1``, ``b``: BM25's term-frequency saturation and length normalisation.
    * ``avg_len``: the average document length (in tokens after stop words) the length
      normalisation divides by; :meth:`mean_length` measures it on a corpus.
    """

    _computes_together = True

    def __init__(
        self,
        language: str = "english",
        *,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        avg_len: float = DEFAULT_AVG_LEN,
        stopwords: bool = False,
        stemming: bool = True,
        batch_size: int = 256,
        show_progress: bool = False,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(batch_size=batch_size, show_progress=show_progress, cache_size=cache_size)
        if not isinstance(language, str):
            raise InvalidTypeError(f"BM25 language must be a str, got {type(language).__name__}")
        lang = language.strip().lower()
        if lang not in BM25_LANGUAGES:
            raise InvalidInputError(
                f"BM25 language {language!r} is not supported; choose one of {', '.join(BM25_LANGUAGES)}"
            )
        self.language = lang
        self.k1 = _number(k1, "k1", 0.0)
        self.b = _number(b, "b", 0.0, 1.0)
        self.avg_len = _number(avg_len, "avg_len", 0.0)
        if self.avg_len == 0.0:
            raise InvalidInputError("avg_len must be > 0")
        for name, flag in (("stopwords", stopwords), ("stemming", stemming)):
            if not isinstance(flag, bool):
                raise InvalidTypeError(f"{name} must be a bool, got {type(flag).__name__}")
        self.stopwords = stopwords
        self.stemming = stemming
        self._model = self._engine_model(k=self.k1, b=self.b, avg_len=self.avg_len)
        self._counter: qe.Bm25 | None = None
        #: Weights of a corpus measured up front (:meth:`remember_corpus`), until stored.
        self._corpus: _CorpusWeights | None = None
        self._outputs = frozenset({"sparse"})
        self._full_dim = None
        self._identity = self._make_identity(
            model_id=self.model_id, model_hash="", sparse_kind=BM25_KIND, sparse_model_id=self.model_id
        )

    def _engine_model(self, *, k: float, b: float, avg_len: float | None = None) -> qe.Bm25:
        import qdrant_edge as qe  # on first use: importing the encoders does not load the engine

        config = qe.Bm25Config(
            k=k,
            b=b,
            avg_len=avg_len,
            language=self.language,
            # None: the language's own stop words / stemmer; an empty set / DisabledStemmer: none.
            stopwords=None if self.stopwords else qe.StopwordsSet(),
            stemmer=None if self.stemming else qe.DisabledStemmer(),
        )
        return qe.Bm25(config)

    def config(self) -> dict[str, Any]:
        """Every parameter that changes the vectors (JSON): what a collection's guard records."""
        return {"model_id": self.model_id, **{name: getattr(self, name) for name in _PARAMETERS}}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Bm25Encoder:
        """The encoder :meth:`config` describes (a reopened collection's BM25)."""
        return cls(**{k: config[k] for k in _PARAMETERS if k in config})

    @property
    def model_id(self) -> str:
        """The name the collection guard records: every parameter that changes the vectors."""
        return (
            f"bm25(language={self.language}, stopwords={self.stopwords}, stemming={self.stemming}, "
            f"k1={self.k1:g}, b={self.b:g}, avg_len={self.avg_len:g})"
        )

    def _compute(
        self, texts: list[str], kind: TextKind, outputs: frozenset[str], batch_size: int, show_progress: bool
    ) -> list[Entry]:
        embed = self._model.embed_query if kind == "query" else self._model.embed_document
        out = []
        for text in texts:
            if not text.strip():
                raise InvalidInputError(
                    f"BM25 cannot weight an empty {kind} text: it has no words (got {text!r})"
                )
            v = embed(text)
            sparse: SparseDict = dict(zip(v.indices, v.values, strict=True))
            out.append(
                Entry(dense=None, sparse=sparse, colbert=None, token_count=len(sparse), truncated=False)
            )
        self._count_forward()
        return out

    def document_arrays(
        self,
        texts: Iterable[str],
        name: Callable[[int], str] | None = None,
        *,
        require_words: bool = True,
    ) -> list[tuple[list[int], list[float]]]:
        """Each document's BM25 vector as ``(indices, values)``, as a collection stores it.

        The write path of a store (BM25 beside another sparse model, or as its sparse
        model): no cache (each document is weighted once), no dict per document and no
        per-item checks (the engine's output is valid: distinct ids, weights > 0).
        A text without words raises :class:`InvalidInputError` naming it (``name(i)``,
        default ``text i``); with ``require_words=False`` only a blank text does (as
        :meth:`encode` of a document), and a text whose characters make no term (only
        punctuation, say) gets an empty vector, as :meth:`encode` gives it.
        """
        embed = self._model.embed_document
        corpus = self._corpus
        positions = corpus.positions if corpus is not None else {}
        out = []
        for i, text in enumerate(texts):
            at = positions.pop(text, None) if positions else None
            if at is not None:
                assert corpus is not None
                start, end = corpus.offsets[at], corpus.offsets[at + 1]
                indices, values = corpus.indices[start:end].tolist(), corpus.values[start:end].tolist()
            else:
                v = embed(text)
                indices, values = v.indices, v.values
            if not indices and (require_words or not text.strip()):
                what = name(i) if name is not None else f"text {i}"
                if require_words:
                    raise InvalidInputError(f"{what}: no words for BM25 to weight in {text!r:.60}")
                raise InvalidInputError(
                    f"{what}: BM25 cannot weight an empty document text: it has no words (got {text!r})"
                )
            out.append((indices, values))
        if corpus is not None and not positions:
            self._corpus = None  # every text taken
        self._count_forward()
        return out

    def term_counts(self, texts: Iterable[str]) -> list[dict[int, int]]:
        """Each text's terms (token ids, after stop words and stemming) with their counts.

        The engine's tokenisation, as the documents are weighted: a reference BM25 over these
        counts with this encoder's ``k1``, ``b`` and ``avg_len`` scores as the store does.
        """
        embed = self._counting_model().embed_document
        out = []
        for text in text_list(texts):
            v = embed(text)
            out.append({i: round(w) for i, w in zip(v.indices, v.values, strict=True)})
        return out

    def _counting_model(self) -> qe.Bm25:
        if self._counter is None:
            # b=0 and a huge k make a term's BM25 weight its count: no tokeniser of our own.
            self._counter = self._engine_model(k=_COUNTING_K, b=0.0)
        return self._counter

    def mean_length(self, texts: Iterable[str]) -> float:
        """The mean document length of ``texts`` in terms (what ``avg_len`` should be for them).

        The sum of :meth:`term_counts`, without a dict per text.
        """
        items = text_list(texts)
        if not items:
            raise InvalidInputError("mean_length needs at least one text")
        return int(self._counted(items).lengths.sum()) / len(items)

    def _counted(self, items: list[str]) -> _Counted:
        """One pass of the engine's tokeniser over ``items``: token ids, counts and lengths."""
        embed = self._counting_model().embed_document
        indices: list[int] = []
        values: list[float] = []
        sizes: list[int] = []
        for text in items:
            v = embed(text)
            ids = v.indices
            indices.extend(ids)
            values.extend(v.values)
            sizes.append(len(ids))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        counts = np.rint(np.asarray(values, dtype=np.float64))
        running = np.concatenate(([0.0], np.cumsum(counts)))  # exact: integers below 2**53
        return _Counted(
            np.asarray(indices, dtype=np.uint32),
            counts,
            offsets,
            running[offsets[1:]] - running[offsets[:-1]],
        )

    def remember_corpus(self, texts: Sequence[str], counted: _Counted | None = None) -> None:
        """Weigh ``texts`` now, from one tokenisation each, and keep their weights until
        :meth:`document_arrays` takes them (each text's once: the store's add of the corpus).

        The weights are the engine's BM25 (``embed_document``): the same float64 arithmetic
        over the same counts, rounded to float32 as the engine rounds them, so a stored
        vector is the one :meth:`encode` gives. ``counted``: :meth:`_counted` of ``texts``.
        """
        items = text_list(texts)
        c = counted if counted is not None else self._counted(items)
        tf = c.counts
        dl = np.repeat(c.lengths, np.diff(c.offsets))
        k1, b = self.k1, self.b
        weights = (tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / self.avg_len))).astype(np.float32)
        # A repeated text keeps its first position (the same weights).
        positions = dict(zip(reversed(items), range(len(items) - 1, -1, -1), strict=True))
        self._corpus = _CorpusWeights(positions, c.offsets.tolist(), c.indices, weights)

    def forget_corpus(self) -> None:
        """Drop the weights :meth:`remember_corpus` keeps (those not stored yet)."""
        self._corpus = None

    def __repr__(self) -> str:
        return f"Bm25Encoder({self.model_id})"
