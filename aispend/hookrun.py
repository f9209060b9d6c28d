"""The lean entry the hook shims call: ``python -m aispend.hookrun HOOK [ARGS...]``.

``drain GIT_DIR`` builds the receipts of what post-commit and post-rewrite queued
(the shims queue in shell and start it in the background, so a commit does not
wait); ``prepare-commit-msg`` previews the spend in the message being edited;
``post-commit`` / ``post-rewrite`` called directly (hook frameworks) queue and
drain in the foreground.

It imports only what a commit needs (no typer, rich, pydantic or pygit2) and it
never fails a commit: every error is caught, logged to ``hooks.log`` in the data
dir, and the exit status is 0. Reading new log lines has a time budget (newest
file first; the rest waits for the next run); an index held by another process
is waited on, then the queue is left for the next commit's drain.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aispend import clock, git
from aispend.paths import data_subdir, private_file
from aispend.text import counted

#: Seconds a hook may spend reading new log lines (env AISPEND_HOOK_BUDGET).
INGEST_BUDGET_S = 10.0
#: Seconds a hook waits for an index held by another process (env AISPEND_HOOK_BUSY_WAIT).
BUSY_WAIT_S = 10.0
TRAILER = "AI-Spend"
_LOG_MAX = 1 << 20


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    hook = args[0] if args else ""

    def installed(git_dir: Path, say: bool = True, queue: Path | None = None) -> bool:
        """Whether the repository of ``git_dir`` has an install record (the hooks act only then:
        a hooks folder shared by many repositories runs them everywhere); logged (``say``) when
        not. A state file that cannot be read counts as installed: the usual path says what is wrong."""
        import sqlite3

        from aispend.index.db import read_install

        common = _read(git_dir / "commondir").strip()  # a linked worktree's, as git resolves it
        if common:
            key = str((git_dir / common).resolve())
        elif queue is not None and not git_dir.is_dir():  # a linked worktree removed since
            key = str(_common_of_queue(queue).resolve())
        else:
            key = str(git_dir.resolve())
        try:
            if read_install(key) is not None:
                return True
        except (sqlite3.Error, OSError):
            return True
        if say:
            _not_installed(key)
        return False

    try:
        if os.environ.get("AISPEND_HOOKS") == "0":
            return 0  # switched off for this command
        if hook == "prepare-commit-msg":
            if installed(git.find_repo().git_dir, say=False):  # post-commit says it
                prepare_commit_msg(args[1:])
        elif hook == "drain":
            # The entries name their worktrees; what git exported to the hook (GIT_DIR, the
            # index) may be gone by now: a linked worktree removed right after its commit.
            for var in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_PREFIX", "GIT_COMMON_DIR"):
                os.environ.pop(var, None)
            git_dir = Path(args[1])
            queue = Path(args[2]) if len(args) > 2 else None
            if installed(git_dir, queue=queue):
                if git_dir.is_dir():
                    queue = None  # all of the worktree's queues, an older aispend's first
                drain(git_dir, foreground=os.environ.get("AISPEND_HOOK_SYNC") == "1", queue=queue)
            else:
                for q in [queue] if queue is not None else queues(git_dir):
                    for entry in entries(q):  # the shim queued them: nothing will claim them
                        entry.unlink(missing_ok=True)
        elif hook == "pre-push":
            pre_push(args[1] if len(args) > 1 else "")
        elif hook in ("post-commit", "post-rewrite", "post-merge"):
            # Called directly (a hook framework, 'aispend hook'): queue and drain here.
            stdin = sys.stdin.read() if hook == "post-rewrite" else ""
            git_dir, body = gather(hook, args[1:], stdin)
            if installed(git_dir):
                enqueue(git_dir, hook, body)
                drain(git_dir, foreground=True)
        else:
            log(f"unknown hook {hook!r}")
    except BaseException as e:  # noqa: BLE001 - a hook never fails a commit
        if isinstance(e, SystemExit) and not e.code:
            return 0
        import traceback

        log(f"{hook}: {type(e).__name__}: {e}", detail=traceback.format_exc())
        if os.environ.get("AISPEND_HOOK_DEBUG"):
            print(f"aispend: {hook}: {type(e).__name__}: {e}", file=sys.stderr)
    return 0


def log_path() -> Path:
    """The hooks' log, in the data dir."""
    return data_subdir() / "hooks.log"


def log(message: str, detail: str | None = None) -> None:
    """Append to the hooks log (rotated at 1 MB); silent if even that fails."""
    try:
        path = log_path()
        if path.exists() and path.stat().st_size > _LOG_MAX:
            path.replace(path.with_name("hooks.log.1"))
        private_file(path)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")
            if detail:
                fh.write("".join("    " + x + "\n" for x in detail.rstrip().splitlines()))
    except OSError:
        pass


def _not_installed(key: str) -> None:
    log(f"{key}: no install record: no receipt ('aispend install' there bills its commits)")


def _budget() -> float:
    try:
        return float(os.environ.get("AISPEND_HOOK_BUDGET", INGEST_BUDGET_S))
    except ValueError:
        return INGEST_BUDGET_S


def _open_index() -> Any:
    from aispend.index import db

    try:
        wait = float(os.environ.get("AISPEND_HOOK_BUSY_WAIT", BUSY_WAIT_S))
    except ValueError:
        wait = BUSY_WAIT_S
    return db.connect(timeout=wait)


def _ingest(conn: Any, budget: bool = True) -> bool:
    """Read new log lines; with ``budget``, for at most the hooks' time budget (newest file
    first). Whether everything was read."""
    from aispend import sources
    from aispend.index.ingest import ingest
    from aispend.pricing import table

    stats = ingest(conn, sources.all_sources(), table.load(), deadline=time.monotonic() + _budget() if budget else None)
    return not stats.deferred


# -- what kind of commit is this -------------------------------------------


def _reflog_action(facts: dict[str, str]) -> str | None:
    """The command that made the entry's commit, from the HEAD reflog line git wrote just
    before running the hook (``commit``, ``commit (amend)``, ``rebase (pick)``...);
    None when the reflog is off or its last entry is not this commit."""
    line = facts.get("reflog", "")
    ids, _, msg = line.partition("\t")
    parts = ids.split()
    if len(parts) < 2 or (facts.get("head") and parts[1] != facts["head"]):
        return None
    return msg.partition(":")[0].strip()


def commit_kind(facts: dict[str, str]) -> str:
    """``commit``, ``amend``, ``rebase``, ``cherry-pick``, ``revert`` or ``other``.

    git runs post-commit for the commits its sequencer makes too (rebase,
    cherry-pick, revert): those must not claim new usage. The reflog entry git
    just wrote says which command made the commit; the state files are the
    fallback when the reflog is off (docs/hooks.md has the table).
    """
    action = _reflog_action(facts)
    if facts.get("rebasing") == "1":
        # New work committed at an 'edit' stop is a commit of its own; everything
        # else is the rebase's, carried by post-rewrite when it finishes.
        return "commit" if action == "commit" and facts.get("edit_stop") == "1" else "rebase"
    if action is not None:
        if action in ("commit", "commit (initial)", "commit (merge)"):
            return "commit"
        if action == "commit (amend)":
            return "amend"
        if action.startswith("cherry-pick") or action == "commit (cherry-pick)":
            return "cherry-pick"
        if action.startswith("revert"):
            return "revert"
        if action.startswith("rebase") or action.startswith("pull"):
            return "rebase"
        return "other"
    return "cherry-pick" if facts.get("cherry_pick_head") else "commit"


def branch_of(headref: str) -> str | None:
    """The branch a HEAD file names (``ref: refs/heads/x``); None when detached."""
    headref = headref.strip()
    if headref.startswith("ref: refs/heads/"):
        return headref[len("ref: refs/heads/") :]
    if headref.startswith("ref: "):
        return headref[5:]
    return None


def head_branch(repo: git.Repo) -> str | None:
    """This worktree's branch now, read from its HEAD file (no process)."""
    try:
        return branch_of((repo.git_dir / "HEAD").read_text(encoding="utf-8"))
    except OSError:
        return git.current_branch(repo)


# -- receipts ----------------------------------------------------------------


def scope_for(
    conn: Any, repo: git.Repo, until_ms: int, branch: str | None, created: str | None = None
) -> Any:
    """Where and when a commit in ``repo`` on ``branch`` at the moment ``until_ms`` may claim
    usage (``created``: the branch's first reflog line as the hook saw it); an empty window
    (nothing to claim, so no receipt of its own) when ``repo`` has no install record."""
    from aispend.attribution import Scope, install_window

    key = str(repo.common_dir)
    since = install_window(conn, key, until_ms)
    if since is None:
        # Hooks without an install record (a hooks folder shared with other repositories, hooks
        # copied, data dir wiped) bill nothing: only 'aispend install' starts billing a repository.
        _not_installed(key)
        since = until_ms
    inherited: tuple[tuple[str, int], ...] = ()
    made = None
    if branch:
        inherited = tuple(git.branch_origins(repo.common_dir, repo.git_dir, branch, created or None))
        made = git.branch_created_ms(repo.common_dir, branch, created or None)
    return Scope(
        repo=key, worktree=repo.work_root, branch=branch, since_ms=since, until_ms=until_ms, inherited=inherited,
        branch_since_ms=made,
    )


def scope_now(conn: Any, repo: git.Repo) -> Any:
    """What a commit in ``repo`` made now, on the branch checked out, would claim (previews, status)."""
    return scope_for(conn, repo, clock.now_ms(), head_branch(repo))


def receipt_for_commit(conn: Any, repo: git.Repo, commit: git.Commit, scope: Any) -> str | None:
    """A new commit: claim what its worktree spent up to its moment (``scope``), and receipt it,
    signed by its committer; the receipt's line, or None when there was nothing to bill."""
    from aispend import attribution
    from aispend.notes.carry import write_receipt as write

    claimed = attribution.claim(conn, scope, commit.sha)
    written = write(conn, repo, commit, claimed, [], signer_email=commit.committer_email, until_ms=scope.until_ms)
    if written and written.created_key:
        log(f"created signing key {written.key_path}")
    return written.line if written else None


# -- the queue ----------------------------------------------------------------
#
# post-commit and post-rewrite only write down the facts of the moment in
# ``<git dir>/aispend-queue`` (the shim does it in shell: a few file reads and one
# git process) and start ``hookrun drain`` in the background: the commit does not
# wait. The drain takes the queue's lock and handles the entries in the order they
# were written, so a commit never claims usage that belongs to the one before it,
# however fast they follow each other.

QUEUE = "aispend-queue"


def queue_dir(git_dir: Path) -> Path:
    """The queue of the worktree whose git dir is ``git_dir``: in it for the main worktree; in the
    common dir for a linked one (``aispend-queue/worktrees/NAME``), which outlives the worktree:
    ``git worktree remove`` right after a commit leaves its entry to be handled."""
    common = _read(git_dir / "commondir").strip()
    if not common:
        return git_dir / QUEUE
    base = Path(common) if os.path.isabs(common) else git_dir / common
    return base / QUEUE / "worktrees" / git_dir.name


def queues(git_dir: Path) -> list[Path]:
    """The worktree's queue, and the one in its own git dir where hooks installed by an older
    aispend still write a linked worktree's entries."""
    q = queue_dir(git_dir)
    legacy = git_dir / QUEUE
    return [q] if legacy == q or not entries(legacy) else [legacy, q]


def repository_queues(common_dir: Path) -> list[tuple[Path, Path]]:
    """Every queue of a repository, as (its worktree's git dir, the queue): the main worktree's,
    then each linked worktree's (an older aispend's in its git dir first, then the one in the
    common dir, which outlives a removed worktree)."""
    found = [(common_dir, common_dir / QUEUE)]
    moved = common_dir / QUEUE / "worktrees"
    worktrees = common_dir / "worktrees"
    names: set[str] = set()
    for folder in (moved, worktrees):
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir() if p.is_dir()}
    for name in sorted(names):
        found += [(worktrees / name, worktrees / name / QUEUE), (worktrees / name, moved / name)]
    return found


def _common_of_queue(q: Path) -> Path:
    """The repository's common git dir, from a queue's path alone (its worktree may be gone)."""
    return q.parents[2] if q.parent.name == "worktrees" and q.parents[1].name == QUEUE else q.parent


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def gather(hook: str, args: list[str], stdin: str = "") -> tuple[Path, str]:
    """The facts the shim records, gathered in Python (``aispend hook``, hook frameworks)."""
    repo = git.find_repo()
    gd = repo.git_dir
    head = git.ok(["rev-parse", "-q", "--verify", "HEAD"], repo.worktree) or ""
    reflog = [x for x in _read(gd / "logs" / "HEAD").splitlines() if x]
    headref = _read(gd / "HEAD").strip()
    branch = branch_of(headref)
    created = ""
    if branch and headref.startswith("ref: refs/heads/"):
        created = (_read(repo.common_dir / "logs" / "refs" / "heads" / branch).splitlines() or [""])[0]
    rebase_head = _read(gd / "rebase-merge" / "head-name").strip() or _read(gd / "rebase-apply" / "head-name").strip()
    facts = {
        "hook": hook,
        "worktree": str(repo.worktree),
        "common": str(repo.common_dir),
        "head": head,
        "headref": headref,
        "reflog": reflog[-1] if reflog else "",
        "rebasing": "1" if (gd / "rebase-merge").is_dir() or (gd / "rebase-apply").is_dir() else "",
        "edit_stop": "1" if (gd / "rebase-merge" / "amend").is_file() else "",
        "stopped": _read(gd / "rebase-merge" / "amend").strip(),
        "cherry_pick_head": _read(gd / "CHERRY_PICK_HEAD").strip() or _read(gd / QUEUE / ".cherry-pick-head").strip(),
        "todo": (_read(gd / "sequencer" / "todo").splitlines() or [""])[0],
        "created": created,
        "rebase_head": rebase_head,
        "moment": str(clock.now_ms()),
        "args": " ".join(args),
    }
    body = "".join(f"{k}={v}\n" for k, v in facts.items()) + "--\n" + stdin
    return gd, body


def enqueue(git_dir: Path, hook: str, body: str) -> Path:
    """Add an entry to the queue (named by a counter, so entries sort in the order written)."""
    q = queue_dir(git_dir)
    q.mkdir(parents=True, exist_ok=True)
    try:
        n = int(_read(q / ".seq").strip() or 0) + 1
    except ValueError:
        n = 1
    (q / ".seq").write_text(f"{n}\n", encoding="utf-8")
    path = q / f"{n:012d}.{os.getpid()}.{hook}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)
    return path


def parse_entry(text: str) -> tuple[dict[str, str], str]:
    """An entry's facts (``key=value`` lines) and its body (after a line that is just ``--``:
    a value may end in ``--`` too, a commit subject in the reflog line)."""
    head, _, body = ("\n" + text).partition("\n--\n")
    facts = {}
    for line in head.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            facts[k] = v
    return facts, body


def entries(q: Path) -> list[Path]:
    try:
        return sorted(p for p in q.iterdir() if p.name[:1].isdigit() and not p.name.endswith(".tmp"))
    except OSError:
        return []


def drain(git_dir: Path, foreground: bool = False, queue: Path | None = None) -> None:
    """Handle every queued entry of a worktree (``queue``: that one queue), in order; return
    when the queue is empty.

    One drain at a time per worktree (a lock); another one that finds the lock taken
    leaves, since the holder looks again for entries before it goes. An entry is handled
    only once every log line is read (its receipt must not depend on how far reading got);
    a drain in the ``foreground`` (the commit waits for it) that runs out of its time
    budget hands the rest to a drain in the background instead.
    """
    for q in [queue] if queue is not None else queues(git_dir):
        _drain_queue(git_dir, q, foreground)


def _drain_queue(git_dir: Path, q: Path, foreground: bool) -> None:
    if not q.is_dir():
        return
    handled: set[str] = set()
    try:
        import fcntl
    except ImportError:  # no flock (Windows): best effort, one pass
        _drain_locked(q, handled, foreground)
        _remember(q, handled)
        return
    while True:
        with open(q / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another drain is at work: it will see our entries
            (q / ".pid").write_text(str(os.getpid()), encoding="utf-8")
            (q / ".stalled").unlink(missing_ok=True)
            try:
                outcome = _drain_locked(q, handled, foreground)
                if outcome == STALLED:
                    (q / ".stalled").write_text(str(time.time()), encoding="utf-8")
            finally:
                (q / ".pid").unlink(missing_ok=True)
        if outcome == HANDED_OFF:
            _background_drain(git_dir, q)
            return
        if outcome == STALLED or not entries(q):
            # Outside the lock: the next commit's own drain need not wait for this.
            _remember(q, handled)
            return


#: What a drain's pass came to: every entry handled; entries left for the next drain (index busy,
#: key unusable); entries handed to a drain in the background (a foreground one out of time).
DONE, STALLED, HANDED_OFF = "done", "stalled", "handed off"


def _background_drain(git_dir: Path, q: Path) -> None:
    import subprocess

    subprocess.Popen(
        [sys.executable, "-m", "aispend.hookrun", "drain", str(git_dir), str(q)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={k: v for k, v in os.environ.items() if k != "AISPEND_HOOK_SYNC"},
    )


#: Present while a drain computes the alerts for the next commit's message (tests wait for it).
REMEMBERING = ".alerts"


def _remember(q: Path, worktrees: set[str]) -> None:
    """Compute, for the next commit's message, the receipt alerts of the repositories handled."""
    if not worktrees:
        return
    try:
        conn = _open_index()
    except Exception as e:  # noqa: BLE001
        log(f"alerts not computed: index unavailable ({e})")
        return
    marker = q / f"{REMEMBERING}.{os.getpid()}"
    try:
        marker.write_text("", encoding="utf-8")
    except OSError:
        pass
    try:
        for wt in sorted(worktrees):
            try:
                if Path(wt).is_dir():  # a linked worktree removed since has no next commit
                    remember_alerts(conn, git.find_repo(wt))
            except Exception as e:  # noqa: BLE001 - alerts are a preview: the receipts are written
                log(f"alerts not computed: {type(e).__name__}: {e}")
    finally:
        conn.close()
        marker.unlink(missing_ok=True)


def remembering(git_dir: Path) -> bool:
    """Whether a drain is still computing the next commit's alerts in this worktree."""
    markers = []
    for q in queues(git_dir):
        try:
            markers += [p for p in q.iterdir() if p.name.startswith(REMEMBERING + ".")]
        except OSError:
            pass
    for m in markers:
        pid = m.name[len(REMEMBERING) + 1 :]
        try:
            os.kill(int(pid), 0)
            return True
        except (ValueError, OSError):
            m.unlink(missing_ok=True)  # left by a drain that was killed
    return False


def _drain_locked(q: Path, worktrees: set[str], foreground: bool = False) -> str:
    """Handle the entries: DONE, STALLED (the index stayed busy or unusable, or the key is
    unusable: they wait for the next drain) or HANDED_OFF (see :func:`drain`)."""
    from aispend.index.db import is_busy, storage_problem
    from aispend.receipts.keys import KeyFileError

    if not entries(q):
        return DONE
    try:
        conn = _open_index()
    except Exception as e:  # noqa: BLE001
        log(f"queue {q}: index unavailable ({e}); entries wait: the next commit, or 'aispend ingest', writes them once that is fixed")
        return STALLED
    try:
        while paths := entries(q):
            todo = [(path, *parse_entry(_read(path))) for path in paths]
            if not foreground:  # a commit waiting for its hook is not kept waiting for this
                _settle(todo)
            try:
                # Every log line up to the entries' moments must be read before they claim.
                if not _ingest(conn, budget=foreground):
                    log("time budget spent: receipts left to a drain in the background")
                    return HANDED_OFF
            except Exception as e:  # noqa: BLE001 - claim from what is indexed
                if is_busy(e) or storage_problem(e):
                    log(f"queue: index unavailable ({storage_problem(e) or e}); entries wait: the next commit, or 'aispend ingest', writes them once that is fixed")
                    return STALLED
                log(f"ingest skipped: {type(e).__name__}: {e}")
            for path, facts, body in todo:
                if facts.get("worktree"):
                    worktrees.add(facts["worktree"])
                facts["moment"] = str(entry_moment(facts, path))
                try:
                    handle(conn, facts, body)
                except Exception as e:  # noqa: BLE001
                    if is_busy(e):
                        log(f"queue {path.name}: index unavailable ({e}); it waits: the next commit, or 'aispend ingest', writes it once that is fixed")
                        return STALLED
                    if isinstance(e, (KeyFileError, git.RefLocked)) or storage_problem(e):
                        # Nothing can be signed or written until that is fixed (a key, a lock,
                        # a full disk): keep the entries for the next drain.
                        log(f"queue {path.name}: {e}; it waits: the next commit, or 'aispend ingest', writes it once that is fixed")
                        return STALLED
                    import traceback

                    log(f"queue {path.name}: {type(e).__name__}: {e}", detail=traceback.format_exc())
                path.unlink(missing_ok=True)
    finally:
        conn.close()
    return DONE


#: A drain reads the logs no sooner than this long after the moment of the newest commit it is
#: about to handle: an agent may write a request to its log a little after the request's own
#: timestamp, and a drain already at work would otherwise read at once (a new one takes longer
#: than this to start).
LOG_GRACE_S = 0.2


def _settle(todo: list[tuple[Path, dict[str, str], str]]) -> None:
    """Wait, if need be, until :data:`LOG_GRACE_S` has passed since the newest entry's moment (on
    the real clock: entries whose moment a pinned clock gave are not waited for)."""
    newest = 0.0
    for path, facts, _ in todo:
        if not facts.get("now"):
            newest = max(newest, _mtime(path))
    wait = newest + LOG_GRACE_S - time.time()
    if 0 < wait <= LOG_GRACE_S:
        time.sleep(wait)


def queued_commits(git_dir: Path) -> set[str]:
    """The commits whose receipts entries still waiting in the worktree's queue will write."""
    out: set[str] = set()
    for path in [p for q in queues(git_dir) for p in entries(q)]:
        facts, body = parse_entry(_read(path))
        if facts.get("head"):
            out.add(facts["head"])
        out |= {new for _, new in rewritten(body)}
    return out


def wait_idle(git_dir: Path, timeout: float = 10.0) -> bool:
    """Wait (up to ``timeout`` s) until the worktree's queue is handled, or left waiting.

    Entries are left waiting when a drain gave up on a busy index (``.stalled``), or
    when no drain is at work and the newest entry is older than a drain takes to start.
    """
    deadline = time.monotonic() + timeout
    while True:
        if all(_idle(q) for q in queues(git_dir)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _idle(q: Path) -> bool:
    todo = entries(q)
    if not todo:
        return True
    if _drain_alive(q):
        return False
    newest = max((_mtime(p) for p in todo), default=0.0)
    return _mtime(q / ".stalled") >= newest or time.time() - newest > STARTUP_GRACE_S


#: Longer than a background drain takes to start and take its lock.
STARTUP_GRACE_S = 5.0


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _drain_alive(q: Path) -> bool:
    pid = _read(q / ".pid").strip()
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False


# -- handling one entry -----------------------------------------------------------


def entry_moment(facts: dict[str, str], path: Path | None) -> int:
    """The moment (epoch ms) of the commit an entry is for: recorded by ``gather``; else the clock
    as pinned by ``AISPEND_NOW`` when the hook ran; else the entry file's modification time (the
    shim writes it as the hook runs), taken as the end of its second on a file system that keeps
    whole seconds only; else (no file) now."""
    if facts.get("moment", "").isdigit():
        return int(facts["moment"])
    if facts.get("now"):
        from aispend.errors import AispendError

        try:
            return int(clock.parse_pin(facts["now"]).timestamp() * 1000)
        except AispendError:
            pass  # not a time: the file's
    if path is not None:
        try:
            ns = path.stat().st_mtime_ns
        except OSError:
            return clock.now_ms()
        from aispend.attribution import SECOND_MS

        return ns // 1_000_000 + (SECOND_MS if ns % 1_000_000_000 == 0 else 0)
    return clock.now_ms()


def _repo_of(facts: dict[str, str]) -> git.Repo:
    """The worktree an entry was written in; for a linked worktree removed since, the repository
    as its common git dir sees it (git runs there), still named by the worktree's path (the
    usage it may claim was logged there)."""
    where = Path(facts["worktree"])
    if where.is_dir() or not facts.get("common"):
        return git.find_repo(where)
    common = Path(facts["common"]).resolve()
    if not common.is_dir():
        return git.find_repo(where)  # the repository itself is gone: say so
    return git.Repo(worktree=common, git_dir=common / "worktrees" / "removed", common_dir=common, removed_worktree=where)


def handle(conn: Any, facts: dict[str, str], body: str) -> None:
    """Build the receipts one queue entry asks for (``facts["moment"]``: when its hook ran)."""
    hook = facts.get("hook")
    repo = _repo_of(facts)
    branch = branch_of(facts.get("headref", ""))
    moment = entry_moment(facts, None)
    if facts.get("rebasing") != "1" and not (hook == "post-rewrite" and facts.get("args", "").startswith("rebase")):
        stops = _Stops.load(repo)
        if stops:
            stops.finish(conn, repo, facts.get("head") or "HEAD")  # a rebase given up after an edit stop
    if hook == "post-commit":
        _commit_entry(conn, repo, facts, branch, moment)
    elif hook == "post-merge":
        _merge_entry(conn, repo, facts, branch, moment)
    elif hook == "post-rewrite":
        kind = facts.get("args", "").split(" ")[0]
        _rewrite_entry(conn, repo, kind, body, facts, branch, moment)


def _commit_entry(conn: Any, repo: git.Repo, facts: dict[str, str], branch: str | None, moment: int) -> None:
    kind = commit_kind(facts)
    if kind in ("amend", "rebase", "revert", "other"):
        return  # amend and rebase: post-rewrite carries; revert: no usage of its own
    commit = git.read_commit(repo, facts["head"])
    if kind == "cherry-pick":
        source = cherry_pick_source(repo, commit, facts)
        if source:
            carry(conn, repo, commit, [source], None)
        return
    if facts.get("rebasing") == "1":
        # A new commit at a rebase's edit stop: claimed on the branch being rebased, and kept in
        # mind, since git will report the stopped commit as rewritten into it.
        receipt_for_commit(conn, repo, commit, scope_for(conn, repo, moment, _rebased_branch(facts, branch), None))
        stops = _Stops.load(repo)
        if commit.parents:
            stops.made[commit.sha] = commit.parents[0]
            if len(facts.get("stopped", "")) >= 40:
                stops.stopped.add(facts["stopped"])
            stops.save(repo)
        return
    receipt_for_commit(conn, repo, commit, scope_for(conn, repo, moment, branch, facts.get("created")))


def _rebased_branch(facts: dict[str, str], branch: str | None) -> str | None:
    """The branch a rebase in progress is rewriting (HEAD is detached meanwhile)."""
    return branch_of("ref: " + facts["rebase_head"]) if facts.get("rebase_head") else branch


def _merge_entry(conn: Any, repo: git.Repo, facts: dict[str, str], branch: str | None, moment: int) -> None:
    """post-merge: a merge commit ``git merge`` or ``git pull`` made (git runs no post-commit for
    it) claims like any commit; a fast-forward or a squash merge (``args`` 1) made no commit."""
    if facts.get("args", "").strip() == "1":
        return
    action = _reflog_action(facts) or ""
    if not action.startswith(("merge", "pull")):
        return  # the reflog is off, or its last entry is not this merge: cannot tell what made HEAD
    line = facts.get("reflog", "")
    if "Fast-forward" in line.partition("\t")[2]:
        return
    commit = git.read_commit(repo, facts["head"])
    if len(commit.parents) < 2:
        return
    receipt_for_commit(conn, repo, commit, scope_for(conn, repo, moment, branch, facts.get("created")))


def cherry_pick_source(repo: git.Repo, commit: git.Commit, facts: dict[str, str]) -> str | None:
    """The commit a cherry-pick copied: CHERRY_PICK_HEAD (as prepare-commit-msg saw it, for a
    conflicted pick concluded by hand), else the sequencer's current pick, else a ``-x`` line."""
    if facts.get("cherry_pick_head"):
        return facts["cherry_pick_head"]
    first = facts.get("todo", "").split()
    if len(first) >= 2 and first[0] in ("pick", "p"):
        return git.ok(["rev-parse", "--verify", "-q", first[1] + "^{commit}"], repo.worktree)
    for line in reversed(commit.message.splitlines()):
        line = line.strip()
        if line.startswith("(cherry picked from commit ") and line.endswith(")"):
            return line[len("(cherry picked from commit ") : -1]
    return None


def carry(conn: Any, repo: git.Repo, commit: git.Commit, olds: list[str], scope: Any, own: bool = True) -> None:
    """Receipt ``commit`` with the receipts of the commits it replaces that may be carried
    (trusted here, or this machine's own), with what was already claimed for it (usage
    folded in at a rebase's edit stop; not with ``own`` False: its own receipt is among
    ``olds``), and, given a ``scope`` (an amend), the new usage too."""
    from aispend import attribution
    from aispend.notes.carry import carriable, signing_key
    from aispend.notes.carry import write_receipt as write

    if scope is not None:
        claimed = attribution.claim(conn, scope, commit.sha)
    elif own:
        claimed = attribution.claimed_by(conn, str(repo.common_dir), commit.sha)
    else:
        claimed = []
    if not claimed and not git.read_notes(repo, olds):
        return  # nothing to carry, nothing new: no key needed
    key, created = signing_key(commit.committer_email)
    if created:
        log(f"created signing key {key.path}")
    carried = carriable(repo, olds, _trust(repo), key.public_line, log)
    write(
        conn, repo, commit, claimed, carried, signer_email=commit.committer_email, key=key,
        until_ms=None if scope is None else scope.until_ms,
    )


def _trust(repo: git.Repo) -> Any:
    """The repository's trust list; none (only this machine's own receipts carry) when it is broken."""
    from aispend.errors import AispendError
    from aispend.receipts.trust import Trust, load_trust

    try:
        return load_trust(repo)
    except AispendError as e:
        log(f"trust list unusable ({e}): carrying only this machine's own receipts")
        return Trust(None, None)


def _rewrite_entry(
    conn: Any, repo: git.Repo, kind: str, stdin: str, facts: dict[str, str], branch: str | None, moment: int
) -> None:
    """``amend`` or ``rebase``: stdin holds ``OLD NEW [EXTRA]`` lines.

    Inside a rebase, an ``amend`` is one of its steps: the ``rebase`` call at its end carries the
    net effect. What happens at an ``edit`` stop is tracked in :class:`_Stops` as it happens: the
    usage of an amend there is claimed at once for the amended commit (it is this moment's), a
    commit made there gets its own receipt at once, and a later step that rewrites either takes
    its claims along."""
    from aispend import attribution

    repo_key = str(repo.common_dir)
    pairs = rewritten(stdin)
    stops = _Stops.load(repo)
    if kind == "amend" and facts.get("rebasing") == "1":
        for old, new in pairs:
            stops.rewritten(conn, repo_key, old, new)
            if _reflog_action(facts) == "commit (amend)":  # the user's own amend at an edit stop (not a squash)
                scope = scope_for(conn, repo, moment, _rebased_branch(facts, branch), None)
                if attribution.claim(conn, scope, new, more=True) and new not in stops.made:
                    stops.edited.add(new)
        stops.save(repo)
        return
    news: dict[str, list[str]] = {}
    for old, new in pairs:
        # git maps the commit of an edit stop to HEAD when the rebase went on: a commit made
        # there is not what the stopped commit became; the commit it was made on is, when that
        # is the stopped commit (as picked, or amended). Otherwise (the commit was split) git's
        # choice stands.
        base = new
        while base in stops.made:
            base = stops.made[base]
        if base != new and (base == old or base in stops.edited or base in stops.stopped):
            new = base
        if new != old:
            news.setdefault(new, []).append(old)
    for new, olds in news.items():
        commit = git.read_commit(repo, new)
        scope = scope_for(conn, repo, moment, branch, facts.get("created")) if kind == "amend" else None
        if new in stops.made and _receipted(conn, repo, new):
            # It has a receipt of its own already: the new one carries that too, and claims nothing.
            carry(conn, repo, commit, olds + [new], None, own=False)
        else:
            carry(conn, repo, commit, olds, scope)
    if kind == "rebase" and stops:
        tip = facts.get("head") or "HEAD"  # HEAD when the rebase ended, not when this runs
        for sha in sorted(stops.made):  # made at a stop and amended there: not receipted yet
            if sha not in news and not _receipted(conn, repo, sha) and attribution.claimed_by(conn, repo_key, sha) and git.is_ancestor(repo, sha, tip):
                carry(conn, repo, git.read_commit(repo, sha), [], None)
        stops.finish(conn, repo, tip, keep=set(news))


def rewritten(body: str) -> list[tuple[str, str]]:
    """The ``OLD NEW`` pairs of a post-rewrite entry's body (git's list on the hook's stdin),
    commits that did change only; a line that is not two object ids is no pair."""
    pairs = (line.split() for line in body.splitlines())
    return [(p[0], p[1]) for p in pairs if len(p) >= 2 and p[0] != p[1] and _is_id(p[0]) and _is_id(p[1])]


def _is_id(text: str) -> bool:
    """A full object id (SHA-1 or SHA-256), as git's rewritten list gives them."""
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _receipted(conn: Any, repo: git.Repo, sha: str) -> bool:
    """Whether this machine wrote a receipt for ``sha`` of ``repo``."""
    return conn.execute("SELECT 1 FROM receipts WHERE commit_sha = ? AND repo = ?", (sha, str(repo.common_dir))).fetchone() is not None


class _Stops:
    """What a rebase's edit stops did, kept in the queue folder until the rebase ends: commits that
    hold usage claimed by an amend there (``edited``), and commits made there, each with the
    commit it was made on (``made``)."""

    FILE = ".rebase-stops.json"

    def __init__(self, edited: set[str], made: dict[str, str], stopped: set[str] | None = None) -> None:
        self.edited = edited
        self.made = made
        self.stopped = stopped or set()  # the commits the rebase stopped at

    def __bool__(self) -> bool:
        return bool(self.edited or self.made)

    @classmethod
    def load(cls, repo: git.Repo) -> "_Stops":
        import json

        try:
            data = json.loads(_read(queue_dir(repo.git_dir) / cls.FILE) or "{}")
            return cls(
                {str(x) for x in data.get("edited", [])},
                {str(k): str(v) for k, v in data.get("made", {}).items()},
                {str(x) for x in data.get("stopped", [])},
            )
        except (ValueError, AttributeError):
            return cls(set(), {})

    def save(self, repo: git.Repo) -> None:
        import json

        path = queue_dir(repo.git_dir) / self.FILE
        if self:
            data = {"edited": sorted(self.edited), "made": self.made, "stopped": sorted(self.stopped)}
            path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)

    def rewritten(self, conn: Any, repo_key: str, old: str, new: str) -> None:
        """A step of the rebase rewrote ``old`` as ``new``: what ``old`` claimed at a stop follows it."""
        from aispend import attribution

        if old in self.edited:
            attribution.move_claims(conn, repo_key, old, new)
            self.edited = (self.edited - {old}) | {new}
        elif old in self.made:
            attribution.move_claims(conn, repo_key, old, new)
            self.made[new] = self.made.pop(old)

    def finish(self, conn: Any, repo: git.Repo, tip: str, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """The rebase is over (or was given up): commits tracked here that are not in the history
        of ``tip`` (HEAD then) were thrown away, and what they claimed goes back to the next commit."""
        from aispend import attribution

        gone = sorted(sha for sha in self.edited | set(self.made) if sha not in keep and not git.is_ancestor(repo, sha, tip))
        n = attribution.release(conn, str(repo.common_dir), gone)
        if n:
            log(f"{counted(n, 'request')} claimed at an edit stop of a rebase that was given up: left for the next commit")
        self.edited, self.made, self.stopped = set(), {}, set()
        self.save(repo)


def pre_push(remote: str) -> None:
    """Sync the receipts with the remote being pushed to (``install --sync``); warn, never block.

    Only in a repository installed with ``--sync``: a pre-push hook in a hooks folder shared with
    other repositories must not push their receipts to their remotes."""
    import sqlite3

    from aispend.errors import AispendError
    from aispend.index.db import read_install
    from aispend.notes import sync

    repo = git.find_repo()
    try:
        record = read_install(str(repo.common_dir))
    except sqlite3.Error as e:
        log(f"pre-push: index unavailable ({e}); receipts not synced")
        return
    if record is None or record.sync is False:
        return
    if record.sync is None:
        # Installed before aispend recorded --sync: say how to choose, once per push; do not guess.
        print("aispend: receipts not synced: run aispend install --sync here to sync them on push (or aispend install to stop this note)", file=sys.stderr)
        return
    if git.config(repo, f"remote.{remote}.url") is None:
        return  # a push to a bare URL: no remote to keep receipts in step with
    wait_idle(repo.git_dir)  # the last commit's receipt may still be in the making
    try:
        res = sync.sync(repo, remote)
    except AispendError as e:
        print(f"aispend: receipts not synced with {remote}: {e} (the push goes on)", file=sys.stderr)
        return
    if res.pushed or res.merged:
        lost = f"; the remote had lost {counted(res.restored, 'receipt line')}: published again" if res.restored else ""
        print(f"aispend: receipts synced with {remote}{lost}", file=sys.stderr)


def prepare_commit_msg(args: list[str]) -> None:
    """Show in the message being edited what the commit will carry (comments: git strips them)."""
    if not args:
        return
    msg_file = Path(args[0])
    repo = git.find_repo()
    conn = _open_index()
    try:
        try:
            _ingest(conn)  # a preview: what the time budget allows
        except Exception as e:  # noqa: BLE001
            log(f"prepare-commit-msg: ingest skipped: {type(e).__name__}: {e}")
        row = conn.execute("SELECT trailer FROM installs WHERE repo = ?", (str(repo.common_dir),)).fetchone()
        trailer = bool(row and row[0])
        editing = os.environ.get("GIT_EDITOR") != ":"
        if not trailer and not editing:
            return  # no editor: comment lines would stay in the message
        from aispend import attribution

        preview = attribution.candidates(conn, scope_now(conn, repo))
        alerts = _alerts(conn, repo) if not trailer else []
    finally:
        conn.close()
    # 'git commit --amend' (and -c/-C HEAD, which git tells apart from it in no way a hook sees):
    # the amended commit carries the receipts of the one it replaces, and the new usage.
    carried = _carried_preview(repo) if args[1:3] == ["commit", "HEAD"] else None
    if not preview and not carried and not alerts:
        return
    alert_lines = [f"aispend alert: {_clean(a['message'], 240)}" for a in alerts]
    if not preview and not carried:
        _insert_comment(repo, msg_file, alert_lines)
        return
    summary = _summary(preview, carried)
    if trailer:
        git.run(
            ["interpret-trailers", "--in-place", "--if-exists", "replace", "--trailer", f"{TRAILER}: {summary}", str(msg_file)],
            repo.worktree,
        )
        return
    head = f"aispend: this commit will carry {summary}"
    if carried:
        new = sum(c.cost_nusd or 0 for c in preview)
        head += f": ${new / 1e9:,.4f} new" + (f", ${carried.cost_nusd / 1e9:,.4f} carried from the commit it amends")
    _insert_comment(repo, msg_file, [head] + _detail(preview, carried) + alert_lines)


@dataclass
class _Carried:
    """What an amended commit will carry from the one it replaces (for the preview)."""

    cost_nusd: int = 0
    sessions: set[tuple[str, str]] = field(default_factory=set)
    tokens: int = 0
    unpriced: int = 0
    models: dict[str, int] = field(default_factory=dict)  # cost per model
    input_tokens: int = 0  # all input: uncached, cache writes and reads
    cache_read: int = 0


def _carried_preview(repo: git.Repo) -> _Carried | None:
    """The receipts of HEAD that an amend will carry (trusted here, or this machine's own: the
    rule :func:`carry` applies); None when there are none or they cannot be read."""
    try:
        head = git.ok(["rev-parse", "-q", "--verify", "HEAD"], repo.worktree)
        if not head or not git.read_notes(repo, [head]):
            return None
        from aispend.notes.carry import carriable
        from aispend.receipts import keys, model, signing

        try:
            mine = keys.load_key(signing.key_path()).public_line
        except (keys.KeyFileError, OSError):
            mine = ""
        out = _Carried()
        for _, r in carriable(repo, [head], _trust(repo), mine):
            totals = r.get("totals", {})
            out.cost_nusd += model.nusd_of(totals.get("cost_usd")) or 0
            out.tokens += int(totals.get("total_tokens", 0))
            out.unpriced += int(totals.get("unpriced_tokens", 0))
            for x in r.get("sessions", []):
                out.sessions.add((x.get("tool", ""), x.get("session", "")))
                for m in x.get("models", []):
                    name = str(m.get("model", ""))
                    out.models[name] = out.models.get(name, 0) + (model.nusd_of(m.get("cost_usd")) or 0)
            out.input_tokens += sum(int(totals.get(f, 0)) for f in ("input_tokens", "cache_creation_tokens", "cache_read_tokens"))
            out.cache_read += int(totals.get("cache_read_tokens", 0))
        return out if out.sessions or out.cost_nusd else None
    except Exception as e:  # noqa: BLE001 - a preview never stops a commit
        log(f"prepare-commit-msg: amend preview skipped: {type(e).__name__}: {e}")
        return None


#: Key prefix, in the index's meta table, of the receipt alerts the last drain computed per repository.
ALERTS_KEY = "alerts:"


def _alerts(conn: Any, repo: git.Repo) -> list[dict[str, Any]]:
    """The alerts to show in the message being edited: those of the receipts as the last drain
    computed them (reading every receipt of a long history takes too long for a commit that is
    waiting), and those of this machine's sessions, now. None (and a log line) on error."""
    import json

    try:
        from aispend.policy import config
        from aispend.policy.alerts import mine, session_alerts

        row = conn.execute("SELECT value FROM meta WHERE key = ?", (ALERTS_KEY + str(repo.common_dir),)).fetchone()
        cached = json.loads(row[0]) if row else []
        alerts = [a for a in cached if isinstance(a, dict) and isinstance(a.get("message"), str)] + session_alerts(
            conn, repo, config.load(repo.worktree)
        )
        return mine(alerts, git.config(repo, "user.email"))
    except Exception as e:  # noqa: BLE001 - a preview never stops a commit
        log(f"prepare-commit-msg: alerts skipped: {type(e).__name__}: {e}")
        return []


def remember_alerts(conn: Any, repo: git.Repo) -> None:
    """Compute the receipt alerts of ``repo`` (budgets, spikes, model switches, cache hits) for the
    next commit's message; in the background drain (which runs only where aispend is installed),
    after the receipts are written."""
    import json

    from aispend.index.db import transaction
    from aispend.policy import config
    from aispend.policy.alerts import evaluate
    from aispend.receipts.trust import load_trust

    alerts = evaluate(repo, config.load(repo.worktree), load_trust(repo), None)["alerts"]
    with transaction(conn):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (ALERTS_KEY + str(repo.common_dir), json.dumps(alerts)),
        )


def _summary(claimed: list[Any], carried: _Carried | None = None) -> str:
    """``$cost (N sessions, T tokens)`` of the new usage and what is carried with it."""
    carried = carried or _Carried()
    cost = sum(c.cost_nusd or 0 for c in claimed) + carried.cost_nusd
    sessions = {(c.tool, c.session_id) for c in claimed} | carried.sessions
    tokens = sum(c.total_tokens for c in claimed) + carried.tokens
    unpriced = sum(c.total_tokens for c in claimed if c.cost_nusd is None) + carried.unpriced
    text = f"${cost / 1e9:,.4f} ({counted(len(sessions), 'session')}, {_compact(tokens)} tokens"
    if unpriced:
        text += f", {_compact(unpriced)} unpriced"
    return text + ")"


def _detail(claimed: list[Any], carried: _Carried | None = None) -> list[str]:
    """The models (by cost) and the cache-hit rate of the new usage and what is carried with it."""
    carried = carried or _Carried()
    models: dict[str, int] = dict(carried.models)
    for c in claimed:
        models[c.model] = models.get(c.model, 0) + (c.cost_nusd or 0)
    names = sorted(models, key=lambda m: (-models[m], m))
    inp = sum(c.input_tokens + c.cache_creation_tokens + c.cache_read_tokens for c in claimed) + carried.input_tokens
    read = sum(c.cache_read_tokens for c in claimed) + carried.cache_read
    lines = ["  models: " + ", ".join(_clean(n) for n in names[:4]) + (" ..." if len(names) > 4 else "")]
    if inp:
        lines.append(f"  cache hits: {100 * read / inp:.0f}% of input tokens")
    return lines


def _compact(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _clean(text: str, limit: int = 80) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:limit]


def _comment_char(repo: git.Repo, text: str) -> str:
    """The comment character git will strip: core.commentChar, or the one git's own help lines use."""
    configured = git.config(repo, "core.commentChar") or "#"
    if configured != "auto":
        return configured[:1] or "#"
    for line in text.splitlines():
        if line[1:].startswith(" Please enter the commit message"):
            return line[0]
    return "#"


def _insert_comment(repo: git.Repo, msg_file: Path, lines: list[str]) -> None:
    text = msg_file.read_text(encoding="utf-8", errors="surrogateescape")
    c = _comment_char(repo, text)
    block = "".join(f"{c} {x}\n" for x in lines)
    scissors = f"{c} ------------------------ >8 ------------------------"
    at = text.find("\n" + scissors)
    if at >= 0:
        text = text[: at + 1] + block + text[at + 1 :]
    else:
        if text and not text.endswith("\n"):
            text += "\n"
        text += block
    msg_file.write_text(text, encoding="utf-8", errors="surrogateescape")


if __name__ == "__main__":
    sys.exit(main())
