"""The index: incremental, idempotent, transactional, safe with two processes, and never crashed by bad files."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aispend.index import ingest as ingest_mod
from tests.logbuilder import Logs, write
from tests.util import rows, run_ingest, totals

T0 = "2026-02-12T14:00:00.000Z"


def _ts(i: int) -> str:
    return f"2026-02-12T14:{i // 60 % 60:02d}:{i % 60:02d}.000Z"


def test_second_run_reads_nothing_and_changes_nothing(logs: Logs) -> None:
    write(logs.claude_file("s1"), [Logs.assistant(_ts(i), session="s1", inp=i, out=1) for i in range(20)])
    conn, first = run_ingest()
    before = totals(conn)
    conn2, second = run_ingest()
    assert first.files_read == 1 and first.bytes_read > 0
    assert (second.files_read, second.bytes_read) == (0, 0)
    assert totals(conn2) == before


def test_append_reads_only_new_bytes_and_adds_exactly_the_new_usage(logs: Logs) -> None:
    path = write(logs.claude_file("s1"), [Logs.assistant(_ts(i), session="s1", inp=10, out=1) for i in range(5)])
    size = path.stat().st_size
    conn, _ = run_ingest()
    write(path, [Logs.assistant(_ts(100 + i), session="s1", inp=100, out=2) for i in range(3)])
    conn, stats = run_ingest()
    assert stats.bytes_read == path.stat().st_size - size
    t = totals(conn)
    assert (t["requests"], t["input_tokens"], t["output_tokens"]) == (8, 350, 11)


def test_incomplete_last_line_waits_until_complete(logs: Logs) -> None:
    import json

    line = json.dumps(Logs.assistant(T0, session="s1", inp=77, out=7), separators=(",", ":"))
    path = logs.claude_file("s1")
    write(path, [Logs.assistant(T0, session="s1", inp=1, out=1)])
    with open(path, "a") as fh:
        fh.write(line[:40])
    conn, _ = run_ingest()
    assert totals(conn)["input_tokens"] == 1
    with open(path, "a") as fh:
        fh.write(line[40:] + "\n")
    conn, _ = run_ingest()
    assert totals(conn)["input_tokens"] == 78
    conn, _ = run_ingest()
    assert totals(conn)["requests"] == 2


def test_shrunk_or_replaced_file_is_read_again(logs: Logs) -> None:
    a = Logs.assistant(T0, session="s1", msg_id="msg_a", inp=10, out=1)
    b = Logs.assistant(T0, session="s1", msg_id="msg_b", inp=20, out=1)
    c = Logs.assistant(T0, session="s1", msg_id="msg_c", inp=40, out=1)
    path = write(logs.claude_file("s1"), [a, b])
    conn, _ = run_ingest()
    assert totals(conn)["input_tokens"] == 30
    # Rewritten shorter with different content: b is gone, c is new.
    tmp = path.with_suffix(".tmp")
    write(tmp, [a, c], mode="w")
    os.replace(tmp, path)
    conn, stats = run_ingest()
    assert stats.reread_tools == ["claude"]
    assert totals(conn)["input_tokens"] == 50


def test_rewritten_file_with_same_size_and_inode_is_detected(logs: Logs) -> None:
    path = write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", msg_id="msg_1", inp=11, out=1)])
    conn, _ = run_ingest()
    data = path.read_bytes().replace(b"msg_1", b"msg_2")
    with open(path, "r+b") as fh:  # same inode, same size, other bytes
        fh.write(data)
    os.utime(path, ns=(1, 1))
    write(path, [Logs.assistant(T0, session="s1", msg_id="msg_3", inp=5, out=1)])
    conn, stats = run_ingest()
    keys = sorted(k for (k,) in conn.execute("SELECT key FROM requests"))
    assert [k.split(":")[1] for k in keys] == ["msg_2", "msg_3"]
    assert stats.reread_tools == ["claude"]


def test_duplicate_in_a_replaced_file_falls_back_to_the_other_copy(logs: Logs) -> None:
    big = Logs.assistant(T0, session="s1", msg_id="msg_d", req_id="req_d", inp=10, out=500)
    small = dict(big, message=dict(big["message"], usage=dict(big["message"]["usage"], output_tokens=3)))
    keep = write(logs.claude_file("s1"), [small])
    gone = write(logs.claude_file("s2"), [big])
    conn, _ = run_ingest()
    assert totals(conn)["output_tokens"] == 500
    write(gone, [Logs.assistant(T0, session="s2", msg_id="msg_other", inp=1, out=1)], mode="w")
    conn, _ = run_ingest()
    by = {k: v for k, v in conn.execute("SELECT key, output_tokens FROM requests")}
    assert by == {"claude:msg_d:req_d": 3, "claude:msg_other:req_other": 1}
    assert keep.exists()


def test_rows_of_deleted_logs_are_kept(logs: Logs) -> None:
    path = write(logs.claude_file("s1"), [Logs.assistant(T0, session="s1", inp=9, out=1)])
    conn, _ = run_ingest()
    path.unlink()
    conn, _ = run_ingest()
    assert totals(conn)["input_tokens"] == 9


def test_bad_files_are_skipped_and_counted(logs: Logs, hermetic: Path) -> None:
    import json

    d = logs.claude_file("x").parent
    glued_tail = json.dumps(Logs.assistant(T0, session="g", inp=5, out=5), separators=(",", ":")).encode()
    write(
        d / "garbage.jsonl",
        [
            b'\x00\xff "usage" garbage',  # not an object
            b'[{"usage":{"input_tokens":1}}]',  # valid JSON, not an object
            b'{"type":"assistant","message":{"usage":{"input_tok',  # truncated: bad_json
            b'{"type":"assistant","mess' + glued_tail,  # a writer died mid-line: the tail is recovered
            b"plain text garbage",  # not an object
            b"{}",
        ],
    )
    write(d / "empty.jsonl", [], mode="w")
    (d / "dangling.jsonl").symlink_to(d / "does-not-exist.jsonl")
    (d / "loop").symlink_to(d)  # a folder symlink loop
    write(d / "ok.jsonl", [Logs.assistant(T0, session="ok", inp=3, out=3)])
    conn, stats = run_ingest()
    assert rows(conn, "session") .keys() == {"g", "ok"}
    assert totals(conn)["input_tokens"] == 8
    assert (stats.counts["bad_json"], stats.counts["not_object"], stats.counts["recovered_lines"]) == (2, 3, 1)
    assert any("dangling.jsonl" in u for u in stats.unreadable)


def test_too_long_line_is_skipped_and_reported(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    from aispend.sources import reader

    monkeypatch.setattr(reader, "MAX_LINE", 2000)
    huge = Logs.assistant(T0, session="s1", inp=50, out=5, text="z" * 5000)
    write(logs.claude_file("s1"), [huge, Logs.assistant(T0, session="s1", inp=1, out=1)])
    conn, stats = run_ingest()
    assert stats.counts["too_long"] == 1
    assert totals(conn)["input_tokens"] == 1


def test_parallel_ingest_equals_serial(logs: Logs, monkeypatch: pytest.MonkeyPatch, hermetic: Path) -> None:
    for s in range(6):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=i + s, out=2, cr=i) for i in range(50)])
    write(logs.codex_file("2026-02-23T12-00-00-aaaa"), [Logs.codex_meta(T0, "cx1"), Logs.codex_turn(T0), Logs.codex_tokens(T0, (100, 10, 5, 1))])
    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    conn, stats = run_ingest(workers=2)
    parallel = rows(conn, "session")
    conn.close()
    # The objects frozen for the workers' sake are handed back to the garbage collector.
    assert gc.get_freeze_count() == 0
    os.environ["AISPEND_HOME"] = str(hermetic.parent / "serial-data")
    conn, _ = run_ingest(workers=1)
    assert rows(conn, "session") == parallel
    assert len(parallel) == 7 and stats.files_read == 7


def test_parallel_workers_leave_the_wal_copied_into_the_index(logs: Logs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each worker checkpoints after its last write, so closing the index copies next to
    nothing: the index file alone (without its WAL) already holds every request."""
    import shutil
    import sqlite3

    from aispend.paths import index_path

    for s in range(6):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=1, out=1) for i in range(50)])
    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    conn, stats = run_ingest(workers=2)
    assert stats.requests_after == 300
    shutil.copy(index_path(), tmp_path / "alone.sqlite3")  # the open index's file, not its WAL
    alone = sqlite3.connect(tmp_path / "alone.sqlite3")
    assert alone.execute("SELECT count(*), sum(input_tokens) FROM requests").fetchone() == (300, 300)
    conn.close()


def _corpus(logs: Logs, files: int = 12, lines: int = 400) -> None:
    rnd = random.Random(7)
    for s in range(files):
        out = []
        for i in range(lines):
            mid = f"msg_{s}_{i}"
            # streaming copies with growing output
            for o in (1, rnd.randint(2, 500)):
                out.append(Logs.assistant(_ts(i), session=f"s{s}", msg_id=mid, req_id=f"r{s}_{i}", inp=rnd.randint(1, 900), out=o, cr=rnd.randint(0, 10**5), text="t" * 2000))
        write(logs.claude_file(f"s{s}"), out)


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "aispend", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _cli_totals(env: dict[str, str]) -> dict:
    import json

    out = subprocess.run([sys.executable, "-m", "aispend", "usage", "--json", "--by", "session", "--no-ingest"], env=env, capture_output=True, check=True)
    d = json.loads(out.stdout)
    return {"totals": d["totals"], "rows": d["rows"]}


def test_kill_9_mid_ingest_loses_and_doubles_nothing(logs: Logs, hermetic: Path) -> None:
    _corpus(logs)
    env = dict(os.environ)
    killed = 0
    for delay in (0.15, 0.3, 0.45, 0.6):
        p = _cli(env, "ingest", "-q")
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
    p = _cli(env, "ingest", "-q")
    assert p.wait() == 0
    got = _cli_totals(env)
    clean = dict(env, AISPEND_HOME=str(hermetic.parent / "clean"))
    assert _cli(clean, "ingest", "-q").wait() == 0
    assert got == _cli_totals(clean)
    assert got["totals"]["requests"] == 12 * 400
    assert killed >= 1


def test_three_processes_ingesting_at_once_into_a_new_index(logs: Logs) -> None:
    """They race to create the index and switch it to WAL, then share it."""
    _corpus(logs, files=8, lines=200)
    env = dict(os.environ)
    procs = [_cli(env, "ingest", "-q") for _ in range(3)]
    results = [(p.wait(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [r[0] for r in results] == [0, 0, 0], results
    got = _cli_totals(env)
    assert got["totals"]["requests"] == 8 * 200
    p = _cli(env, "ingest", "-q")
    assert p.wait() == 0
    assert _cli_totals(env) == got


def test_usage_line_glued_to_a_cut_short_progress_line_is_recovered(logs: Logs) -> None:
    """A writer that died mid-line leaves a head whose type (progress) is never parsed;
    the usage entry appended after it on the same line still counts."""
    import json

    head = json.dumps(Logs.progress(T0, {"type": "assistant"}, session="s1"), separators=(",", ":"))[:90].encode()
    tail = json.dumps(Logs.assistant(T0, session="s1", inp=21, out=2), separators=(",", ":")).encode()
    cut = json.dumps(Logs.tool_result(T0, session="s1"), separators=(",", ":"))[:-30].encode()
    write(logs.claude_file("s1"), [head + tail, cut, Logs.assistant(T0, session="s1", inp=1, out=1)])
    conn, stats = run_ingest()
    assert totals(conn)["input_tokens"] == 22
    assert stats.counts["recovered_lines"] == 1
    assert stats.counts["bad_json"] == 2  # the glued line itself, and the cut-short tool result


def test_parallel_ingest_with_spawned_workers(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start method used off Linux: workers import everything afresh."""
    for s in range(3):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=1, out=1) for i in range(10)])
    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_mod, "_start_method", lambda: "spawn")
    conn, stats = run_ingest(workers=2)
    assert totals(conn)["requests"] == 30 and stats.files_read == 3


def test_a_full_batch_goes_on_parsing_while_another_process_writes(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose batch is full does not wait for a busy index: it keeps the batch (nothing
    counted, nothing written) and writes it at the next chance; a quarter past the size it waits."""
    import sqlite3

    from aispend import sources
    from aispend.index import db
    from aispend.index.plan import plan
    from aispend.pricing.table import load

    for s in range(3):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=1, out=1) for i in range(10)])
    conn = db.connect()
    stats = ingest_mod.IngestStats()
    tasks = plan(conn, sources.all_sources(), stats)
    assert len(tasks) == 3
    monkeypatch.setattr(ingest_mod, "MIN_BATCH_ROWS", 10)
    batch = ingest_mod._Batch(conn)
    other = sqlite3.connect(conn.execute("PRAGMA database_list").fetchone()[2], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the index
    batch.add(ingest_mod.parse_task(tasks[0], load()), stats)  # 11 rows >= 10 (< 12): a try, refused at once
    assert (len(batch.outcomes), stats.files_read) == (1, 0)
    # Its rows were staged all the same (that needs no lock on the index), and left memory.
    assert conn.execute("SELECT count(*) FROM temp.stage").fetchone()[0] == 10
    assert batch.outcomes[0].rows == []
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(db.BUSY_TIMEOUT_S * 1000)  # restored
    other.execute("COMMIT")
    batch.add(ingest_mod.parse_task(tasks[1], load()), stats)  # the index is free again: both written
    assert (len(batch.outcomes), stats.files_read) == (0, 2)
    assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 20
    assert conn.execute("SELECT count(*) FROM temp.stage").fetchone()[0] == 0
    batch.add(ingest_mod.parse_task(tasks[2], load()), stats)
    batch.flush(stats)
    assert stats.files_read == 3 and totals(conn)["requests"] == 30
    other.close()


def test_a_failing_worker_stops_the_ingest_cleanly_and_the_next_run_is_exact(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one worker's job: the ingest fails (no hang at the workers' final barrier), what
    was committed stays consistent, and the next run reads exactly what is missing."""
    for s in range(8):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=1, out=1) for i in range(40)])
    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    real = ingest_mod.parse_task

    def flaky(task, pricing=None):
        if task.path.endswith("s5.jsonl"):
            raise RuntimeError("a bug")
        return real(task, pricing)

    monkeypatch.setattr(ingest_mod, "parse_task", flaky)  # the forked workers inherit it
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug"):
        run_ingest(workers=2)
    assert time.monotonic() - started < 60
    monkeypatch.setattr(ingest_mod, "parse_task", real)
    conn, stats = run_ingest(workers=2)
    t = totals(conn)
    assert (t["requests"], t["input_tokens"]) == (320, 320)


def test_a_worker_that_cannot_open_the_index_at_the_end_does_not_hang_the_others(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    """One job for two workers: the one that had no job opens the index only for its final
    write. When that fails, it still reaches the workers' final barrier, so the ingest fails at
    once instead of the other worker waiting out the barrier's timeout."""
    for s in range(2):
        write(logs.claude_file(f"s{s}"), [Logs.assistant(_ts(i), session=f"s{s}", inp=1, out=1) for i in range(5)])
    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_mod, "BARRIER_TIMEOUT_S", 30)
    real = ingest_mod._worker_batch

    def failing(db_path):
        if ingest_mod._WORKER_BATCH is None and sys._getframe(1).f_code.co_name == "_worker_flush":
            raise RuntimeError("cannot open the index")
        return real(db_path)

    monkeypatch.setattr(ingest_mod, "_worker_batch", failing)  # the forked workers inherit it
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot open the index"):
        run_ingest(workers=2)
    assert time.monotonic() - started < 20


def test_a_repeated_snapshot_glued_to_a_cut_short_line_still_counts_the_broken_head(logs: Logs) -> None:
    """Found by hypothesis: a snapshot line that repeats the previous one byte for byte after
    its type, but sits glued behind a cut-short head, is not skipped as a mere repeat."""
    import json

    snap = Logs.codex_tokens("2026-02-23T12:00:01.000Z", (100, 10, 5, 1))
    again = json.dumps(Logs.codex_tokens("2026-02-23T12:00:02.000Z", (100, 10, 5, 1)), separators=(",", ":")).encode()
    for head in (b"{", b'{"timestamp":"2026-02-23T12:00:0'):
        path = logs.codex_file(f"2026-02-23T12-00-00-{len(head):04d}")
        write(path, [Logs.codex_meta(T0, f"cx-{len(head)}"), Logs.codex_turn(T0), snap, head + again])
    conn, stats = run_ingest()
    assert stats.counts["bad_json"] == 2 and stats.counts["recovered_lines"] == 2
    assert stats.counts["repeated_snapshots"] == 2  # the recovered tails, judged as the repeats they are
    assert totals(conn)["requests"] == 2
