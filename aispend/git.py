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
from typing import Iterator, Sequence

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

    worktree: Path  # top level of this worktree
    git_dir: Path  # this worktree's git dir (.git, or .git/worktrees/NAME)
    common_dir: Path  # the repository's shared git dir

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


# -- notes -------------------------------------------------------------------


def read_note(repo: Repo, sha: str, ref: str = NOTES_REF) -> str | None:
    """The note attached to ``sha`` in ``ref``, or None."""
    p = subprocess.run(
        ["git", "notes", f"--ref={ref}", "show", sha], cwd=repo.worktree, capture_output=True, check=False
    )
    if p.returncode != 0:
        return None
    return p.stdout.decode("utf-8", "replace")


def log_with_notes(repo: Repo, revs: Sequence[str], ref: str = NOTES_REF) -> Iterator[tuple[str, str, str, int, str, str]]:
    """``(commit, tree, author email, committer time, subject, note)`` for every commit of
    ``git log REVS`` (one process for all)."""
    out = run(["log", f"--notes={ref}", "--format=%x1e%H %T %ct%x00%ae%x00%s%x00%N", *revs, "--"], repo.worktree)
    for rec in out.split("\x1e")[1:]:
        head, author, subject, note = (rec.split("\x00", 3) + ["", "", ""])[:4]
        sha, tree, when = (head.split() + ["", "", "0"])[:3]
        yield sha, tree, author, int(when) if when.isdigit() else 0, subject, note


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
            current = read_note(repo, sha, scratch) or ""
            lines = [x for x in current.splitlines() if x.strip()]
            if line in lines:
                return  # already there: appending twice changes nothing
            body = "\n".join([*lines, line]) + "\n"
            repo.git("notes", f"--ref={scratch}", "add", "-f", "-F", "-", sha, input=body.encode("utf-8"))
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
