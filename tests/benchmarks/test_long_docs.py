"""The long-document set of benchmarks/long_docs.py: chapters, verse spans and both levels' qrels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.long_docs import (
    DATA,
    STRATEGIES,
    chapter_of,
    load_long_docs,
    score_strategy,
    search_levels,
    search_parents,
)
from shared.encoders import load_encoder
from shared.encoders.functions import encoder_from_functions
from shared.store import HybridStore


def test_verses_are_spans_of_their_chapter_and_qrels_map_to_both_levels() -> None:
    data = load_long_docs({"Ruth", "Jonah"}, max_queries=None)
    verses = {}
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["book"] in ("Ruth", "Jonah"):
                verses[row["id"]] = row["text"]
    assert sum(len(v) for v in data.verses.values()) == len(verses)
    assert set(data.chapters) == {chapter_of(v) for v in verses} and "Ruth.1" in data.chapters
    for chapter, spans in data.verses.items():
        for vid, a, b in spans:
            assert data.chapters[chapter][a:b] == verses[vid] and chapter_of(vid) == chapter
    assert data.queries and set(data.queries) == set(data.verse_qrels) == set(data.chapter_qrels)
    for q, rel in data.verse_qrels.items():
        assert set(rel) <= set(verses)
        assert data.chapter_qrels[q] == {chapter_of(v): g for v, g in rel.items()}
    # Records carry their place in the chapter: what late chunking groups by.
    rec = data.records()[0]
    assert (
        rec.chunk_of is not None
        and data.chapters[rec.chunk_of.document][rec.chunk_of.start : rec.chunk_of.end] == rec.text
    )


def test_hierarchical_strategy_scores_both_levels_and_ranks_as_brute_force(tiny_bge_m3_dir: Path) -> None:
    data = load_long_docs({"Ruth"}, max_queries=6)
    encoder = load_encoder(tiny_bge_m3_dir, show_progress=False)
    strategy = next(s for s in STRATEGIES if s.name == "hierarchical")
    rows = score_strategy(encoder, strategy, data, bootstrap=20, setup_name="tiny")
    assert [(r["strategy"], r["level"], r["mode"]) for r in rows[::3]] == [
        ("hierarchical", "chunk", "dense"),
        ("hierarchical", "document", "dense"),
        ("hierarchical + unit=parent", "document", "dense"),
    ]
    assert len(rows) == 9 and all(0 <= r["ndcg"] <= 1 and r["queries"] == 6 for r in rows)
    assert all(r["passes"] >= 1 for r in rows)  # the chapters at least: nothing cached yet

    # Rankings against numpy cosines, on random vectors (the tiny checkpoint's are near-identical,
    # so its ties would decide): the all-levels query's verses in verse order, the parents
    # ordered by their best verse, the merged document ranking led by a level's best.
    recs = data.hierarchy_records()
    assert {r.metadata["level"] for r in recs} == {"chapter", "verse"} and len(recs) == 4 + 85
    rng = np.random.default_rng(5)
    texts = [r.text for r in recs] + list(data.queries.values())
    table = {t: rng.normal(size=16) for t in texts}
    lookup = encoder_from_functions(
        model_id="lookup",
        embed_documents=lambda ts: [table[t].tolist() for t in ts],
        embed_query=lambda t: table[t].tolist(),
        dense_dim=16,
    )
    with HybridStore("h", encoder=lookup, **strategy.store_options) as store:
        store.add(recs)
        chunks = search_levels(store, data, "dense", "chunk")
        docs = search_levels(store, data, "dense", "document")
        parents = search_parents(store, data, "dense", "document")
    vecs = np.stack([table[r.text] / np.linalg.norm(table[r.text]) for r in recs])
    for qid, text in data.queries.items():
        cos = vecs @ table[text]
        ranked = sorted(range(len(recs)), key=lambda i: -cos[i])
        verses = [i for i in ranked if recs[i].metadata["level"] == "verse"]
        chapters = [i for i in ranked if recs[i].metadata["level"] == "chapter"]
        assert chunks[qid] == [recs[i].id for i in verses[:10]]
        # As far as the fused ranking reaches (its per-level prefetch is the store's candidates).
        best_first = list(dict.fromkeys(recs[i].metadata["parent_id"] for i in verses))
        assert parents[qid] and parents[qid] == best_first[: len(parents[qid])]
        assert docs[qid] and set(docs[qid]) <= set(data.chapters) and len(set(docs[qid])) == len(docs[qid])
        assert docs[qid][0] in {recs[chapters[0]].id, recs[verses[0]].metadata["parent_id"]}
