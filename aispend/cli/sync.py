"""``aispend sync [REMOTE]``: exchange receipts with a remote (fetch, merge every line, push)."""

from __future__ import annotations

from typing import Optional

import typer


def sync(
    remote: Optional[str] = typer.Argument(None, help="The remote (default: the branch's upstream remote, else origin)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing unless something is wrong."),
) -> None:
    """Fetch the remote's receipts, merge them with yours line by line, push the union (never forced)."""
    from aispend import git
    from aispend.notes.sync import sync as run
    from aispend.text import counted

    repo = git.find_repo()
    res = run(repo, remote)
    if quiet:
        return
    got = "merged theirs" if res.merged else ("nothing new from it" if res.fetched else "it had none")
    sent = "pushed ours" if res.pushed else "it had all of ours"
    # A removal upstream is never adopted: say so, since the lines reappear there.
    n = res.restored
    lost = f"; the remote had lost {counted(n, 'receipt line')}: published {'it' if n == 1 else 'them'} again" if n else ""
    typer.echo(f"receipts synced with {res.remote}: {got}, {sent}{lost}")
