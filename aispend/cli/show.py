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
    strict: bool = typer.Option(False, "--strict", help="Exit 1 unless the verdict is VALID (every receipt valid and trusted)."),
) -> None:
    """Show the receipts attached to a commit: the verdict first, then cost, tokens, sessions, models."""
    from aispend import git
    from aispend.cli.common import stdout
    from aispend.reports.receipts import commit_view, load_trust

    repo = git.find_repo()
    # Receipts of the last commits may still be in the making (hooks work in the background).
    from aispend.hookrun import queued_commits, wait_idle

    wait_idle(repo.git_dir)
    view = commit_view(repo, rev, load_trust(repo, allowed_signers))
    # A receipt the hooks have not written yet (the index or the key was unusable): say so.
    view["queued"] = view["commit"] in queued_commits(repo.git_dir)
    if as_json:
        typer.echo(json.dumps(view, indent=2, ensure_ascii=True))
    else:
        render(view, stdout())
    if strict and view["verdict"] != "VALID":
        raise typer.Exit(1)


def render(view: dict[str, Any], out: Any) -> None:
    """The people's view of ``commit_view``: every string from a note is cleaned and printed as text."""
    from rich.table import Table
    from rich.text import Text

    from aispend.reports.render import clean

    def say(text: str) -> None:
        out.print(Text(text))

    sha = view["commit"]
    trust = view["trust"]
    if view["notes"]:
        say(f"note: {view['notes']}")
    if not view["receipts"]:
        status = view["verification"]["status"]
        if status == "none" and view.get("queued"):
            say(f"commit {sha[:12]}: receipt not written yet: its hook entry waits in the queue (aispend-queue in the git dir)")
            say("  hooks.log in the data dir says why; 'aispend doctor' says what to do")
        elif status == "none":
            say(f"commit {sha[:12]}: no AI spend receipt")
        else:
            say(f"commit {sha[:12]}: INVALID: no readable receipt")
            for p in view["verification"]["problems"]:
                say(f"  {clean(p)}")
        return
    say(f"commit {sha[:12]}  author {clean(view['author'])}")
    say(_verdict_line(view))
    t = view["totals"]
    apart = view["not_counted"]
    n = t["requests"]
    say(f"AI spend ${t['cost_usd']:,.4f}  ·  {t['total_tokens']:,} tokens in {counted(n, 'request')}")
    if apart["receipts"]:
        why = ", ".join(f"{v} {k}" for k, v in apart["by_status"].items())
        say(f"not counted: {counted(apart['receipts'], 'receipt')} ({why}) claiming ${apart['claimed_cost_usd']:,.4f}")
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
                # Whether it counts is said per receipt below (and first, in the verdict).
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
        fp = v.get("key_fingerprint") or "no key"
        fate = "counted" if v["counted"] else "not counted"
        say(f"receipt signed by {who} ({fp}): {v['status']}, {fate}" + (f" ({clean(v['problems'][0])})" if v["problems"] else ""))
        if r["carried_from"]:
            say(f"  carries {counted(len(r['carried_from']), 'receipt')} of rewritten commits")
    extra = [p for p in view["verification"]["problems"] if not p.startswith("receipt ")]
    for p in extra:
        say(f"note: {clean(p)}")
    say(f"trust: {clean(trust['allowed_signers'] or 'none')}" if trust["signers_checked"] else "trust: no allowed-signers list")


def _verdict_line(view: dict[str, Any]) -> str:
    """The first thing a reviewer reads: the verdict, and why."""
    from aispend.reports.render import clean

    verdict = view["verdict"]
    trust = view["trust"]
    if verdict == "VALID":
        who = sorted({clean(str((r.get("signer") or {}).get("principal", "?"))) for r in view["receipts"]})
        return f"VALID: signed by {', '.join(who)}, trusted by {clean(trust['allowed_signers'] or '?')}"
    if verdict == "UNCHECKED":
        return "UNCHECKED: no allowed-signers list: signers were not checked and no receipt counts (aispend install creates .aispend/allowed_signers)"
    first = next((p for p in view["verification"]["problems"] if p.startswith("receipt ")), "")
    if verdict == "UNTRUSTED":
        return f"UNTRUSTED: a receipt's signer is not trusted by {clean(trust['allowed_signers'] or '?')}; its spend is not counted" + (f" ({clean(first)})" if first else "")
    return "INVALID: a receipt failed verification; it is not counted" + (f" ({clean(first)})" if first else "")
