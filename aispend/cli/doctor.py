"""``aispend doctor``: what is wrong with the set-up here, and the command that fixes each thing."""

from __future__ import annotations

import json

import typer

from aispend.text import counted


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Check hooks, key, index, notes, remotes and pricing; exit 1 when something needs fixing."""
    from aispend import git
    from aispend.doctor import run_checks
    from aispend.reports.render import clean

    repo = git.find_repo()
    findings = run_checks(repo)
    bad = [f for f in findings if not f.ok]
    if as_json:
        typer.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for f in findings:
            typer.echo(f"{'ok ' if f.ok else 'FIX'} {f.check:8s} {clean(f.message)}")
            if f.fix:
                typer.echo(f"             -> {clean(f.fix)}")
        typer.echo("all good" if not bad else f"{counted(len(bad), 'thing')} to fix")
    if bad:
        raise typer.Exit(1)
