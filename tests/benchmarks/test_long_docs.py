"""The long-document set of benchmarks/long_docs.py: chapters, verse spans and both levels' qrels."""

from __future__ import annotations

import json

from benchmarks.long_docs import DATA, chapter_of, load_long_docs


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
