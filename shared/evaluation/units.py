"""How the report's table and the plot write a byte count (one home, so both agree)."""

from __future__ import annotations

__all__ = ["fmt_bytes"]


def fmt_bytes(n: float | None) -> str:
    """``n`` bytes as ``1.2 MB`` (decimal units); ``–`` when unknown."""
    if n is None:
        return "–"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"
