"""Docs are tested: the CLI reference is generated from the code, and the prose names every option."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from aispend.cli import app
from aispend.cli.reference import render

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == render(), "docs/cli.md is stale: run `python -m aispend.cli.reference > docs/cli.md`"


def _options(path: list[str]) -> set[str]:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return {o for p in cmd.params for o in p.opts if o.startswith("--") and o != "--help"}


def test_usage_doc_names_every_option() -> None:
    text = (ROOT / "docs" / "usage.md").read_text()
    for opt in _options(["usage"]):
        assert opt in text, opt


def test_index_and_pricing_docs_name_every_option() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    for opt in _options(["ingest"]):
        assert opt in index, opt
    pricing = (ROOT / "docs" / "pricing.md").read_text()
    for sub in ("show", "update", "reset"):
        assert f"aispend pricing {sub}" in pricing
        for opt in _options(["pricing", sub]):
            assert opt in pricing, (sub, opt)


def test_readme_commands_exist_and_test_command_matches_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    top = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    named = set(re.findall(r"`aispend (\w+)", readme))
    assert named <= top | {"install", "show", "report"} and {"usage", "ingest", "pricing"} <= named
    test_cmd = "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert test_cmd in readme
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_changelog_has_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and "Keep a Changelog" in text
