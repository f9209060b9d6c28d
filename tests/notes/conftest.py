"""Fixtures of the notes tests: a bare remote and people with clones of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitutil import Person, bare_remote


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return bare_remote(tmp_path)


@pytest.fixture
def alice(tmp_path: Path, remote: Path) -> Person:
    p = Person("alice", tmp_path, remote)
    p.repo.install()
    return p


@pytest.fixture
def bob(tmp_path: Path, remote: Path, alice: Person) -> Person:
    """bob, with alice: both trust both keys (the team's list; each install made one with its own key only)."""
    p = Person("bob", tmp_path, remote)
    p.repo.install()
    lines = "".join(x.repo.aispend("key").stdout.strip().splitlines()[-1] + "\n" for x in (alice, p))
    for x in (alice, p):
        (x.repo.path / ".aispend" / "allowed_signers").write_text(lines)
    return p
