"""Receipts survive forge merges (aispend carry) and chains of rewrites, totals intact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aispend.receipts.model import nusd_of
from tests.gitutil import Person, Repo, Spend, at, git, pushed_feature

ONE = 10_500_000


def server_clone(tmp_path: Path, remote: Path) -> Repo:
    """The forge: a clone with no aispend at all, merging pull requests."""
    path = tmp_path / "forge"
    git(tmp_path, "clone", "-q", str(remote), str(path))
    r = Repo(path)
    r.git("config", "user.email", "forge@example.com")
    r.git("config", "user.name", "Forge")
    return r


def forge_rebase_merge(tmp_path: Path, remote: Path) -> str:
    """The forge rebase-merges origin/feature after main moved on; main as it was before the merge."""
    forge = server_clone(tmp_path, remote)
    forge.commit("upstream moved", "2026-03-01T09:50:00Z", files={"up.txt": "u"})
    base = forge.head()
    forge.git("switch", "-q", "-c", "pr", "origin/feature")
    forge.git("rebase", "-q", "main", env=at("2026-03-01T10:00:00Z"))
    forge.git("switch", "-q", "main")
    forge.git("merge", "-q", "--ff-only", "pr")
    forge.git("push", "-q", "origin", "main")
    return base


def ci_key(tmp_path: Path) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / "ci_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(key)], check=True)
    return key


def trust_team(alice: Person, tmp_path: Path) -> None:
    """The team commits its trust list: alice and the CI key (what docs/sync.md tells a team to do)."""
    pub = ci_key(tmp_path).with_suffix(".pub").read_text().split()
    signers = alice.repo.path / ".aispend" / "allowed_signers"
    signers.parent.mkdir(exist_ok=True)
    signers.write_text(
        alice.repo.aispend("key").stdout.strip().splitlines()[-1] + "\n"
        + f'ci@example.com namespaces="aispend-receipt" {pub[0]} {pub[1]}\n'
    )
    alice.repo.git("add", ".aispend/allowed_signers")
    alice.repo.git("commit", "-q", "-m", "trust", env=at("2026-03-01T09:05:00Z"))
    alice.repo.git("push", "-q", "origin", "main")


def ci_runner(tmp_path: Path, remote: Path) -> tuple[Person, Path]:
    key = ci_key(tmp_path)
    ci = Person("ci", tmp_path, remote)
    return ci, key


def test_squash_merge_on_the_forge_carried_by_ci(alice: Person, tmp_path: Path, remote: Path) -> None:
    trust_team(alice, tmp_path)
    pushed_feature(alice)
    forge = server_clone(tmp_path, remote)
    base = forge.head("origin/main")
    forge.git("merge", "-q", "--squash", "origin/feature")
    forge.git("commit", "-q", "-m", "Feature (#1)", env=at("2026-03-01T10:00:00Z"))
    forge.git("push", "-q", "origin", "main")
    ci, key = ci_runner(tmp_path, remote)
    ci.repo.git("fetch", "-q", "origin")
    ci.repo.aispend("sync")
    out = ci.repo.aispend("carry", "--key", str(key), "--principal", "ci@example.com", "--onto", "origin/main", f"{base}..origin/feature").stdout
    merged = ci.repo.head("origin/main")
    assert out.strip() == f"{merged[:12]}: carries 2 receipts of 2 commits"
    ci.repo.aispend("sync")
    alice.repo.aispend("sync")
    alice.repo.git("fetch", "-q", "origin")
    view = json.loads(alice.repo.aispend("show", "--json", "origin/main").stdout)
    assert view["verification"]["status"] == "valid"
    assert view["totals"]["requests"] == 2 and view["totals"]["cost_usd"] == 0.021
    [rec] = view["receipts"]
    assert rec["signer"]["principal"] == "ci@example.com" and len(rec["carried_from"]) == 2
    assert alice.repo.aispend("verify", "origin/main", "origin/feature").stdout.strip().endswith("OK")


def test_rebase_merge_matched_by_patch_id(alice: Person, tmp_path: Path, remote: Path) -> None:
    trust_team(alice, tmp_path)
    olds = pushed_feature(alice)
    base = forge_rebase_merge(tmp_path, remote)
    ci, key = ci_runner(tmp_path, remote)
    ci.repo.git("fetch", "-q", "origin")
    ci.repo.aispend("sync")
    out = ci.repo.aispend("carry", "--key", str(key), "--match", f"{base}..origin/main", f"{olds[0]}~1..origin/feature").stdout
    news = ci.repo.git("rev-list", "--reverse", f"{base}..origin/main").split()
    assert len(news) == 2 and set(news).isdisjoint(olds)
    assert sorted(out.strip().splitlines()) == sorted(f"{n[:12]}: carries 1 receipt of {o[:12]}" for n, o in zip(news, olds))
    for n, i in zip(news, (1, 2)):
        [rec] = ci.repo.receipts(n)
        assert rec["commit"] == n and [s["session"] for s in rec["sessions"]] == [f"alice-{i}"]


def test_carry_needs_to_know_how_the_branch_was_merged(alice: Person) -> None:
    p = alice.repo.aispend("carry", "HEAD", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == "aispend: error: say how the branch was merged: --onto COMMIT (squash) or --match RANGE (rebase)"


def test_a_chain_of_rewrites_keeps_the_original_spend(repo: Repo, spend: Spend) -> None:
    """amend, then rebase, then squash: one receipt per final commit, totals equal to what was spent."""
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "a", branch="topic")
    repo.commit("a", "2026-03-01T09:15:00Z")
    spend.claude(repo.path, "2026-03-01T09:20:00Z", "a2", branch="topic")
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:25:00Z"))
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "b", branch="topic")
    repo.commit("b", "2026-03-01T09:35:00Z")
    repo.git("switch", "-q", "main")
    repo.commit("upstream", "2026-03-01T09:40:00Z", files={"up.txt": "u"})
    repo.git("switch", "-q", "topic")
    repo.git("rebase", "-q", "main", env=at("2026-03-01T09:45:00Z"))
    script = "sed -i -e '2s/^pick/squash/'"
    repo.git("rebase", "-q", "-i", "HEAD~2", env={**at("2026-03-01T09:50:00Z"), "GIT_SEQUENCE_EDITOR": script, "GIT_EDITOR": "true"})
    [rec] = repo.receipts()
    assert rec["commit"] == repo.head()
    assert sorted(s["session"] for s in rec["sessions"]) == ["a", "a2", "b"]
    assert rec["totals"]["requests"] == 3 and nusd_of(rec["totals"]["cost_usd"]) == 3 * ONE
    # Every earlier version keeps its own receipt; only the final commit is in the history.
    assert repo.git("rev-list", "--count", "main..HEAD").strip() == "1"


def _ci_job(tmp_path: Path) -> str:
    """The shell of docs/sync.md's GitHub Actions job, as written."""
    import textwrap

    docs = (Path(__file__).resolve().parents[2] / "docs" / "sync.md").read_text()
    block = docs.split("        run: |\n", 1)[1].split("```", 1)[0]
    return textwrap.dedent(block)


@pytest.mark.parametrize("how", ["squash", "rebase"])
def test_the_documented_ci_job_carries_after_main_moved_on(alice: Person, tmp_path: Path, remote: Path, how: str) -> None:
    import os

    trust_team(alice, tmp_path)
    base = alice.repo.head("main")
    olds = pushed_feature(alice)  # two receipted commits on feature
    if how == "squash":
        forge = server_clone(tmp_path, remote)
        forge.commit("upstream moved", "2026-03-01T09:50:00Z", files={"up.txt": "u"})  # base.sha is stale now
        forge.git("merge", "-q", "--squash", "origin/feature")
        forge.git("commit", "-q", "-m", "Feature (#1)", env=at("2026-03-01T10:00:00Z"))
        forge.git("push", "-q", "origin", "main")
    else:
        forge_rebase_merge(tmp_path, remote)  # after main moved on: base.sha is stale now
    merged = git(tmp_path / "forge", "rev-parse", "main").strip()
    ci, key = ci_runner(tmp_path, remote)
    runner = tmp_path / "runner"
    runner.mkdir()
    env = {**os.environ, **ci.env, "AISPEND_CI_KEY": key.read_text(), "BASE": base, "HEAD": olds[-1], "MERGED": merged,
           "RUNNER_TEMP": str(runner), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    p = subprocess.run(["bash", "-e", "-c", _ci_job(tmp_path)], cwd=ci.repo.path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ("carries 2 receipts of 2 commits" if how == "squash" else "carries 1 receipt of") in p.stdout
    alice.repo.git("fetch", "-q", "origin")
    alice.repo.aispend("sync")
    rep = json.loads(alice.repo.aispend("report", "--format", "json", "origin/main").stdout)
    assert rep["totals"]["cost_usd"] == 0.021 and rep["totals"]["requests"] == 2


def test_rebase_merge_of_a_change_made_twice_carries_both(alice: Person, tmp_path: Path, remote: Path) -> None:
    """add a line, drop it, add it again: two commits with one patch id, each carried once."""
    trust_team(alice, tmp_path)
    alice.repo.commit("base", "2026-03-01T09:06:00Z", files={"f.txt": "a\n"})
    alice.repo.git("push", "-q", "origin", "main")
    alice.repo.git("switch", "-q", "-c", "feature")
    olds = []
    for i, text in enumerate(("a\nL\n", "a\n", "a\nL\n")):
        alice.spend.claude(alice.repo.path, f"2026-03-01T09:{10 + 10 * i}:00Z", f"twice-{i}", branch="feature")
        olds.append(alice.repo.commit(f"step {i}", f"2026-03-01T09:{11 + 10 * i}:00Z", files={"f.txt": text}))
    alice.repo.git("push", "-q", "origin", "feature")
    alice.repo.aispend("sync")
    base = forge_rebase_merge(tmp_path, remote)
    ci, key = ci_runner(tmp_path, remote)
    ci.repo.git("fetch", "-q", "origin")
    ci.repo.aispend("sync")
    out = ci.repo.aispend("carry", "--key", str(key), "--principal", "ci@example.com", "--match", f"{base}..origin/main", f"{olds[0]}~1..origin/feature").stdout
    assert len([x for x in out.splitlines() if ": carries 1 receipt of " in x]) == 3
    ci.repo.aispend("sync")
    alice.repo.git("fetch", "-q", "origin")
    alice.repo.aispend("sync")
    rep = json.loads(alice.repo.aispend("report", "--format", "json", "origin/main").stdout)
    assert rep["totals"]["requests"] == 3
