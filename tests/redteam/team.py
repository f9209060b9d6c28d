"""A team under attack: a bare remote, alice (trusted), a CI key (trusted), mallory (an
ordinary contributor with push access, her own clone and her own aispend, not trusted).

The team's trust list is committed at ``.aispend/allowed_signers`` (alice and CI), as
the README tells a team to do. Everything is real: git, hooks, ssh-keygen, subprocesses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gitutil import Person, at, bare_remote, git

ONE = 0.0105  # the cost of one synthetic request (1000 in, 500 out, sonnet 4.5)


@dataclass
class Team:
    root: Path
    remote: Path
    alice: Person
    mallory: Person
    ci_key: Path
    ci_line: str


def key_line(p: Person) -> str:
    """``p``'s allowed-signers line, as ``aispend key`` prints it (its last line)."""
    return p.repo.aispend("key").stdout.strip().splitlines()[-1]


def make_team(root: Path) -> Team:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    remote = bare_remote(root)
    alice = Person("alice", root, remote)
    alice.repo.install()
    ci_key = root / "ci_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(ci_key)], check=True)
    pub = ci_key.with_suffix(".pub").read_text().split()
    ci_line = f'ci@example.com namespaces="aispend-receipt" {pub[0]} {pub[1]}'
    trust = alice.repo.path / ".aispend" / "allowed_signers"
    trust.parent.mkdir(exist_ok=True)
    trust.write_text(key_line(alice) + "\n" + ci_line + "\n")
    alice.repo.git("add", ".aispend/allowed_signers")
    alice.repo.git("commit", "-q", "-m", "Trust alice and CI", env=at("2026-03-01T09:00:30Z"))
    alice.repo.git("push", "-q", "origin", "main")
    mallory = Person("mallory", root, remote)
    mallory.repo.install()
    return Team(root, remote, alice, mallory, ci_key, ci_line)


def report(p: Person, *args: str) -> dict[str, Any]:
    return json.loads(p.repo.aispend("report", "--format", "json", "--since", "2026-03-01", *args).stdout)


def show(p: Person, rev: str = "HEAD") -> dict[str, Any]:
    return json.loads(p.repo.aispend("show", "--json", rev).stdout)


def note_of(p: Person, rev: str) -> bytes:
    return subprocess.run(
        ["git", "notes", "--ref=refs/notes/aispend", "show", rev], cwd=p.repo.path, capture_output=True, check=True
    ).stdout


def set_note(p: Person, rev: str, body: bytes) -> None:
    """Write a note byte for byte, as an attacker would with plumbing (no clean-up by git notes)."""
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=p.repo.path, input=body, capture_output=True, check=True
    ).stdout.decode().strip()
    git(p.repo.path, "notes", "--ref=refs/notes/aispend", "add", "-f", "-C", blob, rev, env=p.env)


def push_notes(p: Person) -> None:
    """A plain push of the notes ref (no aispend involved)."""
    git(p.repo.path, "push", "-q", "-f", "origin", "refs/notes/aispend:refs/notes/aispend", env=p.env)


def fetch_notes(p: Person) -> None:
    """Bring the remote's notes in the way a victim would: aispend sync."""
    p.repo.aispend("sync")
