"""Budgets and alerts: each fires on a history built to trigger it, and stays silent on one built not to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend

ONE = 0.0105  # one default request (claude-sonnet-4-5: 1000 in, 500 out)


@pytest.fixture
def early(tmp_path: Path) -> Repo:
    """A repository installed on 1 January (the tests' clock says 1 March, 12:00 UTC)."""
    r = Repo.init(tmp_path / "repo")
    r.install(when="2026-01-01T00:00:00Z")
    return r


def policy(repo: Repo, text: str) -> None:
    (repo.path / ".aispend.toml").write_text(text)


def budget(repo: Repo) -> dict:  # type: ignore[type-arg]
    return json.loads(repo.aispend("budget", "--json", "--tz", "UTC").stdout)


def kinds(res: dict) -> list[str]:  # type: ignore[type-arg]
    return [a["kind"] for a in res["alerts"]]


def test_budgets_with_projection_and_status(early: Repo, spend: Spend) -> None:
    policy(early, """
[budget]
monthly_usd = 0.025
soft = 0.8

[teams.platform]
members = ["dev@example.com"]
monthly_usd = 10

[authors."bob@example.com"]
monthly_usd = 0.01
""")
    spend.claude(early.path, "2026-03-01T09:00:00Z", "s1")
    early.commit("dev", "2026-03-01T09:10:00Z")
    spend.claude(early.path, "2026-03-01T09:20:00Z", "s2")
    early.commit("bob", "2026-03-01T09:30:00Z", env={"GIT_AUTHOR_EMAIL": "bob@example.com"})
    res = budget(early)
    assert res["period"] == "2026-03-01 .. 2026-03-01"
    rows = {(b["scope"], b["name"]): b for b in res["budgets"]}
    repo_b = rows[("repo", "repository")]
    assert (repo_b["spent_usd"], repo_b["projected_usd"], repo_b["status"]) == (2 * ONE, 2 * ONE * 31, "soft")  # 0.021 >= 0.8 x 0.025
    assert rows[("team", "platform")]["spent_usd"] == ONE and rows[("team", "platform")]["status"] == "ok"
    assert rows[("author", "bob@example.com")]["status"] == "hard"
    assert repo_b["top"] == [{"author": "bob@example.com", "spent_usd": ONE}, {"author": "dev@example.com", "spent_usd": ONE}]
    assert repo_b["top_sessions"] == [{"session": "claude:s1", "spent_usd": ONE}, {"session": "claude:s2", "spent_usd": ONE}]
    assert kinds(res).count("budget") == 2
    text = early.aispend("budget", "--tz", "UTC").stdout
    assert "HARD author bob@example.com: $0.01 of $0.01 (105%), projected $0.33" in text


def test_no_policy_no_budgets_no_alerts(early: Repo, spend: Spend) -> None:
    spend.claude(early.path, "2026-03-01T09:00:00Z", "s1")
    early.commit("dev", "2026-03-01T09:10:00Z")
    res = budget(early)
    assert res["budgets"] == [] and res["alerts"] == []
    assert early.aispend("budget").stdout.startswith("no budgets (add them to .aispend.toml")


@pytest.mark.parametrize("peak", [3, 1])
def test_spike(early: Repo, spend: Spend, peak: int) -> None:
    for day in range(14, 29):
        spend.claude(early.path, f"2026-02-{day}T10:00:00Z", f"d{day}")
        early.commit(f"day {day}", f"2026-02-{day}T11:00:00Z")
    for k in range(peak):
        spend.claude(early.path, f"2026-03-01T09:0{k}:00Z", f"peak{k}")
    early.commit("today", "2026-03-01T10:00:00Z")
    res = budget(early)
    assert kinds(res) == (["spike"] if peak == 3 else [])
    if peak == 3:
        assert res["alerts"][0]["message"] == "spike on 2026-03-01: $0.03, over 2x the 14-day median ($0.01)"


@pytest.mark.parametrize("used_before", [False, True])
def test_model_switch(early: Repo, spend: Spend, used_before: bool) -> None:
    spend.claude(early.path, "2026-01-10T10:00:00Z", "old")
    if used_before:
        spend.claude(early.path, "2026-01-10T10:05:00Z", "old-opus", model="claude-opus-4-6")
    early.commit("january", "2026-01-10T11:00:00Z")
    spend.claude(early.path, "2026-02-20T10:00:00Z", "new", model="claude-opus-4-6")
    early.commit("february", "2026-02-20T11:00:00Z")
    res = budget(early)
    assert kinds(res) == ([] if used_before else ["model_switch"])
    if not used_before:
        assert res["alerts"][0]["message"].startswith("model switch: claude-opus-4-6, not used here before the last 30 days")


@pytest.mark.parametrize("bob_reads", [0, 80_000])
def test_low_cache_hit_against_the_team(early: Repo, spend: Spend, bob_reads: int) -> None:
    spend.claude(early.path, "2026-03-01T09:00:00Z", "a", cr=90_000)
    early.commit("cached", "2026-03-01T09:10:00Z")
    spend.claude(early.path, "2026-03-01T09:20:00Z", "b", cr=bob_reads)
    early.commit("bob's", "2026-03-01T09:30:00Z", env={"GIT_AUTHOR_EMAIL": "bob@example.com"})
    res = budget(early)
    if bob_reads:
        assert kinds(res) == []
    else:
        assert kinds(res) == ["low_cache_hit"]
        assert res["alerts"][0]["author"] == "bob@example.com"


@pytest.mark.parametrize("hours", [7, 2])
def test_runaway_session(early: Repo, spend: Spend, hours: int) -> None:
    for h in range(hours + 1):  # a request every hour, ending at 11:30 (now is 12:00)
        spend.claude(early.path, f"2026-03-01T{11 - hours + h:02d}:30:00Z", "loop")
    res = budget(early)
    if hours == 7:
        [a] = [x for x in res["alerts"] if x["kind"] == "runaway_session"]
        assert a["message"] == "runaway session claude:loop: running for 7.0 h, still spending with no commit for 7.0 h"
    else:
        assert "runaway_session" not in kinds(res)


@pytest.mark.parametrize("growth", [1000, 0])
def test_context_bloat(early: Repo, spend: Spend, growth: int) -> None:
    for i in range(10):
        spend.claude(early.path, f"2026-03-01T11:{10 + i:02d}:00Z", "chat", inp=1000, cr=growth * i)
    res = budget(early)
    assert ("context_bloat" in kinds(res)) == bool(growth)


@pytest.mark.parametrize("text, error", [
    ("[budget]\nmonthly_usd = \"lots\"\n", ".aispend.toml: line 2: budget.monthly_usd: monthly_usd must be a positive number of dollars"),
    ("[budget]\nmonthly_usd = 10\nsoft = 2\nhard = 1\n", ".aispend.toml: line 3: budget.soft: soft must not be above hard"),
    ("[teams.platform]\nmonthly_usd = 10\nmembers = [\"ana\"]\n", ".aispend.toml: line 3: teams.platform.members: members must be a list of email addresses"),
    ("[alerts]\nspike_factor = 2\nrunaway_hours = 3\n", ".aispend.toml: line 3: alerts.runaway_hours: unknown field"),
    ("[budgets]\nmonthly_usd = 1\n", ".aispend.toml: line 1: budgets: unknown section [budgets]"),
    ("[budget\nmonthly_usd = 1\n", "line 1"),
])
def test_invalid_policy_names_the_line_and_the_field(early: Repo, text: str, error: str) -> None:
    policy(early, text)
    p = early.aispend("budget", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("aispend: error: ") and error in p.stderr


def test_alerts_reach_status_report_and_the_commit_message(early: Repo, spend: Spend, tmp_path: Path) -> None:
    # The committer's own budget: status, the report and the editor all show it.
    policy(early, '[authors."dev@example.com"]\nmonthly_usd = 0.01\n')
    spend.claude(early.path, "2026-03-01T09:00:00Z", "s1")
    early.commit("over budget", "2026-03-01T09:10:00Z")
    msg = "author dev@example.com budget over its hard limit: $0.01 of $0.01 this month, $0.33 projected by its end"
    assert f"alert: {msg}" in early.aispend("status").stdout
    rep = json.loads(early.aispend("report", "--format", "json", "--tz", "UTC").stdout)
    assert [a["message"] for a in rep["alerts"]] == [msg]
    from aispend.reports.render import md_text

    assert f"⚠️ {md_text(msg)}" in early.aispend("report", "--format", "md").stdout  # escaped: it came from a note
    # The editor shows it when the next commit is written.
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncp "$1" {seen}\nprintf "next\\n" > "$1"\n')
    editor.chmod(0o755)
    (early.path / "n.txt").write_text("n")
    early.git("add", "n.txt")
    early.git("commit", "-q", env={"GIT_EDITOR": str(editor), "GIT_AUTHOR_DATE": "2026-03-01T11:00:00Z",
                                   "GIT_COMMITTER_DATE": "2026-03-01T11:00:00Z"})
    assert f"# aispend alert: {msg}\n" in seen.read_text()


def test_the_policy_names_the_allowed_signers(early: Repo, spend: Spend) -> None:
    spend.claude(early.path, "2026-03-01T09:00:00Z", "s1")
    early.commit("c", "2026-03-01T09:10:00Z")
    line = early.aispend("key").stdout.strip().splitlines()[-1]
    (early.path / "team-signers").write_text(line + "\n")
    policy(early, '[trust]\nallowed_signers = "team-signers"\n')
    out = early.aispend("verify").stdout
    assert "1 receipt: 1 valid" in out and "WARNING" not in out
    policy(early, '[trust]\nallowed_signers = "missing"\n')
    p = early.aispend("verify", check=False)
    assert p.returncode == 1 and "[trust] allowed_signers names" in p.stderr


def test_a_session_that_costs_too_much(early: Repo, spend: Spend) -> None:
    policy(early, "[alerts]\nrunaway_session_usd = 1\n")
    spend.claude(early.path, "2026-03-01T11:00:00Z", "pricey", inp=150_000, out=50_000)  # $1.20
    spend.claude(early.path, "2026-03-01T11:05:00Z", "cheap")
    [a] = budget(early)["alerts"]
    assert a["kind"] == "runaway_session" and a["message"] == "runaway session claude:pricey: $1.20 spent"
