"""Attribution as agents really work (docs/attribution.md): a receipt is a function of the logs
and the moment of the commit, never of when the background writer ran; branches made after the
work; merges; amends; a rebase's edit stops.

Real git, the installed hooks, real background drains (killed with SIGKILL at random moments),
real SQLite.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.gitutil import Repo, Spend, at, git


def sessions(r: Repo, rev: str = "HEAD") -> list[list[str]]:
    """Per receipt line of ``rev``'s note: its sessions."""
    return [[s["session"] for s in rec["sessions"]] for rec in r.receipts(rev)]


def requests_per_commit(r: Repo, shas: list[str]) -> list[int]:
    return [sum(rec["totals"]["requests"] for rec in r.receipts(sha)) for sha in shas]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# -- the moment of the commit ----------------------------------------------------------------


def hold_queue(r: Repo) -> Any:
    """Take the worktree's queue lock (in its own git dir): the hooks' drains find it taken and
    leave every entry queued (a writer that never ran) until the returned file is closed."""
    q = Path(git(r.path, "rev-parse", "--absolute-git-dir").strip()) / "aispend-queue"
    q.mkdir(exist_ok=True)
    lock = open(q / ".lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def agent_session(r: Repo, spend: Spend, n: int, env: dict[str, str] | None = None) -> list[str]:
    """An agent that commits and goes on working: before commit i it logs requests (i+1 of
    them), and right after each commit, a millisecond after the moment the hook ran, the first
    request of the next piece of work."""
    t0 = datetime(2026, 3, 1, 9, 10, tzinfo=timezone.utc)
    shas = []
    for i in range(n):
        base = t0 + timedelta(minutes=10 * i)
        for j in range(i + 1):
            spend.claude(r.path, iso(base + timedelta(seconds=j)), f"work-{i}")
        moment = base + timedelta(minutes=5)
        (r.path / f"f{i}.txt").write_text(str(i))
        git(r.path, "add", f"f{i}.txt")
        git(r.path, "commit", "-q", "-m", f"c{i}", env={**at(iso(moment)), **(env or {})})
        # The agent's next request, logged a millisecond after the commit's moment.
        spend.claude(r.path, iso(moment + timedelta(milliseconds=1)), f"next-{i}")
        shas.append(git(r.path, "rev-parse", "HEAD").strip())
    return shas


def expected(n: int) -> list[int]:
    # commit i: its own i+1 requests, plus the 'next' request logged after commit i-1.
    return [i + 1 + (1 if i else 0) for i in range(n)]


def test_an_agent_that_commits_and_goes_on_working(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    shas = agent_session(r, spend, 6)
    r.settle()
    assert requests_per_commit(r, shas) == expected(6) == [1, 3, 4, 5, 6, 7]
    assert sessions(r, shas[2]) == [["next-1", "work-2"]]


def test_entries_drained_late_give_the_receipts_they_would_have_given_at_once(tmp_path: Path, spend: Spend) -> None:
    """Every drain of the six commits finds the queue taken and leaves: the entries are handled
    only afterwards, in one late drain, with all the later usage already in the logs."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    with hold_queue(r):
        shas = agent_session(r, spend, 6)
        assert len(list((r.path / ".git" / "aispend-queue").glob("0*.post-commit"))) == 6
        assert git(r.path, "notes", "--ref=refs/notes/aispend", "list") == ""  # nothing written yet
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(r.path / ".git")], check=True)
    assert requests_per_commit(r, shas) == expected(6)


def test_drains_killed_at_random_moments_give_the_same_receipts(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    with hold_queue(r):
        shas = agent_session(r, spend, 6)
    gd = r.path / ".git"
    rng = random.Random(16)
    killed = 0
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)])
        time.sleep(rng.uniform(0.02, 0.5))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True)
    assert killed > 0
    assert requests_per_commit(r, shas) == expected(6)
    assert [len(r.receipts(sha)) for sha in shas] == [1] * 6  # no receipt written twice


def test_a_slow_first_ingest_of_a_big_history(tmp_path: Path, spend: Spend) -> None:
    """The first commit after install finds 400 log files never read; its hooks run in the
    foreground with no time budget at all (the worst case): the receipt is handed to a drain in
    the background, which reads everything first, and holds exactly the usage before the commit."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    for k in range(400):
        spend.claude(tmp_path / "elsewhere", f"2026-03-01T09:0{k % 10}:00Z", f"old-{k}")
    spend.claude(r.path, "2026-03-01T09:10:00Z", "mine")
    env = {"AISPEND_HOOK_SYNC": "1", "AISPEND_HOOK_BUDGET": "0"}
    sha = r.commit("first", "2026-03-01T09:20:00Z", env=env)
    spend.claude(r.path, "2026-03-01T09:20:00.001Z", "after")
    assert sessions(r, sha) == [["mine"]]
    sha2 = r.commit("second", "2026-03-01T09:30:00Z", env=env)
    assert sessions(r, sha2) == [["after"]]


def test_real_clock_agent_logging_right_after_each_commit(tmp_path: Path, spend: Spend) -> None:
    """No pinned clock: the moment is the queue entry's, taken by the shim as the hook runs, and
    the agent logs its next request the instant the commit returns."""
    env = {k: v for k, v in os.environ.items() if k not in ("AISPEND_NOW", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    r = Repo.init(tmp_path / "repo")
    subprocess.run([sys.executable, "-m", "aispend", "install"], cwd=r.path, env=env, check=True, capture_output=True)
    time.sleep(0.01)
    shas = []
    for i in range(4):
        for j in range(i + 1):
            spend.claude(r.path, iso(datetime.now(timezone.utc)), f"work-{i}")
        (r.path / f"f{i}.txt").write_text(str(i))
        subprocess.run(["git", "add", f"f{i}.txt"], cwd=r.path, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", f"c{i}"], cwd=r.path, env=env, check=True)
        spend.claude(r.path, iso(datetime.now(timezone.utc)), f"next-{i}")
        shas.append(git(r.path, "rev-parse", "HEAD").strip())
    r.settle()
    assert requests_per_commit(r, shas) == [1, 3, 4, 5]


# -- branches ------------------------------------------------------------------------------


def test_work_on_main_then_a_new_branch_and_commit(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    repo.git("checkout", "-q", "-b", "feat", env=at("2026-03-01T09:15:00Z"))
    spend.claude(repo.path, "2026-03-01T09:16:00Z", "on-feat", branch="feat")
    sha = repo.commit("feature", "2026-03-01T09:20:00Z")
    assert sessions(repo, sha) == [["on-feat", "on-main"]]


def test_main_work_logged_after_the_branch_was_made_stays_for_main(repo: Repo, spend: Spend) -> None:
    repo.git("branch", "feat", env=at("2026-03-01T09:15:00Z"))
    spend.claude(repo.path, "2026-03-01T09:16:00Z", "later-on-main", branch="main")
    repo.git("switch", "-q", "feat", env=at("2026-03-01T09:17:00Z"))
    assert sessions(repo, repo.commit("feature", "2026-03-01T09:20:00Z")) == []
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:21:00Z"))
    assert sessions(repo, repo.commit("main", "2026-03-01T09:22:00Z")) == [["later-on-main"]]


def test_a_chain_of_new_branches_and_a_rename(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    repo.git("switch", "-q", "-c", "a", env=at("2026-03-01T09:11:00Z"))
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "on-a", branch="a")
    repo.git("switch", "-q", "-c", "b", env=at("2026-03-01T09:13:00Z"))
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "on-b", branch="b")
    repo.git("branch", "-m", "b", "c", env=at("2026-03-01T09:15:00Z"))
    spend.claude(repo.path, "2026-03-01T09:16:00Z", "on-c", branch="c")
    sha = repo.commit("all of it", "2026-03-01T09:20:00Z")
    assert sessions(repo, sha) == [["on-a", "on-b", "on-c", "on-main"]]


def test_work_parked_on_a_branch_stays_for_it(repo: Repo, spend: Spend) -> None:
    repo.git("branch", "b", env=at("2026-03-01T09:05:00Z"))
    repo.git("switch", "-q", "-c", "a", env=at("2026-03-01T09:06:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "parked-on-a", branch="a")
    repo.git("switch", "-q", "b", env=at("2026-03-01T09:11:00Z"))  # an unrelated, older branch
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "on-b", branch="b")
    assert sessions(repo, repo.commit("b work", "2026-03-01T09:15:00Z")) == [["on-b"]]
    status = json.loads(repo.aispend("status", "--json").stdout)
    assert status["other_branches"]["requests"] == 1
    repo.git("switch", "-q", "a", env=at("2026-03-01T09:16:00Z"))
    assert sessions(repo, repo.commit("a work", "2026-03-01T09:17:00Z")) == [["parked-on-a"]]


def test_a_branch_deleted_before_its_entry_was_handled_keeps_its_origin(tmp_path: Path, spend: Spend) -> None:
    """The hook keeps the branch's first reflog line: deleting the branch before the (late)
    drain changes nothing."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    gd = r.path / ".git"
    (gd / "aispend-queue").mkdir(exist_ok=True)
    spend.claude(r.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    git(r.path, "switch", "-q", "-c", "feat", env=at("2026-03-01T09:11:00Z"))
    with open(gd / "aispend-queue" / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (r.path / "x.txt").write_text("x")
        git(r.path, "add", "x.txt")
        git(r.path, "commit", "-q", "-m", "feat", env=at("2026-03-01T09:12:00Z"))
        sha = git(r.path, "rev-parse", "HEAD").strip()
        git(r.path, "switch", "-q", "main", env=at("2026-03-01T09:13:00Z"))
        git(r.path, "branch", "-q", "-D", "feat", env=at("2026-03-01T09:13:00Z"))
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True)
    assert sessions(r, sha) == [["on-main"]]


# -- merges ------------------------------------------------------------------------------------


def test_a_merge_commit_made_by_git_merge_claims_the_usage_before_it(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "side", env=at("2026-03-01T09:05:00Z"))
    side = repo.commit("side", "2026-03-01T09:06:00Z")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:07:00Z"))
    repo.commit("main moves on", "2026-03-01T09:08:00Z")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "merging", branch="main")
    repo.git("merge", "-q", "--no-edit", "side", env=at("2026-03-01T09:20:00Z"))
    merge = repo.head()
    assert len(repo.git("log", "-1", "--format=%P").split()) == 2
    assert sessions(repo, merge) == [["merging"]]
    assert repo.receipts(side) == []


def test_a_fast_forward_or_squash_merge_makes_no_receipt_and_the_usage_waits(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "other", env=at("2026-03-01T09:03:00Z"))
    repo.commit("other", "2026-03-01T09:04:00Z")
    repo.git("switch", "-q", "-c", "side", "main", env=at("2026-03-01T09:05:00Z"))
    repo.commit("side", "2026-03-01T09:06:00Z")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:07:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "waiting", branch="main")
    repo.git("merge", "-q", "--ff-only", "side", env=at("2026-03-01T09:20:00Z"))
    assert repo.receipts() == []  # HEAD is side's commit: no receipt of its own
    repo.git("merge", "-q", "--squash", "other", env=at("2026-03-01T09:24:00Z"))
    assert repo.receipts() == []
    sha = repo.commit("squashed", "2026-03-01T09:25:00Z", files={"s.txt": "s"})
    assert sessions(repo, sha) == [["waiting"]]


def test_git_pull_making_a_merge_commit_claims_like_a_commit(tmp_path: Path, spend: Spend) -> None:
    from tests.gitutil import Person, bare_remote

    remote = bare_remote(tmp_path)
    a = Person("ann", tmp_path, remote)
    b = Person("bob", tmp_path, remote)
    a.repo.install()
    b.repo.commit("bob's", "2026-03-01T09:05:00Z")
    b.repo.git("push", "-q", "origin", "main")
    a.repo.commit("ann's", "2026-03-01T09:06:00Z")
    a.spend.claude(a.repo.path, "2026-03-01T09:10:00Z", "before-pull", branch="main")
    a.repo.git("pull", "-q", "--no-rebase", "--no-edit", "origin", "main", env=at("2026-03-01T09:20:00Z"))
    assert len(a.repo.git("log", "-1", "--format=%P").split()) == 2
    assert sessions(a.repo) == [["before-pull"]]


# -- amend and edit stops ------------------------------------------------------------------------


def amend_with_editor(repo: Repo, tmp_path: Path, when: str) -> str:
    """``git commit --amend`` through an editor that keeps what it was shown; that text."""
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncp "$1" {seen}\n')
    editor.chmod(0o755)
    repo.git("commit", "-q", "--amend", env={**at(when), "GIT_EDITOR": str(editor)})
    return seen.read_text()


def test_the_amend_comment_shows_the_total_and_what_is_new(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1", inp=20000, out=10000)
    repo.commit("first", "2026-03-01T09:15:00Z")
    [old] = repo.receipts()
    assert old["totals"]["cost_usd"] == "0.21"
    spend.claude(repo.path, "2026-03-01T09:20:00Z", "s2")
    shown = amend_with_editor(repo, tmp_path, "2026-03-01T09:30:00Z")
    assert "# aispend: this commit will carry $0.2205 (2 sessions, 31.5k tokens): $0.0105 new, $0.2100 carried from the commit it amends\n" in shown
    [new] = repo.receipts()
    assert new["totals"]["cost_usd"] == "0.2205"
    assert [s["session"] for s in new["sessions"]] == ["s1", "s2"]


def test_the_amend_comment_with_nothing_new(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("first", "2026-03-01T09:15:00Z")
    shown = amend_with_editor(repo, tmp_path, "2026-03-01T09:30:00Z")
    assert "# aispend: this commit will carry $0.0105 (1 session, 1.5k tokens): $0.0000 new, $0.0105 carried from the commit it amends\n" in shown
    assert "#   models: claude-sonnet-4-5-20250929\n" in shown  # the details cover what is carried too
    assert "#   cache hits: 0% of input tokens\n" in shown


def test_show_says_a_receipt_is_waiting_rather_than_absent(repo: Repo, spend: Spend) -> None:
    key = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519"
    key.chmod(0o644)
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "u1")
    sha = repo.commit("c1", "2026-03-01T09:11:00Z")
    out = repo.aispend("show").stdout
    assert out.startswith(f"commit {sha[:12]}: receipt not written yet: its hook entry waits in the queue")
    assert json.loads(repo.aispend("show", "--json").stdout)["queued"] is True
    key.chmod(0o600)
    repo.commit("c2", "2026-03-01T09:12:00Z")
    assert json.loads(repo.aispend("show", "--json", sha).stdout)["queued"] is False
    assert "no AI spend receipt" in repo.aispend("show", "HEAD~2").stdout


def rebase_with_edit_stop(repo: Repo, target: str) -> None:
    """Start ``git rebase -i`` that stops to edit ``target`` (a short sha)."""
    script = f"sed -i -e 's/^pick {target}/edit {target}/'"
    repo.git("rebase", "-q", "-i", "HEAD~2", env={**at("2026-03-01T10:00:00Z"), "GIT_SEQUENCE_EDITOR": script, "GIT_EDITOR": "true"})


def test_usage_at_an_edit_stop_goes_to_the_commit_amended_there(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    a = repo.commit("a", "2026-03-01T09:15:00Z")
    spend.claude(repo.path, "2026-03-01T09:20:00Z", "s2")
    repo.commit("b", "2026-03-01T09:25:00Z")
    rebase_with_edit_stop(repo, a[:7])
    assert (repo.path / ".git" / "rebase-merge").is_dir()
    spend.claude(repo.path, "2026-03-01T10:05:00Z", "at-the-stop", branch="HEAD")
    (repo.path / "fix.txt").write_text("fix")
    repo.git("add", "fix.txt")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T10:10:00Z"))
    repo.git("rebase", "--continue", env={**at("2026-03-01T10:11:00Z"), "GIT_EDITOR": "true"})
    assert not (repo.path / ".git" / "rebase-merge").exists()
    new_a = repo.head("HEAD~1")
    assert sessions(repo, new_a) == [["at-the-stop", "s1"]]
    assert sessions(repo, "HEAD") == [["s2"]]
    spend.claude(repo.path, "2026-03-01T10:20:00Z", "after")
    assert sessions(repo, repo.commit("next", "2026-03-01T10:30:00Z")) == [["after"]]


def test_usage_at_an_edit_stop_of_a_rebase_given_up_goes_to_the_next_commit(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    a = repo.commit("a", "2026-03-01T09:15:00Z")
    repo.commit("b", "2026-03-01T09:25:00Z")
    rebase_with_edit_stop(repo, a[:7])
    spend.claude(repo.path, "2026-03-01T10:05:00Z", "at-the-stop", branch="HEAD")
    repo.git("commit", "-q", "--amend", "--allow-empty", "--no-edit", env=at("2026-03-01T10:10:00Z"))
    repo.git("rebase", "--abort")
    sha = repo.commit("next", "2026-03-01T10:30:00Z")
    assert sessions(repo, sha) == [["at-the-stop"]]


@pytest.mark.parametrize("late", [False, True])
def test_commits_on_two_branches_and_a_merge_each_carry_exactly_their_work(tmp_path: Path, spend: Spend, late: bool) -> None:
    """A day's workflow, once with each drain at once and once with every entry handled at the
    end: the receipts are the same."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    gd = r.path / ".git"
    (gd / "aispend-queue").mkdir(exist_ok=True)
    lock = open(gd / "aispend-queue" / ".lock", "a")
    if late:
        fcntl.flock(lock, fcntl.LOCK_EX)

    def run(*args: str, when: str) -> None:
        git(r.path, *args, env=at(when))

    def commit(msg: str, when: str) -> None:
        (r.path / f"{msg}.txt").write_text(msg)
        run("add", f"{msg}.txt", when=when)
        run("commit", "-q", "-m", msg, when=when)

    spend.claude(r.path, "2026-03-01T09:10:00Z", "m1", branch="main")
    run("switch", "-q", "-c", "feat", when="2026-03-01T09:11:00Z")
    spend.claude(r.path, "2026-03-01T09:12:00Z", "f1", branch="feat")
    commit("feat-1", "2026-03-01T09:13:00Z")
    spend.claude(r.path, "2026-03-01T09:13:00.001Z", "f2", branch="feat")
    commit("feat-2", "2026-03-01T09:14:00Z")
    run("switch", "-q", "main", when="2026-03-01T09:15:00Z")
    spend.claude(r.path, "2026-03-01T09:16:00Z", "m2", branch="main")
    commit("main-1", "2026-03-01T09:17:00Z")
    spend.claude(r.path, "2026-03-01T09:18:00Z", "m3", branch="main")
    run("merge", "-q", "--no-edit", "feat", when="2026-03-01T09:19:00Z")
    spend.claude(r.path, "2026-03-01T09:19:00.001Z", "m4", branch="main")
    lock.close()
    if late:
        subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True)
    r.settle()
    got = {git(r.path, "log", "-1", "--format=%s", sha).strip(): sessions(r, sha) for sha in git(r.path, "rev-list", "HEAD").split()}
    assert got == {
        "feat-1": [["f1", "m1"]],
        "feat-2": [["f2"]],
        "main-1": [["m2"]],
        "Merge branch 'feat'": [["m3"]],
        "initial": [],
    }


def test_commits_made_while_the_key_needs_a_chmod_get_their_own_receipts_once_fixed(repo: Repo, spend: Spend) -> None:
    key = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519"
    key.chmod(0o644)
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "u1")
    c1 = repo.commit("c1", "2026-03-01T09:11:00Z")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "u2")
    c2 = repo.commit("c2", "2026-03-01T09:13:00Z")
    assert repo.receipts(c1) == repo.receipts(c2) == []
    assert len(list((repo.path / ".git" / "aispend-queue").glob("0*.post-commit"))) == 2
    assert "run chmod 600" in (Path(os.environ["AISPEND_HOME"]) / "hooks.log").read_text()
    doctor = repo.aispend("doctor", check=False).stdout
    assert "receipts not written yet: 2 hook entries wait in" in doctor
    assert "run chmod 600" in doctor and "then run: aispend ingest" in doctor
    key.chmod(0o600)
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "u3")  # logged after both commits
    out = repo.aispend("ingest").stdout  # no need to wait for a next commit
    assert "2 queued commits got their receipts (2 hook queue entries handled)" in out
    assert [sessions(repo, c) for c in (c1, c2)] == [[["u1"]], [["u2"]]]
    c3 = repo.commit("c3", "2026-03-01T09:15:00Z")
    assert [sessions(repo, c) for c in (c1, c2, c3)] == [[["u1"]], [["u2"]], [["u3"]]]


def test_a_linked_worktree_queues_in_the_common_dir_and_old_hooks_queue_still_drains(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    """A linked worktree's entries live in the common dir (``aispend-queue/worktrees/NAME``), so
    that ``git worktree remove`` right after a commit loses nothing; entries that hooks of an
    older aispend wrote into the worktree's own git dir are still handled."""
    wt = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "task", str(wt), env=at("2026-03-01T09:05:00Z"))
    gd = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    new_q = repo.path / ".git" / "aispend-queue" / "worktrees" / "wt"
    spend.claude(wt, "2026-03-01T09:10:00Z", "old-hooks", branch="task")
    new_q.mkdir(parents=True)
    with hold_queue(Repo(wt)) as _, open(new_q / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (wt / "a.txt").write_text("a")
        git(wt, "add", "a.txt")
        git(wt, "commit", "-q", "-m", "a", env=at("2026-03-01T09:11:00Z"))
        [entry] = list(new_q.glob("0*.post-commit"))
        entry.rename(gd / "aispend-queue" / entry.name)  # where an older shim wrote it
    sha = git(wt, "rev-parse", "HEAD").strip()
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True)  # as an older shim calls it
    Repo(wt).settle()  # or the drain the commit's own hook started, if it got the lock first
    assert sessions(repo, sha) == [["old-hooks"]]
    spend.claude(wt, "2026-03-01T09:12:00Z", "gone", branch="task")
    (wt / "b.txt").write_text("b")
    git(wt, "add", "b.txt")
    git(wt, "commit", "-q", "-m", "b", env=at("2026-03-01T09:13:00Z"))
    sha2 = git(wt, "rev-parse", "HEAD").strip()
    git(repo.path, "worktree", "remove", str(wt))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not git(repo.path, "notes", "--ref=refs/notes/aispend", "list", sha2, check=False):
        time.sleep(0.05)
    assert sessions(repo, sha2) == [["gone"]]
