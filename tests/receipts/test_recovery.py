"""Recovery without loss: a damaged index is rebuilt from the logs while install records, claims and
receipts (the state file) are kept, and the commits made meanwhile get their receipts then; a
damaged state file is named, with what to do, and never stops a commit."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from aispend.hookrun import QUEUE, entries
from aispend.index import db
from tests.gitutil import Repo, Spend, at, git


def data() -> Path:
    return Path(os.environ["AISPEND_HOME"])


def index() -> Path:
    return data() / "index.sqlite3"


def state() -> Path:
    return data() / "state.sqlite3"


def hooks_log() -> str:
    return (data() / "hooks.log").read_text()


def garbage(path: Path) -> None:
    """``path`` overwritten with bytes that are not SQLite at all (its WAL files gone)."""
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage, not sqlite\xff" * 4096)


def damage_pages(path: Path) -> None:
    """Every page after the first (the schema) overwritten: the index opens, its tables do not read."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file, none left in the WAL
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    raw = bytearray(path.read_bytes())
    raw[page:] = bytes((i * 7 + 3) % 251 for i in range(len(raw) - page))
    path.write_bytes(bytes(raw))


def claims() -> list[tuple[str, str]]:
    conn = sqlite3.connect(state())
    try:
        return conn.execute("SELECT request_key, commit_sha FROM claims ORDER BY request_key").fetchall()
    finally:
        conn.close()


def queued(r: Repo) -> list[str]:
    return [p.name for p in entries(r.path / ".git" / QUEUE)]


def sessions(rec: dict) -> list[str]:  # type: ignore[type-arg]
    return [s["session"] for s in rec["sessions"]]


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("aispend: error: "), p.stderr
    assert "Traceback" not in p.stderr
    return p.stderr.strip()


def check_recovery(r: Repo, spend: Spend, damage: object) -> None:
    """Commit c0 (receipted), damage the index, commit c1 with two requests (queued), rebuild:
    c1 gets exactly its usage, c0's claims hold, the next commit gets only new usage."""
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s0")
    c0 = r.commit("before the damage", "2026-03-01T09:20:00Z")
    [rec0] = r.receipts(c0)
    assert sessions(rec0) == ["s0"]
    before = claims()
    assert len(before) == 1
    damage(index())  # type: ignore[operator]
    spend.claude(r.path, "2026-03-01T09:30:00Z", "s1")
    spend.claude(r.path, "2026-03-01T09:31:00Z", "s1")
    c1 = r.commit("while the index is damaged", "2026-03-01T09:40:00Z")
    assert r.head() == c1  # the commit went through
    assert r.receipts(c1) == []
    assert len(queued(r)) == 1 and f"head={c1}\n" in (r.path / ".git" / QUEUE / queued(r)[0]).read_text()
    assert "entries wait: the next commit, or 'aispend ingest', writes them once that is fixed" in hooks_log()  # why: the index's error
    # Commands say what is wrong and what to do, in one line.
    err = one_line_error(r.aispend("usage", "--json", check=False))
    assert f"the index {index()} is unreadable (" in err
    assert err.endswith(
        "rebuild it from the logs with 'aispend ingest --rebuild' (install records, claims and receipts are kept; "
        "commits made meanwhile get their receipts then)"
    )
    out = r.aispend("ingest", "--rebuild", env=at("2026-03-01T09:45:00Z")).stdout
    assert "3 new requests, 3 in the index" in out
    assert out.splitlines()[-1] == "1 queued commit got its receipt (1 hook queue entry handled)"
    assert queued(r) == []
    [rec1] = r.receipts(c1)
    assert sessions(rec1) == ["s1"]
    assert (rec1["totals"]["requests"], rec1["totals"]["cost_usd"], rec1["totals"]["total_tokens"]) == (2, "0.021", 3000)
    assert r.receipts(c0) == [rec0]  # untouched, and s0 was not claimed again
    after = claims()
    assert set(before) < set(after) and len(after) == 3 and {sha for _, sha in after} == {c0, c1}
    # Still installed, billing from the original start.
    st = json.loads(r.aispend("status", "--json", env=at("2026-03-01T09:46:00Z")).stdout)
    assert st["billing_since"] == "2026-03-01T09:00:00.000Z"
    # The next commit gets only what is new.
    spend.claude(r.path, "2026-03-01T09:50:00Z", "s2")
    c2 = r.commit("after the rebuild", "2026-03-01T10:00:00Z")
    [rec2] = r.receipts(c2)
    assert sessions(rec2) == ["s2"] and rec2["totals"]["requests"] == 1 and rec2["totals"]["cost_usd"] == "0.0105"
    keys = [k for k, _ in claims()]
    assert len(keys) == len(set(keys)) == 4


def test_a_commit_made_while_the_index_is_garbage_gets_its_receipt_after_the_rebuild(repo: Repo, spend: Spend) -> None:
    check_recovery(repo, spend, garbage)


def test_a_commit_made_while_the_index_is_damaged_inside_gets_its_receipt_after_the_rebuild(repo: Repo, spend: Spend) -> None:
    """The index opens (its schema page is whole) but its tables do not read: the drain finds out
    half-way and keeps the entry."""
    check_recovery(repo, spend, damage_pages)


def test_the_rebuild_drains_the_queues_of_every_installed_repository_and_worktree(tmp_path: Path, spend: Spend) -> None:
    a = Repo.init(tmp_path / "a")
    a.install()
    b = Repo.init(tmp_path / "b")
    b.install()
    wt = Repo(tmp_path / "a-side")
    a.git("worktree", "add", "-q", "-b", "side", str(wt.path))
    garbage(index())
    spend.claude(a.path, "2026-03-01T09:10:00Z", "in-a")
    spend.claude(wt.path, "2026-03-01T09:11:00Z", "in-side", branch="side")
    spend.claude(b.path, "2026-03-01T09:12:00Z", "in-b")
    ca = a.commit("a", "2026-03-01T09:20:00Z")
    cw = wt.commit("side", "2026-03-01T09:21:00Z")
    cb = b.commit("b", "2026-03-01T09:22:00Z")
    nothing = b.commit("b again, no usage", "2026-03-01T09:23:00Z")
    side_queue = a.path / ".git" / QUEUE / "worktrees" / "a-side"  # in the common dir: it outlives the worktree
    assert len(entries(side_queue)) == 1 and len(queued(a)) == 1 and len(queued(b)) == 2
    out = a.aispend("ingest", "--rebuild", "--quiet").stdout
    assert out == ""  # --quiet: nothing unless something is wrong
    assert entries(side_queue) == [] and queued(a) == [] and queued(b) == []
    assert sessions(a.receipts(ca)[0]) == ["in-a"]
    assert sessions(wt.receipts(cw)[0]) == ["in-side"]
    assert sessions(b.receipts(cb)[0]) == ["in-b"]
    assert b.receipts(nothing) == []  # nothing to claim: no receipt


def test_the_rebuild_says_how_many_queued_commits_got_receipts(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "r")
    r.install()
    garbage(index())
    shas = []
    for i in range(3):
        spend.claude(r.path, f"2026-03-01T09:{10 + 10 * i}:00Z", f"s{i}")
        shas.append(r.commit(f"c{i}", f"2026-03-01T09:{15 + 10 * i}:00Z"))
    r.commit("no usage", "2026-03-01T09:50:00Z")
    assert len(queued(r)) == 4
    out = r.aispend("ingest", "--rebuild").stdout
    assert out.splitlines()[-1] == "3 queued commits got their receipts (4 hook queue entries handled)"
    assert [sessions(r.receipts(sha)[0]) for sha in shas] == [["s0"], ["s1"], ["s2"]]  # each its own, in order
    # A second rebuild finds no queue: nothing said about one.
    out = r.aispend("ingest", "--rebuild").stdout
    assert "queued" not in out and len(out.splitlines()) == 1


def test_an_unreadable_state_file_is_named_with_what_to_do_and_commits_still_go_through(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s0")
    c0 = repo.commit("c0", "2026-03-01T09:20:00Z")
    assert sessions(repo.receipts(c0)[0]) == ["s0"]
    garbage(state())
    q = str(state())
    expected = (
        f"aispend: error: the state file {q} is unreadable (file is not a database): move it aside (mv {q} {q}.broken), "
        "then run 'aispend install' again in each repository, which starts billing anew (receipts already written stay in the notes)"
    )
    for args in (["status"], ["usage"], ["ingest"], ["ingest", "--rebuild"], ["install"], ["report", "--since", "30d"]):
        p = repo.aispend(*args, check=False)
        if args[0] == "report":
            continue  # reads the notes: it needs no state (its cache of verifications is skipped)
        assert one_line_error(p) == expected, args
    assert index().exists() and index().stat().st_size > 0  # the refused rebuild deleted nothing
    # The commit goes through, silently; the hooks log why no receipt came.
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "s1")
    (repo.path / "f1").write_text("x")
    repo.git("add", "f1")
    p = subprocess.run(["git", "commit", "-q", "-m", "c1"], cwd=repo.path, capture_output=True, text=True,
                       env={**os.environ, **at("2026-03-01T09:40:00Z")})
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    repo.settle()
    assert repo.receipts() == []
    assert f"the state file {q} is unreadable" in hooks_log()
    # doctor names it, with the fix.
    fs = json.loads(repo.aispend("doctor", "--json", check=False).stdout)
    [bad] = [f for f in fs if f["check"] == "state"]
    assert not bad["ok"] and bad["message"] == expected.removeprefix("aispend: error: ")
    assert bad["fix"].startswith(f"mv {q} {q}.broken, then aispend install in each repository")
    # Doing what it says works: a new billing start, receipts again.
    state().rename(q + ".broken")
    repo.install(when="2026-03-01T10:00:00Z")
    spend.claude(repo.path, "2026-03-01T10:10:00Z", "s2")
    c2 = repo.commit("c2", "2026-03-01T10:20:00Z")
    assert sessions(repo.receipts(c2)[0]) == ["s2"]  # billing starts anew: s1 (09:30) is before it
    assert repo.receipts(c0) != []  # receipts already written stay in the notes


def test_doctor_checks_the_state_file(repo: Repo) -> None:
    fs = json.loads(repo.aispend("doctor", "--json").stdout)
    [ok] = [f for f in fs if f["check"] == "state"]
    assert ok["ok"] and ok["message"] == f"{state()} (schema {db.STATE_VERSION}, mode 0600)"
    state().chmod(0o644)
    p = repo.aispend("doctor", "--json", check=False)
    assert p.returncode == 1
    [bad] = [f for f in json.loads(p.stdout) if f["check"] == "state"]
    assert bad == {"check": "state", "ok": False, "fix": f"chmod 600 {state()}",
                   "message": f"{state()} has mode 0644: others can read this machine's install records, claims and receipts"}


def test_a_rebuild_while_a_drain_holds_a_queue_leaves_its_entries_to_it(repo: Repo, spend: Spend) -> None:
    """A queue whose lock another drain holds is that drain's: the rebuild says its entries wait."""
    import fcntl

    garbage(index())
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s0")
    sha = repo.commit("c0", "2026-03-01T09:20:00Z")
    q = repo.path / ".git" / QUEUE
    with open(q / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = repo.aispend("ingest", "--rebuild").stdout
    assert out.splitlines()[-2:] == [
        "0 queued commits got their receipts (0 hook queue entries handled)",
        "1 hook queue entry still waits: hooks.log in the data dir says why; fix that, then run aispend ingest again",
    ]
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "next", env=at("2026-03-01T09:30:00Z"))
    repo.settle()
    assert sessions(repo.receipts(sha)[0]) == ["s0"]
