"""Read and append receipt lines in commits' notes: the one reader every command uses.

Note contents are untrusted input (anyone who can push writes them). They are read
as bytes from the note blobs themselves (``git cat-file --batch``, length-prefixed:
no byte of a note can end a record or hide a line) and split on ``\\n`` only. Every
non-empty line is returned exactly as it is, with why it cannot be a receipt when it
cannot; whether it is one, and whether it counts, is decided in the receipts layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from aispend import git
from aispend.receipts.model import MAX_LINE, digest


@dataclass(frozen=True)
class NoteLine:
    """One non-empty line of a note: the parsed receipt, or why it is not one."""

    commit: str
    number: int  # 1-based line number in the note
    text: str  # the line exactly (bytes that are not UTF-8 shown as U+FFFD; such a line is never a receipt)
    receipt: dict[str, Any] | None
    problem: str | None
    digest: str = ""  # ``sha256:`` of the line's bytes (how carried_from names it); set for JSON objects


def parse_note(commit: str, note: bytes | str) -> list[NoteLine]:
    """The lines of one note. Only empty lines are skipped: a line of spaces, a stray
    ``\\r`` or a record separator is a line, and not a receipt."""
    data = note.encode("utf-8", "surrogateescape") if isinstance(note, str) else note
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw:
            continue
        if len(raw) > MAX_LINE:
            out.append(NoteLine(commit, n, raw[:200].decode("utf-8", "replace"), None, f"line {n} is over {MAX_LINE >> 20} MB: refused"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.append(NoteLine(commit, n, raw.decode("utf-8", "replace"), None, f"line {n} is not UTF-8"))
            continue
        try:
            obj = orjson.loads(raw)
        except (orjson.JSONDecodeError, RecursionError):
            out.append(NoteLine(commit, n, text, None, f"line {n} is not JSON"))
            continue
        if not isinstance(obj, dict):
            out.append(NoteLine(commit, n, text, None, f"line {n} is not a JSON object"))
            continue
        out.append(NoteLine(commit, n, text, obj, None, digest(raw)))
    return out


def lines_of(repo: git.Repo, sha: str) -> list[NoteLine]:
    """The receipt lines attached to one commit."""
    note = git.read_notes(repo, [sha]).get(sha)
    return parse_note(sha, note) if note else []


def commits_with_lines(repo: git.Repo, revs: Sequence[str]) -> list[tuple[git.LoggedCommit, list[NoteLine]]]:
    """Every commit of a range with its note's lines (four git processes, whatever the size)."""
    commits = git.log_commits(repo, revs)
    notes = git.read_notes(repo, [c.sha for c in commits])
    out: list[tuple[git.LoggedCommit, list[NoteLine]]] = []
    for c in commits:
        note = notes.get(c.sha)
        if note is None:
            out.append((c, []))
            continue
        # The same note read twice in one process (a report and its alerts) is parsed once.
        lines = _PARSED.get((c.sha, note))
        if lines is None:
            lines = _PARSED[(c.sha, note)] = parse_note(c.sha, note)
        out.append((c, lines))
    return out


_PARSED: dict[tuple[str, bytes], list[NoteLine]] = {}


def lines_by_digest(repo: git.Repo) -> dict[str, bytes]:
    """Every line of every note of ``refs/notes/aispend`` (also of commits in no branch), by the
    digest ``carried_from`` names it with. Each blob is read and hashed once however many notes
    share it, and nothing is parsed until asked for (:func:`receipt_of`): a push of notes costs
    what it weighs, never more."""
    blobs = sorted({b for bs in git.note_blobs(repo).values() for b in bs})
    out: dict[str, bytes] = {}
    for content in git.cat_objects(repo, blobs).values():
        for raw in content.split(b"\n"):
            if raw and len(raw) <= MAX_LINE:
                out[digest(raw)] = raw
    return out


def receipt_of(raw: bytes) -> dict[str, Any] | None:
    """A note line's JSON object, or None (any line a digest named: its bytes are fixed by it)."""
    try:
        obj = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def append(repo: git.Repo, sha: str, line: str) -> None:
    """Add a receipt line to ``sha``'s note (kept once; concurrent writers are safe)."""
    git.append_note_line(repo, sha, line)
