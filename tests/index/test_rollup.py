"""The roll-up the index keeps for reports always equals an aggregate over the requests:
through inserts, replacements by larger copies, re-pricing and deletions of replaced files."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest

from aispend.index.reprice import reprice
from aispend.pricing.table import PricingTable, load
from aispend.reports.usage import GROUPS
from tests.logbuilder import Logs, write
from tests.util import report, run_ingest

UNPRICED_LABEL = (
    "CASE WHEN cost_nusd IS NULL THEN coalesce(model, '(no model)') || "
    "CASE WHEN price_note = 'fast_unpriced' THEN ' (fast)' ELSE '' END END"
)


def _oracle(conn: sqlite3.Connection, by: str, tz: str) -> dict[str, tuple[Any, ...]]:
    """The report computed directly from the requests table, in Python."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    zone = timezone.utc if tz == "UTC" else ZoneInfo(tz)
    out: dict[str, list[Any]] = {}
    sql = (
        "SELECT ts_ms, tool, session_id, coalesce(priced_model, model, '(no model)'), coalesce(cwd, '(unknown)'), "
        f"input_tokens, output_tokens, cache_write_5m + cache_write_1h, cache_read_tokens, reasoning_tokens, total_tokens, cost_nusd, {UNPRICED_LABEL} "
        "FROM requests"
    )
    for ts, tool, sid, model, cwd, i, o, cw, cr, rs, tot, cost, label in conn.execute(sql):
        day = datetime.fromtimestamp(ts / 1000, timezone.utc).astimezone(zone).date()
        key = {
            "day": day.isoformat(),
            "week": (day - timedelta(days=day.weekday())).isoformat(),
            "month": day.strftime("%Y-%m"),
            "model": model,
            "session": sid,
            "repo": cwd,
            "tool": tool,
        }[by]
        acc = out.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 0, 0, set()])
        for n, v in enumerate((1, i, o, cw, cr, rs, tot, cost or 0, tot if label else 0)):
            acc[n] += v
        if label:
            acc[9].add(label)
    return {k: (*v[:9], sorted(v[9])) for k, v in out.items()}


def _from_report(conn: sqlite3.Connection, by: str, tz: str) -> dict[str, tuple[Any, ...]]:
    rep = report(conn, by, tz=tz)
    return {
        r.key: (
            r.totals.requests, r.totals.input_tokens, r.totals.output_tokens, r.totals.cache_creation_tokens,
            r.totals.cache_read_tokens, r.totals.reasoning_tokens, r.totals.total_tokens, r.totals.cost_nusd,
            r.totals.unpriced_tokens, sorted(r.totals.unpriced_models),
        )
        for r in rep.rows
    }


def _check(conn: sqlite3.Connection) -> None:
    for by in GROUPS:
        for tz in ("UTC", "Asia/Kolkata"):
            assert _from_report(conn, by, tz) == _oracle(conn, by, tz), (by, tz)
    assert conn.execute("SELECT count(*) FROM rollup WHERE requests < 0 OR total_tokens < 0").fetchone() == (0,)


def test_rollup_follows_every_change(logs: Logs) -> None:
    day = "2026-02-1{}T{:02d}:{:02d}:00.000Z"
    lines = []
    for n in range(40):
        ts = day.format(n % 3, (n * 7) % 24, (n * 11) % 60)
        model = ["claude-sonnet-4-5-20250929", "claude-opus-4-6", "mystery-model", "claude-opus-4-8"][n % 4]
        lines.append(Logs.assistant(ts, session=f"s{n % 5}", msg_id=f"msg_{n}", inp=n + 1, out=2 * n, cr=100 * n, cw=n, cwd=f"/work/r{n % 2}", model=model, speed="fast" if n % 9 == 0 else None))
    write(logs.claude_file("a"), lines[:25])
    write(logs.codex_file("2026-02-13T10-00-00-cx"), [Logs.codex_meta(day.format(3, 10, 0), "cx"), Logs.codex_turn(day.format(3, 10, 0)), Logs.codex_tokens(day.format(3, 10, 5), (900, 300, 50, 10))])
    conn, _ = run_ingest()
    _check(conn)
    # larger copies replace smaller ones (UPDATE), in another bucket even
    bigger = [dict(x, timestamp=day.format(4, 23, 59), message=dict(x["message"], usage=dict(x["message"]["usage"], output_tokens=999))) for x in lines[:10]]
    write(logs.claude_file("b"), bigger + lines[25:])
    conn, _ = run_ingest()
    _check(conn)
    # re-pricing changes costs and price status (UPDATE of every row)
    snap = dict(load().snapshot)
    snap["models"] = dict(snap["models"], **{"mystery-model": {"provider": "anthropic", "input": "1", "output": "2"}})
    reprice(conn, PricingTable(snap))
    _check(conn)
    # a replaced file: its rows are deleted, then read again (DELETE + INSERT)
    path = logs.claude_file("b")
    tmp = path.with_suffix(".tmp")
    write(tmp, lines[25:30], mode="w")
    os.replace(tmp, path)
    conn, stats = run_ingest()
    assert stats.reread_tools == ["claude"]
    _check(conn)
    assert conn.execute("SELECT sum(requests) FROM rollup").fetchone()[0] == conn.execute("SELECT count(*) FROM requests").fetchone()[0]


@pytest.mark.parametrize("by", GROUPS)
def test_rollup_on_real_logs(shared_fixtures, monkeypatch: pytest.MonkeyPatch, by: str) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(shared_fixtures / "claude"))
    monkeypatch.setenv("CODEX_HOME", str(shared_fixtures / "codex"))
    conn, _ = run_ingest()
    for tz in ("UTC", "America/Los_Angeles"):
        assert _from_report(conn, by, tz) == _oracle(conn, by, tz)
