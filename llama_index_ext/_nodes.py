"""Where a LlamaIndex node sits in its document (late chunking reads it)."""

from __future__ import annotations

from llama_index.core.schema import BaseNode, MetadataMode

from shared.late_chunking import chunk_from_offsets
from shared.types import ChunkOf, Record

__all__ = ["chunk_of", "chunk_record"]


def chunk_of(node: BaseNode) -> ChunkOf | None:
    """A node's place in its document (``ref_doc_id``, ``start/end_char_idx``); None when unknown."""
    return chunk_from_offsets(
        node.ref_doc_id, getattr(node, "start_char_idx", None), getattr(node, "end_char_idx", None)
    )


def chunk_record(node: BaseNode) -> Record:
    """A node as a chunk record: its own text (without metadata) and its place."""
    return Record(
        id=node.node_id, text=node.get_content(metadata_mode=MetadataMode.NONE), chunk_of=chunk_of(node)
    )
