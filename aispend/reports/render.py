"""Turn reports into JSON, CSV and rich tables. JSON is the contract; tables are for people.

Every string from a log or a note is untrusted (anyone who can push notes writes receipts), so
what leaves here passes one of three rules: ``clean`` (terminals and every text format),
``md_text`` (Markdown for pull-request comments) or ``csv_cell`` (spreadsheets).
"""

from __future__ import annotations

import csv
import io
import json
import string
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aispend.reports.usage import FIELDS, Totals, UsageReport
from aispend.text import counted

if TYPE_CHECKING:
    from rich.console import Console

#: Not plain text: controls (C0, DEL, C1), format characters (bidi overrides, zero-width
#: characters, BOM, tags), surrogates, private use, unassigned, line and paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean(text: str) -> str:
    """Untrusted text (from a log or a note) made safe to print: every character that is not
    plain printable text becomes "?", so nothing can move the cursor, recolour, hyperlink
    (OSC 8), reorder (bidi) or hide text in a terminal, an editor or a browser."""
    if text.isprintable():  # the usual case; isprintable is stricter (it also refuses Zs but " ")
        return text
    return "".join("?" if unicodedata.category(ch) in _NOT_TEXT else ch for ch in text)


_MD_PUNCT = frozenset(string.punctuation)
#: Forges link these after rendering, on the text (a backslash does not stop them): @user,
#: @org/team, #123 (GitHub, GitLab); !12, ~label, %milestone, $snippet, &epic (GitLab);
#: :emoji:, and scheme://... (GitLab's autolinker). A zero-width space after the sigil,
#: written as an entity so the Markdown itself stays plain ASCII, breaks them.
_ALWAYS_BREAK = frozenset("@#")
_BREAK_BEFORE_WORD = frozenset("!~%$&:")
_ZWSP = "&#8203;"


def md_text(value: object) -> str:
    """A value from a note or a commit as Markdown (GitHub, GitLab) that renders as exactly its
    cleaned text: every ASCII punctuation character is backslash-escaped (CommonMark allows it for
    all of them), so no link, image, autolink, HTML tag or entity, emphasis or table break can
    form; then mentions, issue references, emoji and scheme autolinks, which forges find in
    the rendered text, are broken by a zero-width space."""
    text = clean(str(value))
    out = []
    for i, ch in enumerate(text):
        if ch not in _MD_PUNCT:
            out.append(ch)
            continue
        out.append("\\" + ch)
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if not nxt or nxt.isspace():
            continue
        if (
            ch in _ALWAYS_BREAK
            or (ch in _BREAK_BEFORE_WORD and (nxt.isalnum() or nxt in "_\"'+-/"))
            or (ch == "-" and nxt.isdigit() and text[max(0, i - 2):i].lower() == "gh")  # GH-123
            or (ch == "." and text[max(0, i - 3):i].lower() == "www")  # www.example.com
        ):
            out.append(_ZWSP)
    return "".join(out)


#: Spreadsheets run a cell starting with these as a formula (OWASP, CSV injection), also the
#: full-width and small forms some of them fold to ASCII; tab and CR are cleaned away anyway.
_FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b")


def csv_cell(value: object) -> Any:
    """One CSV cell: numbers stay numbers, booleans are true/false, None is empty, text is
    cleaned and, when a spreadsheet would read it as a formula (even after leading spaces),
    prefixed with a single quote so that it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = clean(str(value))
    start = text.lstrip()
    if start and start[0] in _FORMULA_START:
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document whose every cell went through ``csv_cell`` (the header too)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(h) for h in header])
    for r in rows:
        w.writerow([csv_cell(v) for v in r])
    return buf.getvalue()


def trust_warnings(rep: dict[str, Any]) -> list[str]:
    """What a reader must know before any number of a spend report, as plain sentences (each
    format escapes them its own way): signers that were not checked, receipts left out, receipts
    that failed verification. ``trust`` (one repository's, or ``{"repositories": [...]}``),
    ``signers_checked`` and ``not_counted`` are read with .get: older reports lack them."""
    totals = rep.get("totals") or {}
    trust = rep.get("trust") or {}
    each = trust.get("repositories") or ([trust] if trust else [])
    checked = rep.get("signers_checked", trust.get("signers_checked", True))
    out = [str(n) for n in rep.get("notes") or []]  # receipts not fetched, or not merged
    if checked is False or any(t.get("signers_checked") is False for t in each):
        why: list[str] = []
        for t in each:
            if t.get("signers_checked") is False:
                problems = [str(p) for p in t.get("problems") or []]
                for w in ["no allowed-signers list"] if t.get("allowed_signers") is None else problems:
                    if w not in why:
                        why.append(w)
        out.append("Signers not checked" + (f": {'; '.join(why)}" if why else ""))
    nc = totals.get("not_counted") or {}
    left_out = int(nc.get("receipts") or 0)
    if left_out:
        claimed = float(nc.get("claimed_cost_usd", nc.get("cost_usd")) or 0)
        by_status = sorted((nc.get("by_status") or {}).items(), key=lambda kv: (-kv[1], str(kv[0])))
        detail = ", ".join(f"{n} {status}" for status, n in by_status)
        out.append(
            f"{counted(left_out, 'receipt')} (${claimed:,.2f} claimed) not counted"
            + (f": {detail}" if detail else "") + " (aispend verify)"
        )
    failed = int(totals.get("failed_receipts") or 0)
    if failed > left_out:  # failures the line above does not already account for
        out.append(f"{counted(failed, 'receipt')} failed verification (aispend verify)")
    return out


def usage_json(rep: UsageReport) -> str:
    return json.dumps(rep.as_dict(), indent=2, ensure_ascii=False)


def usage_csv(rep: UsageReport) -> str:
    rows: list[list[object]] = []
    for r in rep.rows:
        d = r.totals.as_dict()
        rows.append([r.key, *[(";".join(d[f]) if f == "unpriced_models" else d[f]) for f in FIELDS]])
    return csv_text(["key", *FIELDS], rows)


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
