"""``aispend ingest``: read new log lines into the local index."""

from __future__ import annotations

import typer

from aispend.cli.common import run_ingest
from aispend.text import counted


def ingest(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every skipped line and unreadable file."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Delete the index and read every log again (usage of logs deleted since is lost)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something is wrong."),
) -> None:
    """Read Claude Code and Codex session logs into the local index (only what is new)."""
    if rebuild:
        from aispend.index.ingest import rebuild as drop
        from aispend.paths import index_path

        drop(index_path())
    conn, stats = run_ingest(verbose=verbose, quiet=quiet)
    conn.close()
    if quiet and not stats.bad_lines and not stats.unreadable:
        return
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
