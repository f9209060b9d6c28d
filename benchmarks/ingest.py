"""Benchmark: cold ingest, warm usage, peak memory, against a plain-Python floor.

    python benchmarks/ingest.py [--mb 1000] [--corpus DIR] [--runs 3] [--json OUT]

Generates a corpus with benchmarks/corpus.py unless --corpus is given (a folder holding
claude/ and codex/). Each measurement runs in a fresh subprocess; timings are medians of
--runs runs, and comparisons are ratios measured in the same run (these machines are noisy).

- cold ingest: `aispend ingest -q` into an empty data dir: seconds, MB/s, peak RSS
- floor: a plain loop that reads every file and parses the lines that matter with orjson
- warm usage: `aispend usage --json` with nothing new to read
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def _peak(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    wrapper = [sys.executable, "-c", "import resource,subprocess,sys,time;t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);w=time.perf_counter()-t;print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);sys.exit(r.returncode)", *cmd]
    p = subprocess.run(wrapper, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr[-2000:]}")
    wall, rss = p.stdout.split()
    return float(wall), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aispend-bench-"))
    try:
        corpus = a.corpus
        if corpus is None:
            corpus = tmp / "corpus"
            sys.path.insert(0, str(HERE))
            from corpus import generate

            generate(corpus, a.mb)
        size = sum(f.stat().st_size for f in corpus.rglob("*.jsonl"))
        env = dict(os.environ, HOME=str(tmp / "home"), CLAUDE_CONFIG_DIR=str(corpus / "claude"), CODEX_HOME=str(corpus / "codex"))
        (tmp / "home").mkdir(exist_ok=True)
        aispend = [sys.executable, "-m", "aispend"]
        cold, cold_rss, floor, warm, warm_rss = [], [], [], [], []
        for i in range(a.runs):
            data = tmp / f"data{i}"
            e = dict(env, AISPEND_HOME=str(data))
            w, rss = _peak(aispend + ["ingest", "-q"], e)
            cold.append(w)
            cold_rss.append(rss)
            w, rss = _peak(aispend + ["usage", "--json"], e)
            warm.append(w)
            warm_rss.append(rss)
            floor.append(_peak([sys.executable, "-c", FLOOR, str(corpus)], env)[0])
            shutil.rmtree(data)
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
        print(f"corpus {size / 1e6:,.0f} MB, median of {a.runs} runs")
        print(f"{'cold ingest':<14}{res['cold_ingest_s']:8.2f} s {res['cold_ingest_mb_s']:8.0f} MB/s  peak {res['cold_ingest_peak_rss_mb']:.0f} MB")
        print(f"{'python floor':<14}{res['floor_s']:8.2f} s  (cold / floor = {res['cold_over_floor']:.2f})")
        print(f"{'warm usage':<14}{res['warm_usage_s']:8.2f} s  peak {res['warm_usage_peak_rss_mb']:.0f} MB")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
