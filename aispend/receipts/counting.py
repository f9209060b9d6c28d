"""The one counting rule: which receipts of a set count, each once (docs/security.md).

Every total aispend gives (show, report, export, budget, carry, ``--unshipped``) comes
from :func:`count` over the receipt lines of its range:

1. Only a receipt that verifies and whose signer the trust list allows (``valid``)
   counts. Anything else (invalid, unsigned, an unknown or unchecked signer) is listed
   apart with its status and never added.
2. A receipt is its signed content (:func:`aispend.receipts.model.identity`): a second
   line with the same identity is a ``duplicate``, listed apart.
3. A counted receipt whose line another *counted-or-carried* receipt lists in
   ``carried_from`` is ``carried``: its spend is inside the carrier. Only trusted receipts
   can carry, so an untrusted line naming a trusted one hides nothing.

Pure: no git, no files. Standard library only (the hooks use it when carrying).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, TypeVar

from aispend.receipts import verify
from aispend.receipts.model import digest, identity

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


@dataclass
class Ledger(Generic[T]):
    entries: list[Entry[T]] = field(default_factory=list)

    @property
    def counted(self) -> list[Entry[T]]:
        return [e for e in self.entries if e.fate == COUNTED]

    @property
    def apart(self) -> list[Entry[T]]:
        return [e for e in self.entries if e.fate == APART]


def count(entries: Iterable[Entry[T]]) -> Ledger[T]:
    """Apply the counting rule to ``entries`` (in their order: the first of duplicates stays)."""
    ledger: Ledger[T] = Ledger(list(entries))
    seen: set[str] = set()
    trusted: list[Entry[T]] = []
    others: list[Entry[T]] = []
    for e in ledger.entries:
        e.status = e.result.status
        e.fate = APART
        if e.receipt is None or not e.result.usable:
            continue
        e.key = identity(e.receipt)
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
    by_line = {digest(e.text): e.key for e in ledger.entries if e.key}
    carried: set[str] = set()
    for c in trusted:
        for d in c.receipt.get("carried_from", []) if c.receipt else []:
            k = by_line.get(d)
            if k is not None and k != c.key:
                carried.add(k)
    for e in trusted:
        e.fate = CARRIED if e.key in carried else COUNTED
    return ledger


def failing(e: Entry[Any]) -> bool:
    """Whether ``aispend verify`` fails on this line (an unchecked signer only warns)."""
    return e.status in (verify.INVALID, verify.UNKNOWN, verify.UNSIGNED, verify.DUPLICATE)
