"""``aispend report --unshipped``: what was spent here on code that never reached the default branch.

From the local index: the requests made in this repository's worktrees (since
its install) whose spend no commit of the default branch carries: never
committed, or committed only on branches that were abandoned. A request counts as
shipped when the commit that claimed it is in the default branch's history, or
when one of that commit's receipts is carried, directly or through a chain
(amend, rebase, squash, forge merge), by a receipt on the default branch that
counts there (trusted: an untrusted line naming ours in ``carried_from`` ships
nothing).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from aispend import git
from aispend.attribution import Claimed
from aispend.errors import AispendError
from aispend.notes import store
from aispend.receipts import counting
from aispend.receipts.model import digest, usd_number
from aispend.receipts.trust import Trust
from aispend.reports.timerange import DayRange


def default_branch(repo: git.Repo) -> str:
    """origin's HEAD, else init.defaultBranch, else main or master (whichever exists)."""
    ref = git.ok(["symbolic-ref", "-q", "refs/remotes/origin/HEAD"], repo.worktree)
    if ref:
        return ref.removeprefix("refs/remotes/")
    candidates = [git.config(repo, "init.defaultBranch") or "", "main", "master"]
    for name in candidates:
        if name and git.ok(["rev-parse", "-q", "--verify", f"refs/heads/{name}"], repo.worktree):
            return name
    raise AispendError("cannot tell the default branch: pass --branch BRANCH")


def worktrees(repo: git.Repo) -> list[str]:
    out = git.run(["worktree", "list", "--porcelain"], repo.worktree)
    return [line[len("worktree ") :] for line in out.splitlines() if line.startswith("worktree ")]


def unshipped(conn: sqlite3.Connection, repo: git.Repo, branch: str, rng: DayRange, trust: Trust) -> dict[str, Any]:
    from aispend import attribution

    key = str(repo.common_dir)
    since = attribution.install_window(conn, key)
    if since is None:
        raise AispendError("aispend is not installed in this repository: nothing here was billed to commits")
    lo, hi = rng.bounds_ms()
    lo = max(since, lo) if lo is not None else since
    requests: dict[str, Claimed] = {}
    for wt in worktrees(repo):
        scope = attribution.Scope(repo=key, worktree=Path(wt), branch=None, since_ms=lo - 1, until_ms=(hi or 2**62) - 1)
        here, elsewhere = attribution.split_by_branch(conn, scope, include_claimed=True)
        for c in here + elsewhere:
            requests[c.key] = c
    claims = dict(conn.execute("SELECT request_key, commit_sha FROM claims WHERE repo = ?", (key,)).fetchall())
    shipped_commits = set(git.run(["rev-list", branch, "--"], repo.worktree).split())
    carried = _carried_on(repo, conn, branch, trust)
    mine: dict[str, set[str]] = {}
    for sha, line in conn.execute("SELECT commit_sha, line FROM receipts WHERE repo = ?", (key,)):
        mine.setdefault(sha, set()).add(digest(line))
    out = [c for k, c in requests.items() if not _shipped(claims.get(k), shipped_commits, carried, mine)]
    cost = sum(c.cost_nusd or 0 for c in out)
    sessions: dict[str, int] = {}
    for c in out:
        sessions[f"{c.tool}:{c.session_id}"] = sessions.get(f"{c.tool}:{c.session_id}", 0) + (c.cost_nusd or 0)
    return {
        "default_branch": branch,
        "requests": len(out),
        "never_committed": sum(1 for c in out if c.key not in claims),
        "total_tokens": sum(c.total_tokens for c in out),
        "unpriced_tokens": sum(c.total_tokens for c in out if c.cost_nusd is None),
        "cost_usd": usd_number(cost),
        "sessions": [{"session": s, "cost_usd": usd_number(n)} for s, n in sorted(sessions.items(), key=lambda kv: (-kv[1], kv[0]))],
    }


def _shipped(commit: str | None, shipped_commits: set[str], carried: set[str], mine: dict[str, set[str]]) -> bool:
    if commit is None:
        return False
    return commit in shipped_commits or bool(mine.get(commit, set()) & carried)


def _carried_on(repo: git.Repo, conn: sqlite3.Connection, branch: str, trust: Trust) -> set[str]:
    """Digests of the receipts that count on ``branch``'s commits and of everything they carry,
    transitively (a trusted carrier vouches for what it carried, and for what that carried)."""
    from aispend.reports.receipts import check_lines

    by_digest: dict[str, dict[str, Any]] = {}
    for (line,) in conn.execute("SELECT line FROM receipts"):
        try:
            by_digest[digest(line)] = json.loads(line)
        except ValueError:
            continue
    entries = []
    for c, lines in store.commits_with_lines(repo, [branch]):
        entries.extend(check_lines(lines, c.sha, c.tree, trust, committed_s=c.committed_s))
    todo: list[str] = []
    for e in counting.count(entries).entries:
        if e.fate != counting.APART and e.receipt is not None:
            d = digest(e.text)
            by_digest.setdefault(d, e.receipt)
            todo.append(d)
    seen: set[str] = set()
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        r = by_digest.get(d)
        if r is not None:
            todo.extend(x for x in r.get("carried_from", []) if isinstance(x, str))
    return seen
