"""Small helpers shared by tests: ingest the temp HOME's logs and report on them."""

from __future__ import annotations

import sqlite3
from typing import Any

from aispend import sources
from aispend.index import db
from aispend.index.ingest import IngestStats, ingest
from aispend.pricing.table import load
from aispend.reports.timerange import day_range
from aispend.reports.usage import UsageReport, usage_report


def run_ingest(workers: int = 1) -> tuple[sqlite3.Connection, IngestStats]:
    conn = db.connect()
    return conn, ingest(conn, sources.all_sources(), load(), workers=workers)


def report(conn: sqlite3.Connection, by: str = "day", tool: str | None = None, since: str | None = None, until: str | None = None, tz: str = "UTC") -> UsageReport:
    return usage_report(conn, day_range(since, until, tz), by, tool)


def totals(conn: sqlite3.Connection, tool: str | None = None) -> dict[str, Any]:
    return report(conn, "model", tool).totals.as_dict()


def rows(conn: sqlite3.Connection, by: str, tool: str | None = None, tz: str = "UTC") -> dict[str, dict[str, Any]]:
    return {r.key: r.totals.as_dict() for r in report(conn, by, tool, tz=tz).rows}


def nusd(*parts: tuple[int, str]) -> int:
    """Exact nano-dollars of sum(tokens x USD-per-million)."""
    from decimal import Decimal

    return int(sum(Decimal(t) * Decimal(p) for t, p in parts) * 1000)


def old_index(path: Any, version: int) -> sqlite3.Connection:
    """An index as an older aispend left it: the first ``version`` migrations applied, nothing else
    (an autocommit connection to it, for the test to fill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(path, isolation_level=None)
    for i, stmts in enumerate(db.MIGRATIONS[:version]):
        for stmt in stmts:
            old.execute(stmt)
        old.execute(f"PRAGMA user_version = {i + 1}")
    return old
