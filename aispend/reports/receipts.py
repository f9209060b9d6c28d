"""What the receipts of a commit (``aispend show``) or of a range (``aispend verify``) say.

Everything read from a note is untrusted: each line is checked (schema,
signature, signer, commit, tree, sums) and reported with its problems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aispend import git
from aispend.notes import store
from aispend.receipts import verify
from aispend.receipts.trust import Trust, load_trust  # noqa: F401 - one policy, re-exported
from aispend.receipts.model import TOKEN_FIELDS, digest, nusd_of, usd_number

#: Worst first: a commit's status is the worst of its receipts'.
_RANK = [verify.INVALID, verify.UNKNOWN, verify.UNSIGNED, verify.UNVERIFIED, verify.VALID]


@dataclass
class Checked:
    """One note line and its verification."""

    line: store.NoteLine
    result: verify.Verification


class VerifyCache:
    """What checking each receipt line found, kept in the index per commit and trusted-signers
    list, so that a report over thousands of commits checks each signature once. Without an
    index (unwritable data dir), everything is simply checked every time."""

    def __init__(self, trust: Trust) -> None:
        self.trust = trust.fingerprint
        self.known: dict[tuple[str, str], verify.Verification] = {}
        self.new: list[tuple[str, str, str, str, str, int]] = []
        self.conn: Any = None
        try:
            from aispend.index import db

            self.conn = db.connect(timeout=2)
            for d, sha, status, problems, usable in self.conn.execute(
                "SELECT digest, commit_sha, status, problems, usable FROM verified WHERE trust = ?", (self.trust,)
            ):
                found = json.loads(problems) if problems != "[]" else []
                self.known[(d, sha)] = verify.Verification(status, found, usable=bool(usable))
        except Exception:  # noqa: BLE001 - a cache, not a requirement
            self.conn = None

    def check(self, line: store.NoteLine, commit: str, tree: str | None, trust: Trust) -> verify.Verification:
        assert line.receipt is not None
        d = digest(line.text)
        hit = self.known.get((d, commit))
        if hit is None:
            hit = verify.check_receipt(line.receipt, commit, tree, trust.signers)
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


def check_lines(
    lines: list[store.NoteLine], commit: str, tree: str | None, trust: Trust, cache: VerifyCache | None = None
) -> list[Checked]:
    out = []
    for line in lines:
        if line.receipt is None:
            v = verify.Verification(verify.INVALID, [line.problem or "unreadable"], usable=False)
        elif cache is not None:
            v = cache.check(line, commit, tree, trust)
        else:
            v = verify.check_receipt(line.receipt, commit, tree, trust.signers)
        out.append(Checked(line, v))
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


def commit_view(repo: git.Repo, rev: str, trust: Trust) -> dict[str, Any]:
    """``aispend show --json``: the receipts of one commit, their sum and their verification."""
    commit = git.read_commit(repo, rev)
    checked = check_lines(store.lines_of(repo, commit.sha), commit.sha, commit.tree, trust)
    receipts = []
    good: list[dict[str, Any]] = []
    problems: list[str] = list(trust.problems)
    for c in checked:
        problems.extend(f"receipt {c.line.number}: {p}" for p in c.result.problems)
        if c.line.receipt is None or not c.result.usable:
            continue
        r = c.line.receipt
        good.append(r)
        receipts.append({**_numbers(r), "verification": {"status": c.result.status, "problems": c.result.problems}})
    status = worst([c.result.status for c in checked])
    if checked and trust.signers is None and status == verify.UNVERIFIED:
        problems.append("no allowed-signers list: signatures are checked, signers' identities are not")
    return {
        "commit": commit.sha,
        "author": commit.author_email,
        "receipts": receipts,
        "totals": totals_of(good),
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

    @property
    def ok(self) -> bool:
        return not self.failures


#: Statuses that fail ``aispend verify``; an unverified signer (no list) only warns.
FAILING = {verify.INVALID, verify.UNKNOWN, verify.UNSIGNED}


def verify_range(repo: git.Repo, revs: list[str], trust: Trust) -> RangeResult:
    """Check every receipt on every commit of ``git log REVS``."""
    res = RangeResult()
    for sha, tree, lines in store.lines_in(repo, revs):
        res.commits += 1
        if not lines:
            continue
        res.with_receipts += 1
        for c in check_lines(lines, sha, tree, trust):
            res.receipts += 1
            res.by_status[c.result.status] = res.by_status.get(c.result.status, 0) + 1
            if c.result.status in FAILING:
                res.failures.append(
                    {"commit": sha, "line": c.line.number, "status": c.result.status, "problems": c.result.problems}
                )
    return res
