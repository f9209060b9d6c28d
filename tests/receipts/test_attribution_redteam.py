"""Red-team workflows for attribution (docs/attribution.md, docs/hooks.md): a receipt is a function
of the logs and the moment of the commit. Each test drives real git through the installed hooks
(real background drains, real SQLite) and asserts, request by request, who holds what.

Most requests are their own session (one request per session name), so a receipt's session list
names exactly the requests it holds, its own and the ones it carries.

Tests that assert behaviour we believe is wrong keep asserting the correct behaviour (they fail
until it is fixed); the ones that pin a defensible design choice say so in their docstring.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.gitutil import Person, Repo, Spend, at, bare_remote, git
from tests.logbuilder import Logs, write

# -- helpers ------------------------------------------------------------------------------------


def sess(r: Repo, rev: str = "HEAD") -> list[str]:
    """Every session held by ``rev``'s receipts (its own and what they carry), sorted; a
    session held by two lines of the note shows twice."""
    return sorted(s["session"] for rec in r.receipts(rev) for s in rec["sessions"])


def nlines(r: Repo, rev: str = "HEAD") -> int:
    return len(r.receipts(rev))


def live(r: Repo) -> dict[str, list[str]]:
    """Subject -> sessions, for every commit reachable from a branch or HEAD that has a receipt."""
    out: dict[str, list[str]] = {}
    for sha in r.git("rev-list", "--branches", "HEAD").split():
        s = sess(r, sha)
        if s:
            out[r.git("log", "-1", "--format=%s", sha).strip()] = s
    return out


def unclaimed(env: dict[str, str] | None = None) -> list[str]:
    """Sessions of indexed requests nobody claimed (what the next commit may take). Reads the
    index and, where claims live in a state file beside it, that file too."""
    home = Path((env or {}).get("AISPEND_HOME") or os.environ["AISPEND_HOME"])
    index = home / "index.sqlite3"
    conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        claims = "claims"
        if (home / "state.sqlite3").exists():
            conn.execute("ATTACH DATABASE ? AS st", (f"file:{home / 'state.sqlite3'}?mode=ro",))
            if conn.execute("SELECT 1 FROM st.sqlite_master WHERE name = 'claims'").fetchone():
                claims = "st.claims"
        rows = conn.execute(
            f"SELECT DISTINCT session_id FROM requests r WHERE NOT EXISTS (SELECT 1 FROM {claims} c WHERE c.request_key = r.key)"
        ).fetchall()
    finally:
        conn.close()
    return sorted(x for (x,) in rows)


def claims_count(env: dict[str, str] | None = None) -> int:
    """How many requests are claimed (each by one commit: the key is the claims' primary key)."""
    home = Path((env or {}).get("AISPEND_HOME") or os.environ["AISPEND_HOME"])
    for name in ("state.sqlite3", "index.sqlite3"):
        if (home / name).exists():
            conn = sqlite3.connect(f"file:{home / name}?mode=ro", uri=True)
            try:
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'claims'").fetchone():
                    return int(conn.execute("SELECT count(*) FROM claims").fetchone()[0])
            finally:
                conn.close()
    raise AssertionError("no claims table")


def reported(r: Repo) -> dict[str, int]:
    """What ``aispend report`` counts over HEAD's history: requests per session."""
    p = r.aispend("report", "--by", "session", "--format", "json", "--since", "2026-02-01", "--tz", "UTC")
    return {row["key"].split(":", 1)[1]: row["requests"] for row in json.loads(p.stdout)["rows"]}


def hold_queue(r: Repo | Path) -> Any:
    """Take a worktree's queue lock: every drain leaves its entries queued until it is closed."""
    path = r.path if isinstance(r, Repo) else r
    gd = Path(git(path, "rev-parse", "--absolute-git-dir").strip())
    q = gd / "aispend-queue"
    q.mkdir(exist_ok=True)
    lock = open(q / ".lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def drain_now(r: Repo) -> None:
    gd = Path(git(r.path, "rev-parse", "--absolute-git-dir").strip())
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True, env={**os.environ, **r.env})
    r.settle()


def edit(r: Repo, name: str, text: str) -> None:
    (r.path / name).write_text(text)
    r.git("add", name)


def real_env() -> dict[str, str]:
    """The test's environment with the clocks unpinned: git dates and aispend's moment are real."""
    return {k: v for k, v in os.environ.items() if k not in ("AISPEND_NOW", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def ms_of(value: str) -> int:
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def rebase_i(r: Repo, base: str, when: str, script: str = "true", **env: str) -> None:
    r.git("rebase", "-q", "-i", base, env={**at(when), "GIT_SEQUENCE_EDITOR": script, "GIT_EDITOR": "true", **env})


def edit_stop(r: Repo, target: str, base: str, when: str) -> None:
    rebase_i(r, base, when, f"sed -i -e 's/^pick {target[:7]}/edit {target[:7]}/'")
    assert (r.path / ".git" / "rebase-merge").is_dir()


# -- fixups, rebases, pulls ------------------------------------------------------------------


def test_fixup_then_autosquash_carries_the_fixups_usage_into_its_target(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "a-work")
    a = repo.commit("a", "2026-03-01T09:11:00Z")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "b-work")
    repo.commit("b", "2026-03-01T09:13:00Z")
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "fix-work")
    edit(repo, "f-a.txt", "a fixed\n")
    repo.git("commit", "-q", f"--fixup={a}", env=at("2026-03-01T09:15:00Z"))
    assert sess(repo) == ["fix-work"]
    spend.claude(repo.path, "2026-03-01T09:16:00Z", "waiting")  # usage while nothing is committed
    repo.git("rebase", "-q", "-i", "--autosquash", "HEAD~3", env={**at("2026-03-01T09:21:00Z"), "GIT_SEQUENCE_EDITOR": "true", "GIT_EDITOR": "true"})
    assert repo.git("log", "--format=%s").split("\n")[:3] == ["b", "a", "initial"]
    assert live(repo) == {"a": ["a-work", "fix-work"], "b": ["b-work"]}
    assert sess(repo, repo.commit("next", "2026-03-01T09:30:00Z")) == ["waiting"]


def test_pull_rebase_with_local_commits_and_local_usage(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    ann = Person("ann", tmp_path, remote)
    bob = Person("bob", tmp_path, remote)
    ann.repo.install()
    bob.repo.commit("bob's", "2026-03-01T09:05:00Z")
    bob.repo.git("push", "-q", "origin", "main")
    ann.spend.claude(ann.repo.path, "2026-03-01T09:10:00Z", "local-1")
    ann.repo.commit("ann 1", "2026-03-01T09:11:00Z")
    ann.spend.claude(ann.repo.path, "2026-03-01T09:12:00Z", "local-2")
    ann.repo.commit("ann 2", "2026-03-01T09:13:00Z")
    ann.spend.claude(ann.repo.path, "2026-03-01T09:14:00Z", "dirty")  # work in progress, not committed
    (ann.repo.path / "wip.txt").write_text("wip")
    ann.repo.git("add", "wip.txt")
    ann.repo.git("pull", "-q", "--rebase", "--autostash", "origin", "main", env=at("2026-03-01T09:20:00Z"))
    assert ann.repo.git("log", "--format=%s").split("\n")[:4] == ["ann 2", "ann 1", "bob's", "root"]
    assert live(ann.repo) == {"ann 1": ["local-1"], "ann 2": ["local-2"]}
    assert unclaimed(ann.env) == ["dirty"]
    assert sess(ann.repo, ann.repo.commit("ann 3", "2026-03-01T09:30:00Z", files={"wip.txt": "done"})) == ["dirty"]


# -- stash, detached HEAD, worktrees, new branches ------------------------------------------------


def test_stash_carried_to_a_new_branch_goes_with_it(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    (repo.path / "README").write_text("changed by the agent\n")
    repo.git("stash", "-q", env=at("2026-03-01T09:11:00Z"))
    repo.git("switch", "-q", "-c", "feat", env=at("2026-03-01T09:12:00Z"))
    repo.git("stash", "pop", "-q", env=at("2026-03-01T09:13:00Z"))
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "on-feat", branch="feat")
    repo.git("add", "README")
    assert sess(repo, repo.commit("feat", "2026-03-01T09:15:00Z", files={"README": "done\n"})) == ["on-feat", "on-main"]
    assert unclaimed() == []


def test_stash_popped_on_an_existing_branch_leaves_the_usage_for_the_branch_it_was_logged_on(repo: Repo, spend: Spend) -> None:
    """Design choice (docs: usage follows the branch it was logged on, not the diff): the agent's
    work on main, stashed and popped on an older branch and committed there, stays for main's
    next commit."""
    repo.git("branch", "other", env=at("2026-03-01T09:05:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    (repo.path / "README").write_text("changed by the agent\n")
    repo.git("stash", "-q", env=at("2026-03-01T09:11:00Z"))
    repo.git("switch", "-q", "other", env=at("2026-03-01T09:12:00Z"))
    repo.git("stash", "pop", "-q", env=at("2026-03-01T09:13:00Z"))
    repo.git("add", "README")
    assert sess(repo, repo.commit("other", "2026-03-01T09:15:00Z", files={"README": "x\n"})) == []
    assert unclaimed() == ["on-main"]
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:16:00Z"))
    assert sess(repo, repo.commit("main", "2026-03-01T09:17:00Z")) == ["on-main"]


def test_detached_commits_then_switch_c(repo: Repo, spend: Spend) -> None:
    """Usage logged as ``HEAD`` (detached) counts on any branch; main's usage from before the
    detach is not taken by detached commits (design: a detached commit has no branch to carry
    main on) and waits for main."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "main-before", branch="main")
    repo.git("checkout", "-q", "--detach", env=at("2026-03-01T09:11:00Z"))
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "det-1", branch="HEAD")
    d1 = repo.commit("d1", "2026-03-01T09:13:00Z")
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "det-2", branch="HEAD")
    d2 = repo.commit("d2", "2026-03-01T09:15:00Z")
    spend.claude(repo.path, "2026-03-01T09:15:30Z", "det-3", branch="HEAD")  # not committed while detached
    repo.git("switch", "-q", "-c", "rescue", env=at("2026-03-01T09:16:00Z"))
    spend.claude(repo.path, "2026-03-01T09:17:00Z", "rescue-1", branch="rescue")
    r1 = repo.commit("r1", "2026-03-01T09:18:00Z")
    assert [sess(repo, x) for x in (d1, d2, r1)] == [["det-1"], ["det-2"], ["det-3", "rescue-1"]]
    assert unclaimed() == ["main-before"]
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:19:00Z"))
    assert sess(repo, repo.commit("m", "2026-03-01T09:20:00Z")) == ["main-before"]


def test_worktree_add_b_and_concurrent_work_in_both(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    """Two linked worktrees (a sibling and one nested inside the main worktree) and the main
    one, commits made at the same instant in all three: each takes only its own folder's work."""
    sib = tmp_path / "wt-feat"
    nested = repo.path / ".wt" / "nest"
    repo.git("worktree", "add", "-q", "-b", "feat", str(sib), env=at("2026-03-01T09:05:00Z"))
    repo.git("worktree", "add", "-q", "-b", "nest", str(nested), env=at("2026-03-01T09:05:00Z"))
    (repo.path / ".git" / "info" / "exclude").write_text(".wt/\n")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "main-1", branch="main")
    spend.claude(repo.path / "sub", "2026-03-01T09:10:01Z", "main-sub", branch="main")
    spend.claude(sib, "2026-03-01T09:10:02Z", "feat-1", branch="feat")
    spend.claude(nested, "2026-03-01T09:10:03Z", "nest-1", branch="nest")
    spend.claude(nested / "deep", "2026-03-01T09:10:04Z", "nest-deep", branch="nest")
    spend.claude(str(repo.path) + "-old", "2026-03-01T09:10:05Z", "prefix-sibling", branch="main")
    trees = [repo.path, sib, nested]
    for i, p in enumerate(trees):
        (p / f"w{i}.txt").write_text(str(i))
        git(p, "add", f"w{i}.txt")
    procs = [
        subprocess.Popen(["git", "commit", "-q", "-m", f"c{i}"], cwd=p, env={**os.environ, **at("2026-03-01T09:20:00Z")})
        for i, p in enumerate(trees)
    ]
    assert [p.wait() for p in procs] == [0, 0, 0]
    got = []
    for p in trees:
        r = Repo(p)
        r.settle()
        got.append(sess(r))
    assert got == [["main-1", "main-sub"], ["feat-1"], ["nest-1", "nest-deep"]]
    assert unclaimed() == ["prefix-sibling"]


def test_a_linked_worktree_removed_right_after_its_last_commit(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    """A task in its own worktree: commit, then ``git worktree remove`` at once (a script, an
    agent's worktree tool). The queue lives in the worktree's git dir, which the removal deletes
    before the background drain has started: the commit's receipt must still be written."""
    wt = tmp_path / "wt-task"
    repo.git("worktree", "add", "-q", "-b", "task", str(wt), env=at("2026-03-01T09:05:00Z"))
    spend.claude(wt, "2026-03-01T09:10:00Z", "task-work", branch="task")
    (wt / "t.txt").write_text("t")
    git(wt, "add", "t.txt")
    git(wt, "commit", "-q", "-m", "task done", env=at("2026-03-01T09:11:00Z"))
    sha = git(wt, "rev-parse", "HEAD").strip()
    git(repo.path, "worktree", "remove", str(wt))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not repo.receipts(sha):
        time.sleep(0.1)
    assert sess(repo, sha) == ["task-work"]


def test_checkout_b_from_origin_main_takes_the_work_left_on_main(tmp_path: Path) -> None:
    """``git checkout -b feat origin/main``: HEAD left main for feat, so the usage logged on main
    before goes with it (docs: the branch HEAD left for B when B was made)."""
    remote = bare_remote(tmp_path)
    ann = Person("ann", tmp_path, remote)
    ann.repo.install()
    ann.spend.claude(ann.repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    ann.repo.git("fetch", "-q", "origin")
    ann.repo.git("checkout", "-q", "-b", "feat", "origin/main", env=at("2026-03-01T09:11:00Z"))
    ann.spend.claude(ann.repo.path, "2026-03-01T09:12:00Z", "on-feat", branch="feat")
    assert sess(ann.repo, ann.repo.commit("feat", "2026-03-01T09:13:00Z")) == ["on-feat", "on-main"]


# -- renames and branch history read late ----------------------------------------------------------


def test_a_branch_renamed_while_its_usage_waits(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "a", env=at("2026-03-01T09:11:00Z"))
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "on-a", branch="a")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:13:00Z"))
    repo.git("branch", "-m", "a", "b", env=at("2026-03-01T09:14:00Z"))  # renamed while not checked out
    spend.claude(repo.path, "2026-03-01T09:15:00Z", "on-main", branch="main")
    repo.git("switch", "-q", "b", env=at("2026-03-01T09:16:00Z"))
    spend.claude(repo.path, "2026-03-01T09:17:00Z", "on-b", branch="b")
    assert sess(repo, repo.commit("b", "2026-03-01T09:18:00Z")) == ["on-a", "on-b"]
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:19:00Z"))
    assert sess(repo, repo.commit("m", "2026-03-01T09:20:00Z")) == ["on-main"]


def drained_at_once_and_late(tmp_path: Path, spend: Spend, make_b: Any, afterwards: Any) -> list[list[str]]:
    """The sessions of a commit on ``b`` (``make_b(r)`` leaves HEAD there, after work on main at
    09:10 and on ``a`` at 09:12), drained at once and drained only after ``afterwards(r)``."""
    receipts = []
    for late in (False, True):
        r = Repo.init(tmp_path / f"repo-{late}")
        r.install()
        spend.claude(r.path, "2026-03-01T09:10:00Z", f"on-main-{late}", branch="main")
        r.git("switch", "-q", "-c", "a", env=at("2026-03-01T09:11:00Z"))
        spend.claude(r.path, "2026-03-01T09:12:00Z", f"on-a-{late}", branch="a")
        make_b(r)
        lock = hold_queue(r) if late else None
        (r.path / "x.txt").write_text("x")
        git(r.path, "add", "x.txt")
        git(r.path, "commit", "-q", "-m", f"on b {late}", env=at("2026-03-01T09:14:00Z"))
        if not late:
            r.settle()
        afterwards(r)
        if lock:
            lock.close()
            drain_now(r)
        receipts.append(sess(r))
    return receipts


def test_a_rename_after_the_commit_but_before_its_late_drain_changes_nothing(tmp_path: Path, spend: Spend) -> None:
    """The commit on ``b`` (renamed from ``a``, made from main) is drained only after ``b`` was
    renamed again to ``c``: its receipt must be the one an immediate drain gives."""
    receipts = drained_at_once_and_late(
        tmp_path, spend,
        lambda r: r.git("branch", "-m", "a", "b", env=at("2026-03-01T09:13:00Z")),
        lambda r: git(r.path, "branch", "-m", "b", "c", env=at("2026-03-01T09:15:00Z")),
    )
    assert receipts == [["on-a-False", "on-main-False"], ["on-a-True", "on-main-True"]]


def test_a_parent_branch_deleted_before_the_late_drain_changes_nothing(tmp_path: Path, spend: Spend) -> None:
    """main -> a -> b; the commit on b is drained after ``a`` was deleted: b still carries main's
    work from before a was made (as it does when drained at once)."""
    receipts = drained_at_once_and_late(
        tmp_path, spend,
        lambda r: r.git("switch", "-q", "-c", "b", env=at("2026-03-01T09:13:00Z")),
        lambda r: git(r.path, "branch", "-q", "-D", "a", env=at("2026-03-01T09:15:00Z")),
    )
    assert receipts == [["on-a-False", "on-main-False"], ["on-a-True", "on-main-True"]]


def test_a_long_chain_of_new_branches(repo: Repo, spend: Spend) -> None:
    """docs: "and so on up the chain". Work on main, then five ``switch -c`` in a row (a task
    branch, a sub-task, an experiment...), each with its work: the last branch's commit takes all."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    names = ["a", "b", "c", "d", "e"]
    for i, name in enumerate(names):
        repo.git("switch", "-q", "-c", name, env=at(f"2026-03-01T09:1{i + 1}:00Z"))
        spend.claude(repo.path, f"2026-03-01T09:1{i + 1}:30Z", f"on-{name}", branch=name)
    sha = repo.commit("e", "2026-03-01T09:20:00Z")
    assert sess(repo, sha) == ["on-a", "on-b", "on-c", "on-d", "on-e", "on-main"]


def test_a_branch_name_used_again_does_not_take_the_old_branchs_usage(repo: Repo, spend: Spend) -> None:
    """``feat`` is renamed to ``feat-old`` while its usage waits, and a new ``feat`` is made from
    main. The new branch did not exist when that usage was logged: it belongs to feat-old."""
    repo.git("switch", "-q", "-c", "feat", env=at("2026-03-01T09:05:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "old-feat-work", branch="feat")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:11:00Z"))
    repo.git("branch", "-m", "feat", "feat-old", env=at("2026-03-01T09:12:00Z"))
    repo.git("switch", "-q", "-c", "feat", env=at("2026-03-01T09:13:00Z"))
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "new-feat-work", branch="feat")
    new = repo.commit("new feat", "2026-03-01T09:15:00Z")
    repo.git("switch", "-q", "feat-old", env=at("2026-03-01T09:16:00Z"))
    old = repo.commit("old feat", "2026-03-01T09:17:00Z")
    assert (sess(repo, new), sess(repo, old)) == (["new-feat-work"], ["old-feat-work"])


def test_a_codex_session_started_on_main_that_goes_on_after_switch_c(repo: Repo, logs: Logs) -> None:
    """Codex writes the git branch once, in the session's ``session_meta`` at its start: every
    later request of the session says ``main``, also after ``git switch -c feat``. The commit on
    feat is the one that work went into."""
    sid = "11111111-2222-3333-4444-555555555555"
    f = logs.codex_file(f"2026-03-01T09-10-00-{sid}", day="2026/03/01")
    write(f, [
        Logs.codex_meta("2026-03-01T09:10:00Z", sid, cwd=str(repo.path), branch="main"),
        Logs.codex_turn("2026-03-01T09:10:01Z", cwd=str(repo.path)),
        Logs.codex_tokens("2026-03-01T09:10:30Z", (1000, 0, 100, 0), (1000, 0, 100, 0)),
    ])
    repo.git("switch", "-q", "-c", "feat", env=at("2026-03-01T09:11:00Z"))
    write(f, [
        Logs.codex_turn("2026-03-01T09:12:00Z", cwd=str(repo.path)),
        Logs.codex_tokens("2026-03-01T09:12:30Z", (3000, 0, 300, 0), (2000, 0, 200, 0)),
    ])
    repo.commit("feat", "2026-03-01T09:13:00Z")
    [rec] = repo.receipts()
    assert rec["totals"]["requests"] == 2
    assert unclaimed() == []


# -- amends, cherry-picks, merges --------------------------------------------------------------


def test_two_quick_amends_with_usage_between_pinned_and_drained_late(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    with hold_queue(repo):
        edit(repo, "a.txt", "1")
        git(repo.path, "commit", "-q", "-m", "a", env=at("2026-03-01T09:11:00Z"))
        spend.claude(repo.path, "2026-03-01T09:11:00.001Z", "s2")
        edit(repo, "a.txt", "2")
        git(repo.path, "commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:11:00.500Z"))
        spend.claude(repo.path, "2026-03-01T09:11:00.501Z", "s3")
        edit(repo, "a.txt", "3")
        git(repo.path, "commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:11:00.900Z"))
        spend.claude(repo.path, "2026-03-01T09:11:00.901Z", "after")
    drain_now(repo)
    assert live(repo) == {"a": ["s1", "s2", "s3"]}
    assert nlines(repo) == 1
    assert unclaimed() == ["after"]


def test_two_quick_amends_real_clock(tmp_path: Path, spend: Spend) -> None:
    env = real_env()
    r = Repo.init(tmp_path / "repo")
    subprocess.run([sys.executable, "-m", "aispend", "install"], cwd=r.path, env=env, check=True, capture_output=True)
    time.sleep(0.01)

    def now() -> str:
        return iso(datetime.now(timezone.utc))

    spend.claude(r.path, now(), "s1")
    for i, s in enumerate(["s2", "s3", None]):
        (r.path / "a.txt").write_text(str(i))
        subprocess.run(["git", "add", "a.txt"], cwd=r.path, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "a"] + (["--amend", "--no-edit"] if i else []), cwd=r.path, env=env, check=True)
        spend.claude(r.path, now(), s or "after")
    r.settle()
    assert live(r) == {"a": ["s1", "s2", "s3"]}
    assert unclaimed() == ["after"]


def test_cherry_pick_n_then_commit_claims_like_a_commit(repo: Repo, spend: Spend) -> None:
    """Docs: a commit after ``cherry-pick -n`` claims by the rules and carries nothing (the
    source keeps its own receipt)."""
    repo.git("switch", "-q", "-c", "side", env=at("2026-03-01T09:05:00Z"))
    spend.claude(repo.path, "2026-03-01T09:06:00Z", "side-work", branch="side")
    x = repo.commit("x", "2026-03-01T09:07:00Z")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:08:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "main-work", branch="main")
    repo.git("cherry-pick", "-n", x, env=at("2026-03-01T09:11:00Z"))
    assert not (repo.path / ".git" / "CHERRY_PICK_HEAD").exists()
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "after-pick", branch="main")
    repo.git("commit", "-q", "-m", "picked by hand", env=at("2026-03-01T09:13:00Z"))
    assert sess(repo) == ["after-pick", "main-work"]
    assert sess(repo, x) == ["side-work"]


def test_merge_no_ff_with_conflicts_concluded_by_git_commit(repo: Repo, spend: Spend) -> None:
    """The merge commit takes main's usage before and during the conflict; the side branch's
    usage logged after its last commit stays for side (design: it waits for a commit on side,
    and is lost for good if side is deleted after the merge: status shows it meanwhile)."""
    repo.git("switch", "-q", "-c", "side", env=at("2026-03-01T09:05:00Z"))
    spend.claude(repo.path, "2026-03-01T09:06:00Z", "side-work", branch="side")
    repo.commit("side", "2026-03-01T09:07:00Z", files={"README": "side\n"})
    spend.claude(repo.path, "2026-03-01T09:07:30Z", "side-after", branch="side")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:08:00Z"))
    spend.claude(repo.path, "2026-03-01T09:09:00Z", "main-work", branch="main")
    repo.commit("main", "2026-03-01T09:10:00Z", files={"README": "main\n"})
    spend.claude(repo.path, "2026-03-01T09:11:00Z", "before-merge", branch="main")
    out = repo.git("merge", "--no-ff", "side", env=at("2026-03-01T09:12:00Z"), check=False)
    assert (repo.path / ".git" / "MERGE_HEAD").exists(), out
    spend.claude(repo.path, "2026-03-01T09:13:00Z", "resolving", branch="main")
    (repo.path / "README").write_text("both\n")
    repo.git("add", "README")
    repo.git("commit", "-q", "--no-edit", env=at("2026-03-01T09:14:00Z"))
    assert len(repo.git("log", "-1", "--format=%P").split()) == 2
    assert live(repo) == {"Merge branch 'side'": ["before-merge", "resolving"], "main": ["main-work"], "side": ["side-work"]}
    assert nlines(repo) == 1
    assert unclaimed() == ["side-after"]


# -- interactive rebases: edit stops ------------------------------------------------------------


def two_commits(repo: Repo, spend: Spend) -> tuple[str, str]:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "a-work")
    a = repo.commit("a", "2026-03-01T09:11:00Z")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "b-work")
    b = repo.commit("b", "2026-03-01T09:13:00Z")
    return a, b


def test_edit_stop_a_new_commit_and_no_amend(repo: Repo, spend: Spend) -> None:
    """At the edit stop the user only adds a commit. git's post-rewrite still lists
    ``A -> NEW`` (the HEAD at --continue), though A is unchanged and still in the history."""
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:05:00Z", "new-at-stop", branch="HEAD")
    edit(repo, "new.txt", "n")
    repo.git("commit", "-q", "-m", "new at stop", env=at("2026-03-01T10:06:00Z"))
    repo.git("rebase", "--continue", env={**at("2026-03-01T10:08:00Z"), "GIT_EDITOR": "true"})
    assert repo.head("HEAD~2") == a
    assert live(repo) == {"a": ["a-work"], "new at stop": ["new-at-stop"], "b": ["b-work"]}
    assert nlines(repo, "HEAD~1") == 1
    assert reported(repo) == {"a-work": 1, "new-at-stop": 1, "b-work": 1}


def test_edit_stop_with_two_amends_and_a_new_commit(repo: Repo, spend: Spend) -> None:
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "amend-1", branch="HEAD")
    edit(repo, "fix.txt", "1")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T10:02:00Z"))
    spend.claude(repo.path, "2026-03-01T10:03:00Z", "amend-2", branch="HEAD")
    edit(repo, "fix.txt", "2")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T10:04:00Z"))
    spend.claude(repo.path, "2026-03-01T10:05:00Z", "new-at-stop", branch="HEAD")
    edit(repo, "new.txt", "n")
    repo.git("commit", "-q", "-m", "new at stop", env=at("2026-03-01T10:06:00Z"))
    spend.claude(repo.path, "2026-03-01T10:07:00Z", "after-stop", branch="HEAD")
    repo.git("rebase", "--continue", env={**at("2026-03-01T10:08:00Z"), "GIT_EDITOR": "true"})
    assert repo.git("log", "--format=%s").split("\n")[:4] == ["b", "new at stop", "a", "initial"]
    assert live(repo) == {
        "a": ["a-work", "amend-1", "amend-2"],
        "new at stop": ["new-at-stop"],
        "b": ["b-work"],
    }
    assert [nlines(repo, x) for x in ("HEAD", "HEAD~1", "HEAD~2")] == [1, 1, 1]
    assert sess(repo, repo.commit("next", "2026-03-01T10:30:00Z")) == ["after-stop"]
    assert reported(repo) == {s: 1 for s in ("a-work", "amend-1", "amend-2", "new-at-stop", "b-work", "after-stop")}


def test_edit_stop_new_commit_then_abort_gives_its_usage_back(repo: Repo, spend: Spend) -> None:
    """A new commit made at an edit stop claims at once; the rebase is then given up, so that
    commit is gone: its usage must go back to the next commit, as an edit-stop amend's does."""
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "at-the-stop", branch="HEAD")
    edit(repo, "new.txt", "n")
    repo.git("commit", "-q", "-m", "new at stop", env=at("2026-03-01T10:02:00Z"))
    repo.git("rebase", "--abort")
    assert repo.git("log", "--format=%s").split("\n")[:3] == ["b", "a", "initial"]
    sha = repo.commit("next", "2026-03-01T10:30:00Z")
    assert sess(repo, sha) == ["at-the-stop"]


def test_edit_stop_amend_then_abort_then_amend(repo: Repo, spend: Spend) -> None:
    """After an aborted rebase whose edit stop claimed usage, the next commit is an amend: it
    is the next commit, and must take that usage (docs: it goes back to the next commit)."""
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "at-the-stop", branch="HEAD")
    repo.git("commit", "-q", "--amend", "--allow-empty", "--no-edit", env=at("2026-03-01T10:02:00Z"))
    repo.git("rebase", "--abort")
    spend.claude(repo.path, "2026-03-01T10:03:00Z", "before-amend", branch="main")
    edit(repo, "b2.txt", "x")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T10:04:00Z"))
    assert live(repo) == {"a": ["a-work"], "b": ["at-the-stop", "b-work", "before-amend"]}
    assert unclaimed() == []


def test_splitting_a_commit_at_an_edit_stop(repo: Repo, spend: Spend) -> None:
    """git-rebase(1) "SPLITTING COMMITS": at the edit stop, ``git reset HEAD~`` and two commits.
    git lists ``A -> second part``; the second part carries A's receipt. Each request once."""
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    repo.git("reset", "-q", "HEAD~1", env=at("2026-03-01T10:00:30Z"))
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "part-1-work", branch="HEAD")
    edit(repo, "p1.txt", "1")
    repo.git("commit", "-q", "-m", "part 1", env=at("2026-03-01T10:02:00Z"))
    spend.claude(repo.path, "2026-03-01T10:03:00Z", "part-2-work", branch="HEAD")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "part 2", env=at("2026-03-01T10:04:00Z"))
    repo.git("rebase", "--continue", env={**at("2026-03-01T10:05:00Z"), "GIT_EDITOR": "true"})
    assert repo.git("log", "--format=%s").split("\n")[:4] == ["b", "part 2", "part 1", "initial"]
    # part 2 had its own receipt when git said A became it: a second line carries that one and
    # A's (two lines, each request counted once).
    assert live(repo) == {"part 1": ["part-1-work"], "part 2": ["a-work", "part-2-work", "part-2-work"], "b": ["b-work"]}
    assert nlines(repo, "HEAD~1") == 2
    assert reported(repo) == {"a-work": 1, "part-1-work": 1, "part-2-work": 1, "b-work": 1}


def test_a_new_commit_at_an_edit_stop_amended_there(repo: Repo, spend: Spend) -> None:
    """At the edit stop: a new commit N (it claims at once), more work, ``commit --amend`` of N.
    N' replaces N: it must hold N's usage and the amend's."""
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "new-work", branch="HEAD")
    edit(repo, "n.txt", "1")
    repo.git("commit", "-q", "-m", "new at stop", env=at("2026-03-01T10:02:00Z"))
    spend.claude(repo.path, "2026-03-01T10:03:00Z", "amend-work", branch="HEAD")
    edit(repo, "n.txt", "2")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T10:04:00Z"))
    repo.git("rebase", "--continue", env={**at("2026-03-01T10:05:00Z"), "GIT_EDITOR": "true"})
    assert live(repo) == {"a": ["a-work"], "new at stop": ["amend-work", "new-work"], "b": ["b-work"]}
    assert unclaimed() == []


def test_reset_soft_then_commit_again(repo: Repo, spend: Spend) -> None:
    """``git reset --soft HEAD~1`` and a new commit is the long way of ``commit --amend``; the hooks
    cannot tell it from ``reset --hard`` (work thrown away), whose spend no new commit should
    carry. Documented limit (docs/attribution.md): the undone commit keeps its receipt, which no
    report of the branch counts; ``commit --amend`` carries it."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "first-try")
    first = repo.commit("first try", "2026-03-01T09:11:00Z")
    repo.git("reset", "-q", "--soft", "HEAD~1", env=at("2026-03-01T09:12:00Z"))
    spend.claude(repo.path, "2026-03-01T09:13:00Z", "second-try")
    redo = repo.commit("second try", "2026-03-01T09:14:00Z")
    assert sess(repo, first) == ["first-try"]  # on a commit no branch holds any more
    assert sess(repo, redo) == ["second-try"]


def test_a_reinstall_between_the_commit_and_its_late_drain(repo: Repo, spend: Spend) -> None:
    """``aispend install --since now`` run after a commit whose receipt is not built yet (the
    first ingest is slow, the queue waits): the commit was made under the old billing start, so
    its receipt must not depend on whether its drain ran before the reinstall."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    with hold_queue(repo):
        edit(repo, "a.txt", "a")
        git(repo.path, "commit", "-q", "-m", "a", env=at("2026-03-01T09:11:00Z"))
        repo.install("--since", "now", when="2026-03-01T09:12:00Z")
    drain_now(repo)
    assert sess(repo) == ["s1"]


def test_reset_soft_and_the_same_commit_made_again_in_the_same_second(repo: Repo, spend: Spend) -> None:
    """``git reset --soft HEAD~1 && git commit -C ORIG_HEAD`` within the second (an agent retrying
    its commit): git makes the very same commit again, and the hook runs for it a second time, at
    a later moment, with new usage logged between."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    first = repo.commit("c", "2026-03-01T09:11:00Z", files={"c.txt": "c"})
    spend.claude(repo.path, "2026-03-01T09:11:00.300Z", "s2")
    repo.git("reset", "-q", "--soft", "HEAD~1", env=at("2026-03-01T09:11:00.400Z"))
    repo.git("commit", "-q", "-C", "ORIG_HEAD", env=at("2026-03-01T09:11:00.500Z"))
    assert repo.head() == first
    # The same commit claims nothing the second time: one line, s1 once; s2 waits for the next.
    assert nlines(repo) == 1 and sess(repo) == ["s1"]
    assert reported(repo) == {"s1": 1}
    assert sess(repo, repo.commit("next", "2026-03-01T09:12:00Z")) == ["s2"]


# -- hook frameworks, hooks run twice -------------------------------------------------------------


def framework_hooks(repo: Repo, tmp_path: Path) -> None:
    """A hook framework's own hooks (core.hooksPath), calling aispend directly as docs/hooks.md says."""
    d = tmp_path / "fw-hooks"
    d.mkdir()
    for hook in ("post-commit", "post-rewrite", "post-merge"):
        (d / hook).write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aispend.hookrun {hook} "$@"\n')
        (d / hook).chmod(0o755)
    repo.git("config", "core.hooksPath", str(d))


def test_a_hook_framework_calling_hookrun_directly(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    framework_hooks(repo, tmp_path)
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    c1 = repo.commit("c1", "2026-03-01T09:11:00Z")
    spend.claude(repo.path, "2026-03-01T09:11:00.001Z", "s2")  # right after the first commit's moment
    edit(repo, "c1b.txt", "more")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:12:00Z"))
    spend.claude(repo.path, "2026-03-01T09:12:00.001Z", "s3")
    repo.git("switch", "-q", "-c", "side", env=at("2026-03-01T09:13:00Z"))
    repo.commit("side", "2026-03-01T09:14:00Z")
    repo.git("switch", "-q", "main", env=at("2026-03-01T09:15:00Z"))
    repo.commit("main", "2026-03-01T09:16:00Z")
    spend.claude(repo.path, "2026-03-01T09:17:00Z", "s4", branch="main")
    repo.git("merge", "-q", "--no-edit", "side", env=at("2026-03-01T09:18:00Z"))
    assert sess(repo, c1) == ["s1"]
    assert live(repo) == {"c1": ["s1", "s2"], "side": ["s3"], "Merge branch 'side'": ["s4"]}
    assert unclaimed() == []


def test_post_commit_run_twice_for_one_commit_claims_once(repo: Repo, spend: Spend) -> None:
    """The shim handled the commit; then the same commit's post-commit runs again later (a hook
    framework chained after aispend's shim, ``aispend hook post-commit`` by hand). Docs: running a
    hook twice claims nothing twice: the commit keeps the receipt of its moment."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    sha = repo.commit("c1", "2026-03-01T09:11:00Z")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "s2")
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "post-commit"], cwd=repo.path, check=True,
                   env={**os.environ, **at("2026-03-01T09:13:00Z")})
    repo.settle()
    assert [sorted(s["session"] for s in rec["sessions"]) for rec in repo.receipts(sha)] == [["s1"]]
    assert unclaimed() == ["s2"]
    assert sess(repo, repo.commit("c2", "2026-03-01T09:14:00Z")) == ["s2"]
    assert reported(repo) == {"s1": 1, "s2": 1}


def test_the_same_commit_made_in_two_clones_on_one_machine(tmp_path: Path, spend: Spend) -> None:
    """Two clones of one repository, both installed, the same commit (same tree, parent,
    message and pinned dates: a script, a bot) made in each: claims are looked up by commit sha
    only, so the second clone's receipt also holds the first clone's requests."""
    remote = bare_remote(tmp_path)
    clones = []
    for name in ("one", "two"):
        path = tmp_path / name
        git(tmp_path, "clone", "-q", str(remote), str(path))
        r = Repo(path)
        r.git("config", "user.email", "dev@example.com")
        r.git("config", "user.name", "Dev")
        r.install()
        clones.append(r)
    got = []
    for r in clones:
        spend.claude(r.path, "2026-03-01T09:10:00Z", f"in-{r.path.name}")
        got.append(r.commit("same", "2026-03-01T09:11:00Z", files={"same.txt": "same"}))
    assert got[0] == got[1]
    assert [sess(r) for r in clones] == [["in-one"], ["in-two"]]


# -- an agent writing all the time, a script committing every 100 ms (real clock) ------------------


@pytest.mark.parametrize("mode", ["background", "foreground-no-budget"])
def test_an_agent_logging_continuously_while_a_script_commits_every_100ms(tmp_path: Path, spend: Spend, mode: str) -> None:
    """No pinned clock. Commit i must hold exactly the requests logged after commit i-1's moment
    and up to its own (the moment lies between the time ``git commit`` started and returned);
    all receipts together hold every request logged up to the last commit's moment, each once."""
    env = real_env()
    if mode == "foreground-no-budget":
        env.update({"AISPEND_HOOK_SYNC": "1", "AISPEND_HOOK_BUDGET": "0"})
    r = Repo.init(tmp_path / "repo")
    subprocess.run([sys.executable, "-m", "aispend", "install"], cwd=r.path, env=real_env(), check=True, capture_output=True)
    time.sleep(0.01)
    logged: list[int] = []
    stop = threading.Event()

    def agent() -> None:
        while not stop.is_set():
            t = datetime.now(timezone.utc)
            spend.claude(r.path, iso(t), "agent", inp=10, out=5)
            logged.append(ms_of(iso(t)))
            time.sleep(0.003)

    writer = threading.Thread(target=agent)
    writer.start()
    spans: list[tuple[int, int]] = []
    shas = []
    try:
        time.sleep(0.05)
        for i in range(15):
            (r.path / f"f{i}.txt").write_text(str(i))
            subprocess.run(["git", "add", f"f{i}.txt"], cwd=r.path, env=env, check=True)
            before = time.time_ns() // 1_000_000
            subprocess.run(["git", "commit", "-q", "-m", f"c{i}"], cwd=r.path, env=env, check=True)
            after = -(-time.time_ns() // 1_000_000)
            spans.append((before, after))
            shas.append(git(r.path, "rev-parse", "HEAD").strip())
            time.sleep(0.1)
        time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    r.settle()
    ts = sorted(logged)
    recs = [r.receipts(x) for x in shas]
    assert all(len(x) <= 1 for x in recs)
    counts = [x[0]["totals"]["requests"] if x else 0 for x in recs]
    total = sum(counts)
    assert claims_count() == total  # no request held twice
    before_last, after_last = spans[-1]
    assert ts[total - 1] <= after_last and (total == len(ts) or ts[total] >= before_last)
    start = 0
    for i, (rec, n, (before, after)) in enumerate(zip(recs, counts, spans)):
        held = ts[start : start + n]
        if held:
            w = rec[0]["window"]
            assert (ms_of(w["start"]), ms_of(w["end"])) == (held[0], held[-1]), f"commit {i}: not the requests in its span"
            assert held[-1] <= after, f"commit {i}: holds a request logged after it"
        assert start + n == len(ts) or ts[start + n] >= before, f"commit {i}: a request logged before it went to a later commit"
        start += n


@pytest.mark.parametrize("drain", ["started-by-the-shim", "already-at-work"])
def test_a_line_written_40ms_after_its_timestamp_just_before_a_commit(tmp_path: Path, spend: Spend, drain: str) -> None:
    """docs/attribution.md: a request logged at the moment M or before is read unless its line
    reaches the log more than the drain's start-up time (some 50 ms) after its own timestamp.
    That margin exists only when the commit's drain has to start: a drain already at work (the
    previous commit's, still handling its entry: the shim then starts none) takes the new entry
    the instant it lands. Here that drain is a real ``hookrun drain`` process that has started
    (imports done) and goes to work as the commit returns; the agent's line for a request it made
    just before the commit reaches the log 40 ms after the request's timestamp. (With the drain the
    shim starts, the control case, the line is read.)"""
    env = real_env()
    r = Repo.init(tmp_path / "repo")
    subprocess.run([sys.executable, "-m", "aispend", "install"], cwd=r.path, env=env, check=True, capture_output=True)
    time.sleep(0.01)
    spend.claude(r.path, iso(datetime.now(timezone.utc)), "early")
    gd = r.path / ".git"
    q = gd / "aispend-queue"
    q.mkdir(exist_ok=True)
    busy = None if drain == "started-by-the-shim" else subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from aispend import hookrun, sources; from aispend.index import db, ingest; "
         "from aispend.pricing import table; print('ready', flush=True); sys.stdin.readline(); hookrun.drain(Path(sys.argv[1]))",
         str(gd)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    if busy:
        assert busy.stdout is not None and busy.stdin is not None
        assert busy.stdout.readline().strip() == "ready"
        (q / ".pid").write_text(str(busy.pid))  # what a drain at work has written: the shim starts no other
    (r.path / "x.txt").write_text("x")
    subprocess.run(["git", "add", "x.txt"], cwd=r.path, env=env, check=True)
    t = datetime.now(timezone.utc)  # the agent's request, made just before the commit
    subprocess.run(["git", "commit", "-q", "-m", "c"], cwd=r.path, env=env, check=True)
    if busy and busy.stdin:
        busy.stdin.write("\n")
        busy.stdin.flush()
    time.sleep(max(0.0, 0.04 - (datetime.now(timezone.utc) - t).total_seconds()))
    spend.claude(r.path, iso(t), "late-line")  # its line, 40 ms after its timestamp
    lag = (datetime.now(timezone.utc) - t).total_seconds()
    if busy and busy.stdin:
        busy.stdin.close()
        busy.wait(timeout=30)
    r.settle()
    assert lag < 0.05, f"the line was written {lag * 1000:.0f} ms after its timestamp: this machine is too slow for this test"
    assert sess(r) == ["early", "late-line"]


# -- second review -----------------------------------------------------------------------------------


@pytest.mark.parametrize("late", [False, True])
def test_a_checkout_before_a_late_drain_of_an_edit_stop_counts_nothing_twice(repo: Repo, spend: Spend, late: bool) -> None:
    """A commit made at an edit stop, then ``rebase --continue`` and a checkout of another branch,
    all before the drain runs: whether the stop's commits were thrown away is judged against HEAD
    as the hook saw it, not HEAD when the drain runs."""
    repo.git("branch", "side", "HEAD", env=at("2026-03-01T09:05:00Z"))
    a, _ = two_commits(repo, spend)
    edit_stop(repo, a, "HEAD~2", "2026-03-01T10:00:00Z")
    lock = hold_queue(repo) if late else None
    spend.claude(repo.path, "2026-03-01T10:01:00Z", "new-at-stop", branch="HEAD")
    edit(repo, "new.txt", "n")
    git(repo.path, "commit", "-q", "-m", "new at stop", env=at("2026-03-01T10:02:00Z"))
    git(repo.path, "rebase", "--continue", env={**at("2026-03-01T10:03:00Z"), "GIT_EDITOR": "true"})
    if not late:
        repo.settle()
    git(repo.path, "checkout", "-q", "side", env=at("2026-03-01T10:04:00Z"))
    if lock:
        lock.close()
        drain_now(repo)
    side = repo.commit("on side", "2026-03-01T10:30:00Z")
    assert sess(repo, side) == []
    assert sess(repo, repo.head("main~1")) == ["new-at-stop"]


@pytest.mark.parametrize("subject", ["two --", "two"])
def test_an_amend_whose_subject_ends_in_two_dashes(repo: Repo, spend: Spend, subject: str) -> None:
    """The queue entry's facts end at a line that is just ``--``; a reflog line holding a subject
    that ends in ``--`` is a fact like any other."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("one", "2026-03-01T09:30:00Z")
    spend.claude(repo.path, "2026-03-01T09:40:00Z", "s2")
    repo.git("commit", "-q", "--amend", "-m", subject, env=at("2026-03-01T09:50:00Z"))
    assert sess(repo) == ["s1", "s2"]
    assert sess(repo, repo.commit("three", "2026-03-01T10:00:00Z")) == []
