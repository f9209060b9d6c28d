"""``aispend show [REV]``: the AI spend a commit carries, and whether its receipts check out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from aispend.text import counted


def show(
    rev: str = typer.Argument("HEAD", help="The commit (any revision git understands)."),
    allowed_signers: Optional[Path] = typer.Option(None, "--allowed-signers", metavar="FILE", help="Trusted signers (ssh-keygen's allowed-signers format)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (docs/receipt.md) instead of a table."),
) -> None:
    """Show the receipts attached to a commit: cost, tokens, sessions, models, signature status."""
    from aispend import git
    from aispend.cli.common import stdout
    from aispend.reports.receipts import commit_view, load_trust

    repo = git.find_repo()
    # Receipts of the last commits may still be in the making (hooks work in the background).
    from aispend.hookrun import wait_idle

    wait_idle(repo.git_dir)
    view = commit_view(repo, rev, load_trust(repo, allowed_signers))
    if as_json:
        typer.echo(json.dumps(view, indent=2, ensure_ascii=False))
        return
    render(view, stdout())


def render(view: dict[str, Any], out: Any) -> None:
    """The people's view of ``commit_view``: every string from a note is cleaned and printed as text."""
    from rich.table import Table
    from rich.text import Text

    from aispend.reports.render import clean

    def say(text: str) -> None:
        out.print(Text(text))

    sha = view["commit"]
    if not view["receipts"]:
        status = view["verification"]["status"]
        if status == "none":
            say(f"commit {sha[:12]}: no AI spend receipt")
        else:
            say(f"commit {sha[:12]}: no readable receipt ({status})")
            for p in view["verification"]["problems"]:
                say(f"  {clean(p)}")
        return
    t = view["totals"]
    say(f"commit {sha[:12]}  author {clean(view['author'])}")
    n = t["requests"]
    say(f"AI spend ${t['cost_usd']:,.4f}  ·  {t['total_tokens']:,} tokens in {counted(n, 'request')}")
    fed = t["input_tokens"] + t["cache_creation_tokens"] + t["cache_read_tokens"]
    hit = f"{100 * t['cache_read_tokens'] / fed:.0f}%" if fed else "n/a"
    say(
        f"input {t['input_tokens']:,}  cache writes {t['cache_creation_tokens']:,}  cache reads {t['cache_read_tokens']:,}"
        f"  output {t['output_tokens']:,} (reasoning {t['reasoning_tokens']:,})  cache-hit rate {hit}"
    )
    if t["unpriced_tokens"]:
        say(f"unpriced: {t['unpriced_tokens']:,} tokens of models with no known price (not in the cost)")
    table = Table(show_edge=False, pad_edge=False, box=None)
    # No per-row times: the span line says when, and the models keep their full names at 80 columns.
    for col in ("tool", "session", "model", "requests", "tokens", "cost"):
        table.add_column(col, justify="right" if col in ("requests", "tokens", "cost") else "left")
    spans: list[str] = []
    for r in view["receipts"]:
        for s in r["sessions"]:
            spans += [s["first_ts"], s["last_ts"]]
            for m in s["models"]:
                cost = "unpriced" if m["cost_usd"] is None else f"${m['cost_usd']:,.4f}"
                table.add_row(
                    Text(clean(s["tool"])), Text(clean(s["session"])[:13]), Text(clean(m["model"])),
                    f"{m['requests']:,}", f"{m['total_tokens']:,}", cost,
                )
    out.print(table)
    if spans:
        say(f"time span {clean(min(spans))[:19]} .. {clean(max(spans))[:19]} (UTC)")
    for r in view["receipts"]:
        v = r["verification"]
        signer = r.get("signer") or {}
        who = clean(str(signer.get("principal", "nobody")))
        say(f"receipt signed by {who}: {v['status']}" + (f" ({clean(v['problems'][0])})" if v["problems"] else ""))
        if r["carried_from"]:
            say(f"  carries {counted(len(r['carried_from']), 'receipt')} of rewritten commits")
    extra = [p for p in view["verification"]["problems"] if not p.startswith("receipt ")]
    for p in extra:
        say(f"note: {clean(p)}")
