"""Where aispend keeps its own files, and where the agents keep their logs.

Every location can be overridden by environment variables so that tests (and
users with unusual set-ups) never touch the real home directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The data directory: ``$AISPEND_HOME``, else the platform's user data dir."""
    env = os.environ.get("AISPEND_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("aispend", appauthor=False)


def index_path() -> Path:
    return data_dir() / "index.sqlite3"


def crash_dir() -> Path:
    return data_dir() / "crash"


def home() -> Path:
    return Path(os.path.expanduser("~"))
