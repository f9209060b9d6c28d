"""``aispend install`` / ``aispend uninstall``: the commit hooks of one repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from aispend.errors import AispendError
from aispend.text import counted

if TYPE_CHECKING:
    from aispend import git


def _span_ms(text: str, option: str = "--backfill") -> int:
    """``24h``, ``7d``, ``90m``, ``2w`` as milliseconds."""
    units = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
    t = text.strip().lower()
    if len(t) < 2 or t[-1] not in units or not t[:-1].isdigit():
        raise AispendError(f"{option} {text!r}: expected a span such as 90m, 24h, 7d or 2w")
    return int(t[:-1]) * units[t[-1]]


def since_ms(text: str) -> int:
    """``--since``: the billing start, in the time-filter grammar of the other commands (a date
    YYYY-MM-DD, or 30d / 4w: the start of that day, local time) plus ``now`` and hours counted
    back from now (``24h``). Usage at or before it is never claimed."""
    from aispend import clock
    from aispend.reports.timerange import DayRange, parse_day, zone

    t = text.strip().lower()
    now = clock.now_ms()
    if t == "now":
        return now
    if t.endswith("h") and t[:-1].isdigit():
        return now - _span_ms(t, "--since")
    if t.endswith("m") and t[:-1].isdigit():
        # Elsewhere 3m is three months; --backfill 90m is 90 minutes: never guess with money.
        raise AispendError(f"--since {text!r}: months or minutes? write days (7d), hours (2h) or a date (YYYY-MM-DD)")
    tz = zone(None)
    start, _ = DayRange(parse_day(t, tz, "--since"), None, tz).bounds_ms()
    assert start is not None
    if start > now:
        raise AispendError(f"--since {text!r} is in the future")
    return start


def install(
    since: Optional[str] = typer.Option(None, "--since", metavar="DATE|SPAN", help="The billing start, also on a reinstall: only usage made after it is billed. now, 24h, 7d (today and the 6 days before), or YYYY-MM-DD. Default: now at the first install; a reinstall keeps its start."),
    backfill: Optional[str] = typer.Option(None, "--backfill", metavar="SPAN", help="Also bill usage from this long before now to the first commit: 90m, 24h, 7d (like --since, but never moves the start later)."),
    trailer: bool = typer.Option(False, "--trailer", help="Add an AI-Spend: trailer to each commit message instead of a comment."),
    key: Optional[Path] = typer.Option(None, "--key", metavar="FILE", help="Sign with this existing unencrypted ed25519 SSH key instead of aispend's own."),
    force: bool = typer.Option(False, "--force", help="Chain hooks even where a hook framework (husky, lefthook, pre-commit) owns them."),
    sync: bool = typer.Option(False, "--sync", help="Also sync receipts when you push (a pre-push hook), and fetch them with git fetch."),
    shared_hooks: bool = typer.Option(False, "--shared-hooks", help="Install even though the hooks folder (core.hooksPath) is outside this repository's git dir: its hooks run in every repository that uses it (they act only where aispend is installed)."),
) -> None:
    """Install the commit hooks in this repository: every commit gets a signed receipt of its AI spend."""
    from aispend import attribution, git
    from aispend.cli.common import run_ingest
    from aispend.cli.status import receipts_on, waiting
    from aispend.index import db
    from aispend.install import add_fetch_refspecs, check_hooks_dir, hooks_state, install_hooks, record_install
    from aispend.receipts import keys, model, signing

    if since is not None and backfill is not None:
        raise AispendError("--since and --backfill both set the billing start: give one")
    back = _span_ms(backfill) if backfill else None
    floor = since_ms(since) if since is not None else None
    repo = git.find_repo()
    check_hooks_dir(repo, shared_hooks, force)  # before anything is written
    hooks_before = hooks_state(repo)
    email = git.config(repo, "user.email")
    say = typer.echo
    notes: list[str] = []  # said after what was installed
    if key is not None:
        signer = signing.use_key(key.expanduser())
        created = False
    else:
        named = signing.named_key_path()
        if named is not None:
            try:
                keys.load_signing_key(named)
            except keys.KeyFileError as e:
                if not keys.permissions_problem(named):
                    # Gone or unusable: a plain install goes back to aispend's own key (see NAMED_KEY_FIX).
                    signing.use_default_key()
                    notes.append(f"{e}: signing with aispend's own key again")
                else:
                    notes.append(f"warning: {e}")
        try:
            signer, created = signing.ensure_key(comment=f"aispend {email or 'unknown'}")
        except keys.KeyFileError:
            signer, created = None, False  # the named key, with a permissions problem (said above)
    result = install_hooks(repo, force=force, trailer=trailer, sync=sync, shared=shared_hooks)
    fetching = add_fetch_refspecs(repo) if sync else []
    conn = db.connect()
    try:
        before = attribution.install_window(conn, str(repo.common_dir))
        if before is not None or floor is not None or back is not None:
            # Usage may wait for the next commit (made while no receipt was written, or billed
            # from earlier): read the logs' new lines to say how much.
            conn.close()
            conn, _ = run_ingest(quiet=True)
        start_ms, first = record_install(conn, repo, back, trailer, sync, since_ms=floor)
        pending = waiting(conn, repo)[0] if before is not None or floor is not None or back is not None else []
    finally:
        conn.close()
    where = result.hooks_dir
    if result.written:
        say(f"installed {', '.join(result.written)} in {where}")
    if result.unchanged and not result.written:
        say(f"hooks already installed in {where}")
    for hook in result.chained:
        say(f"kept your {hook} hook: it runs first (moved to {hook}.aispend-legacy)")
    if result.framework_lines:
        say("a hook framework owns some hooks; add aispend there:")
        for line in result.framework_lines:
            say(f"  {line}")
    for remote in fetching:
        say(f"git fetch {remote} now brings its receipts too (into refs/notes/remotes/{remote}/aispend)")
    for line in notes:
        say(line)
    if signer is not None and created:
        say(f"created signing key {signer.path}")
    elif signer is not None and (key is not None or signing.named_key_path() is not None):
        say(f"signing with {signer.path}")
    start = model.iso_ms(start_ms)
    if first:
        say(f"billing usage from {start}" + (" (backfilled)" if back else "" if floor is not None else " (now)"))
    elif back is not None or floor is not None:
        was = f" (was {model.iso_ms(before)})" if before is not None and start_ms != before else ""
        say(f"billing usage from {start}" + (" (backfilled)" if back is not None else was))
    if pending:
        cost = sum(c.cost_nusd or 0 for c in pending)
        them = "it" if len(pending) == 1 else "them"
        take = f"the next commit will take {counted(len(pending), 'request')} (${model.usd_number(cost):,.4f}) made since {model.iso_ms(pending[0].ts_ms)}"
        if not first and floor is None and not receipts_on(hooks_before, before):
            take += f" while no receipt was written; 'aispend install --since now' leaves {them} out"
        say(take)
    if signer is not None:
        _trust(repo, email, signer.public_line)


def _trust(repo: git.Repo, email: str | None, public_line: str) -> None:
    """Onboarding to trust: make, or check, the list that makes this machine's receipts count."""
    import shlex

    from aispend.install import onboard_trust
    from aispend.receipts.trust import DEFAULT_FILE

    say = typer.echo
    add = f"aispend key --line >> {DEFAULT_FILE}"
    if not email:
        say(f"trust: no git user.email to trust your key for: set it, then run: mkdir -p .aispend && {add}")
        return
    try:
        got = onboard_trust(repo, email, public_line)
    except AispendError as e:
        say(f"trust: {e}")
        return
    if got.state == "created":
        say(f"trust: created {DEFAULT_FILE} with your key; commit it so teammates and CI trust your receipts")
    elif got.state == "trusted":
        say(f"trust: {got.source} trusts your key")
    else:
        in_repo = not Path(got.source).is_absolute()
        say(f"trust: {got.source} does not trust your key for {email}; the line that does:")
        say(f"  {got.line}")
        say(f"add it with: aispend key --line >> {shlex.quote(got.source)}" + (", then commit it" if in_repo else ""))


def uninstall() -> None:
    """Remove the commit hooks from this repository and put back any hook they replaced."""
    from aispend import git
    from aispend.install import forget_sync, uninstall_hooks

    repo = git.find_repo()
    result = uninstall_hooks(repo)
    forget_sync(repo)
    say = typer.echo
    if result.removed:
        say(f"removed {', '.join(result.removed)} from {result.hooks_dir}")
    if result.restored:
        say(f"restored your {', '.join(result.restored)} hook{'s' if len(result.restored) > 1 else ''}")
    for remote in result.refspecs:
        say(f"git fetch {remote} no longer brings receipts")
    for hook in result.foreign:
        say(f"left {hook} alone: it is not aispend's any more ({hook}.aispend-legacy is still there)")
    if not (result.removed or result.restored or result.foreign):
        say(f"no aispend hooks in {result.hooks_dir}: nothing to do")
    say("receipts already written stay in refs/notes/aispend")
