"""Small helpers for the text the commands print."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun in the right number, thousands separated: "1 commit", "2,000 commits"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
