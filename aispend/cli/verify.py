"""``aispend verify [RANGE]``: check every receipt in a range of commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aispend.text import counted


def verify(
    revs: Optional[list[str]] = typer.Argument(None, metavar="[RANGE]...", help="Commits as git log takes them (default: HEAD's history)."),
    allowed_signers: Optional[Path] = typer.Option(None, "--allowed-signers", metavar="FILE", help="Trusted signers (ssh-keygen's allowed-signers format)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check every note line of a range: canonical form, schema, signature, allowed signer, commit and tree, sums, duplicates. Exit 1 on any failure."""
    from aispend import git
    from aispend.reports.receipts import load_trust, verify_range
    from aispend.reports.render import clean

    repo = git.find_repo()
    # Receipts of the last commits may still be in the making (hooks work in the background).
    from aispend.hookrun import wait_idle

    wait_idle(repo.git_dir)
    trust = load_trust(repo, allowed_signers)
    res = verify_range(repo, revs or ["HEAD"], trust)
    from aispend.reports.receipts import notes_warning

    warning = notes_warning(repo)
    if as_json:
        typer.echo(json.dumps({
            "commits": res.commits, "commits_with_receipts": res.with_receipts, "receipts": res.receipts,
            "by_status": res.by_status, "counted": res.counted, "carried": res.carried, "unresolved": res.unresolved,
            "allowed_signers": trust.source, "trust": trust.describe(), "notes": warning,
            "failures": res.failures, "ok": res.ok,
        }, indent=2, ensure_ascii=True))
    else:
        say = typer.echo
        if warning:
            say(f"note: {warning}")
        for f in res.failures:
            say(f"{f['commit'][:12]} receipt {f['line']}: {f['status']}: {clean('; '.join(f['problems']) or f['status'])}")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(res.by_status.items()))
        say(f"{counted(res.commits, 'commit')}, {res.with_receipts:,} with receipts, {counted(res.receipts, 'receipt')}" + (f": {counts}" if counts else ""))
        if res.receipts:
            say(f"{res.counted:,} counted, {res.carried:,} carried into others")
        if res.unresolved:
            say(f"WARNING: {counted(res.unresolved, 'carried receipt')} held by two receipts could not be found here to count once: run aispend sync")
        if trust.source is None and res.receipts:
            say("WARNING: no allowed-signers list (--allowed-signers, .aispend/allowed_signers or gpg.ssh.allowedSignersFile):")
            say("WARNING: signatures were checked, but no signer's identity was, so no receipt counts")
        else:
            say(f"trust: {clean(trust.sentence())}")
        for p in trust.problems:
            say(f"allowed signers: {clean(p)}")
        if not res.ok:
            say(f"FAILED: {counted(len(res.failures), 'receipt')}")
        else:
            say("OK" if trust.checked or not res.receipts else "OK: no line fails, but no signer was checked")
    if not res.ok:
        raise typer.Exit(1)
