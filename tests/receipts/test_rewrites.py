"""Receipts survive amend, rebase, squash and cherry-pick; sequencer commits never grab new usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from aispend.receipts.model import digest, nusd_of
from tests.gitutil import Repo, Spend, at
from tests.logbuilder import Logs

ONE = 10_500_000




def note_line(repo: Repo, rev: str) -> str:
    return repo.git("notes", "--ref=refs/notes/aispend", "show", rev).strip()


def test_amend_carries_the_old_receipt_plus_new_usage(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    old = repo.commit("c", "2026-03-01T09:30:00Z")
    old_line = note_line(repo, old)
    spend.claude(repo.path, "2026-03-01T09:40:00Z", "s2")
    repo.git("commit", "-q", "--amend", "-m", "c amended", env=at("2026-03-01T09:45:00Z"))
    new = repo.head()
    assert new != old
    [rec] = repo.receipts(new)
    assert rec["commit"] == new
    assert rec["carried_from"] == [digest(old_line)]
    assert [s["session"] for s in rec["sessions"]] == ["s1", "s2"]
    assert nusd_of(rec["totals"]["cost_usd"]) == 2 * ONE
    # A second amend with nothing new carries the sum again, no more.
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:50:00Z"))
    [rec2] = repo.receipts()
    assert rec2["carried_from"] == [digest(note_line(repo, new))]
    assert nusd_of(rec2["totals"]["cost_usd"]) == 2 * ONE


def test_interactive_rebase_squash_sums_the_receipts(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    a = repo.commit("a", "2026-03-01T09:20:00Z")
    spend.claude(repo.path, "2026-03-01T09:25:00Z", "s2")
    b = repo.commit("b", "2026-03-01T09:30:00Z")
    spend.claude(repo.path, "2026-03-01T09:35:00Z", "s3")
    c = repo.commit("c", "2026-03-01T09:40:00Z")
    lines = {x: note_line(repo, x) for x in (a, b, c)}
    # Usage after the last commit must wait for the next real commit.
    spend.claude(repo.path, "2026-03-01T09:50:00Z", "later")
    script = "sed -i -e '2s/^pick/squash/' -e '3s/^pick/fixup/'"
    repo.git("rebase", "-q", "-i", "HEAD~3", env={**at("2026-03-01T10:00:00Z"), "GIT_SEQUENCE_EDITOR": script, "GIT_EDITOR": "true"})
    new = repo.head()
    assert repo.git("rev-list", "--count", "HEAD").strip() == "2"
    [rec] = repo.receipts(new)
    assert rec["commit"] == new
    assert sorted(rec["carried_from"]) == sorted(digest(lines[x]) for x in (a, b, c))
    assert [s["session"] for s in rec["sessions"]] == ["s1", "s2", "s3"]
    assert nusd_of(rec["totals"]["cost_usd"]) == 3 * ONE
    repo.commit("next", "2026-03-01T10:05:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["later"]


def test_plain_rebase_moves_each_receipt_to_its_new_commit(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "t1", branch="topic")
    t1 = repo.commit("t1", "2026-03-01T09:20:00Z")
    spend.claude(repo.path, "2026-03-01T09:25:00Z", "t2", branch="topic")
    t2 = repo.commit("t2", "2026-03-01T09:30:00Z")
    repo.git("switch", "-q", "main")
    repo.commit("upstream", "2026-03-01T09:35:00Z", files={"up.txt": "u"})
    repo.git("switch", "-q", "topic")
    spend.claude(repo.path, "2026-03-01T09:38:00Z", "pending", branch="topic")
    repo.git("rebase", "-q", "main", env=at("2026-03-01T09:40:00Z"))
    n1, n2 = repo.head("HEAD~1"), repo.head("HEAD")
    assert {n1, n2}.isdisjoint({t1, t2})
    [r1] = repo.receipts(n1)
    [r2] = repo.receipts(n2)
    assert [s["session"] for s in r1["sessions"]] == ["t1"]
    assert [s["session"] for s in r2["sessions"]] == ["t2"]
    assert r1["commit"] == n1 and r2["commit"] == n2
    assert r1["tree"] == repo.head("HEAD~1^{tree}")


def test_cherry_pick_carries_the_source_receipt_and_claims_nothing_new(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "t1", branch="topic")
    src = repo.commit("t1", "2026-03-01T09:20:00Z")
    repo.git("switch", "-q", "main")
    spend.claude(repo.path, "2026-03-01T09:25:00Z", "for-main", branch="main")
    repo.git("cherry-pick", src, env=at("2026-03-01T09:30:00Z"))
    picked = repo.head()
    [rec] = repo.receipts(picked)
    assert rec["commit"] == picked
    assert rec["carried_from"] == [digest(note_line(repo, src))]
    assert [s["session"] for s in rec["sessions"]] == ["t1"]
    repo.commit("main work", "2026-03-01T09:35:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["for-main"]


def test_revert_gets_no_receipt_and_leaves_usage_for_the_next_commit(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    repo.commit("c", "2026-03-01T09:20:00Z")
    spend.claude(repo.path, "2026-03-01T09:25:00Z", "s2")
    repo.git("revert", "--no-edit", "HEAD", env=at("2026-03-01T09:30:00Z"))
    assert repo.receipts() == []
    repo.commit("next", "2026-03-01T09:35:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["s2"]


def test_a_forged_receipt_is_not_carried(repo: Repo, spend: Spend) -> None:
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "s1")
    old = repo.commit("c", "2026-03-01T09:30:00Z")
    line = note_line(repo, old)
    forged = line.replace('"cost_usd":"0.0105"', '"cost_usd":"99.0105"', 1)
    assert forged != line
    repo.git("notes", "--ref=refs/notes/aispend", "append", "-m", forged, old)
    repo.git("commit", "-q", "--amend", "--no-edit", env=at("2026-03-01T09:45:00Z"))
    [rec] = repo.receipts()
    assert rec["carried_from"] == [digest(line)]
    assert nusd_of(rec["totals"]["cost_usd"]) == ONE


def test_cherry_pick_of_a_range_carries_each_source(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "topic")
    srcs = []
    for i in range(3):
        spend.claude(repo.path, f"2026-03-01T09:1{i}:00Z", f"t{i}", branch="topic")
        srcs.append(repo.commit(f"t{i}", f"2026-03-01T09:1{i}:30Z"))
    repo.git("switch", "-q", "main")
    repo.git("cherry-pick", f"{srcs[0]}~1..{srcs[2]}", env=at("2026-03-01T09:30:00Z"))
    for i, rev in enumerate(("HEAD~2", "HEAD~1", "HEAD")):
        [rec] = repo.receipts(rev)
        assert rec["commit"] == repo.head(rev)
        assert rec["carried_from"] == [digest(note_line(repo, srcs[i]))]
        assert [s["session"] for s in rec["sessions"]] == [f"t{i}"]


def test_rebase_with_the_apply_backend_carries_too(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "t1", branch="topic")
    old = repo.commit("t1", "2026-03-01T09:20:00Z")
    repo.git("switch", "-q", "main")
    repo.commit("upstream", "2026-03-01T09:25:00Z", files={"up.txt": "u"})
    repo.git("switch", "-q", "topic")
    repo.git("rebase", "-q", "--apply", "main", env=at("2026-03-01T09:30:00Z"))
    new = repo.head()
    assert new != old
    [rec] = repo.receipts(new)
    assert rec["commit"] == new and rec["carried_from"] == [digest(note_line(repo, old))]


def test_pull_rebase_carries_local_receipts(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    repo.git("clone", "-q", "--bare", str(repo.path), str(upstream))
    repo.git("remote", "add", "origin", str(upstream))
    repo.git("fetch", "-q", "origin")
    repo.git("branch", "-q", "--set-upstream-to=origin/main", "main")
    other = tmp_path / "other"
    repo.git("clone", "-q", str(upstream), str(other))
    o = Repo(other)
    o.git("config", "user.email", "o@example.com")
    o.git("config", "user.name", "O")
    o.commit("theirs", "2026-03-01T09:15:00Z", files={"theirs.txt": "t"})
    o.git("push", "-q", "origin", "main")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "mine")
    old = repo.commit("mine", "2026-03-01T09:20:00Z")
    repo.git("pull", "-q", "--rebase", env=at("2026-03-01T09:30:00Z"))
    new = repo.head()
    assert new != old and repo.head("HEAD~1") == o.head()
    [rec] = repo.receipts(new)
    assert [s["session"] for s in rec["sessions"]] == ["mine"]
    assert rec["carried_from"] == [digest(note_line(repo, old))]


def test_installed_before_post_merge_a_merge_commit_gets_no_receipt(repo: Repo, spend: Spend) -> None:
    """Hooks installed by an aispend that had no post-merge (reinstalling adds it): the merge
    commit gets nothing and its usage waits for the next commit."""
    (repo.path / ".git" / "hooks" / "post-merge").unlink()
    repo.git("switch", "-q", "-c", "side")
    repo.commit("side", "2026-03-01T09:10:00Z", files={"side.txt": "s"})
    repo.git("switch", "-q", "main")
    repo.commit("main", "2026-03-01T09:12:00Z", files={"main.txt": "m"})
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "s1")
    repo.git("merge", "-q", "--no-edit", "side", env=at("2026-03-01T09:15:00Z"))
    assert len(repo.head("HEAD^2")) == 40
    assert repo.receipts() == []  # git runs no post-commit for it, and there is no post-merge
    repo.commit("next", "2026-03-01T09:20:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["s1"]


def test_a_conflicted_merge_concluded_with_commit_claims_usage(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "side")
    repo.commit("side", "2026-03-01T09:10:00Z", files={"x.txt": "side\n"})
    repo.git("switch", "-q", "main")
    repo.commit("main", "2026-03-01T09:12:00Z", files={"x.txt": "main\n"})
    repo.git("merge", "-q", "side", check=False, env=at("2026-03-01T09:13:00Z"))
    spend.claude(repo.path, "2026-03-01T09:14:00Z", "resolver")
    (repo.path / "x.txt").write_text("both\n")
    repo.git("add", "x.txt")
    repo.git("commit", "-q", "--no-edit", env=at("2026-03-01T09:15:00Z"))
    [rec] = repo.receipts()
    assert len(rec["parents"]) == 2
    assert [s["session"] for s in rec["sessions"]] == ["resolver"]


def test_git_am_makes_no_receipt_and_leaves_usage(repo: Repo, spend: Spend, tmp_path: Path) -> None:
    repo.git("switch", "-q", "-c", "topic")
    repo.commit("patch me", "2026-03-01T09:10:00Z", files={"p.txt": "p"})
    patch = repo.git("format-patch", "-1", "--stdout")
    repo.git("switch", "-q", "main")
    spend.claude(repo.path, "2026-03-01T09:12:00Z", "s1")
    repo.git("am", "-q", input=patch, env=at("2026-03-01T09:15:00Z"))
    assert repo.receipts() == []
    repo.commit("next", "2026-03-01T09:20:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["s1"]


def test_a_conflicted_cherry_pick_concluded_by_hand_carries_its_source(repo: Repo, spend: Spend) -> None:
    repo.git("switch", "-q", "-c", "topic")
    spend.claude(repo.path, "2026-03-01T09:10:00Z", "t1", branch="topic")
    src = repo.commit("t1", "2026-03-01T09:20:00Z", files={"x.txt": "topic\n"})
    repo.git("switch", "-q", "main")
    repo.commit("main", "2026-03-01T09:22:00Z", files={"x.txt": "main\n"})
    spend.claude(repo.path, "2026-03-01T09:24:00Z", "for-main", branch="main")
    repo.git("cherry-pick", src, check=False, env=at("2026-03-01T09:25:00Z"))
    (repo.path / "x.txt").write_text("both\n")
    repo.git("add", "x.txt")
    repo.git("commit", "-q", "--no-edit", env=at("2026-03-01T09:26:00Z"))
    [rec] = repo.receipts()
    assert rec["carried_from"] == [digest(note_line(repo, src))]
    assert [s["session"] for s in rec["sessions"]] == ["t1"]
    repo.commit("next", "2026-03-01T09:30:00Z")
    assert [s["session"] for s in repo.receipts()[0]["sessions"]] == ["for-main"]
