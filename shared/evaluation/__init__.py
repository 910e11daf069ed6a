"""Evaluate retrieval configurations on your own data (BEIR layout).

The workflow: :func:`load_beir` reads a corpus, queries and qrels; :func:`encode_dataset`
encodes every document and query ONCE; :func:`evaluate` builds one index per stored
configuration (quantization preset x MRL dim x ColBERT), runs every query-time
retrieval mode against it with the pre-computed query vectors, and returns an
:class:`EvalReport` (Markdown table, JSON, PNG plot).

What is measured, and why:

* Quality: nDCG@10, Recall@10, Recall@100 and MRR@10, computed by ``ranx`` (trec_eval
  definitions: nDCG gain = relevance grade).  Runs are given to ranx as ranks, not raw
  scores, so the order the store returned is the order evaluated (fused scores tie).
* Spread: per-query nDCG@10 std and a bootstrap 95% CI of its mean; for every row the
  paired per-query difference against the best single mode (dense or sparse) of the
  reference configuration, with a paired bootstrap 95% CI.  Small differences whose CI
  spans 0 are not differences.
* Latency: only the store's ``query`` call (queries are encoded beforehand, so model
  time does not drown the index), p50/p95 over all queries after a short warm-up.
* Size: the index directory on disk, the process RSS growth while indexing (in-process,
  so it is noisy and includes Python-side buffers), and the vector bytes per document
  that the preset keeps in RAM (computed from the preset, see :func:`vector_ram_bytes`).

This package is framework-free: it only uses ``shared`` (encoders, store), numpy, ranx,
psutil and, for plots, matplotlib (Agg).  Its modules follow the workflow: ``data``
(BEIR loading), ``vectors`` (encoded vectors and their ``.npz`` cache), ``configs``
(configurations, modes, RAM estimate), ``metrics`` (ranx scores, bootstrap, rows),
``report`` (comparisons, Markdown, JSON), ``plot`` (its PNG) and ``run`` (:func:`evaluate`);
``languages`` splits a report over queries in several languages into one per language
(:func:`split_by_language`) and measures the cross-lingual gap.
"""

from __future__ import annotations

from .configs import (
    DEFAULT_MODES,
    MODES,
    EvalConfig,
    EvalMode,
    parse_configs,
    parse_modes,
    vector_ram_bytes,
)
from .data import BeirDataset, load_beir
from .languages import (
    LanguageGap,
    cross_lingual_gaps,
    languages_markdown,
    merge_languages,
    query_languages,
    split_by_language,
)
from .metrics import METRICS, PRIMARY, EvalRow, score_run
from .report import EvalReport
from .run import evaluate
from .vectors import EncodedDataset, EncodedTexts, encode_dataset

__all__ = [
    "DEFAULT_MODES",
    "METRICS",
    "MODES",
    "PRIMARY",
    "BeirDataset",
    "EncodedDataset",
    "EncodedTexts",
    "EvalConfig",
    "EvalMode",
    "EvalReport",
    "EvalRow",
    "LanguageGap",
    "cross_lingual_gaps",
    "encode_dataset",
    "evaluate",
    "languages_markdown",
    "load_beir",
    "merge_languages",
    "parse_configs",
    "parse_modes",
    "query_languages",
    "score_run",
    "split_by_language",
    "vector_ram_bytes",
]
