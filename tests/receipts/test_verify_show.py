"""aispend show / verify / status / key on real repositories, including hostile notes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from aispend.receipts.model import canonical
from tests.gitutil import Repo, Spend, aispend, at
from tests.logbuilder import Logs


@pytest.fixture
def repo(tmp_path: Path, logs: Logs) -> Repo:
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend = Spend(logs)
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("one", "2026-03-01T09:20:00Z")
    spend.claude(r.path, "2026-03-01T09:25:00Z", "s2", model="some-unknown-model")
    spend.claude(r.path, "2026-03-01T09:26:00Z", "s2")
    r.commit("two", "2026-03-01T09:30:00Z")
    return r


def signers_file(repo: Repo) -> Path:
    line = aispend(repo.path, "key").stdout.strip().splitlines()[-1]
    f = repo.path / ".aispend" / "allowed_signers"
    f.parent.mkdir(exist_ok=True)
    f.write_text(line + "\n")
    return f


def replace_note(repo: Repo, rev: str, text: str) -> None:
    repo.git("notes", "--ref=refs/notes/aispend", "add", "-f", "-F", "-", rev, input=text)


def test_show_json_contract(repo: Repo) -> None:
    signers_file(repo)
    view = json.loads(aispend(repo.path, "show", "--json").stdout)
    assert view["commit"] == repo.head()
    assert view["verification"] == {"status": "valid", "problems": []}
    assert view["verdict"] == "VALID" and view["trust"]["signers_checked"] is True
    [r] = view["receipts"]
    assert r["verification"]["status"] == "valid" and r["verification"]["problems"] == []
    assert r["verification"]["counted"] is True and r["verification"]["principal"] == "dev@example.com"
    pub = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519.pub"
    fp = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]
    assert r["verification"]["key_fingerprint"] == fp  # as ssh-keygen -l prints it
    t = view["totals"]
    assert t["requests"] == 2
    assert t["cost_usd"] == 0.0105  # a number in command output
    assert t["unpriced_tokens"] == 1500
    models = {m["model"]: m for s in r["sessions"] for m in s["models"]}
    assert models["some-unknown-model"]["cost_usd"] is None
    assert "sig" not in r


def test_show_table_and_no_receipt(repo: Repo) -> None:
    out = aispend(repo.path, "show").stdout
    assert out.splitlines()[1] == "VALID: signed by dev@example.com, trusted by .aispend/allowed_signers"
    assert "AI spend $0.0105" in out
    assert "unpriced: 1,500 tokens" in out
    assert "some-unknown-model" in out and "claude-sonnet-4-5-20250929" in out  # full names at 80 columns
    # Without a trust list nothing counts, and the verdict says so first.
    (repo.path / ".aispend" / "allowed_signers").unlink()
    narrow = aispend(repo.path, "show", env={"COLUMNS": "80"}).stdout
    # Piped, each statement stays on one line, even at 80 columns, so it can be grepped.
    assert narrow.splitlines()[1].startswith("UNCHECKED: no allowed-signers list: signers were not checked and no receipt counts")
    assert "AI spend $0.0000" in narrow and "unverified-signer, not counted" in narrow
    assert "not counted: 1 receipt (1 unverified-signer) claiming $0.0105" in narrow
    assert aispend(repo.path, "show", "--strict", env={"COLUMNS": "80"}, check=False).returncode == 1
    out0 = aispend(repo.path, "show", "HEAD~2").stdout
    assert out0.strip() == f"commit {repo.head('HEAD~2')[:12]}: no AI spend receipt"


def test_verify_passes_with_allowed_signers_and_warns_without(repo: Repo) -> None:
    (repo.path / ".aispend" / "allowed_signers").unlink()  # install made it: take it away
    p = aispend(repo.path, "verify", check=False)
    assert p.returncode == 0
    assert "WARNING: no allowed-signers list" in p.stdout
    assert "2 unverified-signer" in p.stdout
    signers_file(repo)
    p = aispend(repo.path, "verify")
    assert "3 commits, 2 with receipts, 2 receipts: 2 valid\n2 counted, 0 carried into others\n" in p.stdout
    assert p.stdout.strip().endswith("OK")


def _tamper(repo: Repo, rev: str, edit) -> None:  # type: ignore[no-untyped-def]
    line = repo.git("notes", "--ref=refs/notes/aispend", "show", rev).strip()
    rec = json.loads(line)
    edit(rec)
    replace_note(repo, rev, canonical(rec))


@pytest.mark.parametrize(
    "name, edit, expect",
    [
        ("edited cost", lambda r: r["totals"].__setitem__("cost_usd", "0.0001"), "totals.cost_usd"),
        ("edited model cost", lambda r: r["sessions"][0]["models"][0].__setitem__("cost_usd", "0.0001"), "bad signature"),
        ("bad signature", lambda r: r.__setitem__("sig", r["sig"][:-8] + "AAAAAAA="), "bad signature"),
        ("unknown key", None, "is not an allowed signer"),
    ],
)
def test_verify_catches_tampering(repo: Repo, tmp_path: Path, name: str, edit, expect: str) -> None:  # type: ignore[no-untyped-def]
    signers_file(repo)
    if edit is None:
        # Re-sign with a key nobody trusts.
        from aispend.receipts import keys, signing

        rogue = keys.create_key(tmp_path / "rogue", "rogue")
        line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
        rec = json.loads(line)
        replace_note(repo, "HEAD", signing.sign(rec, rogue, "dev@example.com"))
    else:
        _tamper(repo, "HEAD", edit)
    p = aispend(repo.path, "verify", "--json", check=False)
    assert p.returncode == 1, name
    res = json.loads(p.stdout)
    [f] = res["failures"]
    assert f["commit"] == repo.head()
    assert any(expect in x for x in f["problems"]), f


def test_verify_catches_a_receipt_copied_onto_another_commit(repo: Repo) -> None:
    signers_file(repo)
    line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
    replace_note(repo, "HEAD~2", line)
    p = aispend(repo.path, "verify", "--json", check=False)
    assert p.returncode == 1
    [f] = json.loads(p.stdout)["failures"]
    assert f["commit"] == repo.head("HEAD~2")
    assert "copied from another commit" in f["problems"][0]


def test_hostile_notes_are_reported_not_obeyed(repo: Repo) -> None:
    evil = "[bold red]pwned[/bold red]"
    line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
    rec = json.loads(line)
    rec["sessions"][0]["models"][0]["model"] = evil
    big = "x" * (4 * 1024 * 1024 + 1)
    replace_note(repo, "HEAD", "\n".join([canonical(rec), "not json {", "[1,2]", big]))
    p = aispend(repo.path, "show", check=False)
    assert p.returncode == 0
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    assert "[bold red]pwned[/bold red]" in p.stdout  # shown as text, markup not applied
    assert p.stdout.splitlines()[1].startswith("INVALID: a receipt failed verification")
    view = json.loads(aispend(repo.path, "show", "--json").stdout)
    problems = view["verification"]["problems"]
    assert any("line 2 is not JSON" in x for x in problems)
    assert any("line 3 is not a JSON object" in x for x in problems)
    assert any("line 4 is over 4 MB: refused" in x for x in problems)
    assert view["verification"]["status"] == "invalid"
    v = aispend(repo.path, "verify", check=False)
    assert v.returncode == 1


def test_status_and_key(repo: Repo, logs: Logs) -> None:
    Spend(logs).claude(repo.path, "2026-03-01T09:40:00Z", "s3")
    Spend(logs).claude(repo.path, "2026-03-01T09:41:00Z", "s4", branch="feature", out=0)
    st = json.loads(aispend(repo.path, "status", "--json", env=at("2026-03-01T09:45:00Z")).stdout)
    assert st["hooks"] == {"prepare-commit-msg": "installed", "post-commit": "installed", "post-rewrite": "installed", "post-merge": "installed"}
    assert st["key"]["state"] == "ok"
    assert st["billing_since"] == "2026-03-01T09:00:00.000Z"
    assert st["next_commit"] == {"requests": 1, "sessions": 1, "total_tokens": 1500, "cost_usd": 0.0105, "unpriced_tokens": 0}
    assert st["other_branches"] == {"requests": 1, "cost_usd": 0.003, "branches": [{"branch": "feature", "requests": 1, "cost_usd": 0.003}]}
    assert st["last_receipt"]["commit"] == repo.head()
    text = aispend(repo.path, "status", env=at("2026-03-01T09:45:00Z")).stdout
    assert "waiting for commits on other branches: 1 request, $0.0030" in text
    k = aispend(repo.path, "key").stdout
    assert 'dev@example.com namespaces="aispend-receipt" ssh-ed25519 ' in k


def test_verify_falls_back_to_gits_allowed_signers_file(repo: Repo, tmp_path: Path) -> None:
    line = aispend(repo.path, "key").stdout.strip().splitlines()[-1]
    f = tmp_path / "git-allowed-signers"
    f.write_text(line + "\n")
    repo.git("config", "gpg.ssh.allowedSignersFile", str(f))
    (repo.path / ".aispend" / "allowed_signers").unlink()  # the list install made would win
    p = aispend(repo.path, "verify")
    assert "2 receipts: 2 valid" in p.stdout and "WARNING" not in p.stdout


def test_install_with_an_existing_ssh_key(tmp_path: Path, logs: Logs) -> None:
    import shutil
    import subprocess

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me", "-f", str(key)], check=True)
    r = Repo.init(tmp_path / "repo")
    out = r.install("--key", str(key))
    assert f"signing with {key}" in out
    Spend(logs).claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("c", "2026-03-01T09:20:00Z")
    [rec] = r.receipts()
    assert rec["signer"]["key"] == " ".join(key.with_suffix(".pub").read_text().split()[:2])


def test_notes_from_two_people_merge_without_conflict(tmp_path: Path, logs: Logs) -> None:
    """Receipt lines are canonical: git notes merge -s cat_sort_uniq unites two people's notes."""
    a = Repo.init(tmp_path / "a")
    a.install()
    Spend(logs).claude(a.path, "2026-03-01T09:10:00Z", "s1")
    a.commit("shared", "2026-03-01T09:20:00Z")
    b_path = tmp_path / "b"
    a.git("clone", "-q", str(a.path), str(b_path))
    b = Repo(b_path)
    b.git("config", "user.email", "other@example.com")
    b.git("config", "user.name", "Other")
    b.git("fetch", "-q", "origin", "refs/notes/aispend:refs/notes/aispend")
    line_a = a.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
    # Someone else attaches another line to the same commit (another machine's receipt).
    other = json.loads(line_a)
    other["signer"]["principal"] = "other@example.com"
    b.git("notes", "--ref=refs/notes/aispend", "append", "-m", canonical(other), "HEAD")
    a.git("fetch", "-q", str(b_path), "refs/notes/aispend:refs/notes/theirs")
    a.git("notes", "--ref=refs/notes/aispend", "merge", "-q", "-s", "cat_sort_uniq", "refs/notes/theirs")
    lines = [x for x in a.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").splitlines() if x.strip()]
    assert sorted(lines) == sorted([line_a, canonical(other)])


def test_thousands_of_receipts_on_one_commit_and_notes_on_other_objects(repo: Repo, tmp_path: Path) -> None:
    from aispend.receipts import keys, signing

    line = repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip()
    k = keys.load_key(Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519")
    many = []
    for i in range(2000):
        rec = json.loads(line)
        many.append(signing.sign(rec, k, f"dev{i}@example.com"))
    body = tmp_path / "note.txt"
    body.write_text("\n".join(many) + "\n")
    repo.git("notes", "--ref=refs/notes/aispend", "add", "-f", "-F", str(body), "HEAD")
    blob = repo.git("hash-object", "-w", "--stdin", input="a blob\n").strip()
    repo.git("notes", "--ref=refs/notes/aispend", "add", "-m", "a note on a blob", blob)
    view = json.loads(repo.aispend("show", "--json").stdout)
    # One key, 2000 principals: only dev@example.com is allowed with it.
    assert len(view["receipts"]) == 2000 and view["verification"]["status"] == "unknown-signer"
    assert view["totals"]["requests"] == 0 and view["not_counted"]["by_status"] == {"unknown-signer": 2000}
    v = repo.aispend("verify", "--json", check=False)
    assert v.returncode == 1 and json.loads(v.stdout)["receipts"] == 2001  # 2000 here, 1 on HEAD~1; the blob's note is no commit's
    r = json.loads(repo.aispend("report", "--format", "json", "--tz", "UTC").stdout)
    assert r["totals"]["commits_with_receipts"] == 1 and r["totals"]["not_counted"]["receipts"] == 2000


def test_escape_injection_in_every_text_field_is_neutralised(repo: Repo) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J[red]x[/red]\r"
    rec = json.loads(repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip())
    rec["author"] = evil
    rec["signer"]["principal"] = evil
    rec["pricing"] = evil
    for s in rec["sessions"]:
        s["tool"] = s["session"] = evil
        for m in s["models"]:
            m["model"] = evil
    replace_note(repo, "HEAD", canonical(rec))
    for args in (("show",), ("verify",), ("report", "--tz", "UTC"), ("report", "--format", "md"), ("report", "--by", "session")):
        p = repo.aispend(*args, check=False)
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\r" not in p.stdout, args
    # Such a receipt is not even a receipt (control characters), and says so.
    assert "holds control or invisible characters" in repo.aispend("show").stdout
    # Markup that is plain text is shown as text: the receipt is rendered, the markup is not.
    ok = json.loads(repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD~1").strip())
    for s in ok["sessions"]:
        for m in s["models"]:
            m["model"] = "[red]x[/red]"
    replace_note(repo, "HEAD~1", canonical(ok))
    assert "[red]x[/red]" in repo.aispend("show", "HEAD~1").stdout
