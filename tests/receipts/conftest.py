"""Fixtures of the receipts tests: a repository with the hooks installed, and agent spend to commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend
from tests.logbuilder import Logs


@pytest.fixture
def spend(logs: Logs) -> Spend:
    return Spend(logs)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A repository with one commit, aispend installed at 09:00 (billing starts then)."""
    r = Repo.init(tmp_path / "repo")
    r.install()
    return r
