"""Checking a receipt: its schema, its signature, its signer, its commit, its sums.

Receipts come from notes anyone can push, so every field is checked before it
is believed, and nothing here raises on malformed input: problems are returned.
Standard library and cryptography only (it also runs in the post-rewrite hook).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any


from aispend.git import LAST_TIME_S
from aispend.receipts import keys, sshsig
from aispend.receipts.model import TOKEN_FIELDS, bad_char, canonical, iso_ms, nusd_of, parse_iso_ms, signed_bytes, signed_part, usd

#: Outcomes, best first.
VALID = "valid"  # signature good, signer allowed for its principal
UNVERIFIED = "unverified-signer"  # signature good, but no allowed-signers list to check the signer against
UNKNOWN = "unknown-signer"  # signature good, signer not allowed for its principal
UNSIGNED = "unsigned"
INVALID = "invalid"  # bad signature, bad schema, not canonical, wrong commit, sums that do not add up
DUPLICATE = "duplicate"  # another line of the range is the same receipt (same signed content)

#: Integers a receipt may hold: what every JSON reader (jq, JavaScript) reads exactly.
MAX_INT = 2**53 - 1
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")  # fullmatch
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # fullmatch
#: Characters no receipt string may hold: controls, format characters (bidi overrides,
#: zero-width), surrogates, private use, unassigned, line and paragraph separators.

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_TOP: dict[str, Any] = {
    "v": int, "commit": str, "tree": str, "parents": list, "author": str, "committed_at": str,
    "window": (dict, type(None)), "sessions": list, "totals": dict, "pricing": str, "aispend": str,
    "carried_from": list, "signer": dict, "sig": str,
}
_OPTIONAL = {"signer", "sig"}


@dataclass
class Verification:
    status: str
    problems: list[str] = field(default_factory=list)
    principal: str | None = None
    key: str | None = None
    usable: bool = True  # well-formed: its numbers can be read (a bad signature still may be)


def _int(v: object) -> bool:
    return type(v) is int and 0 <= v <= MAX_INT


def _timestamp(v: object) -> bool:
    """Exactly the form receipts are written in: ``2026-03-01T09:30:00.000Z``."""
    if not isinstance(v, str) or not _TS.fullmatch(v):
        return False
    ms = parse_iso_ms(v)
    return ms is not None and iso_ms(ms) == v


def money_ok(v: object) -> bool:
    """Exactly the decimal form receipts are written in (no exponent, sign, padding, space)."""
    n = nusd_of(v)
    return n is not None and usd(n) == v


def _bad_text(v: object) -> bool:
    """Whether any string inside ``v`` holds a character no receipt may hold."""
    if isinstance(v, str):
        return any(map(bad_char, v))
    if isinstance(v, dict):
        return any(_bad_text(k) or _bad_text(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_bad_text(x) for x in v)
    return False


_PLAIN = re.compile(r"[ -\[\]-~]*")  # printable ASCII without a backslash (fullmatch)


def form_problems(r: dict[str, Any], line: str) -> list[str]:
    """Why ``line`` is not byte for byte the one way of writing receipt ``r`` (empty when it is)."""
    # A line of printable ASCII with no escape holds no string with a bad character: the
    # walk through every string is only needed for the others (non-ASCII text, escapes).
    if not _PLAIN.fullmatch(line) and _bad_text(r):
        return ["holds control or invisible characters"]
    if canonical(r) != line:
        return ["not in canonical form (keys sorted, no spaces, no escapes, no duplicate keys)"]
    sig = r.get("sig")
    if isinstance(sig, str):
        try:
            if base64.b64encode(base64.b64decode(sig, validate=True)).decode("ascii") != sig:
                return ["sig is not canonical base64"]
        except (binascii.Error, ValueError):
            return ["sig is not base64"]
    return []


def schema_problems(r: dict[str, Any]) -> list[str]:
    """What is wrong with the shape of receipt ``r`` (empty when nothing)."""
    out: list[str] = []
    for k, t in _TOP.items():
        if k not in r:
            if k not in _OPTIONAL:
                out.append(f"missing field {k!r}")
            continue
        if not isinstance(r[k], t) or (t is int and type(r[k]) is not int):
            out.append(f"field {k!r} has the wrong type")
    unknown = sorted(set(r) - set(_TOP))
    if unknown:
        out.append(f"unknown fields: {', '.join(unknown[:5])}")
    if out:
        return out
    if r["v"] != 1:
        return [f"unsupported receipt version {r['v']}"]
    for k in ("commit", "tree"):
        if not _SHA.match(r[k]):
            out.append(f"{k} is not an object id")
    if not all(isinstance(p, str) and _SHA.match(p) for p in r["parents"]):
        out.append("parents are not object ids")
    if not _timestamp(r["committed_at"]):
        out.append("committed_at is not a timestamp")
    w = r["window"]
    if w is not None and (set(w) != {"start", "end"} or not _timestamp(w.get("start")) or not _timestamp(w.get("end"))):
        out.append("window is not {start, end}")
    cf = r["carried_from"]
    if not all(isinstance(d, str) and _DIGEST.fullmatch(d) for d in cf) or cf != sorted(set(cf)):
        out.append("carried_from holds something other than sorted, distinct receipt digests")
    for i, s in enumerate(r["sessions"]):
        where = f"sessions[{i}]"
        if not isinstance(s, dict):
            out.append(f"{where} is not an object")
            continue
        if set(s) != {"tool", "session", "models", "first_ts", "last_ts", "prompts", "prompt_digest"}:
            out.append(f"{where} has the wrong fields")
            continue
        if not isinstance(s["tool"], str) or not isinstance(s["session"], str) or not _int(s["prompts"]):
            out.append(f"{where} has a field of the wrong type")
        if s["prompt_digest"] is not None and not (isinstance(s["prompt_digest"], str) and _DIGEST.fullmatch(s["prompt_digest"])):
            out.append(f"{where}.prompt_digest is not a digest")
        if not _timestamp(s["first_ts"]) or not _timestamp(s["last_ts"]):
            out.append(f"{where} has a bad first_ts or last_ts")
        if not isinstance(s["models"], list) or not s["models"]:
            out.append(f"{where}.models is empty")
            continue
        for j, m in enumerate(s["models"]):
            out.extend(_model_problems(m, f"{where}.models[{j}]"))
    t = r["totals"]
    if set(t) != {*TOKEN_FIELDS, "cost_usd", "unpriced_tokens"}:
        out.append("totals has the wrong fields")
    elif not all(_int(t[f]) for f in (*TOKEN_FIELDS, "unpriced_tokens")) or not money_ok(t["cost_usd"]):
        out.append("totals has a field of the wrong type")
    if "signer" in r:
        sg = r["signer"]
        if set(sg) != {"principal", "key"} or not all(isinstance(sg[k], str) for k in ("principal", "key")):
            out.append("signer is not {principal, key}")
    return out


def _model_problems(m: object, where: str) -> list[str]:
    if not isinstance(m, dict) or set(m) != {"model", *TOKEN_FIELDS, "cost_usd", "unpriced_tokens"}:
        return [f"{where} has the wrong fields"]
    if not isinstance(m["model"], str) or not all(_int(m[f]) for f in (*TOKEN_FIELDS, "unpriced_tokens")):
        return [f"{where} has a field of the wrong type"]
    if m["cost_usd"] is not None and not money_ok(m["cost_usd"]):
        return [f"{where}.cost_usd is not a decimal string"]
    return []


def sum_problems(r: dict[str, Any]) -> list[str]:
    """Totals must equal the sum of the sessions' models, field by field (money exactly)."""
    sums = {f: 0 for f in (*TOKEN_FIELDS, "unpriced_tokens")}
    cost = 0
    for s in r["sessions"]:
        for m in s["models"]:
            for f in sums:
                sums[f] += m[f]
            cost += nusd_of(m["cost_usd"]) or 0 if m["cost_usd"] is not None else 0
    out = [f"totals.{f} is {r['totals'][f]}, its parts sum to {v}" for f, v in sums.items() if r["totals"][f] != v]
    if nusd_of(r["totals"]["cost_usd"]) != cost:
        out.append(f"totals.cost_usd is {r['totals']['cost_usd']}, its parts sum to a different amount")
    return out


def check_receipt(
    r: dict[str, Any],
    commit: str,
    tree: str | None = None,
    signers: list[keys.AllowedSigner] | None = None,
    line: str | None = None,
    committed_s: int | None = None,
) -> Verification:
    """Everything ``aispend verify`` checks about one receipt attached to ``commit``.

    ``line`` is the note line ``r`` was read from: it must be byte for byte the canonical
    form of ``r`` (else a variant of one receipt could pass for another). ``signers`` is
    the allowed-signers list, checked at the receipt's ``committed_at`` (``valid-after``,
    ``valid-before``); None means there is none, and a good signature is then only
    ``unverified-signer``. ``committed_s`` is the commit's committer time: the receipt's
    ``committed_at`` must say the same (else a retired key could sign new commits backdated).
    """
    problems = schema_problems(r)
    if problems:
        return Verification(INVALID, problems, usable=False)
    if line is not None:
        problems = form_problems(r, line)
        if problems:
            return Verification(INVALID, problems, usable=False)
    if r["commit"] != commit:
        problems.append(f"receipt is for commit {r['commit'][:12]}, attached to {commit[:12]}: copied from another commit")
    if tree is not None and r["tree"] != tree:
        problems.append(f"receipt is for tree {r['tree'][:12]}, the commit has {tree[:12]}")
    if committed_s is not None and 0 <= committed_s <= LAST_TIME_S and r["committed_at"] != iso_ms(committed_s * 1000):
        problems.append(f"receipt says the commit was made at {r['committed_at']}, the commit says {iso_ms(committed_s * 1000)}")
    problems.extend(sum_problems(r))
    if "sig" not in r or "signer" not in r:
        return Verification(INVALID if problems else UNSIGNED, problems)
    principal, claimed_key = r["signer"]["principal"], r["signer"]["key"]
    try:
        blob = base64.b64decode(r["sig"], validate=True)
        # The line is canonical (checked above): the signed bytes are the line without its sig.
        signed_by = sshsig.verify(blob, signed_bytes(r, line) if line is not None else signed_part(r))
    except (binascii.Error, ValueError) as e:
        problems.append(f"bad signature: {e}")
        return Verification(INVALID, problems, principal, claimed_key)
    if _key_id(signed_by) != _key_id(claimed_key):
        problems.append("signed by a different key than the receipt names")
    if problems:
        return Verification(INVALID, problems, principal, signed_by)
    if signers is None:
        return Verification(UNVERIFIED, [], principal, signed_by)
    when_ms = parse_iso_ms(r["committed_at"]) or 0
    if keys.signer_allowed(signers, principal, signed_by, when_s=when_ms // 1000):
        return Verification(VALID, [], principal, signed_by)
    return Verification(UNKNOWN, [f"{principal} is not an allowed signer with this key at {r['committed_at']}"], principal, signed_by)


def fingerprint(public_line: str | None) -> str | None:
    """A key's ``SHA256:...`` fingerprint, as ``ssh-keygen -l`` prints it."""
    if not public_line:
        return None
    parts = public_line.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        return None
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def _key_id(line: str) -> tuple[str, ...]:
    return tuple(line.split()[:2])
