"""``aispend status``: whether commits here get receipts, what the next one will carry, the last
receipt of this branch, hooks and key."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from aispend.errors import AispendError
from aispend.text import counted

if TYPE_CHECKING:
    import sqlite3

    from aispend import attribution, git

#: The commit hook that writes receipts: without it (or an install record) commits get none.
RECEIPT_HOOK = "post-commit"
#: How far back in HEAD's history ``status`` looks for the last receipt (one ``git rev-list``).
LAST_RECEIPT_DEPTH = 10_000
#: Branches named one by one among those whose usage waits; the rest are summed up.
BRANCHES_SHOWN = 5


def in_place(state: str) -> bool:
    """Whether a hook in this state runs aispend: our shim, executable; or one a hook framework
    owns (``aispend install`` printed the line that makes it call aispend; ``doctor`` checks)."""
    return state == "installed" or state.startswith("framework:")


def receipts_on(hooks: dict[str, str], installed: int | None) -> bool:
    """Whether the next commit here gets a receipt: an install record and the post-commit hook."""
    return installed is not None and in_place(hooks.get(RECEIPT_HOOK, "missing"))


def waiting(conn: sqlite3.Connection, repo: git.Repo) -> tuple[list[attribution.Claimed], list[attribution.Claimed]]:
    """The unclaimed usage of this worktree since the billing start: what a commit on the branch
    checked out would take now, and what waits for commits on other branches (each oldest first).
    Nothing without an install record (there is no billing start)."""
    from aispend import attribution, clock, hookrun

    if attribution.install_window(conn, str(repo.common_dir)) is None:
        return [], []
    scope = hookrun.scope_for(conn, repo, clock.now_ms(), hookrun.head_branch(repo))
    return attribution.split_by_branch(conn, scope)


def summary(claimed: list[attribution.Claimed]) -> dict[str, Any]:
    from aispend.receipts import model

    return {
        "requests": len(claimed),
        "sessions": len({(c.tool, c.session_id) for c in claimed}),
        "total_tokens": sum(c.total_tokens for c in claimed),
        "cost_usd": model.usd_number(sum(c.cost_nusd or 0 for c in claimed)),
        "unpriced_tokens": sum(c.total_tokens for c in claimed if c.cost_nusd is None),
    }


def by_branch(claimed: list[attribution.Claimed]) -> list[tuple[str, int, int]]:
    """``(branch, requests, nano-dollars)`` per branch the usage was logged on, most expensive
    first (then by name)."""
    sums: dict[str, list[int]] = {}
    for c in claimed:
        acc = sums.setdefault(c.branch or "", [0, 0])
        acc[0] += 1
        acc[1] += c.cost_nusd or 0
    return sorted(((b, n, cost) for b, (n, cost) in sums.items()), key=lambda t: (-t[2], -t[1], t[0]))


def last_receipt(conn: sqlite3.Connection, repo: git.Repo) -> tuple[str, str] | None:
    """``(commit, line)``: the receipt this machine wrote on the newest commit of HEAD's history
    (its last :data:`LAST_RECEIPT_DEPTH` commits) that has one; None when none has. Another
    branch's or worktree's receipts are never it. One query, then ``git rev-list`` over the last
    64 commits, and over the rest only when none of those has a receipt (about 50 ms at 10,000)."""
    from aispend import git

    key = str(repo.common_dir)
    written = {sha for (sha,) in conn.execute("SELECT commit_sha FROM receipts WHERE repo = ?", (key,))}
    if not written:
        return None
    first = 64
    for args in ([f"--max-count={first}"], [f"--skip={first}", f"--max-count={LAST_RECEIPT_DEPTH - first}"]):
        history = (git.ok(["rev-list", *args, "HEAD", "--"], repo.worktree) or "").split()
        for sha in history:
            if sha in written:
                row = conn.execute(
                    "SELECT line FROM receipts WHERE repo = ? AND commit_sha = ? ORDER BY written_ms DESC, rowid DESC LIMIT 1",
                    (key, sha),
                ).fetchone()
                return (sha, row[0]) if row else None
        if len(history) < first:
            return None  # the whole history was read
    return None


def _key_state() -> tuple[str, str]:
    from aispend.receipts import keys, signing

    key_path = signing.key_path()
    named = signing.named_key_path()
    state = "missing"
    if key_path.exists() or named is not None:
        try:
            keys.load_key(key_path)
            state = keys.permissions_problem(key_path) or "ok"
        except keys.KeyFileError as e:
            # A key named at install is never re-created: say what to do about it.
            state = signing.named_key_problem(key_path, e) if named is not None else str(e)
    return str(key_path), state


def _install_command(repo: git.Repo) -> str:
    from aispend.install import outside_git_dir

    shared = outside_git_dir(repo, repo.path("hooks")) and ".husky" not in repo.path("hooks").parts
    return "aispend install --shared-hooks" if shared else "aispend install"


def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    team: bool = typer.Option(False, "--team", help="Show every alert (the repository's and teams' budgets, other authors', spikes), not only those about your own spend."),
) -> None:
    """Show what the next commit in this worktree will carry and whether the hooks and key are in place."""
    from aispend import attribution, git, hookrun
    from aispend.cli.common import run_ingest
    from aispend.install import hooks_state
    from aispend.receipts import model
    from aispend.reports.render import clean

    repo = git.find_repo()
    # Receipts of the last commits may still be in the making (hooks work in the background).
    hookrun.wait_idle(repo.git_dir)
    conn, _ = run_ingest(quiet=True)
    try:
        hooks = hooks_state(repo)
        installed = attribution.install_window(conn, str(repo.common_dir))
        receipts = receipts_on(hooks, installed)
        pending, elsewhere = waiting(conn, repo)
        last = last_receipt(conn, repo)
        from aispend.policy import config
        from aispend.policy.alerts import evaluate, mine
        from aispend.reports.receipts import load_trust

        try:
            alerts = evaluate(repo, config.load(repo.worktree), load_trust(repo), conn)["alerts"] if installed is not None else []
        except AispendError as e:
            alerts = [{"kind": "policy", "message": str(e)}]
    finally:
        conn.close()
    if not team:
        # Yours: your budget, your cache hits, this machine's sessions; a broken policy file too.
        alerts = [a for a in alerts if a.get("kind") == "policy"] + mine(alerts, git.config(repo, "user.email"))
    key_path, key_state = _key_state()
    queue = hookrun.queue_dir(repo.git_dir)
    queued = sum(len(hookrun.entries(q)) for q in hookrun.queues(repo.git_dir))
    last_cost = None
    if last:
        try:
            last_cost = json.loads(last[1])["totals"]["cost_usd"]
        except (ValueError, KeyError, TypeError):
            last_cost = None
    unclaimed = summary(pending)
    branches = by_branch(elsewhere)
    data: dict[str, Any] = {
        "worktree": str(repo.worktree),
        "receipts": receipts,
        "hooks": hooks,
        "key": {"path": key_path, "state": key_state},
        "billing_since": model.iso_ms(installed) if installed is not None else None,
        # What the next commit will carry: nothing when commits get no receipt (see "unclaimed").
        "next_commit": unclaimed if receipts else summary([]),
        "unclaimed": {**unclaimed, "oldest": model.iso_ms(pending[0].ts_ms) if pending else None},
        "other_branches": {
            "requests": len(elsewhere),
            "cost_usd": model.usd_number(sum(c.cost_nusd or 0 for c in elsewhere)),
            "branches": [{"branch": b, "requests": n, "cost_usd": model.usd_number(cost)} for b, n, cost in branches],
        },
        "alerts": alerts,
        "queued": queued,
        "last_receipt": {"commit": last[0], "cost_usd": float(last_cost) if last_cost else 0.0} if last else None,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    say = typer.echo
    if not receipts:
        say("hooks not installed here: commits get no receipt")
        say(f"run: {_install_command(repo)}")
    say(f"worktree {repo.worktree}")
    if installed is not None:
        say(f"billing usage since {data['billing_since']}")
    say("hooks: " + ", ".join(f"{h} {s}" for h, s in hooks.items()))
    if receipts:
        for h, s in hooks.items():
            if not in_place(s):
                say(f"{h} is {s}: " + _missing_effect(h) + f" (run: {_install_command(repo)})")
    say(f"signing key: {key_path} ({key_state})")
    if queued:
        # Entries left by the hooks (the key or the index was not usable): written at the next commit once fixed.
        say(f"waiting for receipts: {counted(queued, 'hook entry', 'hook entries')} in {queue} (hooks.log in the data dir says why)")
    n = unclaimed
    what = f"${n['cost_usd']:,.4f}: {counted(n['requests'], 'request')}, {counted(n['sessions'], 'session')}, {counted(n['total_tokens'], 'token')}"
    if receipts:
        if pending:
            say(f"next commit will carry {what}")
        else:
            say("next commit will carry nothing (no unclaimed usage on this branch in this worktree)")
    elif pending:
        say(f"unclaimed here since {data['unclaimed']['oldest']}: {what}; the next commit would carry it if installed "
            "('aispend install --since now' leaves it out)")
    if elsewhere:
        o = data["other_branches"]
        head = "waiting for commits on other branches" if receipts else "unclaimed on other branches"
        say(f"{head}: {counted(o['requests'], 'request')}, ${o['cost_usd']:,.4f}")
        for b, n_req, cost in branches[:BRANCHES_SHOWN]:
            say(f"  {clean(b)}: {counted(n_req, 'request')}, ${model.usd_number(cost):,.4f}")
        rest = branches[BRANCHES_SHOWN:]
        if rest:
            more = f"{counted(sum(t[1] for t in rest), 'request')}, ${model.usd_number(sum(t[2] for t in rest)):,.4f}"
            say(f"  and {counted(len(rest), 'more branch', 'more branches')}: {more}")
    for a in alerts:
        say(f"alert: {clean(str(a['message']))}")
    if last:
        say(f"last receipt: {last[0][:12]} (${float(last_cost or 0):,.4f})")
    else:
        say("last receipt: none in this branch's history")


#: What a commit loses when one of the hooks is not in place (post-commit: see RECEIPT_HOOK).
_MISSING = {
    "prepare-commit-msg": "the commit editor shows no preview",
    "post-rewrite": "amended and rebased commits get no receipt",
    "post-merge": "merge commits get no receipt",
}


def _missing_effect(hook: str) -> str:
    return _MISSING.get(hook, "aispend does not run at that step")
