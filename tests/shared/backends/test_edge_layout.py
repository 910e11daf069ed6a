"""The embedded store's default layout: its large structures are memory-mapped files kept in
the page cache (``edge.DEFAULT_MEMORY``), so a load (the swap of a writer-built shard, an
open) maps them instead of copying them into the heap while it holds the GIL.

The layout must change where the data lives, never what a query answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe

from shared.backends import edge
from shared.backends.edge import EdgeBackend
from shared.store import HybridStore
from shared.types import Record

DIM = 384
N = 7_000  # above the engine's indexing threshold at 384-d (~6,700 points): one indexed segment


def _records(n: int) -> Iterator[Record]:
    rng = np.random.default_rng(7)
    for i in range(n):
        dense = rng.standard_normal(DIM).astype(np.float32)
        terms = rng.choice(5000, size=6, replace=False)
        yield Record(
            id=f"doc-{i}",
            text=f"document {i}",
            dense=dense / np.linalg.norm(dense),
            sparse={int(t): float(w) for t, w in zip(terms, rng.uniform(0.1, 1.0, 6), strict=True)},
        )


def _indexed_segment(path: Path) -> dict[str, Any]:
    """The config of the shard's indexed segment (the one with an HNSW graph)."""
    configs = [json.loads(p.read_text())["config"] for p in path.glob("segments/*/segment.json")]
    indexed = [c for c in configs if c["vector_data"]["dense"]["index"]["type"] == "hnsw"]
    assert len(indexed) == 1, configs
    return indexed[0]


def _backend(store: HybridStore) -> EdgeBackend:
    backend = store._backend
    assert isinstance(backend, EdgeBackend)
    return backend


def test_the_default_layout_maps_its_files_and_answers_as_the_in_heap_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unquantized, exact dense search: the answers depend on the stored points only (the
    # quantile of int8 codes is sampled per build), so both layouts must give the same ones.
    records = list(_records(N))
    rng = np.random.default_rng(11)
    probes = [records[int(i)] for i in rng.choice(N, size=6, replace=False)]
    modes = ("dense", "sparse", "hybrid")
    answers: dict[str, list[list[tuple[str, float]]]] = {}

    def ask(store: HybridStore) -> list[list[tuple[str, float]]]:
        hits = [
            store.query(dense=r.dense, sparse=r.sparse, mode=m, limit=10, exact=True)
            for r in probes
            for m in modes
        ]
        return [[(h.id, h.score) for h in found] for found in hits]

    for name, memory in (("mapped", edge.DEFAULT_MEMORY), ("heap", None)):  # None: the engine's defaults
        monkeypatch.setattr(edge, "DEFAULT_MEMORY", memory)
        with HybridStore(name, path=tmp_path, dense_dim=DIM, sparse=True) as store:
            store.add(records)
            store.wait_indexed()  # the add returned once written; the build ends on the index thread
            assert _backend(store).background_builds == 1  # indexed in the writer, then swapped in
            answers[name] = ask(store)
        with HybridStore(name, path=tmp_path) as store:  # reopened: the same answers, nothing lost
            assert store.count() == N
            assert len(store.get([r.id for r in records])) == N
            assert ask(store) == answers[name]
    monkeypatch.undo()

    mapped, heap = _indexed_segment(tmp_path / "mapped"), _indexed_segment(tmp_path / "heap")
    dense = mapped["vector_data"]["dense"]
    assert dense["storage_type"] == "Mmap" and dense["index"]["options"]["memory"] == "cold"
    assert mapped["sparse_vector_data"]["sparse"]["index"]["index_type"] == "Mmap"
    assert mapped["id_tracker_memory"] == "cold"
    # The engine's defaults copy the originals and the sparse index into the heap.
    assert heap["vector_data"]["dense"]["storage_type"] == "InRamMmap"
    assert heap["sparse_vector_data"]["sparse"]["index"]["index_type"] == "ImmutableRam"

    for got, want in zip(answers["mapped"], answers["heap"], strict=True):
        assert len(got) == 10
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


def test_on_disk_keeps_its_codes_in_ram_and_the_default_maps_them() -> None:
    from shared.quantization import get_preset

    int8 = get_preset("int8")
    assert edge.quantization_config(int8, on_disk=True).memory == qe.Memory.Pinned
    assert edge.quantization_config(int8, on_disk=False).memory == qe.Memory.Cold
