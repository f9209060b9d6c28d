"""``aispend doctor``: check the set-up and say, for each problem, the command that fixes it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from aispend import git
from aispend.install import FETCH_REFSPEC, SYNC_HOOK, hooks_state
from aispend.text import counted


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str
    fix: str | None = None


def run_checks(repo: git.Repo) -> list[Finding]:
    out: list[Finding] = []
    out += _hooks(repo)
    found, conn = _index()
    out += found
    if conn is not None:
        try:
            out += _install(conn, repo)
            out += _pricing(conn)
        finally:
            conn.close()
    out += _key()
    out += _notes(repo)
    out += _remotes(repo)
    out += _queue(repo)
    return out


def _hooks(repo: git.Repo) -> list[Finding]:
    out = []
    hooks_dir = repo.path("hooks")
    for hook, state in hooks_state(repo).items():
        if state == "installed":
            out.append(Finding("hooks", True, f"{hook} installed in {hooks_dir}"))
        elif state.startswith("framework:"):
            out.append(Finding("hooks", False, f"{hook} belongs to {state.split(':')[1]}: it must call aispend",
                               "aispend install (prints the line to add to it)"))
        elif state == "not executable":
            out.append(Finding("hooks", False, f"{hook} is not executable", f"chmod +x {shlex.quote(str(hooks_dir / hook))}"))
        else:
            out.append(Finding("hooks", False, f"{hook} is {state}", "aispend install"))
    return out


def _index() -> tuple[list[Finding], Any]:
    """The index's health, and a connection to it when it is usable (the caller closes it)."""
    import sqlite3

    from aispend.errors import AispendError
    from aispend.index import db
    from aispend.paths import index_path

    try:
        conn = db.connect(timeout=2)
    except AispendError as e:
        return [Finding("index", False, str(e), "aispend ingest --rebuild")], None
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as e:
        check = str(e)
    if check != "ok":
        conn.close()
        return [Finding("index", False, f"{index_path()} is damaged: {check}", "aispend ingest --rebuild")], None
    return [Finding("index", True, f"{index_path()} (schema {db.SCHEMA_VERSION})")], conn


def _install(conn: Any, repo: git.Repo) -> list[Finding]:
    from aispend.attribution import install_window
    from aispend.receipts.model import iso_ms

    since = install_window(conn, str(repo.common_dir))
    if since is None:
        return [Finding("install", False, "no install record: commits here bill usage from their first hook run", "aispend install")]
    return [Finding("install", True, f"billing usage since {iso_ms(since)}")]


def _pricing(conn: Any) -> list[Finding]:
    from aispend.pricing import table

    t = table.load()
    rows = conn.execute(
        "SELECT DISTINCT unpriced FROM rollup WHERE unpriced != '' AND bucket >= "
        "(SELECT coalesce(max(bucket), 0) - 30 * 96 FROM rollup)"
    ).fetchall()
    if rows:
        names = ", ".join(sorted(r[0] for r in rows)[:5])
        return [Finding("pricing", False, f"table {t.id} has no price for models used in the last 30 days: {names}",
                        "aispend pricing update --from model_prices_and_context_window.json (from a newer LiteLLM)")]
    return [Finding("pricing", True, f"table {t.id}: every model of the last 30 days is priced")]


def _key() -> list[Finding]:
    from aispend.receipts import keys, signing

    path = signing.key_path()
    if not path.exists():
        return [Finding("key", False, f"no signing key at {path}", "aispend install (creates one)")]
    problem = keys.permissions_problem(path)
    if problem:
        return [Finding("key", False, f"{path} has {problem}: receipts are not signed with it", f"chmod 600 {shlex.quote(str(path))}")]
    try:
        k = keys.load_key(path)
    except keys.KeyFileError as e:
        return [Finding("key", False, str(e), "aispend install --key FILE (an unencrypted ed25519 key)")]
    return [Finding("key", True, f"{path} ({k.public_line[:40]}...)")]


def _notes(repo: git.Repo) -> list[Finding]:
    out = []
    tip = git.ok(["rev-parse", "-q", "--verify", git.NOTES_REF], repo.worktree)
    if tip and not git.ok(["rev-parse", "-q", "--verify", f"{git.NOTES_REF}^{{commit}}"], repo.worktree):
        out.append(Finding("notes", False, f"{git.NOTES_REF} is not a notes commit", f"git update-ref -d {git.NOTES_REF} (after saving it)"))
    elif tip:
        count = len((git.ok(["notes", f"--ref={git.NOTES_REF}", "list"], repo.worktree) or "").splitlines())
        out.append(Finding("notes", True, f"{git.NOTES_REF}: {counted(count, 'commit')} with receipts"))
    else:
        out.append(Finding("notes", True, f"{git.NOTES_REF}: no receipts yet"))
    leftovers = (git.ok(["for-each-ref", "--format=%(refname)", "refs/notes/aispend-scratch/"], repo.worktree) or "").split()
    for ref in leftovers:
        out.append(Finding("notes", False, f"a leftover scratch ref {ref} (an interrupted write)", f"git update-ref -d {ref}"))
    return out


def _remotes(repo: git.Repo) -> list[Finding]:
    out = []
    syncing = (repo.path("hooks") / SYNC_HOOK).exists()
    for remote in (git.ok(["remote"], repo.worktree) or "").split():
        fetch = (git.ok(["config", "--get-all", f"remote.{remote}.fetch"], repo.worktree) or "").splitlines()
        push = (git.ok(["config", "--get-all", f"remote.{remote}.push"], repo.worktree) or "").splitlines()
        for spec in fetch:
            if spec.lstrip("+").startswith(f"{git.NOTES_REF}:{git.NOTES_REF}") or spec.lstrip("+").startswith("refs/notes/*:refs/notes/*"):
                out.append(Finding("remotes", False,
                                   f"remote.{remote}.fetch has {spec}: a plain git fetch can throw away receipts not pushed yet",
                                   f"git config --fixed-value --unset remote.{remote}.fetch {shlex.quote(spec)}"))
        for spec in push:
            if "refs/notes" in spec:
                out.append(Finding("remotes", False,
                                   f"remote.{remote}.push has {spec}: a plain git push no longer pushes what it used to",
                                   f"git config --fixed-value --unset remote.{remote}.push {shlex.quote(spec)}; then aispend install --sync"))
        if syncing and FETCH_REFSPEC.format(remote=remote) not in fetch:
            out.append(Finding("remotes", False, f"git fetch {remote} does not bring receipts", "aispend install --sync"))
        elif FETCH_REFSPEC.format(remote=remote) in fetch:
            out.append(Finding("remotes", True, f"git fetch {remote} brings receipts into refs/notes/remotes/{remote}/aispend"))
    return out


def _queue(repo: git.Repo) -> list[Finding]:
    from aispend.hookrun import QUEUE, entries, wait_idle

    wait_idle(repo.git_dir, timeout=5)
    waiting = entries(repo.git_dir / QUEUE)
    if waiting:
        return [Finding("hooks", False, f"{len(waiting)} commit hook entries wait in {repo.git_dir / QUEUE}",
                        "see hooks.log in the data dir for why, fix it, then commit again (or: aispend hook drain "
                        f"{shlex.quote(str(repo.git_dir))})")]
    return []
