"""The local SQLite index: connection settings and versioned schema migrations.

The schema version lives in ``PRAGMA user_version``. Each migration is a list of
SQL statements applied in one transaction; an index written by a newer aispend
(a higher version than we know) is refused with a clear message rather than
guessed at.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, cast

from aispend.errors import AispendError
from aispend.paths import index_path, private_dir, private_file

# sqlite3 binds None only after looking for an adapter for it (a tuple built, a dict
# missed, two attribute lookups: about 0.2 us a value). With this one registered (a C
# function returning None) the lookup is one dict hit; NULL is bound as before. Rows
# carry about five Nones each.
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))


def _rollup_group(r: str) -> str:
    """The roll-up key of request ``r`` (NEW or OLD in a trigger)."""
    unpriced = (
        f"CASE WHEN {r}.cost_nusd IS NULL THEN coalesce({r}.model, '(no model)') || "
        f"CASE WHEN {r}.price_note = 'fast_unpriced' THEN ' (fast)' ELSE '' END ELSE '' END"
    )
    return (
        f"{r}.ts_ms / 900000, {r}.tool, {r}.session_id, coalesce({r}.priced_model, {r}.model, '(no model)'), "
        f"coalesce({r}.cwd, '(unknown)'), {unpriced}"
    )


#: The token fields every report and receipt shows, in one meaning for every tool
#: (docs/usage.md): the roll-up's sums, the usage JSON's fields, a receipt's fields.
TOKEN_FIELDS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "total_tokens",
)

_ROLLUP_KEY = "bucket, tool, session_id, model_key, cwd_key, unpriced"
_ROLLUP_SUMS = (
    ("input_tokens", "{r}.input_tokens"),
    ("output_tokens", "{r}.output_tokens"),
    ("cache_creation_tokens", "{r}.cache_write_5m + {r}.cache_write_1h"),
    ("cache_read_tokens", "{r}.cache_read_tokens"),
    ("reasoning_tokens", "{r}.reasoning_tokens"),
    ("total_tokens", "{r}.total_tokens"),
    ("cost_nusd", "coalesce({r}.cost_nusd, 0)"),
)
_ROLLUP_ADD_NEW = (
    f"INSERT INTO rollup VALUES ({_rollup_group('NEW')}, 1, "
    + ", ".join(v.format(r="NEW") for _, v in _ROLLUP_SUMS)
    + f") ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET requests = requests + 1, "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c, _ in _ROLLUP_SUMS)
    + ";"
)
_ROLLUP_SUB_OLD = (
    "UPDATE rollup SET requests = requests - 1, "
    + ", ".join(f"{c} = {c} - ({v.format(r='OLD')})" for c, v in _ROLLUP_SUMS)
    + f" WHERE ({_ROLLUP_KEY}) = ({_rollup_group('OLD')});"
)

_ROLLED_UP = "OLD.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_id')"
#: Roll up every request newer than the roll-up (run inside each ingest transaction).
ROLLUP_NEW = (
    f"INSERT INTO rollup SELECT {_rollup_group('requests')}, count(*), "
    + ", ".join(f"sum({v.format(r='requests')})" for _, v in _ROLLUP_SUMS)
    + " FROM requests WHERE id > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_id') "
    + "GROUP BY 1, 2, 3, 4, 5, 6 "
    + f"ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET requests = requests + excluded.requests, "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c, _ in _ROLLUP_SUMS)
)
ROLLUP_MARK = (
    "UPDATE meta SET value = (SELECT coalesce(max(id), 0) FROM requests) WHERE key = 'rollup_id'"
)


def rollup_new(conn: sqlite3.Connection) -> None:
    """Add the requests written since the last roll-up to it (inside a write transaction)."""
    conn.execute(ROLLUP_NEW)
    conn.execute(ROLLUP_MARK)


MIGRATIONS: list[list[str]] = [
    # 1: files, requests and their roll-up, sessions, prompts
    [
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            tool TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            dev INTEGER NOT NULL DEFAULT 0,
            ino INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            mtime_ns INTEGER NOT NULL DEFAULT 0,
            offset INTEGER NOT NULL DEFAULT 0,
            head_len INTEGER NOT NULL DEFAULT 0,
            head_sha TEXT,
            state TEXT,
            bad_lines INTEGER NOT NULL DEFAULT 0
        )""",
        # A rowid table with a unique key (not WITHOUT ROWID): time-range reports
        # reach rows through the ts index by integer rowid, much faster than by
        # a 60-byte text key.
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            tool TEXT NOT NULL,
            session_id TEXT NOT NULL,
            parent_session TEXT,
            agent_id TEXT,
            ts_ms INTEGER NOT NULL,
            cwd TEXT,
            git_branch TEXT,
            model TEXT,
            input_tokens INTEGER NOT NULL,
            cache_write_5m INTEGER NOT NULL,
            cache_write_1h INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            total_tokens INTEGER NOT NULL,
            speed TEXT,
            logged_cost_usd TEXT,
            cost_nusd INTEGER,
            priced_model TEXT,
            pricing_id TEXT,
            price_note TEXT,
            file_id INTEGER NOT NULL,
            line_offset INTEGER NOT NULL
        )""",
        """CREATE INDEX requests_ts ON requests (ts_ms)""",
        # The roll-up: sums per 15 minutes, tool, session, model, folder and price status, so
        # that reports read thousands of rows, not millions. New requests are rolled up in
        # bulk at the end of each ingest transaction (ids only grow: AUTOINCREMENT); a
        # rolled-up request that is replaced, re-priced or deleted adjusts it by trigger.
        """CREATE TABLE rollup (
            bucket INTEGER NOT NULL,
            tool TEXT NOT NULL,
            session_id TEXT NOT NULL,
            model_key TEXT NOT NULL,
            cwd_key TEXT NOT NULL,
            unpriced TEXT NOT NULL,
            requests INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_creation_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            total_tokens INTEGER NOT NULL,
            cost_nusd INTEGER NOT NULL,
            PRIMARY KEY (bucket, tool, session_id, model_key, cwd_key, unpriced)
        ) WITHOUT ROWID""",
        "INSERT INTO meta (key, value) VALUES ('rollup_id', '0')",
        f"CREATE TRIGGER requests_rollup_delete AFTER DELETE ON requests WHEN {_ROLLED_UP} BEGIN {_ROLLUP_SUB_OLD} END",
        f"CREATE TRIGGER requests_rollup_update AFTER UPDATE ON requests WHEN {_ROLLED_UP} "
        f"BEGIN {_ROLLUP_SUB_OLD} {_ROLLUP_ADD_NEW} END",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            tool TEXT NOT NULL,
            parent_session TEXT,
            started_ms INTEGER,
            cwd TEXT,
            git_branch TEXT,
            prompt_count INTEGER NOT NULL DEFAULT 0,
            prompt_digest TEXT
        )""",
        """CREATE TABLE prompts (
            key TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            sha256 TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE INDEX prompts_session ON prompts (session_id, ts_ms, key)""",
    ],
    # 2: receipts: which requests each commit claimed, per-repository install settings
    [
        # A request belongs to at most one commit: the primary key is the guarantee,
        # under concurrent hooks too. Keyed by the request's de-duplication key, not
        # its rowid, so claims survive 'ingest --rebuild'.
        """CREATE TABLE claims (
            request_key TEXT PRIMARY KEY,
            commit_sha TEXT NOT NULL,
            repo TEXT NOT NULL,
            claimed_ms INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE INDEX claims_commit ON claims (commit_sha)""",
        # repo: the repository's common git dir (shared by its linked worktrees).
        """CREATE TABLE installs (
            repo TEXT PRIMARY KEY,
            installed_ms INTEGER NOT NULL,
            since_ms INTEGER NOT NULL,
            trailer INTEGER NOT NULL DEFAULT 0
        )""",
        # Receipts written on this machine (the notes are the record; this is for status).
        """CREATE TABLE receipts (
            digest TEXT PRIMARY KEY,
            commit_sha TEXT NOT NULL,
            repo TEXT NOT NULL,
            written_ms INTEGER NOT NULL,
            line TEXT NOT NULL
        )""",
        """CREATE INDEX receipts_commit ON receipts (commit_sha)""",
    ],
    [
        # 3: what verifying a receipt line found, per commit it is attached to and per list of
        # trusted signers: reports over thousands of commits check each signature once.
        """CREATE TABLE verified (
            digest TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            trust TEXT NOT NULL,
            status TEXT NOT NULL,
            problems TEXT NOT NULL,
            usable INTEGER NOT NULL,
            PRIMARY KEY (digest, commit_sha, trust)
        ) WITHOUT ROWID""",
    ],
    [
        # 4: whether the repository was installed with --sync (1) or not (0): only then does
        # pre-push sync (a pre-push hook in a hooks folder shared with other repositories runs in
        # them too). NULL: installed before this was recorded (and the hooks then made records
        # on their own): not syncing, and pre-push says how to choose.
        "ALTER TABLE installs ADD COLUMN sync INTEGER",
    ],
]

#: Tables that are not derived from the logs: 'ingest --rebuild' keeps them.
KEPT_ON_REBUILD = ("claims", "installs", "receipts")

SCHEMA_VERSION = len(MIGRATIONS)


#: Page size of a new index (an existing one keeps its own until 'ingest --rebuild').
PAGE_SIZE = 16384

#: How long to wait for another aispend process holding the index.
BUSY_TIMEOUT_S = 30.0


def connect(path: Path | None = None, *, readonly: bool = False, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the index; wait up to ``timeout`` s for a busy one."""
    path = path or index_path()
    if not readonly:
        try:
            private_dir(path.parent)
        except OSError as e:
            raise AispendError(f"cannot create the data directory {path.parent}: {e.strerror}") from None
        try:
            # Made 0600 before SQLite opens it: SQLite would make it 0644 (less the umask), and it
            # gives the -wal and -shm files the database file's permissions.
            private_file(path)
        except OSError as e:
            raise AispendError(f"cannot create the index {path}: {e.strerror}") from None
    deadline = time.monotonic() + timeout
    while True:
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Takes effect only on a new index (before its first write): 16 KiB pages cost a
            # fifth less to write than 4 KiB ones (fewer, larger writes of the same bytes).
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
            return conn
        except AispendError:
            if conn is not None:
                conn.close()
            raise
        except sqlite3.OperationalError as e:
            if conn is not None:
                conn.close()
            # Switching a new index to WAL, or creating it, while another process
            # does the same is "locked" without waiting on the busy handler: retry.
            if is_busy(e) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if is_busy(e):
                raise IndexBusy(f"the index {path} is busy: another aispend has held it for {timeout:.0f} s") from None
            raise AispendError(f"cannot open the index {path}: {e}") from None
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            raise AispendError(
                f"the index {path} is unreadable ({e}); rebuild it from the logs with 'aispend ingest --rebuild'"
            ) from None


@dataclass(frozen=True)
class Install:
    """A repository's install record (the ``installs`` row)."""

    since_ms: int
    trailer: bool
    sync: bool | None  # None: installed before the choice was recorded


def read_install(repo: str, path: Path | None = None) -> Install | None:
    """The install record of ``repo`` (its common git dir); None when there is none, or no index.

    Opens the index read-only: creates, migrates and waits for nothing (the hooks' first look,
    in every repository a shared hooks folder reaches). sqlite3.Error when it cannot be read.
    """
    path = path or index_path()
    if not path.is_file():
        return None
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=2)
    try:
        cur = conn.execute("SELECT * FROM installs WHERE repo = ?", (repo,))
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
    finally:
        conn.close()
    if row is None:
        return None
    got = dict(zip(names, row))
    sync = got.get("sync")  # no such column: schema 3
    return Install(int(got["since_ms"]), bool(got["trailer"]), None if sync is None else bool(sync))


def storage_problem(e: BaseException) -> str | None:
    """A one-line explanation when SQLite failed for want of room or rights; None otherwise."""
    if not isinstance(e, sqlite3.Error):
        return None
    text = str(e).lower()
    where = index_path()
    if "disk is full" in text or "disk i/o error" in text:
        return f"no room left for the index {where} ({e}): free some space and run the command again; nothing was lost"
    if "readonly" in text or "read-only" in text:
        return f"the index {where} cannot be written ({e}): check the permissions of {where.parent}"
    return None


class IndexBusy(AispendError):
    """Another process held the index longer than we would wait."""


def is_busy(e: BaseException) -> bool:
    """Another process holds the database (SQLite says "locked" or "busy")."""
    text = str(e).lower()
    return "locked" in text or "busy" in text


class transaction:
    """``with transaction(conn):`` runs the block in one write transaction (BEGIN IMMEDIATE).

    Taking the write lock up front means two writers wait their turn (up to the
    busy timeout) instead of failing half-way.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise AispendError(
            f"the index was written by a newer aispend (schema {version}, this one knows {SCHEMA_VERSION}); upgrade aispend"
        )
    if version == SCHEMA_VERSION:
        return
    with transaction(conn):
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for i in range(version, SCHEMA_VERSION):
            for stmt in MIGRATIONS[i]:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {i + 1}")
