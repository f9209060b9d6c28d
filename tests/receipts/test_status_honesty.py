"""Honest status: whether commits get receipts, whose branch waiting usage is on, the last receipt
of this branch, what a reinstall bills, and only the committer's own alerts in the editor.

Real repositories, the real hooks (in the background, as a user runs them), a real index and the
CLI as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from aispend.install import HOOKS
from tests.gitutil import Person, Repo, Spend, at, bare_remote
from tests.receipts.test_hook_behaviour import commit_with_editor

NOT_INSTALLED = "hooks not installed here: commits get no receipt"


def status(r: Repo, when: str, *args: str) -> str:
    return r.aispend("status", *args, env=at(when)).stdout


def status_json(r: Repo, when: str, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(status(r, when, "--json", *args))


def sessions(receipt: dict) -> list[str]:  # type: ignore[type-arg]
    return sorted(s["session"] for s in receipt["sessions"])


# -- 1. hooks not in place ------------------------------------------------------------------


def test_status_after_uninstall_says_commits_get_no_receipt(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    r.install()  # 09:00
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    billed = r.commit("billed", "2026-03-01T09:20:00Z")
    assert status(r, "2026-03-01T09:21:00Z").splitlines()[0] == f"worktree {r.path}"
    r.aispend("uninstall")
    spend.claude(r.path, "2026-03-01T09:30:00Z", "s2")
    r.commit("unbilled", "2026-03-01T09:40:00Z")
    assert r.receipts() == []
    text = status(r, "2026-03-01T09:45:00Z").splitlines()
    assert text[:2] == [NOT_INSTALLED, "run: aispend install"]
    assert not any("next commit will carry" in line for line in text)
    assert "billing usage since 2026-03-01T09:00:00.000Z" in text  # the record is kept
    assert "hooks: " + ", ".join(f"{h} missing" for h in HOOKS) in text
    assert (
        "unclaimed here since 2026-03-01T09:30:00.000Z: $0.0105: 1 request, 1 session, 1,500 tokens; "
        "the next commit would carry it if installed ('aispend install --since now' leaves it out)"
    ) in text
    assert f"last receipt: {billed[:12]} ($0.0105)" in text  # HEAD has none: its parent's
    st = status_json(r, "2026-03-01T09:45:00Z")
    assert st["receipts"] is False
    assert st["billing_since"] == "2026-03-01T09:00:00.000Z"
    assert st["next_commit"] == {"requests": 0, "sessions": 0, "total_tokens": 0, "cost_usd": 0.0, "unpriced_tokens": 0}
    assert st["unclaimed"] == {"requests": 1, "sessions": 1, "total_tokens": 1500, "cost_usd": 0.0105,
                               "unpriced_tokens": 0, "oldest": "2026-03-01T09:30:00.000Z"}
    assert st["last_receipt"] == {"commit": billed, "cost_usd": 0.0105}


def test_status_with_no_install_record_or_one_hook_gone(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    text = status(r, "2026-03-01T09:45:00Z").splitlines()
    assert text[:2] == [NOT_INSTALLED, "run: aispend install"]
    assert not any("carry" in line for line in text)  # no billing start: nothing would be billed
    st = status_json(r, "2026-03-01T09:45:00Z")
    assert (st["receipts"], st["billing_since"], st["unclaimed"]["requests"], st["last_receipt"]) == (False, None, 0, None)
    r.install()  # 09:00
    spend.claude(r.path, "2026-03-01T09:20:00Z", "s2")
    assert status_json(r, "2026-03-01T09:45:00Z")["receipts"] is True
    (r.path / ".git" / "hooks" / "post-commit").unlink()  # by hand: the record stays
    text = status(r, "2026-03-01T09:45:00Z").splitlines()
    assert text[0] == NOT_INSTALLED
    (r.path / ".git" / "hooks" / "post-commit").write_text("#!/bin/sh\nexit 0\n")  # someone else's
    assert status(r, "2026-03-01T09:45:00Z").splitlines()[0] == NOT_INSTALLED
    r.install(when="2026-03-01T09:50:00Z")  # chains that hook: receipts again
    (r.path / ".git" / "hooks" / "post-rewrite").unlink()
    text = status(r, "2026-03-01T09:55:00Z").splitlines()
    assert text[0] == f"worktree {r.path}"
    assert "post-rewrite is missing: amended and rebased commits get no receipt (run: aispend install)" in text
    assert "next commit will carry $0.0210: 2 requests, 2 sessions, 3,000 tokens" in text


# -- 2. the branches waiting usage belongs to ------------------------------------------------------


def test_status_names_the_branches_usage_waits_for(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "here", branch="main")
    spend.claude(repo.path, "2026-03-01T09:11:00Z", "f", branch="feature")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "f", branch="feature")
    spend.claude(repo.path, "2026-03-01T09:13:00Z", "x", branch="fix/\x1b[31mred\x07", inp=10_000)
    for i in range(1, 6):
        spend.claude(repo.path, f"2026-03-01T09:2{i}:00Z", f"b{i}", branch=f"b{i}", out=0)
    text = status(repo, "2026-03-01T09:45:00Z")
    assert "\x1b" not in text and "\x07" not in text  # the branch name is log content
    lines = text.splitlines()
    at_ = lines.index("waiting for commits on other branches: 8 requests, $0.0735")
    assert lines[at_ + 1 : at_ + 7] == [
        "  fix/?[31mred?: 1 request, $0.0375",
        "  feature: 2 requests, $0.0210",
        "  b1: 1 request, $0.0030",
        "  b2: 1 request, $0.0030",
        "  b3: 1 request, $0.0030",
        "  and 2 more branches: 2 requests, $0.0060",
    ]
    assert "next commit will carry $0.0105: 1 request, 1 session, 1,500 tokens" in lines
    st = status_json(repo, "2026-03-01T09:45:00Z")
    assert st["other_branches"] == {
        "requests": 8, "cost_usd": 0.0735,
        "branches": [
            {"branch": "fix/\x1b[31mred\x07", "requests": 1, "cost_usd": 0.0375},  # JSON escapes it
            {"branch": "feature", "requests": 2, "cost_usd": 0.021},
            *({"branch": f"b{i}", "requests": 1, "cost_usd": 0.003} for i in range(1, 6)),
        ],
    }


# -- 3. the last receipt is this branch's ------------------------------------------------------


def test_a_new_worktree_shows_its_own_branchs_last_receipt(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "m1")
    on_main = repo.commit("main 1", "2026-03-01T09:20:00Z")
    wt_path = tmp_path / "side"
    repo.git("worktree", "add", "-q", "-b", "side", str(wt_path), "HEAD~1")  # before main's receipted commit
    wt = Repo(wt_path)
    text = status(wt, "2026-03-01T09:25:00Z")
    assert "last receipt: none in this branch's history" in text
    assert on_main[:12] not in text
    assert status_json(wt, "2026-03-01T09:25:00Z")["last_receipt"] is None
    spend.claude(wt_path, "2026-03-01T09:30:00Z", "s1", branch="side")
    spend.claude(wt_path, "2026-03-01T09:31:00Z", "s1", branch="side")
    on_side = wt.commit("side 1", "2026-03-01T09:40:00Z")
    assert sessions(wt.receipts()[0]) == ["s1"]
    assert f"last receipt: {on_side[:12]} ($0.0210)" in status(wt, "2026-03-01T09:45:00Z")
    # The newest receipt written is side's; main's status still shows main's.
    assert f"last receipt: {on_main[:12]} ($0.0105)" in status(repo, "2026-03-01T09:45:00Z")
    assert status_json(repo, "2026-03-01T09:45:00Z")["last_receipt"] == {"commit": on_main, "cost_usd": 0.0105}
    # Switching branches: the branch checked out decides.
    repo.git("switch", "-q", "-c", "later", "HEAD~1")
    assert status_json(repo, "2026-03-01T09:46:00Z")["last_receipt"] is None
    repo.git("switch", "-q", "main")
    repo.commit("main 2, nothing spent", "2026-03-01T09:50:00Z")  # no receipt: the parent's is the last
    assert status_json(repo, "2026-03-01T09:51:00Z")["last_receipt"] == {"commit": on_main, "cost_usd": 0.0105}


# -- 4. reinstalling: what the next commit will take, and --since -------------------------------------


def gap(tmp_path: Path, spend: Spend) -> Repo:
    """Installed at 09:00, a receipted commit, then hooks off: two requests and a commit without a receipt."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    spend.claude(r.path, "2026-03-01T09:10:00Z", "s1")
    r.commit("billed", "2026-03-01T09:20:00Z")
    r.aispend("uninstall")
    spend.claude(r.path, "2026-03-01T09:30:00Z", "s2")
    spend.claude(r.path, "2026-03-01T09:35:00Z", "s3")
    r.commit("no hooks", "2026-03-01T09:40:00Z")
    assert r.receipts() == []
    return r


def test_reinstall_after_a_gap_says_what_the_next_commit_will_take(tmp_path: Path, spend: Spend) -> None:
    r = gap(tmp_path, spend)
    out = r.install(when="2026-03-01T09:50:00Z")
    assert (
        "the next commit will take 2 requests ($0.0210) made since 2026-03-01T09:30:00.000Z while no receipt was written; "
        "'aispend install --since now' leaves them out"
    ) in out
    assert "billing usage from" not in out  # a plain reinstall keeps the start
    assert status_json(r, "2026-03-01T09:51:00Z")["billing_since"] == "2026-03-01T09:00:00.000Z"
    assert "next commit will carry $0.0210: 2 requests, 2 sessions, 3,000 tokens" in status(r, "2026-03-01T09:51:00Z")
    r.commit("takes them", "2026-03-01T10:00:00Z")
    [rec] = r.receipts()
    assert sessions(rec) == ["s2", "s3"] and rec["totals"]["cost_usd"] == "0.021"
    # Installed and hooks in place all along: nothing about a gap.
    spend.claude(r.path, "2026-03-01T10:10:00Z", "s4")
    out = r.install(when="2026-03-01T10:15:00Z")
    assert "the next commit will take 1 request ($0.0105) made since 2026-03-01T10:10:00.000Z\n" in out


def test_reinstall_since_now_leaves_the_gap_out(tmp_path: Path, spend: Spend) -> None:
    r = gap(tmp_path, spend)
    out = r.install("--since", "now", when="2026-03-01T09:50:00Z")
    assert "billing usage from 2026-03-01T09:50:00.000Z (was 2026-03-01T09:00:00.000Z)" in out
    assert "next commit will take" not in out
    st = status_json(r, "2026-03-01T09:51:00Z")
    assert (st["receipts"], st["billing_since"], st["next_commit"]["requests"]) == (True, "2026-03-01T09:50:00.000Z", 0)
    r.commit("nothing to take", "2026-03-01T09:55:00Z")
    assert r.receipts() == []  # s2 and s3 are never billed
    spend.claude(r.path, "2026-03-01T10:00:00Z", "s4")
    r.commit("after", "2026-03-01T10:10:00Z")
    assert sessions(r.receipts()[0]) == ["s4"]


def test_install_since_a_date_or_span_and_what_it_refuses(tmp_path: Path, spend: Spend) -> None:
    r = Repo.init(tmp_path / "repo")
    spend.claude(r.path, "2026-02-27T23:59:00Z", "too-old")
    spend.claude(r.path, "2026-02-28T00:00:01Z", "old")
    spend.claude(r.path, "2026-03-01T08:30:00Z", "today")
    out = r.install("--since", "2d")  # today (1 March, UTC) and the day before
    assert "billing usage from 2026-02-28T00:00:00.000Z\n" in out
    assert "the next commit will take 2 requests ($0.0210) made since 2026-02-28T00:00:01.000Z\n" in out
    for bad, message in [
        (("--since", "90m"), "--since '90m': months or minutes? write days (7d), hours (2h) or a date (YYYY-MM-DD)"),
        (("--since", "2026-03-02"), "--since '2026-03-02' is in the future"),
        (("--since", "yesterday"), "--since 'yesterday': expected a date (YYYY-MM-DD) or a span such as 30d, 4w"),
        (("--since", "now", "--backfill", "2h"), "--since and --backfill both set the billing start: give one"),
    ]:
        p = r.aispend("install", *bad, check=False, env=at("2026-03-01T09:00:00Z"))
        assert (p.returncode, p.stderr) == (1, f"aispend: error: {message}\n")
    assert status_json(r, "2026-03-01T09:00:00Z")["billing_since"] == "2026-02-28T00:00:00.000Z"  # unchanged
    out = r.install("--since", "1d", when="2026-03-01T09:00:00Z")  # later: leaves 28 February out
    assert "billing usage from 2026-03-01T00:00:00.000Z (was 2026-02-28T00:00:00.000Z)" in out
    assert "the next commit will take 1 request ($0.0105) made since 2026-03-01T08:30:00.000Z\n" in out
    out = r.install("--since", "2h", when="2026-03-01T09:00:00Z")  # hours: exact
    assert "billing usage from 2026-03-01T07:00:00.000Z (was 2026-03-01T00:00:00.000Z)" in out
    r.commit("c", "2026-03-01T09:10:00Z")
    assert sessions(r.receipts()[0]) == ["today"]


# -- 5. the commit editor's alerts are the committer's own -----------------------------------------

POLICY = """\
[budget]
monthly_usd = 0.01

[teams.platform]
members = ["ana@example.com", "bo@example.com"]
monthly_usd = 0.01

[authors."ana@example.com"]
monthly_usd = 0.01

[authors."BO@example.com"]
monthly_usd = 0.01
"""


def alerts_shown(seen: str) -> list[str]:
    return [line[len("# aispend alert: "):] for line in seen.splitlines() if line.startswith("# aispend alert: ")]


def hard(scope: str, name: str, spent: str, projected: str) -> str:
    return f"{scope} {name} budget over its hard limit: ${spent} of $0.01 this month, ${projected} projected by its end"


def test_commit_editor_alerts_are_the_committers_own(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    ana = Person("ana", tmp_path, remote)
    bo = Person("bo", tmp_path, remote)
    bo.repo.install()
    bo_line = bo.repo.aispend("key", "--line").stdout.strip()
    (bo.repo.path / ".aispend" / "allowed_signers").unlink()  # ana commits the team's list
    ana.repo.install()
    ana_line = ana.repo.aispend("key", "--line").stdout.strip()
    (ana.repo.path / ".aispend" / "allowed_signers").write_text(f"{ana_line}\n{bo_line}\n")
    (ana.repo.path / ".aispend.toml").write_text(POLICY)
    # ana: no cache hits, $0.0105; bo: 90% cache hits, $0.0132. Both over every budget.
    ana.spend.claude(ana.repo.path, "2026-03-01T09:10:00Z", "ana-1")
    ana.repo.commit("ana 1", "2026-03-01T09:20:00Z", files={".aispend/allowed_signers": f"{ana_line}\n{bo_line}\n", ".aispend.toml": POLICY})
    ana.repo.git("push", "-q", "origin", "main")
    ana.repo.aispend("sync")
    bo.repo.git("pull", "-q", "origin", "main")
    bo.repo.aispend("sync")
    bo.spend.claude(bo.repo.path, "2026-03-01T09:30:00Z", "bo-1", cr=9000)
    bo.repo.commit("bo 1", "2026-03-01T09:40:00Z")
    bo.repo.git("push", "-q", "origin", "main")
    bo.repo.aispend("sync")
    ana.repo.git("pull", "-q", "origin", "main")
    ana.repo.aispend("sync")
    ana.repo.commit("ana 2, nothing spent", "2026-03-01T09:50:00Z")  # her writer now sees both receipts

    ana_budget = hard("author", "ana@example.com", "0.01", "0.33")
    bo_budget = hard("author", "bo@example.com", "0.01", "0.41")
    ana_cache = "low cache hit rate: ana@example.com at 0% against the team's median 45%"
    team = [hard("repo", "repository", "0.02", "0.73"), hard("team", "platform", "0.02", "0.73"), ana_budget, bo_budget, ana_cache]
    assert [a["message"] for a in json.loads(ana.repo.aispend("budget", "--json", "--tz", "UTC").stdout)["alerts"]] == team

    # bo's editor: his own budget only (not ana's, the team's or the repository's, nor ana's cache hits).
    assert alerts_shown(commit_with_editor(bo.repo, bo.repo.path.parent, "2026-03-01T10:00:00Z")) == [bo_budget]
    # ana's editor: her budget and her cache-hit rate.
    assert alerts_shown(commit_with_editor(ana.repo, ana.repo.path.parent, "2026-03-01T10:10:00Z")) == [ana_budget, ana_cache]

    # status: yours; status --team: everyone's. Each per-person alert says whose it is.
    st = json.loads(ana.repo.aispend("status", "--json").stdout)
    assert [(a["kind"], a.get("author")) for a in st["alerts"]] == [("budget", "ana@example.com"), ("low_cache_hit", "ana@example.com")]
    text = ana.repo.aispend("status").stdout.splitlines()
    assert [line for line in text if line.startswith("alert: ")] == [f"alert: {ana_budget}", f"alert: {ana_cache}"]
    everyone = ana.repo.aispend("status", "--team").stdout.splitlines()
    assert [line for line in everyone if line.startswith("alert: ")] == [f"alert: {m}" for m in team]
    st = json.loads(ana.repo.aispend("status", "--json", "--team").stdout)
    assert [a.get("author") for a in st["alerts"]] == [None, None, "ana@example.com", "bo@example.com", "ana@example.com"]


def test_mine_keeps_session_alerts_and_compares_emails_without_case() -> None:
    from aispend.policy.alerts import mine

    alerts = [
        {"kind": "budget", "scope": "author", "name": "ana@example.com", "author": "ana@example.com", "message": "a"},
        {"kind": "budget", "scope": "team", "name": "platform", "message": "t"},
        {"kind": "budget", "scope": "repo", "name": "repository", "message": "r"},
        {"kind": "low_cache_hit", "author": "Bo@Example.com", "message": "b"},
        {"kind": "spike", "day": "2026-03-01", "message": "s"},
        {"kind": "model_switch", "model": "m", "message": "m"},
        {"kind": "runaway_session", "session": "claude:x", "message": "run"},
        {"kind": "context_bloat", "session": "claude:x", "message": "bloat"},
        {"kind": "budget", "scope": "author", "name": "ana@example.com", "message": "cached before authors were named"},
    ]
    assert [a["message"] for a in mine(alerts, "ANA@example.com ")] == ["a", "run", "bloat"]
    assert [a["message"] for a in mine(alerts, "bo@example.com")] == ["b", "run", "bloat"]
    assert [a["message"] for a in mine(alerts, None)] == ["run", "bloat"]
