"""Issue 15's attacks, each as a real multi-clone scenario: totals stay exactly the trusted
spend, each receipt counted once; what fails is listed apart and makes verify fail."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from aispend.receipts.model import canonical, signed_part
from tests.gitutil import at, git, work
from tests.redteam.team import ONE, Team, fetch_notes, make_team, note_of, push_notes, report, set_note, show


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def _alice_commit(team: Team) -> tuple[str, str]:
    """alice spends one request, commits, pushes the commit and her receipts; (sha, receipt line)."""
    sha = work(team.alice, 1)
    team.alice.repo.git("push", "-q", "origin", "main")
    team.alice.repo.aispend("sync")
    [line] = [x for x in note_of(team.alice, sha).decode().splitlines() if x]
    return sha, line


def _variants(line: str) -> list[bytes]:
    """Byte-level variants of one valid receipt line that decode to the same receipt."""
    obj = json.loads(line)
    spaced = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    reordered = json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":"), ensure_ascii=False).encode()
    escaped = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).replace('"v"', '"\\u0076"').encode()
    dup_key = ('{"v":1,' + line[1:]).encode()
    out = [line.encode(), line.encode(), spaced, reordered, escaped, dup_key, line.encode() + b" ", b" " + line.encode(), line.encode() + b"\r"]
    sig = base64.b64decode(obj["sig"])
    if len(sig) % 3:  # unused low bits in the last base64 character: set them
        enc = base64.b64encode(sig).decode()
        stem = enc.rstrip("=")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        bumped = stem[:-1] + alphabet[alphabet.index(stem[-1]) + 1] + enc[len(stem):]
        assert base64.b64decode(bumped) == sig and bumped != enc
        out.append(canonical({**obj, "sig": bumped}).encode())
    return out


def test_copies_and_byte_variants_of_a_receipt_count_once(team: Team) -> None:
    sha, line = _alice_commit(team)
    m = team.mallory
    m.repo.git("fetch", "-q", "origin")
    m.repo.aispend("sync")
    set_note(m, sha, b"\n".join(_variants(line)) + b"\n")
    push_notes(m)
    fetch_notes(team.alice)
    rep = report(team.alice)
    assert rep["totals"]["cost_usd"] == ONE and rep["totals"]["requests"] == 1
    assert rep["totals"]["not_counted"]["receipts"] >= 8
    view = show(team.alice, sha)
    assert view["totals"]["cost_usd"] == ONE and view["verdict"] == "INVALID"
    rows = [json.loads(x) for x in team.alice.repo.aispend("export", "--format", "jsonl").stdout.splitlines()]
    assert sum(r["requests"] for r in rows if r["counted"]) == 1
    p = team.alice.repo.aispend("verify", check=False)
    assert p.returncode == 1
    assert "duplicate" in p.stdout and "not in canonical form" in p.stdout


def test_a_hidden_line_behind_a_record_separator_is_seen_and_fails_verify(team: Team) -> None:
    sha, line = _alice_commit(team)
    m = team.mallory
    m.repo.git("fetch", "-q", "origin")
    m.repo.aispend("sync")
    set_note(m, sha, line.encode() + b"\n\x1e" + line.encode() + b"\n" + b'{"v":1}\n')
    push_notes(m)
    fetch_notes(team.alice)
    p = team.alice.repo.aispend("verify", "--json", check=False)
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["receipts"] == 3
    assert sorted(f["line"] for f in res["failures"]) == [2, 3]
    assert report(team.alice)["totals"]["cost_usd"] == ONE


def test_an_untrusted_receipt_is_not_counted_anywhere(team: Team) -> None:
    _alice_commit(team)
    m = team.mallory
    m.repo.git("pull", "-q", "--rebase", "origin", "main")
    m.repo.aispend("sync")
    m.spend.claude(m.repo.path, "2026-03-01T09:40:00Z", "m-big", inp=100_000_000)
    big = m.repo.commit("mallory big", "2026-03-01T09:41:00Z", files={"m.txt": "m"})
    m.repo.git("push", "-q", "origin", "main")
    m.repo.aispend("sync")
    team.alice.repo.git("pull", "-q", "--rebase", "origin", "main")
    fetch_notes(team.alice)
    rep = report(team.alice)
    assert rep["totals"]["cost_usd"] == ONE
    assert rep["totals"]["not_counted"]["by_status"] == {"unknown-signer": 1}
    view = show(team.alice, big)
    assert view["verdict"] == "UNTRUSTED" and view["totals"]["cost_usd"] == 0
    assert team.alice.repo.aispend("show", "--strict", big, check=False).returncode == 1
    assert "UNTRUSTED" in team.alice.repo.aispend("show", big).stdout.splitlines()[1]


def test_ci_carry_does_not_launder_an_untrusted_receipt(team: Team) -> None:
    """mallory's $300 receipt on a squashed branch never becomes CI-signed spend."""
    m = team.mallory
    m.repo.git("switch", "-q", "-c", "feature")
    m.spend.claude(m.repo.path, "2026-03-01T09:10:00Z", "m-1", branch="feature", inp=100_000_000)
    m.repo.commit("m 1", "2026-03-01T09:11:00Z", files={"m1.txt": "m"})
    m.repo.git("push", "-q", "origin", "feature")
    m.repo.aispend("sync")
    # alice adds a commit of her own to the same branch
    a = team.alice
    a.repo.git("fetch", "-q", "origin")
    a.repo.git("switch", "-q", "-c", "feature", "origin/feature")
    a.spend.claude(a.repo.path, "2026-03-01T09:20:00Z", "a-1", branch="feature")
    a.repo.commit("a 1", "2026-03-01T09:21:00Z", files={"a1.txt": "a"})
    a.repo.git("push", "-q", "origin", "feature")
    a.repo.aispend("sync")
    # the forge squash-merges, CI carries with its trusted key
    forge = team.root / "forge"
    git(team.root, "clone", "-q", str(team.remote), str(forge))
    base = git(forge, "rev-parse", "origin/main").strip()
    git(forge, "merge", "-q", "--squash", "origin/feature")
    git(forge, "-c", "user.email=forge@example.com", "-c", "user.name=F", "commit", "-q", "-m", "Feature (#1)", env=at("2026-03-01T10:00:00Z"))
    git(forge, "push", "-q", "origin", "main")
    from tests.gitutil import Person

    ci = Person("ci", team.root, team.remote)
    ci.repo.aispend("sync")
    out = ci.repo.aispend("carry", "--key", str(team.ci_key), "--principal", "ci@example.com", "--onto", "origin/main", f"{base}..origin/feature").stdout
    assert "carries 1 receipt of 2 commits" in out and "left behind 1 receipt" in out
    ci.repo.aispend("sync")
    a.repo.git("switch", "-q", "main")
    a.repo.git("pull", "-q", "origin", "main")
    fetch_notes(a)
    view = show(a, "HEAD")
    assert view["verdict"] == "VALID" and view["totals"]["cost_usd"] == ONE
    assert report(a)["totals"]["cost_usd"] == ONE


def test_rewrite_hooks_carry_only_trusted_or_own_receipts(team: Team) -> None:
    """alice cherry-picks mallory's commit: her hook does not re-sign mallory's spend."""
    m = team.mallory
    m.repo.git("switch", "-q", "-c", "side")
    m.spend.claude(m.repo.path, "2026-03-01T09:10:00Z", "m-1", branch="side", inp=100_000_000)
    msha = m.repo.commit("m 1", "2026-03-01T09:11:00Z", files={"m1.txt": "m"})
    m.repo.git("push", "-q", "origin", "side")
    m.repo.aispend("sync")
    a = team.alice
    a.repo.git("fetch", "-q", "origin")
    fetch_notes(a)
    a.repo.git("cherry-pick", msha, env=at("2026-03-01T09:30:00Z"))
    assert a.repo.receipts("HEAD") == []
    # her own amend still carries her own receipt
    work(a, 2, minute=40)
    a.repo.git("commit", "-q", "--amend", "-m", "alice 2 amended", env=at("2026-03-01T09:45:00Z"))
    [rec] = a.repo.receipts("HEAD")
    assert rec["totals"]["requests"] == 1 and len(rec["carried_from"]) == 1


def test_an_untrusted_carried_from_hides_no_trusted_spend(team: Team) -> None:
    """mallory cherry-picks alice's commit: her untrusted receipt names alice's in carried_from."""
    a = team.alice
    a.repo.git("switch", "-q", "-c", "topic")
    asha = work(a, 1, branch="topic")
    a.repo.git("push", "-q", "origin", "topic")
    a.repo.aispend("sync")
    m = team.mallory
    m.repo.git("fetch", "-q", "origin")
    m.repo.aispend("sync")
    m.repo.git("cherry-pick", asha, env=at("2026-03-01T09:30:00Z"))
    [mrec] = m.repo.receipts("HEAD")
    assert mrec["signer"]["principal"] == "mallory@example.com" and len(mrec["carried_from"]) == 1
    m.repo.git("push", "-q", "origin", "main")
    m.repo.aispend("sync")
    a.repo.git("fetch", "-q", "origin")
    fetch_notes(a)
    rep = report(a, "origin/main", "topic")
    assert rep["totals"]["cost_usd"] == ONE and rep["totals"]["not_counted"]["by_status"] == {"unknown-signer": 1}
    # alice's spend on topic is still unshipped: an untrusted carrier on main ships nothing
    un = json.loads(a.repo.aispend("report", "--unshipped", "--branch", "origin/main", "--format", "json").stdout)
    assert un["requests"] == 1 and un["cost_usd"] == ONE


def test_a_forged_receipt_signed_with_ssh_keygen_claiming_alice_does_not_count(team: Team, tmp_path: Path) -> None:
    sha, line = _alice_commit(team)
    key = tmp_path / "mallory_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "m", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().split()
    forged = json.loads(line)
    forged["totals"]["cost_usd"] = "5000"
    forged["sessions"][0]["models"][0]["cost_usd"] = "5000"
    forged["signer"] = {"principal": "alice@example.com", "key": f"{pub[0]} {pub[1]}"}
    forged.pop("sig")
    msg = tmp_path / "msg"
    msg.write_bytes(signed_part(forged))
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "aispend-receipt", "-f", str(key), str(msg)], check=True)
    armored = (tmp_path / "msg.sig").read_text().splitlines()
    forged["sig"] = "".join(armored[1:-1])
    m = team.mallory
    m.repo.git("fetch", "-q", "origin")
    m.repo.aispend("sync")
    set_note(m, sha, (line + "\n" + canonical(forged) + "\n").encode())
    push_notes(m)
    fetch_notes(team.alice)
    view = show(team.alice, sha)
    assert view["totals"]["cost_usd"] == ONE
    statuses = sorted(r["verification"]["status"] for r in view["receipts"])
    assert statuses == ["unknown-signer", "valid"]
    assert report(team.alice)["totals"]["cost_usd"] == ONE


def test_one_old_dated_commit_hides_no_budget_spend(team: Team) -> None:
    """git log --since stops at the first old commit: budgets filter dates themselves."""
    _alice_commit(team)
    a = team.alice
    (a.repo.path / ".aispend.toml").write_text("[budget]\nmonthly_usd = 1\n")
    m = team.mallory
    m.repo.git("pull", "-q", "--rebase", "origin", "main")
    m.repo.commit("docs typo", "2025-01-01T00:00:00Z", files={"typo.txt": "t"})
    m.repo.git("push", "-q", "origin", "main")
    a.repo.git("pull", "-q", "--rebase", "origin", "main")
    res = json.loads(a.repo.aispend("budget", "--json", "--tz", "UTC").stdout)
    assert [b["spent_usd"] for b in res["budgets"]] == [ONE]


def test_a_commit_dated_past_year_9999_breaks_no_command(team: Team) -> None:
    sha, line = _alice_commit(team)
    a = team.alice
    tree = a.repo.git("rev-parse", "HEAD^{tree}").strip()
    body = f"tree {tree}\nparent {sha}\nauthor M <m@example.com> 18446744073709551617 +0000\ncommitter M <m@example.com> 18446744073709551617 +0000\n\nfar\n"
    far = a.repo.git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=body).strip()
    a.repo.git("update-ref", "refs/heads/main", far)
    set_note(a, far, line.encode() + b"\n")
    for args in (("export",), ("export", "--format", "csv"), ("report", "--all"), ("verify",), ("show",)):
        p = a.repo.aispend(*args, check=False)
        assert p.returncode in (0, 1) and "Traceback" not in p.stderr and "unexpected error" not in p.stderr, (args, p.stderr)
    assert report(a, "--all")["totals"]["cost_usd"] == ONE


def test_a_branch_squash_merged_twice_counts_once(team: Team) -> None:
    """mallory branches off a squash-merged branch and gets it merged again: CI carries alice's
    receipt a second time, and it still counts once."""
    from tests.gitutil import Person

    a = team.alice
    a.repo.git("switch", "-q", "-c", "feature")
    work(a, 1, branch="feature")
    a.repo.git("push", "-q", "origin", "feature")
    a.repo.aispend("sync")
    forge = team.root / "forge"
    git(team.root, "clone", "-q", str(team.remote), str(forge))
    git(forge, "config", "user.email", "f@example.com")
    git(forge, "config", "user.name", "F")
    ci = Person("ci", team.root, team.remote)

    def squash(branch: str, when: str) -> None:
        git(forge, "fetch", "-q", "origin")
        git(forge, "reset", "-q", "--hard", "origin/main")
        base = git(forge, "rev-parse", "HEAD").strip()
        git(forge, "merge", "-q", "--squash", f"origin/{branch}")
        git(forge, "-c", "user.email=f@example.com", "-c", "user.name=F", "commit", "-q", "-m", branch, env=at(when))
        git(forge, "push", "-q", "origin", "main")
        ci.repo.git("fetch", "-q", "origin")
        ci.repo.aispend("sync")
        ci.repo.aispend("carry", "--key", str(team.ci_key), "--principal", "ci@example.com", "--onto", "origin/main", f"{base}..origin/{branch}")
        ci.repo.aispend("sync")

    squash("feature", "2026-03-01T10:00:00Z")
    m = team.mallory
    m.repo.git("fetch", "-q", "origin")
    m.repo.git("switch", "-q", "-c", "feature2", "origin/feature")
    m.repo.commit("m trivial", "2026-03-01T10:10:00Z", files={"t.txt": "t"})
    m.repo.git("push", "-q", "origin", "feature2")
    m.repo.aispend("sync")
    squash("feature2", "2026-03-01T10:20:00Z")
    a.repo.git("switch", "-q", "main")
    a.repo.git("pull", "-q", "origin", "main")
    fetch_notes(a)
    assert report(a)["totals"]["cost_usd"] == ONE
    rows = [json.loads(x) for x in a.repo.aispend("export").stdout.splitlines()]
    assert sum(x["requests"] for x in rows if x["counted"]) == 1


@pytest.mark.parametrize("how", ["symlink", "dir3", "flat-and-fanout"])
def test_a_note_moved_in_a_hand_made_notes_tree_is_still_read(team: Team, how: str) -> None:
    """mallory rebuilds the notes tree so that git notes no longer sees alice's note (a symlink
    mode, a 3-character directory), or adds a second entry for it: every entry is still read."""
    sha, line = _alice_commit(team)
    m = team.mallory
    m.repo.aispend("sync")
    tip = git(m.repo.path, "rev-parse", "refs/notes/aispend").strip()
    rows = git(m.repo.path, "ls-tree", "-r", tip).splitlines()
    entries = []
    for row in rows:
        meta, path = row.split("\t")
        mode, kind, blob = meta.split()
        if path.replace("/", "") == sha:
            if how == "symlink":
                mode = "120000"
            elif how == "dir3":
                path = f"{sha[:3]}/{sha[3:]}"
            else:
                extra = git(m.repo.path, "hash-object", "-w", "--stdin", input='{"v":1}\n').strip()
                entries.append(f"100644 blob {extra}\t{sha[:2]}/{sha[2:]}")
        entries.append(f"{mode} blob {blob}\t{path}")
    tree = _mktree(m, entries)
    new = git(m.repo.path, "commit-tree", tree, "-p", tip, "-m", "tidy", env=at("2026-03-01T11:00:00Z")).strip()
    git(m.repo.path, "push", "-q", "origin", f"{new}:refs/notes/aispend")
    fetch_notes(team.alice)
    assert report(team.alice)["totals"]["cost_usd"] == ONE
    if how == "flat-and-fanout":
        p = team.alice.repo.aispend("verify", "--json", check=False)
        assert p.returncode == 1 and json.loads(p.stdout)["receipts"] == 2


def _mktree(p, entries: list[str]) -> str:  # type: ignore[no-untyped-def]
    """A tree from ls-tree-style rows whose paths may hold one directory level."""
    top: dict[str, list[str]] = {}
    flat = []
    for e in entries:
        meta, path = e.split("\t")
        if "/" in path:
            d, name = path.split("/", 1)
            top.setdefault(d, []).append(f"{meta}\t{name}")
        else:
            flat.append(e)
    for d, rows in top.items():
        sub = git(p.repo.path, "mktree", input="\n".join(rows) + "\n").strip()
        flat.append(f"040000 tree {sub}\t{d}")
    return git(p.repo.path, "mktree", input="\n".join(flat) + "\n").strip()


def test_a_receipt_of_170_sessions_is_written_and_counted(team: Team) -> None:
    """Over 64 KB: what aispend writes, it reads (it used to refuse its own line)."""
    a = team.alice
    for i in range(170):
        a.spend.claude(a.repo.path, f"2026-03-01T09:{10 + i // 60:02d}:{i % 60:02d}Z", f"session-{i:04d}-{'x' * 24}")
    sha = a.repo.commit("big", "2026-03-01T09:30:00Z", files={"big.txt": "b"})
    assert len(note_of(a, sha)) > 64 * 1024
    assert report(a)["totals"]["requests"] == 170
    assert abs(report(a)["totals"]["cost_usd"] - 170 * ONE) < 1e-6


def test_one_blob_under_many_note_paths_is_read_once(team: Team) -> None:
    """mallory attaches one big blob as the note of 300 made-up objects (a push of a few KB):
    the lookup of carried receipts reads and hashes it once, and alice's numbers stand."""
    from aispend import git as g
    from aispend.notes import store

    a = team.alice
    work(a, 1)
    a.repo.git("commit", "-q", "--amend", "-m", "alice 1 amended", env=at("2026-03-01T09:40:00Z"))  # a carrier: lookups run
    a.repo.git("push", "-q", "origin", "main")
    a.repo.aispend("sync")
    m = team.mallory
    m.repo.aispend("sync")
    body = "".join('{"junk":"' + "x" * 60_000 + f'{i}"}}\n' for i in range(10))
    blob = git(m.repo.path, "hash-object", "-w", "--stdin", input=body).strip()
    tip = git(m.repo.path, "rev-parse", "refs/notes/aispend").strip()
    rows = git(m.repo.path, "ls-tree", tip)
    fake = "".join(f"100644 blob {blob}\t{i:040x}\n" for i in range(1, 301))
    tree = git(m.repo.path, "mktree", input=rows + fake).strip()
    new = git(m.repo.path, "commit-tree", tree, "-p", tip, "-m", "junk", env=at("2026-03-01T11:00:00Z")).strip()
    git(m.repo.path, "push", "-q", "origin", f"{new}:refs/notes/aispend")
    fetch_notes(a)
    repo = g.find_repo(a.repo.path)
    assert sum(1 for bs in g.note_blobs(repo).values() if blob in bs) == 300
    assert len([d for d, raw in store.lines_by_digest(repo).items() if raw.startswith(b'{"junk"')]) == 10
    assert report(a)["totals"]["cost_usd"] == ONE
    assert json.loads(a.repo.aispend("show", "--json").stdout)["totals"]["cost_usd"] == ONE
