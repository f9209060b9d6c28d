"""``aispend sync``: exchange receipts with a remote, losing no line on either side.

One cycle: fetch the remote's ``refs/notes/aispend`` into the remote-tracking
notes ref ``refs/notes/remotes/<remote>/aispend``; merge it into the local notes
as the union of receipt lines (``git notes merge -s cat_sort_uniq``: every line
from both sides, once), published with a compare-and-swap so that a hook
appending meanwhile loses nothing; push without force. A push that loses the race
to another pusher (non-fast-forward) runs the whole cycle again, a bounded number
of times with jitter. Nothing is ever force-pushed, and the local notes are only
ever replaced by a commit that contains them.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass

from aispend import git
from aispend.errors import AispendError

TRACKING = "refs/notes/remotes/{remote}/aispend"
_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
ATTEMPTS = 6


@dataclass
class SyncResult:
    remote: str
    fetched: bool = False  # the remote had notes
    merged: bool = False  # the local notes changed
    pushed: bool = False  # the remote's notes changed
    attempts: int = 0


def default_remote(repo: git.Repo) -> str:
    """The current branch's upstream remote, else ``origin``."""
    branch = git.current_branch(repo)
    remote = git.config(repo, f"branch.{branch}.remote") if branch else None
    if not remote or remote == ".":
        remote = "origin"
    return remote


def _check_remote(repo: git.Repo, remote: str) -> None:
    if git.config(repo, f"remote.{remote}.url") is None:
        known = git.ok(["remote"], repo.worktree) or ""
        hint = f" (remotes here: {', '.join(known.split())})" if known.strip() else " (this repository has no remote)"
        raise AispendError(f"no remote named {remote!r}{hint}")


def _first_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith("hint:")]
    for x in lines:
        if x.startswith(("fatal:", "error:", " ! [")) or "rejected" in x:
            return x
    return lines[0] if lines else "failed"


def fetch(repo: git.Repo, remote: str) -> str | None:
    """Bring the remote's notes into the remote-tracking notes ref; its commit, or None if it has none."""
    tracking = TRACKING.format(remote=remote)
    p = git.proc(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"+{git.NOTES_REF}:{tracking}"], repo.worktree)
    if p.returncode != 0:
        err = p.stderr
        if "couldn't find remote ref" in err:
            git.ok(["update-ref", "-d", tracking], repo.worktree)
            return None
        raise AispendError(f"cannot fetch receipts from {remote}: {_first_line(err)}")
    sha = git.ok(["rev-parse", "-q", "--verify", f"{tracking}^{{commit}}"], repo.worktree)
    if not sha:
        raise AispendError(f"{remote}'s {git.NOTES_REF} is not a notes commit: it was not written by git notes; left alone")
    stray = _not_notes(repo, sha)
    if stray:
        # A notes merge would drop them; rather than lose someone's file, touch nothing.
        raise AispendError(
            f"{remote}'s {git.NOTES_REF} holds files that are not notes ({', '.join(stray[:3])}); left alone: "
            "remove them there, then sync again"
        )
    return sha


def _not_notes(repo: git.Repo, commit: str) -> list[str]:
    """Paths in a notes tree that are no note (a note's path, slashes removed, is an object id)."""
    names = git.run(["ls-tree", "-r", "--name-only", commit], repo.worktree).splitlines()
    return [n for n in names if not _OID.match(n.replace("/", ""))]


def merge(repo: git.Repo, theirs: str, attempts: int = 20) -> bool:
    """Make the local notes the union of theirs and ours; True when they changed."""
    scratch = f"refs/notes/aispend-scratch/sync-{os.getpid()}"
    try:
        for _ in range(attempts):
            ours = git.ok(["rev-parse", "-q", "--verify", f"{git.NOTES_REF}^{{commit}}"], repo.worktree) or ""
            if ours and _is_ancestor(repo, theirs, ours):
                return False  # we have all of theirs already
            if not ours or _is_ancestor(repo, ours, theirs):
                new = theirs  # fast-forward: theirs holds all of ours
            else:
                git.run(["update-ref", scratch, ours], repo.worktree)
                p = git.proc(["notes", f"--ref={scratch}", "merge", "--quiet", "-s", "cat_sort_uniq", theirs], repo.worktree)
                if p.returncode != 0:
                    raise AispendError(f"cannot merge the receipts: {_first_line(p.stderr)}")
                new = git.run(["rev-parse", scratch], repo.worktree).strip()
            if git.ok(["update-ref", git.NOTES_REF, new, ours or git.ZERO], repo.worktree) is not None:
                return True
        raise AispendError(f"{git.NOTES_REF} kept changing during the merge; run aispend sync again")
    finally:
        git.ok(["update-ref", "-d", scratch], repo.worktree)


def _is_ancestor(repo: git.Repo, a: str, b: str) -> bool:
    return git.proc(["merge-base", "--is-ancestor", a, b], repo.worktree).returncode == 0


def push(repo: git.Repo, remote: str) -> bool:
    """Push the local notes without force; False when the remote moved on (fetch and merge again)."""
    # --no-verify: a notes-only push has nothing for pre-push hooks (ours would recurse).
    p = git.proc(["push", "--quiet", "--no-verify", remote, f"{git.NOTES_REF}:{git.NOTES_REF}"], repo.worktree)
    if p.returncode == 0:
        return True
    err = p.stderr
    if "[rejected]" in err and ("non-fast-forward" in err or "fetch first" in err):
        return False
    if "[remote rejected]" in err and ("failed to update ref" in err or "cannot lock ref" in err):
        return False  # another push held the remote's ref at that moment
    raise AispendError(f"cannot push receipts to {remote}: {_first_line(err)}")


def sync(repo: git.Repo, remote: str | None = None, attempts: int = ATTEMPTS) -> SyncResult:
    """Fetch, merge and push until the remote holds every local receipt line (and we hold theirs)."""
    remote = remote or default_remote(repo)
    _check_remote(repo, remote)
    res = SyncResult(remote)
    for attempt in range(attempts):
        res.attempts = attempt + 1
        theirs = fetch(repo, remote)
        res.fetched = res.fetched or theirs is not None
        if theirs is not None:
            res.merged = merge(repo, theirs) or res.merged
        ours = git.ok(["rev-parse", "-q", "--verify", f"{git.NOTES_REF}^{{commit}}"], repo.worktree)
        if not ours or ours == theirs:
            return res  # nothing here the remote lacks
        if push(repo, remote):
            res.pushed = True
            git.ok(["update-ref", TRACKING.format(remote=remote), ours], repo.worktree)
            return res
        time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))  # another pusher won: again
    raise AispendError(f"{remote}'s receipts kept changing while we pushed ({attempts} tries); run aispend sync again")
