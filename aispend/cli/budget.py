"""``aispend budget``: each budget of .aispend.toml this month, and the alerts that fire now."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer


def budget(
    as_json: bool = typer.Option(False, "--json", help="Print the JSON contract (docs/budgets.md)."),
    tz: Optional[str] = typer.Option(None, "--tz", metavar="ZONE", help="Time zone of the month and its days; default: local."),
) -> None:
    """Show budgets (allocation, spent, projection, top spenders) and alerts: spikes, runaway sessions..."""
    from aispend import git
    from aispend.cli.common import run_ingest
    from aispend.policy import config
    from aispend.policy.alerts import evaluate
    from aispend.reports.receipts import load_trust

    repo = git.find_repo()
    policy = config.load(repo.worktree)
    trust = load_trust(repo)
    conn, _ = run_ingest(quiet=True)
    try:
        res = evaluate(repo, policy, trust, conn, tz)
    finally:
        conn.close()
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(render(res, policy.path is not None))


def render(res: dict[str, Any], configured: bool) -> str:
    from aispend.reports.render import clean

    out = []
    if not res["trust"]["signers_checked"]:
        out.append("WARNING: no allowed-signers list: signers were not checked, so no receipt counts toward a budget")
    out.append(f"budgets for {res['period']}:" if res["budgets"] else "no budgets (add them to .aispend.toml: docs/budgets.md)")
    for b in res["budgets"]:
        share = 100 * b["spent_usd"] / b["monthly_usd"]
        mark = {"ok": "ok  ", "soft": "SOFT", "hard": "HARD"}[b["status"]]
        out.append(
            f"  {mark} {b['scope']:6s} {clean(b['name'])}: ${b['spent_usd']:,.2f} of ${b['monthly_usd']:,.2f} ({share:.0f}%), "
            f"projected ${b['projected_usd']:,.2f}"
            + (f"; top: {', '.join(clean(t['author']) for t in b['top'])}" if b["top"] else "")
        )
    out.append("alerts:" if res["alerts"] else "no alerts")
    out += [f"  ! {clean(a['message'])}" for a in res["alerts"]]
    return "\n".join(out)
