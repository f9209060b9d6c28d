"""``aispend report``: the team's AI spend, from the receipts in the notes (docs/report.md).

It reads the shared record (notes), never anyone's local logs. Every receipt is
verified; those that fail are counted apart. Spend carried from rewritten
commits counts once: a receipt whose digest another receipt of the range carries
is left out (its spend is inside the other one).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aispend import git
from aispend.index.db import TOKEN_FIELDS
from aispend.notes import store
from aispend.receipts import verify
from aispend.receipts.model import digest, nusd_of, usd_number
from aispend.reports.receipts import FAILING, Trust, VerifyCache, check_lines
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
    receipts: list[tuple[str, dict[str, Any], str]]  # (digest, receipt, status)
    branch: str = "(no branch)"


def _commits(repo: git.Repo, revs: list[str], trust: Trust) -> list[_Commit]:
    """Every commit of the range with its receipts and their verification (one git process)."""
    out = []
    cache = VerifyCache(trust)
    try:
        for sha, tree, author, when_s, subject, note in git.log_with_notes(repo, revs):
            lines = store.parse_note(sha, note) if note.strip() else []
            rs: list[tuple[str, dict[str, Any], str]] = []
            for c in check_lines(lines, sha, tree, trust, cache):
                if c.line.receipt is None or not c.result.usable:
                    rs.append(("", {}, verify.INVALID))  # unreadable: counted apart, no spend
                    continue
                rs.append((digest(c.line.text), c.line.receipt, c.result.status))
            out.append(_Commit(sha, author, when_s, subject, rs))
    finally:
        cache.close()
    return out


def report(
    sources: list[tuple[git.Repo, list[str], Trust]],
    rng: DayRange,
    group_by: str,
    author: str | None = None,
    verified_only: bool = False,
) -> dict[str, Any]:
    """The report's JSON contract (docs/report.md), over one or several repositories
    (``sources``: each repository with its range and its trusted signers)."""
    everything = [
        c for repo, revs, trust in sources for c in _commits(repo, revs, trust)
        if author is None or c.author.lower() == author.lower()
    ]
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
    failed = sum(1 for c in commits for _, _, status in c.receipts if status in FAILING)
    for c, r in _counted(commits, verified_only):
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
    out_totals["commits_with_receipts"] = sum(1 for c in commits if any(r for _, r, _ in c.receipts))
    out_totals["failed_receipts"] = failed
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
    return {
        "range": " ".join(git.shown_revs(revs) for _, revs, _ in sources),
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
        "trend": _trend(everything, rng, totals.cost, verified_only),
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


def spent(repo: git.Repo, revs: list[str], rng: DayRange, trust: Trust, verified_only: bool = False) -> list[Spent]:
    """The receipts of ``revs`` in ``rng`` whose spend counts, each once (carried spend counted
    in the receipt that carries it)."""
    lo, _ = rng.bounds_ms()
    # Let git skip older history (committer dates, as _within filters): a hook must not read it all.
    limit = [f"--since={lo // 1000 - 86_400}"] if lo is not None else []
    commits = _commits(repo, [*revs, *limit], trust)
    return [Spent(c.author, c.when_s, r) for c, r in _counted(_within(commits, rng), verified_only)]


def anomalies(per_day: dict[str, int], factor: float) -> list[dict[str, Any]]:
    """Days costing more than ``factor`` times the median of the 14 days before."""
    return _anomalies(per_day, factor)


def _within(commits: list[_Commit], rng: DayRange) -> list[_Commit]:
    lo, hi = rng.bounds_ms()
    return [c for c in commits if (lo is None or c.when_s * 1000 >= lo) and (hi is None or c.when_s * 1000 < hi)]


def _counted(commits: list[_Commit], verified_only: bool) -> Any:
    """``(commit, receipt)`` for each receipt whose spend counts: readable, not failing when
    ``verified_only``, not carried by another receipt of ``commits``, each line once."""
    carried = {d for c in commits for _, r, _ in c.receipts for d in r.get("carried_from", [])}
    seen: set[str] = set()
    for c in commits:
        for d, r, status in c.receipts:
            if not r or (verified_only and status in FAILING) or d in carried or d in seen:
                continue
            seen.add(d)
            yield c, r


def _trend(everything: list[_Commit], rng: DayRange, cost: int, verified_only: bool) -> dict[str, Any] | None:
    """Spend against the period of the same length just before (None without a start day)."""
    if rng.since is None:
        return None
    from aispend.clock import now

    until = rng.until or now().astimezone(rng.tz).date()
    days = (until - rng.since).days + 1
    prev = DayRange(rng.since - timedelta(days=days), rng.since - timedelta(days=1), rng.tz)
    before = sum(
        model_cost(m) for _, r in _counted(_within(everything, prev), verified_only) for s in r["sessions"] for m in s["models"]
    )
    return {
        "previous_since": prev.since.isoformat() if prev.since else None,
        "previous_until": prev.until.isoformat() if prev.until else None,
        "previous_cost_usd": usd_number(before),
        "change": round(cost / before - 1, 4) if before else None,
    }


def export_rows(repo: git.Repo, revs: list[str], trust: Trust) -> list[dict[str, Any]]:
    """One row per receipt and model (``aispend export``); ``carried`` marks receipts whose spend
    another receipt of the range also holds (sum only the rows where it is false)."""
    from aispend.receipts.model import iso_ms

    commits = _commits(repo, revs, trust)
    carried = {d for c in commits for _, r, _ in c.receipts for d in r.get("carried_from", [])}
    rows = []
    for c in commits:
        for d, r, status in c.receipts:
            if not r:
                continue
            for s in r["sessions"]:
                for m in s["models"]:
                    rows.append({
                        "commit": c.sha, "author": c.author, "committed_at": iso_ms(c.when_s * 1000),
                        "receipt": d, "status": status, "carried": d in carried,
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
