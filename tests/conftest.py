"""Hermetic seal: every test runs with a temporary HOME, XDG dirs, agent homes and data dir.

No test can read or write the real ~/.claude, ~/.codex or aispend data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXED_NOW = "2026-03-01T12:00:00+00:00"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for var in list(os.environ):
        if var.startswith(("GIT_", "AISPEND_", "CLAUDE_", "CODEX_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    monkeypatch.setenv("AISPEND_HOME", str(tmp_path / "aispend-data"))
    monkeypatch.setenv("AISPEND_NOW", FIXED_NOW)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-03-01T12:00:00+00:00")
    # git operations without a time of their own (a branch made, a switch) happen at the install
    # time of the `repo` fixture: before the usage tests log, as they would in life.
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T09:00:00+00:00")
    monkeypatch.setenv("GIT_EDITOR", "false")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("COLUMNS", "160")
    return home


@pytest.fixture
def logs(hermetic: Path):  # type: ignore[no-untyped-def]
    """A builder of synthetic Claude Code and Codex logs under the temporary HOME."""
    from tests.logbuilder import Logs

    return Logs(hermetic / ".claude", hermetic / ".codex")


SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def shared_fixtures() -> Path:
    if not (SHARED_FIXTURES / "expected").is_dir():
        pytest.skip("../shared/fixtures is absent")
    return SHARED_FIXTURES


@pytest.fixture
def spend(logs):  # type: ignore[no-untyped-def]
    """Synthetic agent usage for the temporary HOME's logs."""
    from tests.gitutil import Spend

    return Spend(logs)


@pytest.fixture
def repo(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A repository with one commit, aispend installed at 09:00 (billing starts then)."""
    from tests.gitutil import Repo

    r = Repo.init(tmp_path / "repo")
    r.install()
    return r
