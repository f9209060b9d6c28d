"""The one counting rule: which receipts of a set count, each once (docs/security.md).

Every total aispend gives (show, report, export, budget, carry, ``--unshipped``) comes
from :func:`count` over the receipt lines of its range:

1. Only a receipt that verifies and whose signer the trust list allows (``valid``)
   counts. Anything else (invalid, unsigned, an unknown or unchecked signer) is listed
   apart with its status and never added.
2. A receipt is its signed content (:func:`aispend.receipts.model.identity`): a second
   line with the same identity is a ``duplicate``, listed apart.
3. A trusted receipt whose line another trusted receipt of the set lists in
   ``carried_from`` is ``carried``: its spend is inside the carrier. Only trusted receipts
   can carry, so an untrusted line naming a trusted one hides nothing.
4. What two counted receipts both hold is counted once. A carrier holds its own spend plus
   every receipt it carries, in full (``model.build``). When the same receipt is inside two
   counted receipts (two squash merges of one branch, one commit cherry-picked onto two
   branches, a carrier of two carriers of it), every counted receipt after the first that
   holds it has it subtracted (:attr:`Entry.net`), session by session and model by model.
   Carried receipts are found by digest in the set, else through ``lookup`` (every note of
   the repository).

Pure: no git, no files. Standard library only (the hooks use it when carrying).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, TypeVar

from aispend.receipts import verify
from aispend.receipts.model import TOKEN_FIELDS, digest, identity, nusd_of, usd

#: At most this many carried receipts are followed per count (each is a line someone trusted wrote).
WALK_LIMIT = 200_000

T = TypeVar("T")

#: What happened to a line in the count.
COUNTED = "counted"
CARRIED = "carried"  # trusted, its spend inside a trusted carrier of the set
APART = "apart"  # not trusted, not valid, or a duplicate: never in a total


@dataclass
class Entry(Generic[T]):
    """One note line of the set: ``where`` is the caller's (a commit, a line number...)."""

    where: T
    text: str
    receipt: dict[str, Any] | None
    result: verify.Verification
    fate: str = APART
    status: str = ""  # the verification status, or ``duplicate``
    key: str = ""  # the receipt's identity (empty when unreadable)
    net: dict[str, Any] | None = None  # a counted receipt less what another counted one holds too
    digest: str = ""  # the line's digest when the caller has it already (else computed)

    @property
    def counted_receipt(self) -> dict[str, Any] | None:
        """What this line adds to a total: its receipt (net of overlaps) when it counts, else None."""
        if self.fate != COUNTED:
            return None
        return self.net if self.net is not None else self.receipt


@dataclass
class Ledger(Generic[T]):
    entries: list[Entry[T]] = field(default_factory=list)
    #: Receipts held by two counted receipts that could not be found to subtract (their notes
    #: are missing here): those totals may count them twice; verify warns.
    unresolved: int = 0

    @property
    def counted(self) -> list[Entry[T]]:
        return [e for e in self.entries if e.fate == COUNTED]


def count(entries: Iterable[Entry[T]], lookup: Callable[[str], dict[str, Any] | None] | None = None) -> Ledger[T]:
    """Apply the counting rule to ``entries`` (in their order: the first of duplicates stays,
    and the first counted receipt keeps what it shares with later ones). ``lookup`` finds a
    receipt by its line digest outside the set."""
    ledger: Ledger[T] = Ledger(list(entries))
    seen: set[str] = set()
    trusted: list[Entry[T]] = []
    others: list[Entry[T]] = []
    for e in ledger.entries:
        e.status = e.result.status
        e.fate = APART
        if e.receipt is None or not e.result.usable:
            continue
        e.key = identity(e.receipt, e.text)  # usable: the line is the receipt's canonical form
        e.digest = e.digest or digest(e.text)
        (trusted if e.result.status == verify.VALID else others).append(e)
    # Valid lines first: a copy elsewhere (invalid there: another commit) never displaces one.
    for e in list(trusted):
        if e.key in seen:
            e.status = verify.DUPLICATE
            trusted.remove(e)
        seen.add(e.key)
    for e in others:
        if e.key in seen and e.status != verify.INVALID:
            e.status = verify.DUPLICATE
        seen.add(e.key)
    # Lines are named by the digest of their bytes in carried_from; a receipt is its identity.
    by_line = {e.digest: e.key for e in ledger.entries if e.key}
    carried: set[str] = set()
    for c in trusted:
        for d in c.receipt.get("carried_from", []) if c.receipt else []:
            k = by_line.get(d)
            if k is not None and k != c.key:
                carried.add(k)
    for e in trusted:
        e.fate = CARRIED if e.key in carried else COUNTED
    _net(ledger, lookup)
    return ledger


def _net(ledger: Ledger[T], lookup: Callable[[str], dict[str, Any] | None] | None) -> None:
    """Rule 4: walk what each counted receipt carries; subtract what is already counted."""
    roots = [e for e in ledger.entries if e.fate == COUNTED and e.receipt is not None]
    known = {e.digest: e.receipt for e in ledger.entries if e.key and e.receipt is not None}

    def resolve(d: str) -> dict[str, Any] | None:
        r = known.get(d)
        if r is None and lookup is not None:
            r = known[d] = lookup(d)  # type: ignore[assignment]
        return r

    included = {e.key for e in roots}  # each counted receipt holds its own spend
    budget = WALK_LIMIT
    for root in roots:
        assert root.receipt is not None
        minus: list[dict[str, Any]] = []
        # Every path, not every node: a carrier of two carriers of X holds X twice.
        stack = [d for d in root.receipt.get("carried_from", []) if isinstance(d, str)]
        while stack and budget > 0:
            budget -= 1
            d = stack.pop()
            r = resolve(d)
            k = identity(r) if r is not None else d
            if k in included:
                if r is not None:
                    minus.append(r)
                else:
                    ledger.unresolved += 1  # held twice, but not found here to subtract
                continue
            included.add(k)
            if r is not None:
                stack.extend(x for x in r.get("carried_from", []) if isinstance(x, str))
        if minus:
            root.net = subtract(root.receipt, minus)


def subtract(receipt: dict[str, Any], minus: list[dict[str, Any]]) -> dict[str, Any]:
    """``receipt`` less the spend of ``minus``, session by session and model by model (never
    below zero), its totals summed again. Only for counting: nothing signed changes."""
    less: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in minus:
        for s in r.get("sessions", []):
            for m in s.get("models", []):
                acc = less.setdefault((s["tool"], s["session"], m["model"]), {f: 0 for f in (*TOKEN_FIELDS, "unpriced_tokens")} | {"cost": 0})
                for f in (*TOKEN_FIELDS, "unpriced_tokens"):
                    acc[f] += int(m.get(f, 0))
                acc["cost"] += (nusd_of(m["cost_usd"]) or 0) if m.get("cost_usd") is not None else 0
    sessions = []
    totals: dict[str, Any] = {f: 0 for f in (*TOKEN_FIELDS, "unpriced_tokens")}
    cost = 0
    for s in receipt["sessions"]:
        models = []
        for m in s["models"]:
            part = less.get((s["tool"], s["session"], m["model"]))
            if part is None:
                out = dict(m)
            else:
                out = {**m, **{f: max(0, m[f] - part[f]) for f in (*TOKEN_FIELDS, "unpriced_tokens")}}
                if m["cost_usd"] is not None:
                    out["cost_usd"] = usd(max(0, (nusd_of(m["cost_usd"]) or 0) - part["cost"]))
            if not any(out[f] for f in (*TOKEN_FIELDS, "unpriced_tokens")):
                continue
            models.append(out)
            for f in totals:
                totals[f] += out[f]
            cost += (nusd_of(out["cost_usd"]) or 0) if out["cost_usd"] is not None else 0
        if models:
            sessions.append({**s, "models": models})
    totals["cost_usd"] = usd(cost)
    return {**receipt, "sessions": sessions, "totals": totals}


def failing(e: Entry[Any]) -> bool:
    """Whether ``aispend verify`` fails on this line (an unchecked signer only warns)."""
    return e.status in (verify.INVALID, verify.UNKNOWN, verify.UNSIGNED, verify.DUPLICATE)
