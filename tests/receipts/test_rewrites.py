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
