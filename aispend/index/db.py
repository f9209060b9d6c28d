"""The local SQLite index: connection settings and versioned schema migrations.

The schema version lives in ``PRAGMA user_version``. Each migration is a list of
SQL statements applied in one transaction; an index written by a newer aispend
(a higher version than we know) is refused with a clear message rather than
guessed at.

What is not derived from the logs (install records, claims, receipts written here)
lives in the state file beside the index (``state.sqlite3``, its own schema and
``user_version``), ATTACHed to every index connection as ``state``: rebuilding the
index from the logs never touches it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, cast

from aispend.errors import AispendError
from aispend.paths import index_path, private_dir, private_file, state_path

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


#: Claims (which request each commit took) and the receipts written here: made in the index at its
#: schema 2, moved to the state file at its schema 5 (``{db}``: the schema name and a dot, or nothing).
#: A request belongs to at most one commit: the primary key is the guarantee, under concurrent
#: hooks too. Keyed by the request's de-duplication key, not its rowid in the index, so claims
#: survive 'ingest --rebuild'.
_CLAIMS = (
    """CREATE TABLE {db}claims (
        request_key TEXT PRIMARY KEY,
        commit_sha TEXT NOT NULL,
        repo TEXT NOT NULL,
        claimed_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE INDEX {db}claims_commit ON claims (commit_sha)""",
)
#: Receipts written on this machine (the notes are the record; this is for status).
_RECEIPTS = (
    """CREATE TABLE {db}receipts (
        digest TEXT PRIMARY KEY,
        commit_sha TEXT NOT NULL,
        repo TEXT NOT NULL,
        written_ms INTEGER NOT NULL,
        line TEXT NOT NULL
    )""",
    """CREATE INDEX {db}receipts_commit ON receipts (commit_sha)""",
)


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
        # A request belongs to at most one commit (the primary key): see _CLAIMS.
        *(x.format(db="") for x in _CLAIMS),
        # repo: the repository's common git dir (shared by its linked worktrees).
        """CREATE TABLE installs (
            repo TEXT PRIMARY KEY,
            installed_ms INTEGER NOT NULL,
            since_ms INTEGER NOT NULL,
            trailer INTEGER NOT NULL DEFAULT 0
        )""",
        *(x.format(db="") for x in _RECEIPTS),
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
    [
        # 5: install records, claims and receipts live in the state file beside the index (see
        # STATE_MIGRATIONS), which 'ingest --rebuild' leaves alone. migrate() runs this only once
        # every row of these tables is in the state file, committed (_copy_to_state).
        "DROP TABLE main.claims",
        "DROP TABLE main.installs",
        "DROP TABLE main.receipts",
    ],
]

#: Tables that are not derived from the logs: they live in the state file, which 'ingest
#: --rebuild' keeps (an index of schema 4 or older still holds them until it is migrated).
KEPT_ON_REBUILD = ("claims", "installs", "receipts")

SCHEMA_VERSION = len(MIGRATIONS)

#: The index's schema from which KEPT_ON_REBUILD live in the state file.
MOVED_TO_STATE = 5

#: The state file's schema, versioned by its own ``PRAGMA user_version``. ``{db}`` is its schema
#: name with a dot (``state.`` when ATTACHed to the index, as connect() does), or nothing.
STATE_MIGRATIONS: list[list[str]] = [
    # 1: what the index held from its schema 2 (claims, install records, receipts written here),
    # as schema 4 left it; moved out of the index at its schema 5.
    [
        *_CLAIMS,
        # repo: the repository's common git dir (shared by its linked worktrees). sync: installed
        # with --sync (1) or not (0); NULL: installed before aispend recorded the choice.
        """CREATE TABLE {db}installs (
            repo TEXT PRIMARY KEY,
            installed_ms INTEGER NOT NULL,
            since_ms INTEGER NOT NULL,
            trailer INTEGER NOT NULL DEFAULT 0,
            sync INTEGER
        )""",
        *_RECEIPTS,
    ],
    # 2: the billing starts a repository had before a reinstall moved it (JSON [[until_ms,
    # since_ms], ...]): a commit made before the move claims under the start then in force,
    # however late its receipt is built.
    ["ALTER TABLE {db}installs ADD COLUMN earlier TEXT"],
]

STATE_VERSION = len(STATE_MIGRATIONS)

#: The state file's schema name on an index connection.
STATE_DB = "state"


#: Page size of a new index (an existing one keeps its own until 'ingest --rebuild').
PAGE_SIZE = 16384

#: How long to wait for another aispend process holding the index.
BUSY_TIMEOUT_S = 30.0


class IndexBusy(AispendError):
    """Another process held the index longer than we would wait."""


class IndexUnreadable(AispendError):
    """The index is damaged or not a database: ``aispend ingest --rebuild`` makes it anew."""


class StateUnreadable(AispendError):
    """The state file is damaged, not a database, or cannot be opened."""


def connect(path: Path | None = None, *, readonly: bool = False, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the index, with its state file ATTACHed as
    ``state``; wait up to ``timeout`` s for a busy one.

    Queries name ``installs``, ``claims`` and ``receipts`` unqualified: the index has no such
    tables (from its schema 5), so they are the state file's.
    """
    path = path or index_path()
    state = state_path(path)
    if not readonly:
        try:
            private_dir(path.parent)
        except OSError as e:
            raise AispendError(f"cannot create the data directory {path.parent}: {e.strerror}") from None
        for what, f in (("the index", path), ("the state file", state)):
            try:
                # Made 0600 before SQLite opens it: SQLite would make it 0644 (less the umask), and
                # it gives the -wal and -shm files the database file's permissions.
                private_file(f)
            except OSError as e:
                raise AispendError(f"cannot create {what} {f}: {e.strerror}") from None
    deadline = time.monotonic() + timeout
    while True:
        conn = None
        at_state = False
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Takes effect only on a new index (before its first write): 16 KiB pages cost a
            # fifth less to write than 4 KiB ones (fewer, larger writes of the same bytes).
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # The index's schema, read now: a damaged one would otherwise fail in ATTACH, as if the
            # state file were.
            conn.execute("SELECT count(*) FROM main.sqlite_master").fetchone()
            at_state = True
            _attach_state(conn, state)
            at_state = False
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
            if at_state:
                if state.exists() and not os.access(state, os.R_OK | os.W_OK):
                    raise StateUnreadable(_state_unreadable(state, str(e))) from None
                raise AispendError(f"cannot open the state file {state}: {e}") from None
            raise AispendError(f"cannot open the index {path}: {e}") from None
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            raise unreadable(e, path, blame_state=at_state) from None


def open_state(state: Path | None = None) -> sqlite3.Connection:
    """The state file alone (no index), created 0600 and migrated if needed: for writing into it
    while the index is being replaced. StateUnreadable when it cannot be used."""
    state = state or state_path()
    problem = state_problem(state)
    if problem is not None:
        raise StateUnreadable(problem)
    try:
        private_file(state)
        conn = sqlite3.connect(state, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise AispendError(f"cannot open the state file {state}: {e}") from None
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, STATE_VERSION):
                for stmt in STATE_MIGRATIONS[i]:
                    conn.execute(stmt.format(db=""))
                conn.execute(f"PRAGMA user_version = {i + 1}")
    except sqlite3.Error as e:
        conn.close()
        raise AispendError(f"cannot open the state file {state}: {e}") from None
    return conn


def _attach_state(conn: sqlite3.Connection, state: Path) -> None:
    """ATTACH the state file as ``state`` (WAL, like the index), reading its schema."""
    conn.execute(f"ATTACH DATABASE ? AS {STATE_DB}", (str(state),))
    conn.execute(f"PRAGMA {STATE_DB}.journal_mode = WAL")
    conn.execute(f"PRAGMA {STATE_DB}.synchronous = NORMAL")
    conn.execute(f"SELECT count(*) FROM {STATE_DB}.sqlite_master").fetchone()


def is_unusable(e: BaseException) -> bool:
    """SQLite found a database damaged or not a database at all (SQLITE_CORRUPT, SQLITE_NOTADB),
    or connect() said so: waiting does not help; the file must be rebuilt or replaced."""
    if isinstance(e, (IndexUnreadable, StateUnreadable)):
        return True
    if not isinstance(e, sqlite3.DatabaseError) or isinstance(e, (sqlite3.OperationalError, sqlite3.IntegrityError)):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return True
    text = str(e).lower()
    return "malformed" in text or "not a database" in text


def _reason(e: sqlite3.Error) -> str:
    """SQLite's words for what is wrong (ATTACH says only "unable to open database: PATH")."""
    code = getattr(e, "sqlite_errorcode", None)
    if str(e).startswith("unable to open database:") and code is not None:
        if code & 0xFF == 26:
            return "file is not a database"
        if code & 0xFF == 11:
            return "database disk image is malformed"
    return str(e)


def unreadable(e: sqlite3.Error, index: Path | None = None, blame_state: bool = False) -> AispendError:
    """The error to raise for a damaged database (SQLite does not say which file): the state
    file's when ``blame_state`` or when it fails its own check, else the index's."""
    index = index or index_path()
    state = state_path(index)
    found = None if blame_state else _state_check(state)
    if blame_state or (found is not None and not found.startswith("written by a newer aispend")):
        return StateUnreadable(_state_unreadable(state, _reason(e)))
    return IndexUnreadable(
        f"the index {index} is unreadable ({_reason(e)}); rebuild it from the logs with 'aispend ingest --rebuild' "
        "(install records, claims and receipts are kept; commits made meanwhile get their receipts then)"
    )


def _state_unreadable(state: Path, reason: str) -> str:
    import shlex

    if state.exists() and not os.access(state, os.R_OK | os.W_OK):
        return (
            f"the state file {state} cannot be opened ({reason}): it must be readable and writable by you "
            f"(chmod 600 {shlex.quote(str(state))}, as its owner)"
        )
    q = shlex.quote(str(state))
    return (
        f"the state file {state} is unreadable ({reason}): move it aside (mv {q} {q}.broken), then run "
        "'aispend install' again in each repository, which starts billing anew (receipts already written "
        "stay in the notes)"
    )


def _state_check(state: Path) -> str | None:
    """What is wrong with the state file (SQLite's words), read on its own; None when it is
    sound, missing, or failed for another reason (busy...). Runs ``PRAGMA quick_check``: it is small."""
    if not state.exists():
        return None
    conn = None
    try:
        conn = sqlite3.connect(state.resolve().as_uri() + "?mode=ro", uri=True, timeout=2)
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            return check.splitlines()[0] if check else "damaged"
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > STATE_VERSION:
            return f"written by a newer aispend (schema {version}, this one knows {STATE_VERSION}); upgrade aispend"
        return None
    except sqlite3.Error as e:
        if is_unusable(e) or not os.access(state, os.R_OK | os.W_OK):
            return _reason(e)
        return None
    finally:
        if conn is not None:
            conn.close()


def state_problem(state: Path | None = None) -> str | None:
    """The one-line error for an unusable state file (damaged, not a database, written by a
    newer aispend, not ours to open); None when it is sound or missing."""
    state = state or state_path()
    found = _state_check(state)
    if found is None:
        return None
    if found.startswith("written by a newer aispend"):
        return f"the state file {state} was {found}"
    return _state_unreadable(state, found)


@dataclass(frozen=True)
class Install:
    """A repository's install record (the ``installs`` row)."""

    since_ms: int
    trailer: bool
    sync: bool | None  # None: installed before the choice was recorded


def read_install(repo: str, path: Path | None = None) -> Install | None:
    """The install record of ``repo`` (its common git dir) in the state file beside the index
    ``path``; None when there is none.

    Read-only: creates, migrates and waits for nothing (the hooks' first look, in every repository
    a shared hooks folder reaches): one file opened. Only before the state file has its tables (an
    index of schema 4 or older, not migrated yet) is the index read instead. sqlite3.Error when
    the file cannot be read.
    """
    index = path or index_path()
    for f in (state_path(index), index):
        if not f.is_file():
            continue
        conn = sqlite3.connect(f.resolve().as_uri() + "?mode=ro", uri=True, timeout=2)
        try:
            try:
                cur = conn.execute("SELECT * FROM installs WHERE repo = ?", (repo,))
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    continue  # a state file not set up yet; an index whose records moved out
                raise
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        finally:
            conn.close()
        if row is None:
            return None
        got = dict(zip(names, row))
        sync = got.get("sync")  # no such column: an index of schema 3
        return Install(int(got["since_ms"]), bool(got["trailer"]), None if sync is None else bool(sync))
    return None


def storage_problem(e: BaseException) -> str | None:
    """A one-line explanation when SQLite failed for want of room or rights, or because the index
    or the state file is damaged (waiting does not help: the hooks keep their queue, a command
    says what to do); None otherwise."""
    if isinstance(e, (IndexUnreadable, StateUnreadable)):
        return str(e)
    if not isinstance(e, sqlite3.Error):
        return None
    text = str(e).lower()
    where = index_path()
    if "disk is full" in text or "disk i/o error" in text:
        return f"no room left for the index {where} ({e}): free some space and run the command again; nothing was lost"
    if "readonly" in text or "read-only" in text:
        return f"the index {where} cannot be written ({e}): check the permissions of {where.parent}"
    if is_unusable(e):
        return str(unreadable(e))
    return None


def is_busy(e: BaseException) -> bool:
    """Another process holds the database (SQLite says "locked" or "busy")."""
    text = str(e).lower()
    return "locked" in text or "busy" in text


class transaction:
    """``with transaction(conn):`` runs the block in one write transaction (BEGIN IMMEDIATE).

    Taking the write lock up front means two writers wait their turn (up to the
    busy timeout) instead of failing half-way. On an index connection it takes the state
    file's lock too, always after the index's (SQLite locks main first), so two writers
    never hold one each.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _versions(conn: sqlite3.Connection) -> tuple[int, int]:
    return (
        conn.execute("PRAGMA main.user_version").fetchone()[0],
        conn.execute(f"PRAGMA {STATE_DB}.user_version").fetchone()[0],
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the index and its state file (ATTACHed here if it is not yet) to this aispend's schemas.

    Moving the index's install records, claims and receipts into the state file (index schema 5)
    cannot be one atomic commit: in WAL mode a transaction over two files commits each file on its
    own, the index first. So the rows are copied into the state file in one transaction, which
    commits alone, and the index drops its tables in a later one, which copies again first and
    drops only when that found nothing left to copy (under the same lock: nothing can be written
    in between). A kill at any moment leaves every row in the index, in the state file, or both;
    the next connect() finishes the move.
    """
    if STATE_DB not in [r[1] for r in conn.execute("PRAGMA database_list")]:
        main = conn.execute("PRAGMA database_list").fetchone()[2]
        _attach_state(conn, state_path(Path(main)))
    version, state = _versions(conn)
    if version > SCHEMA_VERSION:
        raise AispendError(
            f"the index was written by a newer aispend (schema {version}, this one knows {SCHEMA_VERSION}); upgrade aispend"
        )
    if state > STATE_VERSION:
        where = conn.execute("PRAGMA database_list").fetchall()
        path = next((r[2] for r in where if r[1] == STATE_DB), "")
        raise StateUnreadable(
            f"the state file {path} was written by a newer aispend (schema {state}, this one knows {STATE_VERSION}); upgrade aispend"
        )
    while version < SCHEMA_VERSION or state < STATE_VERSION:
        with transaction(conn):
            # Re-read under the write lock: another process may have migrated meanwhile.
            version, state = _versions(conn)
            for i in range(state, STATE_VERSION):
                for stmt in STATE_MIGRATIONS[i]:
                    conn.execute(stmt.format(db=f"{STATE_DB}."))
                conn.execute(f"PRAGMA {STATE_DB}.user_version = {i + 1}")
            state = STATE_VERSION
            while version < SCHEMA_VERSION:
                if version + 1 == MOVED_TO_STATE and _copy_to_state(conn):
                    break  # rows copied: commit them alone, then drop in the next transaction
                for stmt in MIGRATIONS[version]:
                    conn.execute(stmt)
                version += 1
                conn.execute(f"PRAGMA main.user_version = {version}")


def _copy_to_state(conn: sqlite3.Connection) -> int:
    """Copy the index's install records, claims and receipts into the state file, but for rows it
    already has; how many were copied. Receipts keep their order (status shows the last one)."""
    before = conn.total_changes
    for table in KEPT_ON_REBUILD:
        cols = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")]
        if not cols:
            continue
        names = ", ".join(f'"{c}"' for c in cols)
        conn.execute(
            f"INSERT OR IGNORE INTO {STATE_DB}.{table} ({names}) SELECT {names} FROM main.{table}"
            + (" ORDER BY rowid" if table == "receipts" else "")
        )
    return conn.total_changes - before
