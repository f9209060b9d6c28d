"""End to end: agent logs -> real `git commit` through the installed hooks -> signed receipts in notes."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend, aispend, at, git
from tests.logbuilder import Logs

# claude-sonnet-4-5: $3 input, $15 output per million tokens -> 1000 in + 500 out = $0.0105
ONE = 10_500_000  # nano-dollars of one default request




def nusd(s: str | None) -> int:
    from aispend.receipts.model import nusd_of

    n = nusd_of(s)
    assert n is not None
    return n


def test_install_writes_three_shims_and_a_key(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "repo")
    out = r.install()
    hooks = r.path / ".git" / "hooks"
    for name in ("prepare-commit-msg", "post-commit", "post-rewrite"):
        f = hooks / name
        assert f.stat().st_mode & 0o111, name
        assert "aispend-hook: 1" in f.read_text()
    assert "installed prepare-commit-msg, post-commit, post-rewrite" in out
    key = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert f"created signing key {key}" in out
    assert "billing usage from 2026-03-01T09:00:00.000Z (now)" in out


def test_commit_carries_what_its_worktree_spent(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    spend.claude(repo.path / "src", "2026-03-01T09:20:00Z", "s1")  # a subfolder counts
    sha = repo.commit("first", "2026-03-01T09:30:00Z")
    [rec] = repo.receipts()
    assert rec["commit"] == sha
    assert rec["tree"] == repo.head("HEAD^{tree}")
    assert rec["parents"] == [repo.head("HEAD~1")]
    assert rec["author"] == "dev@example.com"
    assert rec["committed_at"] == "2026-03-01T09:30:00.000Z"
    assert rec["totals"]["requests"] == 2
    assert rec["totals"]["total_tokens"] == 3000
    assert nusd(rec["totals"]["cost_usd"]) == 2 * ONE
    assert rec["totals"]["cost_usd"] == "0.021"
    [s] = rec["sessions"]
    assert (s["tool"], s["session"], s["first_ts"], s["last_ts"]) == ("claude", "s1", "2026-03-01T09:10:00.000Z", "2026-03-01T09:20:00.000Z")
    assert s["models"][0]["model"] == "claude-sonnet-4-5-20250929"
    assert rec["window"] == {"start": "2026-03-01T09:10:00.000Z", "end": "2026-03-01T09:20:00.000Z"}
    assert rec["signer"]["principal"] == "dev@example.com"
    assert rec["signer"]["key"].startswith("ssh-ed25519 ")
    # The next commit gets only what came after.
    spend.claude(repo.path, "2026-03-01T09:40:00Z", "s1")
    repo.commit("second", "2026-03-01T09:50:00Z")
    [rec2] = repo.receipts()
    assert rec2["totals"]["requests"] == 1
    assert nusd(rec2["totals"]["cost_usd"]) == ONE


def test_usage_before_install_is_not_billed_unless_backfilled(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    spend.claude(r.path, "2026-03-01T08:30:00Z", "old")
    r.install()  # at 09:00
    r.commit("c1", "2026-03-01T09:30:00Z")
    assert r.receipts() == []
    out = r.install("--backfill", "2h", when="2026-03-01T09:35:00Z")
    assert "billing usage from 2026-03-01T07:35:00.000Z (backfilled)" in out
    r.commit("c2", "2026-03-01T09:40:00Z")
    [rec] = r.receipts()
    assert rec["sessions"][0]["session"] == "old"


def test_nothing_spent_means_no_note(repo: Repo) -> None:
    repo.commit("plain", "2026-03-01T09:30:00Z")
    assert repo.receipts() == []
    assert git(repo.path, "notes", "--ref=refs/notes/aispend", "list") == ""


def test_later_usage_and_other_dirs_and_nested_repos_are_not_claimed(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    elsewhere = tmp_path / "unrelated"
    elsewhere.mkdir()
    nested = repo.path / "vendor" / "lib"
    Repo.init(nested)  # a nested repository inside the worktree
    sibling = tmp_path / "repo-other"  # shares a prefix with the worktree's path
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "mine")
    spend.claude(elsewhere, "2026-03-01T09:10:00Z", "elsewhere")
    spend.claude(nested / "src", "2026-03-01T09:11:00Z", "nested")
    spend.claude(sibling, "2026-03-01T09:12:00Z", "sibling")
    spend.claude(repo.path, "2026-03-01T09:30:00.001Z", "late")  # a millisecond after the commit's moment
    spend.claude(repo.path, "2026-03-01T09:30:00.000Z", "at-once")  # at it
    repo.commit("c", "2026-03-01T09:30:00Z", files={"x.txt": "x"})
    [rec] = repo.receipts()
    assert [s["session"] for s in rec["sessions"]] == ["at-once", "mine"]


def test_usage_on_another_branch_waits_for_a_commit_there(repo: Repo, spend: Spend) -> None:
    repo.git("branch", "feature", env=at("2026-03-01T09:05:00Z"))
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "on-main", branch="main")
    spend.claude(repo.path, "2026-03-01T09:11:00Z", "on-feature", branch="feature")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "detached", branch="HEAD")
    repo.commit("on main", "2026-03-01T09:30:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["detached", "on-main"]
    repo.git("switch", "-q", "feature")
    repo.commit("on feature", "2026-03-01T09:40:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["on-feature"]


def test_two_worktrees_split_usage_and_never_share_a_request(repo: Repo, spend: Spend, tmp_path: Path, logs: Logs) -> None:
    wt = tmp_path / "wt-feature"
    repo.git("worktree", "add", "-q", "-b", "feature", str(wt))
    other = Repo(wt)
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "main-s", branch="main")
    spend.claude(wt, "2026-03-01T09:11:00Z", "feat-s", branch="feature")
    # Codex in the linked worktree.
    f = logs.codex_file("rollout-2026-03-01T09-00-00-11111111-2222-3333-4444-555555555555")
    from tests.logbuilder import write

    write(f, [
        Logs.codex_meta("2026-03-01T09:00:00Z", "11111111-2222-3333-4444-555555555555", cwd=str(wt), branch="feature"),
        Logs.codex_turn("2026-03-01T09:00:01Z", cwd=str(wt)),
        Logs.codex_tokens("2026-03-01T09:12:00Z", (2000, 500, 300, 100), (2000, 500, 300, 100)),
    ])
    other.commit("feature work", "2026-03-01T09:20:00Z")
    repo.commit("main work", "2026-03-01T09:21:00Z")
    [feat] = other.receipts()
    [main] = repo.receipts()
    assert [(s["tool"], s["session"]) for s in feat["sessions"]] == [
        ("claude", "feat-s"), ("codex", "11111111-2222-3333-4444-555555555555")
    ]
    assert [s["session"] for s in main["sessions"]] == ["main-s"]
    codex = feat["sessions"][1]["models"][0]
    # Codex: input 2000 of which 500 cached, output 300 of which 100 reasoning.
    assert (codex["input_tokens"], codex["cache_read_tokens"], codex["output_tokens"], codex["reasoning_tokens"]) == (1500, 500, 300, 100)
    assert feat["totals"]["total_tokens"] == 1500 + 2300
    conn = sqlite3.connect(Path(os.environ["AISPEND_HOME"]) / "state.sqlite3")
    claims = conn.execute("SELECT request_key, commit_sha FROM claims").fetchall()
    assert len(claims) == len({k for k, _ in claims}) == 3


def test_receipt_holds_nothing_private(repo: Repo, spend: Spend) -> None:
    spend.prompt(repo.path, "2026-03-01T09:05:00Z", "secret prompt text: the password is hunter2", session="s1")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("c", "2026-03-01T09:30:00Z")
    line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD")
    assert "hunter2" not in line and "secret" not in line
    assert str(repo.path) not in line and "/" + repo.path.name not in line
    [rec] = repo.receipts()
    s = rec["sessions"][0]
    assert s["prompts"] == 1
    import hashlib

    h = hashlib.sha256(b"secret prompt text: the password is hunter2").digest()
    assert s["prompt_digest"] == "sha256:" + hashlib.sha256(h).hexdigest()


def test_canonical_line_and_signature_verify_with_ssh_keygen(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    import base64
    import shutil
    import subprocess

    from aispend.receipts import sshsig
    from aispend.receipts.model import canonical, signed_part

    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("c", "2026-03-01T09:30:00Z")
    line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
    rec = json.loads(line)
    assert canonical(rec) == line  # sorted keys, no spaces
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    sig = tmp_path / "r.sig"
    sig.write_text(sshsig.armor(base64.b64decode(rec["sig"])))
    signers = tmp_path / "allowed"
    signers.write_text(f'dev@example.com namespaces="aispend-receipt" {rec["signer"]["key"]}\n')
    p = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "dev@example.com", "-n", "aispend-receipt", "-s", str(sig)],
        input=signed_part(rec), capture_output=True,
    )
    assert p.returncode == 0, p.stderr
    assert b"Good" in p.stdout + p.stderr


def test_a_hook_with_a_broken_data_dir_lets_the_commit_through(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    broken = tmp_path / "not-a-dir"
    broken.write_text("x")
    sha = repo.commit("still commits", "2026-03-01T09:30:00Z", env={"AISPEND_HOME": str(broken)})
    assert repo.head() == sha
    assert repo.git("log", "-1", "--format=%s") == "still commits\n"
    assert repo.receipts() == []


def test_running_the_hook_twice_claims_nothing_twice(repo: Repo, spend: Spend) -> None:
    import subprocess
    import sys

    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("c", "2026-03-01T09:30:00Z")
    subprocess.run([sys.executable, "-m", "aispend.hookrun", "post-commit"], cwd=repo.path, check=True, env={**os.environ, **at("2026-03-01T09:30:00Z")})
    recs = repo.receipts()
    assert len(recs) == 1  # the same line is not appended again
    assert recs[0]["totals"]["requests"] == 1
