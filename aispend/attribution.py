"""Which indexed requests a commit claims (the rules are in docs/attribution.md).

A commit made in worktree W at the moment M (when its hook ran, in milliseconds)
claims a request when it

* was made in W or below it (its cwd, else its session's), but not inside a
  nested repository, linked worktree or submodule under W;
* is timestamped after the repository's billing start and at or before M;
* records no git branch (or ``HEAD``: a detached checkout), or the branch being
  committed to, or a branch that one carries on (the branch it was created from,
  or its name before a rename) and was logged before it was created or renamed;
* has not been claimed by another commit on this machine.

Claims are rows of the index keyed by the request: taken inside one write
transaction, so two hooks at once (two worktrees) never claim the same request
and running a hook twice claims nothing twice. M is recorded when the hook runs,
so a receipt does not depend on when it is built.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

from aispend import clock
from aispend.index.db import transaction
from aispend.sources import BRANCH_AT_SESSION_START

#: When only the commit's time is known (whole seconds), its moment is taken as the end of that second.
SECOND_MS = 999


@dataclass(frozen=True)
class Scope:
    """Where and when a commit may claim usage."""

    repo: str  # the repository's common git dir: claims and installs are per repository
    worktree: Path
    branch: str | None  # None: detached HEAD
    since_ms: int  # exclusive: the billing start
    until_ms: int  # inclusive: the moment of the commit
    #: Branches whose usage counts here too, each up to a moment (ms, inclusive): the branch
    #: this one was created from, until its creation; its name before a rename (git.branch_origins).
    inherited: tuple[tuple[str, int], ...] = ()
    #: When the branch was made (ms), if the reflog says: usage logged under its name before then
    #: was another branch's of the same name (deleted since), not this one's.
    branch_since_ms: int | None = None


@dataclass(frozen=True)
class Claimed:
    """A request as a receipt sees it (token fields mean what they mean in ``aispend usage``)."""

    key: str
    tool: str
    session_id: str
    ts_ms: int
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    reasoning_tokens: int
    cost_nusd: int | None  # None: unpriced
    pricing_id: str | None
    branch: str | None = None  # the git branch the agent logged (set by split_by_branch only)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


_FIELDS = (
    "r.key, r.tool, r.session_id, r.ts_ms, coalesce(r.priced_model, r.model, '(no model)'), "
    "r.input_tokens, r.output_tokens, r.cache_write_5m + r.cache_write_1h, r.cache_read_tokens, "
    "r.reasoning_tokens, r.cost_nusd, r.pricing_id"
)
_CWD = "coalesce(r.cwd, (SELECT s.cwd FROM sessions s WHERE s.session_id = r.session_id))"


def _prefixes(worktree: Path) -> list[str]:
    """The worktree's path as git gives it and as the agent may have logged it (symlinks)."""
    out = [str(worktree)]
    real = os.path.realpath(worktree)
    if real not in out:
        out.append(real)
    return out


def candidates(conn: sqlite3.Connection, scope: Scope) -> list[Claimed]:
    """The unclaimed requests ``scope`` would claim now, oldest first."""
    return split_by_branch(conn, scope)[0]


def split_by_branch(
    conn: sqlite3.Connection, scope: Scope, include_claimed: bool = False
) -> tuple[list[Claimed], list[Claimed]]:
    """The unclaimed requests of the worktree and window (``include_claimed``: all of them): those
    ``scope`` would claim now, and those waiting for a commit on the branch they were made on;
    each oldest first."""
    prefixes = _prefixes(scope.worktree)
    where_cwd = " OR ".join(f"cwd = ?{2 * i + 1} OR substr(cwd, 1, length(?{2 * i + 2})) = ?{2 * i + 2}" for i in range(len(prefixes)))
    params: list[object] = []
    for p in prefixes:
        params += [p, p.rstrip("/") + "/"]
    base = len(params)
    # When the branch a request names was logged: its own time, or its session's start for an
    # agent that logs the branch only then.
    session_start = " OR ".join(f"r.tool = '{t}'" for t in BRANCH_AT_SESSION_START) or "0"
    branch_ts = f"CASE WHEN {session_start} THEN (SELECT s.started_ms FROM sessions s WHERE s.session_id = r.session_id) END"
    sql = (
        f"SELECT * FROM (SELECT {_FIELDS}, {_CWD} AS cwd, r.git_branch, {branch_ts} FROM requests r "
        f"WHERE r.ts_ms > ?{base + 1} AND r.ts_ms <= ?{base + 2} "
        f"{'' if include_claimed else 'AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.request_key = r.key)'}) "
        f"WHERE ({where_cwd}) ORDER BY ts_ms, key"
    )
    params += [scope.since_ms, scope.until_ms]
    nested = _NestedCheck(prefixes)
    here: list[Claimed] = []
    elsewhere: list[Claimed] = []
    for row in conn.execute(sql, params):
        cwd, branch, branch_ts = row[12], row[13], row[14]
        if nested.inside_nested(cwd):
            continue
        c = Claimed(*row[:12])
        ok = branch_ok(branch, c.ts_ms if branch_ts is None else branch_ts, scope)
        (here if ok else elsewhere).append(replace(c, branch=branch) if branch else c)
    return here, elsewhere


def branch_ok(logged: str | None, ts_ms: int, scope: Scope) -> bool:
    """Whether a request logged on branch ``logged`` at ``ts_ms`` (when the agent logged that
    branch: the request's time, or its session's start) may go to a commit of ``scope``."""
    if not logged or logged == "HEAD":
        return True  # no branch recorded, or a detached checkout: cannot tell, so it counts
    if logged == scope.branch:
        return scope.branch_since_ms is None or ts_ms >= scope.branch_since_ms
    return any(logged == name and ts_ms <= until for name, until in scope.inherited)


class _NestedCheck:
    """Is a directory under the worktree inside a nested repository (a ``.git`` below the top)?"""

    def __init__(self, prefixes: list[str]) -> None:
        self.prefixes = [p.rstrip("/") for p in prefixes]
        self.cache: dict[str, bool] = {}

    def inside_nested(self, cwd: str) -> bool:
        hit = self.cache.get(cwd)
        if hit is None:
            hit = self.cache[cwd] = self._check(cwd)
        return hit

    def _check(self, cwd: str) -> bool:
        for top in self.prefixes:
            if cwd == top:
                return False
            if cwd.startswith(top + "/"):
                d = Path(cwd)
                stop = Path(top)
                while d != stop and d != d.parent:
                    if os.path.lexists(d / ".git"):
                        return True
                    d = d.parent
                return False
        return True  # not under the worktree at all (cannot happen: the query filtered)


def claim(conn: sqlite3.Connection, scope: Scope, commit_sha: str, more: bool = False) -> list[Claimed]:
    """Claim for ``commit_sha`` what ``scope`` allows, atomically; return everything it holds.

    Once: a commit that holds claims already (its hook ran before, or the same commit was made
    again: same content, same second) claims nothing more, so its receipt is made again byte
    for byte and what was logged since waits for the next commit. ``more``: claim anyway (a
    commit amended again at a rebase's edit stop, holding what the earlier amends claimed).
    """
    now = clock.now_ms()
    with transaction(conn):
        held = conn.execute("SELECT 1 FROM claims WHERE commit_sha = ? AND repo = ? LIMIT 1", (commit_sha, scope.repo)).fetchone()
        if more or held is None:
            found = candidates(conn, scope)
            conn.executemany(
                "INSERT OR IGNORE INTO claims (request_key, commit_sha, repo, claimed_ms) VALUES (?, ?, ?, ?)",
                [(c.key, commit_sha, scope.repo, now) for c in found],
            )
    return claimed_by(conn, scope.repo, commit_sha)


def claimed_by(conn: sqlite3.Connection, repo: str, commit_sha: str) -> list[Claimed]:
    """The requests claimed for ``commit_sha`` of ``repo`` (its common git dir) on this machine,
    oldest first. Per repository: two clones can hold the very same commit."""
    rows = conn.execute(
        f"SELECT {_FIELDS} FROM claims c JOIN requests r ON r.key = c.request_key "
        "WHERE c.commit_sha = ? AND c.repo = ? ORDER BY r.ts_ms, r.key",
        (commit_sha, repo),
    ).fetchall()
    return [Claimed(*row) for row in rows]


def install_window(conn: sqlite3.Connection, repo: str, at_ms: int | None = None) -> int | None:
    """The billing start of ``repo`` (usage at or before it is never billed), or None if not
    installed; ``at_ms``: the one in force then (a reinstall with ``--since`` moved it since)."""
    row = conn.execute("SELECT since_ms, earlier FROM installs WHERE repo = ?", (repo,)).fetchone()
    if row is None:
        return None
    if at_ms is not None and row[1]:
        import json

        try:
            for until, since in sorted(p for p in json.loads(row[1]) if isinstance(p, list) and len(p) == 2):
                if at_ms < int(until):
                    return int(since)
        except (ValueError, TypeError):
            pass
    return int(row[0])


def move_claims(conn: sqlite3.Connection, repo: str, old: str, new: str) -> None:
    """Give what ``old`` claimed in ``repo`` to ``new``, which replaces it (a step of a rebase)."""
    with transaction(conn):
        conn.execute("UPDATE claims SET commit_sha = ? WHERE commit_sha = ? AND repo = ?", (new, old, repo))


def release(conn: sqlite3.Connection, repo: str, commits: list[str]) -> int:
    """Give back what ``commits`` claimed in ``repo`` (commits thrown away: a rebase given up
    after an edit stop); the next commit claims it. How many requests."""
    with transaction(conn):
        n = 0
        for sha in commits:
            n += conn.execute("DELETE FROM claims WHERE commit_sha = ? AND repo = ?", (sha, repo)).rowcount
    return n
