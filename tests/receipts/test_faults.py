"""Faults: kill -9 of the receipt builder and of sync at random moments, a clock moved backwards."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.gitutil import Person, Repo, Spend, at, bare_remote, note_lines, work


def test_killing_the_drain_at_random_moments_loses_and_doubles_nothing(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()
    db = Path(os.environ["AISPEND_HOME"]) / "index.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the hooks queue the commits and give up on the index
    shas = []
    try:
        for i in range(6):
            spend.claude(r.path, f"2026-03-01T09:{10 + 5 * i}:00Z", f"s{i}")
            shas.append(r.commit(f"c{i}", f"2026-03-01T09:{12 + 5 * i}:00Z", env={"AISPEND_HOOK_BUSY_WAIT": "0.05"}))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    gd = r.path / ".git"
    rng = random.Random(7)
    for _ in range(8):
        p = subprocess.Popen([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], env={**os.environ, **at("2026-03-01T10:00:00Z")})
        time.sleep(rng.uniform(0.05, 0.6))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "drain", str(gd)], check=True, env={**os.environ, **at("2026-03-01T10:00:00Z")})
    for i, sha in enumerate(shas):
        recs = r.receipts(sha)
        assert len(recs) == 1, (i, recs)
        assert [s["session"] for s in recs[0]["sessions"]] == [f"s{i}"]
    keys = [k for (k,) in sqlite3.connect(db.with_name("state.sqlite3")).execute("SELECT request_key FROM claims")]
    assert len(keys) == len(set(keys)) == 6


def test_killing_sync_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    bare = bare_remote(tmp_path)
    alice, bob = Person("alice", tmp_path, bare), Person("bob", tmp_path, bare)
    for p, base in ((alice, 10), (bob, 30)):
        p.repo.install()
        p.repo.git("switch", "-q", "-c", f"b-{p.name}")
        for n in range(3):
            work(p, n, branch=f"b-{p.name}", minute=base + 2 * n)
    rng = random.Random(11)
    for _ in range(6):
        procs = [subprocess.Popen([sys.executable, "-m", "aispend", "sync", "-q"], cwd=p.repo.path, env={**os.environ, **p.env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in (alice, bob)]
        time.sleep(rng.uniform(0.05, 0.5))
        for pr in procs:
            if pr.poll() is None:
                pr.send_signal(signal.SIGKILL)
            pr.wait()
    for p in (alice, bob, alice):
        p.repo.aispend("sync", "-q")
    assert len(note_lines(bare)) == 6
    assert note_lines(alice.repo.path) == note_lines(bob.repo.path) == note_lines(bare)
    # A killed sync may leave a scratch ref behind: doctor names it (and how to remove it), nothing else.
    for p in (alice, bob):
        bad = [f for f in json.loads(p.repo.aispend("doctor", "--json", check=False).stdout) if not f["ok"]]
        assert all(f["message"].startswith("a leftover scratch ref refs/notes/aispend-scratch/") for f in bad), bad


def test_a_clock_moved_backwards(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "s1")
    sha = repo.commit("dated before the usage", "2026-03-01T09:20:00Z")  # the commit goes through
    assert repo.head() == sha and repo.receipts() == []
    repo.commit("next", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["s1"]  # the usage lands on the next one


def test_a_notes_ref_locked_by_git_itself(repo: Repo, spend: Spend) -> None:
    lock = repo.path / ".git" / "refs" / "notes" / "aispend.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("held by another git process\n")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    first = repo.commit("while locked", "2026-03-01T09:20:00Z")  # the commit goes through
    assert repo.head() == first and repo.receipts(first) == []
    assert "is locked by another git process" in (Path(os.environ["AISPEND_HOME"]) / "hooks.log").read_text()
    lock.unlink()
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "s2")
    second = repo.commit("unlocked", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in repo.receipts(first)[0]["sessions"]] == ["s1"]  # arrives with the next commit
    assert [s["session"] for s in repo.receipts(second)[0]["sessions"]] == ["s2"]
