"""The lean entry the hook shims call: ``python -m aispend.hookrun HOOK [ARGS...]``.

It imports only what a commit needs (no typer, rich, pydantic or pygit2) and it
never fails a commit: every error is caught, logged to ``hooks.log`` in the data
dir, and the exit status is 0. Work has a hard time budget: new log lines are
indexed newest file first until the budget is spent, the rest waits for the
next commit; an index held by another process is waited on briefly, then the
commit is queued (``pending/``) and receipted by the next hook run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aispend import __version__, clock, git
from aispend.paths import data_dir

#: Seconds a hook may spend reading new log lines (env AISPEND_HOOK_BUDGET).
INGEST_BUDGET_S = 2.0
#: Seconds a hook waits for an index held by another process (env AISPEND_HOOK_BUSY_WAIT).
BUSY_WAIT_S = 2.0
TRAILER = "AI-Spend"
_LOG_MAX = 1 << 20


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    hook = args[0] if args else ""
    try:
        if os.environ.get("AISPEND_HOOKS") == "0":
            return 0  # switched off for this command
        if hook == "prepare-commit-msg":
            prepare_commit_msg(args[1:])
        elif hook == "post-commit":
            post_commit()
        elif hook == "post-rewrite":
            post_rewrite(args[1] if len(args) > 1 else "", sys.stdin.read())
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


def log(message: str, detail: str | None = None) -> None:
    """Append to the hooks log (rotated at 1 MB); silent if even that fails."""
    try:
        d = data_dir()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / "hooks.log"
        if path.exists() and path.stat().st_size > _LOG_MAX:
            path.replace(d / "hooks.log.1")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")
            if detail:
                fh.write("".join("    " + x + "\n" for x in detail.rstrip().splitlines()))
    except OSError:
        pass


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


def _ingest(conn: Any) -> None:
    from aispend import sources
    from aispend.index.ingest import ingest
    from aispend.pricing import table

    stats = ingest(conn, sources.all_sources(), table.load(), deadline=time.monotonic() + _budget())
    if stats.deferred:
        log(f"time budget spent: {stats.deferred} log files left for the next commit")


# -- what kind of commit is this -------------------------------------------


def _last_reflog_message(repo: git.Repo) -> str | None:
    """The message of HEAD's newest reflog entry (written before post-commit runs)."""
    try:
        with open(repo.git_dir / "logs" / "HEAD", "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [x for x in tail.split("\n") if x]
    if not lines:
        return None
    _, _, msg = lines[-1].partition("\t")
    return msg


def rebasing(repo: git.Repo) -> bool:
    gd = repo.git_dir
    return (gd / "rebase-merge").is_dir() or (gd / "rebase-apply").is_dir()


def commit_kind(repo: git.Repo) -> str:
    """``commit``, ``amend``, ``rebase``, ``cherry-pick``, ``revert`` or ``other``.

    git runs post-commit for the commits its sequencer makes too (rebase,
    cherry-pick, revert): those must not claim new usage. The reflog entry git
    just wrote says which command made the commit; the state files are the
    fallback when the reflog is off (docs/hooks.md has the table).
    """
    msg = _last_reflog_message(repo)
    action = msg.partition(":")[0].strip() if msg is not None else None
    if rebasing(repo):
        # New work committed at an 'edit' stop is a commit of its own; everything
        # else is the rebase's, carried by post-rewrite when it finishes.
        if action == "commit" and (repo.git_dir / "rebase-merge" / "amend").exists():
            return "commit"
        return "rebase"
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
    if (repo.git_dir / "CHERRY_PICK_HEAD").exists():
        return "cherry-pick"
    if (repo.git_dir / "REVERT_HEAD").exists():
        return "revert"
    return "commit"


def _branch(repo: git.Repo) -> str | None:
    """HEAD's branch, read from the HEAD file (no process); None when detached."""
    try:
        head = (repo.git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return git.current_branch(repo)
    if head.startswith("ref: refs/heads/"):
        return head[len("ref: refs/heads/") :]
    if head.startswith("ref: "):
        return head[5:]
    return None


# -- receipts ----------------------------------------------------------------


def scope_for(conn: Any, repo: git.Repo, until_ms: int, skew: bool = True) -> Any:
    """Where and when a commit in ``repo`` at ``until_ms`` may claim usage (creating a missing install record)."""
    from aispend.attribution import SKEW_MS, Scope, install_window

    key = str(repo.common_dir)
    since = install_window(conn, key)
    if since is None:
        # Hooks without an install record (data dir wiped or hooks copied): bill from now on.
        now = clock.now_ms()
        from aispend.index.db import transaction

        with transaction(conn):
            conn.execute(
                "INSERT OR IGNORE INTO installs (repo, installed_ms, since_ms) VALUES (?, ?, ?)", (key, now, now)
            )
        log(f"{key}: no install record; billing usage from now on")
        since = now
    return Scope(repo=key, worktree=repo.worktree, branch=_branch(repo), since_ms=since, until_ms=until_ms + (SKEW_MS if skew else 0))


def _prompts(conn: Any, claimed: list[Any], until_ms: int) -> dict[tuple[str, str], tuple[int, str | None]]:
    """Per session: how many prompts up to ``until_ms``, and the digest chain over them."""
    from aispend.index.ingest import prompt_chain

    out: dict[tuple[str, str], tuple[int, str | None]] = {}
    for tool, sid in {(c.tool, c.session_id) for c in claimed}:
        n, chain = prompt_chain(conn, sid, until_ms)
        out[(tool, sid)] = (n, "sha256:" + chain.hex() if n else None)
    return out


def write_receipt(
    conn: Any,
    repo: git.Repo,
    commit: git.Commit,
    claimed: list[Any],
    carried: list[tuple[str, dict[str, Any]]] | None = None,
) -> str | None:
    """Build, sign and attach the receipt of ``commit``; its line, or None when there is nothing to bill."""
    carried = carried or []
    if not claimed and not carried:
        return None
    from aispend.attribution import SKEW_MS
    from aispend.receipts import model, signing

    pricing_ids = sorted({c.pricing_id for c in claimed if c.pricing_id})
    if not pricing_ids:
        from aispend.pricing import table

        pricing_ids = [table.load().id]
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
    key, created = signing.ensure_key(comment=f"aispend {commit.committer_email}")
    if created:
        log(f"created signing key {key.path}")
    line = signing.sign(receipt, key, commit.committer_email)
    from aispend.notes import store

    store.append(repo, commit.sha, line)
    from aispend.index.db import transaction

    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO receipts (digest, commit_sha, repo, written_ms, line) VALUES (?, ?, ?, ?, ?)",
            (model.digest(line), commit.sha, str(repo.common_dir), clock.now_ms(), line),
        )
    return line


def receipt_for_commit(conn: Any, repo: git.Repo, commit: git.Commit) -> str | None:
    """A new commit: claim what its worktree spent up to its time, and receipt it."""
    from aispend import attribution

    scope = scope_for(conn, repo, commit.committed_s * 1000)
    claimed = attribution.claim(conn, scope, commit.sha)
    return write_receipt(conn, repo, commit, claimed)


# -- pending commits (the index was busy) -----------------------------------


def _pending_dir() -> Path:
    return data_dir() / "pending"


def queue_pending(repo: git.Repo, sha: str) -> None:
    d = _pending_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    (d / f"{sha}.json").write_text(json.dumps({"worktree": str(repo.worktree), "commit": sha}), encoding="utf-8")


def catch_up(conn: Any) -> None:
    """Receipt the commits an earlier hook had to leave (oldest first)."""
    d = _pending_dir()
    try:
        entries = sorted(d.glob("*.json"))
    except OSError:
        return
    todo = []
    for p in entries:
        try:
            item = json.loads(p.read_text(encoding="utf-8"))
            repo = git.find_repo(item["worktree"])
            commit = git.read_commit(repo, item["commit"])
        except Exception as e:  # noqa: BLE001 - a vanished worktree or commit: drop it
            log(f"pending {p.name}: dropped ({e})")
            p.unlink(missing_ok=True)
            continue
        todo.append((commit.committed_s, p, repo, commit))
    from aispend import attribution

    for _, p, repo, commit in sorted(todo, key=lambda t: t[0]):
        # Claims taken before the hook failed stand; otherwise claim up to the commit's own
        # time (no skew allowance: usage since then belongs to the commits after it).
        claimed = attribution.claimed_by(conn, commit.sha)
        if not claimed:
            scope = scope_for(conn, repo, commit.committed_s * 1000, skew=False)
            claimed = attribution.claim(conn, scope, commit.sha)
        write_receipt(conn, repo, commit, claimed)
        p.unlink(missing_ok=True)


# -- the hooks ----------------------------------------------------------------


def post_commit() -> None:
    repo = git.find_repo()
    kind = commit_kind(repo)
    if kind in ("amend", "rebase", "revert", "other"):
        return  # amend and rebase: post-rewrite carries; revert: no usage of its own
    commit = git.read_commit(repo, "HEAD")
    try:
        conn = _open_index()
    except Exception as e:  # noqa: BLE001
        if kind == "commit":
            queue_pending(repo, commit.sha)
        log(f"post-commit {commit.sha[:12]}: index unavailable ({e}); queued")
        return
    try:
        if kind == "cherry-pick":
            source = cherry_pick_source(repo, commit)
            if source:
                carry(conn, repo, commit, [source], claim_new=False)
            return
        try:
            _ingest(conn)
            catch_up(conn)
        except Exception as e:  # noqa: BLE001 - claim from what is indexed
            log(f"post-commit: ingest skipped: {type(e).__name__}: {e}")
        try:
            receipt_for_commit(conn, repo, commit)
        except Exception as e:
            queue_pending(repo, commit.sha)
            from aispend.index.db import is_busy

            if is_busy(e):
                log(f"post-commit {commit.sha[:12]}: index unavailable ({e}); queued")
                return
            raise
    finally:
        conn.close()


def cherry_pick_source(repo: git.Repo, commit: git.Commit) -> str | None:
    """The commit a cherry-pick copied: CHERRY_PICK_HEAD, else the sequencer's current pick,
    else a ``-x`` line in the message (a conflicted pick concluded by hand has none of them)."""
    try:
        head = (repo.git_dir / "CHERRY_PICK_HEAD").read_text(encoding="utf-8").strip()
        if head:
            return head
    except OSError:
        pass
    try:
        with open(repo.git_dir / "sequencer" / "todo", encoding="utf-8") as fh:
            first = fh.readline().split()
        if len(first) >= 2 and first[0] in ("pick", "p"):
            return git.ok(["rev-parse", "--verify", "-q", first[1] + "^{commit}"], repo.worktree)
    except OSError:
        pass
    for line in reversed(commit.message.splitlines()):
        line = line.strip()
        if line.startswith("(cherry picked from commit ") and line.endswith(")"):
            return line[len("(cherry picked from commit ") : -1]
    return None


def _valid_receipts(repo: git.Repo, sha: str) -> list[tuple[str, dict[str, Any]]]:
    """The receipts of ``sha`` worth carrying: well-formed, signed correctly, about ``sha``."""
    from aispend.notes import store
    from aispend.receipts import model, verify

    out = []
    for line in store.lines_of(repo, sha):
        if line.receipt is None:
            continue
        problems = verify.check_receipt(line.receipt, sha).problems
        if problems:
            log(f"not carrying a receipt of {sha[:12]}: {problems[0]}")
            continue
        out.append((model.digest(line.text), line.receipt))
    return out


def carry(conn: Any, repo: git.Repo, commit: git.Commit, olds: list[str], claim_new: bool) -> None:
    """Receipt ``commit`` with the receipts of the commits it replaces (plus new usage for an amend)."""
    from aispend import attribution

    carried: list[tuple[str, dict[str, Any]]] = []
    for old in olds:
        carried.extend(_valid_receipts(repo, old))
    claimed = []
    if claim_new:
        scope = scope_for(conn, repo, commit.committed_s * 1000)
        claimed = attribution.claim(conn, scope, commit.sha)
    write_receipt(conn, repo, commit, claimed, carried)


def post_rewrite(kind: str, stdin: str) -> None:
    """``amend`` or ``rebase``: stdin holds ``OLD NEW [EXTRA]`` lines."""
    repo = git.find_repo()
    if kind == "amend" and rebasing(repo):
        return  # a step inside a rebase: the 'rebase' call at its end maps the net effect
    news: dict[str, list[str]] = {}
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] != parts[1]:
            news.setdefault(parts[1], []).append(parts[0])
    if not news:
        return
    conn = _open_index()
    try:
        if kind == "amend":
            try:
                _ingest(conn)
            except Exception as e:  # noqa: BLE001
                log(f"post-rewrite: ingest skipped: {type(e).__name__}: {e}")
        for new, olds in news.items():
            commit = git.read_commit(repo, new)
            carry(conn, repo, commit, olds, claim_new=(kind == "amend"))
    finally:
        conn.close()


def prepare_commit_msg(args: list[str]) -> None:
    """Show in the message being edited what the commit will carry (comments: git strips them)."""
    if not args:
        return
    msg_file = Path(args[0])
    repo = git.find_repo()
    conn = _open_index()
    try:
        try:
            _ingest(conn)
        except Exception as e:  # noqa: BLE001
            log(f"prepare-commit-msg: ingest skipped: {type(e).__name__}: {e}")
        row = conn.execute("SELECT trailer FROM installs WHERE repo = ?", (str(repo.common_dir),)).fetchone()
        trailer = bool(row and row[0])
        editing = os.environ.get("GIT_EDITOR") != ":"
        if not trailer and not editing:
            return  # no editor: comment lines would stay in the message
        from aispend import attribution

        scope = scope_for(conn, repo, clock.now_ms())
        preview = attribution.candidates(conn, scope)
    finally:
        conn.close()
    if not preview:
        return
    summary = _summary(preview)
    if trailer:
        git.run(
            ["interpret-trailers", "--in-place", "--if-exists", "replace", "--trailer", f"{TRAILER}: {summary}", str(msg_file)],
            repo.worktree,
        )
        return
    _insert_comment(repo, msg_file, [f"aispend: this commit will carry {summary}"] + _detail(preview))


def _summary(claimed: list[Any]) -> str:
    cost = sum(c.cost_nusd or 0 for c in claimed)
    sessions = {(c.tool, c.session_id) for c in claimed}
    tokens = sum(c.total_tokens for c in claimed)
    unpriced = sum(c.total_tokens for c in claimed if c.cost_nusd is None)
    text = f"${cost / 1e9:,.4f} ({len(sessions)} session{'s' if len(sessions) != 1 else ''}, {_compact(tokens)} tokens"
    if unpriced:
        text += f", {_compact(unpriced)} unpriced"
    return text + ")"


def _detail(claimed: list[Any]) -> list[str]:
    models: dict[str, int] = {}
    for c in claimed:
        models[c.model] = models.get(c.model, 0) + (c.cost_nusd or 0)
    names = sorted(models, key=lambda m: -models[m])
    inp = sum(c.input_tokens + c.cache_creation_tokens + c.cache_read_tokens for c in claimed)
    read = sum(c.cache_read_tokens for c in claimed)
    lines = ["  models: " + ", ".join(_clean(n) for n in names[:4]) + (" ..." if len(names) > 4 else "")]
    if inp:
        lines.append(f"  cache hits: {100 * read / inp:.0f}% of input tokens")
    return lines


def _compact(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _clean(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:80]


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
