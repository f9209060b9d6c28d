"""The one trust policy, end to end: where it may come from, what it says, when a key retires."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend, aispend, at, work
from tests.redteam.team import ONE, Team, make_team, report


@pytest.fixture
def receipted(repo: Repo, spend: Spend) -> Repo:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("one", "2026-03-01T09:20:00Z")
    return repo


SECRET = "TOP-SECRET-CONTENT-0xC0FFEE"


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink-out", "home"])
def test_a_trust_path_outside_the_worktree_is_refused_without_echoing_it(receipted: Repo, tmp_path: Path, where: str) -> None:
    outside = tmp_path / "outside_signers"
    outside.write_text(f"{SECRET} namespaces=\"x\" ssh-ed25519 AAAA\n")
    value = {
        "absolute": str(outside),
        "dotdot": "../outside_signers",
        "symlink-out": "link/signers",
        "home": "~/signers",
    }[where]
    if where == "symlink-out":
        (receipted.path / "link").symlink_to(tmp_path)
        (tmp_path / "signers").write_text(outside.read_text())
    (receipted.path / ".aispend.toml").write_text(f'[trust]\nallowed_signers = "{value}"\n')
    for args in (("show",), ("verify",), ("report",), ("export",), ("budget",)):
        p = receipted.aispend(*args, check=False)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("aispend: error: .aispend.toml: [trust] allowed_signers must be a path inside the repository")
        assert len(p.stderr.strip().splitlines()) == 1 and SECRET not in p.stdout + p.stderr


def test_a_trust_path_inside_the_worktree_is_used(receipted: Repo) -> None:
    line = receipted.aispend("key", "--line").stdout.strip()
    (receipted.path / "team").mkdir()
    (receipted.path / "team" / "signers").write_text(line + "\n")
    (receipted.path / ".aispend" / "allowed_signers").unlink()
    (receipted.path / ".aispend.toml").write_text('[trust]\nallowed_signers = "team/signers"\n')
    view = json.loads(receipted.aispend("show", "--json").stdout)
    assert view["verdict"] == "VALID" and view["trust"]["allowed_signers"] == "team/signers"
    assert view["totals"]["cost_usd"] == ONE


def test_a_malformed_trust_file_names_lines_not_content(receipted: Repo) -> None:
    f = receipted.path / ".aispend" / "allowed_signers"
    f.write_text(f.read_text() + f"{SECRET} bogus-option=1 ssh-ed25519 AAAA\n")
    p = receipted.aispend("verify")
    assert "allowed signers: .aispend/allowed_signers:2: unknown option" in p.stdout
    assert SECRET not in p.stdout + p.stderr
    assert SECRET not in receipted.aispend("show", "--json").stdout


def test_without_a_trust_list_nothing_counts_and_every_output_says_so(receipted: Repo) -> None:
    (receipted.path / ".aispend" / "allowed_signers").unlink()
    rep = json.loads(receipted.aispend("report", "--format", "json").stdout)
    assert rep["signers_checked"] is False and rep["totals"]["cost_usd"] == 0
    assert rep["totals"]["not_counted"]["by_status"] == {"unverified-signer": 1}
    assert rep == json.loads(receipted.aispend("report", "--format", "json", "--verified-only").stdout)
    assert receipted.aispend("report").stdout.startswith("WARNING: no allowed-signers list")
    assert receipted.aispend("report", "--format", "md").stdout.startswith("> ⚠️")
    (receipted.path / ".aispend.toml").write_text("[budget]\nmonthly_usd = 1\n")
    assert receipted.aispend("budget").stdout.startswith("WARNING: no allowed-signers list")
    b = json.loads(receipted.aispend("budget", "--json").stdout)
    assert b["trust"]["signers_checked"] is False and b["budgets"][0]["spent_usd"] == 0


def test_a_retired_key_stops_counting_after_its_valid_before(tmp_path: Path) -> None:
    team: Team = make_team(tmp_path)
    a = team.alice
    early = work(a, 1, minute=10)  # committed 09:11
    late = work(a, 2, minute=30)  # committed 09:31
    signers = a.repo.path / ".aispend" / "allowed_signers"
    alice_line = a.repo.aispend("key", "--line").stdout.strip()
    principal, rest = alice_line.split(" ", 1)
    signers.write_text(f'{principal} valid-before="202603010920Z",{rest}\n' + team.ci_line + "\n")
    rep = report(a)
    assert rep["totals"]["cost_usd"] == ONE and rep["totals"]["not_counted"]["by_status"] == {"unknown-signer": 1}
    assert json.loads(a.repo.aispend("show", "--json", early).stdout)["verdict"] == "VALID"
    assert json.loads(a.repo.aispend("show", "--json", late).stdout)["verdict"] == "UNTRUSTED"


def test_no_receipts_fetched_is_said_not_shown_as_zero(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    work(team.alice, 1)
    team.alice.repo.git("push", "-q", "origin", "main")
    team.alice.repo.aispend("sync")
    from tests.gitutil import Person

    carol = Person("carol", tmp_path, team.remote)  # a fresh clone: commits, no notes yet
    for args in (("show",), ("verify",), ("report",)):
        out = carol.repo.aispend(*args, check=False).stdout
        assert "no receipts fetched: run aispend sync" in out, args
    assert json.loads(carol.repo.aispend("show", "--json").stdout)["notes"] == "no receipts fetched: run aispend sync"
    carol.repo.git("fetch", "-q", "origin", "+refs/notes/aispend:refs/notes/remotes/origin/aispend")
    carol.repo.aispend("sync")
    assert "no receipts fetched" not in carol.repo.aispend("show").stdout
    # A remote's receipts fetched but not merged: behind.
    work(team.alice, 2, minute=20)
    team.alice.repo.git("push", "-q", "origin", "main")
    team.alice.repo.aispend("sync")
    carol.repo.git("fetch", "-q", "origin", "+refs/notes/aispend:refs/notes/remotes/origin/aispend")
    assert "not merged here yet: run aispend sync" in carol.repo.aispend("verify", check=False).stdout


def test_carrying_a_receipt_and_its_carrier_counts_once(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    a = team.alice
    first = work(a, 1)
    a.repo.git("commit", "-q", "--amend", "-m", "alice 1 amended", env=at("2026-03-01T09:40:00Z"))
    amended = a.repo.head()
    [carrier] = a.repo.receipts(amended)
    assert len(carrier["carried_from"]) == 1
    onto = a.repo.commit("merge target", "2026-03-01T10:00:00Z", files={"t.txt": "t"})
    out = a.repo.aispend("carry", "--key", str(team.ci_key), "--principal", "ci@example.com", "--onto", onto, first, amended).stdout
    assert "carries 1 receipt of 2 commits" in out
    [ci] = [r for r in a.repo.receipts(onto) if r["signer"]["principal"] == "ci@example.com"]
    assert ci["totals"]["requests"] == 1 and ci["totals"]["cost_usd"] == "0.0105"


def test_one_repositorys_trusted_receipt_hides_nothing_in_another(tmp_path: Path) -> None:
    """report --repo A --repo B: a receipt trusted in B naming A's receipt in carried_from."""
    from aispend.receipts import keys, model, signing
    from tests.gitutil import Person, note_lines

    (tmp_path / "a").mkdir()
    team = make_team(tmp_path / "a")
    sha = work(team.alice, 1)
    [line] = note_lines(team.alice.repo.path)
    b = Repo.init(tmp_path / "b")
    b.git("config", "user.email", "m@example.com")
    mkey = keys.create_key(tmp_path / "mkey", "m")
    (b.path / ".aispend").mkdir()
    (b.path / ".aispend" / "allowed_signers").write_text(keys.allowed_signers_line("m@example.com", mkey.public_line) + "\n")
    head = b.head()
    tree = b.git("rev-parse", "HEAD^{tree}").strip()
    when = int(b.git("log", "-1", "--format=%ct").strip())
    r = model.build(commit=head, tree=tree, parents=[], author="m@example.com", committed_s=when, claimed=[], prompts={},
                    carried=[], carried_digests=[model.digest(line)], pricing="p", version="t")
    r["window"] = None
    b.git("notes", "--ref=refs/notes/aispend", "add", "-m", signing.sign(r, mkey, "m@example.com"), head)
    assert json.loads(b.aispend("show", "--json").stdout)["verdict"] == "VALID"
    rep = json.loads(team.alice.repo.aispend("report", "--format", "json", "--repo", str(team.alice.repo.path), "--repo", str(b.path)).stdout)
    assert rep["totals"]["cost_usd"] == ONE
    assert sha


def test_a_broken_aispend_toml_never_changes_the_trust_silently(receipted: Repo) -> None:
    (receipted.path / "other_signers").write_text("")
    (receipted.path / ".aispend.toml").write_text('[trust\nallowed_signers = "other_signers"\n')
    for args in (("show",), ("verify",), ("export",), ("report",)):
        p = receipted.aispend(*args, check=False)
        assert p.returncode == 1 and p.stderr.startswith("aispend: error: "), (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "trust cannot be decided" in receipted.aispend("verify", check=False).stderr


def test_report_over_a_path_that_is_no_directory(receipted: Repo) -> None:
    f = receipted.path / "a.txt"
    f.write_text("x")
    p = receipted.aispend("report", "--repo", str(f), check=False)
    assert p.returncode == 1 and p.stderr.strip() == f"aispend: error: {f}: no such directory"
