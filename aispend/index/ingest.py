"""Incremental, idempotent, order-independent ingest of agent logs into the index.

For every log file the index remembers its identity (device, inode), size,
mtime, a hash of its first bytes, the byte offset just past its last complete
line and the parser's context there. A run therefore reads only appended bytes.
A file that shrank or was replaced (other inode, other first bytes) is re-read
from the start; because duplicate copies of a response may live in other files,
its whole tool is then re-read (rare; rows of logs that were deleted since are
kept).

Every request is upserted by its de-duplication key and the copy with the
largest token total wins (ties: the earliest timestamp, then the smaller
session id), so the result does not depend on file order or on how often ingest
runs. Each batch of files is one transaction together with the new offsets: a
kill at any point loses nothing and counts nothing twice.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from aispend.index.db import is_busy, rollup_new, transaction
from aispend.index.plan import HEAD_BYTES, FileTask, plan
from aispend.paths import shown
from aispend.pricing.table import PricingTable, logged_cost_nusd
from aispend.sources.base import ParseResult, Request, Source
from aispend.sources.reader import ChunkReader

#: Below this many bytes to read, parsing in this process beats starting workers.
PARALLEL_MIN_BYTES = 16 << 20
BATCH_ROWS = 16_000
MIN_BATCH_ROWS = 4_000

_REQUEST_COLUMNS = (
    "key, tool, session_id, parent_session, agent_id, ts_ms, cwd, git_branch, model, "
    "input_tokens, cache_write_5m, cache_write_1h, cache_read_tokens, output_tokens, "
    "reasoning_tokens, total_tokens, speed, logged_cost_usd, cost_nusd, priced_model, "
    "pricing_id, price_note, file_id, line_offset"
)
#: Rows are first bound into an unindexed temporary table (SQLite keeps it in a temporary
#: file, not in this process's memory), then upserted by one statement in key order: about
#: a quarter less work than upserting row by row.
_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS stage ({_REQUEST_COLUMNS})"
_TO_STAGE = f"INSERT INTO temp.stage VALUES ({', '.join('?' * 24)})"
_UPSERT = (
    f"INSERT INTO requests ({_REQUEST_COLUMNS}) SELECT * FROM temp.stage WHERE true ORDER BY key "
    "ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(
        f"{c} = excluded.{c}" for c in _REQUEST_COLUMNS.replace(" ", "").split(",") if c != "key"
    )
    + " WHERE excluded.total_tokens > requests.total_tokens"
    " OR (excluded.total_tokens = requests.total_tokens AND excluded.ts_ms < requests.ts_ms)"
    " OR (excluded.total_tokens = requests.total_tokens AND excluded.ts_ms = requests.ts_ms"
    " AND excluded.session_id < requests.session_id)"
)


def bad_lines(counts: dict[str, int]) -> int:
    """How many of the counted lines were bad input (skipped), as opposed to merely not usage."""
    return sum(v for k, v in counts.items() if k.startswith("bad_") or k in ("not_object", "too_long"))


@dataclass
class FileOutcome:
    task: FileTask
    end_offset: int = 0
    head_len: int = 0
    head_sha: str | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    prompts: list[tuple[str, str, int, str]] = field(default_factory=list)
    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)
    state: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class IngestStats:
    files: int = 0
    files_read: int = 0
    bytes_read: int = 0
    requests_before: int = 0
    requests_after: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    reread_tools: list[str] = field(default_factory=list)
    deferred: int = 0  # files left for a later run by a deadline
    seconds: float = 0.0

    @property
    def bad_lines(self) -> int:
        return bad_lines(self.counts)

    def merge(self, other: "IngestStats") -> None:
        """Add a job's figures (files, bytes, counters, problems) to these."""
        self.files_read += other.files_read
        self.bytes_read += other.bytes_read
        self.add(other.counts)
        self.problems.extend(other.problems[: max(0, 200 - len(self.problems))])
        self.unreadable.extend(other.unreadable)
        self.deferred += other.deferred

    def add(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v


# -- worker side ---------------------------------------------------------

_WORKER_SOURCES: dict[str, Source] = {}
_WORKER_PRICING: PricingTable | None = None


def _source(tool: str) -> Source:
    src = _WORKER_SOURCES.get(tool)
    if src is None:
        from aispend import sources

        src = _WORKER_SOURCES[tool] = sources.get(tool)
    return src


def parse_task(task: FileTask, pricing: PricingTable | None = None) -> FileOutcome:
    """Read and parse the appended part of one file; price its requests."""
    pricing = pricing or _WORKER_PRICING
    assert pricing is not None
    out = FileOutcome(task=task, end_offset=task.start)
    try:
        with open(task.path, "rb") as fh:
            reader = ChunkReader(fh, task.start, task.end)
            result: ParseResult = _source(task.tool).parse_blocks(Path(task.path), reader, task.state)
            out.end_offset = reader.end_offset
            for off in reader.too_long:
                result.problem(off, "too_long")
            fh.seek(0)
            head = fh.read(min(HEAD_BYTES, out.end_offset))
    except OSError as e:
        out.error = e.strerror or str(e)
        return out
    out.head_len = len(head)
    out.head_sha = hashlib.sha256(head).hexdigest()
    out.counts = result.counts
    out.problems = result.problems
    out.state = result.state
    out.rows = [_row(r, pricing, task.file_id) for r in result.requests]
    out.prompts = [(p.key, p.session_id, p.ts_ms, p.sha256) for p in result.prompts]
    sessions: dict[str, list[Any]] = {}
    for s in result.sessions:
        _merge_session(sessions, s.session_id, task.tool, s.ts_ms, s.cwd, s.git_branch, s.parent_session)
    for r in result.requests:
        _merge_session(sessions, r.session_id, r.tool, r.ts_ms, r.cwd, r.git_branch, r.parent_session)
    for pr in result.prompts:
        _merge_session(sessions, pr.session_id, task.tool, pr.ts_ms, None, None, None)
    out.sessions = [tuple(v) for v in sessions.values()]
    return out


def _merge_session(acc: dict[str, list[Any]], sid: str, tool: str, ts: int | None, cwd: str | None, branch: str | None, parent: str | None) -> None:
    cur = acc.get(sid)
    if cur is None:
        acc[sid] = [sid, tool, parent, ts, cwd, branch]
        return
    if parent and not cur[2]:
        cur[2] = parent
    if ts is not None and (cur[3] is None or ts < cur[3]):
        cur[3] = ts
        cur[4] = cwd or cur[4]
        cur[5] = branch or cur[5]
    else:
        cur[4] = cur[4] or cwd
        cur[5] = cur[5] or branch


def _row(r: Request, pricing: PricingTable, file_id: int) -> tuple[Any, ...]:
    cost_nusd: int | None
    priced: str | None
    pid: str | None
    note: str | None
    if r.logged_cost_usd is not None and (nusd := logged_cost_nusd(r.logged_cost_usd)) is not None:
        cost_nusd, priced, pid, note = nusd, r.model, "log:costUSD", "logged"
    else:
        c = pricing.cost(
            r.model, r.input_tokens, r.output_tokens, r.cache_write_5m, r.cache_write_1h, r.cache_read_tokens, r.speed
        )
        cost_nusd, priced, note = c.nusd, c.priced_model, c.note
        pid = pricing.id if c.nusd is not None else None
    return (
        r.key, r.tool, r.session_id, r.parent_session, r.agent_id, r.ts_ms, r.cwd, r.git_branch, r.model,
        r.input_tokens, r.cache_write_5m, r.cache_write_1h, r.cache_read_tokens, r.output_tokens,
        r.reasoning_tokens, r.total_tokens, r.speed, r.logged_cost_usd, cost_nusd, priced, pid, note,
        file_id, r.offset,
    )


# -- main side -----------------------------------------------------------


_SESSION_UPSERT = (
    "INSERT INTO sessions (session_id, tool, parent_session, started_ms, cwd, git_branch) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(session_id) DO UPDATE SET "
    "parent_session = coalesce(sessions.parent_session, excluded.parent_session), "
    "cwd = CASE WHEN sessions.started_ms IS NULL OR excluded.started_ms < sessions.started_ms THEN coalesce(excluded.cwd, sessions.cwd) ELSE coalesce(sessions.cwd, excluded.cwd) END, "
    "git_branch = CASE WHEN sessions.started_ms IS NULL OR excluded.started_ms < sessions.started_ms THEN coalesce(excluded.git_branch, sessions.git_branch) ELSE coalesce(sessions.git_branch, excluded.git_branch) END, "
    "started_ms = min(coalesce(sessions.started_ms, excluded.started_ms), coalesce(excluded.started_ms, sessions.started_ms))"
)
_PROMPT_UPSERT = (
    "INSERT INTO prompts (key, session_id, ts_ms, sha256) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET session_id = excluded.session_id, ts_ms = excluded.ts_ms "
    "WHERE excluded.ts_ms < prompts.ts_ms"
)
_FILE_UPDATE = (
    "UPDATE files SET dev = ?, ino = ?, size = ?, mtime_ns = ?, offset = ?, head_len = ?, head_sha = ?, "
    "state = ?, bad_lines = bad_lines + ? WHERE id = ?"
)


def _in_chunks(conn: sqlite3.Connection, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
    """``sql`` with ``IN ({})`` filled with ``values``, 500 at a time; all the rows."""
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(values), 500):
        part = values[i : i + 500]
        out.extend(conn.execute(sql.format(",".join("?" * len(part))), part))
    return out


def _stage(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Bind ``rows`` into the connection's temporary staging table.

    This takes no lock on the index (the staging table is this connection's own), so a
    worker does it while another writes; the rows leave this process's memory.
    """
    conn.execute("BEGIN")
    try:
        conn.executemany(_TO_STAGE, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _write(conn: sqlite3.Connection, outcomes: list[FileOutcome], stats: IngestStats) -> None:
    """Write one batch of parsed files, with their new offsets, atomically: the rows that
    :func:`_stage` put in the staging table, then the files' sessions, prompts and offsets.

    ``stats`` counts the batch only once it is committed.
    """
    read = [o for o in outcomes if not o.error]
    with transaction(conn):
        offsets = dict(_in_chunks(conn, "SELECT id, offset FROM files WHERE id IN ({})", [o.task.file_id for o in read]))
        # Another ingest may have moved a file on meanwhile: our rows are the same
        # rows (upserts are idempotent), but its position is not ours to set.
        mine = [o for o in read if offsets.get(o.task.file_id) == o.task.start]
        conn.execute(_UPSERT)
        conn.execute("DELETE FROM temp.stage")
        prompts = [p for o in mine for p in o.prompts]
        # A prompt copied into a resumed session or a fork keeps the session of its
        # earliest copy; the digests of the sessions on both sides are recomputed.
        touched = {sid for (sid,) in _in_chunks(conn, "SELECT session_id FROM prompts WHERE key IN ({})", [p[0] for p in prompts])}
        conn.executemany(_PROMPT_UPSERT, prompts)
        touched.update(p[1] for p in prompts)
        conn.executemany(_SESSION_UPSERT, [s for o in mine for s in o.sessions])
        conn.executemany(
            _FILE_UPDATE,
            [
                (
                    o.task.dev, o.task.ino, o.task.end, o.task.mtime_ns, o.end_offset, o.head_len, o.head_sha,
                    json.dumps(o.state, separators=(",", ":")) if o.state else None, bad_lines(o.counts), o.task.file_id,
                )
                for o in mine
            ],
        )
        for sid in touched:
            _update_prompt_digest(conn, sid)
        rollup_new(conn)
    for o in outcomes:
        if o.error:
            stats.unreadable.append(f"{shown(o.task.path)}: {o.error}")
    for o in mine:
        stats.files_read += 1
        stats.bytes_read += o.end_offset - o.task.start
        stats.add(o.counts)
        for off, reason in o.problems:
            if len(stats.problems) < 200:
                stats.problems.append(f"{shown(o.task.path)}:{off}: {reason.replace('_', ' ')}")


def prompt_chain(conn: sqlite3.Connection, session_id: str, until_ms: int | None = None) -> tuple[int, bytes]:
    """How many prompts a session had (up to ``until_ms``), and the sha256 chain
    h = sha256(h + sha256(prompt)) over them in time order (texts are never stored)."""
    digest = b""
    n = 0
    rows = conn.execute(
        "SELECT sha256 FROM prompts WHERE session_id = ? AND ts_ms <= ? ORDER BY ts_ms, key",
        (session_id, until_ms if until_ms is not None else 2**62),
    )
    for (h,) in rows:
        digest = hashlib.sha256(digest + bytes.fromhex(h)).digest()
        n += 1
    return n, digest


def _update_prompt_digest(conn: sqlite3.Connection, session_id: str) -> None:
    n, digest = prompt_chain(conn, session_id)
    conn.execute(
        "UPDATE sessions SET prompt_count = ?, prompt_digest = ? WHERE session_id = ?", (n, digest.hex(), session_id)
    )


ProgressFn = Callable[[int, int], None]


def ingest(
    conn: sqlite3.Connection,
    sources: list[Source],
    pricing: PricingTable,
    *,
    workers: int | None = None,
    progress: Callable[[int], ProgressFn | None] | None = None,
    deadline: float | None = None,
) -> IngestStats:
    """Bring the index up to date with the logs on disk.

    With a ``deadline`` (a ``time.monotonic()`` value; the hooks' time budget)
    files are read in this process, most recently modified first, and whatever
    is left when it passes waits for the next run.
    """
    started = time.perf_counter()
    stats = IngestStats()
    stats.requests_before = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
    tasks = plan(conn, sources, stats)
    total = sum(t.end - t.start for t in tasks)
    advance = progress(total) if progress else None
    if deadline is not None:
        workers = 1
        tasks.sort(key=lambda t: t.mtime_ns, reverse=True)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers > 1 and total >= PARALLEL_MIN_BYTES and len(tasks) > 1:
        db_path = conn.execute("PRAGMA database_list").fetchone()[2]
        for job_stats, nbytes in _run_parallel(_jobs(tasks, total, workers), pricing, workers, db_path):
            stats.merge(job_stats)
            if advance:
                advance(nbytes, 0)
    else:
        stats.merge(
            run_job(conn, tasks, pricing, (lambda t: advance(t.end - t.start, 0)) if advance else None, deadline)
        )
    stats.requests_after = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
    stats.seconds = time.perf_counter() - started
    return stats


class _Batch:
    """Parsed files waiting to be written in one transaction.

    A transaction rewrites every page of the key index it touches, and a batch of keys
    touches most of them once the index is big: so a batch holds a quarter as many rows
    as the index already has (at least :data:`MIN_BATCH_ROWS`, at most :data:`BATCH_ROWS`,
    so that no write holds the index long). Each file's rows go to the connection's
    staging table as soon as it is parsed (:func:`_stage`, no lock needed), so a write
    holds the lock only to merge them. When another process holds the index, a full
    batch keeps growing (parsing goes on) by up to a quarter rather than waiting for it.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(_STAGE)  # the staging table of :func:`_stage` and :func:`_write`
        self.outcomes: list[FileOutcome] = []
        self.rows = 0
        self.limit = MIN_BATCH_ROWS

    def add(self, outcome: FileOutcome, stats: IngestStats) -> None:
        if outcome.rows:
            # Staged now, outside the index's lock; written with the batch.
            _stage(self.conn, outcome.rows)
            self.rows += len(outcome.rows)
            outcome.rows = []
        self.outcomes.append(outcome)
        self.rows += 1
        if self.rows >= self.limit:
            self.flush(stats, wait=self.rows >= self.limit * 5 // 4)

    def flush(self, stats: IngestStats, wait: bool = True) -> None:
        if not self.outcomes:
            return
        if wait:
            _write(self.conn, self.outcomes, stats)
        else:
            timeout = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                _write(self.conn, self.outcomes, stats)
            except sqlite3.OperationalError as e:
                if not is_busy(e):
                    raise
                return  # another writer holds the index: try again after the next file
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        self.outcomes, self.rows = [], 0
        indexed = self.conn.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()[0]
        self.limit = max(MIN_BATCH_ROWS, min(BATCH_ROWS, indexed // 4))


def run_job(
    conn: sqlite3.Connection,
    job: list[FileTask],
    pricing: PricingTable,
    on_file: Callable[[FileTask], None] | None = None,
    deadline: float | None = None,
) -> IngestStats:
    """Parse the files of one job and write them, a transaction per batch of rows."""
    stats = IngestStats()
    batch = _Batch(conn)
    for i, t in enumerate(job):
        if deadline is not None and time.monotonic() > deadline:
            stats.deferred = len(job) - i
            break
        o = parse_task(t, pricing)
        if on_file:
            on_file(t)
        batch.add(o, stats)
    batch.flush(stats)
    return stats


def _jobs(tasks: list[FileTask], total: int, workers: int) -> list[list[FileTask]]:
    """Group files into jobs, largest files first, each job a share of what is left.

    Jobs shrink as the work runs out (a third of the remaining bytes per worker, down to
    4 MiB or 32 files), so the workers finish together: a big last job would leave the
    other idle.
    """
    jobs: list[list[FileTask]] = []
    cur: list[FileTask] = []
    size = 0
    left = total
    target = max(4 << 20, left // (workers * 3))
    for t in sorted(tasks, key=lambda t: t.end - t.start, reverse=True):
        cur.append(t)
        size += t.end - t.start
        if size >= target or len(cur) >= 32:
            jobs.append(cur)
            left -= size
            cur, size = [], 0
            target = max(4 << 20, left // (workers * 3))
    if cur:
        jobs.append(cur)
    return jobs


#: How long a worker that wrote its last batch waits for the others at the end.
BARRIER_TIMEOUT_S = 600

_WORKER_BATCH: _Batch | None = None
_WORKER_BARRIER: Any = None


def _init_worker(pricing: PricingTable, barrier: Any = None) -> None:
    global _WORKER_PRICING, _WORKER_BARRIER
    _WORKER_PRICING = pricing
    _WORKER_BARRIER = barrier


def _worker_batch(db_path: str) -> _Batch:
    global _WORKER_BATCH
    if _WORKER_BATCH is None:
        from aispend.index import db

        _WORKER_BATCH = _Batch(db.connect(Path(db_path)))
    return _WORKER_BATCH


def _worker_job(job: list[FileTask], db_path: str) -> tuple[IngestStats, int]:
    """In a worker process: parse one job; its rows join the worker's batch, written when full."""
    assert _WORKER_PRICING is not None
    batch = _worker_batch(db_path)
    stats = IngestStats()
    for t in job:
        batch.add(parse_task(t, _WORKER_PRICING), stats)
    return stats, sum(t.end - t.start for t in job)


def _worker_flush(db_path: str) -> tuple[IngestStats, int]:
    """In a worker process, after its last job: write what its batch still holds.

    Then it waits at the barrier for the other workers to do the same, so that each worker
    takes exactly one of these (and the first to finish writes while the others still parse).
    Around the wait it copies the WAL into the index (a checkpoint), so that closing the
    index at the end of the command has next to nothing left to copy.
    """
    import threading

    stats = IngestStats()
    try:
        batch = _worker_batch(db_path)  # inside: whatever fails, the barrier is reached
        batch.flush(stats)
        _checkpoint(batch.conn)  # while the others may still write: waits for nobody
    finally:
        try:
            _WORKER_BARRIER.wait(timeout=BARRIER_TIMEOUT_S)
        except threading.BrokenBarrierError:
            pass  # another worker died: the pool reports it
    _checkpoint(batch.conn)  # every write is done: what the first pass could not copy
    return stats, 0


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds into the index, without waiting for readers or writers."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError as e:
        if not is_busy(e):
            raise  # busy: another checkpoint runs; it copies the same frames


def _start_method() -> str:
    """fork on Linux: cheap, and safe here (workers use no inherited connection).
    Elsewhere (macOS, Windows) fork is unsafe or absent, and workers start afresh."""
    return "fork" if sys.platform == "linux" else "spawn"


def _run_parallel(
    jobs: list[list[FileTask]], pricing: PricingTable, workers: int, db_path: str
) -> Iterable[tuple[IngestStats, int]]:
    """Workers parse in parallel and write their rows in large batches; SQLite's lock orders
    their write transactions. Each worker writes what it still holds at the end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context(_start_method())
    barrier = ctx.Barrier(workers)
    # Forked workers share this process's memory until they write to it, and a garbage
    # collection writes to every object it visits: frozen objects are never visited, so the
    # plan (some hundreds of bytes a file) stays shared instead of being copied into every worker.
    gc.freeze()
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(pricing, barrier)
        ) as pool:
            futures = [pool.submit(_worker_job, job, db_path) for job in jobs]
            # Queued behind every job: a worker takes one when no job is left for it.
            futures += [pool.submit(_worker_flush, db_path) for _ in range(workers)]
            for f in as_completed(futures):
                yield f.result()
    finally:
        gc.unfreeze()


def rebuild(index: Path) -> None:
    """Delete the index (and its WAL files) so the next ingest reads every log again.

    The state file beside it (install records, claims, receipts written here: not derived
    from the logs) is not touched, whatever state the index is in; it must be sound first
    (:class:`~aispend.index.db.StateUnreadable` otherwise, and nothing is deleted). An index
    from before the state file (schema 4 or older) that can still be read has its rows
    copied there first, before it is deleted.
    """
    from aispend.index import db

    state = db.open_state(db.state_path(index))  # refuses an unusable state file
    try:
        if index.exists():
            _keep_old_rows(index, state)
    finally:
        state.close()
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(index) + suffix)
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _keep_old_rows(index: Path, state: sqlite3.Connection) -> None:
    """Copy the install records, claims and receipts of an index of schema 4 or older into the
    state file (but for rows it has), by column name (schema 3 had no ``sync``); nothing when
    the index no longer holds them or cannot be read."""
    from aispend.index import db

    kept: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    try:
        old = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in db.KEPT_ON_REBUILD:
                if table in tables:
                    cur = old.execute(f"SELECT * FROM {table} ORDER BY rowid" if table == "receipts" else f"SELECT * FROM {table}")
                    kept[table] = ([d[0] for d in cur.description], cur.fetchall())
        finally:
            old.close()
    except sqlite3.Error:
        return  # unreadable: the state file holds what is kept
    with transaction(state):
        for table, (cols, rows) in kept.items():
            if rows:
                marks = ", ".join("?" * len(cols))
                names = ", ".join(f'"{c}"' for c in cols)
                state.executemany(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", rows)
