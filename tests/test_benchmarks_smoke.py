"""A seconds-long run of each benchmark, so that none rots. The full runs stay out of CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_corpus_generator_writes_every_line_kind(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "corpus.py"), str(out), "--mb", "3"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    claude = b"".join(f.read_bytes() for f in (out / "claude").rglob("*.jsonl"))
    codex = b"".join(f.read_bytes() for f in (out / "codex").rglob("*.jsonl"))
    for kind in (b'"type":"assistant"', b'"tool_result"', b'"type":"progress"', b'"isSidechain":true'):
        assert kind in claude, kind
    for kind in (b'"session_meta"', b'"turn_context"', b'"token_count"', b'"user_message"'):
        assert kind in codex, kind
    assert 2_500_000 < len(claude) + len(codex) < 12_000_000


def test_ingest_benchmark_smoke(tmp_path: Path) -> None:
    res = tmp_path / "res.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--mb", "3", "--runs", "1", "--json", str(res)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stderr
    d = json.loads(res.read_text())
    assert d["corpus_bytes"] > 2_500_000
    assert d["cold_ingest_s"] > 0 and d["warm_usage_s"] > 0 and d["floor_s"] > 0
    assert 0 < d["cold_ingest_peak_rss_mb"] < 1000
    assert "cold ingest" in p.stdout and "warm usage" in p.stdout


def test_hooks_benchmark_smoke(tmp_path: Path) -> None:
    res = tmp_path / "hooks.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hooks.py"), "--mb", "2", "--commits", "3", "--json", str(res)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(res.read_text())
    assert d["commits"] == 3 and d["receipts"] == 3  # every hooked commit got its receipt
    assert d["corpus_bytes"] > 1_500_000
    assert d["plain_p50_ms"] > 0 and d["hooked_p50_ms"] > 0 and d["sync_p50_ms"] > 0 and d["receipt_lag_p50_ms"] >= 0
    assert "git commit, aispend hooks" in p.stdout and "(adds " in p.stdout


def test_report_benchmark_smoke(tmp_path: Path) -> None:
    res = tmp_path / "report.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report.py"), "--commits", "30", "--runs", "1", "--json", str(res)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(res.read_text())
    assert d["commits"] == 30 and d["receipted"] == 30
    assert d["first_s"] > 0 and d["warm_s"] > 0 and d["cost_usd"] > 0
