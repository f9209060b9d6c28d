"""The command line: help, version, the usage JSON contract, errors and crash logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aispend import __version__
from aispend.cli import main
from tests.logbuilder import Logs, write


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else (0 if exc.value.code is None else 1)
    return code, out, err


@pytest.fixture
def history(logs: Logs) -> Logs:
    """Two days of Claude usage, one day of Codex usage, and an unpriced model."""
    write(
        logs.claude_file("c-1", cwd="/work/alpha"),
        [
            Logs.user("2026-02-27T09:00:00.000Z", "hello", session="c-1", cwd="/work/alpha"),
            Logs.assistant("2026-02-27T09:00:01.000Z", session="c-1", cwd="/work/alpha", inp=1000, out=100, cw=2000, cr=10000),
            Logs.assistant("2026-02-28T23:30:00.000Z", session="c-1", cwd="/work/alpha", inp=500, out=50),
            Logs.assistant("2026-02-28T23:40:00.000Z", session="c-1", cwd="/work/alpha", model="mystery-model", inp=7, out=3),
        ],
    )
    write(
        logs.codex_file("2026-01-15T10-00-00-cx-1", day="2026/01/15"),
        [
            Logs.codex_meta("2026-01-15T10:00:00.000Z", "cx-1", cwd="/work/beta"),
            Logs.codex_turn("2026-01-15T10:00:01.000Z", "gpt-5.3-codex", cwd="/work/beta"),
            Logs.codex_tokens("2026-01-15T10:00:05.000Z", (1000, 400, 200, 50)),
        ],
    )
    return logs


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "--version") == (0, f"aispend {__version__}\n", "")


@pytest.mark.parametrize("args", [[], ["ingest"], ["usage"], ["pricing"], ["pricing", "show"], ["pricing", "update"], ["pricing", "reset"]])
def test_help_everywhere(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, _ = cli(capsys, *args, "--help")
    assert code == 0
    assert "Usage: aispend" in out
    assert "--help" in out


def test_usage_json_contract(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    code, out, err = cli(capsys, "usage", "--json", "--tz", "UTC")
    assert (code, err) == (0, "")
    d = json.loads(out)
    assert {"since", "until", "tz", "group_by", "rows", "totals"} <= set(d)
    assert (d["since"], d["until"], d["tz"], d["group_by"]) == (None, None, "UTC", "day")
    fields = ["requests", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "reasoning_tokens", "total_tokens", "cost_usd", "unpriced_tokens", "unpriced_models"]
    assert [r["key"] for r in d["rows"]] == ["2026-01-15", "2026-02-27", "2026-02-28"]
    for r in d["rows"]:
        assert set(fields) <= set(r)
    t = d["totals"]
    assert (t["requests"], t["input_tokens"], t["cache_read_tokens"], t["output_tokens"], t["reasoning_tokens"]) == (4, 1000 + 500 + 7 + 600, 10000 + 400, 100 + 50 + 3 + 200, 50)
    assert t["cache_creation_tokens"] == 2000
    assert t["total_tokens"] == t["input_tokens"] + t["cache_creation_tokens"] + t["cache_read_tokens"] + t["output_tokens"]
    # claude: 1000*3 + 100*15 + 2000*3.75 + 10000*0.3 + 500*3 + 50*15 = 17250 micro; codex: 600*1.75 + 400*0.175 + 200*14 = 3920 micro
    assert t["cost_usd"] == 0.02117
    assert (t["unpriced_tokens"], t["unpriced_models"]) == (10, ["mystery-model"])


def test_since_is_inclusive_whole_days_in_the_time_zone(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    # AISPEND_NOW is 2026-03-01T12:00Z: 2d = 2026-02-28 and 2026-03-01.
    d = json.loads(cli(capsys, "usage", "--json", "--since", "2d", "--tz", "UTC")[1])
    assert (d["since"], [r["key"] for r in d["rows"]]) == ("2026-02-28", ["2026-02-28"])
    # In Tokyo the 23:30Z requests fall on 2026-03-01.
    d = json.loads(cli(capsys, "usage", "--json", "--since", "2026-03-01", "--until", "2026-03-01", "--tz", "Asia/Tokyo")[1])
    assert [r["key"] for r in d["rows"]] == ["2026-03-01"]
    assert d["totals"]["requests"] == 2
    d = json.loads(cli(capsys, "usage", "--json", "--since", "20260227", "--until", "2026-02-27", "--tz", "UTC")[1])
    assert d["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("week", ["2026-01-12", "2026-02-23"]),
        ("month", ["2026-01", "2026-02"]),
        ("tool", ["claude", "codex"]),
        ("session", ["cx-1", "c-1"]),
        ("repo", ["/work/alpha", "/work/beta"]),
        ("model", ["claude-sonnet-4-5-20250929", "gpt-5.3-codex", "mystery-model"]),
    ],
)
def test_group_by(capsys: pytest.CaptureFixture[str], history: Logs, by: str, keys: list[str]) -> None:
    d = json.loads(cli(capsys, "usage", "--json", "--by", by, "--tz", "UTC")[1])
    assert [r["key"] for r in d["rows"]] == keys


def test_empty_range_says_what_the_index_holds(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    code, out, _ = cli(capsys, "usage", "--since", "2026-06-01", "--tz", "UTC")
    assert code == 0
    assert " ".join(out.split()) == "No usage in this range; the index holds 4 requests from 2026-01-15 to 2026-02-28 (try --since with an earlier date)."


def test_tool_filter_and_csv(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    code, out, _ = cli(capsys, "usage", "--csv", "--tool", "codex", "--by", "model")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "key,requests,input_tokens,output_tokens,cache_creation_tokens,cache_read_tokens,reasoning_tokens,total_tokens,cost_usd,unpriced_tokens,unpriced_models"
    assert lines[1] == "gpt-5.3-codex,1,600,200,0,400,50,1200,0.00392,0,"


def test_table_shows_totals_and_the_unpriced_note(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    code, out, _ = cli(capsys, "usage", "--by", "model")
    assert code == 0
    assert "gpt-5.3-codex" in out and "Total" in out
    assert "$0.02*" in out
    assert "10 tokens have no price" in out and "mystery-model" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["usage", "--by", "hour"], "--by 'hour': choose one of day, week, month, model, session, repo, tool"),
        (["usage", "--since", "yesterday-ish"], "--since 'yesterday-ish': expected a date (YYYY-MM-DD) or a span such as 30d, 4w"),
        (["usage", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["usage", "--tool", "gemini"], "--tool 'gemini': choose one of claude, codex"),
        (["usage", "--since", "2026-02-10", "--until", "2026-02-01"], "--since 2026-02-10 is after --until 2026-02-01"),
        (["pricing", "show", "no-such-model"], "no price for 'no-such-model'"),
        (["pricing", "update", "--from", "/nonexistent/prices.json"], "cannot read /nonexistent/prices.json"),
    ],
)
def test_expected_errors_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 1
    assert err.startswith("aispend: error: ") and message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["usage", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'."),
        (["usage", "--by"], "Option '--by' requires an argument."),
        (["pricing", "update"], "Missing option '--from'"),
    ],
)
def test_command_line_mistakes_exit_2_without_a_crash_log(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    from aispend.paths import crash_dir

    code, _, err = cli(capsys, *args)
    assert code == 2
    assert f"Error: {message}" in err
    assert not crash_dir().exists()


def test_data_dir_that_is_a_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    monkeypatch.setenv("AISPEND_HOME", str(f))
    code, _, err = cli(capsys, "ingest")
    assert code == 1 and err.startswith("aispend: error: cannot create the data directory") and err.count("\n") == 1


def test_corrupt_index_says_so_and_rebuild_fixes_it(capsys: pytest.CaptureFixture[str], history: Logs) -> None:
    from aispend.paths import index_path

    assert cli(capsys, "ingest")[0] == 0
    index_path().write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(index_path()) + suffix).unlink(missing_ok=True)
    code, _, err = cli(capsys, "usage")
    assert code == 1 and "aispend ingest --rebuild" in err
    assert cli(capsys, "ingest", "--rebuild")[0] == 0
    d = json.loads(cli(capsys, "usage", "--json")[1])
    assert d["totals"]["requests"] == 4


def test_newer_index_schema_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    from aispend.paths import index_path

    index_path().parent.mkdir(parents=True)
    sqlite3.connect(index_path()).execute("PRAGMA user_version = 99")
    code, _, err = cli(capsys, "usage")
    assert code == 1 and "written by a newer aispend (schema 99" in err


def test_unexpected_error_writes_a_crash_log(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, history: Logs) -> None:
    from aispend.reports import usage as usage_mod

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(usage_mod, "usage_report", broken)
    code, _, err = cli(capsys, "usage")
    assert code == 3
    assert err.startswith("aispend: unexpected error: RuntimeError: boom; details in ")
    path = Path(err.split("details in ", 1)[1].splitlines()[0])
    text = path.read_text()
    assert "Traceback" in text and "RuntimeError: boom" in text and f"aispend {__version__}" in text
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)  # only its owner reads it


def test_ingest_verbose_lists_skipped_lines(capsys: pytest.CaptureFixture[str], logs: Logs) -> None:
    path = write(logs.claude_file("s1"), [b'{"message":{"usage":{"input_tokens":', Logs.assistant("2026-02-12T14:00:00.000Z", session="s1")])
    code, out, err = cli(capsys, "ingest", "--verbose")
    assert code == 0
    assert "1 bad line skipped" in out
    assert f"skipped {path}:0: bad json" in err


def test_real_subprocess_end_to_end(history: Logs) -> None:
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "aispend", "usage", "--json", "--by", "tool"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert {r["key"]: r["requests"] for r in d["rows"]} == {"claude": 3, "codex": 1}
    p = subprocess.run([sys.executable, "-m", "aispend", "ingest"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "0 new requests, 4 in the index" in p.stdout


def test_through_clirunner(history: Logs) -> None:
    from typer.testing import CliRunner

    from aispend.cli import app

    result = CliRunner().invoke(app, ["usage", "--json", "--by", "month", "--tz", "UTC"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert [(r["key"], r["requests"]) for r in d["rows"]] == [("2026-01", 1), ("2026-02", 3)]


def test_progress_bar_only_for_long_ingests() -> None:
    from io import StringIO

    from rich.console import Console

    from aispend.cli import common

    console = Console(file=StringIO(), force_terminal=True, width=100)
    factory = common._progress(console)
    assert factory(10 << 20) is None  # quick: silent
    advance = factory(100 << 20)
    assert advance is not None
    advance(60 << 20, 0)
    advance(40 << 20, 0)
    assert common._progress_bar is not None and common._progress_bar.finished
    assert "indexing logs" in console.file.getvalue()
