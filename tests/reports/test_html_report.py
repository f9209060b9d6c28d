"""The HTML report: one self-contained page, rendered by a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gitutil import Repo, Spend

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def page(tmp_path: Path, spend: Spend) -> tuple[Path, Repo]:
    repo = Repo.init(tmp_path / "repo")
    repo.install(when="2026-02-01T00:00:00Z")
    for i, day in enumerate((2, 3, 3, 9, 12, 16, 20, 24, 26)):
        spend.claude(repo.path, f"2026-02-{day:02d}T1{i % 10}:00:00Z", f"s{i}", out=500 * (1 + i % 4),
                     model="claude-opus-4-6" if i % 3 == 0 else "claude-sonnet-4-5-20250929")
        repo.commit(f"change <{i}> & more", f"2026-02-{day:02d}T1{i % 10}:30:00Z")
    out = tmp_path / "report.html"
    repo.aispend("report", "--since", "2026-02-01", "--until", "2026-02-28", "--tz", "UTC", "--format", "html", "--output", str(out))
    return out, repo


def test_the_page_is_self_contained_and_escaped(page: tuple[Path, Repo]) -> None:
    html = page[0].read_text()
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    for remote in ("http://", "https://", "<script", "<link"):
        assert remote not in html.replace("http://www.w3.org/2000/svg", "")
    assert "change &lt;8&gt; &amp; more" in html and "<8>" not in html
    assert "<svg" in html and "<polyline" in html and html.count("<rect") == 28  # every day of February


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs Debian's chromium)")
def test_chromium_renders_the_totals(page: tuple[Path, Repo], tmp_path: Path) -> None:
    out, repo = page
    total = repo.aispend("report", "--since", "2026-02-01", "--until", "2026-02-28", "--tz", "UTC", "--format", "json").stdout
    import json

    cost = json.loads(total)["totals"]["cost_usd"]
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome'}"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"AI spend 2026-02-01 to 2026-02-28: ${cost:,.2f}" in dom.stdout
    png = tmp_path / "report.png"
    shot = subprocess.run([CHROMIUM, *flags, f"--screenshot={png}", "--window-size=1100,1500", out.as_uri()],
                          capture_output=True, text=True, timeout=120, env=env)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one
    if os.environ.get("REPORT_SCREENSHOT_TO"):
        shutil.copy(png, os.environ["REPORT_SCREENSHOT_TO"])
