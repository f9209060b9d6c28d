"""File and folder names that are not UTF-8, or full of spaces: read, indexed, reported, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aispend.paths import stored, unstored
from tests.logbuilder import Logs

ONE = 0.0105


def test_stored_paths_round_trip() -> None:
    for p in ("/plain/path.jsonl", "/with %25 percent", os.fsdecode(b"/weird/\xff\xfe name/f.jsonl"), "/\u00e9t\u00e9/x"):
        key = stored(p)
        key.encode("utf-8")  # always valid text for SQLite
        assert unstored(key) == p


def test_non_utf8_and_spaced_names_are_ingested(hermetic: Path) -> None:
    root = os.fsencode(hermetic / ".claude" / "projects")
    weird = os.path.join(root, b"-weird-\xff  name  ")
    os.makedirs(weird)
    line = Logs.assistant("2026-03-01T10:00:00Z", session="s-weird", msg_id="msg_w", cwd="/weird name", inp=1000, out=500)
    no_session = dict(line)
    no_session.pop("sessionId")
    no_session["message"] = {**line["message"], "id": "msg_w2"}
    with open(os.path.join(weird, b"sess \xfe.jsonl"), "wb") as fh:
        fh.write((json.dumps(line) + "\n" + json.dumps(no_session) + "\n").encode())
    env = {**os.environ}
    for _ in range(2):  # a second run reads nothing new and still finds the file by its name
        p = subprocess.run([sys.executable, "-m", "aispend", "usage", "--json", "--since", "2026-03-01", "--tz", "UTC", "--by", "session"],
                           capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert d["totals"]["requests"] == 2 and d["totals"]["cost_usd"] == 2 * ONE
        assert sorted(r["key"] for r in d["rows"]) == ["s-weird", "sess \\xfe"]
    v = subprocess.run([sys.executable, "-m", "aispend", "ingest", "--verbose"], capture_output=True, text=True, env=env)
    assert v.returncode == 0 and "1 log file, 0 read" in v.stdout
