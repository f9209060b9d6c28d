"""``aispend status``: what the next commit here will carry, the last receipt, hooks and key."""

from __future__ import annotations

import json
from typing import Any

import typer

from aispend.errors import AispendError
from aispend.text import counted


def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show what the next commit in this worktree will carry and whether the hooks and key are in place."""
    from aispend import attribution, git, hookrun
    from aispend.cli.common import run_ingest
    from aispend.install import hooks_state
    from aispend.receipts import keys, model, signing

    repo = git.find_repo()
    # Receipts of the last commits may still be in the making (hooks work in the background).
    from aispend.hookrun import wait_idle

    wait_idle(repo.git_dir)
    conn, _ = run_ingest(quiet=True)
    try:
        hooks = hooks_state(repo)
        installed = attribution.install_window(conn, str(repo.common_dir))
        pending: list[attribution.Claimed] = []
        elsewhere: list[attribution.Claimed] = []
        if installed is not None:
            from aispend import clock

            pending, elsewhere = attribution.split_by_branch(conn, hookrun.scope_for(conn, repo, clock.now_ms(), hookrun.head_branch(repo)))
        last = conn.execute(
            "SELECT commit_sha, line FROM receipts WHERE repo = ? ORDER BY written_ms DESC, rowid DESC LIMIT 1",
            (str(repo.common_dir),),
        ).fetchone()
        from aispend.policy import config
        from aispend.policy.alerts import evaluate
        from aispend.reports.receipts import load_trust

        try:
            alerts = evaluate(repo, config.load(repo.worktree), load_trust(repo), conn)["alerts"] if installed is not None else []
        except AispendError as e:
            alerts = [{"kind": "policy", "message": str(e)}]
    finally:
        conn.close()
    key_path = signing.key_path()
    named = signing.named_key_path()
    key_state = "missing"
    if key_path.exists() or named is not None:
        try:
            keys.load_key(key_path)
            key_state = keys.permissions_problem(key_path) or "ok"
        except keys.KeyFileError as e:
            # A key named at install is never re-created: say what to do about it.
            key_state = signing.named_key_problem(key_path, e) if named is not None else str(e)
    queued = len(hookrun.entries(repo.git_dir / hookrun.QUEUE))
    next_cost = sum(c.cost_nusd or 0 for c in pending)
    last_cost = None
    if last:
        try:
            last_cost = json.loads(last[1])["totals"]["cost_usd"]
        except (ValueError, KeyError, TypeError):
            last_cost = None
    data: dict[str, Any] = {
        "worktree": str(repo.worktree),
        "hooks": hooks,
        "key": {"path": str(key_path), "state": key_state},
        "billing_since": model.iso_ms(installed) if installed is not None else None,
        "next_commit": {
            "requests": len(pending),
            "sessions": len({(c.tool, c.session_id) for c in pending}),
            "total_tokens": sum(c.total_tokens for c in pending),
            "cost_usd": model.usd_number(next_cost),
            "unpriced_tokens": sum(c.total_tokens for c in pending if c.cost_nusd is None),
        },
        "other_branches": {
            "requests": len(elsewhere),
            "cost_usd": model.usd_number(sum(c.cost_nusd or 0 for c in elsewhere)),
        },
        "alerts": alerts,
        "queued": queued,
        "last_receipt": {"commit": last[0], "cost_usd": float(last_cost) if last_cost else 0.0} if last else None,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    say = typer.echo
    say(f"worktree {repo.worktree}")
    if installed is None:
        say("not installed here: run 'aispend install'")
    else:
        say(f"billing usage since {data['billing_since']}")
    say("hooks: " + ", ".join(f"{h} {s}" for h, s in hooks.items()))
    say(f"signing key: {key_path} ({key_state})")
    if queued:
        # Entries left by the hooks (the key or the index was not usable): written at the next commit once fixed.
        say(f"waiting for receipts: {counted(queued, 'hook entry', 'hook entries')} in {repo.git_dir / hookrun.QUEUE} (hooks.log in the data dir says why)")
    n = data["next_commit"]
    if installed is not None:
        if pending:
            say(f"next commit will carry ${n['cost_usd']:,.4f}: {counted(n['requests'], 'request')}, {counted(n['sessions'], 'session')}, {counted(n['total_tokens'], 'token')}")
        else:
            say("next commit will carry nothing (no unclaimed usage in this worktree)")
    if elsewhere:
        o = data["other_branches"]
        n = o["requests"]
        say(f"waiting for commits on other branches: {counted(n, 'request')}, ${o['cost_usd']:,.4f}")
    for a in alerts:
        say(f"alert: {a['message']}")
    if last:
        say(f"last receipt: {last[0][:12]} (${float(last_cost or 0):,.4f})")
