"""Chunks and their parents in one collection: levels, parent links, chunk order.

A collection may hold chunks of several granularities (sentence, paragraph, document)
side by side. Three payload fields say how they relate (canonical keys, as in filters:
``metadata.<key>``, ``ref_doc_id``; the defaults below, or others through
:class:`Hierarchy`, the store option ``hierarchy``):

* ``metadata.level``: the chunk's granularity (a level name);
* ``metadata.parent_id``: the caller id of the record the chunk was cut from (a coarser
  chunk stored in the same collection, or a document that may not be stored);
* ``metadata.position``: the chunk's order within its parent (a number: an index, or a
  character offset such as LangChain's ``start_index``).

What a query does with them (all options of ``HybridStore.query``):

* ``levels=[...]``: one prefetch per level (the query's own first stage under a level
  filter), fused by reciprocal rank (``rrf_k``), all in one engine request;
* ``unit="parent"``: return the parents of the best chunks (a query grouped by the parent
  key, one chunk per parent, then the parents read in one request), each with the score of
  its best chunk; every parent must be stored;
* ``context_window=n``: each hit carries the ``n`` chunks before and after it in its
  parent (read with one filtered scroll per query batch over the hits' parents);
* ``with_parent=True``: each hit carries its parent's record (one read per query batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .errors import InvalidInputError, InvalidTypeError, UnsupportedOperationError
from .options import check_options
from .query.modes import UNITS
from .schema import DOC_ID_KEY, METADATA_KEY, REF_DOC_ID_KEY, TEXT_KEY
from .validation import payload_key

__all__ = [
    "UNITS",
    "Hierarchy",
    "parse_hierarchy",
    "record_value",
]


@dataclass(frozen=True)
class Hierarchy:
    """How a collection's chunks relate (see the module docstring).

    ``levels``: the level names the collection holds (None: any name is accepted; given,
    a query naming another level is refused).
    """

    levels: tuple[str, ...] | None = None
    level_key: str = f"{METADATA_KEY}.level"
    parent_key: str = f"{METADATA_KEY}.parent_id"
    position_key: str = f"{METADATA_KEY}.position"

    def __post_init__(self) -> None:
        for name in ("level_key", "parent_key", "position_key"):
            payload_key(getattr(self, name), f"hierarchy {name}")
        if self.levels is not None:
            levels = self.levels
            if isinstance(levels, str) or not isinstance(levels, Iterable):
                raise InvalidTypeError(f"hierarchy levels must be a list of level names, got {levels!r}")
            names = tuple(levels)
            if (
                not names
                or any(not isinstance(n, str) or not n for n in names)
                or len(set(names)) < len(names)
            ):
                raise InvalidInputError(
                    f"hierarchy levels must be distinct non-empty names, got {list(names)!r}"
                )
            object.__setattr__(self, "levels", names)

    def check_levels(self, levels: Sequence[str]) -> None:
        """Refuse a level the collection does not declare (when it declares its levels)."""
        if self.levels is None:
            return
        for level in levels:
            if level not in self.levels:
                raise InvalidInputError(
                    f"unknown level {level!r}; this collection's levels are {list(self.levels)}"
                )

    def chunk_metadata(
        self,
        metadata: Mapping[str, Any],
        *,
        level: str | None = None,
        parent_id: str | None = None,
        position: int | float | None = None,
    ) -> dict[str, Any]:
        """``metadata`` with a chunk's hierarchy fields set (those given), for the adapters'
        writers (a parent-document retriever, LlamaIndex's hierarchical nodes)."""
        out = dict(metadata)
        for name, value in (("level_key", level), ("parent_key", parent_id), ("position_key", position)):
            if value is not None:
                out[self._metadata_field(name)] = value
        if level is not None:
            self.check_levels([level])
        return out

    def _metadata_field(self, name: str) -> str:
        key: str = getattr(self, name)
        field = key[len(METADATA_KEY) + 1 :] if key.startswith(METADATA_KEY + ".") else ""
        if not field or "." in field:
            raise UnsupportedOperationError(
                f"hierarchy {name} {key!r} is not a top-level metadata key ('metadata.<name>'): "
                "chunks written here keep their hierarchy fields in their metadata"
            )
        return field


def parse_hierarchy(value: Any) -> Hierarchy:
    """The store option ``hierarchy``: None (the default keys), a :class:`Hierarchy`, or a
    mapping of its fields (unknown ones refused)."""
    if value is None:
        return _DEFAULT
    if isinstance(value, Hierarchy):
        return value
    if isinstance(value, Mapping):
        check_options(value, [f.name for f in fields(Hierarchy)], "hierarchy", InvalidTypeError)
        return Hierarchy(**value)
    raise InvalidTypeError(
        f"hierarchy must be a shared.hierarchy.Hierarchy or a dict of its fields, got {value!r}"
    )


_DEFAULT = Hierarchy()


def record_value(record: Any, key: str) -> Any:
    """The value at canonical payload ``key`` of a ``Hit`` or ``Record`` (None when absent)."""
    if key == REF_DOC_ID_KEY:
        return record.ref_doc_id
    if key == DOC_ID_KEY:
        return record.id
    if key == TEXT_KEY:
        return record.text
    if key.startswith(METADATA_KEY + "."):
        value: Any = record.metadata
        for part in key[len(METADATA_KEY) + 1 :].split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value
    return None
