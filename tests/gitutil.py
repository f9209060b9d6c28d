"""Real git repositories for tests: commits made by the real ``git commit``, through the installed hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.logbuilder import Logs, write


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None, check: bool = True) -> str:
    p = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, input=input
    )
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def aispend(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real subprocess (``python -m aispend``)."""
    p = subprocess.run(
        [sys.executable, "-m", "aispend", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"aispend {' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def at(when: str) -> dict[str, str]:
    """Environment for doing something at ``when`` (ISO, UTC): git's dates and aispend's clock."""
    return {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "AISPEND_NOW": when}


_MAKES_COMMITS = {"commit", "rebase", "cherry-pick", "revert", "merge", "am", "pull"}


class Repo:
    """A worktree with helpers to commit at fixed times."""

    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.env = env or {}  # whose repository: HOME, data dir, agent logs (see Person)

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> "Repo":
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", branch)
        git(path, "config", "user.email", "dev@example.com")
        git(path, "config", "user.name", "Dev")
        git(path, "config", "commit.gpgsign", "false")
        r = cls(path)
        r.commit("initial", "2026-03-01T08:00:00Z", files={"README": "hello\n"})
        return r

    def git(self, *args: str, env: dict[str, str] | None = None, input: str | None = None, check: bool = True) -> str:
        out = git(self.path, *args, env={**self.env, **(env or {})}, input=input, check=check)
        if args and args[0] in _MAKES_COMMITS:
            self.settle()
        return out

    def settle(self) -> None:
        """Wait for the hooks' background drain to finish its work on this worktree's queue."""
        import time

        from aispend.hookrun import remembering, wait_idle

        gd = Path(git(self.path, "rev-parse", "--absolute-git-dir", env=self.env).strip())
        assert wait_idle(gd, timeout=60), "the hooks' queue did not drain"
        deadline = time.monotonic() + 60
        while remembering(gd) and time.monotonic() < deadline:  # the next commit's alerts
            time.sleep(0.02)

    def commit(self, message: str, when: str, files: dict[str, str] | None = None, extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> str:
        files = files or {f"f-{message.replace(' ', '-')}.txt": message + "\n"}
        for name, text in files.items():
            p = self.path / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            self.git("add", name)
        self.git("commit", "-q", "-m", message, *extra, env={**at(when), **(env or {})})
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev).strip()

    def install(self, *args: str, when: str = "2026-03-01T09:00:00Z") -> str:
        return aispend(self.path, "install", *args, env={**self.env, **at(when)}).stdout

    def aispend(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return aispend(self.path, *args, env={**self.env, **(env or {})}, check=check)

    def receipts(self, rev: str = "HEAD") -> list[dict[str, Any]]:
        """The receipt lines of a commit's note, parsed."""
        self.settle()
        p = subprocess.run(
            ["git", "notes", "--ref=refs/notes/aispend", "show", rev], cwd=self.path, capture_output=True, text=True,
            env={**os.environ, **self.env},
        )
        if p.returncode != 0:
            return []
        return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


class Spend:
    """Synthetic agent usage: writes log lines and remembers what each one costs."""

    def __init__(self, logs: Logs) -> None:
        self.logs = logs
        self.n = 0

    def claude(self, cwd: Path | str, ts: str, session: str = "sess-1", *, branch: str = "main", inp: int = 1000, out: int = 500, cr: int = 0, cw: int = 0, model: str = "claude-sonnet-4-5-20250929") -> dict[str, Any]:
        self.n += 1
        line = Logs.assistant(
            ts, session=session, msg_id=f"msg_{session}_{self.n:05d}", cwd=str(cwd), branch=branch,
            inp=inp, out=out, cr=cr, cw=cw, model=model,
        )
        write(self.logs.claude_file(session, cwd=str(cwd)), [line])
        return line

    def prompt(self, cwd: Path | str, ts: str, text: str, session: str = "sess-1") -> None:
        write(self.logs.claude_file(session, cwd=str(cwd)), [Logs.user(ts, text, session=session, cwd=str(cwd))])


class Person:
    """Someone with a clone of ``remote``: their own HOME, aispend data dir, agent logs and key."""

    def __init__(self, name: str, root: Path, remote: Path) -> None:
        base = root / name
        home = base / "home"
        home.mkdir(parents=True)
        self.name = name
        self.email = f"{name}@example.com"
        self.env = {
            "HOME": str(home),
            "AISPEND_HOME": str(base / "data"),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "CODEX_HOME": str(home / ".codex"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
        }
        git(root, "clone", "-q", str(remote), str(base / "repo"), env=self.env)
        self.repo = Repo(base / "repo", env=self.env)
        self.repo.git("config", "user.email", self.email)
        self.repo.git("config", "user.name", name)
        self.spend = Spend(Logs(home / ".claude", home / ".codex"))


def note_lines(repo_path: Path, ref: str = "refs/notes/aispend") -> list[str]:
    """Every receipt line under ``ref``, over all commits, sorted."""
    out = []
    for row in git(repo_path, "notes", f"--ref={ref}", "list", check=False).splitlines():
        out += [x for x in git(repo_path, "cat-file", "-p", row.split()[0]).splitlines() if x.strip()]
    return sorted(out)


def work(p: Person, n: int, branch: str = "main", minute: int = 10) -> str:
    """``p`` spends one request on ``branch`` at 09:MM and commits it a minute later."""
    p.spend.claude(p.repo.path, f"2026-03-01T09:{minute:02d}:00Z", f"{p.name}-{n}", branch=branch)
    return p.repo.commit(f"{p.name} {n}", f"2026-03-01T09:{minute + 1:02d}:00Z", files={f"{p.name}-{n}.txt": "x"})


def pushed_feature(p: Person, minutes: tuple[int, ...] = (10, 20)) -> list[str]:
    """``p`` commits one request per minute on a new branch ``feature``, pushes it and syncs."""
    p.repo.git("switch", "-q", "-c", "feature")
    shas = [work(p, i + 1, branch="feature", minute=m) for i, m in enumerate(minutes)]
    p.repo.git("push", "-q", "origin", "feature")
    p.repo.aispend("sync")
    return shas


def bare_remote(root: Path) -> Path:
    """A bare repository with one commit on main, for clones to share."""
    bare = root / "remote.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / "seed"
    git(root, "clone", "-q", str(bare), str(seed))
    git(seed, "-c", "user.email=s@example.com", "-c", "user.name=S", "commit", "-q", "--allow-empty", "-m", "root")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare
