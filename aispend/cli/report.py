"""``aispend report``: the team's AI spend, read from the receipts in the notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from aispend.errors import AispendError
from aispend.text import counted

FORMATS = ("table", "json", "csv", "md", "html")


def report(
    revs: Optional[list[str]] = typer.Argument(None, metavar="[RANGE]...", help="Commits as git log takes them (default: HEAD's history)."),
    all_refs: bool = typer.Option(False, "--all", help="Every branch, tag and remote-tracking branch (git log --all, without notes refs and the stash)."),
    branch: Optional[str] = typer.Option(None, "--branch", metavar="BRANCH", help="The history of this branch."),
    repos: Optional[list[Path]] = typer.Option(None, "--repo", metavar="PATH", help="Report over this repository (repeat for several; default: the current one)."),
    since: Optional[str] = typer.Option("30d", "--since", metavar="DATE|SPAN", help="First day, by commit date, inclusive: 30d, 4w, YYYY-MM-DD."),
    until: Optional[str] = typer.Option(None, "--until", metavar="DATE|SPAN", help="Last day, inclusive."),
    by: str = typer.Option("author", "--by", metavar="GROUP", help="Group rows by author, model, tool, day, week, month, commit, session or branch."),
    author: Optional[str] = typer.Option(None, "--author", metavar="EMAIL", help="Only this author's commits."),
    verified_only: bool = typer.Option(False, "--verified-only", help="Kept for scripts: only trusted, valid receipts ever count (the default)."),
    unshipped: bool = typer.Option(False, "--unshipped", help="From the local index: what was spent in this repository's worktrees on code the default branch (or --branch) does not carry."),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table, json, csv, md, or html (one self-contained page)."),
    output: Optional[Path] = typer.Option(None, "--output", metavar="FILE", help="Write the report here instead of printing it."),
    tz: Optional[str] = typer.Option(None, "--tz", metavar="ZONE", help="Time zone for days (IANA name or UTC); default: local."),
    allowed_signers: Optional[Path] = typer.Option(None, "--allowed-signers", metavar="FILE", help="Trusted signers (ssh-keygen's allowed-signers format)."),
) -> None:
    """Show the AI spend the receipts record: per author, model, day..., with outliers and anomalies."""
    from aispend import git
    from aispend.reports import spend
    from aispend.reports.receipts import load_trust
    from aispend.reports.timerange import day_range

    if by not in spend.GROUPS:
        raise AispendError(f"--by {by!r}: choose one of {', '.join(spend.GROUPS)}")
    if fmt not in FORMATS:
        raise AispendError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if unshipped:
        _unshipped(branch, since, until, tz, fmt, allowed_signers)
        return
    if sum(bool(x) for x in (revs, all_refs, branch)) > 1:
        raise AispendError("give one of RANGE, --all or --branch")
    range_revs = list(git.ALL_COMMITS) if all_refs else [branch] if branch else (revs or ["HEAD"])
    sources = []
    paths: list[Path | None] = list(repos) if repos else [None]
    for path in paths:
        repo = git.find_repo(path)
        if range_revs == ["HEAD"] and git.ok(["rev-parse", "-q", "--verify", "HEAD"], repo.worktree) is None:
            raise AispendError(f"{repo.worktree} has no commits yet")
        sources.append((repo, range_revs, load_trust(repo, allowed_signers)))
    rep = spend.report(sources, day_range(since, until, tz), by, author, verified_only)
    rep["alerts"] = _alerts(sources, tz)
    text = render(rep, fmt)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise AispendError(f"cannot write {output}: {e.strerror}") from None
        typer.echo(f"report written to {output}")
    else:
        typer.echo(text, nl=False)


def _unshipped(branch: str | None, since: str | None, until: str | None, tz: str | None, fmt: str, allowed_signers: Path | None) -> None:
    from aispend import git
    from aispend.cli.common import run_ingest
    from aispend.reports.render import clean
    from aispend.reports.timerange import day_range
    from aispend.reports.receipts import load_trust
    from aispend.reports.unshipped import default_branch, unshipped

    repo = git.find_repo()
    trust = load_trust(repo, allowed_signers)
    conn, _ = run_ingest(quiet=True)
    try:
        res = unshipped(conn, repo, branch or default_branch(repo), day_range(since, until, tz), trust)
    finally:
        conn.close()
    if fmt == "json":
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(
        f"spent here on code that {clean(res['default_branch'])} does not carry: ${res['cost_usd']:,.2f} "
        f"({res['requests']:,} requests, {res['never_committed']:,} never committed, {res['total_tokens']:,} tokens)"
    )
    for s in res["sessions"][:10]:
        typer.echo(f"  {clean(s['session'])}  ${s['cost_usd']:,.2f}")


def _alerts(sources: list[Any], tz: str | None) -> list[dict[str, Any]]:
    """The alerts of each repository's .aispend.toml that the receipts show (budgets, spikes,
    model switches, cache hits; the session alerts need this machine's logs: aispend status)."""
    from aispend.policy import config
    from aispend.policy.alerts import evaluate

    out = []
    for repo, _revs, trust in sources:
        res = evaluate(repo, config.load(repo.worktree), trust, None, tz)
        out += [{**a, "repo": str(repo.worktree)} if len(sources) > 1 else a for a in res["alerts"]]
    return out


def render(rep: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        # Exact data, but every non-ASCII character escaped: a C1 control or a bidi override
        # from a note never reaches a terminal raw when someone cats the output.
        return json.dumps(rep, indent=2, ensure_ascii=True) + "\n"
    cols = ["key", "commits", "cost_usd", "total_tokens", "input_tokens", "output_tokens",
            "cache_creation_tokens", "cache_read_tokens", "reasoning_tokens", "unpriced_tokens", "cache_hit_rate"]
    if fmt == "csv":
        from aispend.reports.render import csv_text

        return csv_text(cols, [[r[c] for c in cols] for r in rep["rows"]])
    if fmt == "md":
        return _markdown(rep)
    if fmt == "html":
        from aispend.reports.html import render_html

        return render_html(rep)
    return _table(rep)


def _clean(text: str) -> str:
    from aispend.reports.render import clean

    return clean(text)


def _markdown(rep: dict[str, Any]) -> str:
    """A short block for a pull-request comment: warnings first, then total, rows, per commit,
    per model, alerts. Every value from a note or a commit goes through md_text, so it renders
    as its text and nothing else (no link, image, HTML, mention, issue reference, table break)."""
    import re

    from aispend.reports.render import md_text, trust_warnings

    t = rep["totals"]

    def commit(sha: object) -> str:
        s = str(sha)[:12]
        return f"`{s}`" if re.fullmatch(r"[0-9a-f]{4,12}", s) else md_text(s)  # a code span only for hex

    # Lead with what makes the numbers doubtful; a trailing backslash is a hard line break.
    warnings = [f"> ⚠️ {md_text(w)}" for w in trust_warnings(rep)]
    out = ["\\\n".join(warnings), ""] if warnings else []
    out += [
        f"**AI spend: ${t['cost_usd']:,.2f}** over {t['commits_with_receipts']} of {t['commits']} commits"
        f" ({t['total_tokens']:,} tokens, cache-hit rate {100 * t['cache_hit_rate']:.0f}%)",
        "",
        f"| {md_text(rep['group_by'])} | commits | cost | tokens |",
        "|---|---:|---:|---:|",
    ]
    out += [f"| {md_text(r['key'])} | {r['commits']} | ${r['cost_usd']:,.2f} | {r['total_tokens']:,} |" for r in rep["rows"]]
    if rep["top_commits"]:
        out += ["", "| commit | subject | cost |", "|---|---|---:|"]
        out += [f"| {commit(c['commit'])} | {md_text(str(c['subject'])[:72])} | ${c['cost_usd']:,.2f} |" for c in rep["top_commits"]]
    if t["models"]:
        out += ["", "| model | cost | share |", "|---|---:|---:|"]
        out += [f"| {md_text(m['model'])} | ${m['cost_usd']:,.2f} | {100 * m['share']:.0f}% |" for m in t["models"]]
    for a in rep.get("alerts", []):
        out += ["", f"⚠️ {md_text(a['message'])}"]
    return "\n".join(out) + "\n"


def _table(rep: dict[str, Any]) -> str:
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    # soft_wrap: a sentence stays one line (tables are still laid out to the width).
    con = Console(file=buf, width=100, highlight=False, color_system=None, soft_wrap=True)
    t = rep["totals"]
    span = f"{rep['since'] or 'the start'} .. {rep['until'] or 'today'}"
    if not t["commits"]:
        con.print(Text(f"no commits in {rep['range']} from {span}: nothing to report"))
        return buf.getvalue()
    for note in rep.get("notes") or []:
        con.print(Text(f"note: {_clean(note)}"))
    if not rep.get("signers_checked", True):
        con.print(Text("WARNING: no allowed-signers list: signers were not checked, so no receipt counts (aispend install creates .aispend/allowed_signers)"))
    con.print(Text(f"AI spend {span} ({rep['tz']}), {_clean(rep['range'])}: ${t['cost_usd']:,.2f}"))
    apart = t.get("not_counted") or {}
    if apart.get("receipts"):
        why = ", ".join(f"{n} {s}" for s, n in apart["by_status"].items())
        con.print(Text(f"not counted: {counted(apart['receipts'], 'receipt')} ({why}) claiming ${apart['claimed_cost_usd']:,.2f} (aispend verify)"))
    con.print(Text(
        f"{t['commits_with_receipts']} of {t['commits']} commits carry a receipt that counts; cost per receipted commit: "
        f"mean ${t['cost_per_commit']['mean']:,.2f}, median ${t['cost_per_commit']['median']:,.2f}, p90 ${t['cost_per_commit']['p90']:,.2f}"
    ))
    con.print(Text(
        f"tokens: input {t['input_tokens']:,}, cache writes {t['cache_creation_tokens']:,}, cache reads {t['cache_read_tokens']:,}, "
        f"output {t['output_tokens']:,}; cache-hit rate {100 * t['cache_hit_rate']:.0f}%"
    ))
    if t["models"]:
        con.print(Text("model mix: " + ", ".join(f"{_clean(m['model'])} {100 * m['share']:.0f}%" for m in t["models"][:5])))
    trend = rep.get("trend")
    if trend:
        change = "n/a (nothing before)" if trend["change"] is None else f"{100 * trend['change']:+.0f}%"
        con.print(Text(
            f"previous period {trend['previous_since']} .. {trend['previous_until']}: ${trend['previous_cost_usd']:,.2f}; change {change}"
        ))
    if rep["daily"]:
        for line in heatmap(rep):
            con.print(line)
    if rep["rows"]:
        table = Table(box=None, pad_edge=False)
        for col, just in ((rep["group_by"], "left"), ("commits", "right"), ("cost", "right"), ("tokens", "right"), ("cache hits", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in rep["rows"]:
            table.add_row(Text(_clean(str(r["key"]))), f"{r['commits']:,}", f"${r['cost_usd']:,.2f}", f"{r['total_tokens']:,}", f"{100 * r['cache_hit_rate']:.0f}%")
        con.print(table)
    for o in rep["outliers"]:
        con.print(Text(f"outlier: {o['commit'][:12]} ${o['cost_usd']:,.2f} ({o['times_median']}x the median) {_clean(o['author'])}: {_clean(o['subject'])[:60]}"))
    for a in rep["anomalies"]:
        con.print(Text(f"anomaly: {a['day']} ${a['cost_usd']:,.2f}, over twice the 14-day median (${a['trailing_median_usd']:,.2f})"))
    for a in rep.get("alerts", []):
        con.print(Text(f"alert: {_clean(a['message'])}"))
    return buf.getvalue()


#: Cell characters by level, so the calendar reads without colour too.
LEVELS = ("·", "░", "▒", "▓", "█")
STYLES = ("grey37", "green4", "green3", "green1", "bold bright_green")


def heatmap(rep: dict[str, Any]) -> list[Any]:
    """A contributions-style calendar of daily spend: a row per weekday, a column per week."""
    from datetime import date, timedelta

    from rich.text import Text

    from aispend.clock import now

    cost = {d["day"]: d["cost_usd"] for d in rep["daily"]}
    first = date.fromisoformat(rep["since"]) if rep["since"] else date.fromisoformat(min(cost))
    last = date.fromisoformat(rep["until"]) if rep["until"] else max(date.fromisoformat(max(cost)), now().date())
    first = max(first, last - timedelta(weeks=52))  # at most a year wide
    start = first - timedelta(days=first.weekday())  # a Monday
    weeks = (last - start).days // 7 + 1
    spent = sorted(v for v in cost.values() if v > 0)

    def level(v: float) -> int:
        if v <= 0 or not spent:
            return 0
        rank = sum(1 for x in spent if x <= v) / len(spent)
        return min(4, 1 + int(rank * 4 - 1e-9))

    lines = [Text(f"daily spend {first} .. {last} ({LEVELS[0]} none, {LEVELS[1]}{LEVELS[2]}{LEVELS[3]}{LEVELS[4]} quartiles)")]
    for wd, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        row = Text(f"{name} ")
        for w in range(weeks):
            d = start + timedelta(days=7 * w + wd)
            if d < first or d > last:
                row.append(" ")
            else:
                lv = level(cost.get(d.isoformat(), 0.0))
                row.append(LEVELS[lv], style=STYLES[lv])
        lines.append(row)
    return lines
