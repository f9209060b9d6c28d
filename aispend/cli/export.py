"""``aispend export``: one row per receipt and model, for a warehouse or a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import typer

from aispend.errors import AispendError

COLUMNS = (
    "commit", "author", "committed_at", "receipt", "status", "counted", "carried", "tool", "session", "model",
    "requests", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
    "reasoning_tokens", "total_tokens", "unpriced_tokens", "cost_usd",
)


def export(
    revs: Optional[list[str]] = typer.Argument(None, metavar="[RANGE]...", help="Commits as git log takes them (default: HEAD's history)."),
    all_refs: bool = typer.Option(False, "--all", help="Every branch, tag and remote-tracking branch (not notes refs or the stash)."),
    fmt: str = typer.Option("jsonl", "--format", metavar="FORMAT", help="jsonl or csv."),
    output: Optional[Path] = typer.Option(None, "--output", metavar="FILE", help="Write here instead of printing."),
    allowed_signers: Optional[Path] = typer.Option(None, "--allowed-signers", metavar="FILE", help="Trusted signers."),
) -> None:
    """Write one row per receipt and model: commit, author, verification status, tokens, cost."""
    from aispend import git
    from aispend.reports.receipts import load_trust
    from aispend.reports.spend import export_rows

    if fmt not in ("jsonl", "csv"):
        raise AispendError(f"--format {fmt!r}: choose jsonl or csv")
    repo = git.find_repo()
    rows = export_rows(repo, list(git.ALL_COMMITS) if all_refs else (revs or ["HEAD"]), load_trust(repo, allowed_signers))
    if fmt == "jsonl":
        # Exact data, non-ASCII escaped: no control or bidi character from a note reaches a terminal raw.
        text = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows)
    else:
        from aispend.reports.render import csv_cell

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        # Every cell through csv_cell: cleaned, formulas kept as text, booleans as true/false.
        w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
        text = buf.getvalue()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise AispendError(f"cannot write {output}: {e.strerror}") from None
    typer.echo(f"{len(rows)} rows written to {output}")
