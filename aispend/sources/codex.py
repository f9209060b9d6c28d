"""Codex rollout logs: ``$CODEX_HOME/sessions/**/rollout-*.jsonl`` and ``archived_sessions/``.

Counting rules (docs/accounting.md has the reasons):

* ``event_msg``/``token_count`` with a non-null ``info``: count its
  ``last_token_usage`` when ``total_token_usage`` differs from the previous
  snapshot in the file (Codex re-emits identical snapshots). Totals are compared,
  never subtracted: ``codex resume`` appends to the same file and some versions
  restart the totals at zero.
* ``cached_input_tokens`` is part of ``input_tokens`` and
  ``reasoning_output_tokens`` part of ``output_tokens``.
* ``turn_context`` sets the current model; before any is seen the model is
  unknown and the request is unpriced (never guessed).
* Forks: a forked rollout starts with its own ``session_meta`` (carrying
  ``forked_from_id``) followed by a re-stamped copy of its ancestors' lines,
  ``token_count`` snapshots included. Each snapshot is keyed by the lineage's
  root session and its exact token figures, so a copy and its original are one
  request; the original (earlier timestamp) wins. Lines of the initial copy
  burst are attributed to the ancestor whose ``session_meta`` precedes them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Iterable, Iterator, Optional

import msgspec

from aispend.paths import home, shown
from aispend.sources.reader import UNUSUAL, Block, cut_short, kind_of, lines_as_blocks, load_line, typed_lines, utf8
from aispend.sources.base import MAX_TOKENS, ParseResult, Prompt, Request, SessionInfo, iter_files, parse_ts_ms, valid_tokens

NAME = "codex"
#: Lines of a fork's initial copy are written in one burst; a pause longer
#: than this between parsed lines ends it.
BURST_GAP_MS = 1000
_EVENTS = frozenset({b"token_count", b"user_message"})
_LINES = frozenset({b"session_meta", b"turn_context"})
#: How every rollout line starts: found further in, it marks a line glued after a cut-short one.
_LINE_START = b'{"timestamp":"'
_NEEDLES = (b'"token_count"', b'"turn_context"', b'"session_meta"', b'"user_message"')
_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
_Tok = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
_Count = Annotated[int, msgspec.Meta(ge=0)]


def root_dir() -> Path:
    env = os.environ.get("CODEX_HOME")
    return Path(env).expanduser() if env else home() / ".codex"


def _rollout(name: str) -> bool:
    return name.startswith("rollout-") and name.endswith(".jsonl")


class CodexSource:
    name = NAME

    def discover(self) -> Iterator[str]:
        root = root_dir()
        for sub in ("sessions", "archived_sessions"):
            d = root / sub
            if d.is_dir():
                yield from iter_files(d, _rollout)

    def parse(
        self, path: Path, lines: Iterable[tuple[int, bytes]], state: dict[str, Any] | None
    ) -> ParseResult:
        return self.parse_blocks(path, lines_as_blocks(lines), state)

    def parse_blocks(
        self, path: Path, blocks: Iterable[Block], state: dict[str, Any] | None
    ) -> ParseResult:
        result = ParseResult()
        st = state or {
            "sid": None,  # the file's own session (its first session_meta)
            "root": None,  # root of the fork lineage: scopes de-duplication keys
            "seg": None,  # session the current lines belong to
            "burst": False,  # inside a fork's initial copy
            "last_ts": None,
            "model": None,
            "cwd": None,
            "branch": None,
            "prev": None,  # previous total_token_usage snapshot
            "prompts": 0,  # user prompts seen in the file, for prompt keys
        }
        last_snapshot = b""
        for base, block, bstart, bend in blocks:
            find = block.find
            view = memoryview(block)
            # JSON is UTF-8: a line with other bytes is bad even where they sit in
            # text that is skipped unread (checked per line only in a block that is not ASCII).
            ascii_block = block.isascii()
            # A rollout line starts {"timestamp":...,"type":...,"payload":{"type":...:
            # its kinds are read from its first bytes, and the large response
            # items are never parsed, nor even copied.
            for ls, le, kind, end in typed_lines(base, block, result, bstart, bend):
                off = base + ls
                sub = None
                if kind == b"event_msg":
                    sub, sub_end = kind_of(block, end, le)
                    wanted = sub in _EVENTS
                    if sub == b"token_count":
                        # Codex writes snapshots again unchanged (0.104: every one twice);
                        # a byte-identical payload is a repeat without parsing it, unless
                        # the line also holds another line's start (glued after a cut-short
                        # one: the broken head must still be counted).
                        payload = block[sub_end:le]
                        if payload == last_snapshot and find(_LINE_START, ls + 1, le) < 0:
                            result.count("repeated_snapshots")
                            continue
                        last_snapshot = payload
                elif kind in _LINES:
                    wanted = True
                elif kind is None:
                    wanted = any(find(needle, ls, le) >= 0 for needle in _NEEDLES)
                else:
                    wanted = False
                if not wanted:
                    if cut_short(block, ls, le):
                        result.problem(off, "bad_json")  # cut short
                        continue
                    # A line skipped by its type may still hide a whole line glued
                    # after a cut-short head: every rollout line starts {"timestamp":".
                    wanted = find(_LINE_START, ls + 1, le) > 0
                if wanted:
                    if kind == b"event_msg" and sub == b"token_count":
                        # The usual snapshot decodes straight into typed fields; anything
                        # off that shape takes the general path, which counts it exactly.
                        try:
                            snap = _decode_snapshot(view[ls:le] if ascii_block else utf8(view[ls:le]))
                        except UNUSUAL:
                            pass
                        else:
                            ts = parse_ts_ms(snap.timestamp)
                            _advance(st, ts)
                            info = snap.payload.info
                            if info is not None:
                                _snapshot(_counters(info.total_token_usage), _counters(info.last_token_usage), ts, off, st, result, path)
                            continue
                    for o, d in load_line(block[ls:le], off, result):
                        _line(d, o, st, result, path)
        result.state = st
        return result


def _line(d: dict[str, Any], offset: int, st: dict[str, Any], result: ParseResult, path: Path) -> None:
    kind = d.get("type")
    payload = d.get("payload")
    if not isinstance(payload, dict):
        return
    ts = parse_ts_ms(d.get("timestamp"))
    _advance(st, ts)
    if kind == "session_meta":
        _session_meta(payload, ts, st, result, path)
    elif kind == "turn_context":
        model = payload.get("model")
        if isinstance(model, str) and model:
            st["model"] = model
        cwd = payload.get("cwd")
        if isinstance(cwd, str) and cwd:
            st["cwd"] = cwd
    elif kind == "event_msg":
        ptype = payload.get("type")
        if ptype == "token_count":
            _token_count(payload, ts, offset, st, result, path)
        elif ptype == "user_message":
            _user_message(payload, ts, st, result, path)


def _advance(st: dict[str, Any], ts: int | None) -> None:
    """A parsed line's time: a pause after a fork's copy burst ends the burst."""
    if ts is None:
        return
    if st["burst"] and st["last_ts"] is not None and ts - st["last_ts"] > BURST_GAP_MS:
        st["burst"] = False
        st["seg"] = st["sid"]
    st["last_ts"] = ts


def _ensure_session(st: dict[str, Any], path: Path) -> None:
    """A file with no session_meta yet: name the session after the file."""
    if st["sid"] is None:
        stem = shown(path.stem)
        sid = stem[-36:] if len(stem) >= 36 else stem
        st["sid"] = st["root"] = st["seg"] = sid


def _session_meta(p: dict[str, Any], ts: int | None, st: dict[str, Any], result: ParseResult, path: Path) -> None:
    sid = p.get("id")
    if not isinstance(sid, str) or not sid:
        return
    forked = p.get("forked_from_id")
    forked = forked if isinstance(forked, str) and forked else None
    parent = forked or _spawn_parent(p.get("source"))
    g = p.get("git")
    git: dict[str, Any] = g if isinstance(g, dict) else {}
    branch = git.get("branch") if isinstance(git.get("branch"), str) else None
    cwd = p.get("cwd") if isinstance(p.get("cwd"), str) else None
    if parent:
        st.setdefault("parents", {})[sid] = parent
    if st["sid"] is None:
        # The file's own session.
        st["sid"] = st["seg"] = sid
        st["root"] = forked or sid
        st["burst"] = forked is not None
        st["cwd"], st["branch"] = cwd, branch
        started = parse_ts_ms(p.get("timestamp")) or ts
        result.sessions.append(SessionInfo(sid, NAME, started, cwd, branch, parent))
        return
    if sid == st["sid"]:
        return  # repeated own meta
    if st["burst"]:
        # An ancestor's meta inside the copied history: follow the lineage up.
        st["seg"] = sid
        if sid == st["root"] and forked:
            st["root"] = forked


def _spawn_parent(source: object) -> str | None:
    if isinstance(source, dict):
        sub = source.get("subagent")
        if isinstance(sub, dict):
            spawn = sub.get("thread_spawn")
            if isinstance(spawn, dict) and isinstance(spawn.get("parent_thread_id"), str):
                return spawn["parent_thread_id"]
    return None


def _usage(obj: object, cumulative: bool = False) -> tuple[int, ...] | None:
    """The five counters of a TokenUsage; None when any is not a valid count.

    ``input_tokens`` and ``output_tokens`` are required; the others default to 0.
    A ``cumulative`` usage (``total_token_usage``: the whole session, fork
    ancestors included) is not held to the per-request ``MAX_TOKENS`` cap.
    """
    if not isinstance(obj, dict) or obj.get("input_tokens") is None or obj.get("output_tokens") is None:
        return None
    vals = tuple(0 if (v := obj.get(f)) is None else v for f in _FIELDS)
    if cumulative:
        return vals if all(type(v) is int and v >= 0 for v in vals) else None
    return vals if all(valid_tokens(v) for v in vals) else None


class _Total(msgspec.Struct, gc=False):
    """A TokenUsage as :func:`_usage` reads it (cumulative: no per-request cap)."""

    input_tokens: _Count
    output_tokens: _Count
    cached_input_tokens: Optional[_Count] = 0
    reasoning_output_tokens: Optional[_Count] = 0
    total_tokens: Optional[_Count] = 0


class _Last(msgspec.Struct, gc=False):
    input_tokens: _Tok
    output_tokens: _Tok
    cached_input_tokens: Optional[_Tok] = 0
    reasoning_output_tokens: Optional[_Tok] = 0
    total_tokens: Optional[_Tok] = 0


class _Info(msgspec.Struct, gc=False):
    total_token_usage: _Total
    last_token_usage: _Last


class _Payload(msgspec.Struct, gc=False):
    info: Optional[_Info] = None


class _Snapshot(msgspec.Struct, gc=False):
    """The fields of a ``token_count`` line that are read; everything else is skipped unread."""

    payload: _Payload
    timestamp: Any = None


_decode_snapshot = msgspec.json.Decoder(_Snapshot).decode


def _counters(u: _Total | _Last) -> tuple[int, int, int, int, int]:
    return (u.input_tokens, u.cached_input_tokens or 0, u.output_tokens, u.reasoning_output_tokens or 0, u.total_tokens or 0)


def _token_count(
    p: dict[str, Any], ts: int | None, offset: int, st: dict[str, Any], result: ParseResult, path: Path
) -> None:
    info = p.get("info")
    if info is None:
        return
    if not isinstance(info, dict):
        result.problem(offset, "bad_tokens")
        return
    total = _usage(info.get("total_token_usage"), cumulative=True)
    last = _usage(info.get("last_token_usage"))
    if total is None or last is None:
        result.problem(offset, "bad_tokens")
        return
    _snapshot(total, last, ts, offset, st, result, path)


def _snapshot(
    total: tuple[int, ...], last: tuple[int, ...], ts: int | None, offset: int, st: dict[str, Any], result: ParseResult, path: Path
) -> None:
    """Count a valid snapshot's last usage unless it repeats the previous snapshot."""
    prev = st["prev"]
    if prev is not None and (prev == total or tuple(prev) == total):  # a list when read back from the index
        result.count("repeated_snapshots")
        return
    st["prev"] = total
    if ts is None:
        result.problem(offset, "bad_timestamp")
        return
    _ensure_session(st, path)
    inp, cached, out, reasoning, _tot = last
    if inp == 0 and cached == 0 and out == 0 and reasoning == 0:
        return
    cached = min(cached, inp)
    t0, t1, t2, t3, t4 = total
    key = f"codex:{st['root']}:{t0},{t1},{t2},{t3},{t4}:{inp},{last[1]},{out},{reasoning},{_tot}"
    seg = st["seg"]
    parents = st.get("parents")
    result.requests.append(
        Request(
            key,
            NAME,
            seg,
            ts,
            st["model"],
            inp - cached,  # input_tokens: input not read from cache
            out,
            0,
            0,
            cached,  # cache_read_tokens
            reasoning if reasoning < out else out,
            parents.get(seg) if parents else None,
            None,
            st["cwd"],
            st["branch"],
            None,
            None,
            offset,
        )
    )


def _user_message(p: dict[str, Any], ts: int | None, st: dict[str, Any], result: ParseResult, path: Path) -> None:
    text = p.get("message")
    if not isinstance(text, str) or not text.strip() or ts is None:
        return
    _ensure_session(st, path)
    # Keyed by lineage root and position in the file: a fork's copy holds its
    # ancestors' prompts at the same positions as their own files do.
    n = st.get("prompts", 0)
    st["prompts"] = n + 1
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    result.prompts.append(Prompt(session_id=st["seg"], key=f"codex:{st['root']}:{n}:{digest[:16]}", ts_ms=ts, sha256=digest))
