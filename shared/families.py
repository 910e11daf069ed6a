"""Model-family tables keyed by id patterns (prompts, MRL): the one way an id is matched."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

S = TypeVar("S")


def match_family(table: Sequence[tuple[str, S]], model_id: str) -> S | None:
    """The entry of the first pattern that matches ``model_id`` (hub id or directory), else None."""
    # Only the last two path components: a hub id is "org/name", and for a local
    # directory the parents ("/home/e5-user/...") say nothing about the model.
    low = "/".join(model_id.lower().replace("\\", "/").rstrip("/").split("/")[-2:])
    for pattern, spec in table:
        if re.search(pattern, low):
            return spec
    return None


__all__ = ["match_family"]
