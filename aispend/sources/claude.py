"""Claude Code session logs: ``<root>/projects/<encoded-cwd>/**/*.jsonl``.

Counting rules (docs/accounting.md has the reasons):

* a usage entry is a JSON object with a ``timestamp`` and a top-level
  ``message.usage`` holding integer ``input_tokens`` and ``output_tokens``;
  usage nested in ``progress`` lines (``data.message.message.usage``) is a
  subagent's, already logged in its own file, and is never counted;
* a response is identified by (``message.id``, ``requestId``), or by
  ``message.id`` alone when there is no ``requestId``; duplicates across all
  files collapse to the copy with the largest token total (the index does that,
  here each copy is just emitted with the same key);
* a response belongs to the line's ``sessionId``; subagent lines keep their
  parent's ``sessionId`` and carry ``agentId``;
* model ``<synthetic>`` is not usage; ``costUSD`` (old logs) is kept.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern
from typing import Annotated, Any, Iterable, Iterator, Optional

import msgspec

from aispend.sources.reader import UNUSUAL, Block, cut_short, lines_as_blocks, load_line, typed_lines, utf8
from aispend.paths import home, shown
from aispend.sources.base import MAX_TOKENS, ParseResult, Prompt, Request, SessionInfo, iter_files, parse_ts_ms, valid_tokens

NAME = "claude"
#: Line types whose line may hold a top-level ``message.usage``.
_USAGE_KINDS = frozenset({b"message", b"assistant"})
#: Line types that never carry usage of their own.
_SKIP_KINDS = frozenset({b"progress", b"system", b"file-history-snapshot", b"queue-operation", b"summary"})
_TAIL = 1024
_Tok = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]


def roots() -> list[Path]:
    """``$CLAUDE_CONFIG_DIR`` (comma-separated) when set, else both default homes."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        candidates = [Path(p.strip()).expanduser() for p in env.split(",") if p.strip()]
    else:
        h = home()
        candidates = [h / ".config" / "claude", h / ".claude"]
    out: list[Path] = []
    seen: set[str] = set()
    for c in candidates:
        real = os.path.realpath(c)
        if real not in seen and (c / "projects").is_dir():
            seen.add(real)
            out.append(c)
    return out


def _jsonl(name: str) -> bool:
    return name.endswith(".jsonl")


class ClaudeSource:
    name = NAME

    def discover(self) -> Iterator[str]:
        for root in roots():
            yield from iter_files(root / "projects", _jsonl)

    def parse(
        self, path: Path, lines: Iterable[tuple[int, bytes]], state: dict[str, Any] | None
    ) -> ParseResult:
        return self.parse_blocks(path, lines_as_blocks(lines), state)

    def parse_blocks(
        self, path: Path, blocks: Iterable[Block], state: dict[str, Any] | None
    ) -> ParseResult:
        result = ParseResult()
        fallback_session = _session_from_path(path)
        acc = _File(fallback_session, result)
        best, first = acc.best, acc.first
        copies = 0
        for base, block, bstart, bend in blocks:
            find = block.find
            view = memoryview(block)
            # JSON is UTF-8: a line with other bytes is bad even where they sit in
            # text that is skipped unread (checked per line only in a block that is not ASCII).
            ascii_block = block.isascii()
            # Lines are classified by their own type, read from their first bytes: most
            # (progress, tool results) are never parsed, nor even copied.
            for ls, le, kind, _ in typed_lines(base, block, result, bstart, bend):
                off = base + ls
                if kind in _USAGE_KINDS:
                    # The usual assistant line decodes straight into the few fields
                    # used, the large content skipped unread into objects; anything
                    # else (bad tokens, no usage, a glued line: not valid JSON) takes
                    # the general path below, which counts it exactly.
                    try:
                        entry = _decode_entry(view[ls:le] if ascii_block else utf8(view[ls:le]))
                    except UNUSUAL:
                        line = block[ls:le]
                    else:
                        copies += _usage_entry(entry, off, acc)
                        continue
                elif kind == b"user" and find(b'"tool_use_id"', ls, le) < 0:
                    line = block[ls:le]
                elif kind in _SKIP_KINDS or kind == b"user":
                    if cut_short(block, ls, le):
                        result.problem(off, "bad_json")  # cut short
                        continue
                    # A line skipped by its type may still hide a whole line glued
                    # after a cut-short head: another line's start, or a usage entry's
                    # "usage" (in its last few hundred bytes).
                    if find(b'{"parentUuid"', ls + 1, le) < 0 and find(b'"usage"', max(ls, le - _TAIL), le) < 0:
                        continue
                    line = block[ls:le]
                else:
                    line = block[ls:le]
                    if b'"usage"' not in line and (b'"user"' not in line or b'"tool_use_id"' in line):
                        continue
                for o, d in load_line(line, off, result):
                    msg = d.get("message")
                    if isinstance(msg, dict) and isinstance(msg.get("usage"), dict):
                        copies += _usage_line(d, o, acc)
                    else:
                        _prompt_line(d, o, fallback_session, result)
        # Streaming copies of one response mostly sit in the same file: keep the
        # best one here (the index applies the same rule across files).
        result.requests = list(best.values())
        # Sessions start at their earliest line, whichever copy of a response won.
        result.sessions = [SessionInfo(sid, NAME, ts, cwd, branch) for sid, (ts, cwd, branch) in first.items()]
        result.count("duplicates", copies - len(best))
        return result


def _session_from_path(path: Path) -> str:
    """The session a file belongs to when its lines do not say."""
    if path.parent.name == "subagents":
        return shown(path.parent.parent.name)
    return shown(path.stem)


class _Usage(msgspec.Struct, gc=False):
    input_tokens: _Tok
    output_tokens: _Tok
    cache_creation_input_tokens: Optional[_Tok] = 0
    cache_read_input_tokens: Optional[_Tok] = 0
    cache_creation: Any = None  # the 5-minute/1-hour breakdown; checked when it is an object
    speed: Any = None


class _Message(msgspec.Struct, gc=False):
    usage: _Usage
    id: Any = None
    model: Any = None


class _Entry(msgspec.Struct, gc=False):
    """The fields of a usage line that are read; every other key is skipped unread.

    Token counts are typed (a non-negative integer up to ``MAX_TOKENS``): a line
    holding anything else fails to decode and is judged by :func:`_usage_line`.
    """

    message: _Message
    timestamp: Any = None
    sessionId: Any = None
    requestId: Any = None
    uuid: Any = None
    cwd: Any = None
    gitBranch: Any = None
    isSidechain: Any = None
    agentId: Any = None
    costUSD: Any = None


_decode_entry = msgspec.json.Decoder(_Entry).decode


@dataclass(slots=True)
class _File:
    """What the parse of one file gathers: the best copy of each response (by key) and each
    session's earliest line (time, cwd, branch)."""

    fallback_session: str
    result: ParseResult
    best: dict[str, Request] = field(default_factory=dict)
    first: dict[str, tuple[int, str | None, str | None]] = field(default_factory=dict)


def _usage_line(d: dict[str, Any], offset: int, acc: _File) -> int:
    """The general path: a line parsed whole (the typed decode refused it). 1 if it was usage."""
    result = acc.result
    msg = d.get("message")
    if not isinstance(msg, dict):
        return 0
    usage = msg.get("usage")
    if not isinstance(usage, dict):
        return 0
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return 0
    try:
        entry = msgspec.convert(d, _Entry)
    except msgspec.ValidationError:
        # Only token counts are typed: this request is bad input, unless a check that
        # comes first already rules it out.
        if msg.get("model") == "<synthetic>":
            result.count("synthetic")
        elif parse_ts_ms(d.get("timestamp")) is None:
            result.problem(offset, "bad_timestamp")
        else:
            result.problem(offset, "bad_tokens")
        return 0
    return _usage_entry(entry, offset, acc)


def _usage_entry(e: _Entry, offset: int, acc: _File) -> int:
    """Record the usage entry ``e`` in ``acc.best`` (by key) if it is the best copy so far; 1 if it was one."""
    result = acc.result
    msg = e.message
    model = msg.model
    if model == "<synthetic>":
        result.count("synthetic")
        return 0
    ts = parse_ts_ms(e.timestamp)
    if ts is None:
        result.problem(offset, "bad_timestamp")
        return 0
    u = msg.usage
    inp = u.input_tokens
    out = u.output_tokens
    cw = u.cache_creation_input_tokens or 0
    cr = u.cache_read_input_tokens or 0
    cw1h = 0
    breakdown = u.cache_creation
    if type(breakdown) is dict:
        v = breakdown.get("ephemeral_1h_input_tokens", 0)
        if v is None:
            v = 0
        if not valid_tokens(v):
            result.problem(offset, "bad_tokens")
            return 0
        # The breakdown splits the billed total; never let it exceed it.
        cw1h = min(v, cw)
    session = e.sessionId
    if type(session) is not str or not session:
        session = acc.fallback_session
    msg_id = msg.id
    if type(msg_id) is str and msg_id:
        req_id = e.requestId
        key = f"claude:{msg_id}:{req_id}" if type(req_id) is str and req_id else f"claude:{msg_id}"
    else:
        uuid = e.uuid
        key = f"claude:line:{uuid}" if type(uuid) is str and uuid else f"claude:line:{session}:{ts}:{offset}"
    cwd = e.cwd if type(e.cwd) is str and e.cwd else None
    branch = e.gitBranch if type(e.gitBranch) is str and e.gitBranch else None
    first = acc.first
    seen = first.get(session)
    if seen is None or ts < seen[0]:
        first[session] = (ts, cwd, branch)
    total = inp + out + cw + cr
    best = acc.best
    prev = best.get(key)
    if prev is not None and not _better(total, ts, session, prev):
        return 1
    cost = e.costUSD
    logged = None
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and 0 <= cost < float("inf"):
        logged = repr(cost)
    agent = e.agentId
    speed = u.speed
    # Names repeat on every line of a session: one shared copy each (a batch of rows waiting
    # to be written holds thousands).
    best[key] = Request(
        key,
        NAME,
        intern(session),
        ts,
        intern(model) if type(model) is str else None,
        inp,
        out,
        cw - cw1h,
        cw1h,
        cr,
        0,
        None,
        agent if type(agent) is str and e.isSidechain else None,
        intern(cwd) if cwd else None,
        intern(branch) if branch else None,
        speed if type(speed) is str else None,
        logged,
        offset,
    )
    return 1


def _better(total: int, ts: int, session: str, prev: Request) -> bool:
    """The copy rule, the same as the index's: largest total, then earliest, then session id."""
    if total != prev.total_tokens:
        return total > prev.total_tokens
    if ts != prev.ts_ms:
        return ts < prev.ts_ms
    return session < prev.session_id


def _prompt_line(d: dict[str, Any], offset: int, fallback_session: str, result: ParseResult) -> None:
    """A user's own prompt (not a tool result, not meta, not a subagent's task)."""
    if d.get("type") != "user" or d.get("isMeta") or d.get("isSidechain") or d.get("isCompactSummary"):
        return
    msg = d.get("message")
    if not isinstance(msg, dict) or msg.get("role") != "user":
        return
    content = msg.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for item in content:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "tool_result":
                return
            if item.get("type") == "text" and isinstance(item.get("text"), str):
                parts.append(item["text"])
        text = "\n".join(parts)
    else:
        return
    if not text.strip():
        return
    ts = parse_ts_ms(d.get("timestamp"))
    if ts is None:
        return
    session = d.get("sessionId")
    if not isinstance(session, str) or not session:
        session = fallback_session
    uuid = d.get("uuid")
    key = f"claude:{uuid}" if isinstance(uuid, str) and uuid else f"claude:{session}:{ts}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    result.prompts.append(Prompt(session_id=session, key=key, ts_ms=ts, sha256=digest))
