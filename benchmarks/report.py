"""Benchmark: `aispend report` over many receipted commits.

    python benchmarks/report.py [--commits 10000] [--runs 3] [--json OUT]

Builds a repository of --commits commits in one `git fast-import`, each with a
signed receipt in refs/notes/aispend (a few sessions and models, as the hooks
write them), then times `aispend report --all --since 2020-01-01 --format json`
in fresh processes: the first run (nothing cached) and the median of --runs warm
ones. Target: under 1 s warm for 10,000 commits.
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
from pathlib import Path


def build(repo: Path, commits: int, env: dict[str, str]) -> None:
    """Commits and their signed receipt notes, written by one fast-import stream."""
    from aispend.attribution import Claimed
    from aispend.receipts import keys, model, signing

    key = keys.create_key(Path(env["AISPEND_HOME"]) / "keys" / "aispend_ed25519", "bench")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    t0 = 1_767_225_600  # 2026-01-01
    stream: list[bytes] = []
    authors = [f"dev{i}@example.com" for i in range(12)]
    for n in range(commits):
        when = t0 + n * 600
        author = authors[n % len(authors)]
        msg = f"commit {n}".encode()
        content = f"{n}\n".encode()
        stream += [
            b"commit refs/heads/main\n", f"mark :{n + 1}\n".encode(),
            f"author D <{author}> {when} +0000\n".encode(), f"committer D <{author}> {when} +0000\n".encode(),
            f"data {len(msg)}\n".encode(), msg, b"\n",
            f"M 100644 inline f{n % 50}.txt\ndata {len(content)}\n".encode(), content, b"\n",
        ]
    marks_file = repo / ".git" / "bench-marks"
    subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks_file}"], cwd=repo, input=b"".join(stream), env=env, check=True)
    marks = dict(line.split() for line in marks_file.read_text().splitlines())
    shas = [marks[f":{n + 1}"] for n in range(commits)]
    trees = subprocess.run(["git", "log", "--format=%H %T", "main"], cwd=repo, capture_output=True, text=True, env=env, check=True).stdout
    tree_of = dict(line.split() for line in trees.splitlines())
    notes: list[bytes] = [b"commit refs/notes/aispend\n", b"committer B <b@example.com> 1767225600 +0000\n", b"data 5\nbench\n"]
    for n, sha in enumerate(shas):
        when = t0 + n * 600
        claimed = [
            Claimed(f"k{n}-{i}", "claude", f"sess-{n // 7}", when * 1000 - 60_000 * i, model_name, 1200, 800, 3000, 40000, 0, cost, "bench")
            for i, (model_name, cost) in enumerate((("claude-sonnet-4-5", 27_000_000), ("claude-opus-4-6", 95_000_000), ("claude-haiku-4-5", 4_000_000))[: 1 + n % 3])
        ]
        r = model.build(
            commit=sha, tree=tree_of[sha], parents=[shas[n - 1]] if n else [], author=authors[n % len(authors)],
            committed_s=when, claimed=claimed, prompts={}, carried=[], carried_digests=[], pricing="bench", version="bench",
        )
        line = (signing.sign(r, key, authors[n % len(authors)]) + "\n").encode()
        notes += [f"N inline {sha}\n".encode(), f"data {len(line)}\n".encode(), line]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(notes), env=env, check=True)
    # The team's trust list: the bench key for every author (only trusted receipts count).
    (repo / ".aispend").mkdir()
    (repo / ".aispend" / "allowed_signers").write_text(keys.allowed_signers_line("*@example.com", key.public_line) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aispend-report-bench-"))
    try:
        env = dict(os.environ, HOME=str(tmp / "home"), AISPEND_HOME=str(tmp / "data"), GIT_CONFIG_NOSYSTEM="1", TZ="UTC")
        for var in ("AISPEND_NOW", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
            env.pop(var, None)
        (tmp / "home").mkdir()
        repo = tmp / "repo"
        t = time.perf_counter()
        build(repo, a.commits, env)
        built = time.perf_counter() - t
        cmd = [sys.executable, "-m", "aispend", "report", "--all", "--since", "2020-01-01", "--format", "json"]

        def once() -> tuple[float, dict]:  # type: ignore[type-arg]
            t = time.perf_counter()
            p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
            return time.perf_counter() - t, json.loads(p.stdout)

        first, rep = once()
        warm = [once()[0] for _ in range(a.runs)]
        res = {
            "commits": a.commits,
            "build_s": built,
            "first_s": first,
            "warm_s": statistics.median(warm),
            "receipted": rep["totals"]["commits_with_receipts"],
            "cost_usd": rep["totals"]["cost_usd"],
        }
        print(f"{a.commits:,} commits, {res['receipted']:,} with receipts (built in {built:.1f} s)")
        print(f"aispend report, first run  {first:6.2f} s")
        print(f"aispend report, warm       {res['warm_s']:6.2f} s  (median of {a.runs}; target: under 1 s)")
        if a.json:
            a.json.write_text(json.dumps(res, indent=2) + "\n")
        if res["receipted"] != a.commits:
            raise SystemExit(f"only {res['receipted']} of {a.commits} commits had a readable receipt")
    finally:
        if os.environ.get("AISPEND_BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
