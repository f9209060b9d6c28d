"""``aispend ingest``: read new log lines into the local index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aispend.cli.common import run_ingest
from aispend.text import counted

if TYPE_CHECKING:
    from aispend.index.ingest import IngestStats


def ingest(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every skipped line and unreadable file."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Delete the index and read every log again (install records, claims and receipts are kept; usage of logs deleted since is lost)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something is wrong."),
) -> None:
    """Read Claude Code and Codex session logs into the local index (only what is new); write the receipts of commits still waiting in the hooks' queues."""
    if rebuild:
        from aispend.index.ingest import rebuild as drop
        from aispend.paths import index_path

        drop(index_path())
    conn, stats = run_ingest(verbose=verbose, quiet=quiet)
    conn.close()
    if not quiet or stats.bad_lines or stats.unreadable:
        _summary(stats, verbose)
    # Commits made while the index or the key was unusable wait in their hooks' queues: once it
    # works again (after --rebuild, a chmod, free space), this writes their receipts.
    _drain_queues(quiet)


def _summary(stats: IngestStats, verbose: bool) -> None:
    # Plain lines, never wrapped: this summary often ends up in logs.
    added = stats.requests_after - stats.requests_before
    mb = stats.bytes_read / 1_000_000
    typer.echo(
        f"{counted(stats.files, 'log file')}, {stats.files_read:,} read ({mb:,.1f} MB) in {stats.seconds:.2f}s: "
        f"{counted(added, 'new request')}, {stats.requests_after:,} in the index"
    )
    if stats.reread_tools:
        typer.echo(f"re-read all {', '.join(stats.reread_tools)} logs: a log file was replaced or cut short")
    if stats.bad_lines or stats.unreadable:
        parts = []
        if stats.bad_lines:
            parts.append(f"{counted(stats.bad_lines, 'bad line')} skipped")
        if stats.unreadable:
            parts.append(counted(len(stats.unreadable), "unreadable file"))
        hint = "" if verbose else " (--verbose lists them)"
        typer.echo(", ".join(parts) + hint)


def _drain_queues(quiet: bool) -> None:
    """Handle the hook queue entries of every installed repository (its worktrees too), in this
    process, as the hooks' own drain does; say how many queued commits got their receipts."""
    from aispend import hookrun
    from aispend.index import db

    conn = db.connect()
    try:
        repos = [r for (r,) in conn.execute("SELECT repo FROM installs ORDER BY repo")]
        last = conn.execute("SELECT coalesce(max(rowid), 0) FROM receipts").fetchone()[0]
    finally:
        conn.close()
    queues = [(gd, q) for repo in repos for gd, q in hookrun.repository_queues(Path(repo)) if hookrun.entries(q)]
    if not queues:
        return
    queued = sum(len(hookrun.entries(q)) for _, q in queues)
    for gd, q in queues:
        try:
            hookrun.drain(gd, queue=q)
        except Exception as e:  # noqa: BLE001 - its entries stay: counted below, logged as the hooks do
            hookrun.log(f"ingest: queue {q}: {type(e).__name__}: {e}")
    conn = db.connect()
    try:
        got = conn.execute("SELECT count(DISTINCT commit_sha) FROM receipts WHERE rowid > ?", (last,)).fetchone()[0]
    finally:
        conn.close()
    left = sum(len(hookrun.entries(q)) for _, q in queues)
    if not quiet:
        done = "got its receipt" if got == 1 else "got their receipts"
        typer.echo(f"{counted(got, 'queued commit')} {done} ({counted(queued - left, 'hook queue entry', 'hook queue entries')} handled)")
    if left:
        waits = "still waits" if left == 1 else "still wait"
        typer.echo(
            f"{counted(left, 'hook queue entry', 'hook queue entries')} {waits}: "
            "hooks.log in the data dir says why; fix that, then run aispend ingest again"
        )
