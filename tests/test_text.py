"""The helper that puts a count and its noun in the right number."""

from __future__ import annotations

from aispend.text import counted


def test_one_is_singular_everything_else_plural_with_thousands_separated() -> None:
    assert counted(1, "commit") == "1 commit"
    assert counted(0, "commit") == "0 commits"
    assert counted(2_000, "bad line") == "2,000 bad lines"
    assert counted(3, "entry", "entries") == "3 entries"
    assert counted(1, "entry", "entries") == "1 entry"
