"""aispend sync between clones of one bare remote: every receipt line reaches everyone, none is lost."""

from __future__ import annotations

import subprocess
import sys
import os
import json
from pathlib import Path

import pytest

from tests.gitutil import Person, git, pushed_feature, work
from tests.gitutil import note_lines as lines


def test_receipts_reach_every_clone_in_any_order(alice: Person, bob: Person, remote: Path) -> None:
    work(alice, 1)
    alice.repo.git("push", "-q", "origin", "main")
    out = alice.repo.aispend("sync").stdout
    assert out.strip() == "receipts synced with origin: it had none, pushed ours"
    bob.repo.git("pull", "-q", "--rebase", "origin", "main")
    bob.repo.git("switch", "-q", "-c", "feature")
    work(bob, 1, branch="feature", minute=20)
    bob.repo.git("push", "-q", "origin", "feature")
    assert bob.repo.aispend("sync", "origin").stdout.strip() == "receipts synced with origin: merged theirs, pushed ours"
    assert alice.repo.aispend("sync").stdout.strip() == "receipts synced with origin: merged theirs, it had all of ours"
    assert lines(alice.repo.path) == lines(bob.repo.path) == lines(remote)
    assert len(lines(remote)) == 2
    for p in (alice, bob):
        p.repo.git("fetch", "-q", "origin")
        v = p.repo.aispend("verify", "origin/main", "origin/feature")
        assert "2 receipts" in v.stdout and v.stdout.strip().endswith("OK")


def test_concurrent_syncs_lose_nothing(alice: Person, bob: Person, tmp_path: Path, remote: Path) -> None:
    carol = Person("carol", tmp_path, remote)
    carol.repo.install()
    people = [alice, bob, carol]
    for i, p in enumerate(people):
        p.repo.git("switch", "-q", "-c", f"b-{p.name}")
        for n in range(3):
            work(p, n, branch=f"b-{p.name}", minute=10 + 10 * i + 2 * n)
    for _ in range(2):  # racing syncs; some lose the push race and go round again
        procs = [
            subprocess.Popen([sys.executable, "-m", "aispend", "sync", "-q"], cwd=p.repo.path,
                             env={**os.environ, **p.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for p in people
        ]
        for pr in procs:
            out, err = pr.communicate(timeout=120)
            assert pr.returncode == 0, err
    for p in people:
        p.repo.aispend("sync", "-q")
    assert len(lines(remote)) == 9
    assert lines(alice.repo.path) == lines(bob.repo.path) == lines(carol.repo.path) == lines(remote)


def test_unknown_remote_is_one_clear_line(alice: Person) -> None:
    p = alice.repo.aispend("sync", "nowhere", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == "aispend: error: no remote named 'nowhere' (remotes here: origin)"


def test_a_remote_that_refuses_the_push_loses_nothing_here(alice: Person, remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'notes are not welcome' >&2\nexit 1\n")
    hook.chmod(0o755)
    work(alice, 1)
    before = lines(alice.repo.path)
    p = alice.repo.aispend("sync", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("aispend: error: cannot push receipts to origin: ")
    assert "pre-receive hook declined" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert lines(alice.repo.path) == before and len(before) == 1


def test_a_notes_ref_that_is_not_notes_is_left_alone(alice: Person, remote: Path) -> None:
    blob = git(remote, "hash-object", "-w", "--stdin", input="a stray file\n").strip()
    git(remote, "update-ref", "refs/notes/aispend", blob)
    work(alice, 1)
    p = alice.repo.aispend("sync", check=False)
    assert p.returncode == 1
    assert "origin's refs/notes/aispend is not a notes commit" in p.stderr
    assert len(lines(alice.repo.path)) == 1
    assert git(remote, "rev-parse", "refs/notes/aispend").strip() == blob


def test_an_unreachable_remote(alice: Person, tmp_path: Path) -> None:
    alice.repo.git("remote", "add", "gone", str(tmp_path / "no-such-repo"))
    work(alice, 1)
    p = alice.repo.aispend("sync", "gone", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("aispend: error: cannot fetch receipts from gone: ")
    assert len(lines(alice.repo.path)) == 1


def refs(repo_path: Path) -> dict[str, str]:
    out = git(repo_path, "for-each-ref", "--format=%(refname) %(objectname)")
    return {name: sha for name, sha in (line.split() for line in out.splitlines())}


def test_install_sync_pushes_receipts_with_a_plain_push_and_nothing_else(tmp_path: Path, remote: Path) -> None:
    alice = Person("alice", tmp_path, remote)
    out = alice.repo.install("--sync")
    assert "installed prepare-commit-msg, post-commit, post-rewrite, post-merge, pre-push" in out
    assert "git fetch origin now brings its receipts too (into refs/notes/remotes/origin/aispend)" in out
    assert alice.repo.git("config", "--get-all", "remote.origin.fetch").splitlines() == [
        "+refs/heads/*:refs/remotes/origin/*", "+refs/notes/aispend:refs/notes/remotes/origin/aispend"
    ]
    assert alice.repo.git("config", "--get-all", "remote.origin.push", check=False) == ""
    before = refs(remote)
    sha = work(alice, 1)
    alice.repo.git("switch", "-q", "-c", "side")
    alice.repo.git("switch", "-q", "main")
    p = subprocess.run(["git", "push", "-q"], cwd=alice.repo.path, capture_output=True, text=True, env={**os.environ, **alice.env})
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "aispend: receipts synced with origin"
    after = refs(remote)
    assert set(after) - set(before) == {"refs/notes/aispend"}  # the side branch was not pushed
    assert after["refs/heads/main"] == sha and before["refs/heads/main"] != sha
    assert len(lines(remote)) == 1
    # A second install (same options) changes nothing; uninstall takes it all back.
    assert "already installed" in alice.repo.install("--sync")
    assert len(alice.repo.git("config", "--get-all", "remote.origin.fetch").splitlines()) == 2
    out = alice.repo.aispend("uninstall").stdout
    assert "git fetch origin no longer brings receipts" in out
    assert alice.repo.git("config", "--get-all", "remote.origin.fetch").splitlines() == ["+refs/heads/*:refs/remotes/origin/*"]
    assert not (alice.repo.path / ".git" / "hooks" / "pre-push").exists()


def test_fetch_brings_receipts_into_the_tracking_ref_only(alice: Person, tmp_path: Path, remote: Path) -> None:
    bob = Person("bob", tmp_path, remote)
    bob.repo.install("--sync")
    work(bob, 1)  # bob's own receipt, not pushed yet
    mine = lines(bob.repo.path)
    work(alice, 1, minute=20)
    alice.repo.git("push", "-q", "origin", "main")
    alice.repo.aispend("sync")
    bob.repo.git("fetch", "-q", "origin")
    assert lines(bob.repo.path) == mine  # a fetch never touches the local receipts
    assert len(lines(bob.repo.path, "refs/notes/remotes/origin/aispend")) == 1
    bob.repo.aispend("sync")
    assert len(lines(bob.repo.path)) == 2


def test_a_failing_sync_never_blocks_the_push(tmp_path: Path, remote: Path) -> None:
    alice = Person("alice", tmp_path, remote)
    alice.repo.install("--sync")
    blob = git(remote, "hash-object", "-w", "--stdin", input="stray\n").strip()
    git(remote, "update-ref", "refs/notes/aispend", blob)
    sha = work(alice, 1)
    p = subprocess.run(["git", "push", "-q"], cwd=alice.repo.path, capture_output=True, text=True, env={**os.environ, **alice.env})
    assert p.returncode == 0
    assert "aispend: receipts not synced with origin:" in p.stderr and "(the push goes on)" in p.stderr
    assert refs(remote)["refs/heads/main"] == sha


def test_same_branch_both_orders_and_verify_everywhere(alice: Person, bob: Person, remote: Path) -> None:
    work(alice, 1, minute=10)
    alice.repo.git("push", "-q", "origin", "main")
    bob.repo.aispend("sync")  # bob first: nothing of his yet, takes alice's
    bob.repo.git("pull", "-q", "--rebase", "origin", "main")
    work(bob, 1, minute=20)
    bob.repo.git("push", "-q", "origin", "main")
    work(alice, 2, minute=30)  # alice commits again before she hears of bob's
    alice.repo.aispend("sync")
    bob.repo.aispend("sync")
    alice.repo.aispend("sync")
    assert len(lines(remote)) == 3
    assert lines(alice.repo.path) == lines(bob.repo.path) == lines(remote)
    # Each clone verifies the receipts of the commits it has (alice's second one is not pushed).
    for p, expect in ((alice, "4 commits, 3 with receipts"), (bob, "3 commits, 2 with receipts")):
        p.repo.git("fetch", "-q", "origin")
        out = p.repo.aispend("verify", "origin/main", "main").stdout
        assert expect in out and out.strip().endswith("OK"), out


def test_a_push_that_loses_the_race_is_retried(alice: Person, bob: Person, remote: Path) -> None:
    from aispend import git as g
    from aispend.notes import sync

    work(alice, 1, minute=10)
    work(bob, 1, minute=20)
    a = g.find_repo(alice.repo.path)
    theirs = sync.fetch(a, "origin")
    assert theirs is None
    bob.repo.aispend("sync")  # bob pushes between alice's fetch and her push
    assert sync.push(a, "origin") is False  # non-fast-forward: not forced, not an error
    assert len(lines(remote)) == 1
    res = sync.sync(a, "origin")
    assert res.pushed and res.merged and res.attempts == 1
    assert len(lines(remote)) == 2


def test_a_rebased_and_force_pushed_branch_keeps_its_spend(alice: Person, bob: Person, remote: Path) -> None:
    pushed_feature(alice)
    work(bob, 1, minute=30)
    bob.repo.git("push", "-q", "origin", "main")
    bob.repo.aispend("sync")
    alice.repo.git("fetch", "-q", "origin")
    alice.repo.git("rebase", "-q", "origin/main", env={"GIT_COMMITTER_DATE": "2026-03-01T09:40:00Z"})
    alice.repo.git("push", "-q", "--force", "origin", "feature")
    alice.repo.aispend("sync")
    bob.repo.git("fetch", "-q", "origin")
    bob.repo.aispend("sync")
    import json

    views = [json.loads(bob.repo.aispend("show", "--json", rev).stdout) for rev in ("origin/feature~1", "origin/feature")]
    assert [v["totals"]["requests"] for v in views] == [1, 1]
    assert sum(v["totals"]["cost_usd"] for v in views) == 0.021
    assert all(len(v["receipts"][0]["carried_from"]) == 1 for v in views)


def test_a_stray_file_in_the_remote_notes_tree_is_never_dropped(alice: Person, bob: Person, remote: Path) -> None:
    work(bob, 1, minute=20)
    bob.repo.aispend("sync")
    # Someone commits a README into the remote's notes tree (not a note: its path is no object id).
    tip = git(remote, "rev-parse", "refs/notes/aispend").strip()
    tree = git(remote, "ls-tree", tip)
    blob = git(remote, "hash-object", "-w", "--stdin", input="not a receipt\n").strip()
    new_tree = git(remote, "mktree", input=tree + f"100644 blob {blob}\tREADME\n").strip()
    env = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@example.com", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@example.com"}
    stray = git(remote, "commit-tree", new_tree, "-p", tip, "-m", "stray", env=env).strip()
    git(remote, "update-ref", "refs/notes/aispend", stray)
    work(alice, 1, minute=10)
    # Not a receipt, never read as one, but someone's file: kept as it is, and the sync goes on
    # (refusing would let one push stop every clone's receipts).
    alice.repo.aispend("sync")
    remote_tip = git(remote, "rev-parse", "refs/notes/aispend").strip()
    git(remote, "merge-base", "--is-ancestor", stray, remote_tip)
    assert git(remote, "show", f"{remote_tip}:README") == "not a receipt\n"
    assert len(lines(remote)) == 2 and len(lines(alice.repo.path)) == 2  # bob's and alice's receipts
    assert git(alice.repo.path, "show", "refs/notes/aispend:README") == "not a receipt\n"
    assert json.loads(alice.repo.aispend("verify", "--json").stdout)["ok"] is True
