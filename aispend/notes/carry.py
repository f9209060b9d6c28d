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
from aispend.attribution import SKEW_MS, Claimed
from aispend.index.db import transaction
from aispend.notes import store


@dataclass(frozen=True)
class Written:
    line: str
    key_path: Path
    created_key: bool


def valid_receipts(repo: git.Repo, sha: str, log: Callable[[str], None] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The receipts of ``sha`` worth carrying, with their digests: well-formed, signed
    correctly, about ``sha``. Anything else (a forged or copied line) is left behind."""
    from aispend.receipts import model, verify

    out = []
    for line in store.lines_of(repo, sha):
        if line.receipt is None:
            continue
        problems = verify.check_receipt(line.receipt, sha).problems
        if problems:
            if log:
                log(f"not carrying a receipt of {sha[:12]}: {problems[0]}")
            continue
        out.append((model.digest(line.text), line.receipt))
    return out


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
) -> Written | None:
    """Build, sign and attach the receipt of ``commit`` (its claimed usage plus what it carries);
    None when there is nothing to bill. ``key_path``: sign with that key instead of this machine's."""
    if not claimed and not carried:
        return None
    from aispend.receipts import keys, model, signing

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
        prompts=_prompts(conn, claimed, commit.committed_s * 1000 + SKEW_MS),
        carried=[r for _, r in carried],
        carried_digests=[d for d, _ in carried],
        pricing=",".join(pricing_ids),
        version=__version__,
    )
    if key_path is not None:
        key, created = keys.load_signing_key(key_path), False
    else:
        key, created = signing.ensure_key(comment=f"aispend {signer_email}")
    line = signing.sign(receipt, key, signer_email)
    store.append(repo, commit.sha, line)
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO receipts (digest, commit_sha, repo, written_ms, line) VALUES (?, ?, ?, ?, ?)",
            (model.digest(line), commit.sha, str(repo.common_dir), clock.now_ms(), line),
        )
    return Written(line, key.path, created)


def _current_pricing() -> str:
    from aispend.pricing import table

    return table.load().id


def carry_onto(
    conn: sqlite3.Connection, repo: git.Repo, onto: str, olds: list[str], signer_email: str, key_path: Path | None = None
) -> tuple[Written | None, int]:
    """Give ``onto`` a receipt carrying every valid receipt of ``olds``; and how many it carries."""
    commit = git.read_commit(repo, onto)
    carried: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for old in olds:
        for digest, r in valid_receipts(repo, old):
            if digest not in seen:
                seen.add(digest)
                carried.append((digest, r))
    return write_receipt(conn, repo, commit, [], carried, signer_email, key_path), len(carried)


def patch_ids(repo: git.Repo, revs: list[str]) -> dict[str, str]:
    """``git patch-id --stable`` of every commit of ``git rev-list REVS``: patch id -> commit."""
    commits = git.run(["rev-list", "--no-merges", *revs, "--"], repo.worktree)
    if not commits.strip():
        return {}
    diffs = git.run(["diff-tree", "--stdin", "-p", "--no-color"], repo.worktree, input=commits.encode())
    ids = git.run(["patch-id", "--stable"], repo.worktree, input=diffs.encode("utf-8", "surrogateescape"))
    out: dict[str, str] = {}
    for row in ids.splitlines():
        pid, _, sha = row.partition(" ")
        out.setdefault(pid, sha.strip())
    return out
