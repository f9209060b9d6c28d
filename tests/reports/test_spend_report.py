"""aispend report: every number of the JSON against a hand computation, on real receipts in notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aispend.receipts.model import canonical
from tests.gitutil import Repo, Spend, at

# claude-sonnet-4-5: 1000 in + 500 out = $0.0105 (1,500 tokens); 10x that = $0.105
ONE = 0.0105


def report(repo: Repo, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(repo.aispend("report", "--format", "json", "--tz", "UTC", *args).stdout)


@pytest.fixture
def team(repo: Repo, spend: Spend) -> Repo:
    """dev: 1 request at 09:10 (c1); bob: 2 requests, one of an unpriced model (c2); a commit without AI."""
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s-dev")
    repo.commit("c1", "2026-03-01T09:20:00Z")
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "s-bob")
    spend.claude(repo.path, "2026-03-01T09:31:00Z", "s-bob", model="some-unknown-model")
    repo.commit("c2", "2026-03-01T09:40:00Z", env={"GIT_AUTHOR_EMAIL": "bob@example.com"})
    repo.commit("plain", "2026-03-01T09:50:00Z")
    return repo


def test_totals_and_rows_by_author(team: Repo) -> None:
    r = report(team)
    assert (r["since"], r["until"], r["group_by"], r["range"]) == ("2026-01-31", None, "author", "HEAD")
    t = r["totals"]
    assert (t["commits"], t["commits_with_receipts"], t["failed_receipts"]) == (4, 2, 0)
    assert t["cost_usd"] == 2 * ONE
    assert (t["requests"], t["total_tokens"], t["unpriced_tokens"]) == (3, 4500, 1500)
    assert t["cost_per_commit"] == {"mean": ONE, "median": ONE, "p90": ONE}
    assert t["models"] == [
        {"model": "claude-sonnet-4-5-20250929", "cost_usd": 0.021, "share": 1.0},
        {"model": "some-unknown-model", "cost_usd": 0.0, "share": 0.0},
    ]
    rows = {row["key"]: row for row in r["rows"]}
    assert set(rows) == {"dev@example.com", "bob@example.com"}
    assert (rows["bob@example.com"]["commits"], rows["bob@example.com"]["requests"], rows["bob@example.com"]["cost_usd"]) == (1, 2, ONE)
    assert rows["dev@example.com"]["total_tokens"] == 1500
    assert r["outliers"] == [] and r["anomalies"] == []


def test_rows_by_model_and_author_filter(team: Repo) -> None:
    rows = {row["key"]: row for row in report(team, "--by", "model")["rows"]}
    assert rows["claude-sonnet-4-5-20250929"]["requests"] == 2 and rows["claude-sonnet-4-5-20250929"]["commits"] == 2
    assert rows["some-unknown-model"]["unpriced_tokens"] == 1500 and rows["some-unknown-model"]["cost_usd"] == 0.0
    only = report(team, "--author", "bob@example.com")
    assert only["totals"]["commits"] == 1 and only["totals"]["cost_usd"] == ONE


def test_days_follow_the_time_zone(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T15:20:00Z", "late")
    repo.commit("late", "2026-03-01T15:30:00Z")  # 00:30 on 2 March in Tokyo
    utc = report(repo, "--by", "day")
    tokyo = json.loads(repo.aispend("report", "--format", "json", "--tz", "Asia/Tokyo", "--by", "day").stdout)
    assert [row["key"] for row in utc["rows"]] == ["2026-03-01"]
    assert [row["key"] for row in tokyo["rows"]] == ["2026-03-02"]


def test_carried_spend_counts_once(team: Repo, spend: Spend) -> None:
    c1 = team.head("HEAD~2")
    team.git("switch", "-q", "-c", "release", "HEAD~3")
    team.git("cherry-pick", c1, env=at("2026-03-01T10:00:00Z"))
    assert team.receipts()[0]["carried_from"]  # the pick carries c1's receipt
    r = report(team, "--all")
    assert r["totals"]["cost_usd"] == 2 * ONE  # not 3: c1's spend is inside the pick's receipt
    assert r["totals"]["commits_with_receipts"] == 3


def test_failing_receipts_are_counted_apart(team: Repo) -> None:
    line = team.git("notes", "--ref=refs/notes/aispend", "show", "HEAD~1").strip()
    rec = json.loads(line)
    rec["totals"]["cost_usd"] = "9"
    team.git("notes", "--ref=refs/notes/aispend", "add", "-f", "-m", canonical(rec), "HEAD~1")
    r = report(team)
    # Never added to a total, with or without --verified-only (kept for scripts).
    assert r["totals"]["failed_receipts"] == 1 and r["totals"]["cost_usd"] == ONE
    assert r["totals"]["not_counted"] == {"receipts": 1, "claimed_cost_usd": 9.0, "by_status": {"invalid": 1}}
    assert report(team, "--verified-only")["totals"] == r["totals"]
    assert "not counted: 1 receipt (1 invalid) claiming $9.00 (aispend verify)" in team.aispend("report").stdout


def test_outliers(repo: Repo, spend: Spend) -> None:
    for i in range(4):
        spend.claude(repo.path, f"2026-03-01T09:{10 + i * 5}:00Z", f"s{i}")
        repo.commit(f"small {i}", f"2026-03-01T09:{12 + i * 5}:00Z")
    spend.claude(repo.path, "2026-03-01T10:00:00Z", "big", inp=10_000, out=5_000)
    big = repo.commit("big one", "2026-03-01T10:05:00Z")
    r = report(repo)
    assert r["outliers"] == [{"commit": big, "author": "dev@example.com", "subject": "big one", "cost_usd": 0.105, "times_median": 10.0}]
    assert r["totals"]["cost_per_commit"] == {"mean": 0.0294, "median": ONE, "p90": 0.105}
    assert f"outlier: {big[:12]} $0.10 (10.0x the median) dev@example.com: big one" in repo.aispend("report").stdout


def test_anomalies_against_the_trailing_two_weeks(tmp_path: Path, spend: Spend) -> None:
    repo = Repo.init(tmp_path / "repo")
    repo.install(when="2026-01-31T00:00:00Z")
    for day in range(1, 17):  # 16 days of one request each, then a day of three
        spend.claude(repo.path, f"2026-02-{day:02d}T10:00:00Z", f"d{day}")
        repo.commit(f"day {day}", f"2026-02-{day:02d}T11:00:00Z")
    for k in range(3):
        spend.claude(repo.path, f"2026-02-17T10:0{k}:00Z", f"peak{k}")
    repo.commit("peak", "2026-02-17T11:00:00Z")
    r = report(repo, "--since", "2026-02-01")
    assert r["anomalies"] == [{"day": "2026-02-17", "cost_usd": 3 * ONE, "trailing_median_usd": ONE}]


def test_empty_range_and_formats(team: Repo, tmp_path: Path) -> None:
    p = team.aispend("report", "--since", "2020-01-01", "--until", "2020-01-31")
    assert p.returncode == 0
    assert p.stdout.strip() == "no commits in HEAD from 2020-01-01 .. 2020-01-31: nothing to report"
    csv = team.aispend("report", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("key,commits,cost_usd,total_tokens")
    assert len(csv) == 3
    md = team.aispend("report", "--format", "md").stdout
    assert md.startswith("**AI spend: $0.02** over 2 of 4 commits")
    # Everything from a note or a commit is escaped: it renders as its text, never as a mention or a link.
    assert "| bob\\@&#8203;example\\.com | 1 | $0.01 | 3,000 |" in md
    c2 = team.head("HEAD~1")
    assert f"| `{c2[:12]}` | c2 | $0.01 |" in md  # per commit
    assert "| claude\\-sonnet\\-4\\-5\\-20250929 | $0.02 | 100% |" in md and "| some\\-unknown\\-model | $0.00 | 0% |" in md  # per model
    assert "failed verification" not in md
    out = tmp_path / "r.json"
    assert team.aispend("report", "--format", "json", "--output", str(out)).stdout.strip() == f"report written to {out}"
    assert json.loads(out.read_text())["totals"]["commits"] == 4


def test_all_means_the_projects_commits_not_the_notes_history_or_the_stash(team: Repo) -> None:
    """`--all` is every branch and tag: the notes refs' own commits (one per receipt written, also
    under refs/notes/remotes/) and a stash are not commits of the project."""
    team.git("update-ref", "refs/notes/remotes/origin/aispend", "refs/notes/aispend")
    (team.path / "wip.txt").write_text("work in progress\n")
    team.git("add", "wip.txt")
    team.git("stash", "-q")
    assert team.git("stash", "list").strip()  # the stash is there
    everything = report(team, "--all")
    assert everything["totals"]["commits"] == 4 == report(team)["totals"]["commits"]
    assert everything["range"] == "--all"  # as asked, not the git arguments behind it
    assert team.aispend("export", "--all").stdout == team.aispend("export").stdout


def test_a_repository_without_notes(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "bare-of-notes")
    r.commit("x", "2026-03-01T09:00:00Z")
    d = report(r)
    assert (d["totals"]["commits"], d["totals"]["commits_with_receipts"], d["totals"]["cost_usd"], d["rows"]) == (2, 0, 0.0, [])


def test_cached_verifications_follow_the_lines_and_the_trusted_signers(team: Repo, tmp_path: Path) -> None:
    assert report(team)["totals"]["failed_receipts"] == 0  # checked, and remembered
    line = team.git("notes", "--ref=refs/notes/aispend", "show", "HEAD~1").strip()
    rec = json.loads(line)
    rec["totals"]["cost_usd"] = "9"
    team.git("notes", "--ref=refs/notes/aispend", "add", "-f", "-m", canonical(rec), "HEAD~1")
    assert report(team)["totals"]["failed_receipts"] == 1  # a changed line is checked afresh
    from aispend.receipts import keys

    stranger = keys.create_key(tmp_path / "stranger", "x")
    signers = tmp_path / "signers"
    signers.write_text(keys.allowed_signers_line("dev@example.com", stranger.public_line) + "\n")
    r = report(team, "--allowed-signers", str(signers))
    assert r["totals"]["failed_receipts"] == 2  # another list of signers: checked again, now unknown


def test_daily_trend_and_heatmap(tmp_path: Path, spend: Spend) -> None:
    repo = Repo.init(tmp_path / "repo")
    repo.install(when="2026-02-01T00:00:00Z")
    spend.claude(repo.path, "2026-02-10T10:00:00Z", "before")  # in the previous 7 days
    repo.commit("before", "2026-02-10T11:00:00Z")
    for i, day in enumerate((16, 16, 18)):  # Monday 16th twice, Wednesday 18th once
        spend.claude(repo.path, f"2026-02-{day}T1{i}:00:00Z", f"s{i}")
        repo.commit(f"c{i} on {day}", f"2026-02-{day}T1{i}:30:00Z")
    r = report(repo, "--since", "2026-02-16", "--until", "2026-02-22")
    assert r["daily"] == [{"day": "2026-02-16", "cost_usd": 2 * ONE, "commits": 2}, {"day": "2026-02-18", "cost_usd": ONE, "commits": 1}]
    assert r["trend"] == {"previous_since": "2026-02-09", "previous_until": "2026-02-15", "previous_cost_usd": ONE, "change": 2.0}
    text = repo.aispend("report", "--tz", "UTC", "--since", "2026-02-16", "--until", "2026-02-22").stdout
    assert "previous period 2026-02-09 .. 2026-02-15: $0.01; change +200%" in text
    assert "daily spend 2026-02-16 .. 2026-02-22" in text
    grid = {line[:3]: line[4:] for line in text.splitlines() if line[:3] in ("Mon", "Tue", "Wed", "Sun")}
    assert grid == {"Mon": "█", "Tue": "·", "Wed": "▒", "Sun": "·"}


def test_export_rows(team: Repo) -> None:
    rows = [json.loads(x) for x in team.aispend("export").stdout.splitlines()]
    assert [(r["author"], r["session"], r["model"], r["cost_usd"], r["counted"], r["carried"], r["status"]) for r in rows] == [
        ("bob@example.com", "s-bob", "claude-sonnet-4-5-20250929", "0.0105", True, False, "valid"),
        ("bob@example.com", "s-bob", "some-unknown-model", None, True, False, "valid"),
        ("dev@example.com", "s-dev", "claude-sonnet-4-5-20250929", "0.0105", True, False, "valid"),
    ]
    csv = team.aispend("export", "--format", "csv").stdout.splitlines()
    assert csv[0] == "commit,author,committed_at,receipt,status,counted,carried,tool,session,model,requests,input_tokens,output_tokens,cache_creation_tokens,cache_read_tokens,reasoning_tokens,total_tokens,unpriced_tokens,cost_usd"
    assert len(csv) == 4


def test_branch_and_several_repositories(team: Repo, tmp_path: Path, spend: Spend) -> None:
    team.git("switch", "-q", "-c", "topic")
    spend.claude(team.path, "2026-03-01T10:00:00Z", "topic-s", branch="topic")
    team.commit("on topic", "2026-03-01T10:10:00Z")
    team.git("switch", "-q", "main")
    assert report(team)["totals"]["cost_usd"] == 2 * ONE
    assert report(team, "--branch", "topic")["totals"]["cost_usd"] == 3 * ONE
    other = Repo.init(tmp_path / "other")
    other.install()
    spend.claude(other.path, "2026-03-01T09:10:00Z", "other-s")
    other.commit("elsewhere", "2026-03-01T09:20:00Z")
    both = report(team, "--repo", str(team.path), "--repo", str(other.path))
    assert both["totals"]["cost_usd"] == 3 * ONE and both["totals"]["commits"] == 4 + 2
    p = team.aispend("report", "--all", "--branch", "topic", check=False)
    assert p.returncode == 1 and "give one of RANGE, --all or --branch" in p.stderr


def test_unshipped_spend(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "shipped")
    repo.commit("shipped", "2026-03-01T09:15:00Z")
    repo.git("switch", "-q", "-c", "experiment")
    spend.claude(repo.path, "2026-03-01T09:20:00Z", "abandoned", branch="experiment")
    repo.commit("dead end", "2026-03-01T09:25:00Z")
    repo.git("switch", "-q", "main")
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:30:00Z", "squashed", branch="topic")
    topic = repo.commit("topic work", "2026-03-01T09:35:00Z")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--squash", "topic")
    repo.git("commit", "-q", "-m", "Topic (squashed)", env=at("2026-03-01T09:40:00Z"))
    repo.aispend("carry", "--onto", "HEAD", f"{topic}~1..{topic}")
    spend.claude(repo.path, "2026-03-01T09:45:00Z", "never")  # never committed
    r = json.loads(repo.aispend("report", "--unshipped", "--format", "json", env=at("2026-03-01T10:00:00Z")).stdout)
    assert r["default_branch"] == "main"
    assert (r["requests"], r["never_committed"], r["cost_usd"]) == (2, 1, 2 * ONE)
    assert {s["session"] for s in r["sessions"]} == {"claude:abandoned", "claude:never"}
    text = repo.aispend("report", "--unshipped", env=at("2026-03-01T10:00:00Z")).stdout
    assert text.startswith("spent here on code that main does not carry: $0.02 (2 requests, 1 never committed, 3,000 tokens)")


def test_grouping_by_every_key(team: Repo, spend: Spend) -> None:
    c1, c2 = team.head("HEAD~2"), team.head("HEAD~1")
    team.git("switch", "-q", "-c", "topic")
    spend.claude(team.path, "2026-03-01T10:00:00Z", "s-topic", branch="topic")
    c4 = team.commit("on topic", "2026-03-01T10:10:00Z")
    team.git("switch", "-q", "main")

    def keys(by: str) -> dict[str, float]:
        return {row["key"]: row["cost_usd"] for row in report(team, "--all", "--by", by)["rows"]}

    assert keys("tool") == {"claude": 3 * ONE}
    assert keys("session") == {"claude:s-dev": ONE, "claude:s-bob": ONE, "claude:s-topic": ONE}
    assert keys("commit") == {c1: ONE, c2: ONE, c4: ONE}
    assert keys("day") == {"2026-03-01": 3 * ONE}
    assert keys("week") == {"2026-W09": 3 * ONE}
    assert keys("month") == {"2026-03": 3 * ONE}
    assert keys("branch") == {"main": 2 * ONE, "topic": ONE}
    assert keys("author") == {"dev@example.com": 2 * ONE, "bob@example.com": ONE}


def test_one_commit_cherry_picked_onto_two_branches_counts_once(team: Repo) -> None:
    """Two receipts carry c1 (a backport to two release branches): its spend counts once."""
    c1 = team.head("HEAD~2")
    for branch, when in (("release-1", "2026-03-01T10:00:00Z"), ("release-2", "2026-03-01T10:05:00Z")):
        team.git("switch", "-q", "-c", branch, "main~3")
        team.git("cherry-pick", c1, env=at(when))
        assert team.receipts()[0]["carried_from"]
    r = report(team, "--all")
    assert r["totals"]["cost_usd"] == 2 * ONE and r["totals"]["requests"] == 3  # as spent: c1 once, c2
    rows = [json.loads(x) for x in team.aispend("export", "--all").stdout.splitlines()]
    assert sum(x["requests"] for x in rows if x["counted"]) == 3
    only_picks = report(team, "release-1", "release-2", "^main")
    assert only_picks["totals"]["requests"] == 1  # c1 not in range: held by two picks, counted once


def test_shared_spend_counts_in_the_window_of_its_first_carrier(repo: Repo, spend: Spend) -> None:
    """X picked onto main in March and onto a release branch in April: March holds it, April
    does not count it again, and March + April is X once."""
    repo.git("switch", "-q", "-c", "feature")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "x", branch="feature")
    x = repo.commit("x", "2026-03-01T09:20:00Z")
    repo.git("switch", "-q", "-c", "release", "main")
    repo.git("switch", "-q", "main")
    repo.git("cherry-pick", x, env=at("2026-03-10T10:00:00Z"))
    repo.git("switch", "-q", "release")
    repo.git("cherry-pick", x, env=at("2026-04-02T10:00:00Z"))
    march = report(repo, "--all", "--since", "2026-03-01", "--until", "2026-03-31")
    april = report(repo, "--all", "--since", "2026-04-01", "--until", "2026-04-30")
    both = report(repo, "--all", "--since", "2026-03-01", "--until", "2026-04-30", "--by", "month")
    assert (march["totals"]["cost_usd"], april["totals"]["cost_usd"], both["totals"]["cost_usd"]) == (ONE, 0.0, ONE)
    assert [(r["key"], r["cost_usd"]) for r in both["rows"]] == [("2026-03", ONE)]
