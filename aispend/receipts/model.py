"""The receipt: what it holds, its canonical JSON, its digest (docs/receipt.md is the contract).

A receipt is a JSON object written as one line of a git note. Canonical form:
keys sorted, no spaces, UTF-8 (no ASCII escaping), money as decimal strings,
so that the same receipt is always the same bytes: signatures check, and notes
from several people merge line by line (``git notes merge -s cat_sort_uniq``).

Nothing private goes in: no prompt text, no file content, no path.
This module is on the hook path: standard library only.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

from aispend.attribution import Claimed
from aispend.index.db import TOKEN_FIELDS

VERSION = 1
#: Receipt lines longer than this are refused when read (notes are untrusted input). A receipt
#: takes about 400 bytes a session, so this is some 10,000 sessions (a big squash merge carried
#: by CI); the writer refuses to write a longer one rather than write what no reader would read.
MAX_LINE = 4 * 1024 * 1024


#: Unicode categories no string in a receipt may hold (controls, format characters such as bidi
#: overrides and zero-width ones, surrogates, private use, unassigned, line and paragraph
#: separators): verify refuses a line holding one, and the writer never writes one.
BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def bad_char(c: str) -> bool:
    """Whether a receipt may not hold character ``c``."""
    return not (" " <= c <= "~") and unicodedata.category(c) in BAD_CATEGORIES


def receipt_text(text: str) -> str:
    """``text`` from an agent's log (a model name, a session id) as a receipt may hold it: each
    character it may not hold replaced by U+FFFD."""
    return "".join("\ufffd" if bad_char(c) else c for c in text) if any(map(bad_char, text)) else text


def canonical(obj: dict[str, Any]) -> str:
    """The one serialisation of a receipt (or of its signed part)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(line: str | bytes) -> str:
    """How ``carried_from`` names a receipt line: ``sha256:`` and the hex digest of its bytes
    (signature included)."""
    return "sha256:" + hashlib.sha256(line.encode("utf-8") if isinstance(line, str) else line).hexdigest()


def usd(nusd: int) -> str:
    """Nano-dollars as an exact decimal string: 1500000000 -> "1.5", 0 -> "0"."""
    if nusd == 0:
        return "0"
    s = f"{nusd // 10**9}.{nusd % 10**9:09d}".rstrip("0").rstrip(".")
    return s


def usd_number(nusd: int) -> float:
    """Nano-dollars as the JSON number commands print (6 decimals); receipts keep strings."""
    return round(nusd / 1e9, 6)


def nusd_of(value: object) -> int | None:
    """A receipt's decimal money string back to nano-dollars; None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        d = Decimal(value)
    except ArithmeticError:
        return None
    if not d.is_finite() or d < 0:
        return None
    n = d * 10**9
    if n != n.to_integral_value():
        return None
    return int(n)


def iso_ms(ms: int) -> str:
    """UTC timestamp with milliseconds: 2026-03-01T12:00:00.000Z."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp() * 1000)


def _empty_model(model: str) -> dict[str, Any]:
    d: dict[str, Any] = {"model": model, **{f: 0 for f in TOKEN_FIELDS}}
    d["cost_usd"] = None
    d["unpriced_tokens"] = 0
    return d


class _Acc:
    """Sums per (tool, session) and model, in nano-dollars until written out."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}

    def session(self, tool: str, sid: str) -> dict[str, Any]:
        s = self.sessions.get((tool, sid))
        if s is None:
            s = self.sessions[(tool, sid)] = {
                "tool": tool, "session": sid, "models": {}, "first_ms": None, "last_ms": None,
                "prompts": 0, "prompt_digest": None,
            }
        return s

    def add(self, tool: str, sid: str, model: str, tokens: dict[str, int], cost: int | None, unpriced: int, first: int, last: int) -> None:
        s = self.session(tool, sid)
        m = s["models"].get(model)
        if m is None:
            m = s["models"][model] = {**{f: 0 for f in TOKEN_FIELDS}, "cost_nusd": None, "unpriced_tokens": 0}
        for f in TOKEN_FIELDS:
            m[f] += tokens[f]
        if cost is not None:
            m["cost_nusd"] = (m["cost_nusd"] or 0) + cost
        m["unpriced_tokens"] += unpriced
        s["first_ms"] = first if s["first_ms"] is None else min(s["first_ms"], first)
        s["last_ms"] = last if s["last_ms"] is None else max(s["last_ms"], last)

    def prompts(self, tool: str, sid: str, count: int, chain: str | None) -> None:
        s = self.session(tool, sid)
        if count > s["prompts"]:
            s["prompts"], s["prompt_digest"] = count, chain

    def out(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        sessions = []
        totals: dict[str, Any] = {f: 0 for f in TOKEN_FIELDS}
        cost = 0
        unpriced = 0
        for (tool, sid), s in sorted(self.sessions.items()):
            models = []
            for name, m in sorted(s["models"].items()):
                models.append({
                    "model": name,
                    **{f: m[f] for f in TOKEN_FIELDS},
                    "cost_usd": None if m["cost_nusd"] is None else usd(m["cost_nusd"]),
                    "unpriced_tokens": m["unpriced_tokens"],
                })
                for f in TOKEN_FIELDS:
                    totals[f] += m[f]
                cost += m["cost_nusd"] or 0
                unpriced += m["unpriced_tokens"]
            sessions.append({
                "tool": tool,
                "session": sid,
                "models": models,
                "first_ts": iso_ms(s["first_ms"]),
                "last_ts": iso_ms(s["last_ms"]),
                "prompts": s["prompts"],
                "prompt_digest": s["prompt_digest"],
            })
        totals["cost_usd"] = usd(cost)
        totals["unpriced_tokens"] = unpriced
        return sessions, totals


def build(
    *,
    commit: str,
    tree: str,
    parents: Iterable[str],
    author: str,
    committed_s: int,
    claimed: list[Claimed],
    prompts: dict[tuple[str, str], tuple[int, str | None]],
    carried: list[dict[str, Any]],
    carried_digests: list[str],
    pricing: str,
    version: str,
) -> dict[str, Any]:
    """The unsigned receipt for a commit: its own claimed requests plus what it carries.

    ``prompts`` maps (tool, session) to the session's prompt count and digest
    chain up to the commit; ``carried`` are receipts of rewritten commits.
    """
    acc = _Acc()
    windows: list[int] = []
    for c in claimed:
        tokens = {
            "requests": 1,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "cache_creation_tokens": c.cache_creation_tokens,
            "cache_read_tokens": c.cache_read_tokens,
            "reasoning_tokens": c.reasoning_tokens,
            "total_tokens": c.total_tokens,
        }
        unpriced = c.total_tokens if c.cost_nusd is None else 0
        # Log text: a character no reader accepts would make the whole receipt invalid.
        acc.add(c.tool, receipt_text(c.session_id), receipt_text(c.model), tokens, c.cost_nusd, unpriced, c.ts_ms, c.ts_ms)
        windows.append(c.ts_ms)
    for (tool, sid), (count, chain) in prompts.items():
        if (tool, receipt_text(sid)) in acc.sessions:
            acc.prompts(tool, receipt_text(sid), count, chain)
    for old in carried:
        for s in old.get("sessions", []):
            first = parse_iso_ms(s["first_ts"]) or 0
            last = parse_iso_ms(s["last_ts"]) or 0
            for m in s["models"]:
                cost = nusd_of(m["cost_usd"]) if m.get("cost_usd") is not None else None
                acc.add(s["tool"], s["session"], m["model"], {f: int(m[f]) for f in TOKEN_FIELDS}, cost, int(m.get("unpriced_tokens", 0)), first, last)
            acc.prompts(s["tool"], s["session"], int(s.get("prompts", 0)), s.get("prompt_digest"))
        w = old.get("window") or {}
        for k in ("start", "end"):
            ms = parse_iso_ms(w.get(k))
            if ms is not None:
                windows.append(ms)
    sessions, totals = acc.out()
    return {
        "v": VERSION,
        "commit": commit,
        "tree": tree,
        "parents": list(parents),
        "author": author,
        "committed_at": iso_ms(committed_s * 1000),
        "window": {"start": iso_ms(min(windows)), "end": iso_ms(max(windows))} if windows else None,
        "sessions": sessions,
        "totals": totals,
        "pricing": pricing,
        "aispend": version,
        "carried_from": sorted(set(carried_digests)),
    }


def signed_part(receipt: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical receipt without ``sig``."""
    return canonical({k: v for k, v in receipt.items() if k != "sig"}).encode("utf-8")


def signed_bytes(receipt: dict[str, Any], line: str | None = None) -> bytes:
    """:func:`signed_part`, cut from ``line`` when it is known to be the receipt's canonical form
    (verified) instead of serialised again: ``"sig"`` is a top-level key only, and base64 holds
    no quote."""
    if line is not None:
        at = line.find(',"sig":"')
        end = line.find('"', at + 8) if at >= 0 else -1
        if at >= 0 and end >= 0 and line.find(',"sig":"', end) < 0:
            return (line[:at] + line[end + 1 :]).encode("utf-8")
    return signed_part(receipt)


def identity(receipt: dict[str, Any], line: str | None = None) -> str:
    """What a receipt *is*: ``sha256:`` of its signed content. Two lines with one identity are
    one receipt, wherever they appear (whatever bytes carry the signature). ``line``: as for
    :func:`signed_bytes`."""
    return "sha256:" + hashlib.sha256(signed_bytes(receipt, line)).hexdigest()
