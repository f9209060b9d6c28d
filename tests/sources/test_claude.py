"""Claude Code counting rules, one test per rule (docs/accounting.md)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.logbuilder import Logs, write
from tests.util import nusd, rows, run_ingest, totals

T0 = "2026-02-12T14:00:00.000Z"


def _requests(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT key, session_id, agent_id, model, input_tokens, output_tokens, cache_write_5m, cache_write_1h, "
        "cache_read_tokens, cost_nusd, price_note FROM requests ORDER BY ts_ms, key"
    ).fetchall()


def test_usage_entry_is_counted_and_priced(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", inp=1000, out=200, cw=3000, cr=50000)])
    conn, stats = run_ingest()
    t = totals(conn)
    assert (t["requests"], t["input_tokens"], t["output_tokens"]) == (1, 1000, 200)
    assert (t["cache_creation_tokens"], t["cache_read_tokens"], t["total_tokens"]) == (3000, 50000, 54200)
    expected = nusd((1000, "3"), (200, "15"), (3000, "3.75"), (50000, "0.3"))
    assert conn.execute("SELECT cost_nusd FROM requests").fetchone()[0] == expected == 32_250_000
    assert t["cost_usd"] == 0.03225
    assert t["unpriced_tokens"] == 0 and t["unpriced_models"] == []


def test_line_without_timestamp_or_input_tokens_is_not_usage(logs: Logs) -> None:
    no_ts = Logs.assistant(T0, session="s1")
    del no_ts["timestamp"]
    no_input = Logs.assistant(T0, session="s1")
    del no_input["message"]["usage"]["input_tokens"]
    write(logs.claude_file("s1"), [no_ts, no_input, Logs.assistant(T0, session="s1", inp=7, out=3)])
    conn, stats = run_ingest()
    assert totals(conn)["requests"] == 1
    assert stats.counts["bad_timestamp"] == 1
    assert stats.counts["bad_tokens"] == 1


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_streaming_duplicates_keep_the_largest_copy(logs: Logs, order: str) -> None:
    copies = [Logs.assistant(T0, session="s1", msg_id="msg_A", req_id="req_A", inp=5, cw=100, cr=900, out=o) for o in (1, 8, 412)]
    if order == "reverse":
        copies.reverse()
    write(logs.claude_file("s1"), copies)
    conn, _ = run_ingest()
    t = totals(conn)
    assert (t["requests"], t["output_tokens"], t["total_tokens"]) == (1, 412, 5 + 100 + 900 + 412)


def test_resumed_copy_in_another_file_keeps_its_session(logs: Logs) -> None:
    """A response copied into a resumed session's file stays with its own sessionId."""
    original = Logs.assistant(T0, session="orig", msg_id="msg_X", req_id="req_X", inp=10, out=50)
    later = Logs.assistant("2026-02-12T15:00:00.000Z", session="orig", msg_id="msg_Y", req_id="req_Y", inp=20, out=60)
    # The resumed file sorts first by name and repeats both responses (same sessionId).
    write(logs.claude_file("0-resumed"), [original, later, Logs.assistant("2026-02-12T16:00:00.000Z", session="0-resumed", inp=1, out=1)])
    write(logs.claude_file("orig"), [original, later])
    conn, _ = run_ingest()
    by_session = rows(conn, "session")
    assert set(by_session) == {"orig", "0-resumed"}
    assert by_session["orig"]["requests"] == 2
    assert by_session["orig"]["output_tokens"] == 110
    assert by_session["0-resumed"]["requests"] == 1


def test_dedup_by_message_id_alone_without_request_id(logs: Logs) -> None:
    lines = [Logs.assistant(T0, session="s1", msg_id="msg_nr", req_id=None, inp=3, out=o) for o in (2, 9)]
    write(logs.claude_file("s1"), lines)
    conn, _ = run_ingest()
    assert _requests(conn)[0][0] == "claude:msg_nr"
    assert totals(conn)["requests"] == 1
    assert totals(conn)["output_tokens"] == 9


def test_same_message_id_different_request_ids_are_two_requests(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", msg_id="msg_1", req_id=r, inp=3, out=4) for r in ("req_a", "req_b")])
    conn, _ = run_ingest()
    assert totals(conn)["requests"] == 2


@pytest.mark.parametrize("layout", ["new", "old"])
def test_subagent_usage_counts_and_links_to_parent_session(logs: Logs, layout: str) -> None:
    write(logs.claude_file("parent"), [Logs.assistant(T0, session="parent", inp=10, out=10)])
    write(
        logs.claude_file("parent", agent="a1b2", layout=layout),
        [Logs.assistant(T0, session="parent", inp=100, out=20, sidechain=True, agent="a1b2", model="claude-haiku-4-5-20251001")],
    )
    conn, _ = run_ingest()
    by_session = rows(conn, "session")
    assert list(by_session) == ["parent"]
    assert by_session["parent"]["requests"] == 2
    assert by_session["parent"]["input_tokens"] == 110
    agents = [r[2] for r in _requests(conn)]
    assert sorted(a or "" for a in agents) == ["", "a1b2"]


def test_synthetic_model_is_not_usage(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", model="<synthetic>", inp=0, out=0), Logs.assistant(T0, session="s1", inp=1, out=1)])
    conn, stats = run_ingest()
    assert totals(conn)["requests"] == 1
    assert stats.counts["synthetic"] == 1


def test_logged_cost_usd_is_used(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", model="claude-3-5-sonnet-20241022", inp=100, out=100, cost_usd=0.123456)])
    conn, _ = run_ingest()
    assert conn.execute("SELECT cost_nusd, pricing_id, price_note FROM requests").fetchone() == (123_456_000, "log:costUSD", "logged")


def test_nested_usage_in_progress_lines_is_never_counted(logs: Logs) -> None:
    nested = Logs.assistant(T0, session="s1", inp=999, out=999, sidechain=True, agent="zz")
    write(logs.claude_file("s1"), [Logs.progress(T0, {"message": nested["message"], "type": "assistant"}), Logs.assistant(T0, session="s1", inp=1, out=2)])
    conn, _ = run_ingest()
    t = totals(conn)
    assert (t["requests"], t["input_tokens"]) == (1, 1)


def test_other_line_types_and_time_order(logs: Logs) -> None:
    lines = [
        {"type": "summary", "summary": "x", "leafUuid": "l"},
        {"type": "file-history-snapshot", "messageId": "m", "snapshot": {"usage": {"input_tokens": 5, "output_tokens": 5}}},
        {"type": "queue-operation", "operation": "enqueue", "timestamp": T0, "sessionId": "s1"},
        {"type": "system", "subtype": "compact_boundary", "timestamp": T0, "sessionId": "s1"},
        Logs.assistant("2026-02-12T15:00:00.000Z", session="s1", inp=1, out=1),
        Logs.assistant("2026-02-11T15:00:00.000Z", session="s1", inp=2, out=2),
    ]
    write(logs.claude_file("s1"), lines)
    conn, stats = run_ingest()
    by_day = rows(conn, "day")
    assert sorted(by_day) == ["2026-02-11", "2026-02-12"]
    assert (by_day["2026-02-11"]["input_tokens"], by_day["2026-02-12"]["input_tokens"]) == (2, 1)
    assert totals(conn)["requests"] == 2
    assert stats.bad_lines == 0


@pytest.mark.parametrize(
    ("model", "matched", "inp", "out"),
    [
        ("converse/jp.anthropic.claude-haiku-4-5-20251001-v1:0", "jp.anthropic.claude-haiku-4-5-20251001-v1:0", "1.1", "5.5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "3.3", "16.5"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "3", "15"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "3", "15"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929", "3", "15"),
        ("claude-opus-4-6-20990101", "claude-opus-4-6", "5", "25"),
        # No jp. entry for opus 4.6 in the table: another surcharged region's price applies.
        ("jp.anthropic.claude-opus-4-6-v1", "us.anthropic.claude-opus-4-6-v1", "5.5", "27.5"),
    ],
)
def test_model_names_from_proxies_and_clouds(logs: Logs, model: str, matched: str, inp: str, out: str) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", model=model, inp=1000, out=100)])
    conn, _ = run_ingest()
    cost, priced = conn.execute("SELECT cost_nusd, priced_model FROM requests").fetchone()
    assert priced == matched
    assert cost == nusd((1000, inp), (100, out))


def test_one_hour_cache_writes_use_the_one_hour_price(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", model="claude-opus-4-6", inp=10, out=10, cw=5000, cw1h=4000)])
    conn, _ = run_ingest()
    r = _requests(conn)[0]
    assert (r[6], r[7]) == (1000, 4000)
    assert r[9] == nusd((10, "5"), (10, "25"), (1000, "6.25"), (4000, "10"))


def test_long_context_prices_the_whole_request_above_200k(logs: Logs) -> None:
    at = Logs.assistant(T0, session="s1", inp=100_000, cr=100_000, out=1000)  # exactly 200k: standard
    above = Logs.assistant(T0, session="s1", inp=100_001, cr=100_000, cw=10, cw1h=4, out=1000)
    write(logs.claude_file("s1"), [at, above])
    conn, _ = run_ingest()
    costs = dict(conn.execute("SELECT input_tokens, cost_nusd FROM requests").fetchall())
    assert costs[100_000] == nusd((100_000, "3"), (100_000, "0.3"), (1000, "15"))
    assert costs[100_001] == nusd((100_001, "6"), (100_000, "0.6"), (1000, "22.5"), (6, "7.5"), (4, "12"))
    notes = dict(conn.execute("SELECT input_tokens, price_note FROM requests").fetchall())
    assert notes == {100_000: None, 100_001: "long_context"}


def test_fast_mode_multiplies_and_is_flagged_without_a_multiplier(logs: Logs) -> None:
    write(
        logs.claude_file("s1"),
        [
            Logs.assistant(T0, session="s1", model="claude-opus-4-8", inp=1000, out=100, speed="fast"),
            Logs.assistant(T0, session="s1", model="claude-sonnet-4-5-20250929", inp=1000, out=100, speed="fast"),
        ],
    )
    conn, _ = run_ingest()
    got = dict(conn.execute("SELECT model, cost_nusd FROM requests").fetchall())
    assert got["claude-opus-4-8"] == 2 * nusd((1000, "5"), (100, "25"))
    assert got["claude-sonnet-4-5-20250929"] is None
    t = totals(conn)
    assert t["unpriced_tokens"] == 1100
    assert t["unpriced_models"] == ["claude-sonnet-4-5-20250929 (fast)"]


def test_unknown_model_is_unpriced_never_zero(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", model="claude-future-9", inp=40, out=2), Logs.assistant(T0, session="s1", inp=1, out=1)])
    conn, _ = run_ingest()
    t = totals(conn)
    assert t["requests"] == 2
    assert t["input_tokens"] == 41
    assert t["unpriced_tokens"] == 42
    assert t["unpriced_models"] == ["claude-future-9"]
    assert conn.execute("SELECT cost_nusd, price_note FROM requests WHERE model = 'claude-future-9'").fetchone() == (None, "unknown_model")


@pytest.mark.parametrize("bad", ["12", 12.0, 1.5, -1, 10**9 + 1, True, None, float("nan"), [1], {"n": 1}])
def test_bad_token_fields_are_skipped_and_counted(logs: Logs, bad: object) -> None:
    import json

    line = Logs.assistant(T0, session="s1", inp=5, out=5)
    line["message"]["usage"]["input_tokens"] = "__BAD__"
    raw = json.dumps(line, separators=(",", ":")).replace('"__BAD__"', "NaN" if bad != bad else json.dumps(bad))
    write(logs.claude_file("s1"), [raw, Logs.assistant(T0, session="s1", inp=1, out=1)])
    conn, stats = run_ingest()
    assert totals(conn)["requests"] == 1
    assert stats.counts.get("bad_tokens", 0) + stats.counts.get("bad_json", 0) == 1


def test_max_token_value_is_accepted(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", inp=10**9, out=0)])
    conn, _ = run_ingest()
    assert totals(conn)["input_tokens"] == 10**9


def test_prompt_digest_is_a_chain_and_texts_are_not_stored(logs: Logs, hermetic) -> None:
    import hashlib

    prompts = ["Fix the flaky test in parser.py", "now add a changelog entry"]
    write(
        logs.claude_file("s1"),
        [
            Logs.user("2026-02-12T14:00:00.000Z", prompts[0], session="s1"),
            Logs.assistant("2026-02-12T14:00:05.000Z", session="s1"),
            Logs.tool_result("2026-02-12T14:00:06.000Z", session="s1", output="secret tool output"),
            Logs.user("2026-02-12T14:01:00.000Z", "<meta>", session="s1", isMeta=True),
            Logs.user("2026-02-12T14:02:00.000Z", prompts[1], session="s1"),
        ],
    )
    conn, _ = run_ingest()
    d = b""
    for p in prompts:
        d = hashlib.sha256(d + hashlib.sha256(p.encode()).digest()).digest()
    assert conn.execute("SELECT prompt_count, prompt_digest FROM sessions WHERE session_id = 's1'").fetchone() == (2, d.hex())
    conn.close()
    from aispend.paths import index_path

    raw = b"".join(p.read_bytes() for p in index_path().parent.glob("index.sqlite3*"))
    for p in prompts:
        assert p.encode() not in raw
    assert b"secret tool output" not in raw


def test_content_is_skipped_only_when_the_cut_is_provably_right(logs: Logs) -> None:
    """Assistant lines are parsed without message.content; tricky content never changes a count."""
    tricky = Logs.assistant(T0, session="s1", msg_id="msg_t", inp=7, out=3)
    # A tool input holding the very keys the cut looks for, and no stop_reason after content.
    tricky["message"]["content"] = [{"type": "tool_use", "id": "t", "name": "X", "input": {"a": [1], "stop_reason": "x", "content": [2]}}]
    del tricky["message"]["stop_reason"]
    plain = Logs.assistant(T0, session="s1", msg_id="msg_p", inp=11, out=5, text='he said "],\\"stop_reason\\":" twice')
    write(logs.claude_file("s1"), [tricky, plain])
    conn, stats = run_ingest()
    t = totals(conn)
    assert (t["requests"], t["input_tokens"], t["output_tokens"]) == (2, 18, 8)
    assert stats.bad_lines == 0


def test_fast_and_general_paths_agree_on_real_logs(shared_fixtures) -> None:
    """Every real usage line read through the typed fast path gives the very request the
    general (whole-object) path gives."""
    import orjson

    from aispend.sources.base import ParseResult
    from aispend.sources.claude import _decode_entry, _File, _usage_entry, _usage_line
    from aispend.sources.reader import UNUSUAL

    checked = 0
    for f in sorted((shared_fixtures / "claude").rglob("*.jsonl")):
        for n, line in enumerate(f.read_bytes().splitlines()):
            try:
                entry = _decode_entry(line)
            except UNUSUAL:
                continue
            fast, general = _File("fb", ParseResult()), _File("fb", ParseResult())
            assert _usage_entry(entry, n, fast) == _usage_line(orjson.loads(line), n, general)
            assert fast.best == general.best and fast.first == general.first
            assert fast.result.counts == general.result.counts
            checked += len(fast.best)
    assert checked > 400


def test_line_glued_right_after_content_start_is_recovered_not_spliced(logs: Logs) -> None:
    """Found by hypothesis: a head cut right after `"content":[` followed by a whole line must
    not be read as one message (the head's model with the tail's usage)."""
    import json

    head = json.dumps(Logs.assistant(T0, session="s1", msg_id="msg_head", model="claude-sonnet-4-5-20250929"), separators=(",", ":"))
    head = head[: head.index('"content":[') + len('"content":[')]
    tail = json.dumps(Logs.assistant(T0, session="s1", msg_id="msg_tail", model="claude-opus-4-6", inp=0, cr=1000, out=0), separators=(",", ":"))
    write(logs.claude_file("s1"), [head + tail])
    conn, stats = run_ingest()
    assert conn.execute("SELECT key, model, cost_nusd FROM requests").fetchall() == [("claude:msg_tail:req_tail", "claude-opus-4-6", 500_000)]
    assert stats.counts["recovered_lines"] == 1
