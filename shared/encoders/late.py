"""Late chunking: every chunk of a document pooled from one pass over the whole document.

A document (with the model's document prompt) is tokenised once, with character offsets;
each chunk's character span becomes the token span of the tokens that overlap it. The
model runs once over the document (or, past ``max_length``, over overlapping windows:
each chunk is pooled from the window that holds it with the most context on both
sides), and each chunk's vectors are pooled from its own token span:

* dense: the mean of the span's last hidden states, L2-normalised. For mean-pooled
  models (MiniLM) that is the model's own pooling restricted to the span; for
  CLS-pooled models (BGE-M3) the CLS state sums up the whole window, so a span has no
  CLS of its own and the mean of its token states stands in for it (measured in
  ``benchmarks/long_docs.py``);
* sparse: the model's own rule over the span's tokens only (BGE-M3: max of
  ``relu(sparse_linear(h))`` per token id; SPLADE: max over the span of
  ``log(1 + relu(logits))`` per vocabulary term), specials dropped;
* ColBERT: the span's token vectors (rows of the document's ColBERT matrix).

A chunk that covers the whole document (its only chunk) is encoded as normal, so its
vectors are exactly those of :meth:`BaseEncoder.encode` (cut to ``max_length`` with the usual
:class:`TruncationWarning` when longer). Any other chunk longer than the model's window is
refused (:class:`InvalidInputError`), never truncated.

Each model class writes two hooks, both used by :func:`late_entries` only:
``_late_tokenize(text) -> (ids, offsets, special_mask)`` (no truncation) and
``_token_states(rows, outputs) -> list[TokenStates]`` (its forward pass, per-token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from ..types import EncodeResult, SparseDict
from ..validation import text_list
from .base import BaseEncoder, Entry
from .batching import plan_batches
from .config import check_batch_size

__all__ = [
    "LateChunker",
    "LateJob",
    "Span",
    "TokenStates",
    "check_spans",
    "late_entries",
    "pool_span",
    "require_late_chunking",
    "sparse_from_span",
    "sparse_from_token_weights",
]

#: A chunk's character span in its document: ``(start, end)``, end exclusive.
Span = tuple[int, int]


@dataclass
class TokenStates:
    """Per-token outputs of one window pass; row ``t`` belongs to the window's token ``t``."""

    ids: np.ndarray
    #: Last hidden states ``[T, H]`` (dense pooling); None for a sparse-only model.
    hidden: np.ndarray | None = None
    #: BGE-M3's sparse weight of each token ``[T]``.
    term_weights: np.ndarray | None = None
    #: SPLADE's weight of every vocabulary term at each token ``[T, V]``.
    vocab_weights: np.ndarray | None = None
    #: Unit-norm ColBERT vectors ``[T, D]`` (row 0, the CLS, is never used).
    colbert: np.ndarray | None = None
    #: Token ids (BGE-M3) or vocabulary terms (SPLADE) the sparse rule drops.
    skip_ids: np.ndarray | None = None


def check_spans(documents: Sequence[str], spans: Any) -> list[list[Span]]:
    """``spans`` as one list of ``(start, end)`` int pairs per document, inside its text."""
    if isinstance(spans, (str, bytes)) or not isinstance(spans, Sequence):
        raise InvalidTypeError(
            f"spans must be one list of (start, end) pairs per document, got {spans!r:.60}"
        )
    if len(spans) != len(documents):
        raise InvalidInputError(f"got {len(spans)} span lists for {len(documents)} documents")
    out: list[list[Span]] = []
    for d, (text, doc_spans) in enumerate(zip(documents, spans, strict=True)):
        if isinstance(doc_spans, (str, bytes)) or not isinstance(doc_spans, Sequence):
            raise InvalidTypeError(f"spans[{d}] must be a list of (start, end) pairs")
        checked = []
        for c, span in enumerate(doc_spans):
            ok = isinstance(span, Sequence) and len(span) == 2
            if ok:
                a, b = span
                ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b))
            if not ok:
                raise InvalidTypeError(
                    f"document {d}, chunk {c}: span must be a (start, end) int pair, got {span!r}"
                )
            a, b = int(a), int(b)
            if not 0 <= a < b <= len(text):
                raise InvalidInputError(
                    f"document {d}, chunk {c}: span ({a}, {b}) is outside the document's "
                    f"{len(text)} characters or empty"
                )
            checked.append((a, b))
        out.append(checked)
    return out


def sparse_from_token_weights(
    input_ids: np.ndarray, weights: np.ndarray, lengths: Sequence[int], skip_ids: np.ndarray
) -> list[SparseDict]:
    """Per row: max weight per token id over the first ``length`` tokens, specials and zeros dropped."""
    out: list[SparseDict] = []
    for row, n in enumerate(lengths):
        ids = input_ids[row, :n]
        w = weights[row, :n]
        # Non-finite weights are kept (and win the max) so the caller's NaN check sees them.
        keep = ((w > 0) | ~np.isfinite(w)) & ~np.isin(ids, skip_ids)
        ids, w = ids[keep], w[keep]
        if ids.size == 0:
            out.append({})
            continue
        order = np.lexsort((w, ids))  # by id, then weight: the last of each id run is its max
        ids, w = ids[order], w[order]
        last = np.append(ids[1:] != ids[:-1], True)
        out.append(dict(zip(ids[last].tolist(), w[last].astype(np.float64).tolist(), strict=True)))
    return out


def sparse_from_span(ids: np.ndarray, weights: np.ndarray, skip_ids: np.ndarray) -> SparseDict:
    """BGE-M3's rule over a span: the max weight per token id, specials and zeros dropped."""
    return sparse_from_token_weights(ids[None, :], weights[None, :], [len(ids)], skip_ids)[0]


def pool_span(states: TokenStates, a: int, b: int, outputs: frozenset[str]) -> tuple[Any, Any, Any]:
    """(dense, sparse, colbert) of window tokens ``[a, b)`` (None where not asked or not made)."""
    dense = sparse = colbert = None
    if "dense" in outputs and states.hidden is not None:
        mean = states.hidden[a:b].astype(np.float32).mean(axis=0)
        dense = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    if "sparse" in outputs:
        skip = states.skip_ids if states.skip_ids is not None else np.zeros(0, dtype=np.int64)
        if states.term_weights is not None:
            sparse = sparse_from_span(states.ids[a:b], states.term_weights[a:b], skip)
        elif states.vocab_weights is not None:
            row = states.vocab_weights[a:b].max(axis=0)
            row[skip[skip < row.shape[0]]] = 0.0
            nz = np.flatnonzero(row)
            sparse = dict(zip(nz.tolist(), row[nz].astype(np.float64).tolist(), strict=True))
    if "colbert" in outputs and states.colbert is not None:
        colbert = np.ascontiguousarray(states.colbert[a:b], dtype=np.float32)
    return dense, sparse, colbert


@dataclass
class _Doc:
    """One document's tokens: specials around the body, the prompt's tokens, the content."""

    lead: list[int]
    prompt: list[int]
    content: list[int]
    trail: list[int]
    #: Content tokens' character offsets in the document (prompt removed).
    starts: np.ndarray
    ends: np.ndarray


def _tokens(encoder: Any, document: str, prompt: str) -> _Doc:
    ids, offsets, special = encoder._late_tokenize(prompt + document)
    n = len(ids)
    lead = 0
    while lead < n and special[lead]:
        lead += 1
    end = n
    while end > lead and special[end - 1]:
        end -= 1
    body = range(lead, end)
    p = sum(1 for i in body if offsets[i][0] < len(prompt))
    content = range(lead + p, end)
    shift = len(prompt)
    return _Doc(
        lead=list(ids[:lead]),
        prompt=list(ids[lead : lead + p]),
        content=[ids[i] for i in content],
        trail=list(ids[end:]),
        starts=np.asarray([offsets[i][0] - shift for i in content], dtype=np.int64),
        ends=np.asarray([offsets[i][1] - shift for i in content], dtype=np.int64),
    )


def _token_range(doc: _Doc, a: int, b: int) -> tuple[int, int]:
    """Content tokens overlapping the characters ``[a, b)``."""
    ta = int(np.searchsorted(doc.ends, a, side="right"))
    tb = int(np.searchsorted(doc.starts, b, side="left"))
    return ta, tb


def _windows(ranges: list[tuple[int, int]], n: int, capacity: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Windows of at most ``capacity`` content tokens and, per chunk, the one it is pooled from.

    A grid of half-overlapping windows; each chunk takes the window holding it with the
    most context on its tighter side, or a window centred on it when none holds it.
    """
    if n <= capacity:
        return [(0, n)], [0] * len(ranges)
    stride = max(1, capacity // 2)
    grid = [(s, s + capacity) for s in range(0, n - capacity, stride)] + [(n - capacity, n)]
    windows: list[tuple[int, int]] = []
    chosen: list[int] = []
    for ta, tb in ranges:
        best, margin = None, -1
        for w in grid:
            if w[0] <= ta and tb <= w[1] and min(ta - w[0], w[1] - tb) > margin:
                best, margin = w, min(ta - w[0], w[1] - tb)
        if best is None:
            start = min(max(0, ta - (capacity - (tb - ta)) // 2), n - capacity)
            best = (start, start + capacity)
        if best not in windows:
            windows.append(best)
        chosen.append(windows.index(best))
    return windows, chosen


def late_entries(
    encoder: BaseEncoder,
    documents: list[str],
    spans: list[list[Span]],
    outputs: frozenset[str],
    batch_size: int,
    names: Sequence[Sequence[str]] | None = None,
) -> list[list[Entry]]:
    """Per document, one :class:`Entry` per span (see the module docstring).

    ``names``: how errors name each chunk (default: "document d, chunk c").
    """

    def where(d: int, c: int) -> str:
        return names[d][c] if names is not None else f"document {d}, chunk {c}"

    model: Any = encoder
    prompt = encoder.prompt_for("document")
    compute = frozenset((encoder.outputs - {"colbert"}) | (outputs & {"colbert"}))
    results: list[list[Entry | None]] = [[None] * len(s) for s in spans]
    rows: list[list[int]] = []
    #: (document, chunk, row, first token in the row, end token in the row)
    jobs: list[tuple[int, int, int, int, int]] = []
    whole: list[tuple[int, int]] = []
    for d, (text, doc_spans) in enumerate(zip(documents, spans, strict=True)):
        keys = [("late", prompt, text, a, b) for a, b in doc_spans]
        hits = [encoder.cache.get(k) for k in keys]
        if all(h is not None and all(getattr(h, o) is not None for o in outputs) for h in hits):
            results[d] = list(hits)
            continue
        doc = _tokens(model, text, prompt)
        ranges = []
        for c, (a, b) in enumerate(doc_spans):
            ta, tb = _token_range(doc, a, b)
            if tb <= ta:
                raise InvalidInputError(f"{where(d, c)}: span ({a}, {b}) holds no token")
            ranges.append((ta, tb))
        n = len(doc.content)
        if len(ranges) == 1 and ranges[0] == (0, n):
            whole.append((d, 0))  # the chunk is the document: normal encoding
            continue
        capacity = int(model.max_length) - len(doc.lead) - len(doc.trail) - len(doc.prompt)
        for c, (ta, tb) in enumerate(ranges):
            if tb - ta > capacity:
                raise InvalidInputError(
                    f"{where(d, c)}: {tb - ta} tokens, longer than the model's window of "
                    f"{capacity} tokens (max_length={model.max_length}); split it further"
                )
        windows, chosen = _windows(ranges, n, capacity)
        first_row = len(rows)
        for ws, we in windows:
            rows.append(doc.lead + doc.prompt + doc.content[ws:we] + doc.trail)
        offset = len(doc.lead) + len(doc.prompt)
        for c, ((ta, tb), w) in enumerate(zip(ranges, chosen, strict=True)):
            ws = windows[w][0]
            jobs.append((d, c, first_row + w, offset + ta - ws, offset + tb - ws))
    if whole:
        texts = [documents[d][slice(*spans[d][c])] for d, c in whole]
        for (d, c), entry in zip(
            whole, encoder._encode_entries(texts, "document", compute, batch_size, False), strict=True
        ):
            results[d][c] = entry
    if rows:
        by_row: dict[int, list[tuple[int, int, int, int]]] = {}
        for d, c, r, a, b in jobs:
            by_row.setdefault(r, []).append((d, c, a, b))
        max_tokens = getattr(model, "max_batch_tokens", None)
        for batch in plan_batches([len(r) for r in rows], batch_size, max_tokens):
            # Each window's states are pooled as they arrive and dropped (SPLADE's are [T, vocab]).
            states = model._token_states([rows[i] for i in batch], compute)
            for r, st in zip(batch, states, strict=True):
                for d, c, a, b in by_row.get(r, ()):
                    dense, sparse, colbert = pool_span(st, a, b, compute)
                    entry = Entry(
                        dense=dense, sparse=sparse, colbert=colbert, token_count=b - a, truncated=False
                    )
                    text = documents[d]
                    encoder._finish_entry(entry, text[slice(*spans[d][c])], where(d, c))
                    encoder.cache.put(("late", prompt, text, *spans[d][c]), entry)
                    results[d][c] = entry
    return [[e for e in doc if e is not None] for doc in results]


@dataclass(frozen=True)
class LateJob:
    """One late-chunking request: documents, their spans, the outputs and how errors name chunks."""

    documents: list[str]
    spans: list[list[Span]]
    outputs: frozenset[str]
    batch_size: int
    names: Sequence[Sequence[str]] | None = None


class LateChunker(BaseEncoder):
    """An encoder that can late-chunk: :meth:`encode_chunks` (see the module docstring).

    A model class writes ``_late_tokenize`` and ``_token_states``; a class made of other
    encoders (a dense + sparse pair) overrides :meth:`_late_entries` instead.
    """

    @property
    def supports_late_chunking(self) -> bool:
        return True

    def encode_chunks(
        self,
        document: str,
        spans: Sequence[Span],
        *,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
    ) -> EncodeResult:
        """The vectors of ``document[start:end]`` for each span, pooled from one pass over the
        whole document; rows in span order. Query encoding is :meth:`encode`, unchanged."""
        return self.encode_chunks_batch([document], [spans], outputs=outputs, batch_size=batch_size)[0]

    def encode_chunks_batch(
        self,
        documents: Sequence[str],
        spans: Sequence[Sequence[Span]],
        *,
        outputs: Sequence[str] | None = None,
        batch_size: int | None = None,
        chunk_names: Sequence[Sequence[str]] | None = None,
    ) -> list[EncodeResult]:
        """:meth:`encode_chunks` of several documents (one span list each), windows batched together.

        ``chunk_names``: how errors name each chunk (e.g. its record's id).
        """
        items = text_list(documents)
        checked = check_spans(items, spans)
        wanted = self._validate_outputs(outputs)
        bs = self.batch_size if batch_size is None else check_batch_size(batch_size)
        prompt = self.prompt_for("document")
        entries = self._late_entries(LateJob(items, checked, wanted, bs, chunk_names))
        return [self._assemble(doc, wanted, prompt) for doc in entries]

    def _late_entries(self, job: LateJob) -> list[list[Entry]]:
        """Per document, one entry per span."""
        return late_entries(self, job.documents, job.spans, job.outputs, job.batch_size, job.names)


def require_late_chunking(encoder: Any) -> LateChunker:
    """``encoder`` as a :class:`LateChunker`, or an error saying which encoders can late-chunk."""
    if not (isinstance(encoder, LateChunker) and encoder.supports_late_chunking):
        name = encoder.identity.model_id if encoder is not None else None
        raise UnsupportedOperationError(
            f"late chunking needs a model that exposes its token states (a native or ONNX BGE-M3, "
            f"dense or SPLADE model, or a pair of them); {type(encoder).__name__} ({name}) does not"
        )
    return encoder
