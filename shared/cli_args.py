"""What the ``m3-hybrid`` subcommands share (:mod:`shared.cli` and :mod:`shared.indexing.cli`).

A module of its own so that the subcommand modules need not import each other.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_command(sub: Any, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose description and examples are printed as written."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def api_key_for(given: str | None, *endpoints: Any) -> str | None:
    """``--api-key``, else ``$QDRANT_API_KEY`` when an endpoint is an http(s):// server.

    The variable keeps the key out of the process list.
    """
    if given is None and any(str(e).lower().startswith(("http://", "https://")) for e in endpoints):
        return os.environ.get("QDRANT_API_KEY") or None
    return given


__all__ = ["add_command", "api_key_for", "positive_int"]
