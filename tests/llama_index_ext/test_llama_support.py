"""Data and model setups shared by the LlamaIndex adapter tests (imported by test_llama_*.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core import Document
from llama_index.core.schema import MetadataMode

from llama_index_ext import BGEM3Embedding, BGEM3SparseEmbedding

#: (doc id, text, metadata): metadata covers str/int/float/list/empty/None values for filters.
CORPUS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "shawshank",
        "The Shawshank Redemption follows a banker who spends "
        "decades in prison and escapes through a tunnel.",
        {
            "author": "Stephen King",
            "year": 1994,
            "rating": 4.5,
            "tags": ["horror", "prison"],
            "title": "The Shawshank Redemption",
            "date": "1994-09-23",
        },
    ),
    (
        "mockingbird",
        "To Kill a Mockingbird is a novel about a lawyer who defends an innocent man in a small town.",
        {
            "author": "Harper Lee",
            "year": 1960,
            "rating": 4.8,
            "tags": ["classic", "law"],
            "title": "To Kill a Mockingbird",
            "date": "1960-07-11",
        },
    ),
    (
        "orwell",
        "Nineteen Eighty-Four describes a totalitarian state whose government watches every citizen.",
        {
            "author": "George Orwell",
            "year": 1949,
            "rating": 4.5,
            "tags": ["classic", "dystopia"],
            "title": "Nineteen Eighty-Four",
            "date": "1949-06-08",
        },
    ),
    (
        "inception",
        "Inception is a film about thieves who steal corporate "
        "secrets by entering the dreams of their targets.",
        {
            "director": "Christopher Nolan",
            "year": 2010,
            "rating": 4.2,
            "tags": [],
            "title": "Inception",
            "author": "",
        },
    ),
    (
        "godfather",
        "The Godfather tells the story of a mafia family in New York "
        "and the son who takes over the business.",
        {
            "director": "Francis Ford Coppola",
            "year": 1972,
            "tags": ["classic", "mafia", "law"],
            "title": "The Godfather",
            "author": None,
        },
    ),
    (
        "photosynthesis",
        "Plants need sunlight for photosynthesis, which turns water "
        "and carbon dioxide into sugar and oxygen.",
        {
            "author": "Botany Notes",
            "year": 2001,
            "rating": 3.9,
            "tags": ["biology"],
            "title": "Photosynthesis",
        },
    ),
    (
        "rrf",
        "Reciprocal rank fusion combines the rankings of several retrievers by summing their inverse ranks.",
        {"author": "Search Notes", "year": 2009, "rating": 4.0, "tags": ["search"], "title": "Rank fusion"},
    ),
    (
        "quantization",
        "Scalar quantization stores each vector component as an "
        "eight bit integer, cutting memory four times.",
        {
            "author": "Search Notes",
            "year": 2023,
            "rating": 4.1,
            "tags": ["search", "memory"],
            "title": "Quantization",
        },
    ),
]

METADATA = {doc_id: meta for doc_id, _, meta in CORPUS}


def documents() -> list[Document]:
    return [Document(id_=doc_id, text=text, metadata=dict(meta)) for doc_id, text, meta in CORPUS]


def embed_text(doc_id: str) -> str:
    """The exact string LlamaIndex embeds for the (single) node of ``doc_id``."""
    doc = next(d for d in documents() if d.doc_id == doc_id)
    return doc.get_content(metadata_mode=MetadataMode.EMBED)


@dataclass
class ModelSetup:
    """The embed models of one test configuration."""

    name: str
    embed: BGEM3Embedding
    #: None: the store takes BGE-M3's own sparse vectors from ``embed``'s forward pass.
    sparse: BGEM3SparseEmbedding | None
    #: True for real trained models (semantic relevance can be asserted).
    trained: bool

    def store_kwargs(self) -> dict[str, Any]:
        return {"embed_model": self.embed, "sparse_embed_model": self.sparse}

    def sparse_model(self) -> BGEM3SparseEmbedding:
        return self.sparse if self.sparse is not None else BGEM3SparseEmbedding.from_dense(self.embed)

    def model_args(self) -> tuple[str, str | None]:
        """(dense model path, sparse model path or None) for a subprocess."""
        return self.embed.model_name, None if self.sparse is None else self.sparse.model_name


def make_setup(name: str, minilm_dir: Path, splade_dir: Path, tiny_dir: Path) -> ModelSetup:
    if name == "small":
        return ModelSetup(
            name,
            BGEM3Embedding(model_name=str(minilm_dir)),
            BGEM3SparseEmbedding(model_name=str(splade_dir)),
            trained=True,
        )
    return ModelSetup(name, BGEM3Embedding(model_name=str(tiny_dir), embed_batch_size=8), None, trained=False)


def assert_same_ranking(a: Any, b: Any) -> None:
    """Two retrieval results agree: same scores in order, same nodes (ties may swap places).

    Fused (RRF) scores tie often; Qdrant may order tied points either way and, at the
    top-k cut, pick either of them, so the last score's nodes are compared by count only.
    """
    scores_a, scores_b = [h.score for h in a], [h.score for h in b]
    assert scores_a == scores_b
    last = scores_a[-1] if scores_a else None
    assert {h.node.node_id for h in a if h.score != last} == {h.node.node_id for h in b if h.score != last}
