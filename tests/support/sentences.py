"""Plain English sentences the late-chunking tests build documents from (each a chunk)."""

from __future__ import annotations

__all__ = ["SENTENCES"]

SENTENCES = [
    "The history of the city begins with a small village by the river.",
    "Over many years the village grew into a town with a market, a school and a library.",
    "Scientists study the stars, the planets and the moon; they measure light and time.",
    "Doctors treat patients in hospitals, and nurses help them recover after surgery.",
    "Children play football in the park after school while their parents talk about work.",
]
