"""Helpers shared by the command modules: consoles and the ingest step."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import sqlite3

    from rich.console import Console

    from aispend.index.ingest import IngestStats


def stdout() -> "Console":
    from rich.console import Console

    # soft_wrap: a statement stays one line (a terminal wraps it; a pipe keeps it whole for grep);
    # tables are still laid out to the width.
    return Console(highlight=False, soft_wrap=True)


def stderr() -> "Console":
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def run_ingest(
    verbose: bool = False, quiet: bool = False, tools: list[str] | None = None
) -> tuple[sqlite3.Connection, IngestStats]:
    """Bring the index up to date; a progress bar when a long cold ingest runs on a terminal."""
    from aispend import sources
    from aispend.index import db
    from aispend.index.ingest import ingest
    from aispend.pricing import table

    conn = db.connect()
    srcs = [sources.get(t) for t in (tools or sources.names())]
    progress_factory = None
    if not quiet and sys.stderr.isatty():
        progress_factory = _progress(stderr())
    try:
        stats = ingest(conn, srcs, table.load(), progress=progress_factory)
    finally:
        if _progress_bar is not None:
            _progress_bar.stop()
    if verbose:
        err = stderr()
        for line in stats.problems:
            err.print(f"skipped {line}", markup=False)
        for line in stats.unreadable:
            err.print(f"unreadable {line}", markup=False)
    return conn, stats


_progress_bar = None


def _progress(err: "Console") -> Callable[[int], Callable[[int, int], None] | None]:
    def factory(total: int) -> Callable[[int, int], None] | None:
        if total < 64 << 20:
            return None  # quick: stay silent
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        global _progress_bar
        bar = Progress(
            TextColumn("indexing logs"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        bar.start()
        _progress_bar = bar
        task = bar.add_task("ingest", total=total)

        def advance(nbytes: int, _rows: int) -> None:
            bar.update(task, advance=nbytes)
            if bar.tasks[0].completed >= total:
                bar.stop()

        return advance

    return factory
