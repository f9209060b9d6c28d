"""Fixtures of the notes tests: a bare remote and people with clones of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitutil import Person, git


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    git(seed, "-c", "user.email=s@example.com", "-c", "user.name=S", "commit", "-q", "--allow-empty", "-m", "root")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare


@pytest.fixture
def alice(tmp_path: Path, remote: Path) -> Person:
    p = Person("alice", tmp_path, remote)
    p.repo.install()
    return p


@pytest.fixture
def bob(tmp_path: Path, remote: Path) -> Person:
    p = Person("bob", tmp_path, remote)
    p.repo.install()
    return p
