"""``aispend pricing``: the model price table in use, and updating it offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aispend.errors import AispendError
from aispend.text import counted

app = typer.Typer(help="Show or update the model price table.", no_args_is_help=True, rich_markup_mode=None)

_COLS = (("input", "Input"), ("output", "Output"), ("cache_write_5m", "Write 5m"), ("cache_write_1h", "Write 1h"), ("cache_read", "Read"))


@app.command("show")
def show(
    model: Optional[str] = typer.Argument(None, metavar="MODEL", help="A model name as logs write it; omit to list the table."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the prices used for MODEL (USD per million tokens), or the whole table."""
    from rich.table import Table
    from rich.text import Text

    from aispend.cli.common import stdout
    from aispend.pricing import table as pricing_table

    t = pricing_table.load()
    out = stdout()
    if model is not None:
        price = t.lookup(model)
        if price is None:
            raise AispendError(f"no price for {model!r} in table {t.id}: its usage is reported as unpriced")
        entry = t.models[price.name]
        if as_json:
            typer.echo(json.dumps({"table": t.id, "model": model, "matched": price.name, **entry}, indent=2))
            return
        out.print(Text(f"{model} -> {price.name} ({entry.get('provider', '?')}), table {t.id}"))
        filled = entry.get("filled_from") or {}
        extra = "".join(f"; {k} from {v}" for k, v in sorted(filled.items()))
        out.print(Text(f"prices from {entry.get('source', '?')}{extra}"))
        tab = Table("tier", *[c[1] for c in _COLS], "fast x", title="USD per million tokens", title_justify="left")
        tab.add_row("standard", *[str(entry.get(k, "-")) for k, _ in _COLS], str(entry.get("fast_multiplier", "-")))
        if entry.get("above_200k"):
            tab.add_row(">200k input", *[str(entry["above_200k"].get(k, "-")) for k, _ in _COLS], "")
        out.print(tab)
        return
    if as_json:
        typer.echo(json.dumps({"id": t.id, "generated_from": t.snapshot.get("generated_from", []), "models": t.models}, indent=1))
        return
    tab = Table("Model", "Provider", *[c[1] for c in _COLS], ">200k", title=f"Price table {t.id} (USD per million tokens)", title_justify="left")
    for name in sorted(t.models):
        e = t.models[name]
        tab.add_row(Text(name), Text(str(e.get("provider", ""))), *[str(e.get(k, "-")) for k, _ in _COLS], "yes" if e.get("above_200k") else "")
    out.print(tab)


@app.command("update")
def update(
    source: Path = typer.Option(..., "--from", metavar="FILE", help="A LiteLLM model_prices_and_context_window.json, or an aispend snapshot."),
    no_reprice: bool = typer.Option(False, "--no-reprice", help="Keep the costs already in the index."),
) -> None:
    """Store a newer price table in the data dir and re-price the index (offline: give it a file)."""
    from aispend.pricing import store
    from aispend.pricing import table as pricing_table

    snapshot = store.build_from(source)
    dest = store.save(snapshot)
    t = pricing_table.load()
    typer.echo(f"stored price table {t.id} ({len(t.models)} models) in {dest}")
    if not no_reprice:
        from aispend.index import db
        from aispend.index.reprice import reprice

        conn = db.connect()
        try:
            n, unpriced = reprice(conn, t)
        finally:
            conn.close()
        typer.echo(f"re-priced {counted(n, 'request')} ({unpriced:,} still without a price)")


@app.command("reset")
def reset() -> None:
    """Forget a stored table, use the bundled snapshot again and re-price the index."""
    from aispend.index import db
    from aispend.index.reprice import reprice
    from aispend.pricing import store
    from aispend.pricing import table as pricing_table

    removed = store.reset()
    t = pricing_table.load()
    conn = db.connect()
    try:
        n, _ = reprice(conn, t)
    finally:
        conn.close()
    typer.echo(("removed the stored table; " if removed else "no stored table; ") + f"using {t.id}, re-priced {counted(n, 'request')}")
