"""``aispend carry``: receipts for commits no hook saw (forge squash merges and rebase merges)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from aispend import git
from aispend.errors import AispendError
from aispend.text import counted

if TYPE_CHECKING:
    from aispend.receipts.trust import Trust


def carry(
    commits: list[str] = typer.Argument(..., metavar="COMMITS...", help="The replaced commits: revisions or ranges (main..feature)."),
    onto: Optional[str] = typer.Option(None, "--onto", metavar="COMMIT", help="Squash merge: this commit carries the receipts of all of COMMITS."),
    match: Optional[str] = typer.Option(None, "--match", metavar="RANGE", help="Rebase merge: each commit of RANGE carries the receipts of the commit of COMMITS with the same patch (git patch-id)."),
    key: Optional[Path] = typer.Option(None, "--key", metavar="FILE", help="Sign with this unencrypted ed25519 SSH key (a CI key) instead of this machine's."),
    principal: Optional[str] = typer.Option(None, "--principal", metavar="EMAIL", help="Who signs (default: git's user.email)."),
    allowed_signers: Optional[Path] = typer.Option(None, "--allowed-signers", metavar="FILE", help="Trusted signers (default: the repository's list); only receipts they signed are carried."),
) -> None:
    """Give merged commits receipts that carry those of the branch's commits (run after a forge merge)."""
    from aispend.index import db
    from aispend.notes.carry import carry_onto, patch_ids
    from aispend.receipts.trust import load_trust

    if (onto is None) == (match is None):
        raise AispendError("say how the branch was merged: --onto COMMIT (squash) or --match RANGE (rebase)")
    repo = git.find_repo()
    who = principal or git.config(repo, "user.email")
    if not who:
        raise AispendError("no signer: pass --principal EMAIL or set git's user.email")
    olds = _expand(repo, commits)
    trust = load_trust(repo, allowed_signers)
    left: list[str] = []
    conn = db.connect()
    try:
        if onto is not None:
            written, n = carry_onto(conn, repo, onto, olds, who, trust, key, left.append)
            target = git.read_commit(repo, onto).sha
            if written is None:
                typer.echo(f"{target[:12]}: nothing to carry ({counted(len(olds), 'commit')}, none with a receipt that counts here)")
            else:
                typer.echo(f"{target[:12]}: carries {counted(n, 'receipt')} of {counted(len(olds), 'commit')}")
            return
        assert match is not None
        old_by_patch = patch_ids(repo, olds)
        new_by_patch = patch_ids(repo, [match])
        done = 0
        for pid, news in new_by_patch.items():
            # The same change made twice pairs in order: the n-th old with the n-th new.
            for new, old in zip(news, old_by_patch.get(pid, [])):
                if old == new:
                    continue
                written, n = carry_onto(conn, repo, new, [old], who, trust, key, left.append)
                if written is not None:
                    done += 1
                    typer.echo(f"{new[:12]}: carries {counted(n, 'receipt')} of {old[:12]}")
        if not done:
            typer.echo("nothing to carry: no commit of the range has the patch of a commit with a receipt")
    finally:
        conn.close()
        _left_behind(left, trust)


def _left_behind(left: list[str], trust: "Trust") -> None:
    """Say what was not carried, and why (untrusted spend never becomes trusted)."""
    from aispend.reports.render import clean

    if left:
        typer.echo(f"left behind {counted(len(left), 'receipt')} that do not count here:")
        for why in left[:20]:
            typer.echo(f"  {clean(why)}")
    if not trust.checked:
        typer.echo("no allowed-signers list: only receipts signed by this key can be carried (docs/security.md)")


def _expand(repo: "git.Repo", revs: list[str]) -> list[str]:
    """Revisions and ranges as the list of commits they name."""
    out: list[str] = []
    for rev in revs:
        if ".." in rev or rev.startswith("^"):
            listed = git.run(["rev-list", rev, "--"], repo.worktree).split()
            if not listed:
                raise AispendError(f"{rev}: an empty range")
            out.extend(listed)
        else:
            sha = git.ok(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], repo.worktree)
            if not sha:
                raise AispendError(f"no such commit: {rev}")
            out.append(sha)
    return out
