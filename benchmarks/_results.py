"""One current section per benchmark in ``benchmarks/RESULTS.md``; git keeps the history.

A section is identified by its ``## `` title without the date, so a rerun replaces the section it
produced before (in place) instead of appending a second one.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_DATED = re.compile(r",? *\(?\d{4}-\d{2}-\d{2}\)?.*$")


def title_key(section: str) -> str:
    """The section's title without ``## `` and without its date."""
    first = section.lstrip("\n").split("\n", 1)[0].removeprefix("## ")
    return _DATED.sub("", first).strip()


def replace_section(text: str, section: str) -> str:
    """``text`` with every section titled like ``section`` replaced by it, at the first one's place."""
    key = title_key(section)
    parts = text.split("\n## ")
    same = [i for i, part in enumerate(parts) if i and title_key(part) == key]
    kept = [part for i, part in enumerate(parts) if i not in same]
    body = section.strip("\n").removeprefix("## ") + "\n"
    if same:
        kept.insert(same[0], body)
    else:
        kept[-1] = kept[-1].rstrip("\n") + "\n"
        kept.append(body)
    return "\n## ".join(kept)


def write_section(section: str, path: Path = RESULTS) -> None:
    """Replace (or add) ``section`` in ``path``."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    path.write_text(replace_section(text, section), encoding="utf-8")
