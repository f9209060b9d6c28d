"""Every call into git, in one place: plumbing through the real ``git`` binary.

The hooks run on every commit, so this module imports nothing heavy (no
pygit2): a ``git`` process costs a few milliseconds, an ``import pygit2`` a
hundred. Notes are written with a compare-and-swap on the notes ref
(``git update-ref NEW OLD``), so two writers never lose each other's lines,
which ``git notes add`` (an unconditional ref update) can.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from aispend.errors import AispendError

NOTES_REF = "refs/notes/aispend"
#: ``git log`` arguments for every commit of every branch, tag and remote-tracking branch (and a
#: detached HEAD): ``--all`` without the notes refs (their commits are the notes' history, not
#: the project's) and the stash (work in progress, never committed).
ALL_COMMITS = ("--exclude=refs/notes/*", "--exclude=refs/stash", "--all")


def shown_revs(revs: Sequence[str]) -> str:
    """The range as the user asked for it: ``--all`` for :data:`ALL_COMMITS`."""
    return "--all" if tuple(revs) == ALL_COMMITS else " ".join(revs)
ZERO = "0" * 40
#: 9999-12-31T23:59:59Z: the last committer time a date can show (later ones are crafted).
LAST_TIME_S = 253_402_300_799


class GitError(AispendError):
    """A git command failed (its stderr's first line is the message)."""


class RefLocked(GitError):
    """A ref stayed locked by another git process: try again later."""


def run(args: Sequence[str], cwd: Path | str | None = None, *, input: bytes | None = None, check: bool = True) -> str:
    """Run ``git ARGS`` and return its stdout (text, trailing newline kept)."""
    try:
        p = subprocess.run(
            ["git", *args], cwd=cwd, input=input, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if check and p.returncode != 0:
        msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {msg[0] if msg else f'exit {p.returncode}'}")
    return p.stdout.decode("utf-8", "surrogateescape")


def proc(args: Sequence[str], cwd: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS``; the finished process (text output), whatever its exit status."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, errors="replace", check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None


def ok(args: Sequence[str], cwd: Path | str | None = None) -> str | None:
    """stdout of ``git ARGS`` without its trailing newline, or None when git fails."""
    try:
        return run(args, cwd).rstrip("\n")
    except GitError:
        return None


@dataclass(frozen=True)
class Repo:
    """A worktree of a repository, as git itself resolves it."""

    worktree: Path  # top level of this worktree (where git runs)
    git_dir: Path  # this worktree's git dir (.git, or .git/worktrees/NAME)
    common_dir: Path  # the repository's shared git dir
    #: Where its agents worked, when that is not ``worktree``: a linked worktree removed since
    #: (git then runs in the common dir).
    removed_worktree: Path | None = None

    @property
    def work_root(self) -> Path:
        """The folder whose agents' usage its commits claim."""
        return self.removed_worktree or self.worktree

    def path(self, name: str) -> Path:
        """``git rev-parse --git-path NAME``: honours linked worktrees and core.hooksPath."""
        out = ok(["rev-parse", "--git-path", name], self.worktree)
        if out is None:
            raise GitError(f"cannot resolve {name} in {self.worktree}")
        p = Path(out)
        return p if p.is_absolute() else self.worktree / p

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        return run(args, self.worktree, input=input, check=check)


def find_repo(cwd: Path | str | None = None) -> Repo:
    """The worktree containing ``cwd`` (default: the current directory)."""
    if cwd is not None and not Path(cwd).is_dir():
        raise AispendError(f"{cwd}: no such directory")
    out = ok(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"], cwd)
    if out is None:
        where = Path(cwd) if cwd else Path.cwd()
        raise AispendError(f"not inside a git worktree: {where}")
    lines = out.splitlines()
    if len(lines) != 3 or not lines[0]:
        raise AispendError("not inside a git worktree (a bare repository has no commits to bill)")
    top = Path(lines[0])
    common = Path(lines[2])
    if not common.is_absolute():
        common = (Path(cwd or ".") / common).resolve()
    return Repo(worktree=top, git_dir=Path(lines[1]), common_dir=common.resolve())


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_email: str
    committer_email: str
    committed_s: int  # committer time, seconds since the epoch
    message: str


def read_commit(repo: Repo, rev: str) -> Commit:
    """The commit ``rev`` names (one process)."""
    p = subprocess.run(
        ["git", "log", "-1", "--no-show-signature", "--format=%H%n%T%n%P%n%ae%n%ce%n%ct%n%B", rev, "--"],
        cwd=repo.worktree, capture_output=True, check=False,
    )
    lines = p.stdout.decode("utf-8", "surrogateescape").split("\n", 6)
    if p.returncode != 0 or len(lines) < 7:
        raise AispendError(f"no such commit: {rev}")
    sha, tree, parents, author, committer, when, message = lines
    try:
        committed = int(when)
    except ValueError:
        committed = 0
    return Commit(sha, tree, tuple(parents.split()), author, committer, committed, message)


def current_branch(repo: Repo) -> str | None:
    """The branch HEAD points at (short name), or None when HEAD is detached."""
    ref = ok(["symbolic-ref", "-q", "HEAD"], repo.worktree)
    if not ref:
        return None
    return ref.removeprefix("refs/heads/")


def config(repo: Repo | None, key: str) -> str | None:
    return ok(["config", "--get", key], repo.worktree if repo else None)


# -- reflogs: where a branch came from ------------------------------------------


@dataclass(frozen=True)
class ReflogEntry:
    old: str
    new: str
    time_s: int
    message: str


def parse_reflog_line(line: str) -> ReflogEntry | None:
    """One reflog line: ``OLD NEW Name <email> SECONDS TZ<tab>MESSAGE``; None when it is not one."""
    head, _, message = line.rstrip("\n").partition("\t")
    parts = head.split(" ")
    if len(parts) < 4 or len(parts[0]) < 40 or len(parts[1]) < 40:
        return None
    try:
        when = int(parts[-2])
    except ValueError:
        return None
    return ReflogEntry(parts[0], parts[1], when, message)


def _reflog(path: Path) -> list[ReflogEntry]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [e for e in map(parse_reflog_line, text.splitlines()) if e is not None]


_CREATED = "branch: Created from "
_CHECKOUT = "checkout: moving from "


def branch_origins(
    common_dir: Path, git_dir: Path, branch: str, first_line: str | None = None, depth: int = 32
) -> list[tuple[str, int]]:
    """The branches ``branch`` carries on, each with the last second (as epoch milliseconds, the
    end of that second) up to which work logged on it belongs to ``branch`` too: the name it had
    before ``git branch -m``, until the rename; and the branch it was created from (the one HEAD
    left for it in this worktree, ``git checkout -b`` / ``git switch -c``, else the one named by
    ``git branch NEW FROM``), until its creation; and, ``depth`` levels deep, theirs.

    Read from the reflogs (``first_line``: the branch's first reflog line as the hook saw it, for
    a branch deleted or made anew since). Nothing when the reflogs are off or say nothing."""
    out: list[tuple[str, int]] = []
    seen = {branch}
    todo: list[tuple[str, int | None, str | None]] = [(branch, None, first_line)]
    head_log: list[ReflogEntry] | None = None
    while todo and depth > 0:
        name, bound, first = todo.pop(0)
        entries = _reflog(common_dir / "logs" / "refs" / "heads" / name)
        if first is not None:
            made = parse_reflog_line(first)
            if made is not None and (not entries or entries[0] != made):
                # Renamed since the hook ran (its reflog went along), else deleted or made anew.
                entries = _reflog_starting(common_dir, made) or [made]
        if not entries:
            # Deleted: the checkout into it, in HEAD's reflog, still says where it came from.
            if head_log is None:
                head_log = _reflog(git_dir / "logs" / "HEAD")
            into = next((e for e in head_log if e.message.startswith(_CHECKOUT) and e.message.endswith(" to " + name)), None)
            if into is not None:
                source = into.message[len(_CHECKOUT) : -len(" to " + name)]
                if source and source not in seen and " " not in source:
                    seen.add(source)
                    until = _end_of(into.time_s, bound)
                    out.append((source, until))
                    todo.append((source, until, None))
                    depth -= 1
            continue
        depth -= 1
        created = entries[0]
        first_name = name
        for e in entries:
            if e.message.startswith("Branch: renamed refs/heads/") and " to refs/heads/" in e.message:
                old = e.message[len("Branch: renamed refs/heads/") :].split(" to refs/heads/", 1)[0]
                first_name = old if first_name == name else first_name
                until = _end_of(e.time_s, bound)
                if old not in seen:
                    seen.add(old)
                    out.append((old, until))
        if created.old.strip("0") or not created.message.startswith(_CREATED):
            continue  # not a creation we can read (an initial commit, or reflogs expired)
        source = created.message[len(_CREATED) :].strip()
        if head_log is None:
            head_log = _reflog(git_dir / "logs" / "HEAD")
        origin = None
        for e in head_log:
            # HEAD left a branch for this one when (or just after) it was made: git checkout -b.
            if e.time_s >= created.time_s and e.message.startswith(_CHECKOUT) and e.message.endswith(" to " + first_name):
                if e.time_s <= created.time_s + 1:
                    origin = e.message[len(_CHECKOUT) : -len(" to " + first_name)]
                break
        if origin is None and source != "HEAD" and not source.startswith(("refs/remotes/", "refs/tags/")):
            origin = source.removeprefix("refs/heads/")
        if origin and origin not in seen and " " not in origin:
            seen.add(origin)
            until = _end_of(created.time_s, bound)
            out.append((origin, until))
            todo.append((origin, until, None))
    return out


def _reflog_starting(common_dir: Path, first: ReflogEntry, most: int = 10_000) -> list[ReflogEntry]:
    """The reflog of the branch whose reflog begins with ``first`` (a branch renamed since: its
    reflog moves with it); nothing when there is none."""
    root = common_dir / "logs" / "refs" / "heads"
    for n, path in enumerate(p for p in root.rglob("*") if p.is_file()):
        if n >= most:
            break
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                if parse_reflog_line(fh.readline()) == first:
                    return _reflog(path)
        except OSError:
            continue
    return []


def branch_created_ms(common_dir: Path, branch: str, first_line: str | None = None) -> int | None:
    """When ``branch`` was made by ``git branch`` / ``checkout -b`` / ``switch -c`` (epoch ms, the
    start of that second), from its first reflog line (``first_line``: as the hook saw it); None
    when it was made otherwise (an initial commit, a clone) or the reflog does not say."""
    if first_line is None:
        try:
            with open(common_dir / "logs" / "refs" / "heads" / branch, encoding="utf-8", errors="replace") as fh:
                first_line = fh.readline()
        except OSError:
            return None
    made = parse_reflog_line(first_line)
    if made is None or made.old.strip("0") or not made.message.startswith(_CREATED):
        return None
    return made.time_s * 1000


def _end_of(second: int, bound: int | None) -> int:
    ms = second * 1000 + 999
    return ms if bound is None else min(ms, bound)


# -- notes -------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedCommit:
    """A commit of a range as reports need it (:func:`log_commits`)."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author_email: str
    committed_s: int
    subject: str


def _hex(s: str) -> bool:
    return len(s) in (40, 64) and not s.strip("0123456789abcdef")


def cat_objects(repo: Repo, shas: Sequence[str]) -> dict[str, bytes]:
    """The raw content of each object (one ``git cat-file --batch``); missing ones are left out.

    Length-prefixed, so no byte of an object (a note, a commit message) can be read as a
    separator: the reader every notes command uses.
    """
    if not shas:
        return {}
    # Objects never change (a name is a hash of the content): a second read of the same ones in
    # one process (report, then its alerts) comes from memory.
    known = _OBJECTS.setdefault(str(repo.common_dir), {})
    missing = [s for s in shas if s not in known]
    if missing:
        known.update(_cat(repo, missing))
    return {s: known[s] for s in shas if s in known}


_OBJECTS: dict[str, dict[str, bytes]] = {}


def _cat(repo: Repo, shas: Sequence[str]) -> dict[str, bytes]:
    import tempfile

    # stdin from a file and stdout the only pipe: Python then reads it in one go, instead of
    # polling two pipes in small chunks (half the time of a 10,000-commit report went there).
    with tempfile.TemporaryFile() as ids:
        ids.write("".join(f"{s}\n" for s in shas).encode("ascii"))
        ids.seek(0)
        p = subprocess.run(["git", "cat-file", "--batch", "--buffer"], cwd=repo.worktree, stdin=ids, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        raise GitError(f"git cat-file: exit {p.returncode}")
    out: dict[str, bytes] = {}
    data, pos = p.stdout, 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        head = data[pos:nl].decode("ascii", "replace").split()
        pos = nl + 1
        if len(head) == 2 and head[1] == "missing":
            continue
        if len(head) != 3 or not head[2].isdigit():
            raise GitError(f"git cat-file: unexpected output {head[:3]!r}")
        size = int(head[2])
        out[head[0]] = data[pos : pos + size]
        pos += size + 1  # the object, then a newline
    return out


def note_entries(repo: Repo, rev: str) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str, str, str]]]:
    """Every note of the notes commit (or ref) ``rev``: annotated object -> its note blobs (an
    object can have several: a hand-made tree may hold ``ab/cdef...`` and ``abcdef...`` at once,
    and every one of them is read), and the entries that are no note, as ``(mode, type, id,
    path)``. Empty for a missing ref."""
    # stdout the only pipe (stderr dropped: a missing ref is simply no notes): read in one go.
    p = subprocess.run(["git", "ls-tree", "-r", "-z", "--full-tree", rev, "--"], cwd=repo.worktree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        return {}, []
    found: dict[str, list[str]] = {}
    stray: list[tuple[str, str, str, str]] = []
    for rec in p.stdout.split(b"\0"):
        if not rec:
            continue
        head, _, path = rec.partition(b"\t")
        fields = head.decode("ascii", "replace").split()
        name = path.decode("utf-8", "replace")
        obj = name.replace("/", "")
        if len(fields) != 3 or fields[1] != "blob" or not _hex(obj):
            stray.append((*(fields + ["", "", ""])[:3], name))  # type: ignore[arg-type]
        else:
            found.setdefault(obj, []).append(fields[2])
    return {obj: tuple(blobs) for obj, blobs in found.items()}, stray


def note_blobs(repo: Repo, ref: str = NOTES_REF) -> dict[str, tuple[str, ...]]:
    """Every note of ``ref``: annotated object -> its note blobs (empty when the ref does not exist)."""
    tip = ok(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], repo.worktree)
    if not tip:
        return {}
    # A notes commit never changes: read its tree once per process.
    found = _NOTES.get(tip)
    if found is None:
        found = _NOTES[tip] = note_entries(repo, tip)[0]
    return found


_NOTES: dict[str, dict[str, tuple[str, ...]]] = {}


def read_notes(repo: Repo, shas: Sequence[str], ref: str = NOTES_REF) -> dict[str, bytes]:
    """The raw note of each of ``shas`` that has one (all of its blobs, one after the other)."""
    blobs = note_blobs(repo, ref)
    wanted = {s: blobs[s] for s in shas if s in blobs}
    content = cat_objects(repo, sorted({b for bs in wanted.values() for b in bs}))
    out: dict[str, bytes] = {}
    for s, bs in wanted.items():
        parts = [content[b] for b in bs if b in content]
        if parts:
            out[s] = b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n" if len(parts) > 1 else parts[0]
    return out


def log_commits(repo: Repo, revs: Sequence[str]) -> list[LoggedCommit]:
    """Every commit of ``git log REVS`` (newest first), in one process.

    Six NUL-separated fields a commit (``-z``): no field can hold a NUL (git's ``%s`` and
    ``%ae`` stop at one), so nothing in a commit message can shift a record; the fixed fields
    are checked all the same.
    """
    p = subprocess.run(
        ["git", "log", "-z", "--no-show-signature", "--format=%H%x00%T%x00%P%x00%ae%x00%ct%x00%s", *revs, "--"],
        cwd=repo.worktree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
    )
    if p.returncode != 0:
        msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git log: {msg[0] if msg else f'exit {p.returncode}'}")
    fields = p.stdout.decode("utf-8", "replace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    if len(fields) % 6:
        raise GitError("git log: unexpected output")
    out = []
    for i in range(0, len(fields), 6):
        sha, tree, parents, author, when, subject = fields[i : i + 6]
        sha = sha.lstrip("\n")  # -z ends each commit with a NUL after the format's own fields
        if not _hex(sha) or not _hex(tree):
            raise GitError("git log: unexpected output")
        t = int(when) if when.isdigit() and len(when) <= 11 else 0
        # A crafted commit dated past what any date can show counts as undated.
        out.append(LoggedCommit(sha, tree, tuple(parents.split()), author, t if t <= LAST_TIME_S else 0, subject))
    return out


def notes_state(repo: Repo, ref: str = NOTES_REF) -> str:
    """``ok``; ``absent`` (no local receipts, but a remote that may have some); ``behind`` (a
    remote's receipts, as last fetched, are not all merged here); ``none`` (no notes, no remote)."""
    local = ok(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], repo.worktree)
    tracking = (ok(["for-each-ref", "--format=%(objectname)", "refs/notes/remotes/*/aispend"], repo.worktree) or "").split()
    if not local:
        if tracking or (ok(["remote"], repo.worktree) or "").strip():
            return "absent"
        return "none"
    for t in tracking:
        if not is_ancestor(repo, t, local):
            return "behind"
    return "ok"


def is_ancestor(repo: Repo, a: str, b: str) -> bool:
    """Whether commit ``a`` is in the history of ``b`` (``b`` itself included)."""
    return proc(["merge-base", "--is-ancestor", a, b], repo.worktree).returncode == 0


def append_note_line(repo: Repo, sha: str, line: str, ref: str = NOTES_REF, attempts: int = 20) -> None:
    """Append one line to the note of ``sha`` in ``ref``, never losing a concurrent writer's lines.

    The note is edited on a private ref holding a copy of the notes commit, then
    published with ``git update-ref REF NEW OLD``: if another writer moved REF
    meanwhile, the swap fails and the edit is redone on top of theirs.
    """
    if "\n" in line:
        raise ValueError("a note line holds no newline")
    # Under refs/notes/: git notes --ref puts any other name there anyway.
    scratch = f"refs/notes/aispend-scratch/{os.getpid()}-{sha[:12]}"
    locked = False
    try:
        for _ in range(attempts):
            old = ok(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], repo.worktree) or ""
            if old:
                repo.git("update-ref", scratch, old)
            else:
                repo.git("update-ref", "-d", scratch, check=False)
            current = read_notes(repo, [sha], scratch).get(sha, b"") if old else b""
            # Bytes, split on newlines only: other writers' lines stay exactly as they are.
            lines = [x for x in current.split(b"\n") if x]
            mine = line.encode("utf-8")
            if mine in lines:
                return  # already there: appending twice changes nothing
            body = b"\n".join([*lines, mine]) + b"\n"
            # -C BLOB takes the blob as it is (git notes add -F would clean other lines' whitespace).
            blob = repo.git("hash-object", "-w", "--stdin", input=body).strip()
            repo.git("notes", f"--ref={scratch}", "add", "-f", "-C", blob, sha)
            new = repo.git("rev-parse", scratch).strip()
            swap = proc(["update-ref", ref, new, old or ZERO], repo.worktree)
            if swap.returncode == 0:
                return
            if "lock" in swap.stderr and "exists" in swap.stderr:
                locked = True  # another git process holds the ref: wait a little, then again
                time.sleep(0.05)
        if locked:
            raise RefLocked(f"{ref} is locked by another git process (its .lock file exists)")
        raise GitError(f"could not update {ref}: it kept changing under us")
    finally:
        run(["update-ref", "-d", scratch], repo.worktree, check=False)
