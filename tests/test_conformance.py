"""Conformance with ccusage on real public logs (../shared/fixtures), where the rules agree,
and each documented difference asserted exactly (docs/accounting.md, "Differences from ccusage").

Skipped when the fixtures are absent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.util import report, rows, run_ingest


def _load(fixtures: Path, name: str) -> Any:
    return json.loads((fixtures / "expected" / name).read_text())


@pytest.fixture
def indexed(shared_fixtures: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(shared_fixtures / "claude"))
    monkeypatch.setenv("CODEX_HOME", str(shared_fixtures / "codex"))
    conn, stats = run_ingest()
    assert stats.bad_lines == 0 and not stats.unreadable
    return conn


def _usd(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(Decimal("0.00000001"))


def _cost(t: Any) -> Decimal:
    return (Decimal(t.cost_nusd) / 10**9).quantize(Decimal("0.00000001"))


def test_codex_totals_equal_ccusage(indexed, shared_fixtures: Path) -> None:
    exp = _load(shared_fixtures, "ccusage-codex-daily.json")["totals"]
    t = report(indexed, "day", "codex").totals
    assert t.input_tokens == exp["inputTokens"] == 4_276_901
    assert t.cache_read_tokens == exp["cacheReadTokens"] == 51_618_688
    assert t.output_tokens == exp["outputTokens"] == 232_296
    assert t.reasoning_tokens == exp["reasoningOutputTokens"] == 83_893
    assert t.total_tokens == exp["totalTokens"] == 56_127_885
    assert t.cache_creation_tokens == 0
    assert _cost(t) == _usd(exp["costUSD"]) == Decimal("25.17845335")


def test_codex_days_and_sessions_equal_ccusage(indexed, shared_fixtures: Path) -> None:
    daily = {d["date"]: d for d in _load(shared_fixtures, "ccusage-codex-daily.json")["daily"]}
    ours = report(indexed, "day", "codex")
    assert [r.key for r in ours.rows] == sorted(daily) == ["2026-02-23", "2026-02-24", "2026-05-11"]
    for r in ours.rows:
        e = daily[r.key]
        assert (r.totals.input_tokens, r.totals.cache_read_tokens, r.totals.output_tokens, r.totals.total_tokens) == (
            e["inputTokens"], e["cacheReadTokens"], e["outputTokens"], e["totalTokens"]
        )
        assert _cost(r.totals) == _usd(e["costUSD"])
    sessions = {s["sessionFile"][-36:]: s for s in _load(shared_fixtures, "ccusage-codex-session.json")["sessions"]}
    ours_s = report(indexed, "session", "codex")
    assert {r.key for r in ours_s.rows} == set(sessions)
    for r in ours_s.rows:
        e = sessions[r.key]
        assert (r.totals.input_tokens, r.totals.cache_read_tokens, r.totals.output_tokens, r.totals.reasoning_tokens) == (
            e["inputTokens"], e["cacheReadTokens"], e["outputTokens"], e["reasoningOutputTokens"]
        )
        assert _cost(r.totals) == _usd(e["costUSD"])


@pytest.mark.parametrize(("tz", "expected"), [("UTC", {"2026-02-23": 34_239_227, "2026-02-24": 15_823_704, "2026-05-11": 6_064_954})])
def test_codex_days_follow_timestamps_not_file_names(indexed, tz: str, expected: dict[str, int]) -> None:
    assert {k: v["total_tokens"] for k, v in rows(indexed, "day", "codex", tz=tz).items()} == expected


def test_claude_session_report_equals_ccusage(indexed, shared_fixtures: Path) -> None:
    exp = _load(shared_fixtures, "ccusage-claude-session.json")
    t = report(indexed, "session", "claude").totals
    e = exp["totals"]
    assert (t.input_tokens, t.output_tokens, t.cache_creation_tokens, t.cache_read_tokens, t.total_tokens) == (
        e["inputTokens"], e["outputTokens"], e["cacheCreationTokens"], e["cacheReadTokens"], e["totalTokens"]
    ) == (19_624, 50_753, 463_303, 16_915_117, 17_448_797)
    assert _cost(t) == _usd(e["totalCost"]) == Decimal("6.84322020")


def test_claude_sibling_agent_files_belong_to_their_parent_session(indexed, shared_fixtures: Path) -> None:
    """Difference: ccusage reports 2.0.x sibling agent-*.jsonl files as their own sessions;
    their lines carry the parent's sessionId, so aispend counts them in the parent."""
    exp = {s["sessionId"]: s for s in _load(shared_fixtures, "ccusage-claude-session.json")["sessions"]}
    ours = {r.key: r.totals for r in report(indexed, "session", "claude").rows}
    parent = "4c2ddfdc-b619-4525-8d03-1950fb1b0257"
    assert "agent-36541525" not in ours and "agent-50243ee8" not in ours
    merged = [exp[parent], exp["agent-36541525"], exp["agent-50243ee8"]]
    assert ours[parent].input_tokens == sum(s["inputTokens"] for s in merged) == 16_914
    assert ours[parent].output_tokens == sum(s["outputTokens"] for s in merged)
    assert ours[parent].cache_creation_tokens == sum(s["cacheCreationTokens"] for s in merged)
    assert _cost(ours[parent]) == sum(_usd(s["totalCost"]) for s in merged)
    for sid in ("ae4a77f8-aedd-4bc1-888f-c94edc91af04", "d6e0bada-1959-4eec-a9d2-0bfade768d8f", "55604662-cf2a-4331-851a-ec234028f8ca"):
        assert (ours[sid].input_tokens, ours[sid].output_tokens, ours[sid].cache_creation_tokens) == (
            exp[sid]["inputTokens"], exp[sid]["outputTokens"], exp[sid]["cacheCreationTokens"]
        )
        assert _cost(ours[sid]) == _usd(exp[sid]["totalCost"])


def test_claude_daily_differs_only_by_undeduplicated_lines_without_request_id(indexed, shared_fixtures: Path) -> None:
    """Difference: ccusage's daily report keeps every copy of a response that has no requestId
    (its session report does not). aispend de-duplicates by message.id in both."""
    daily = {d["date"]: d for d in _load(shared_fixtures, "ccusage-claude-daily.json")["daily"]}
    ours = {r.key: r.totals for r in report(indexed, "day", "claude").rows}
    assert sorted(ours) == sorted(daily)
    for day in ("2026-02-10", "2026-02-12"):
        e = daily[day]
        assert (ours[day].input_tokens, ours[day].output_tokens, ours[day].cache_creation_tokens, ours[day].cache_read_tokens) == (
            e["inputTokens"], e["outputTokens"], e["cacheCreationTokens"], e["cacheReadTokens"]
        )
        assert _cost(ours[day]) == _usd(e["totalCost"])
    e, o = daily["2025-12-10"], ours["2025-12-10"]
    assert (e["inputTokens"] - o.input_tokens, e["outputTokens"] - o.output_tokens, e["cacheCreationTokens"] - o.cache_creation_tokens) == (9, 12, 105_198)
    assert _usd(e["totalCost"]) - _cost(o) == Decimal("0.39469950")


def test_claude_regional_bedrock_price_matches_ccusage(indexed, shared_fixtures: Path) -> None:
    daily = {d["date"]: d for d in _load(shared_fixtures, "ccusage-claude-daily.json")["daily"]}
    jp = next(m for m in daily["2025-12-10"]["modelBreakdowns"] if m["modelName"].startswith("converse/"))
    cost = indexed.execute("SELECT cost_nusd FROM requests WHERE model = ?", (jp["modelName"],)).fetchone()[0]
    assert Decimal(cost) / 10**9 == _usd(jp["cost"]) == Decimal("0.0198693")


def test_claude_subagent_and_progress_lines(indexed) -> None:
    """Subagent files of the 2.1 layout count in the parent session; nested progress usage does not."""
    n_sub = indexed.execute(
        "SELECT count(*) FROM requests r JOIN files f ON f.id = r.file_id WHERE f.path LIKE '%/subagents/%'"
    ).fetchone()[0]
    assert n_sub > 0
    sessions = {s for (s,) in indexed.execute("SELECT DISTINCT session_id FROM requests r JOIN files f ON f.id = r.file_id WHERE f.path LIKE '%/subagents/%'")}
    assert sessions == {"ae4a77f8-aedd-4bc1-888f-c94edc91af04"}
