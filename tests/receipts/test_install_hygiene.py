"""Install hygiene: a named key is never re-created, shared hooks folders need a flag and act only
where aispend is installed, the data dir is private, and install onboards the repository to trust."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aispend.hookrun import QUEUE, entries
from aispend.receipts import keys
from tests.gitutil import Repo, Spend, aispend, at, git


def data() -> Path:
    return Path(os.environ["AISPEND_HOME"])


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def bad_findings(repo: Repo) -> dict[str, str | None]:
    p = repo.aispend("doctor", "--json", check=False)
    return {f["message"]: f["fix"] for f in json.loads(p.stdout) if not f["ok"]}


def hooks_log() -> str:
    return (data() / "hooks.log").read_text()


def run_shell(repo: Repo, command: str) -> None:
    """A command line as a user types it, ``aispend`` being this Python's."""
    command = re.sub(r"(?<![./\w])aispend ", f"{shlex.quote(sys.executable)} -m aispend ", command)
    subprocess.run(command, shell=True, cwd=repo.path, check=True, env={**os.environ, **repo.env})


# -- 1. a named key that goes missing is an error, never a new key ------------------------------


def test_a_missing_named_key_waits_and_is_never_recreated(tmp_path: Path, spend: Spend) -> None:
    k = tmp_path / "mykeys" / "id_ed25519"
    k.parent.mkdir()
    keys.create_key(k, "me")
    r = Repo.init(tmp_path / "repo")
    assert f"signing with {k}" in r.install("--key", str(k))
    assert mode(data() / "keys" / "key-path") == 0o600
    saved = k.read_bytes()
    k.unlink()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    first = r.commit("key gone", "2026-03-01T09:20:00Z")
    # No new key, neither at the named path nor in the data dir; the entry waits in the queue.
    assert not k.exists() and not (data() / "keys" / "aispend_ed25519").exists()
    assert r.receipts(first) == []
    assert len(entries(r.path / ".git" / QUEUE)) == 1
    problem = f"signing key {k} does not exist: restore it, or run aispend install --key NEW or aispend install to go back to aispend's own key"
    assert problem in hooks_log()
    st = r.aispend("status").stdout
    assert f"signing key: {k} ({problem})" in st
    assert "waiting for receipts: 1 hook entry in " in st
    assert json.loads(r.aispend("status", "--json").stdout)["queued"] == 1
    bad = bad_findings(r)
    assert bad[f"signing key {k} does not exist: commits wait for their receipts"] == (
        "restore it, or run aispend install --key NEW or aispend install to go back to aispend's own key"
    )
    assert any(m.startswith("receipts not written yet: 1 hook entry waits in") for m in bad)
    p = r.aispend("key", check=False)
    assert p.returncode == 1 and p.stderr == f"aispend: error: {problem}\n"
    assert not k.exists()
    # Restored: the next commit's drain writes the waiting receipt first, then its own.
    k.write_bytes(saved)
    k.chmod(0o600)
    spend.claude(r.path, "2026-03-01T09:30:00Z", "s2")
    second = r.commit("key back", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in r.receipts(first)[0]["sessions"]] == ["s1"]
    assert [s["session"] for s in r.receipts(second)[0]["sessions"]] == ["s2"]
    assert entries(r.path / ".git" / QUEUE) == []


def test_a_plain_install_goes_back_to_aispends_own_key(tmp_path: Path, spend: Spend) -> None:
    k = tmp_path / "id_ed25519"
    keys.create_key(k, "me")
    r = Repo.init(tmp_path / "repo")
    r.install("--key", str(k))
    k.unlink()
    out = r.install()
    own = data() / "keys" / "aispend_ed25519"
    assert f"signing key {k} does not exist: signing with aispend's own key again" in out
    assert f"created signing key {own}" in out
    assert not k.exists()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("c", "2026-03-01T09:20:00Z")
    [rec] = r.receipts()
    assert rec["signer"]["key"] == keys.load_key(own).public_line


def test_install_with_a_key_that_does_not_exist_changes_nothing(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "repo")
    k = tmp_path / "nope"
    p = r.aispend("install", "--key", str(k), check=False)
    assert p.returncode == 1 and p.stderr == f"aispend: error: signing key {k} does not exist\n"
    assert not k.exists() and not (data() / "keys").exists()
    assert not (r.path / ".git" / "hooks" / "post-commit").exists()


# -- 2. a shared hooks folder -------------------------------------------------------------------


def _repo_with_remote(root: Path, name: str, shared: Path) -> tuple[Repo, Path]:
    bare = root / f"{name}.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    r = Repo.init(root / name)
    r.git("remote", "add", "origin", str(bare))
    r.git("push", "-q", "-u", "origin", "main")
    r.git("config", "core.hooksPath", str(shared))
    return r, bare


def _push(r: Repo) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=r.path, capture_output=True, text=True, env={**os.environ, **at("2026-03-01T11:00:00Z")})
    assert p.returncode == 0, p.stderr
    return p


def _notes_at(bare: Path) -> str:
    return git(bare, "for-each-ref", "refs/notes/")


def test_a_shared_hooks_folder_acts_only_where_installed(tmp_path: Path, spend: Spend) -> None:
    shared = tmp_path / "githooks"
    shared.mkdir()
    a, a_remote = _repo_with_remote(tmp_path, "a", shared)
    b, b_remote = _repo_with_remote(tmp_path, "b", shared)
    # Installing into a folder other repositories use needs saying so.
    p = a.aispend("install", "--sync", check=False, env=at("2026-03-01T09:00:00Z"))
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and str(shared) in p.stderr and "--shared-hooks" in p.stderr
    assert list(shared.iterdir()) == [] and not (data() / "keys").exists()
    assert "installed prepare-commit-msg, post-commit, post-rewrite, post-merge, pre-push" in a.install("--sync", "--shared-hooks")
    # B runs the same hooks but was never installed: no receipt, no install record, nothing pushed.
    spend.claude(b.path, "2026-03-01T09:10:00Z", "b1")
    b.commit("b not installed", "2026-03-01T09:20:00Z")
    assert b.receipts() == []
    assert f"{b.path / '.git'}: no install record: no receipt" in hooks_log()
    assert entries(b.path / ".git" / QUEUE) == []
    conn = sqlite3.connect(data() / "state.sqlite3")
    assert [r[0] for r in conn.execute("SELECT repo FROM installs")] == [str(a.path / ".git")]
    conn.close()
    assert "aispend" not in _push(b).stderr
    assert _notes_at(b_remote) == ""
    assert "no install record: the hooks do nothing here (no receipts)" in bad_findings(b)
    # Installed in B without --sync: receipts, but a push does not sync them.
    p = b.aispend("install", check=False)
    assert p.returncode == 1 and "--shared-hooks" in p.stderr
    b.install("--shared-hooks", when="2026-03-01T09:30:00Z")
    spend.claude(b.path, "2026-03-01T09:40:00Z", "b2")
    b.commit("b installed", "2026-03-01T09:50:00Z")
    assert [s["session"] for s in b.receipts()[0]["sessions"]] == ["b2"]
    assert "aispend" not in _push(b).stderr
    assert _notes_at(b_remote) == ""
    fs = json.loads(b.aispend("doctor", "--json", check=False).stdout)
    assert {"check": "install", "ok": True, "fix": None,
            "message": "pre-push is installed, but this repository was installed without --sync: pushes do not sync receipts"} in fs
    # A was installed with --sync: its push syncs.
    spend.claude(a.path, "2026-03-01T09:41:00Z", "a1")
    a.commit("a", "2026-03-01T09:51:00Z")
    assert _push(a).stderr.strip() == "aispend: receipts synced with origin"
    assert "refs/notes/aispend" in _notes_at(a_remote)


def test_hooks_in_a_repository_whose_install_record_is_gone_do_nothing(repo: Repo, spend: Spend) -> None:
    for name in ("index.sqlite3", "state.sqlite3"):  # the data dir wiped (a rebuilt index keeps the records)
        for suffix in ("", "-wal", "-shm"):
            Path(str(data() / name) + suffix).unlink(missing_ok=True)
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("after a wiped data dir", "2026-03-01T09:20:00Z")
    assert repo.receipts() == []
    assert "no install record: no receipt" in hooks_log()
    # Nothing re-created the record: only 'aispend install' does.
    assert repo.aispend("status", "--json").stdout.count('"billing_since": null') == 1


def test_uninstall_stops_syncing(tmp_path: Path) -> None:
    r, _ = _repo_with_remote(tmp_path, "a", tmp_path / "unused")
    r.git("config", "--unset", "core.hooksPath")
    r.install("--sync")
    r.install()  # a plain reinstall keeps --sync
    conn = sqlite3.connect(data() / "state.sqlite3")
    assert conn.execute("SELECT sync FROM installs").fetchone()[0] == 1
    r.aispend("uninstall")
    assert conn.execute("SELECT sync FROM installs").fetchone()[0] == 0
    conn.close()


def test_an_install_from_before_sync_was_recorded_asks_instead_of_syncing(tmp_path: Path, spend: Spend) -> None:
    r, remote = _repo_with_remote(tmp_path, "a", tmp_path / "unused")
    r.git("config", "--unset", "core.hooksPath")
    r.install("--sync")
    conn = sqlite3.connect(data() / "state.sqlite3", isolation_level=None)
    conn.execute("UPDATE installs SET sync = NULL")  # as migration 4 leaves an older install
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("c", "2026-03-01T09:20:00Z")
    assert _push(r).stderr == (
        "aispend: receipts not synced: run aispend install --sync here to sync them on push (or aispend install to stop this note)\n"
    )
    assert _notes_at(remote) == ""
    assert bad_findings(r)["pre-push is installed but this repository's install did not record --sync: pushes do not sync receipts"] == (
        "aispend install --sync (or aispend install to keep not syncing)"
    )
    r.install()  # the choice made: no sync, no note
    assert conn.execute("SELECT sync FROM installs").fetchone()[0] == 0
    conn.close()
    r.commit("d", "2026-03-01T09:30:00Z")
    assert _push(r).stderr == "" and _notes_at(remote) == ""


def test_migration_4_adds_sync_to_existing_installs(tmp_path: Path) -> None:
    from aispend.index import db

    from tests.util import old_index

    path = tmp_path / "old.sqlite3"
    old = old_index(path, 3)
    old.execute("INSERT INTO installs (repo, installed_ms, since_ms, trailer) VALUES ('/r/.git', 1, 2, 1)")
    old.close()
    # Before the migration, the hooks' read-only look still finds the record (sync unknown).
    assert db.read_install("/r/.git", path) == db.Install(since_ms=2, trailer=True, sync=None)
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    # Installed before the choice was recorded: NULL, which pre-push treats as "ask", never as yes.
    assert conn.execute("SELECT repo, since_ms, trailer, sync FROM installs").fetchall() == [("/r/.git", 2, 1, None)]
    conn.close()
    assert db.read_install("/r/.git", path) == db.Install(since_ms=2, trailer=True, sync=None)
    assert db.read_install("/elsewhere/.git", path) is None
    assert db.read_install("/r/.git", tmp_path / "nowhere" / "missing.sqlite3") is None
    assert not (tmp_path / "nowhere").exists()


# -- 3. the data dir is private -----------------------------------------------------------------


def test_the_data_dir_and_its_files_are_private_whatever_the_umask(tmp_path: Path, spend: Spend) -> None:
    assert not data().exists()
    old = os.umask(0)  # the most permissive: every mode below is aispend's own doing
    try:
        r = Repo.init(tmp_path / "repo")
        r.install()
        spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
        r.commit("c", "2026-03-01T09:20:00Z")
        assert len(r.receipts()) == 1
        other = Repo.init(tmp_path / "other")  # hooks copied in, not installed: a line in hooks.log
        for hook in ("post-commit", "prepare-commit-msg", "post-rewrite"):
            (other.path / ".git" / "hooks" / hook).write_bytes((r.path / ".git" / "hooks" / hook).read_bytes())
            (other.path / ".git" / "hooks" / hook).chmod(0o755)
        other.commit("c", "2026-03-01T09:30:00Z")
        index, state = data() / "index.sqlite3", data() / "state.sqlite3"
        # SQLite gives -wal and -shm the database file's mode: hold them open to see them.
        conns = [sqlite3.connect(index), sqlite3.connect(state)]
        conns[0].execute("SELECT count(*) FROM requests").fetchone()
        conns[1].execute("SELECT count(*) FROM installs").fetchone()
        wal = [Path(str(f) + s) for f in (index, state) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in wal)
        assert {str(p.name): mode(p) for p in wal} == {
            "index.sqlite3-wal": 0o600, "index.sqlite3-shm": 0o600, "state.sqlite3-wal": 0o600, "state.sqlite3-shm": 0o600
        }
        for c in conns:
            c.close()
    finally:
        os.umask(old)
    assert mode(data()) == 0o700
    assert mode(index) == mode(state) == 0o600
    assert mode(data() / "keys") == 0o700
    assert mode(data() / "keys" / "aispend_ed25519") == 0o600
    assert "no install record" in hooks_log()
    assert mode(data() / "hooks.log") == 0o600


def test_private_dir_makes_the_data_dir_0700_even_below_missing_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aispend import paths

    monkeypatch.setenv("AISPEND_HOME", str(tmp_path / "a" / "b" / "data"))
    old = os.umask(0o022)
    try:
        d = paths.data_subdir("keys")
    finally:
        os.umask(old)
    assert d == tmp_path / "a" / "b" / "data" / "keys"
    assert mode(d) == mode(d.parent) == 0o700
    assert mode(tmp_path / "a" / "b") == 0o755  # not aispend's: made as any folder
    (tmp_path / "x").write_text("x")
    with pytest.raises(FileExistsError):
        paths.private_dir(tmp_path / "x")


# -- 4. onboarding to trust ---------------------------------------------------------------------


def test_key_line_prints_only_the_allowed_signers_line(repo: Repo) -> None:
    out = repo.aispend("key", "--line").stdout
    pub = keys.load_key(data() / "keys" / "aispend_ed25519").public_line
    assert out == keys.allowed_signers_line("dev@example.com", pub) + "\n"
    assert repo.aispend("key", "--line", "--principal", "ci@example.com").stdout.startswith("ci@example.com ")


def test_install_creates_the_trust_list_when_there_is_none(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    out = r.install()
    assert "trust: created .aispend/allowed_signers with your key; commit it so teammates and CI trust your receipts" in out
    signers = r.path / ".aispend" / "allowed_signers"
    assert signers.read_text() == r.aispend("key", "--line").stdout
    # Trusted from the first commit on; a second install says so and changes nothing.
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("c", "2026-03-01T09:20:00Z")
    v = r.aispend("verify").stdout
    assert "1 receipt: 1 valid" in v and "WARNING" not in v
    before = signers.read_bytes()
    assert "trust: .aispend/allowed_signers trusts your key" in r.install()
    assert signers.read_bytes() == before
    assert "trust" not in {f.split()[1] for f in r.aispend("doctor").stdout.splitlines() if f.startswith("FIX")}


def test_install_leaves_a_list_that_does_not_trust_this_key_alone_and_says_how(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "repo")
    stranger = keys.create_key(tmp_path / "stranger", "s")
    signers = r.path / ".aispend" / "allowed_signers"
    signers.parent.mkdir()
    text = "# the team\n" + keys.allowed_signers_line("carol@example.com", stranger.public_line) + "\n"
    signers.write_text(text)
    out = r.install()
    assert signers.read_text() == text
    line = r.aispend("key", "--line").stdout.strip()
    assert "trust: .aispend/allowed_signers does not trust your key for dev@example.com; the line that does:" in out
    assert f"\n  {line}\n" in out
    assert "add it with: aispend key --line >> .aispend/allowed_signers, then commit it" in out
    bad = bad_findings(r)
    msg = ".aispend/allowed_signers does not trust this machine's key for dev@example.com: its receipts do not count"
    assert bad[msg] == "aispend key --line >> .aispend/allowed_signers, then commit it"
    # The command it names does it.
    run_shell(r, "aispend key --line >> .aispend/allowed_signers")
    assert msg not in bad_findings(r)
    assert "trust: .aispend/allowed_signers trusts your key" in r.install()


def test_doctor_names_a_missing_trust_list_and_its_fix(repo: Repo) -> None:
    (repo.path / ".aispend" / "allowed_signers").unlink()
    (repo.path / ".aispend").rmdir()
    bad = bad_findings(repo)
    fix = bad["no allowed-signers list: no receipt counts in verify, reports or budgets"]
    assert fix == "mkdir -p .aispend && aispend key --line >> .aispend/allowed_signers, then commit it"
    run_shell(repo, fix.removesuffix(", then commit it"))
    assert not [m for m in bad_findings(repo) if "allowed-signers" in m or "trust" in m]


def test_install_never_writes_the_trust_list_through_a_link(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (r.path / ".aispend").symlink_to(elsewhere)
    out = r.install()
    assert f"trust: {r.path / '.aispend'} is a symbolic link: not creating .aispend/allowed_signers through it" in out
    assert list(elsewhere.iterdir()) == []
