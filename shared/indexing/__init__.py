"""Index a corpus into a collection, in-process or on Ray Data: :func:`index` (``m3-hybrid index``)."""

from .api import index
from .run import DEFAULT_BATCH_SIZE, IndexResult, RecordError
from .sources import FORMATS, Chunker, Fields

__all__ = ["DEFAULT_BATCH_SIZE", "FORMATS", "Chunker", "Fields", "IndexResult", "RecordError", "index"]
