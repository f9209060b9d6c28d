"""``aispend report``: the team's AI spend, from the receipts in the notes (docs/report.md).

It reads the shared record (notes), never anyone's local logs, through the one
reader (:mod:`aispend.notes.store`) and the one counting rule
(:mod:`aispend.receipts.counting`): only receipts signed by trusted keys count, each
once, carried spend in its carrier; everything else is listed apart, never added.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aispend import git
from aispend.index.db import TOKEN_FIELDS
from aispend.notes import store
from aispend.receipts import counting
from aispend.receipts.model import nusd_of, usd_number
from aispend.reports.receipts import Entry, NoteLookup, Trust, VerifyCache, check_lines, not_counted, notes_warning
from aispend.reports.timerange import DayRange, zone_name

GROUPS = ("author", "model", "tool", "day", "week", "month", "commit", "session", "branch")
#: A commit costing more than this many times the median receipted commit is an outlier.
OUTLIER_FACTOR = 8
#: A day costing more than this many times the median of the 14 days before is an anomaly.
ANOMALY_FACTOR = 2
ANOMALY_WINDOW_DAYS = 14


@dataclass
class _Sums:
    commits: set[str] = field(default_factory=set)
    tokens: dict[str, int] = field(default_factory=lambda: {f: 0 for f in (*TOKEN_FIELDS, "unpriced_tokens")})
    cost: int = 0

    def add(self, sha: str, part: dict[str, Any], cost: int) -> None:
        self.commits.add(sha)
        for f in self.tokens:
            self.tokens[f] += part[f]
        self.cost += cost

    def out(self) -> dict[str, Any]:
        t = self.tokens
        fed = t["input_tokens"] + t["cache_creation_tokens"] + t["cache_read_tokens"]
        return {
            "commits": len(self.commits),
            **t,
            "cost_usd": usd_number(self.cost),
            "cache_hit_rate": round(t["cache_read_tokens"] / fed, 4) if fed else 0.0,
        }


@dataclass
class _Commit:
    sha: str
    author: str
    when_s: int
    subject: str
    entries: list[Entry]  # its note's lines, checked; their fate is set by _ledger
    branch: str = "(no branch)"
    source: int = 0  # which repository: the counting rule applies within one (its trust, its receipts)
    lookup: Any = None  # its NoteLookup: carried receipts outside the range


def _commits(repo: git.Repo, revs: list[str], trust: Trust) -> list[_Commit]:
    """Every commit of the range with its note's lines checked (a few git processes)."""
    out = []
    cache = VerifyCache(trust)
    lookup = NoteLookup(repo)
    try:
        for c, lines in store.commits_with_lines(repo, revs):
            out.append(_Commit(c.sha, c.author_email, c.committed_s, c.subject, check_lines(lines, c.sha, c.tree, trust, cache, c.committed_s), lookup=lookup))
    finally:
        cache.close()
    return out


def _ledger(commits: list[_Commit], rng: DayRange | None = None) -> list[tuple[_Commit, dict[str, Any]]]:
    """The counting rule: ``(commit, receipt)`` for each receipt that counts, of the commits in
    ``rng`` (all of them without one).

    The rule runs over every commit up to the end of ``rng``, oldest first, and only then keeps
    those in it: spend carried into a later commit counts there (and not also in the earlier
    window), and spend two receipts hold counts with the older one (a branch squash-merged in
    March and again in April costs March, not April again).
    """
    upto = commits if rng is None else _before_end(commits, rng)
    inside = {id(c) for c in (upto if rng is None else _within(upto, rng))}
    owner = {id(e): c for c in upto for e in c.entries}
    out = []
    # One repository's trusted receipts never carry (hide) another repository's, and a receipt
    # found in two repositories (a fork and its upstream) counts in the first only.
    seen: set[str] = set()
    for source in sorted({c.source for c in upto}):
        group = sorted((c for c in upto if c.source == source), key=lambda c: c.when_s)
        ledger = counting.count((e for c in group for e in c.entries), group[0].lookup)
        for e in ledger.entries:
            r = e.counted_receipt
            if r is None or e.key in seen:
                continue
            seen.add(e.key)
            if id(owner[id(e)]) in inside:
                out.append((owner[id(e)], r))
    return out


def _before_end(commits: list[_Commit], rng: DayRange) -> list[_Commit]:
    _, hi = rng.bounds_ms()
    return [c for c in commits if hi is None or c.when_s * 1000 < hi]


def report(
    sources: list[tuple[git.Repo, list[str], Trust]],
    rng: DayRange,
    group_by: str,
    author: str | None = None,
    verified_only: bool = True,
) -> dict[str, Any]:
    """The report's JSON contract (docs/report.md), over one or several repositories
    (``sources``: each repository with its range and its trusted signers). Only trusted
    receipts count, always (``verified_only`` is kept for callers; it changes nothing)."""
    everything = []
    for i, (repo, revs, trust) in enumerate(sources):
        for c in _commits(repo, revs, trust):
            c.source = i
            if author is None or c.author.lower() == author.lower():
                everything.append(c)
    commits = _within(everything, rng)
    if group_by == "branch":
        for repo, _, _ in sources:
            _assign_branches(repo, commits)
    totals = _Sums()
    rows: dict[str, _Sums] = {}
    mix: dict[str, _Sums] = {}
    per_commit: dict[str, int] = {}
    per_day: dict[str, int] = {}
    day_commits: dict[str, set[str]] = {}
    counted = _ledger(everything, rng)
    apart = not_counted([e for c in commits for e in c.entries])
    failed = sum(1 for c in commits for e in c.entries if counting.failing(e))
    for c, r in counted:
        day = datetime.fromtimestamp(c.when_s, rng.tz).date()
        for s in r["sessions"]:
            for m in s["models"]:
                cost = model_cost(m)
                totals.add(c.sha, m, cost)
                rows.setdefault(_key(group_by, c, s, m, day), _Sums()).add(c.sha, m, cost)
                mix.setdefault(str(m["model"]), _Sums()).add(c.sha, m, cost)
                per_commit[c.sha] = per_commit.get(c.sha, 0) + cost
                per_day[day.isoformat()] = per_day.get(day.isoformat(), 0) + cost
                day_commits.setdefault(day.isoformat(), set()).add(c.sha)
    costs = sorted(per_commit.values())
    median = statistics.median(costs) if costs else 0
    by_sha = {c.sha: c for c in commits}
    outliers = [
        {"commit": sha, "author": by_sha[sha].author, "subject": by_sha[sha].subject, "cost_usd": usd_number(n),
         "times_median": round(n / median, 1)}
        for sha, n in sorted(per_commit.items(), key=lambda kv: -kv[1])
        if median and n > OUTLIER_FACTOR * median
    ]
    out_totals = totals.out()
    out_totals["commits"] = len(commits)
    # Commits whose receipts count here or inside a carrier (not those with only untrusted lines).
    out_totals["commits_with_receipts"] = len({c.sha for c in commits for e in c.entries if e.fate != counting.APART})
    out_totals["failed_receipts"] = failed
    out_totals["not_counted"] = apart
    out_totals["cost_per_commit"] = {
        "mean": usd_number(round(statistics.fmean(costs))) if costs else 0.0,
        "median": usd_number(round(median)),
        "p90": usd_number(costs[min(len(costs) - 1, int(0.9 * (len(costs) - 1) + 0.5))]) if costs else 0.0,
    }
    out_totals["models"] = [
        {"model": name, "cost_usd": usd_number(m.cost), "share": round(m.cost / totals.cost, 4) if totals.cost else 0.0}
        for name, m in sorted(mix.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    ]
    ordered = sorted(rows.items(), key=lambda kv: kv[0] if group_by in ("day", "week", "month") else (-kv[1].cost, kv[0]))
    trusts = [t for _, _, t in sources]
    return {
        "range": " ".join(git.shown_revs(revs) for _, revs, _ in sources),
        "trust": trusts[0].describe() if len(trusts) == 1 else {"repositories": [t.describe() for t in trusts]},
        "signers_checked": all(t.checked for t in trusts),
        "notes": [w for repo, _, _ in sources if (w := notes_warning(repo))],
        "since": rng.since.isoformat() if rng.since else None,
        "until": rng.until.isoformat() if rng.until else None,
        "tz": zone_name(rng.tz),
        "group_by": group_by,
        "totals": out_totals,
        "rows": [{"key": k, **v.out()} for k, v in ordered],
        "outliers": outliers,
        "anomalies": _anomalies(per_day),
        "daily": [{"day": d, "cost_usd": usd_number(n), "commits": len(day_commits[d])} for d, n in sorted(per_day.items())],
        "top_commits": [
            {"commit": sha, "author": by_sha[sha].author, "subject": by_sha[sha].subject,
             "day": datetime.fromtimestamp(by_sha[sha].when_s, rng.tz).date().isoformat(), "cost_usd": usd_number(n)}
            for sha, n in sorted(per_commit.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        ],
        "trend": _trend(everything, rng, totals.cost),
    }


def model_cost(model_entry: dict[str, Any]) -> int:
    """A model entry's cost in nano-dollars (an unpriced model costs nothing known: 0)."""
    v = model_entry["cost_usd"]
    return (nusd_of(v) or 0) if v is not None else 0


@dataclass(frozen=True)
class Spent:
    """A receipt whose spend counts (once), with its commit's author and time."""

    author: str
    when_s: int
    receipt: dict[str, Any]

    @property
    def cost_nusd(self) -> int:
        return sum(model_cost(m) for s in self.receipt["sessions"] for m in s["models"])


def spent(repo: git.Repo, revs: list[str], rng: DayRange, trust: Trust) -> list[Spent]:
    """The receipts of ``revs`` in ``rng`` whose spend counts (the counting rule: trusted, each
    once, carried spend in the receipt that carries it)."""
    # Dates are filtered here, never by git's --since: git stops walking at the first commit
    # dated before it, and one commit with an old date would hide everything behind it.
    commits = _commits(repo, revs, trust)
    return [Spent(c.author, c.when_s, r) for c, r in _ledger(commits, rng)]


def anomalies(per_day: dict[str, int], factor: float) -> list[dict[str, Any]]:
    """Days costing more than ``factor`` times the median of the 14 days before."""
    return _anomalies(per_day, factor)


def _within(commits: list[_Commit], rng: DayRange) -> list[_Commit]:
    lo, hi = rng.bounds_ms()
    return [c for c in commits if (lo is None or c.when_s * 1000 >= lo) and (hi is None or c.when_s * 1000 < hi)]


def _trend(everything: list[_Commit], rng: DayRange, cost: int) -> dict[str, Any] | None:
    """Spend against the period of the same length just before (None without a start day)."""
    if rng.since is None:
        return None
    from aispend.clock import now

    until = rng.until or now().astimezone(rng.tz).date()
    days = (until - rng.since).days + 1
    prev = DayRange(rng.since - timedelta(days=days), rng.since - timedelta(days=1), rng.tz)
    before = sum(
        model_cost(m) for _, r in _ledger(everything, prev) for s in r["sessions"] for m in s["models"]
    )
    return {
        "previous_since": prev.since.isoformat() if prev.since else None,
        "previous_until": prev.until.isoformat() if prev.until else None,
        "previous_cost_usd": usd_number(before),
        "change": round(cost / before - 1, 4) if before else None,
    }


def export_rows(repo: git.Repo, revs: list[str], trust: Trust) -> list[dict[str, Any]]:
    """One row per readable receipt and model (``aispend export``). ``counted`` marks the rows
    whose spend counts under the counting rule: their sum is the report's total; ``carried``
    rows hold spend a counted carrier also holds; the others are listed apart."""
    from aispend.receipts.model import digest, iso_ms

    commits = _commits(repo, revs, trust)
    counting.count((e for c in commits for e in c.entries), NoteLookup(repo))
    rows = []
    for c in commits:
        for e in c.entries:
            # A counted receipt's rows hold what it adds (less what another counted one holds too).
            r = e.counted_receipt or e.receipt
            if r is None or not e.result.usable:
                continue
            for s in r["sessions"]:
                for m in s["models"]:
                    rows.append({
                        "commit": c.sha, "author": c.author, "committed_at": iso_ms(c.when_s * 1000),
                        "receipt": digest(e.text), "status": e.status,
                        "counted": e.fate == counting.COUNTED, "carried": e.fate == counting.CARRIED,
                        "tool": s["tool"], "session": s["session"], "model": m["model"],
                        **{f: m[f] for f in (*TOKEN_FIELDS, "unpriced_tokens")},
                        "cost_usd": m["cost_usd"],
                    })
    return rows


def _assign_branches(repo: git.Repo, commits: list[_Commit]) -> None:
    """Each commit's branch: the first local branch whose history holds it, the default branch
    (origin's HEAD, main, master) first, then the others by name."""
    names = (git.ok(["for-each-ref", "--format=%(refname:short)", "refs/heads"], repo.worktree) or "").split()
    origin_head = (git.ok(["symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"], repo.worktree) or "").removeprefix("origin/")
    first = [b for b in (origin_head, "main", "master") if b in names]
    ordered = list(dict.fromkeys(first + sorted(names)))
    todo = {c.sha: c for c in commits}
    for b in ordered:
        if not todo:
            break
        for sha in git.run(["rev-list", f"refs/heads/{b}", "--"], repo.worktree).split():
            c = todo.pop(sha, None)
            if c is not None:
                c.branch = b


def _key(group_by: str, c: _Commit, s: dict[str, Any], m: dict[str, Any], day: Any) -> str:
    if group_by == "author":
        return c.author
    if group_by == "branch":
        return c.branch
    if group_by == "model":
        return str(m["model"])
    if group_by == "tool":
        return str(s["tool"])
    if group_by == "session":
        return f"{s['tool']}:{s['session']}"
    if group_by == "commit":
        return c.sha
    if group_by == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if group_by == "month":
        return f"{day.year}-{day.month:02d}"
    return str(day.isoformat())


def _anomalies(per_day: dict[str, int], factor: float = ANOMALY_FACTOR) -> list[dict[str, Any]]:
    """Days costing more than twice the median of the 14 days before (days without spend count as 0)."""
    if not per_day:
        return []
    days = sorted(per_day)
    first = datetime.fromisoformat(days[0]).date()
    out = []
    for d in days:
        day = datetime.fromisoformat(d).date()
        window = [
            per_day.get((day - timedelta(days=k)).isoformat(), 0)
            for k in range(1, ANOMALY_WINDOW_DAYS + 1)
            if day - timedelta(days=k) >= first
        ]
        if len(window) < ANOMALY_WINDOW_DAYS:
            continue  # not enough history before it to judge
        base = statistics.median(window)
        if base and per_day[d] > factor * base:
            out.append({"day": d, "cost_usd": usd_number(per_day[d]), "trailing_median_usd": usd_number(round(base))})
    return out
