"""Hostile logs: a 40 MB line, deep nesting, invalid UTF-8, duplicate keys; an unusable data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.logbuilder import Logs, write
from tests.util import run_ingest, totals


def test_hostile_lines_are_skipped_counted_and_the_good_ones_kept(logs: Logs) -> None:
    f = logs.claude_file("s1")
    good = Logs.assistant("2026-03-01T10:00:00Z", session="s1", msg_id="msg_good", inp=1000, out=500)
    write(f, [good])
    with open(f, "ab") as fh:
        big = Logs.assistant("2026-03-01T10:01:00Z", session="s1", msg_id="msg_big", text="x" * (40 << 20))
        fh.write(json.dumps(big).encode() + b"\n")  # over the 32 MiB line limit
        fh.write(b'{"type":"assistant","message":' + b'[' * 100_000 + b']' * 100_000 + b"}\n")  # deep nesting
        fh.write(json.dumps(Logs.assistant("2026-03-01T10:02:00Z", session="s1", msg_id="msg_utf")).encode().replace(b"done", b"d\xff\xfene") + b"\n")
        dup = json.dumps(Logs.assistant("2026-03-01T10:03:00Z", session="s1", msg_id="msg_dup", inp=1000, out=500))
        fh.write(dup.replace('"usage": {', '"usage": {"input_tokens": 999999, ', 1).encode() + b"\n")  # a key twice: the last wins
    write(f, [Logs.assistant("2026-03-01T10:04:00Z", session="s1", msg_id="msg_after", inp=1000, out=500)])
    conn, stats = run_ingest()
    assert stats.counts.get("too_long") == 1
    assert stats.counts.get("bad_json", 0) >= 2  # deep nesting and invalid UTF-8
    t = totals(conn)
    assert t["requests"] == 3  # good, duplicate-key (its last input_tokens: 1000), after
    assert t["input_tokens"] == 3000 and t["output_tokens"] == 1500


def test_a_data_dir_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    p = subprocess.run([sys.executable, "-m", "aispend", "ingest"], capture_output=True, text=True,
                       env={**os.environ, "AISPEND_HOME": str(f)})
    assert p.returncode == 1
    assert p.stderr.strip().startswith("aispend: error: cannot create the data directory") and len(p.stderr.strip().splitlines()) == 1


def test_no_room_or_no_rights_for_the_index_are_one_clear_line(tmp_path: Path) -> None:
    import sqlite3

    from aispend.index.db import storage_problem

    full = sqlite3.connect(tmp_path / "full.db")
    full.execute("CREATE TABLE t (x BLOB)")
    full.execute("PRAGMA max_page_count = 8")  # SQLite's own 'disk is full', for real
    try:
        for _ in range(100):
            full.execute("INSERT INTO t VALUES (zeroblob(4000))")
        raise AssertionError("SQLite never filled up")
    except sqlite3.OperationalError as e:
        msg = storage_problem(e)
    assert msg is not None and msg.startswith("no room left for the index ") and msg.endswith("nothing was lost")
    ro = sqlite3.connect(f"file:{tmp_path / 'full.db'}?mode=ro", uri=True)
    try:
        ro.execute("INSERT INTO t VALUES (1)")
        raise AssertionError("a read-only connection wrote")
    except sqlite3.OperationalError as e:
        msg = storage_problem(e)
    assert msg is not None and "cannot be written" in msg
    assert storage_problem(ValueError("disk is full")) is None  # only SQLite's own errors
