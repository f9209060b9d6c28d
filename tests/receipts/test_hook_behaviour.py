"""The hooks' manners: the message preview, trailers, the time budget, a busy index, concurrent claims."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend, at, git
from tests.logbuilder import Logs



def commit_with_editor(r: Repo, tmp_path: Path, when: str) -> str:
    """Commit through a real editor step: the 'editor' saves what it was shown."""
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncp "$1" {seen}\nprintf "edited subject\\n" > "$1.new"\ncat "$1" >> "$1.new"\nmv "$1.new" "$1"\n')
    editor.chmod(0o755)
    (r.path / "e.txt").write_text(when)
    r.git("add", "e.txt")
    r.git("commit", "-q", env={**at(when), "GIT_EDITOR": str(editor)})
    return seen.read_text()


def test_editor_shows_what_the_commit_will_carry_and_git_strips_it(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1", cr=9000)
    shown = commit_with_editor(r, tmp_path, "2026-03-01T09:30:00Z")
    assert "# aispend: this commit will carry $0.0132 (1 session, 10.5k tokens)\n" in shown
    assert "#   models: claude-sonnet-4-5-20250929\n" in shown
    assert "#   cache hits: 90% of input tokens\n" in shown
    assert r.git("log", "-1", "--format=%B").strip() == "edited subject"
    assert len(r.receipts()) == 1


def test_trailer_mode(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install("--trailer")
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("with trailer", "2026-03-01T09:30:00Z")
    parsed = r.git("log", "-1", "--format=%B").strip()
    assert parsed.splitlines()[0] == "with trailer"
    trailers = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=parsed + "\n", capture_output=True, text=True, cwd=r.path
    ).stdout
    assert trailers == "AI-Spend: $0.0105 (1 session, 1.5k tokens)\n"


def test_no_editor_no_trailer_leaves_the_message_alone(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("just this", "2026-03-01T09:30:00Z")
    assert r.git("log", "-1", "--format=%B").strip() == "just this"


@pytest.mark.parametrize("foreground", [False, True])
def test_a_receipt_waits_for_every_log_line_whatever_the_time_budget(tmp_path: Path, spend: Spend, foreground: bool) -> None:
    """The time budget bounds the wait of a commit, never what its receipt holds: a drain in the
    background reads every log line before it claims; one in the foreground (AISPEND_HOOK_SYNC)
    that runs out of time hands the entry to one in the background."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    for i in range(5):
        spend.claude(r.path, f"2026-03-01T09:1{i}:00Z", f"s{i}")
    env = {"AISPEND_HOOK_BUDGET": "-1", **({"AISPEND_HOOK_SYNC": "1"} if foreground else {})}
    r.commit("no time to read", "2026-03-01T09:30:00Z", env=env)
    assert [s["session"] for s in r.receipts()[0]["sessions"]] == ["s0", "s1", "s2", "s3", "s4"]
    spend.claude(r.path, "2026-03-01T09:35:00Z", "s5")
    r.commit("next", "2026-03-01T09:40:00Z", env=env)
    assert [s["session"] for s in r.receipts()[0]["sessions"]] == ["s5"]
    if foreground:
        assert "receipts left to a drain in the background" in (Path(os.environ["AISPEND_HOME"]) / "hooks.log").read_text()


def test_busy_index_leaves_the_commit_queued_and_the_next_commit_catches_up(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    db = Path(os.environ["AISPEND_HOME"]) / "index.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        first = r.commit("while busy", "2026-03-01T09:30:00Z", env={"AISPEND_HOOK_BUSY_WAIT": "0.2"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.receipts(first) == []
    queue = r.path / ".git" / "aispend-queue"
    [entry] = [p for p in queue.iterdir() if p.name.endswith(".post-commit")]
    assert f"head={first}\n" in entry.read_text()
    log = (Path(os.environ["AISPEND_HOME"]) / "hooks.log").read_text()
    assert "index unavailable" in log
    spend.claude(r.path, "2026-03-01T09:35:00Z", "s2")
    second = r.commit("later", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in r.receipts(first)[0]["sessions"]] == ["s1"]
    assert [s["session"] for s in r.receipts(second)[0]["sessions"]] == ["s2"]
    assert [p.name for p in queue.iterdir() if p.name[0].isdigit()] == []


def test_commits_in_quick_succession_keep_their_own_usage(tmp_path: Path, spend: Spend) -> None:
    """The background drains must not let a later commit claim an earlier one's usage."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    shas = []
    for i in range(5):
        spend.claude(r.path, f"2026-03-01T09:{10 + i * 10}:00Z", f"s{i}")
        (r.path / f"q{i}").write_text(str(i))
        git(r.path, "add", f"q{i}")
        # git itself, not Repo.commit: no waiting for the drain between commits
        git(r.path, "commit", "-q", "-m", f"c{i}", env=at(f"2026-03-01T09:{15 + i * 10}:00Z"))
        shas.append(r.head())
    # The commit itself stays quiet: nothing from the hooks on the terminal.
    (r.path / "last").write_text("x")
    git(r.path, "add", "last")
    p = subprocess.run(["git", "commit", "-q", "-m", "last"], cwd=r.path, capture_output=True, text=True,
                       env={**os.environ, **at("2026-03-01T10:30:00Z")})
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    r.settle()
    for i, sha in enumerate(shas):
        assert [s["session"] for s in r.receipts(sha)[0]["sessions"]] == [f"s{i}"]


CLAIMER = """
import sys
from pathlib import Path
from aispend import attribution
from aispend.index import db
conn = db.connect()
scope = attribution.Scope(repo="r", worktree=Path(sys.argv[1]), branch="main", since_ms=0, until_ms=10**13)
got = attribution.claim(conn, scope, sys.argv[2])
print(len(got))
"""


def test_concurrent_claims_never_take_the_same_request(tmp_path: Path, spend: Spend) -> None:
    work = tmp_path / "w"
    for i in range(300):
        spend.claude(work, f"2026-03-01T09:{i // 60:02d}:{i % 60:02d}Z", f"s{i % 7}")
    from tests.util import run_ingest

    run_ingest()[0].close()
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(work), sha], stdout=subprocess.PIPE, text=True)
        for sha in ("a" * 40, "b" * 40, "c" * 40)
    ]
    counts = [int(p.communicate()[0]) for p in procs]
    assert sum(counts) == 300
    conn = sqlite3.connect(Path(os.environ["AISPEND_HOME"]) / "state.sqlite3")
    rows = conn.execute("SELECT request_key, commit_sha FROM claims").fetchall()
    assert len(rows) == len({k for k, _ in rows}) == 300


def test_rebuild_keeps_claims_so_nothing_is_billed_twice(tmp_path: Path, spend: Spend) -> None:
    from tests.gitutil import aispend

    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("c1", "2026-03-01T09:20:00Z")
    out = aispend(r.path, "ingest", "--rebuild").stdout
    assert "1 new request, 1 in the index" in out
    r.commit("c2", "2026-03-01T09:30:00Z")
    assert r.receipts() == []
    st = aispend(r.path, "status", "--json", env=at("2026-03-01T09:31:00Z")).stdout
    assert '"billing_since": "2026-03-01T09:00:00.000Z"' in st


def test_hooks_can_be_switched_off_for_one_command(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("unbilled", "2026-03-01T09:20:00Z", env={"AISPEND_HOOKS": "0"})
    assert r.receipts() == []
    assert not (r.path / ".git" / "aispend-queue").exists()
    r.commit("billed", "2026-03-01T09:30:00Z")
    assert [s["session"] for s in r.receipts()[0]["sessions"]] == ["s1"]


def test_the_hook_path_imports_nothing_heavy() -> None:
    code = (
        "import sys, aispend.hookrun, aispend.index.ingest, aispend.attribution, aispend.receipts.signing, "
        "aispend.notes.store, aispend.receipts.verify, aispend.sources.claude, aispend.sources.codex; "
        "print(' '.join(sorted(m for m in ('typer', 'rich', 'pydantic', 'pygit2', 'click') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_two_worktrees_committing_at_the_same_moment(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    wt = tmp_path / "wt"
    r.git("worktree", "add", "-q", "-b", "side", str(wt))
    other = Repo(wt)
    for i in range(5):
        spend.claude(r.path, f"2026-03-01T09:1{i}:00Z", f"main-{i}", branch="main")
        spend.claude(wt, f"2026-03-01T09:1{i}:30Z", f"side-{i}", branch="side")
    for repo_ in (r, other):
        (repo_.path / "now.txt").write_text(repo_.path.name)
        git(repo_.path, "add", "now.txt")
    env = {**os.environ, **at("2026-03-01T09:30:00Z")}
    procs = [subprocess.Popen(["git", "commit", "-q", "-m", "same moment"], cwd=p.path, env=env) for p in (r, other)]
    assert [p.wait() for p in procs] == [0, 0]
    [mine] = r.receipts()
    [theirs] = other.receipts()
    assert sorted(s["session"] for s in mine["sessions"]) == [f"main-{i}" for i in range(5)]
    assert sorted(s["session"] for s in theirs["sessions"]) == [f"side-{i}" for i in range(5)]
    conn = sqlite3.connect(Path(os.environ["AISPEND_HOME"]) / "state.sqlite3")
    keys = [k for (k,) in conn.execute("SELECT request_key FROM claims")]
    assert len(keys) == len(set(keys)) == 10


def test_a_key_others_can_read_is_not_used_until_fixed(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    key = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519"
    key.chmod(0o644)
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    first = r.commit("with a loose key", "2026-03-01T09:20:00Z")
    assert r.receipts(first) == []
    log = (Path(os.environ["AISPEND_HOME"]) / "hooks.log").read_text()
    assert f"has mode 0644: readable by group and others; aispend will not sign with it: run chmod 600 {key}" in log
    st = r.aispend("status").stdout
    assert "mode 0644: readable by group and others" in st
    key.chmod(0o600)
    spend.claude(r.path, "2026-03-01T09:30:00Z", "s2")
    second = r.commit("key fixed", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in r.receipts(first)[0]["sessions"]] == ["s1"]  # kept in the queue, then written
    assert [s["session"] for s in r.receipts(second)[0]["sessions"]] == ["s2"]
