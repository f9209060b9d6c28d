"""``aispend usage``: tokens and dollars from the agents' logs, grouped by day, model, session..."""

from __future__ import annotations

from typing import Optional

import typer

from aispend.errors import AispendError


def usage(
    since: Optional[str] = typer.Option(None, "--since", metavar="DATE|SPAN", help="First day, inclusive: 30d (today and 29 days before), 4w, or YYYY-MM-DD."),
    until: Optional[str] = typer.Option(None, "--until", metavar="DATE|SPAN", help="Last day, inclusive: YYYY-MM-DD or a span such as 7d."),
    by: str = typer.Option("day", "--by", metavar="GROUP", help="Group rows by day, week, month, model, session, repo or tool."),
    tool: Optional[str] = typer.Option(None, "--tool", metavar="TOOL", help="Only one agent: claude or codex."),
    tz: Optional[str] = typer.Option(None, "--tz", metavar="ZONE", help="Time zone for days (IANA name or UTC); default: local."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON contract (docs/usage.md) instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the rows as CSV."),
    no_ingest: bool = typer.Option(False, "--no-ingest", help="Report the index as it is; read no logs first."),
) -> None:
    """Show token usage and cost (reads new log lines first)."""
    from aispend.reports import usage as report
    from aispend.reports.timerange import day_range

    if by not in report.GROUPS:
        raise AispendError(f"--by {by!r}: choose one of {', '.join(report.GROUPS)}")
    if tool is not None and tool not in report.TOOLS:
        raise AispendError(f"--tool {tool!r}: choose one of {', '.join(report.TOOLS)}")
    if as_json and as_csv:
        raise AispendError("--json and --csv exclude each other")
    rng = day_range(since, until, tz)
    if no_ingest:
        from aispend.index import db

        conn = db.connect()
    else:
        from aispend.cli.common import run_ingest

        conn, _stats = run_ingest(quiet=as_json or as_csv)
    try:
        rep = report.usage_report(conn, rng, by, tool)
        empty = report.empty_hint(conn, rng, tool) if not rep.rows else None
    finally:
        conn.close()
    from aispend.reports import render

    if as_json:
        typer.echo(render.usage_json(rep))
    elif as_csv:
        typer.echo(render.usage_csv(rep), nl=False)
    else:
        from aispend.cli.common import stdout

        render.usage_table(rep, stdout(), empty)
