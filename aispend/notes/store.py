"""Read and append receipt lines in a commit's note.

Note contents are untrusted input (anyone who can push writes them): lines are
returned raw with their problems, never trusted or interpreted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import orjson

from aispend import git
from aispend.receipts.model import MAX_LINE


@dataclass(frozen=True)
class NoteLine:
    """One non-blank line of a note: the parsed receipt, or why it is not one."""

    commit: str
    number: int  # 1-based line number in the note
    text: str
    receipt: dict[str, Any] | None
    problem: str | None


def parse_note(commit: str, note: str) -> list[NoteLine]:
    out = []
    for n, raw in enumerate(note.split("\n"), 1):
        text = raw.strip()
        if not text:
            continue
        if len(text.encode("utf-8", "surrogateescape")) > MAX_LINE:
            out.append(NoteLine(commit, n, text[:200], None, f"line {n} is over {MAX_LINE // 1024} KB: refused"))
            continue
        try:
            obj = orjson.loads(text)
        except (orjson.JSONDecodeError, RecursionError):
            out.append(NoteLine(commit, n, text, None, f"line {n} is not JSON"))
            continue
        if not isinstance(obj, dict):
            out.append(NoteLine(commit, n, text, None, f"line {n} is not a JSON object"))
            continue
        out.append(NoteLine(commit, n, text, obj, None))
    return out


def lines_of(repo: git.Repo, sha: str) -> list[NoteLine]:
    """The receipt lines attached to one commit."""
    note = git.read_note(repo, sha)
    return parse_note(sha, note) if note else []


def lines_in(repo: git.Repo, revs: Sequence[str]) -> Iterator[tuple[str, str, list[NoteLine]]]:
    """``(commit, tree, lines)`` for every commit of a range, in one git process."""
    for sha, tree, _author, _when, _subject, note in git.log_with_notes(repo, revs):
        yield sha, tree, parse_note(sha, note) if note.strip() else []


def append(repo: git.Repo, sha: str, line: str) -> None:
    """Add a receipt line to ``sha``'s note (kept once; concurrent writers are safe)."""
    git.append_note_line(repo, sha, line)
