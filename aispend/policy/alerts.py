"""Budgets and alerts: spend control at the moment of commit (docs/budgets.md).

Budgets and the spend-based alerts read the receipts in the notes (the team's
record); the session alerts (runaway, context bloat) read this machine's index,
since a session still running has no receipt yet.
"""

from __future__ import annotations

import calendar
import sqlite3
import statistics
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aispend import clock, git
from aispend.policy.config import Budget, Policy
from aispend.receipts.model import usd_number
from aispend.reports.receipts import Trust
from aispend.reports.spend import Spent, anomalies, model_cost, spent
from aispend.reports.timerange import DayRange, zone


def _usd(nusd: int | float) -> float:
    return usd_number(round(nusd))


def budgets(policy: Policy, month: list[Spent], today: date) -> list[dict[str, Any]]:
    """Each budget of the policy: spent this month, projected to its end, and its status."""
    days = calendar.monthrange(today.year, today.month)[1]
    out = []
    for b in policy.budgets:
        n = sum(s.cost_nusd for s in month if _in_scope(b, s.author))
        projected = n * days / today.day
        limit = b.monthly_usd * 1e9
        status = "hard" if n >= b.hard * limit else "soft" if n >= b.soft * limit else "ok"
        out.append({
            "scope": b.scope, "name": b.name, "monthly_usd": b.monthly_usd,
            "spent_usd": _usd(n), "projected_usd": _usd(projected), "status": status,
            "top": _top(b, month),
            "top_sessions": _top_sessions(b, month),
        })
    return out


def _in_scope(b: Budget, author: str) -> bool:
    if b.scope == "repo":
        return True
    if b.scope == "team":
        return author.lower() in b.members
    return author.lower() == b.name


def _top(b: Budget, month: list[Spent]) -> list[dict[str, Any]]:
    by_author: dict[str, int] = {}
    for s in month:
        if _in_scope(b, s.author):
            by_author[s.author] = by_author.get(s.author, 0) + s.cost_nusd
    return [{"author": a, "spent_usd": _usd(n)} for a, n in sorted(by_author.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]


def _top_sessions(b: Budget, month: list[Spent]) -> list[dict[str, Any]]:
    by_session: dict[str, int] = {}
    for s in month:
        if _in_scope(b, s.author):
            for sess in s.receipt["sessions"]:
                key = f"{sess['tool']}:{sess['session']}"
                by_session[key] = by_session.get(key, 0) + sum(model_cost(m) for m in sess["models"])
    return [{"session": k, "spent_usd": _usd(n)} for k, n in sorted(by_session.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]


def evaluate(
    repo: git.Repo, policy: Policy, trust: Trust, conn: sqlite3.Connection | None, tz_name: str | None = None
) -> dict[str, Any]:
    """``aispend budget --json``: the budgets of the month so far and every alert that fires now."""
    tz = zone(tz_name)
    now = clock.now().astimezone(tz)
    today = now.date()
    first = today.replace(day=1)
    history = spent(repo, ["HEAD"], DayRange(today - timedelta(days=90), today, tz), trust)
    month = [s for s in history if datetime.fromtimestamp(s.when_s, tz).date() >= first]
    bs = budgets(policy, month, today)
    alerts: list[dict[str, Any]] = []
    for b in bs:
        if b["status"] != "ok":
            what = "over its hard limit" if b["status"] == "hard" else "past its soft limit"
            alert = {
                "kind": "budget", "scope": b["scope"], "name": b["name"],
                "message": f"{b['scope']} {b['name']} budget {what}: ${b['spent_usd']:,.2f} of ${b['monthly_usd']:,.2f} this month, "
                           f"${b['projected_usd']:,.2f} projected by its end",
            }
            if b["scope"] == "author":
                alert["author"] = b["name"]  # a personal budget: whose it is (see mine)
            alerts.append(alert)
    alerts += _spikes(history, tz, today, policy)
    alerts += _model_switch(history, tz, today, policy)
    alerts += _low_cache_hit(month, policy)
    if conn is not None:
        alerts += _sessions(conn, repo, now, policy)
    return {"period": f"{first.isoformat()} .. {today.isoformat()}", "trust": trust.describe(), "budgets": bs, "alerts": alerts}


def _spikes(history: list[Spent], tz: Any, today: date, policy: Policy) -> list[dict[str, Any]]:
    per_day: dict[str, int] = {}
    for s in history:
        d = datetime.fromtimestamp(s.when_s, tz).date().isoformat()
        per_day[d] = per_day.get(d, 0) + s.cost_nusd
    recent = (today - timedelta(days=6)).isoformat()
    return [
        {"kind": "spike", "day": a["day"],
         "message": f"spike on {a['day']}: ${a['cost_usd']:,.2f}, over {policy.alerts.spike_factor:g}x the 14-day median (${a['trailing_median_usd']:,.2f})"}
        for a in anomalies(per_day, policy.alerts.spike_factor) if a["day"] >= recent
    ]


def _model_switch(history: list[Spent], tz: Any, today: date, policy: Policy) -> list[dict[str, Any]]:
    """A model not seen in the 60 days before now carries more than a share of the last 30 days."""
    cut = today - timedelta(days=29)
    recent: dict[str, int] = {}
    before: set[str] = set()
    for s in history:
        day = datetime.fromtimestamp(s.when_s, tz).date()
        for sess in s.receipt["sessions"]:
            for m in sess["models"]:
                if day >= cut:
                    recent[m["model"]] = recent.get(m["model"], 0) + model_cost(m)
                else:
                    before.add(m["model"])
    total = sum(recent.values())
    if not total or not before:
        return []  # no history to compare with
    return [
        {"kind": "model_switch", "model": name,
         "message": f"model switch: {name}, not used here before the last 30 days, now carries {100 * n / total:.0f}% of the spend"}
        for name, n in sorted(recent.items(), key=lambda kv: -kv[1])
        if name not in before and n / total > policy.alerts.model_switch_share
    ]


def _low_cache_hit(month: list[Spent], policy: Policy) -> list[dict[str, Any]]:
    rates: dict[str, list[int]] = {}
    for s in month:
        t = s.receipt["totals"]
        acc = rates.setdefault(s.author, [0, 0])
        acc[0] += t["cache_read_tokens"]
        acc[1] += t["input_tokens"] + t["cache_creation_tokens"] + t["cache_read_tokens"]
    by_author = {a: r / fed for a, (r, fed) in rates.items() if fed}
    if len(by_author) < 2:
        return []
    median = statistics.median(by_author.values())
    return [
        {"kind": "low_cache_hit", "author": a,
         "message": f"low cache hit rate: {a} at {100 * r:.0f}% against the team's median {100 * median:.0f}%"}
        for a, r in sorted(by_author.items()) if r < median - policy.alerts.low_cache_hit_gap
    ]


def session_alerts(conn: sqlite3.Connection, repo: git.Repo, policy: Policy, tz_name: str | None = None) -> list[dict[str, Any]]:
    """Only the alerts of this machine's index (runaway sessions, context bloat): no receipt read."""
    return _sessions(conn, repo, clock.now().astimezone(zone(tz_name)), policy)


def _sessions(conn: sqlite3.Connection, repo: git.Repo, now: datetime, policy: Policy) -> list[dict[str, Any]]:
    """Runaway sessions and context bloat, from this machine's index (the last 48 hours)."""
    from aispend.attribution import Scope, split_by_branch
    from aispend.reports.unshipped import worktrees

    now_ms = int(now.timestamp() * 1000)
    reqs = []
    for wt in worktrees(repo):
        scope = Scope(repo=str(repo.common_dir), worktree=Path(wt), branch=None, since_ms=now_ms - 48 * 3_600_000, until_ms=now_ms)
        here, elsewhere = split_by_branch(conn, scope, include_claimed=True)
        reqs += here + elsewhere
    claimed = {k for (k,) in conn.execute("SELECT request_key FROM claims")} if reqs else set()
    by_session: dict[tuple[str, str], list[Any]] = {}
    for r in reqs:
        by_session.setdefault((r.tool, r.session_id), []).append(r)
    a = policy.alerts
    out: list[dict[str, Any]] = []
    for (tool, sid), rs in sorted(by_session.items()):
        rs.sort(key=lambda r: r.ts_ms)
        hours = (rs[-1].ts_ms - rs[0].ts_ms) / 3_600_000
        cost = sum(r.cost_nusd or 0 for r in rs)
        unclaimed = [r for r in rs if r.key not in claimed]
        idle_hours = (unclaimed[-1].ts_ms - unclaimed[0].ts_ms) / 3_600_000 if unclaimed else 0
        still = bool(unclaimed) and now_ms - unclaimed[-1].ts_ms < 3_600_000
        reasons = []
        if hours > a.runaway_session_hours:
            reasons.append(f"running for {hours:.1f} h")
        if cost > a.runaway_session_usd * 1e9:
            reasons.append(f"${cost / 1e9:,.2f} spent")
        if still and idle_hours > a.runaway_session_hours:
            reasons.append(f"still spending with no commit for {idle_hours:.1f} h")
        if reasons:
            out.append({"kind": "runaway_session", "session": f"{tool}:{sid}",
                        "message": f"runaway session {tool}:{sid[:13]}: " + ", ".join(reasons)})
        if len(rs) >= 10:
            fed = [r.input_tokens + r.cache_creation_tokens + r.cache_read_tokens for r in rs]
            start, end = statistics.fmean(fed[:5]), statistics.fmean(fed[-5:])
            if start and end > a.context_bloat_factor * start:
                out.append({"kind": "context_bloat", "session": f"{tool}:{sid}",
                            "message": f"context bloat in {tool}:{sid[:13]}: {end:,.0f} input tokens per request, "
                                       f"{end / start:.1f}x its first requests ({start:,.0f})"})
    return out


#: Alerts about this machine's own sessions (read from its index, not from anyone's receipts).
SESSION_KINDS = frozenset({"runaway_session", "context_bloat"})


def mine(alerts: list[dict[str, Any]], email: str | None) -> list[dict[str, Any]]:
    """The alerts about ``email``'s own spend (what the commit editor and a plain ``status``
    show): those of this machine's sessions (``SESSION_KINDS``), and those whose ``author`` is
    ``email`` (compared without case): their personal budget, their own cache-hit rate. Team
    alerts (the repository's and teams' budgets, other people's, spikes and model switches of the
    whole history) stay in ``budget``, ``status --team`` and ``report``; an alert that does not
    say whose it is counts as the team's."""
    me = (email or "").strip().lower()
    out = []
    for a in alerts:
        if a.get("kind") in SESSION_KINDS:
            out.append(a)
        elif me and isinstance(a.get("author"), str) and a["author"].strip().lower() == me:
            out.append(a)
    return out
