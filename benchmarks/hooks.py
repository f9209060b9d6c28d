"""Benchmark: what the hooks add to `git commit`, with a big history already indexed.

    python benchmarks/hooks.py [--mb 1000] [--corpus DIR] [--commits 50] [--json OUT]

Generates a corpus with benchmarks/corpus.py unless --corpus is given, indexes it,
then makes --commits commits in each of two repositories, alternately: one without
aispend, one with `aispend install`. Before every commit an agent log line with new
usage is appended for that repository, so every hooked commit gets a receipt. Reports
the p50 and p95 of `git commit` in both, their difference (what the hooks add), how
long after `git commit` returns the note is there (the receipt is built in the
background), and the same commit with AISPEND_HOOK_SYNC=1 (built in the foreground).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def _usage_line(repo: Path, n: int) -> str:
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return json.dumps({
        "parentUuid": f"p{n}", "isSidechain": False, "cwd": str(repo), "sessionId": "bench-session",
        "version": "2.1.0", "gitBranch": "main", "type": "assistant", "uuid": f"u{n}-{now}", "timestamp": now,
        "requestId": f"req_bench_{n}_{now}",
        "message": {
            "model": "claude-sonnet-4-5-20250929", "id": f"msg_bench_{n}_{now}", "type": "message",
            "role": "assistant", "content": [{"type": "text", "text": "x" * 2000}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 800, "cache_read_input_tokens": 40000, "output_tokens": 600},
        },
    }) + "\n"


def _git(repo: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def _commit(repo: Path, log: Path, n: int, env: dict[str, str]) -> float:
    """Append new usage for ``repo``, then time one `git commit`."""
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(_usage_line(repo, n))
    (repo / "f.txt").write_text(f"{n}\n")
    _git(repo, "add", "f.txt", env=env)
    t = time.perf_counter()
    _git(repo, "commit", "-q", "-m", f"c{n}", env=env)
    return time.perf_counter() - t


def _note_lag(repo: Path, env: dict[str, str], timeout: float = 30.0) -> float:
    """Seconds until HEAD's note exists."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if subprocess.run(["git", "notes", "--ref=refs/notes/aispend", "show", "HEAD"], cwd=repo, env=env, capture_output=True).returncode == 0:
            return time.perf_counter() - t
        time.sleep(0.005)
    raise SystemExit(f"no receipt on {repo} HEAD after {timeout} s: see hooks.log in the data dir")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=1000)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--commits", type=int, default=50)
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aispend-hooks-bench-"))
    try:
        run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, tmp: Path) -> None:
    sys.path.insert(0, str(HERE))
    from corpus import given_or_generated

    corpus = given_or_generated(a.corpus, tmp, a.mb)
    # The commits' usage goes to a Claude root of its own, listed after the corpus's.
    extra_root = tmp / "claude-bench"
    (extra_root / "projects").mkdir(parents=True)
    home = tmp / "home"
    home.mkdir()
    env = dict(
        os.environ, HOME=str(home), GIT_CONFIG_NOSYSTEM="1", AISPEND_HOME=str(tmp / "data"),
        CLAUDE_CONFIG_DIR=f"{corpus / 'claude'},{extra_root}", CODEX_HOME=str(corpus / "codex"),
        GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com",
    )
    # Real time throughout: the usage is stamped now, so the commits must be too.
    for var in ("AISPEND_HOOK_SYNC", "AISPEND_NOW", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        env.pop(var, None)
    aispend = [sys.executable, "-m", "aispend"]
    size = sum(f.stat().st_size for f in corpus.rglob("*.jsonl"))
    subprocess.run(aispend + ["ingest", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
    repos = {}
    for name in ("plain", "hooked", "sync"):
        r = tmp / name
        r.mkdir()
        _git(r, "init", "-q", "-b", "main", env=env)
        _git(r, "commit", "-q", "--allow-empty", "-m", "root", env=env)
        if name != "plain":
            subprocess.run(aispend + ["install"], cwd=r, env=env, check=True, stdout=subprocess.DEVNULL)
        d = extra_root / "projects" / str(r).replace("/", "-")
        d.mkdir()
        repos[name] = (r, d / "bench-session.jsonl")
    sync_env = dict(env, AISPEND_HOOK_SYNC="1")
    times: dict[str, list[float]] = {k: [] for k in repos}
    lags: list[float] = []
    for n in range(a.commits):
        times["plain"].append(_commit(*repos["plain"], n, env))
        times["hooked"].append(_commit(*repos["hooked"], n, env))
        lags.append(_note_lag(repos["hooked"][0], env))
        times["sync"].append(_commit(*repos["sync"], n, sync_env))
    receipts = len(_git(repos["hooked"][0], "notes", "--ref=refs/notes/aispend", "list", env=env).splitlines())
    res = {
        "corpus_bytes": size,
        "commits": a.commits,
        "plain_p50_ms": 1000 * statistics.median(times["plain"]),
        "plain_p95_ms": 1000 * _pct(times["plain"], 0.95),
        "hooked_p50_ms": 1000 * statistics.median(times["hooked"]),
        "hooked_p95_ms": 1000 * _pct(times["hooked"], 0.95),
        "added_p50_ms": 1000 * (statistics.median(times["hooked"]) - statistics.median(times["plain"])),
        "receipt_lag_p50_ms": 1000 * statistics.median(lags),
        "sync_p50_ms": 1000 * statistics.median(times["sync"]),
        "receipts": receipts,
    }
    print(f"history {size / 1e6:,.0f} MB indexed, {a.commits} commits each with new usage")
    print(f"git commit, no hooks      p50 {res['plain_p50_ms']:6.1f} ms  p95 {res['plain_p95_ms']:6.1f} ms")
    print(f"git commit, aispend hooks p50 {res['hooked_p50_ms']:6.1f} ms  p95 {res['hooked_p95_ms']:6.1f} ms"
          f"  (adds {res['added_p50_ms']:.1f} ms; target: at most 100)")
    print(f"receipt in the note       p50 {res['receipt_lag_p50_ms']:6.1f} ms after git commit returns ({receipts} receipts for {a.commits} commits)")
    print(f"hooks in the foreground   p50 {res['sync_p50_ms']:6.1f} ms (AISPEND_HOOK_SYNC=1)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")
    if receipts != a.commits:
        raise SystemExit(f"{a.commits - receipts} hooked commits got no receipt")


if __name__ == "__main__":
    main()
