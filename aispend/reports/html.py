"""``aispend report --format html``: one self-contained page (inline CSS and SVG, no network).

Made for someone who never used a terminal: the total first, then the calendar of
daily spend, the model mix, the cost per commit over time, the top commits and the
outliers. Every string from a receipt or a commit is cleaned (no control, bidi or invisible
character) and escaped (``_t``); cells are built from ``_t`` output or our own numbers only.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from aispend.reports.render import clean, trust_warnings

_GREENS = ("#ebedf0", "#9be9a8", "#40c463", "#30a14e", "#216e39")

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;margin:32px auto;max-width:1040px;padding:0 16px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px}
.sub{color:#59636e;margin-bottom:18px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d1d9e0;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin-top:12px}
.bar{height:14px;background:#40c463;border-radius:3px}
"""


def _t(value: object) -> str:
    """Text from a note or a commit for HTML: cleaned as for a terminal, then escaped, quotes too."""
    return escape(clean(str(value)), quote=True)


def _money(v: float) -> str:
    return f"${v:,.2f}" if v >= 0.01 or v == 0 else f"${v:,.4f}"


def render_html(rep: dict[str, Any]) -> str:
    t = rep["totals"]
    title = f"AI spend {_t(rep['since'] or 'from the start')} to {_t(rep['until'] or 'today')}"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}: {_money(t['cost_usd'])}</h1>",
        f"<div class=sub>commits: {_t(rep['range'])} · time zone {_t(rep['tz'])} · from the signed receipts in the notes</div>",
        "<div class=cards>",
        _card("total spend", _money(t["cost_usd"])),
        _card("commits with a receipt", f"{t['commits_with_receipts']:,} of {t['commits']:,}"),
        _card("median per commit", _money(t["cost_per_commit"]["median"])),
        _card("90th percentile", _money(t["cost_per_commit"]["p90"])),
        _card("cache-hit rate", f"{100 * t['cache_hit_rate']:.0f}%"),
        _card("tokens", f"{t['total_tokens']:,}"),
        "</div>",
    ]
    # Signers not checked, receipts left out or failing: said before any number is read.
    parts[2:2] = [f"<div class=warn>{_t(w)}</div>" for w in trust_warnings(rep)]
    trend = rep.get("trend")
    if trend and trend["change"] is not None:
        parts.append(
            f"<p>Previous period ({_t(trend['previous_since'])} to {_t(trend['previous_until'])}): "
            f"{_money(trend['previous_cost_usd'])}, change {100 * trend['change']:+.0f}%.</p>"
        )
    parts += ["<h2>Daily spend</h2>", _calendar(rep)]
    if t["models"]:
        parts += ["<h2>Model mix</h2>", _table(
            [],
            [[_t(m["model"]), _money(m["cost_usd"]), f"{100 * m['share']:.0f}%",
              f"<div class=bar style='width:{max(1, round(300 * m['share']))}px'></div>"] for m in t["models"]],
            numeric={1, 2},
        )]
    if rep["daily"]:
        parts += ["<h2>Cost per commit over time</h2>", _trend_svg(rep["daily"])]
    if rep["top_commits"]:
        parts += ["<h2>Top commits</h2>", _table(
            ["commit", "day", "author", "subject", "cost"],
            [[f"<code>{_t(c['commit'][:12])}</code>", _t(c["day"]), _t(c["author"]), _t(c["subject"][:80]),
              _money(c["cost_usd"])] for c in rep["top_commits"]],
            numeric={4},
        )]
    if rep["outliers"]:
        parts += ["<h2>Outliers</h2><p>Commits costing more than 8 times the median commit.</p>", _table(
            [],
            [[f"<code>{_t(o['commit'][:12])}</code>", _t(o["author"]), _t(o["subject"][:80]), _money(o["cost_usd"]),
              f"{o['times_median']}x"] for o in rep["outliers"]],
            numeric={3, 4},
        )]
    if rep["rows"]:
        parts += [f"<h2>By {_t(rep['group_by'])}</h2>", _table(
            [_t(rep["group_by"]), "commits", "cost", "tokens"],
            [[_t(str(r["key"])), f"{r['commits']:,}", _money(r["cost_usd"]), f"{r['total_tokens']:,}"] for r in rep["rows"]],
            numeric={1, 2, 3},
        )]
    parts.append("</body></html>\n")
    return "".join(parts)


def _table(head: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    """A table of cells already escaped; ``numeric`` columns are right-aligned."""
    def cells(tag: str, values: list[str]) -> str:
        return "".join(f"<{tag}{' class=n' if i in numeric else ''}>{v}</{tag}>" for i, v in enumerate(values))

    out = ["<table>"]
    if head:
        out.append(f"<tr>{cells('th', head)}</tr>")
    out += [f"<tr>{cells('td', r)}</tr>" for r in rows]
    return "".join(out) + "</table>"


def _card(label: str, value: str) -> str:
    return f"<div class=card>{_t(label)}<b>{_t(value)}</b></div>"


def _calendar(rep: dict[str, Any]) -> str:
    """The daily heatmap as SVG: a column per week, a row per weekday."""
    cost = {d["day"]: d["cost_usd"] for d in rep["daily"]}
    if not cost and not rep["since"]:
        return "<p>No spend in this range.</p>"
    first = date.fromisoformat(rep["since"]) if rep["since"] else date.fromisoformat(min(cost))
    last = date.fromisoformat(rep["until"]) if rep["until"] else max([first, *[date.fromisoformat(d) for d in cost]])
    first = max(first, last - timedelta(weeks=52))
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    spent = sorted(v for v in cost.values() if v > 0)
    cell, gap, left = 13, 3, 34
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{left + weeks * (cell + gap)}' height='{7 * (cell + gap) + 4}' role=img>"]
    for wd, name in enumerate(("Mon", "", "Wed", "", "Fri", "", "")):
        if name:
            out.append(f"<text x='0' y='{wd * (cell + gap) + 11}' font-size='10' fill='#59636e'>{name}</text>")
    for w in range(weeks):
        for wd in range(7):
            d = start + timedelta(days=7 * w + wd)
            if d < first or d > last:
                continue
            v = cost.get(d.isoformat(), 0.0)
            lv = 0 if v <= 0 or not spent else min(4, 1 + int(sum(1 for x in spent if x <= v) / len(spent) * 4 - 1e-9))
            out.append(
                f"<rect x='{left + w * (cell + gap)}' y='{wd * (cell + gap)}' width='{cell}' height='{cell}' rx='2' "
                f"fill='{_GREENS[lv]}'><title>{d.isoformat()}: {_money(v)}</title></rect>"
            )
    out.append("</svg>")
    return "".join(out)


def _trend_svg(daily: list[dict[str, Any]]) -> str:
    """Mean cost per receipted commit, day by day, as a line."""
    points = [(d["day"], d["cost_usd"] / d["commits"]) for d in daily if d["commits"]]
    if not points:
        return ""
    w, h, pad = 900, 180, 30
    top = max(v for _, v in points) or 1.0
    n = len(points)
    xy = [
        (pad + (w - 2 * pad) * (i / (n - 1) if n > 1 else 0.5), h - pad - (h - 2 * pad) * v / top)
        for i, (_, v) in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='#30a14e'><title>{_t(day)}: {_money(v)} per commit</title></circle>"
        for (x, y), (day, v) in zip(xy, points)
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role=img>"
        f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#d1d9e0'/>"
        f"<text x='{pad}' y='14' font-size='11' fill='#59636e'>max {_money(top)} per commit</text>"
        f"<text x='{pad}' y='{h - 8}' font-size='11' fill='#59636e'>{_t(points[0][0])}</text>"
        f"<text x='{w - pad}' y='{h - 8}' font-size='11' fill='#59636e' text-anchor='end'>{_t(points[-1][0])}</text>"
        f"<polyline fill='none' stroke='#30a14e' stroke-width='2' points='{line}'/>{dots}</svg>"
    )
