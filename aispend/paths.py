"""Where aispend keeps its own files, and where the agents keep their logs.

Every location can be overridden by environment variables so that tests (and
users with unusual set-ups) never touch the real home directory. The data dir and
every folder in it are created 0700 (:func:`private_dir`), the files aispend creates
there 0600 (docs/security.md).
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


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter: created 0700 when missing (its parents as
    usual); an existing folder is left as it is. Every folder of the data dir is made here.

    FileExistsError when ``path`` is a file.
    """
    try:
        path.mkdir(mode=0o700)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise
            return path  # made meanwhile by another process
    except FileExistsError:
        if not path.is_dir():
            raise
        return path
    os.chmod(path, 0o700)  # mkdir's mode is filtered through the umask
    return path


def data_subdir(*names: str) -> Path:
    """The data dir, or a folder in it, made with :func:`private_dir` where missing (the data dir too)."""
    d = private_dir(data_dir())
    for name in names:
        d = private_dir(d / name)
    return d


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (then it is left alone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)  # exact, whatever the umask


def index_path() -> Path:
    return data_dir() / "index.sqlite3"


#: The file name of the state file (always beside its index).
STATE_FILE = "state.sqlite3"


def state_path(index: Path | None = None) -> Path:
    """The state file of ``index`` (default: the data dir's): what is not derived from the logs
    (install records, claims, receipts written here), beside the index and ATTACHed to it;
    ``aispend ingest --rebuild`` never touches it (docs/index.md)."""
    return (index.parent if index is not None else data_dir()) / STATE_FILE


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
