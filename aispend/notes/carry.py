"""Writing a commit's receipt, and carrying receipts from the commits it replaces.

Used by the hooks (a commit's own usage; amend, rebase, cherry-pick) and by
``aispend carry`` (forge squash and rebase merges, where no hook ran).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aispend import __version__, clock, git
from aispend.attribution import SECOND_MS, Claimed
from aispend.index.db import transaction
from aispend.notes import store


@dataclass(frozen=True)
class Written:
    line: str
    key_path: Path
    created_key: bool


def carriable(
    repo: git.Repo, olds: list[str], trust: Any, signer_public: str, log: Callable[[str], None] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The receipts of ``olds`` a new receipt may carry, with their line digests, each once.

    Carrying never turns untrusted spend into trusted spend: a receipt is carried only when
    it counts under the repository's trust (``trust``), or when it was signed by the very key
    that signs the carrier (the same signer vouching again: amend and rebase on a machine
    whose key the list does not hold yet). Among those, the counting rule applies: a receipt
    and its carrier both in ``olds`` are carried once (the carrier). Anything else (forged,
    copied, untrusted) is left behind and logged.
    """
    from aispend.receipts import counting, verify

    me = signer_public.split()[:2]
    entries: list[counting.Entry[str]] = []
    for old in olds:
        commit = git.read_commit(repo, old)
        for line in store.lines_of(repo, commit.sha):
            if line.receipt is None:
                continue
            v = verify.check_receipt(line.receipt, commit.sha, commit.tree, trust.signers, line.text, commit.committed_s)
            if v.status != verify.VALID:
                own = v.status in (verify.UNVERIFIED, verify.UNKNOWN) and (v.key or "").split()[:2] == me
                if not own:
                    if log:
                        why = v.problems[0] if v.problems else v.status
                        log(f"not carrying a receipt of {commit.sha[:12]}: {why}")
                    continue
                v = verify.Verification(verify.VALID, [], v.principal, v.key)  # trusted as far as this signer goes
            entries.append(counting.Entry(commit.sha, line.text, line.receipt, v, digest=line.digest))
    return [(e.digest, e.receipt) for e in counting.count(entries).counted if e.receipt is not None]


def _prompts(conn: sqlite3.Connection, claimed: list[Claimed], until_ms: int) -> dict[tuple[str, str], tuple[int, str | None]]:
    """Per session: how many prompts up to ``until_ms``, and the digest chain over them."""
    from aispend.index.ingest import prompt_chain

    out: dict[tuple[str, str], tuple[int, str | None]] = {}
    for tool, sid in {(c.tool, c.session_id) for c in claimed}:
        n, chain = prompt_chain(conn, sid, until_ms)
        out[(tool, sid)] = (n, "sha256:" + chain.hex() if n else None)
    return out


def write_receipt(
    conn: sqlite3.Connection,
    repo: git.Repo,
    commit: git.Commit,
    claimed: list[Claimed],
    carried: list[tuple[str, dict[str, Any]]],
    signer_email: str,
    key_path: Path | None = None,
    key: Any = None,
    until_ms: int | None = None,
) -> Written | None:
    """Build, sign and attach the receipt of ``commit`` (its claimed usage plus what it carries);
    None when there is nothing to bill. ``key`` (a loaded SigningKey) or ``key_path``: sign
    with that key instead of this machine's. ``until_ms``: the moment of the commit (its
    sessions' prompts are counted up to it); else the end of its committer second."""
    if not claimed and not carried:
        return None
    from aispend.receipts import model, signing

    pricing_ids = sorted({c.pricing_id for c in claimed if c.pricing_id})
    if not pricing_ids:
        pricing_ids = sorted({r["pricing"] for _, r in carried}) or [_current_pricing()]
    receipt = model.build(
        commit=commit.sha,
        tree=commit.tree,
        parents=commit.parents,
        author=commit.author_email,
        committed_s=commit.committed_s,
        claimed=claimed,
        prompts=_prompts(conn, claimed, until_ms if until_ms is not None else commit.committed_s * 1000 + SECOND_MS),
        carried=[r for _, r in carried],
        carried_digests=[d for d, _ in carried],
        pricing=",".join(pricing_ids),
        version=__version__,
    )
    created = False
    if key is None:
        key, created = signing_key(signer_email, key_path)
    line = signing.sign(receipt, key, signer_email)
    if len(line.encode("utf-8")) > model.MAX_LINE:
        from aispend.errors import AispendError

        raise AispendError(f"the receipt of {commit.sha[:12]} would be over {model.MAX_LINE >> 20} MB, more than readers accept: not written")
    store.append(repo, commit.sha, line)
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO receipts (digest, commit_sha, repo, written_ms, line) VALUES (?, ?, ?, ?, ?)",
            (model.digest(line), commit.sha, str(repo.common_dir), clock.now_ms(), line),
        )
    return Written(line, key.path, created)


def signing_key(signer_email: str, key_path: Path | None = None) -> tuple[Any, bool]:
    """The key to sign with (``key_path``, else this machine's), and whether it was just made."""
    from aispend.receipts import keys, signing

    if key_path is not None:
        return keys.load_signing_key(key_path), False
    return signing.ensure_key(comment=f"aispend {signer_email}")


def _current_pricing() -> str:
    from aispend.pricing import table

    return table.load().id


def carry_onto(
    conn: sqlite3.Connection, repo: git.Repo, onto: str, olds: list[str], signer_email: str, trust: Any,
    key_path: Path | None = None, log: Callable[[str], None] | None = None,
) -> tuple[Written | None, int]:
    """Give ``onto`` a receipt carrying every carriable receipt of ``olds``; and how many it carries."""
    commit = git.read_commit(repo, onto)
    key, _ = signing_key(signer_email, key_path)
    carried = carriable(repo, olds, trust, key.public_line, log)
    return write_receipt(conn, repo, commit, [], carried, signer_email, key=key), len(carried)


def patch_ids(repo: git.Repo, revs: list[str]) -> dict[str, list[str]]:
    """``git patch-id --stable`` of every commit of ``git rev-list REVS``: patch id -> its commits,
    newest first (a branch may make the same change twice: add a line, drop it, add it again)."""
    commits = git.run(["rev-list", "--no-merges", *revs, "--"], repo.worktree)
    if not commits.strip():
        return {}
    diffs = git.run(["diff-tree", "--stdin", "-p", "--no-color"], repo.worktree, input=commits.encode())
    ids = git.run(["patch-id", "--stable"], repo.worktree, input=diffs.encode("utf-8", "surrogateescape"))
    out: dict[str, list[str]] = {}
    for row in ids.splitlines():
        pid, _, sha = row.partition(" ")
        out.setdefault(pid, []).append(sha.strip())
    return out
