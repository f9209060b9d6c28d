"""What the receipts of a commit (``aispend show``) or of a range (``aispend verify``) say.

Everything read from a note is untrusted: each line is checked (canonical form,
schema, signature, signer under the trust list, commit, tree, sums), and what counts
is decided by the one counting rule (:mod:`aispend.receipts.counting`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aispend import git
from aispend.notes import store
from aispend.receipts import counting, verify
from aispend.receipts.model import TOKEN_FIELDS, digest, nusd_of, usd_number
from aispend.receipts.trust import Trust, load_trust  # noqa: F401 - one policy, re-exported

#: Worst first: a commit's status is the worst of its receipts'.
_RANK = [verify.INVALID, verify.DUPLICATE, verify.UNKNOWN, verify.UNSIGNED, verify.UNVERIFIED, verify.VALID]
#: Bumped when the checks change, so that cached verdicts of older rules are not reused.
RULES = "rules-3"

Entry = counting.Entry[store.NoteLine]


class VerifyCache:
    """What checking each receipt line found, kept in the index per commit and trusted-signers
    list, so that a report over thousands of commits checks each signature once. Without an
    index (unwritable data dir), everything is simply checked every time."""

    def __init__(self, trust: Trust) -> None:
        self.trust = f"{RULES}:{trust.fingerprint}"
        # Shared by the caches of one process (a report, then its alerts): loaded once.
        self.known: dict[tuple[str, str], verify.Verification] = _KNOWN.setdefault(self.trust, {})
        self.new: list[tuple[str, str, str, str, str, int]] = []
        self.conn: Any = None
        try:
            from aispend.index import db

            self.conn = db.connect(timeout=2)
            if self.known:
                return
            for d, sha, status, problems, usable in self.conn.execute(
                "SELECT digest, commit_sha, status, problems, usable FROM verified WHERE trust = ?", (self.trust,)
            ):
                found = json.loads(problems) if problems != "[]" else []
                self.known[(d, sha)] = verify.Verification(status, found, usable=bool(usable))
        except Exception:  # noqa: BLE001 - a cache, not a requirement
            self.conn = None

    def check(self, line: store.NoteLine, commit: str, tree: str | None, trust: Trust, committed_s: int | None = None) -> verify.Verification:
        assert line.receipt is not None
        d = line.digest or digest(line.text)
        hit = self.known.get((d, commit))
        if hit is None:
            hit = verify.check_receipt(line.receipt, commit, tree, trust.signers, line.text, committed_s)
            self.known[(d, commit)] = hit
            self.new.append((d, commit, self.trust, hit.status, json.dumps(hit.problems), int(hit.usable)))
        return hit

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            if self.new:
                from aispend.index.db import transaction

                with transaction(self.conn):
                    self.conn.executemany("INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?, ?, ?)", self.new)
        except Exception:  # noqa: BLE001 - the next report checks them again
            pass
        finally:
            self.conn.close()


class NoteLookup:
    """Receipts by line digest across every note of the repository (for carried receipts not
    in a range), read once and only when first asked."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.lines: dict[str, bytes] | None = None

    def __call__(self, d: str) -> dict[str, Any] | None:
        if self.lines is None:
            self.lines = store.lines_by_digest(self.repo)
        raw = self.lines.get(d)
        return store.receipt_of(raw) if raw is not None else None


_KNOWN: dict[str, dict[tuple[str, str], verify.Verification]] = {}


def check_lines(
    lines: list[store.NoteLine], commit: str, tree: str | None, trust: Trust, cache: VerifyCache | None = None,
    committed_s: int | None = None,
) -> list[Entry]:
    """Each line of a commit's note with its verification (not yet counted)."""
    out = []
    seen: dict[str, verify.Verification] = {}  # a line copied 50,000 times is checked once
    for line in lines:
        if line.receipt is None:
            v = verify.Verification(verify.INVALID, [line.problem or "unreadable"], usable=False)
        elif line.text in seen:
            v = seen[line.text]
        elif cache is not None:
            v = seen[line.text] = cache.check(line, commit, tree, trust, committed_s)
        else:
            v = seen[line.text] = verify.check_receipt(line.receipt, commit, tree, trust.signers, line.text, committed_s)
        out.append(counting.Entry(line, line.text, line.receipt, v, digest=line.digest))
    return out


def worst(statuses: list[str]) -> str:
    return min(statuses, key=_RANK.index) if statuses else "none"


def money(value: object) -> float:
    """A receipt's decimal string as the JSON number commands print (6 decimals)."""
    return usd_number(nusd_of(value) or 0)


def totals_of(receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum of several receipts' totals (money exact until printed)."""
    out: dict[str, Any] = {f: 0 for f in (*TOKEN_FIELDS, "unpriced_tokens")}
    cost = 0
    for r in receipts:
        t = r["totals"]
        for f in out:
            out[f] += t[f]
        cost += nusd_of(t["cost_usd"]) or 0
    out["cost_usd"] = usd_number(cost)
    return out


def not_counted(entries: list[Entry]) -> dict[str, Any]:
    """The receipts listed apart (never in a total): how many, what they claim, why."""
    by_status: dict[str, int] = {}
    cost = 0
    for e in entries:
        if e.fate != counting.APART:
            continue
        by_status[e.status] = by_status.get(e.status, 0) + 1
        if e.receipt is not None and e.result.usable and e.status != verify.DUPLICATE:
            cost += nusd_of(e.receipt["totals"]["cost_usd"]) or 0
    return {"receipts": sum(by_status.values()), "claimed_cost_usd": usd_number(cost), "by_status": dict(sorted(by_status.items()))}


def notes_warning(repo: git.Repo) -> str | None:
    """What to say when the receipts here may be missing or stale (no network is touched)."""
    state = git.notes_state(repo)
    if state == "absent":
        return "no receipts fetched: run aispend sync"
    if state == "behind":
        return "receipts fetched from a remote are not merged here yet: run aispend sync"
    return None


def verdict(entries: list[Entry], trust: Trust) -> str:
    """The one-word verdict a reviewer reads first: VALID, UNTRUSTED, UNCHECKED, INVALID, NONE."""
    if not entries:
        return "NONE"
    if any(e.status in (verify.INVALID, verify.DUPLICATE, verify.UNSIGNED) for e in entries):
        return "INVALID"
    if any(e.status == verify.UNKNOWN for e in entries):
        return "UNTRUSTED"
    if not trust.checked:
        return "UNCHECKED"
    return "VALID"


def commit_view(repo: git.Repo, rev: str, trust: Trust) -> dict[str, Any]:
    """``aispend show --json``: the receipts of one commit, what counts of them, and their verification."""
    commit = git.read_commit(repo, rev)
    lines = store.lines_of(repo, commit.sha)
    ledger = counting.count(check_lines(lines, commit.sha, commit.tree, trust, committed_s=commit.committed_s), NoteLookup(repo))
    receipts = []
    problems: list[str] = list(trust.problems)
    for e in ledger.entries:
        problems.extend(f"receipt {e.where.number}: {p}" for p in e.result.problems)
        if e.status == verify.DUPLICATE:
            problems.append(f"receipt {e.where.number}: a duplicate of another line (counted once)")
        if e.receipt is None or not e.result.usable:
            continue
        receipts.append({
            **_numbers(e.receipt),
            "verification": {
                "status": e.status, "problems": e.result.problems, "counted": e.fate == counting.COUNTED,
                "principal": e.result.principal, "key_fingerprint": verify.fingerprint(e.result.key),
            },
        })
    if ledger.entries and not trust.checked:
        problems.append("no allowed-signers list: signers were not checked, so no receipt counts")
    status = worst([e.status for e in ledger.entries])
    return {
        "commit": commit.sha,
        "author": commit.author_email,
        "verdict": verdict(ledger.entries, trust),
        "trust": trust.describe(),
        "notes": notes_warning(repo),
        "receipts": receipts,
        "totals": totals_of([r for e in ledger.entries if (r := e.counted_receipt) is not None]),
        "not_counted": not_counted(ledger.entries),
        "verification": {"status": status, "problems": problems},
    }
def _numbers(r: dict[str, Any]) -> dict[str, Any]:
    """A receipt for command output: money as numbers (the receipt itself keeps strings)."""
    out = dict(r)
    out["totals"] = {**r["totals"], "cost_usd": money(r["totals"]["cost_usd"])}
    out["sessions"] = [
        {**s, "models": [{**m, "cost_usd": None if m["cost_usd"] is None else money(m["cost_usd"])} for m in s["models"]]}
        for s in r["sessions"]
    ]
    out.pop("sig", None)
    return out


@dataclass
class RangeResult:
    commits: int = 0
    with_receipts: int = 0
    receipts: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    counted: int = 0
    carried: int = 0
    unresolved: int = 0  # receipts held by two counted ones whose notes are missing here

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_range(repo: git.Repo, revs: list[str], trust: Trust) -> RangeResult:
    """Check every line of every note on every commit of ``git rev-list REVS``."""
    res = RangeResult()
    entries: list[Entry] = []
    for c, lines in store.commits_with_lines(repo, revs):
        res.commits += 1
        if lines:
            res.with_receipts += 1
            entries.extend(check_lines(lines, c.sha, c.tree, trust, committed_s=c.committed_s))
    ledger = counting.count(entries, NoteLookup(repo))
    res.unresolved = ledger.unresolved
    for e in ledger.entries:
        res.receipts += 1
        res.by_status[e.status] = res.by_status.get(e.status, 0) + 1
        if counting.failing(e):
            problems = e.result.problems if e.status != verify.DUPLICATE else ["the same receipt as another line: counted once"]
            res.failures.append({"commit": e.where.commit, "line": e.where.number, "status": e.status, "problems": problems})
    res.counted = len(ledger.counted)
    res.carried = sum(1 for e in ledger.entries if e.fate == counting.CARRIED)
    return res
