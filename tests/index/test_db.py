"""The index's connection settings: page size of a new index, older indexes, NULL binding."""

from __future__ import annotations

import sqlite3

from aispend.index import db
from aispend.paths import index_path
from tests.logbuilder import Logs, write
from tests.util import run_ingest, totals

T0 = "2026-02-12T14:00:00.000Z"


def test_a_new_index_has_16k_pages_and_wal() -> None:
    conn = db.connect()
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 16384
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION


def test_an_index_made_with_4k_pages_keeps_them_and_still_ingests(logs: Logs) -> None:
    # An index written by an earlier aispend (SQLite's default 4 KiB pages).
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA page_size = 4096")
    old.execute("PRAGMA journal_mode = WAL")
    db.migrate(old)
    old.close()
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", inp=12, out=3)])
    conn, stats = run_ingest()
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert stats.requests_after == 1
    t = totals(conn)
    assert (t["input_tokens"], t["output_tokens"]) == (12, 3)


def test_none_is_stored_as_null(logs: Logs) -> None:
    # Rows bind None through a registered adapter: it must still be SQL NULL, not text.
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", inp=5, out=1)])
    conn, _ = run_ingest()
    types = conn.execute("SELECT typeof(parent_session), typeof(speed), typeof(logged_cost_usd) FROM requests").fetchall()
    assert types == [("null", "null", "null")]
    assert conn.execute("SELECT count(*) FROM requests WHERE parent_session IS NULL").fetchone()[0] == 1


def test_rebuild_of_an_older_index_keeps_its_install_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``ingest --rebuild`` right after an upgrade, before any command moved the rows of an index
    of schema 3 (no ``sync`` column) into the state file: they are kept there, by name."""
    import subprocess
    import sys

    from tests.util import old_index

    old = old_index(index_path(), 3)
    old.execute("INSERT INTO installs (repo, installed_ms, since_ms, trailer) VALUES ('/r/.git', 1, 2, 0)")
    old.close()
    p = subprocess.run([sys.executable, "-m", "aispend", "ingest", "--rebuild"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    new = db.connect()
    assert new.execute("SELECT repo, installed_ms, since_ms, trailer, sync FROM state.installs").fetchall() == [("/r/.git", 1, 2, 0, None)]
    assert new.execute("SELECT count(*) FROM main.sqlite_master WHERE name = 'installs'").fetchone()[0] == 0
