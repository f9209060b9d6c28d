"""The state file: install records, claims and receipts beside the index, ATTACHed to it; moved
out of an index of schema 4 safely; unusable databases recognised and named."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aispend.errors import AispendError
from aispend.index import db
from aispend.paths import index_path, state_path

INSTALLS = [("/a/.git", 10, 20, 0, 1), ("/b/.git", 11, 21, 1, None)]
CLAIMS = [(f"key-{i:03d}", "c" * 40 if i % 2 else "d" * 40, "/a/.git", 100 + i) for i in range(50)]
# Two receipts written in the same millisecond: their order (rowid) must survive the move.
RECEIPTS = [("sha256:" + "2" * 64, "c" * 40, "/a/.git", 500, "line-2"), ("sha256:" + "1" * 64, "d" * 40, "/a/.git", 500, "line-1"),
            ("sha256:" + "0" * 64, "d" * 40, "/b/.git", 400, "line-0")]


def schema_4_index(path: Path) -> None:
    """An index as aispend wrote it at schema 4: install records, claims and receipts inside."""
    from tests.util import old_index

    old = old_index(path, 4)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("BEGIN")
    old.executemany("INSERT INTO installs (repo, installed_ms, since_ms, trailer, sync) VALUES (?, ?, ?, ?, ?)", INSTALLS)
    old.executemany("INSERT INTO claims VALUES (?, ?, ?, ?)", CLAIMS)
    old.executemany("INSERT INTO receipts VALUES (?, ?, ?, ?, ?)", RECEIPTS)
    old.execute("COMMIT")
    old.close()


def moved(conn: sqlite3.Connection) -> None:
    """Every row is in the state file, once, and the index has none of those tables left."""
    assert conn.execute("SELECT repo, installed_ms, since_ms, trailer, sync FROM state.installs ORDER BY repo").fetchall() == INSTALLS
    assert conn.execute("SELECT * FROM state.claims ORDER BY request_key").fetchall() == CLAIMS
    assert conn.execute("SELECT * FROM state.receipts ORDER BY rowid").fetchall() == RECEIPTS
    left = conn.execute("SELECT name FROM main.sqlite_master WHERE name IN ('installs', 'claims', 'receipts')").fetchall()
    assert left == []
    assert conn.execute("PRAGMA main.user_version").fetchone()[0] == db.SCHEMA_VERSION == db.MOVED_TO_STATE
    assert conn.execute("PRAGMA state.user_version").fetchone()[0] == db.STATE_VERSION


def test_a_new_index_has_its_state_file_attached_private_and_in_wal() -> None:
    conn = db.connect()
    files = {name: Path(f) for _, name, f in conn.execute("PRAGMA database_list")}
    assert files == {"main": index_path(), "state": state_path()} and state_path().parent == index_path().parent
    assert conn.execute("PRAGMA state.journal_mode").fetchone()[0] == "wal"
    assert oct(state_path().stat().st_mode & 0o777) == oct(0o600)
    # Unqualified names reach the state file: every query of the code base names them so.
    conn.execute("INSERT INTO installs (repo, installed_ms, since_ms) VALUES ('/r/.git', 1, 2)")
    conn.execute("INSERT INTO claims VALUES ('k', 'c', '/r/.git', 3)")
    assert conn.execute("SELECT count(*) FROM state.installs").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM state.claims").fetchone()[0] == 1
    assert db.read_install("/r/.git") == db.Install(since_ms=2, trailer=False, sync=None)


def test_a_schema_4_index_moves_its_rows_into_the_state_file() -> None:
    schema_4_index(index_path())
    # Before any command migrated it, the hooks' read-only look finds the record in the index.
    assert db.read_install("/a/.git") == db.Install(since_ms=20, trailer=False, sync=True)
    assert not state_path().exists()
    conn = db.connect()
    moved(conn)
    # Reads that name the tables unqualified see the moved rows.
    assert conn.execute("SELECT since_ms FROM installs WHERE repo = '/b/.git'").fetchone() == (21,)
    assert conn.execute("SELECT count(*) FROM claims WHERE commit_sha = ?", ("c" * 40,)).fetchone() == (25,)
    conn.close()
    assert db.read_install("/a/.git") == db.Install(since_ms=20, trailer=False, sync=True)
    assert db.read_install("/b/.git") == db.Install(since_ms=21, trailer=True, sync=None)
    assert db.read_install("/c/.git") is None
    moved(db.connect())  # a second connect changes nothing


def test_a_move_cut_short_between_its_two_commits_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are committed to the state file before the index drops them (two commits: WAL
    commits each file on its own): a failure in between leaves them in both, and the next
    connect finishes the move without doubling anything."""
    schema_4_index(index_path())
    failing = [*db.MIGRATIONS[: db.MOVED_TO_STATE - 1], ["DROP TABLE main.claims", "SELECT no_such_function()"]]
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", failing)
        with pytest.raises(AispendError):
            db.connect()
    both = sqlite3.connect(index_path())
    both.execute("ATTACH DATABASE ? AS state", (str(state_path()),))
    assert both.execute("PRAGMA main.user_version").fetchone()[0] == 4
    assert both.execute("SELECT count(*) FROM main.claims").fetchone()[0] == len(CLAIMS)  # the drop was rolled back
    assert both.execute("SELECT count(*) FROM state.claims").fetchone()[0] == len(CLAIMS)  # the copy was committed
    assert both.execute("SELECT * FROM state.receipts ORDER BY rowid").fetchall() == RECEIPTS
    both.close()
    # Meanwhile the hooks read the state file: the record is there.
    assert db.read_install("/a/.git") == db.Install(since_ms=20, trailer=False, sync=True)
    moved(db.connect())


def test_rows_written_into_the_old_tables_before_the_drop_are_copied_too() -> None:
    """Another (older) aispend writing into the index between the copy and the drop: the drop's
    transaction copies what is missing first and drops only when nothing was."""
    schema_4_index(index_path())
    conn = sqlite3.connect(index_path(), isolation_level=None)
    db._attach_state(conn, state_path())
    with db.transaction(conn):
        for stmt in db.STATE_MIGRATIONS[0]:
            conn.execute(stmt.format(db="state."))
        conn.execute(f"PRAGMA state.user_version = {db.STATE_VERSION}")
        assert db._copy_to_state(conn) == len(INSTALLS) + len(CLAIMS) + len(RECEIPTS)
    conn.execute("INSERT INTO main.claims VALUES ('late', 'e', '/a/.git', 1)")  # the older aispend's claim
    conn.close()
    conn = db.connect()
    assert conn.execute("SELECT commit_sha FROM claims WHERE request_key = 'late'").fetchone() == ("e",)
    assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] == len(CLAIMS) + 1


MIGRATE = "from aispend.index import db; c = db.connect(); print(c.execute('SELECT count(*) FROM claims').fetchone()[0])"


def test_processes_upgrading_at_once_move_the_rows_once() -> None:
    schema_4_index(index_path())
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    assert {o.strip() for o, _ in outs} == {str(len(CLAIMS))}
    moved(db.connect())


def test_a_state_file_from_a_newer_aispend_is_refused() -> None:
    db.connect().close()
    sqlite3.connect(state_path()).execute("PRAGMA user_version = 99")
    with pytest.raises(db.StateUnreadable, match=r"the state file .*state\.sqlite3 was written by a newer aispend \(schema 99"):
        db.connect()


def test_a_state_file_moved_aside_is_made_anew_empty() -> None:
    conn = db.connect()
    conn.execute("INSERT INTO installs (repo, installed_ms, since_ms) VALUES ('/r/.git', 1, 2)")
    conn.close()
    assert not Path(str(state_path()) + "-wal").exists()  # the last connection closed: all in the file
    state_path().rename(str(state_path()) + ".broken")
    conn = db.connect()
    assert conn.execute("SELECT count(*) FROM installs").fetchone()[0] == 0
    assert conn.execute("PRAGMA state.user_version").fetchone()[0] == db.STATE_VERSION


def garbage(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not sqlite" * 1000)


def test_an_unreadable_index_or_state_file_is_named_with_what_to_do() -> None:
    conn = db.connect()
    conn.execute("INSERT INTO installs (repo, installed_ms, since_ms) VALUES ('/r/.git', 1, 2)")
    conn.close()
    garbage(index_path())
    with pytest.raises(db.IndexUnreadable) as e:
        db.connect()
    msg = str(e.value)
    assert msg == (
        f"the index {index_path()} is unreadable (file is not a database); rebuild it from the logs with "
        "'aispend ingest --rebuild' (install records, claims and receipts are kept; commits made meanwhile get their receipts then)"
    )
    assert db.storage_problem(e.value) == msg and db.is_unusable(e.value)
    # The hooks' first look reads only the state file: a damaged index does not hide the record.
    assert db.read_install("/r/.git") == db.Install(since_ms=2, trailer=False, sync=None)
    for suffix in ("", "-wal", "-shm"):
        Path(str(index_path()) + suffix).unlink(missing_ok=True)
    db.connect().close()
    garbage(state_path())
    with pytest.raises(db.StateUnreadable) as e:
        db.connect()
    q = str(state_path())
    assert str(e.value) == (
        f"the state file {q} is unreadable (file is not a database): move it aside (mv {q} {q}.broken), then run "
        "'aispend install' again in each repository, which starts billing anew (receipts already written stay in the notes)"
    )
    assert db.storage_problem(e.value) == str(e.value)
    with pytest.raises(sqlite3.DatabaseError):
        db.read_install("/r/.git")  # the hooks count that as installed: the drain then keeps its queue


def damage_pages(path: Path, keep: int) -> None:
    """Overwrite everything after the first ``keep`` bytes with garbage (a checkpointed file)."""
    data = bytearray(path.read_bytes())
    data[keep:] = bytes((i * 7 + 3) % 251 for i in range(len(data) - keep))
    path.write_bytes(bytes(data))


def test_damage_found_in_the_middle_of_a_query_is_blamed_on_the_right_file() -> None:
    conn = db.connect()
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [(f"k{i}", "x" * 200) for i in range(2000)])
    conn.execute("INSERT INTO installs (repo, installed_ms, since_ms) VALUES ('/r/.git', 1, 2)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    damage_pages(index_path(), db.PAGE_SIZE)  # the schema page is whole: connect() works
    conn = db.connect()
    with pytest.raises(sqlite3.DatabaseError) as e:
        conn.execute("SELECT count(*), max(value) FROM meta").fetchone()
    conn.close()
    assert db.is_unusable(e.value)
    msg = db.storage_problem(e.value)
    assert msg is not None and msg.startswith(f"the index {index_path()} is unreadable (database disk image is malformed)")
    assert "aispend ingest --rebuild" in msg
    # The same error while the state file is the damaged one: it is named instead.
    garbage(state_path())
    msg = db.storage_problem(e.value)
    assert msg is not None and msg.startswith(f"the state file {state_path()} is unreadable") and "move it aside" in msg


def test_errors_that_waiting_fixes_are_not_unusable() -> None:
    assert not db.is_unusable(sqlite3.OperationalError("database is locked"))
    assert not db.is_unusable(sqlite3.IntegrityError("UNIQUE constraint failed: claims.request_key"))
    assert not db.is_unusable(ValueError("database disk image is malformed"))
    assert db.storage_problem(sqlite3.OperationalError("database is locked")) is None
    assert db.is_unusable(AispendError("x")) is False


def test_rebuild_leaves_the_state_file_alone_even_when_the_index_is_garbage(tmp_path: Path) -> None:
    from aispend.index.ingest import rebuild

    conn = db.connect()
    conn.execute("INSERT INTO installs (repo, installed_ms, since_ms) VALUES ('/r/.git', 1, 2)")
    conn.close()
    before = state_path().read_bytes()
    garbage(index_path())
    rebuild(index_path())
    assert not index_path().exists() and state_path().read_bytes() == before
    assert db.connect().execute("SELECT repo, since_ms FROM installs").fetchall() == [("/r/.git", 2)]


def test_rebuild_refuses_to_start_with_an_unreadable_state_file() -> None:
    from aispend.index.ingest import rebuild

    db.connect().close()
    garbage(state_path())
    with pytest.raises(db.StateUnreadable, match="move it aside"):
        rebuild(index_path())
    assert index_path().exists()  # nothing deleted
    assert os.stat(index_path()).st_size > 0
