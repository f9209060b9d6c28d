"""``aispend sync``: exchange receipts with a remote, losing no line on either side.

One cycle: fetch the remote's ``refs/notes/aispend`` into the remote-tracking
notes ref ``refs/notes/remotes/<remote>/aispend``; make the local notes the union
of both sides' receipt lines, object by object (every line from both sides, once),
published with a compare-and-swap so that a hook appending meanwhile loses
nothing; push without force. A push that loses the race to another pusher
(non-fast-forward) runs the whole cycle again, a bounded number of times with
jitter. Nothing is ever force-pushed, and the local notes are only ever replaced
by a commit that contains all their lines.

The union is computed here, not by ``git notes merge``: a three-way merge (or a
fast-forward) adopts a removal or a rewrite made upstream, and the lines it
removed would be gone from the local notes too. Lines the remote lost are
published again and counted (:attr:`SyncResult.restored`).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Iterable

from aispend import git
from aispend.errors import AispendError

TRACKING = "refs/notes/remotes/{remote}/aispend"
_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
ATTEMPTS = 6
#: Tries of a fetch whose remote-tracking ref is locked by another git process of this clone.
FETCH_TRIES = 20
#: Above this many notes the tree gets one level of 2-hex fanout directories (as git does).
FANOUT_ABOVE = 256

#: The notes of one notes commit: annotated object id -> blob ids of its note
#: (one, unless the tree lists the object twice, flat and fanned out).
Notes = dict[str, tuple[str, ...]]


@dataclass
class SyncResult:
    remote: str
    fetched: bool = False  # the remote had notes
    merged: bool = False  # the local notes changed
    pushed: bool = False  # the remote's notes changed
    attempts: int = 0
    restored: int = 0  # receipt lines the remote had lost, published again by this sync


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


def _locked(stderr: str) -> bool:
    """Did git fail because another git process held (or had just moved) a local ref?"""
    return "cannot lock ref" in stderr or ("Unable to create" in stderr and ".lock" in stderr) or "File exists" in stderr


def _rev(repo: git.Repo, ref: str) -> str | None:
    return git.ok(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], repo.worktree) or None


def fetch(repo: git.Repo, remote: str) -> str | None:
    """Bring the remote's notes into the remote-tracking notes ref; its commit, or None if it has none."""
    tracking = TRACKING.format(remote=remote)
    for _ in range(FETCH_TRIES):
        p = git.proc(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"+{git.NOTES_REF}:{tracking}"], repo.worktree)
        if p.returncode == 0 or not _locked(p.stderr):
            break
        # Another sync (or git fetch) of this clone is writing the tracking ref: let it finish.
        time.sleep(random.uniform(0.05, 0.25))
    if p.returncode != 0:
        err = p.stderr
        if "couldn't find remote ref" in err:
            git.ok(["update-ref", "-d", tracking], repo.worktree)
            return None
        raise AispendError(f"cannot fetch receipts from {remote}: {_first_line(err)}")
    sha = _rev(repo, tracking)
    if not sha:
        raise AispendError(f"{remote}'s {git.NOTES_REF} is not a notes commit: it was not written by git notes; left alone")
    return sha


# -- reading notes, byte for byte ---------------------------------------------


def _lines(content: bytes) -> set[bytes]:
    """A note's receipt lines: split on LF only, empty lines dropped, every other byte kept."""
    return {x for x in content.split(b"\n") if x}


class _Reader:
    """Notes trees and note blobs of one repository, each read once."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self._notes: dict[str, Notes] = {}
        self._stray: dict[str, dict[str, tuple[str, str, str]]] = {}
        self._blobs: dict[str, bytes] = {}

    def notes(self, commit: str) -> Notes:
        """Every note of the notes commit ``commit``."""
        if commit in self._notes:
            return self._notes[commit]
        found, stray = git.note_entries(self.repo, commit)
        # Not notes (never read as receipts), but someone's files: the union keeps them as they are.
        self._stray[commit] = {path: (mode, kind, oid) for mode, kind, oid, path in stray}
        self._notes[commit] = found
        return found

    def stray(self, commit: str) -> dict[str, tuple[str, str, str]]:
        """The entries of a notes commit (read by :meth:`notes`) that are no note: path -> (mode, type, id)."""
        return self._stray.get(commit, {})

    def load(self, blobs: Iterable[str]) -> None:
        """Read the blobs not read yet, all in one ``git cat-file --batch``."""
        want = sorted(set(blobs) - self._blobs.keys())
        if not want:
            return
        got = git.cat_objects(self.repo, want)
        for sha in want:
            if sha not in got:
                raise AispendError(f"cannot read the note blob {sha}")
            self._blobs[sha] = got[sha]

    def lines(self, blobs: Iterable[str]) -> set[bytes]:
        """The union of the lines of these blobs (loaded before)."""
        out: set[bytes] = set()
        for b in blobs:
            out |= _lines(self._blobs[b])
        return out


def _single(notes: Notes) -> dict[str, str] | None:
    """``notes`` as object -> blob, or None when some object has two notes (a tree git would combine)."""
    if any(len(b) != 1 for b in notes.values()):
        return None
    return {obj: b[0] for obj, b in notes.items()}


def _union(reader: _Reader, ours: Notes, theirs: Notes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Object -> blob of the union of both sides, and the contents of the blobs still to write."""
    result: dict[str, str] = {}
    mixed: list[str] = []
    for obj in ours.keys() | theirs.keys():
        a, b = ours.get(obj), theirs.get(obj)
        if a == b or b is None or a is None:
            side = a or b or ()
            if len(side) == 1:
                result[obj] = side[0]
                continue
        mixed.append(obj)  # both sides differ (or one lists it twice): read the lines
    reader.load(blob for obj in mixed for blob in ours.get(obj, ()) + theirs.get(obj, ()))
    fresh: dict[str, bytes] = {}
    for obj in mixed:
        union = reader.lines(ours.get(obj, ()) + theirs.get(obj, ()))
        for one in (ours.get(obj), theirs.get(obj)):
            if one and len(one) == 1 and reader.lines(one) == union:
                result[obj] = one[0]  # that side already holds every line: no new blob
                break
        else:
            fresh[obj] = b"".join(x + b"\n" for x in sorted(union))  # as cat_sort_uniq: sorted, once
    return result, fresh


def _mktree(repo: git.Repo, notes: dict[str, str], stray: dict[str, tuple[str, str, str]] | None = None) -> str:
    """A notes tree: flat, or with one level of 2-hex fanout above :data:`FANOUT_ABOVE` notes; and
    the entries that are no note (``stray``), at their paths, unless a note's path takes it."""
    leaves: dict[str, tuple[str, str, str]] = dict(stray or {})
    fan = len(notes) > FANOUT_ABOVE
    for obj, blob in notes.items():
        leaves[f"{obj[:2]}/{obj[2:]}" if fan else obj] = ("100644", "blob", blob)
    return _write_tree(repo, leaves)


def _depth(folder: str) -> int:
    return folder.count("/") + 1 if folder else 0


def _write_tree(repo: git.Repo, leaves: dict[str, tuple[str, str, str]]) -> str:
    """The tree holding ``leaves`` (path -> (mode, type, id)), folders made as needed: one
    ``git mktree --batch`` per depth, deepest first."""
    folders: dict[str, dict[str, tuple[str, str, str]]] = {"": {}}
    for path in leaves:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folders.setdefault("/".join(parts[:depth]), {})
    for path, entry in leaves.items():
        if path in folders:
            continue  # a folder has this path too: the folder (holding notes) wins
        parent, _, base = path.rpartition("/")
        folders[parent][base] = entry
    ids: dict[str, str] = {}
    for depth in sorted({_depth(f) for f in folders}, reverse=True):
        level = [f for f in folders if _depth(f) == depth]
        batch = []
        for f in level:
            rows = dict(folders[f])
            for child in folders:
                if child and _depth(child) == depth + 1 and child.rpartition("/")[0] == f:
                    rows[child.rpartition("/")[2]] = ("040000", "tree", ids[child])
            batch.append("".join(f"{m} {k} {o}\t{n}\n" for n, (m, k, o) in sorted(rows.items())))
        out = git.run(["mktree", "--batch", "--missing"], repo.worktree, input="\n".join(batch).encode()).split()
        if len(out) != len(level):
            raise AispendError("cannot write the merged receipts: git mktree wrote fewer trees than asked")
        ids.update(zip(level, out))
    return ids[""]


def _union_commit(repo: git.Repo, reader: _Reader, ours: str, theirs: str, message: str) -> str | None:
    """The commit to make the local notes: None when ours already is it, else theirs or a new commit."""
    if ours == theirs:
        return None
    mine, yours = reader.notes(ours), reader.notes(theirs)
    union, fresh = _union(reader, mine, yours)
    stray = {**reader.stray(ours), **reader.stray(theirs)}
    has_all_ours = union == _single(mine) and reader.stray(ours) == stray
    has_all_theirs = union == _single(yours) and reader.stray(theirs) == stray
    ours_first, theirs_first = git.is_ancestor(repo, ours, theirs), git.is_ancestor(repo, theirs, ours)
    if has_all_ours and theirs_first:
        return None  # we have all of theirs already
    if has_all_theirs and ours_first:
        return theirs  # fast-forward: theirs holds all of ours
    for obj, content in fresh.items():
        union[obj] = git.run(["hash-object", "-w", "--stdin"], repo.worktree, input=content).strip()
    if has_all_ours:
        tree = git.run(["rev-parse", f"{ours}^{{tree}}"], repo.worktree).strip()
    elif has_all_theirs:
        tree = git.run(["rev-parse", f"{theirs}^{{tree}}"], repo.worktree).strip()
    else:
        tree = _mktree(repo, union, stray)
    # A side that is an ancestor of the other is no parent of its own: the history stays linear.
    parents = [ours] if theirs_first else [theirs] if ours_first else [ours, theirs]
    p = git.proc(["commit-tree", tree, *(x for c in parents for x in ("-p", c)), "-m", message], repo.worktree)
    if p.returncode != 0:
        raise AispendError(f"cannot merge the receipts: {_first_line(p.stderr)}")
    return p.stdout.strip()


def merge(repo: git.Repo, theirs: str, attempts: int = 20, reader: _Reader | None = None, remote: str = "the remote") -> bool:
    """Make the local notes the union of theirs and ours, line by line; True when they changed."""
    reader = reader or _Reader(repo)
    message = f"Notes merged by 'aispend sync': every receipt line here and on {remote}"
    locked = False
    for _ in range(attempts):
        ours = _rev(repo, git.NOTES_REF)
        new = _union_commit(repo, reader, ours, theirs, message) if ours else theirs
        if new is None:
            return False
        p = git.proc(["update-ref", git.NOTES_REF, new, ours or git.ZERO], repo.worktree)
        if p.returncode == 0:
            return True
        if not _locked(p.stderr):
            raise AispendError(f"cannot update {git.NOTES_REF}: {_first_line(p.stderr)}")
        # A hook appended a receipt (or another sync published) meanwhile, or still holds the ref's
        # lock: merge again on top of what is there then (after a pause, if it was the lock).
        locked = "File exists" in p.stderr
        time.sleep(random.uniform(0.05, 0.25) if locked else random.uniform(0, 0.02))
    if locked:
        raise AispendError(f"{git.NOTES_REF} stayed locked by another git process (its .lock file exists); run aispend sync again")
    raise AispendError(f"{git.NOTES_REF} kept changing during the merge; run aispend sync again")


def _restored(reader: _Reader, had: Iterable[str], theirs: str | None, published: str) -> int:
    """Receipt lines that a past state of the remote held (``had``), that its current state
    (``theirs``) lacks, and that ``published`` (what we pushed) holds again."""
    now = reader.notes(theirs) if theirs else {}
    pushed = reader.notes(published)
    lost: set[tuple[str, bytes]] = set()
    for commit in dict.fromkeys(had):
        if commit == theirs:
            continue
        before = reader.notes(commit)  # empty when it is no notes commit any more: nothing to count
        gone = [obj for obj, blobs in before.items() if blobs != now.get(obj)]
        reader.load(b for obj in gone for b in before[obj] + now.get(obj, ()) + pushed.get(obj, ()))
        for obj in gone:
            for line in (reader.lines(before[obj]) & reader.lines(pushed.get(obj, ()))) - reader.lines(now.get(obj, ())):
                lost.add((obj, line))
    return len(lost)


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
    reader = _Reader(repo)
    # States the remote is known to have had: the tracking ref as the last sync or fetch left it,
    # every state fetched now, and the history both sides share. A line they hold that the
    # remote lacks now was lost there (not merely never pushed).
    had = [c for c in (_rev(repo, TRACKING.format(remote=remote)),) if c]
    for attempt in range(attempts):
        res.attempts = attempt + 1
        theirs = fetch(repo, remote)
        res.fetched = res.fetched or theirs is not None
        if theirs is not None:
            before = _rev(repo, git.NOTES_REF)
            base = git.ok(["merge-base", before, theirs], repo.worktree) if before else None
            had += [c for c in (base, theirs) if c]
            res.merged = merge(repo, theirs, reader=reader, remote=remote) or res.merged
        ours = _rev(repo, git.NOTES_REF)
        if not ours or ours == theirs:
            return res  # nothing here the remote lacks
        if push(repo, remote):
            res.pushed = True
            res.restored = _restored(reader, had, theirs, ours)
            git.ok(["update-ref", TRACKING.format(remote=remote), ours], repo.worktree)
            return res
        time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))  # another pusher won: again
    raise AispendError(f"{remote}'s receipts kept changing while we pushed ({attempts} tries); run aispend sync again")
