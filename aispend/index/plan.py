"""Which log files to read, and from where: the planning half of an ingest.

Each known file's identity, size, mtime and first bytes are compared with the
disk: unchanged files are not opened, grown ones are read from their offset,
and a replaced or cut-short one resets its tool (see docs/index.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aispend.index.db import transaction
from aispend.paths import shown, stored, unstored
from aispend.sources.base import Source

if TYPE_CHECKING:
    from aispend.index.ingest import IngestStats

#: How many leading bytes of a file are hashed to recognise it.
HEAD_BYTES = 4096


@dataclass(slots=True)
class FileTask:
    file_id: int
    tool: str
    path: str
    start: int
    end: int
    state: dict[str, Any] | None
    dev: int
    ino: int
    mtime_ns: int


def _head_sha(path: str, n: int) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read(n)).hexdigest()
    except OSError:
        return None


def plan(conn: sqlite3.Connection, sources: list[Source], stats: IngestStats) -> list[FileTask]:
    """Stat every log file and decide what to read; register new files.

    When a file was replaced or shrank, its tool is reset and planned again
    (once: after a reset no file has a read position left to contradict).
    """
    files = 0
    unreadable: list[str] = []
    reread: set[str] = set()
    new_files: list[tuple[str, str]] = []
    # Only the figures used, not the stat results: a history can hold tens of thousands of files.
    seen: list[tuple[Source, str, int, int, int, int, Any]] = []
    for src in sources:
        # What the unchanged-file test needs; the rest of a row only for files that changed.
        known = {
            unstored(row[0]): row
            for row in conn.execute("SELECT path, id, dev, ino, size, mtime_ns FROM files WHERE tool = ?", (src.name,))
        }
        for p in src.discover():
            files += 1
            try:
                st = os.stat(p)
            except OSError as e:
                unreadable.append(f"{shown(p)}: {e.strerror}")
                continue
            row = known.get(p)
            if row is None:
                new_files.append((src.name, p))
            elif (row[2], row[3], row[4], row[5]) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
                continue  # unchanged since the last run
            else:
                # The whole row: path, id, dev, ino, size, mtime_ns, offset, head_len, head_sha, state.
                row = row + conn.execute("SELECT offset, head_len, head_sha, state FROM files WHERE id = ?", (row[1],)).fetchone()
                if _is_replaced(row[2], row[3], row[6], row[7], row[8], p, st):
                    reread.add(src.name)
            seen.append((src, p, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, row))
    if reread:
        _reset_tools(conn, sorted(reread))
        stats.reread_tools = sorted(reread)
        return plan(conn, sources, stats)
    stats.files = files
    stats.unreadable.extend(unreadable)
    if new_files:
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO files (tool, path) VALUES (?, ?)", [(t, stored(p)) for t, p in new_files])
    tasks: list[FileTask] = []
    for src, p, dev, ino, size, mtime_ns, row in seen:
        if row is None:
            file_id, offset, state = conn.execute("SELECT id, offset, state FROM files WHERE path = ?", (stored(p),)).fetchone()
        else:
            file_id, offset, state = row[1], row[6], row[9]
        tasks.append(
            FileTask(
                file_id=file_id,
                tool=src.name,
                path=p,
                start=offset,
                end=size,
                state=json.loads(state) if state else None,
                dev=dev,
                ino=ino,
                mtime_ns=mtime_ns,
            )
        )
    return tasks


def _is_replaced(dev: int, ino: int, offset: int, head_len: int, head_sha: str | None, path: str, st: os.stat_result) -> bool:
    """Has a file we already read from been replaced or cut short?"""
    if offset == 0:
        return False  # nothing read yet, nothing to contradict
    if (st.st_dev, st.st_ino) != (dev, ino) or st.st_size < offset:
        return True
    return bool(head_len) and _head_sha(path, head_len) != head_sha


def _reset_tools(conn: sqlite3.Connection, tools: list[str]) -> None:
    """Forget the read positions of every file of ``tools``; drop rows of replaced files.

    Rows are upserted again when the files are re-read, so only copies that no
    longer exist anywhere disappear; rows whose log file was deleted are kept.
    """
    with transaction(conn):
        for tool in tools:
            rows = conn.execute(
                "SELECT id, path, dev, ino, offset, head_len, head_sha FROM files WHERE tool = ?", (tool,)
            ).fetchall()
            for fid, path, dev, ino, offset, head_len, head_sha in rows:
                try:
                    st = os.stat(unstored(path))
                except OSError:
                    continue  # deleted: keep its rows
                if _is_replaced(dev, ino, offset, head_len, head_sha, unstored(path), st):
                    conn.execute("DELETE FROM requests WHERE file_id = ?", (fid,))
            conn.execute(
                "UPDATE files SET offset = 0, state = NULL, size = -1, head_len = 0, head_sha = NULL WHERE tool = ?",
                (tool,),
            )
