"""The small interface every agent-log source implements.

A source knows where its agent keeps logs (:meth:`Source.discover`) and how to
turn the complete lines of one file into usage records
(:meth:`Source.parse_blocks`). It knows nothing of SQLite, pricing or git: the
index layer drives it.

Parsing is incremental: the index hands over only the blocks of whole lines
appended since the last run, together with the small ``state`` the parser
returned last time, so a source whose meaning depends on earlier lines (Codex:
the current model, the previous token snapshot) carries that context across runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, TypeGuard

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)

#: The largest token count a single field may hold; anything larger is bad input.
MAX_TOKENS = 10**9


@dataclass(slots=True)
class Request:
    """One billed model response, in the tool-independent meaning of the fields.

    ``input_tokens`` is input not read from cache; ``cache_read_tokens`` is input
    read from cache; ``cache_write_5m``/``cache_write_1h`` are cache writes;
    ``output_tokens`` includes reasoning, of which ``reasoning_tokens`` is the part.
    """

    key: str  # de-duplication key, unique across all files of a tool
    tool: str
    session_id: str
    ts_ms: int  # UTC, milliseconds since the epoch
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    parent_session: str | None = None
    agent_id: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    speed: str | None = None
    logged_cost_usd: str | None = None  # a ``costUSD`` written by the agent itself
    offset: int = 0  # byte offset of the line in its file

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_write_5m
            + self.cache_write_1h
            + self.cache_read_tokens
            + self.output_tokens
        )


@dataclass(slots=True)
class Prompt:
    """A user's prompt: only the sha256 of its text is kept, never the text."""

    session_id: str
    key: str  # unique per tool (a line uuid, or a derived id)
    ts_ms: int
    sha256: str


@dataclass(slots=True)
class SessionInfo:
    """What a log says about a session beyond its requests (Codex ``session_meta``)."""

    session_id: str
    tool: str
    ts_ms: int | None = None
    cwd: str | None = None
    git_branch: str | None = None
    parent_session: str | None = None


@dataclass
class ParseResult:
    requests: list[Request] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    sessions: list[SessionInfo] = field(default_factory=list)
    #: counters such as ``lines``, ``bad_json``, ``bad_tokens``: skipped and counted
    counts: dict[str, int] = field(default_factory=dict)
    #: (offset, reason) of skipped bad lines, capped, for ``--verbose``
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: the parser's context to hand back for the next appended bytes
    state: dict[str, Any] | None = None

    MAX_PROBLEMS = 50

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def problem(self, offset: int, reason: str) -> None:
        self.count(reason)
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append((offset, reason))


class Source(Protocol):
    """An agent whose local logs aispend reads."""

    #: short name used in the index and on the command line (``claude``, ``codex``)
    name: str

    def discover(self) -> Iterator[str]:
        """Yield the path of every log file of this agent on this machine."""
        ...

    def parse_blocks(
        self, path: Path, blocks: Iterable[tuple[int, bytes, int, int]], state: dict[str, Any] | None
    ) -> ParseResult:
        """Turn blocks of complete lines (``aispend.sources.reader.Block``) of ``path`` into records.

        ``state`` is what the previous call for this file returned in
        :attr:`ParseResult.state` (None for a file read from its start).
        """
        ...

    def parse(
        self, path: Path, lines: Iterable[tuple[int, bytes]], state: dict[str, Any] | None
    ) -> ParseResult:
        """The same for single lines ``(offset, line)`` (newline stripped)."""
        ...


def valid_tokens(value: object) -> TypeGuard[int]:
    """A token count is a non-negative integer no larger than ``MAX_TOKENS``.

    Strings, floats (even integral ones), booleans, NaN and negatives are bad
    input: the request is skipped and counted, never coerced.
    """
    return type(value) is int and 0 <= value <= MAX_TOKENS


def parse_ts_ms(value: object) -> int | None:
    """ISO-8601 timestamp to UTC epoch milliseconds; None when unusable."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return (dt - _EPOCH) // _ONE_MS  # floor, in exact integer arithmetic
    except OverflowError:
        return None


def iter_files(root: Path, pattern_ok, follow_symlinks: bool = True) -> Iterator[str]:
    """Walk ``root`` yielding the paths of files whose name ``pattern_ok(name)`` accepts.

    Paths are strings: a history can hold tens of thousands of files, and making a
    ``Path`` of each costs more than the ``stat`` that follows.

    Symlinked folders are followed once (a loop is cut by remembering the real
    paths already visited); unreadable folders are skipped.
    """
    import os

    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        top = stack.pop()
        try:
            st = os.stat(top)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            continue
        seen.add(ident)
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    stack.append(entry.path)
                elif pattern_ok(entry.name) and (
                    entry.is_file(follow_symlinks=follow_symlinks) or (entry.is_symlink() and not os.path.exists(entry.path))
                ):
                    # A dangling symlink is yielded so that it is reported as unreadable.
                    yield entry.path
            except OSError:
                continue
