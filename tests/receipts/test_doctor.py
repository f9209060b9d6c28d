"""aispend doctor: each problem named with the command that fixes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.gitutil import Repo, Spend


def findings(repo: Repo) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    p = repo.aispend("doctor", "--json", check=False)
    return p.returncode, json.loads(p.stdout)


def test_a_healthy_setup(repo: Repo) -> None:
    rc, fs = findings(repo)
    assert rc == 0 and all(f["ok"] for f in fs)
    assert {f["check"] for f in fs} >= {"hooks", "index", "data", "install", "pricing", "key", "trust", "notes"}
    messages = [f["message"] for f in fs]
    assert ".aispend/allowed_signers trusts this machine's key for dev@example.com" in messages  # made by install
    assert any(m.endswith("is private (mode 0700)") for m in messages)
    assert repo.aispend("doctor").stdout.strip().endswith("all good")


def test_problems_and_their_fixes(repo: Repo, spend: Spend) -> None:
    key = Path(os.environ["AISPEND_HOME"]) / "keys" / "aispend_ed25519"
    key.chmod(0o644)
    (repo.path / ".git" / "hooks" / "post-rewrite").unlink()
    repo.git("remote", "add", "origin", "/nowhere")
    repo.git("config", "--add", "remote.origin.fetch", "+refs/notes/aispend:refs/notes/aispend")
    repo.git("update-ref", "refs/notes/aispend-scratch/123-abc", "HEAD")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1", model="brand-new-model")
    repo.aispend("ingest", "-q")
    rc, fs = findings(repo)
    assert rc == 1
    bad = {f["message"]: f["fix"] for f in fs if not f["ok"]}
    assert bad["post-rewrite is missing"] == "aispend install"
    assert bad[f"{key} has mode 0644: readable by group and others: receipts are not signed with it"] == f"chmod 600 {key}"
    spec = "+refs/notes/aispend:refs/notes/aispend"
    msg = f"remote.origin.fetch has {spec}: a plain git fetch can throw away receipts not pushed yet"
    assert bad[msg] == f"git config --fixed-value --unset remote.origin.fetch {spec}"
    assert bad["a leftover scratch ref refs/notes/aispend-scratch/123-abc (an interrupted write)"] == "git update-ref -d refs/notes/aispend-scratch/123-abc"
    pricing = [m for m in bad if m.startswith("table ")]
    assert pricing and pricing[0].endswith("has no price for models used in the last 30 days: brand-new-model")
    text = repo.aispend("doctor", check=False).stdout
    assert "FIX hooks    post-rewrite is missing\n             -> aispend install" in text
    assert text.strip().endswith("5 things to fix")
    # The fixes it names do fix it.
    key.chmod(0o600)
    repo.install()
    repo.git("config", "--fixed-value", "--unset", "remote.origin.fetch", spec)
    repo.git("update-ref", "-d", "refs/notes/aispend-scratch/123-abc")
    rc, fs = findings(repo)
    assert [f["message"] for f in fs if not f["ok"]] == [pricing[0]]


def test_a_data_dir_others_can_enter(repo: Repo) -> None:
    d = Path(os.environ["AISPEND_HOME"])
    d.chmod(0o755)
    rc, fs = findings(repo)
    bad = {f["message"]: f["fix"] for f in fs if not f["ok"]}
    assert rc == 1 and bad == {f"the data dir {d} has mode 0755: others can look inside": f"chmod 700 {d}"}
