"""Codex rollout counting rules, one test per rule (see aispend/sources/codex.py).

Token tuples are (input incl. cached, cached, output incl. reasoning, reasoning),
as in :meth:`tests.logbuilder.Logs.codex_tokens`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aispend.sources.reader import LineReader
from aispend.reports.timerange import day_range
from aispend.reports.usage import Totals, usage_report
from aispend.sources.codex import CodexSource
from tests.logbuilder import Logs, write
from tests.util import nusd, run_ingest

M53 = "gpt-5.3-codex"
M55 = "gpt-5.5"
PRICES = {M53: ("1.75", "0.175", "14"), M55: ("5", "0.5", "30")}

P = "019c0000-0000-7000-8000-00000000000a"  # a parent session
F = "019c0000-0000-7000-8000-00000000000b"  # its fork
F2 = "019c0000-0000-7000-8000-00000000000c"  # a fork of the fork
S = "019c0000-0000-7000-8000-00000000000d"  # an unrelated session

Tok = tuple[int, int, int, int]


# -- helpers -------------------------------------------------------------


def at(base: str, ms: int = 0) -> str:
    """``base`` (ISO, UTC) plus ``ms`` milliseconds, in Codex's timestamp format."""
    dt = datetime.fromisoformat(base.replace("Z", "+00:00")) + timedelta(milliseconds=ms)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def add(*ts: Tok) -> Tok:
    return tuple(sum(x) for x in zip(*ts))  # type: ignore[return-value]


def expect(*lasts: Tok) -> dict[str, int]:
    """Report fields for the sum of the given ``last_token_usage`` tuples."""
    return {
        "requests": len(lasts),
        "input_tokens": sum(t[0] - t[1] for t in lasts),
        "cache_read_tokens": sum(t[1] for t in lasts),
        "output_tokens": sum(t[2] for t in lasts),
        "reasoning_tokens": sum(t[3] for t in lasts),
        "total_tokens": sum(t[0] + t[2] for t in lasts),
    }


def cost(model: str, *lasts: Tok) -> int:
    inp, cr, out = PRICES[model]
    return sum(nusd((t[0] - t[1], inp), (t[1], cr), (t[2], out)) for t in lasts)


def fields(t: Totals) -> dict[str, int]:
    return {k: getattr(t, k) for k in ("requests", "input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens", "total_tokens")}


def report(conn: sqlite3.Connection, by: str = "session", tz: str = "UTC", since: str | None = None, until: str | None = None):  # type: ignore[no-untyped-def]
    return usage_report(conn, day_range(since, until, tz), by, "codex")


def by_key(conn: sqlite3.Connection, by: str = "session", tz: str = "UTC") -> dict[str, dict[str, int]]:
    return {r.key: fields(r.totals) for r in report(conn, by, tz).rows}


def grand(conn: sqlite3.Connection) -> Totals:
    return report(conn).totals


def restamp(lines: list[dict[str, Any]], start: str, step_ms: int = 1) -> list[dict[str, Any]]:
    """A copy of ``lines`` as Codex persists it into a fork: verbatim but re-stamped."""
    out = []
    for i, line in enumerate(lines):
        c = copy.deepcopy(line)
        c["timestamp"] = at(start, i * step_ms)
        out.append(c)
    return out


def parse_file(path: Path, state: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        return CodexSource().parse(path, LineReader(fh, 0, path.stat().st_size), state)


def session(logs: Logs, start: str, sid: str, day: str | None = None) -> Path:
    stamp = datetime.fromisoformat(start.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H-%M-%S")
    return logs.codex_file(f"{stamp}-{sid}", day=day or start[:10].replace("-", "/"))


# -- a parent session P and its history ----------------------------------

P_T0 = "2026-02-23T10:00:00.000Z"
P1: Tok = (1000, 200, 100, 40)
P2: Tok = (2000, 1000, 150, 50)
P3: Tok = (4000, 3000, 300, 100)
P_PROMPTS = ("parent prompt one", "parent prompt two", "parent prompt three")


def p_history(upto: int = 3) -> list[dict[str, Any]]:
    """P's rollout lines through its ``upto``-th turn (each snapshot written twice, as 0.104 does)."""
    lines: list[dict[str, Any]] = [Logs.codex_meta(P_T0, P)]
    total: Tok = (0, 0, 0, 0)
    for i, last in enumerate((P1, P2, P3)[:upto]):
        t = at(P_T0, 60_000 * i + 1000)
        total = add(total, last)
        lines += [
            Logs.codex_turn(t, M53),
            Logs.codex_user(at(t, 100), P_PROMPTS[i]),
            Logs.codex_item(at(t, 200)),
            Logs.codex_tokens(at(t, 5000), total, last),
            Logs.codex_tokens(at(t, 5001), total, last),
        ]
    return lines


P_TOTAL: Tok = add(P1, P2, P3)


def snapshot_times(lines: list[dict[str, Any]]) -> list[int]:
    seen: set[str] = set()
    out = []
    for line in lines:
        info = line["payload"].get("info") if line["type"] == "event_msg" else None
        if info:
            k = repr(info["total_token_usage"])
            if k not in seen:
                seen.add(k)
                out.append(ms(line["timestamp"]))
    return out


def fork_lines(
    sid: str, parent: str, fork_ts: str, copied: list[dict[str, Any]], base: Tok, own: list[Tok], prompts: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """A fork's rollout: own meta, re-stamped copy of ``copied``, then own turns seconds later.

    Own totals continue from ``base`` (the last total of the copy).
    """
    lines = [Logs.codex_meta(fork_ts, sid, forked_from=parent)] + restamp(copied, at(fork_ts, 1))
    total = base
    for i, last in enumerate(own):
        t = at(fork_ts, 30_000 + 60_000 * i)
        total = add(total, last)
        if i < len(prompts):
            lines.append(Logs.codex_user(t, prompts[i]))
        lines += [Logs.codex_turn(at(t, 10), M53), Logs.codex_tokens(at(t, 4000), total, last), Logs.codex_tokens(at(t, 4001), total, last)]
    return lines


# -- 1. snapshots ----------------------------------------------------------


def test_null_info_ignored_repeats_once_last_usage_counted(logs: Logs) -> None:
    a: Tok = (1000, 200, 100, 40)
    b: Tok = (1500, 500, 120, 30)
    total_b: Tok = (3000, 900, 260, 80)  # total_b - a != b: only last_token_usage counts
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [
            Logs.codex_meta(t, S),
            Logs.codex_turn(at(t, 100), M53),
            Logs.codex_tokens(at(t, 200), None),
            Logs.codex_tokens(at(t, 5000), a, a),
            Logs.codex_tokens(at(t, 5001), a, a),  # Codex 0.104 writes each snapshot twice
            Logs.codex_tokens(at(t, 6000), None),
            Logs.codex_tokens(at(t, 9000), total_b, b),
            Logs.codex_tokens(at(t, 9001), total_b, b),
        ],
    )
    conn, stats = run_ingest()
    assert fields(grand(conn)) == expect(a, b)
    assert grand(conn).cost_nusd == cost(M53, a, b)
    assert stats.counts["repeated_snapshots"] == 2
    assert stats.bad_lines == 0
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 2


def test_identical_snapshot_after_a_different_one_is_a_new_request(logs: Logs) -> None:
    """Only a repeat of the *previous* snapshot is dropped; equal last usage with a new total counts."""
    a: Tok = (1000, 0, 10, 0)
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), a, a), Logs.codex_tokens(at(t, 2000), add(a, a), a)],
    )
    conn, _ = run_ingest()
    assert fields(grand(conn)) == expect(a, a)


# -- 2. resume restarts totals --------------------------------------------


def test_resume_restarting_totals_at_zero_still_counts(logs: Logs) -> None:
    a: Tok = (1000, 0, 100, 0)
    b: Tok = (1500, 1000, 80, 20)
    c: Tok = (1200, 1000, 50, 10)
    d: Tok = (800, 600, 40, 0)
    t = "2026-02-23T10:00:00.000Z"
    r = "2026-02-23T15:00:00.000Z"  # `codex resume` hours later, same file
    path = session(logs, t, S)
    write(path, [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), a, a), Logs.codex_tokens(at(t, 2000), add(a, b), b)])
    conn, _ = run_ingest()
    assert fields(grand(conn)) == expect(a, b)
    write(
        path,
        [
            Logs.codex_turn(r, M53),
            Logs.codex_tokens(at(r, 1000), c, c),  # totals restart: smaller than before
            Logs.codex_tokens(at(r, 1001), c, c),
            Logs.codex_tokens(at(r, 2000), add(c, d), d),
        ],
    )
    run_ingest()
    assert fields(grand(conn)) == expect(a, b, c, d)
    assert grand(conn).cost_nusd == cost(M53, a, b, c, d)


def test_resume_restart_in_one_read_also_counts(logs: Logs) -> None:
    a: Tok = (5000, 1000, 300, 100)
    c: Tok = (700, 0, 30, 0)
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [
            Logs.codex_meta(t, S),
            Logs.codex_turn(t, M53),
            Logs.codex_tokens(at(t, 1000), a, a),
            Logs.codex_meta(at(t, 3_600_000), S),  # a resumed run may repeat its own meta
            Logs.codex_turn(at(t, 3_600_000), M53),
            Logs.codex_tokens(at(t, 3_601_000), c, c),
        ],
    )
    conn, _ = run_ingest()
    assert by_key(conn) == {S: expect(a, c)}


# -- 3. what the fields mean; exact cost -----------------------------------


@pytest.mark.parametrize(("model", "expected_nusd"), [(M53, 169_008_000), (M55, 403_980_000)])
def test_cached_is_part_of_input_reasoning_part_of_output_exact_cost(logs: Logs, model: str, expected_nusd: int) -> None:
    u: Tok = (123_456, 100_000, 7_890, 1_234)
    t = "2026-02-23T10:00:00.000Z"
    write(session(logs, t, S), [Logs.codex_meta(t, S), Logs.codex_turn(t, model), Logs.codex_tokens(at(t, 1000), u, u)])
    conn, _ = run_ingest()
    row = conn.execute(
        "SELECT model, input_tokens, cache_read_tokens, cache_write_5m, cache_write_1h, output_tokens, reasoning_tokens, total_tokens, cost_nusd FROM requests"
    ).fetchone()
    # stored input is net of cache; output includes reasoning; total is gross input + output
    assert row == (model, 23_456, 100_000, 0, 0, 7_890, 1_234, 131_346, expected_nusd)
    # (input - cached) * in + cached * cache_read + output * out
    assert expected_nusd == cost(model, u)
    tot = grand(conn)
    assert (tot.input_tokens, tot.cache_read_tokens, tot.output_tokens, tot.reasoning_tokens, tot.total_tokens) == (23_456, 100_000, 7_890, 1_234, 131_346)
    assert tot.cost_nusd == expected_nusd
    assert tot.cache_creation_tokens == 0
    assert tot.unpriced_tokens == 0 and tot.unpriced_models == set()


# -- 4. model from turn_context -------------------------------------------


def test_turn_context_sets_model_switch_and_unknown_before_first(logs: Logs) -> None:
    x: Tok = (400, 0, 20, 0)
    y: Tok = (1000, 600, 50, 10)
    z: Tok = (2000, 1500, 80, 30)
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [
            Logs.codex_meta(t, S),
            Logs.codex_tokens(at(t, 500), x, x),  # before any turn_context: unpriced, never guessed
            Logs.codex_turn(at(t, 1000), M53),
            Logs.codex_tokens(at(t, 2000), add(x, y), y),
            Logs.codex_turn(at(t, 3000), M55),
            Logs.codex_tokens(at(t, 4000), add(x, y, z), z),
        ],
    )
    conn, _ = run_ingest()
    models = conn.execute("SELECT model, cost_nusd FROM requests ORDER BY ts_ms").fetchall()
    assert models == [(None, None), (M53, cost(M53, y)), (M55, cost(M55, z))]
    tot = grand(conn)
    assert fields(tot) == expect(x, y, z)
    assert tot.cost_nusd == cost(M53, y) + cost(M55, z)
    assert tot.unpriced_tokens == 420
    assert tot.unpriced_models == {"(no model)"}
    assert by_key(conn, "model") == {"(no model)": expect(x), M53: expect(y), M55: expect(z)}


# -- 5. local file names, UTC timestamps -----------------------------------


def test_timestamps_are_utc_file_names_are_local(logs: Logs) -> None:
    # Tokyo local 2026-02-24 08:30 = 2026-02-23 23:30 UTC; Codex names the folder and file locally.
    t = "2026-02-23T23:30:00.000Z"
    u: Tok = (1000, 100, 50, 5)
    path = logs.codex_file(f"2026-02-24T08-30-00-{S}", day="2026/02/24")
    write(path, [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 5000), u, u)])
    conn, _ = run_ingest()
    assert by_key(conn, "day", "UTC") == {"2026-02-23": expect(u)}
    assert by_key(conn, "day", "Asia/Tokyo") == {"2026-02-24": expect(u)}
    assert report(conn, "day", "UTC", "2026-02-24", "2026-02-24").totals.requests == 0
    assert report(conn, "day", "Asia/Tokyo", "2026-02-24", "2026-02-24").totals.requests == 1
    assert report(conn, "session", "Asia/Tokyo").rows[0].extra["first"] == "2026-02-24T08:30:05+09:00"


# -- 6. forks --------------------------------------------------------------

FORK_T = "2026-02-25T09:00:00.000Z"  # two days after P, so misdated copies would show by day
FA: Tok = (500, 300, 70, 20)
FB: Tok = (800, 600, 90, 30)
F_PROMPTS = ("fork prompt one", "fork prompt two")


def _write_parent(logs: Logs) -> Path:
    return write(session(logs, P_T0, P), p_history())


def _write_fork(logs: Logs) -> Path:
    return write(session(logs, FORK_T, F), fork_lines(F, P, FORK_T, p_history(), P_TOTAL, [FA, FB], F_PROMPTS))


def _assert_fork_counted_once(conn: sqlite3.Connection) -> None:
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(FA, FB)}
    assert fields(grand(conn)) == expect(P1, P2, P3, FA, FB)
    assert grand(conn).cost_nusd == cost(M53, P1, P2, P3, FA, FB)
    # P's requests keep P's own timestamps, not the fork's
    p_ts = [r[0] for r in conn.execute("SELECT ts_ms FROM requests WHERE session_id = ? ORDER BY ts_ms", (P,))]
    assert p_ts == snapshot_times(p_history())
    assert by_key(conn, "day") == {"2026-02-23": expect(P1, P2, P3), "2026-02-25": expect(FA, FB)}
    assert conn.execute("SELECT parent_session FROM sessions WHERE session_id = ?", (F,)).fetchone() == (P,)
    # prompts: the copied ones are P's, counted once
    counts = dict(conn.execute("SELECT session_id, prompt_count FROM sessions WHERE prompt_count > 0"))
    assert counts == {P: 3, F: 2}


def test_fork_with_parent_present_counts_each_once(logs: Logs) -> None:
    _write_parent(logs)
    _write_fork(logs)
    conn, stats = run_ingest()
    _assert_fork_counted_once(conn)
    assert stats.bad_lines == 0


def test_fork_ingested_before_its_parent(logs: Logs) -> None:
    _write_fork(logs)
    conn, _ = run_ingest()
    # alone, the fork's copy is the only record of P's usage: counted once, as P's, at the fork time
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(FA, FB)}
    assert by_key(conn, "day") == {"2026-02-25": expect(P1, P2, P3, FA, FB)}
    _write_parent(logs)
    run_ingest()
    _assert_fork_counted_once(conn)


def test_fork_read_across_two_ingests(logs: Logs) -> None:
    """The copy burst may be cut by an ingest; parser state carries the lineage over."""
    _write_parent(logs)
    lines = fork_lines(F, P, FORK_T, p_history(), P_TOTAL, [FA, FB], F_PROMPTS)
    path = session(logs, FORK_T, F)
    write(path, lines[:6])
    conn, _ = run_ingest()
    write(path, lines[6:])
    run_ingest()
    _assert_fork_counted_once(conn)


F2_T = "2026-02-26T09:00:00.000Z"
G: Tok = (900, 100, 60, 0)


def _fork_of_fork(logs: Logs) -> dict[str, list[dict[str, Any]]]:
    f1 = fork_lines(F, P, FORK_T, p_history(), P_TOTAL, [FA], F_PROMPTS[:1])
    # F2 copies F1's whole rollout: metas F2, F1, P; P's lines; F1's own lines; then its own turn
    f2 = fork_lines(F2, F, F2_T, f1, add(P_TOTAL, FA), [G], ("grandchild prompt",))
    metas = [line["payload"]["id"] for line in f2 if line["type"] == "session_meta"]
    assert metas == [F2, F, P]
    return {P: p_history(), F: f1, F2: f2}


@pytest.mark.parametrize("order", ["together", "grandchild_first", "grandchild_then_parent_then_child"])
def test_fork_of_a_fork_counts_each_session_once(logs: Logs, order: str) -> None:
    files = _fork_of_fork(logs)
    starts = {P: P_T0, F: FORK_T, F2: F2_T}
    plan = {"together": [[P, F, F2]], "grandchild_first": [[F2], [P, F]], "grandchild_then_parent_then_child": [[F2], [P], [F]]}[order]
    conn = None
    for step in plan:
        for sid in step:
            write(session(logs, starts[sid], sid), files[sid])
        conn, _ = run_ingest()
        assert fields(grand(conn)) == expect(P1, P2, P3, FA, G)  # never double counted, at any step
    assert conn is not None
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(FA), F2: expect(G)}
    assert by_key(conn, "day") == {"2026-02-23": expect(P1, P2, P3), "2026-02-25": expect(FA), "2026-02-26": expect(G)}


def test_fork_of_a_fork_alone_counts_the_lineage_once(logs: Logs) -> None:
    files = _fork_of_fork(logs)
    write(session(logs, F2_T, F2), files[F2])
    conn, _ = run_ingest()
    assert fields(grand(conn)) == expect(P1, P2, P3, FA, G)
    assert by_key(conn)[F2] == expect(G)


def test_fork_of_a_fork_prompts_counted_once(logs: Logs) -> None:
    files = _fork_of_fork(logs)
    for sid, start in ((P, P_T0), (F, FORK_T), (F2, F2_T)):
        write(session(logs, start, sid), files[sid])
    conn, _ = run_ingest()
    counts = dict(conn.execute("SELECT session_id, prompt_count FROM sessions WHERE prompt_count > 0"))
    assert counts == {P: 3, F: 1, F2: 1}


def test_fork_from_an_earlier_message_is_not_double_counted(logs: Logs) -> None:
    _write_parent(logs)
    prefix = p_history(upto=2)  # forked before P's third message
    base = add(P1, P2)
    own: Tok = (4100, 3000, 310, 100)  # a different answer to the third message than P's P3
    write(session(logs, FORK_T, F), fork_lines(F, P, FORK_T, prefix, base, [own, FB], F_PROMPTS))
    conn, _ = run_ingest()
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(own, FB)}
    assert fields(grand(conn)) == expect(P1, P2, P3, own, FB)
    counts = dict(conn.execute("SELECT session_id, prompt_count FROM sessions WHERE prompt_count > 0"))
    assert counts == {P: 3, F: 2}


def test_empty_fork_adds_nothing(logs: Logs) -> None:
    _write_parent(logs)
    write(session(logs, FORK_T, F), fork_lines(F, P, FORK_T, p_history(), P_TOTAL, []))
    conn, _ = run_ingest()
    assert by_key(conn) == {P: expect(P1, P2, P3)}
    p_ts = [r[0] for r in conn.execute("SELECT ts_ms FROM requests ORDER BY ts_ms")]
    assert p_ts == snapshot_times(p_history())
    assert conn.execute("SELECT parent_session FROM sessions WHERE session_id = ?", (F,)).fetchone() == (P,)


def test_fork_without_its_parent_file_counts_the_copy_once(logs: Logs) -> None:
    _write_fork(logs)
    conn, _ = run_ingest()
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(FA, FB)}
    assert grand(conn).cost_nusd == cost(M53, P1, P2, P3, FA, FB)
    # the same file read again (e.g. a second ingest) changes nothing
    _, stats = run_ingest()
    assert stats.files_read == 0
    assert by_key(conn) == {P: expect(P1, P2, P3), F: expect(FA, FB)}


def test_fork_parse_attributes_copy_to_parent(logs: Logs) -> None:
    path = _write_fork(logs)
    res = parse_file(path)
    sessions = [(r.session_id, r.input_tokens + r.cache_read_tokens) for r in res.requests]
    assert sessions == [(P, P1[0]), (P, P2[0]), (P, P3[0]), (F, FA[0]), (F, FB[0])]
    assert [s.session_id for s in res.sessions] == [F]
    assert res.sessions[0].parent_session == P
    assert res.state["burst"] is False and res.state["seg"] == F


def test_spawned_subagent_links_to_its_parent_without_a_copy(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    u: Tok = (1000, 100, 10, 0)
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": P, "depth": 1}}}
    write(session(logs, t, S), [Logs.codex_meta(t, S, source=spawn), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 100), u, u)])
    conn, _ = run_ingest()
    assert by_key(conn) == {S: expect(u)}
    assert conn.execute("SELECT parent_session FROM sessions WHERE session_id = ?", (S,)).fetchone() == (P,)


def test_file_without_session_meta_is_named_after_the_file(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    u: Tok = (1000, 100, 10, 0)
    write(session(logs, t, S), [Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 100), u, u)])
    conn, _ = run_ingest()
    assert by_key(conn) == {S: expect(u)}


# -- 7. where the files are ------------------------------------------------


def test_archived_sessions_found_and_other_names_ignored(logs: Logs, hermetic: Path) -> None:
    u: Tok = (1000, 0, 10, 0)
    v: Tok = (2000, 0, 20, 0)
    t = "2026-02-20T10:00:00.000Z"

    def one(sid: str, tok: Tok) -> list[dict[str, Any]]:
        return [Logs.codex_meta(t, sid), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), tok, tok)]

    write(logs.codex_file(f"2026-02-20T10-00-00-{P}", archived=True), one(P, u))
    write(session(logs, t, S), one(S, v))
    codex = hermetic / ".codex"
    ignored = [
        codex / "sessions" / "2026" / "02" / "20" / "notes.jsonl",
        codex / "sessions" / "2026" / "02" / "20" / f"rollout-x-{F}.json",
        codex / "sessions" / "2026" / "02" / "20" / f"rollout-y-{F}.jsonl.bak",
        codex / "archived_sessions" / f"session-{F}.jsonl",
        codex / "history.jsonl",
        codex / f"rollout-top-{F}.jsonl",  # neither sessions/ nor archived_sessions/
    ]
    for p in ignored:
        write(p, one(F, (999, 0, 9, 0)))
    conn, stats = run_ingest()
    assert stats.files == 2
    assert by_key(conn) == {P: expect(u), S: expect(v)}


def test_same_rollout_in_sessions_and_archive_counts_once(logs: Logs) -> None:
    u: Tok = (1000, 0, 10, 0)
    t = "2026-02-20T10:00:00.000Z"
    lines = [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), u, u)]
    write(session(logs, t, S), lines)
    write(logs.codex_file(f"2026-02-20T10-00-00-{S}", archived=True), lines)
    conn, stats = run_ingest()
    assert stats.files == 2
    assert by_key(conn) == {S: expect(u)}


# -- 8. bad input ----------------------------------------------------------


_BAD = {"str": "100", "float": 100.0, "negative": -1, "too_big": 10**9 + 1, "true": True, "false": False}
_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


@pytest.mark.parametrize(
    ("bad", "where", "field"),
    [
        pytest.param(v, w, f, id=f"{k}-{w}-{f}")
        for k, v in _BAD.items()
        for w in ("total_token_usage", "last_token_usage")
        for f in _FIELDS
        # cumulative totals may pass the per-request cap (test_cumulative_totals_above_the_cap_still_count)
        if not (k == "too_big" and w == "total_token_usage")
    ],
)
def test_bad_token_values_are_skipped_and_counted(logs: Logs, bad: object, where: str, field: str) -> None:
    good: Tok = (1000, 100, 50, 5)
    nxt: Tok = (300, 0, 30, 0)
    t = "2026-02-23T10:00:00.000Z"
    broken = Logs.codex_tokens(at(t, 2000), add(good, (7, 0, 7, 0)), (7, 0, 7, 0))
    broken["payload"]["info"][where][field] = bad
    write(
        session(logs, t, S),
        [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), good, good), broken, Logs.codex_tokens(at(t, 3000), add(good, nxt), nxt)],
    )
    conn, stats = run_ingest()
    assert stats.counts["bad_tokens"] == 1
    assert fields(grand(conn)) == expect(good, nxt)


def test_largest_valid_token_value_is_accepted(logs: Logs) -> None:
    u: Tok = (10**9, 10**9, 0, 0)  # last_token_usage.total_tokens (input + output) stays within the cap too
    v: Tok = (0, 0, 10**9, 10**9)
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), u, u), Logs.codex_tokens(at(t, 2000), add(u, v), v)],
    )
    conn, stats = run_ingest()
    assert "bad_tokens" not in stats.counts
    assert fields(grand(conn)) == expect(u, v)


def test_cumulative_totals_above_the_cap_still_count(logs: Logs) -> None:
    """total_token_usage sums a whole session (and a fork's ancestors): it may pass 10**9 in a long one."""
    base: Tok = (1_999_000_000, 1_900_000_000, 3_000_000, 1_000_000)
    u: Tok = (150_000, 140_000, 2_000, 500)
    t = "2026-02-23T10:00:00.000Z"
    write(
        session(logs, t, S),
        [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), add(base, u), u), Logs.codex_tokens(at(t, 2000), add(base, u, u), u)],
    )
    conn, stats = run_ingest()
    assert "bad_tokens" not in stats.counts
    assert fields(grand(conn)) == expect(u, u)


def test_info_of_wrong_shape_is_bad_tokens(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    u: Tok = (100, 0, 10, 0)
    not_dict = Logs.codex_tokens(at(t, 1000), u, u)
    not_dict["payload"]["info"] = [1, 2]
    no_output = Logs.codex_tokens(at(t, 1100), u, u)
    del no_output["payload"]["info"]["last_token_usage"]["output_tokens"]
    no_last = Logs.codex_tokens(at(t, 1200), u, u)
    del no_last["payload"]["info"]["last_token_usage"]
    write(session(logs, t, S), [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), not_dict, no_output, no_last, Logs.codex_tokens(at(t, 2000), u, u)])
    conn, stats = run_ingest()
    assert stats.counts["bad_tokens"] == 3
    assert fields(grand(conn)) == expect(u)


def test_garbage_and_truncated_lines_are_counted_and_skipped(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    a: Tok = (1000, 0, 10, 0)
    b: Tok = (2000, 500, 20, 5)
    tok_line = Logs.codex_tokens(at(t, 1000), a, a)
    truncated_tokens = json.dumps(Logs.codex_tokens(at(t, 1500), add(a, b), b), separators=(",", ":"))[:120]
    truncated_item = json.dumps(Logs.codex_item(at(t, 1600)), separators=(",", ":"))[:90]
    write(
        session(logs, t, S),
        [
            Logs.codex_meta(t, S),
            Logs.codex_turn(t, M53),
            b"\x00\xff\xfe\x80 binary garbage",
            tok_line,
            truncated_tokens,
            truncated_item,
            '[1, 2, "token_count"]',
            '"just a string"',
            "",
            Logs.codex_tokens(at(t, 2000), add(a, b), b),
        ],
    )
    conn, stats = run_ingest()
    assert fields(grand(conn)) == expect(a, b)
    assert stats.counts["bad_json"] == 2
    assert stats.counts["not_object"] == 3
    assert stats.bad_lines == 5


def test_incomplete_last_line_waits_for_its_end(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    a: Tok = (1000, 100, 10, 0)
    b: Tok = (2000, 500, 20, 5)
    path = session(logs, t, S)
    write(path, [Logs.codex_meta(t, S), Logs.codex_turn(t, M53), Logs.codex_tokens(at(t, 1000), a, a)])
    last = json.dumps(Logs.codex_tokens(at(t, 2000), add(a, b), b), separators=(",", ":")).encode()
    write(path, [last[:70]], newline=False)
    conn, stats = run_ingest()
    assert fields(grand(conn)) == expect(a)
    assert stats.bad_lines == 0
    write(path, [last[70:]])
    _, stats = run_ingest()
    assert fields(grand(conn)) == expect(a, b)
    assert stats.bad_lines == 0
    _, stats = run_ingest()
    assert stats.files_read == 0
    assert fields(grand(conn)) == expect(a, b)


# -- 9. incremental --------------------------------------------------------


def test_append_adds_only_new_usage_and_state_carries_over(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    a: Tok = (1000, 200, 100, 10)
    b: Tok = (3000, 1000, 200, 50)
    c: Tok = (500, 0, 40, 0)
    path = session(logs, t, S)
    write(path, [Logs.codex_meta(t, S), Logs.codex_turn(t, M55), Logs.codex_tokens(at(t, 1000), a, a)])
    conn, stats1 = run_ingest()
    assert fields(grand(conn)) == expect(a)
    size1 = path.stat().st_size
    # the duplicate of the first snapshot arrives after the first ingest; no turn_context follows
    write(path, [Logs.codex_tokens(at(t, 1001), a, a), Logs.codex_item(at(t, 1500)), Logs.codex_tokens(at(t, 3000), add(a, b), b)])
    _, stats2 = run_ingest()
    assert stats2.counts["repeated_snapshots"] == 1
    assert stats2.bytes_read == path.stat().st_size - size1
    assert stats2.requests_after - stats2.requests_before == 1
    assert fields(grand(conn)) == expect(a, b)
    assert conn.execute("SELECT model FROM requests ORDER BY ts_ms").fetchall() == [(M55,), (M55,)]
    assert grand(conn).cost_nusd == cost(M55, a, b)
    write(path, [Logs.codex_turn(at(t, 4000), M53), Logs.codex_tokens(at(t, 5000), add(a, b, c), c)])
    run_ingest()
    assert fields(grand(conn)) == expect(a, b, c)
    assert grand(conn).cost_nusd == cost(M55, a, b) + cost(M53, c)


def test_parser_state_round_trips_through_json(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    a: Tok = (1000, 200, 100, 10)
    path = session(logs, t, S)
    write(path, [Logs.codex_meta(t, S), Logs.codex_turn(t, M55), Logs.codex_tokens(at(t, 1000), a, a)])
    first = parse_file(path)
    state = json.loads(json.dumps(first.state))
    size = path.stat().st_size
    write(path, [Logs.codex_tokens(at(t, 1001), a, a), Logs.codex_tokens(at(t, 2000), add(a, a), a)])
    with open(path, "rb") as fh:
        second = CodexSource().parse(path, LineReader(fh, size, path.stat().st_size), state)
    assert second.counts["repeated_snapshots"] == 1
    assert [(r.session_id, r.model) for r in second.requests] == [(S, M55)]


# -- 10. prompts -----------------------------------------------------------


def test_prompts_hashed_never_stored_and_digest_chained(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    texts = ["SECRET-PROMPT-one: refactor the parser ✓", "SECRET-PROMPT-two: now the tests"]
    u: Tok = (1000, 0, 10, 0)
    write(
        session(logs, t, S),
        [
            Logs.codex_meta(t, S),
            Logs.codex_user(at(t, 100), texts[0]),
            Logs.codex_turn(at(t, 200), M53),
            Logs.codex_tokens(at(t, 1000), u, u),
            Logs.codex_user(at(t, 2000), "   "),  # blank: not a prompt
            Logs.codex_user(at(t, 3000), texts[1]),
        ],
    )
    conn, _ = run_ingest()
    hashes = [hashlib.sha256(x.encode()).hexdigest() for x in texts]
    assert [r[0] for r in conn.execute("SELECT sha256 FROM prompts WHERE session_id = ? ORDER BY ts_ms", (S,))] == hashes
    d = b""
    for x in texts:
        d = hashlib.sha256(d + hashlib.sha256(x.encode()).digest()).digest()
    assert conn.execute("SELECT prompt_count, prompt_digest FROM sessions WHERE session_id = ?", (S,)).fetchone() == (2, d.hex())
    conn.close()
    from aispend.paths import index_path

    raw = b"".join(p.read_bytes() for p in index_path().parent.glob(index_path().name + "*"))
    assert raw
    for x in texts:
        assert x.encode() not in raw
    assert b"SECRET-PROMPT" not in raw


def test_prompt_digest_updates_when_prompts_are_appended(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    path = session(logs, t, S)
    write(path, [Logs.codex_meta(t, S), Logs.codex_user(at(t, 100), "first")])
    conn, _ = run_ingest()
    write(path, [Logs.codex_user(at(t, 5000), "second")])
    run_ingest()
    d = b""
    for x in ("first", "second"):
        d = hashlib.sha256(d + hashlib.sha256(x.encode()).digest()).digest()
    assert conn.execute("SELECT prompt_count, prompt_digest FROM sessions WHERE session_id = ?", (S,)).fetchone() == (2, d.hex())


def test_requests_record_their_sessions_parent(logs: Logs) -> None:
    t = "2026-02-23T10:00:00.000Z"
    write(
        logs.codex_file("2026-02-23T11-00-00-child"),
        [
            Logs.codex_meta(t, "child", source={"subagent": {"thread_spawn": {"parent_thread_id": "boss", "depth": 1}}}),
            Logs.codex_turn(t),
            Logs.codex_tokens("2026-02-23T10:00:05.000Z", (100, 0, 10, 0)),
        ],
    )
    conn, _ = run_ingest()
    assert conn.execute("SELECT session_id, parent_session FROM requests").fetchall() == [("child", "boss")]
    assert conn.execute("SELECT parent_session FROM sessions WHERE session_id = 'child'").fetchone() == ("boss",)
