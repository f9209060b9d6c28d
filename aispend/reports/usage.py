"""``aispend usage``: token and dollar totals from the local index, grouped.

The JSON shape is a contract (docs/usage-json.md)::

    {"since", "until", "tz", "group_by",
     "rows": [{"key", <fields>}], "totals": {<fields>}}

with fields ``requests, input_tokens, output_tokens, cache_creation_tokens,
cache_read_tokens, reasoning_tokens, total_tokens, cost_usd, unpriced_tokens,
unpriced_models``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from aispend.index.db import TOKEN_FIELDS
from aispend.reports.timerange import DayRange, zone_name
from aispend.text import counted

GROUPS = ("day", "week", "month", "model", "session", "repo", "tool")
TOOLS = ("claude", "codex")
FIELDS = (*TOKEN_FIELDS, "cost_usd", "unpriced_tokens", "unpriced_models")
_BUCKET_MS = 15 * 60 * 1000  # every UTC offset in use is a multiple of 15 minutes


@dataclass
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_nusd: int = 0
    unpriced_tokens: int = 0
    unpriced_models: set[str] = field(default_factory=set)

    def add(self, other: "Totals") -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_tokens += other.cache_creation_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.total_tokens += other.total_tokens
        self.cost_nusd += other.cost_nusd
        self.unpriced_tokens += other.unpriced_tokens
        self.unpriced_models |= other.unpriced_models

    @property
    def cost_usd(self) -> Decimal:
        return (Decimal(self.cost_nusd) / 1_000_000_000).quantize(Decimal("0.000001"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": float(self.cost_usd),
            "unpriced_tokens": self.unpriced_tokens,
            "unpriced_models": sorted(self.unpriced_models),
        }


@dataclass
class UsageRow:
    key: str
    totals: Totals
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class UsageReport:
    range: DayRange
    group_by: str
    tool: str | None
    rows: list[UsageRow]
    totals: Totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.range.since.isoformat() if self.range.since else None,
            "until": self.range.until.isoformat() if self.range.until else None,
            "tz": zone_name(self.range.tz),
            "group_by": self.group_by,
            "tool": self.tool,
            "rows": [{"key": r.key, **r.totals.as_dict(), **r.extra} for r in self.rows],
            "totals": self.totals.as_dict(),
        }


_SUMS = (
    "sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), "
    "sum(cache_read_tokens), sum(reasoning_tokens), sum(total_tokens), sum(cost_nusd)"
)
#: The roll-up's column for each grouping (time groupings use its 15-minute bucket).
_KEYS = {"model": "model_key", "tool": "tool", "repo": "cwd_key", "session": "session_id"}


def usage_report(
    conn: sqlite3.Connection, rng: DayRange, group_by: str = "day", tool: str | None = None
) -> UsageReport:
    """Aggregate the index over ``rng`` into rows keyed by ``group_by``.

    Reads the roll-up the index keeps per 15 minutes (every UTC offset in use is
    a multiple of 15 minutes, so local days are whole buckets), not the requests.
    """
    if group_by not in GROUPS:
        raise ValueError(group_by)
    where = ["requests > 0"]  # roll-up rows
    spans = []  # the same range on the requests themselves
    params: list[Any] = []
    span_params: list[Any] = []
    lo, hi = rng.bounds_ms()
    if lo is not None:
        where.append("bucket >= ?")
        params.append(lo // _BUCKET_MS)
        spans.append("ts_ms >= ?")
        span_params.append(lo)
    if hi is not None:
        where.append("bucket < ?")
        params.append(-(-hi // _BUCKET_MS))
        spans.append("ts_ms < ?")
        span_params.append(hi)
    if tool:
        where.append("tool = ?")
        params.append(tool)
        spans.append("tool = ?")
        span_params.append(tool)
    cond = " AND ".join(where)
    if group_by in ("day", "week", "month"):
        column = "bucket"
        keyfn: Callable[[Any], str] = _time_key(group_by, rng)
    else:
        column = _KEYS[group_by]
        keyfn = _RepoResolver() if group_by == "repo" else str
    groups: dict[str, Totals] = {}
    sql = f"SELECT {column}, unpriced, {_SUMS} FROM rollup WHERE {cond} GROUP BY 1, 2"
    for rec in conn.execute(sql, params):
        n = [int(v or 0) for v in rec[2:10]]
        t = Totals(n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7])
        if rec[1]:
            t.unpriced_tokens = t.total_tokens
            t.unpriced_models.add(rec[1])
        _merge(groups, keyfn(rec[0]), t)
    extras: dict[str, dict[str, Any]] = {}
    if group_by == "session" and groups:
        sql = "SELECT session_id, min(tool), min(ts_ms), max(ts_ms) FROM requests"
        if spans:
            sql += " WHERE " + " AND ".join(spans)
        for sid, first_tool, first, last in conn.execute(sql + " GROUP BY 1", span_params):
            extras[sid] = {"tool": first_tool, "first": _iso(first, rng), "last": _iso(last, rng)}
    rows = [UsageRow(k, v, extras.get(k, {})) for k, v in groups.items()]
    if group_by in ("day", "week", "month", "session"):
        rows.sort(key=lambda r: (r.extra.get("first", ""), r.key) if group_by == "session" else r.key)
    else:
        rows.sort(key=lambda r: (-r.totals.cost_nusd, -r.totals.total_tokens, r.key))
    total = Totals()
    for r in rows:
        total.add(r.totals)
    return UsageReport(rng, group_by, tool, rows, total)


def empty_hint(conn: sqlite3.Connection, rng: DayRange, tool: str | None = None) -> str:
    """What to tell someone whose report came out empty."""
    where, params = ("WHERE tool = ?", [tool]) if tool else ("", [])
    n, first, last = conn.execute(f"SELECT count(*), min(ts_ms), max(ts_ms) FROM requests {where}", params).fetchone()
    if not n:
        from aispend.sources import claude, codex

        return (
            "No usage found: no Claude Code logs under "
            + (", ".join(str(r) for r in claude.roots()) or "~/.claude or ~/.config/claude (or $CLAUDE_CONFIG_DIR)")
            + f" and no Codex rollouts under {codex.root_dir()} (or $CODEX_HOME) hold any."
        )
    span = f"{_iso(first, rng)[:10]} to {_iso(last, rng)[:10]}"
    return f"No usage in this range; the index holds {counted(n, 'request')} from {span} (try --since with an earlier date)."


def _merge(groups: dict[str, Totals], key: str, t: Totals) -> None:
    cur = groups.get(key)
    if cur is None:
        groups[key] = t
    else:
        cur.add(t)


def _iso(ms: int, rng: DayRange) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(rng.tz).isoformat(timespec="seconds")


def _time_key(group_by: str, rng: DayRange) -> Callable[[Any], str]:
    cache: dict[int, str] = {}
    tz = rng.tz

    def key(bucket: int) -> str:
        k = cache.get(bucket)
        if k is None:
            d: date = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, timezone.utc).astimezone(tz).date()
            if group_by == "week":
                d = d - timedelta(days=d.weekday())  # the week's Monday
                k = d.isoformat()
            elif group_by == "month":
                k = d.strftime("%Y-%m")
            else:
                k = d.isoformat()
            cache[bucket] = k
        return k

    return key


class _RepoResolver:
    """Map a session's cwd to the repository containing it (nearest ``.git``)."""

    def __init__(self) -> None:
        self.cache: dict[str, str] = {}

    def __call__(self, cwd: str) -> str:
        hit = self.cache.get(cwd)
        if hit is not None:
            return hit
        repo = cwd
        p = cwd
        while p and p != os.path.dirname(p):
            if os.path.exists(os.path.join(p, ".git")):
                repo = p
                break
            p = os.path.dirname(p)
        self.cache[cwd] = repo
        return repo
