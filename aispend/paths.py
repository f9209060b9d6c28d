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


def shown(path: str) -> str:
    """A path made printable: bytes that are not UTF-8 (a non-UTF-8 file name) as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


#: Marks a stored path that had bytes which are not UTF-8 (NUL cannot occur in a real path).
_ESCAPED = "\x00"


def stored(path: str) -> str:
    """A path as the index keeps it: itself, or, when a name is not UTF-8 (SQLite text must be),
    a reversible escaped form (see :func:`unstored`)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return _ESCAPED + "".join(chr(b) if 0x20 < b < 0x7F and b != 0x25 else f"%{b:02x}" for b in raw)


def unstored(key: str) -> str:
    """The real path of :func:`stored`'s result."""
    if not key.startswith(_ESCAPED):
        return key
    body = key[len(_ESCAPED):]
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "%":
            out.append(int(body[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(body[i]))
            i += 1
    return os.fsdecode(bytes(out))


def home() -> Path:
    return Path(os.path.expanduser("~"))
