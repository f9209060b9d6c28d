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
def bob(tmp_path: Path, remote: Path) -> Person:
    p = Person("bob", tmp_path, remote)
    p.repo.install()
    return p
