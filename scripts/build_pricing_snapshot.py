#!/usr/bin/env python3
"""Rebuild ``aispend/pricing/snapshot.json`` from LiteLLM's bundled price table.

Dev-time only (needs pip and the network); aispend itself never imports litellm
and never fetches prices at run time.  For each version it runs
``pip download --no-deps litellm==V``, reads
``litellm/model_prices_and_context_window_backup.json`` out of the wheel with
zipfile, hashes it, and hands all tables (newest first) to
:func:`aispend.pricing.litellm.convert`.

Usage::

    python scripts/build_pricing_snapshot.py                 # the pinned list below
    python scripts/build_pricing_snapshot.py 1.110.0 1.109.1 1.102.4 1.98.0 1.80.0
    python scripts/build_pricing_snapshot.py --wheel-dir DIR # reuse wheels already downloaded
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aispend.pricing.litellm import convert, dumps_snapshot  # noqa: E402

PACKAGE = "litellm"
TABLE_FILE = "litellm/model_prices_and_context_window_backup.json"
OUTPUT = ROOT / "aispend" / "pricing" / "snapshot.json"

# Newest first.  Each older release is here for what newer ones dropped:
#   1.109.1  newest on PyPI when this was built: current prices, gpt-5.x/codex,
#            claude-*-4-6+, Bedrock geo (us./eu./jp./apac./au./global.) entries.
#   1.102.4  last pinned release that still has claude-sonnet-4-20250514,
#            claude-opus-4-1(-20250805), claude-opus-4-20250514, claude-3-7-sonnet,
#            claude-3-opus-20240229, codex-mini-latest, and the >200k prices of
#            claude-sonnet-4-5 (newer releases dropped them).
#   1.98.0   Claude fast-mode multiplier 6 for claude-opus-4-6/4-7
#            (provider_specific_entry.fast, removed by 1.102).
#   1.80.0   claude-3-5-sonnet-20241022/-20240620, claude-3-5-haiku, o1-preview,
#            o1-mini and gemini-1.x/2.0-exp (all gone by 1.82).  Deliberately NOT
#            1.81.x-1.82.x: those carry >200k premiums for claude-opus-4-6 and
#            claude-sonnet-4-6 that were later removed when 1M context went flat-
#            priced, and an older release fills every field a newer one lacks.
# Releases older than 1.80.0 (checked back to 1.55.0) add only claude-2/instant
# and claude-3-sonnet-20240229, which no coding agent logs.
VERSIONS = ["1.109.1", "1.102.4", "1.98.0", "1.80.0"]


def download(version: str, dest: Path) -> Path:
    existing = sorted(dest.glob(f"{PACKAGE}-{version}-*.whl"))
    if existing:
        return existing[0]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
            f"{PACKAGE}=={version}", "-d", str(dest),
        ],
        check=True,
    )
    found = sorted(dest.glob(f"{PACKAGE}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"pip download produced no wheel for {PACKAGE}=={version}")
    return found[0]


def read_table(wheel: Path) -> tuple[bytes, dict]:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(TABLE_FILE)
    table = json.loads(raw.decode("utf-8"))
    if not isinstance(table, dict):
        raise SystemExit(f"{wheel.name}: {TABLE_FILE} is not a JSON object")
    return raw, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", default=VERSIONS, help="litellm versions, newest first")
    parser.add_argument("--wheel-dir", type=Path, help="where wheels are (or get) downloaded; default a temp dir")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        dest = args.wheel_dir or Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        tables: list[tuple[str, dict]] = []
        generated_from: list[dict] = []
        for version in args.versions:
            wheel = download(version, dest)
            raw, table = read_table(wheel)
            tables.append((f"{PACKAGE}=={version}", table))
            generated_from.append(
                {
                    "package": PACKAGE,
                    "version": version,
                    "file": TABLE_FILE,
                    "sha256": hashlib.sha256(raw).hexdigest(),
                }
            )
            print(f"{PACKAGE}=={version}: {len(table)} entries, {wheel.name}", file=sys.stderr)

    snapshot = convert(tables, generated_from=generated_from)
    text = dumps_snapshot(snapshot)
    args.output.write_text(text, encoding="utf-8")

    models = snapshot["models"]
    sources = collections.Counter(m["source"] for m in models.values())
    fills = collections.Counter(
        (field, label) for m in models.values() for field, label in m.get("filled_from", {}).items()
    )
    print(f"wrote {args.output} ({len(text.encode())} bytes, {len(models)} models)", file=sys.stderr)
    print(f"id {snapshot['id']}", file=sys.stderr)
    for label, n in sources.most_common():
        print(f"  source {label}: {n} models", file=sys.stderr)
    for (field, label), n in sorted(fills.items()):
        print(f"  filled {field} from {label}: {n} models", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
