"""Benchmark: cold ingest, warm usage, peak memory, against a plain-Python floor.

    python benchmarks/ingest.py [--mb 1000] [--corpus DIR] [--runs 3] [--json OUT]

Generates a corpus with benchmarks/corpus.py unless --corpus is given (a folder holding
claude/ and codex/). Each measurement runs in a fresh subprocess; timings are medians of
--runs runs, and comparisons are ratios measured in the same run (these machines are noisy).

- cold ingest: `aispend ingest -q` into an empty data dir: seconds, MB/s, peak RSS
- floor: a plain loop that reads every file and parses the lines that matter with orjson
- warm usage: `aispend usage --json` with nothing new to read
- with --ccusage: `ccusage daily --json --offline` on the same files (skipped otherwise)

Peak memory is the whole process tree's (workers included), in a separate run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FLOOR = r"""
import glob, orjson, sys
n = 0
for f in glob.glob(sys.argv[1] + "/**/*.jsonl", recursive=True):
    with open(f, "rb") as fh:
        for line in fh:
            if b'"usage"' in line or b'"token_count"' in line:
                try:
                    orjson.loads(line); n += 1
                except orjson.JSONDecodeError:
                    pass
print(n)
"""


def _tree(root: int) -> list[int]:
    """The pids of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr.decode()[-2000:]}")
    return time.perf_counter() - t


def _peak_kb(cmd: list[str], env: dict[str, str]) -> int:
    """Peak memory (KB) of the whole process tree, workers included: the sum of PSS
    (shared pages split between the processes sharing them), sampled every 20 ms.
    A separate run from the timed ones, since sampling costs CPU."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        peak = max(peak, sum(_pss_kb(pid) for pid in _tree(p.pid)))
        time.sleep(0.02)
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr.read().decode()[-2000:] if p.stderr else ''}")
    return peak


def _same_totals(ccusage: Path, aispend: list[str], env: dict[str, str]) -> bool:
    """Do aispend and ccusage agree on every token total and the cost, per tool?"""
    env = dict(env, TZ="UTC")
    ok = True
    for tool in ("claude", "codex"):
        c = json.loads(subprocess.run([str(ccusage), tool, "daily", "--json", "--offline"], env=env, capture_output=True, check=True).stdout)["totals"]
        o = json.loads(subprocess.run(aispend + ["usage", "--json", "--tool", tool], env=env, capture_output=True, check=True).stdout)["totals"]
        cost = c.get("totalCost", c.get("costUSD"))
        pairs = [
            (c["inputTokens"], o["input_tokens"]),
            (c["outputTokens"], o["output_tokens"]),
            (c["cacheCreationTokens"], o["cache_creation_tokens"]),
            (c["cacheReadTokens"], o["cache_read_tokens"]),
            (c["totalTokens"], o["total_tokens"]),
        ]
        ok = ok and all(a == b for a, b in pairs) and abs(cost - o["cost_usd"]) < 1e-5
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--ccusage", type=Path, help="a ccusage binary (npm install ccusage @ccusage/ccusage-linux-x64) to time on the same files")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aispend-bench-"))
    try:
        sys.path.insert(0, str(HERE))
        from corpus import given_or_generated

        corpus = given_or_generated(a.corpus, tmp, a.mb)
        size = sum(f.stat().st_size for f in corpus.rglob("*.jsonl"))
        env = dict(os.environ, HOME=str(tmp / "home"), CLAUDE_CONFIG_DIR=str(corpus / "claude"), CODEX_HOME=str(corpus / "codex"))
        (tmp / "home").mkdir(exist_ok=True)
        aispend = [sys.executable, "-m", "aispend"]
        cold, floor, warm, ccu = [], [], [], []
        for i in range(a.runs):
            e = dict(env, AISPEND_HOME=str(tmp / f"data{i}"))
            cold.append(_wall(aispend + ["ingest", "-q"], e))
            warm.append(_wall(aispend + ["usage", "--json"], e))
            floor.append(_wall([sys.executable, "-c", FLOOR, str(corpus)], env))
            if a.ccusage:
                ccu.append(_wall([str(a.ccusage), "daily", "--json", "--offline"], dict(env, TZ="UTC")))
            shutil.rmtree(tmp / f"data{i}")
        e = dict(env, AISPEND_HOME=str(tmp / "data-mem"))
        cold_rss = [_peak_kb(aispend + ["ingest", "-q"], e)]
        warm_rss = [_peak_kb(aispend + ["usage", "--json"], e)]
        res = {
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "corpus_bytes": size,
            "runs": a.runs,
            "cold_ingest_s": statistics.median(cold),
            "cold_ingest_mb_s": size / 1e6 / statistics.median(cold),
            "cold_ingest_peak_rss_mb": max(cold_rss) / 1024,
            "floor_s": statistics.median(floor),
            "cold_over_floor": statistics.median(cold) / statistics.median(floor),
            "warm_usage_s": statistics.median(warm),
            "warm_usage_peak_rss_mb": max(warm_rss) / 1024,
        }
        if a.ccusage:
            res["totals_equal_ccusage"] = _same_totals(a.ccusage, aispend, dict(env, AISPEND_HOME=str(tmp / "data-mem")))
        if ccu:
            res["ccusage_daily_s"] = statistics.median(ccu)
            res["cold_over_ccusage"] = statistics.median(cold) / statistics.median(ccu)
        print(f"corpus {size / 1e6:,.0f} MB, median of {a.runs} runs")
        print(f"{'cold ingest':<14}{res['cold_ingest_s']:8.2f} s {res['cold_ingest_mb_s']:8.0f} MB/s  peak {res['cold_ingest_peak_rss_mb']:.0f} MB")
        print(f"{'python floor':<14}{res['floor_s']:8.2f} s  (cold / floor = {res['cold_over_floor']:.2f})")
        if ccu:
            print(f"{'ccusage daily':<14}{res['ccusage_daily_s']:8.2f} s  (cold / ccusage = {res['cold_over_ccusage']:.2f})")
            print(f"{'same totals':<14}{'yes' if res['totals_equal_ccusage'] else 'NO'} (tokens and cost, per tool)")
        print(f"{'warm usage':<14}{res['warm_usage_s']:8.2f} s  peak {res['warm_usage_peak_rss_mb']:.0f} MB")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
