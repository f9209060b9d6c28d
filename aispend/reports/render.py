"""Turn reports into JSON, CSV and rich tables. JSON is the contract; tables are for people."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import TYPE_CHECKING

from aispend.reports.usage import FIELDS, Totals, UsageReport

if TYPE_CHECKING:
    from rich.console import Console

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Untrusted text (from a log or a note) made safe to print: no control characters."""
    return _CONTROL.sub("?", text)


def usage_json(rep: UsageReport) -> str:
    return json.dumps(rep.as_dict(), indent=2, ensure_ascii=False)


def usage_csv(rep: UsageReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *FIELDS])
    for r in rep.rows:
        d = r.totals.as_dict()
        w.writerow([r.key, *[(";".join(d[f]) if f == "unpriced_models" else d[f]) for f in FIELDS]])
    return buf.getvalue()


def _money(t: Totals) -> str:
    s = f"${t.cost_usd:,.2f}"
    return s + "*" if t.unpriced_tokens else s


def _n(v: int) -> str:
    """Token counts for people: exact up to 99,999, then 123.4K, 12.3M, 1.23B (JSON stays exact)."""
    if v < 100_000:
        return f"{v:,}"
    if v < 1_000_000:
        return f"{v / 1e3:.1f}K"
    if v < 1_000_000_000:
        return f"{v / 1e6:.1f}M"
    return f"{v / 1e9:.2f}B"


def usage_table(rep: UsageReport, console: "Console", empty_message: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    title_range = ""
    d = rep.as_dict()
    if d["since"] or d["until"]:
        title_range = f" {d['since'] or '…'} to {d['until'] or '…'}"
    table = Table(
        title=f"AI usage by {rep.group_by}{title_range} ({d['tz']})" + (f", {rep.tool} only" if rep.tool else ""),
        title_justify="left",
        show_footer=bool(rep.rows),
        header_style="bold",
    )
    table.add_column(rep.group_by.capitalize(), footer="Total", overflow="fold")
    cols = [
        ("Reqs", "requests"),
        ("Input", "input_tokens"),
        ("Output", "output_tokens"),
        ("Cache write", "cache_creation_tokens"),
        ("Cache read", "cache_read_tokens"),
    ]
    if console.width >= 100:
        cols.append(("Total tokens", "total_tokens"))
    for label, attr in cols:
        table.add_column(label, justify="right", footer=_n(getattr(rep.totals, attr)), no_wrap=True)
    table.add_column("Cost", justify="right", footer=_money(rep.totals), no_wrap=True)
    for r in rep.rows:
        key = Text(clean(r.key))
        table.add_row(key, *[_n(getattr(r.totals, a)) for _, a in cols], _money(r.totals))
    if not rep.rows:
        console.print(empty_message or ("No usage in this range." if (d["since"] or d["until"]) else "No usage found in the index."))
        return
    console.print(table)
    if rep.totals.unpriced_tokens:
        models = ", ".join(clean(m) for m in sorted(rep.totals.unpriced_models))
        console.print(
            Text(
                f"* {rep.totals.unpriced_tokens:,} tokens have no price and are not in the costs: {models}. "
                "A newer table: aispend pricing update --from FILE"
            )
        )
