"""``aispend doctor``: check the set-up and say, for each problem, the command that fixes it."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any

from aispend import git
from aispend.install import FETCH_REFSPEC, SYNC_HOOK, hooks_state, is_ours
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
    out += _state()
    out += _data_dir()
    syncing = False
    if conn is not None:
        try:
            install, syncing = _install(conn, repo)
            out += install
            out += _pricing(conn)
        finally:
            conn.close()
    out += _key()
    out += _trust(repo)
    out += _notes(repo)
    out += _remotes(repo, syncing)
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
    except db.StateUnreadable:
        return [], None  # the state check says what is wrong
    except AispendError as e:
        return [Finding("index", False, str(e), "aispend ingest --rebuild")], None
    try:
        check = conn.execute("PRAGMA main.quick_check").fetchone()[0]  # the state file: _state()
    except sqlite3.Error as e:
        check = str(e)
    if check != "ok":
        conn.close()
        return [Finding("index", False, f"{index_path()} is damaged: {check}", "aispend ingest --rebuild")], None
    return [Finding("index", True, f"{index_path()} (schema {db.SCHEMA_VERSION})")], conn


def _state() -> list[Finding]:
    """The state file (install records, claims, receipts written here; 'ingest --rebuild' keeps
    it): present, sound, and only its owner's (mode 0600, as aispend creates it)."""
    import stat

    from aispend.index import db
    from aispend.paths import state_path

    p = state_path()
    q = shlex.quote(str(p))
    if not p.exists():
        return [Finding("state", False, f"no state file {p}: no repository is installed on this machine", "aispend install")]
    problem = db.state_problem(p)
    if problem is not None:
        if "newer aispend" in problem:
            return [Finding("state", False, problem, "upgrade aispend")]
        if "cannot be opened" in problem:
            return [Finding("state", False, problem, f"chmod 600 {q} (as its owner)")]
        return [Finding("state", False, problem,
                        f"mv {q} {q}.broken, then aispend install in each repository (billing starts anew; "
                        "receipts already written stay in the notes)")]
    mode = stat.S_IMODE(p.stat().st_mode)
    if os.name != "nt" and mode & 0o077:
        return [Finding("state", False, f"{p} has mode {mode:04o}: others can read this machine's install records, claims and receipts",
                        f"chmod 600 {q}")]
    return [Finding("state", True, f"{p} (schema {db.STATE_VERSION}, mode {mode:04o})")]


def _data_dir() -> list[Finding]:
    """The data dir (keys, index, logs) must be private: 0700, as aispend creates it."""
    import stat

    from aispend.paths import data_dir

    d = data_dir()
    try:
        mode = stat.S_IMODE(d.stat().st_mode)
    except OSError:
        return []
    if os.name != "nt" and mode & 0o077:
        return [Finding("data", False, f"the data dir {d} has mode {mode:04o}: others can look inside", f"chmod 700 {shlex.quote(str(d))}")]
    return [Finding("data", True, f"{d} is private (mode {mode:04o})")]


def _install(conn: Any, repo: git.Repo) -> tuple[list[Finding], bool]:
    """The install record's findings, and whether pushes sync."""
    from aispend.receipts.model import iso_ms

    row = conn.execute("SELECT since_ms, sync FROM installs WHERE repo = ?", (str(repo.common_dir),)).fetchone()
    if row is None:
        return [Finding("install", False, "no install record: the hooks do nothing here (no receipts)", "aispend install")], False
    since, sync = int(row[0]), row[1]
    out = [Finding("install", True, f"billing usage since {iso_ms(since)}" + (", syncing receipts on push" if sync else ""))]
    if not sync and is_ours(repo.path("hooks") / SYNC_HOOK):
        if sync is None:
            # Installed (perhaps with --sync) before aispend recorded the choice: pushes do not sync.
            out.append(Finding("install", False, "pre-push is installed but this repository's install did not record --sync: pushes do not sync receipts",
                               "aispend install --sync (or aispend install to keep not syncing)"))
        else:  # another repository's, in a shared hooks folder: this one chose not to sync
            out.append(Finding("install", True, "pre-push is installed, but this repository was installed without --sync: pushes do not sync receipts"))
    return out, bool(sync)


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
    named = signing.named_key_path()
    if named is not None and not os.path.lexists(named):
        # Never re-created (only aispend's own key is): commits wait in the queue until fixed.
        return [Finding("key", False, f"signing key {named} does not exist: commits wait for their receipts", signing.NAMED_KEY_FIX)]
    if not path.exists():
        return [Finding("key", False, f"no signing key at {path}", "aispend install (creates one)")]
    problem = keys.permissions_problem(path)
    if problem:
        return [Finding("key", False, f"{path} has {problem}: receipts are not signed with it", f"chmod 600 {shlex.quote(str(path))}")]
    try:
        k = keys.load_key(path)
    except keys.KeyFileError as e:
        fix = "aispend install --key FILE (an unencrypted ed25519 key)"
        return [Finding("key", False, str(e), fix + (" or aispend install to go back to aispend's own key" if named else ""))]
    return [Finding("key", True, f"{path} ({k.public_line[:40]}...)")]


def _trust(repo: git.Repo) -> list[Finding]:
    """Whether the repository's trust list exists and trusts this machine's key (else its
    receipts count nowhere: verify, reports and budgets skip them)."""
    from aispend.errors import AispendError
    from aispend.receipts import keys, signing
    from aispend.receipts.trust import DEFAULT_FILE, load_trust

    add = f"aispend key --line >> {DEFAULT_FILE}"
    try:
        trust = load_trust(repo)
    except AispendError as e:
        return [Finding("trust", False, str(e), "fix [trust] allowed_signers in .aispend.toml")]
    if trust.signers is None:
        return [Finding("trust", False, "no allowed-signers list: no receipt counts in verify, reports or budgets",
                        f"mkdir -p .aispend && {add}, then commit it")]
    out = [Finding("trust", False, f"{p}: a line that is not used", "fix or remove that line") for p in trust.problems]
    email = git.config(repo, "user.email")
    try:
        k = keys.load_key(signing.key_path())
    except keys.KeyFileError:
        return out  # the key check says what is wrong with it
    if not email:
        return out  # no principal to check the key for
    if not keys.signer_allowed(trust.signers, email, k.public_line):
        commit = "" if os.path.isabs(trust.source or "") else ", then commit it"
        return out + [Finding("trust", False, f"{trust.source} does not trust this machine's key for {email}: its receipts do not count",
                              f"aispend key --line >> {shlex.quote(trust.source or DEFAULT_FILE)}{commit}")]
    return out + [Finding("trust", True, f"{trust.source} trusts this machine's key for {email}")]


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


def _remotes(repo: git.Repo, syncing: bool) -> list[Finding]:
    out = []
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
    from aispend.hookrun import entries, queue_dir, queues, wait_idle

    wait_idle(repo.git_dir, timeout=5)
    waiting = [p for q in queues(repo.git_dir) for p in entries(q)]
    if waiting:
        why = _last_queue_reason()
        n = len(waiting)
        return [Finding("hooks", False, f"receipts not written yet: {counted(n, 'hook entry', 'hook entries')} {'waits' if n == 1 else 'wait'} in {queue_dir(repo.git_dir)}"
                        + (f" ({why})" if why else ""),
                        "fix what hooks.log in the data dir says (the checks above name it), then run: aispend ingest")]
    return []


def _last_queue_reason() -> str | None:
    """Why the hooks' entries wait, as the last line of hooks.log about a queue says."""
    from aispend.hookrun import log_path
    from aispend.reports.render import clean

    try:
        with open(log_path(), "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 65536))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if " queue" in line and "wait" in line:
            return clean(line.split(" ", 1)[-1])[:300]
    return None
