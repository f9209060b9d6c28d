"""Where logs are found: Claude roots, Codex home, subagent layouts, archives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aispend.sources.claude import ClaudeSource, roots
from aispend.sources.codex import CodexSource
from tests.logbuilder import Logs, write

T0 = "2026-02-12T14:00:00.000Z"


def test_default_claude_roots_are_both_homes(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    new = Logs(hermetic / ".config" / "claude", hermetic / ".codex")
    old = Logs(hermetic / ".claude", hermetic / ".codex")
    write(new.claude_file("a"), [Logs.assistant(T0, session="a")])
    write(old.claude_file("b"), [Logs.assistant(T0, session="b")])
    assert roots() == [hermetic / ".config" / "claude", hermetic / ".claude"]
    assert sorted(os.path.basename(p) for p in ClaudeSource().discover()) == ["a.jsonl", "b.jsonl"]


def test_claude_config_dir_is_a_comma_separated_list(hermetic: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(Logs(one, hermetic).claude_file("x", agent="a1"), [Logs.assistant(T0, session="x")])
    write(Logs(two, hermetic).claude_file("y", agent="a2", layout="old"), [Logs.assistant(T0, session="y")])
    (tmp_path / "same").symlink_to(one)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{one}, {two},{tmp_path / 'same'},{tmp_path / 'missing'}")
    assert roots() == [one, two]  # the symlink to `one` is read once; a missing root is ignored
    found = sorted(os.path.relpath(p, tmp_path) for p in ClaudeSource().discover())
    assert found == ["one/projects/-work-repo/x/subagents/agent-a1.jsonl", "two/projects/-work-repo/agent-a2.jsonl"]


def test_default_codex_home(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_HOME")
    logs = Logs(hermetic / ".claude", hermetic / ".codex")
    write(logs.codex_file("2026-02-23T12-00-00-s1"), [Logs.codex_meta(T0, "s1")])
    write(logs.codex_file("2026-02-20T12-00-00-s0", archived=True), [Logs.codex_meta(T0, "s0")])
    write(hermetic / ".codex" / "sessions" / "notes.jsonl", [{"x": 1}])
    assert sorted(os.path.basename(p) for p in CodexSource().discover()) == ["rollout-2026-02-20T12-00-00-s0.jsonl", "rollout-2026-02-23T12-00-00-s1.jsonl"]


def test_no_agent_homes_at_all_is_an_empty_index(hermetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli.test_cli import cli

    code, out, err = cli(capsys, "usage")
    assert (code, err) == (0, "")
    assert out.startswith("No usage found: no Claude Code logs under ~/.claude or ~/.config/claude")
    assert "(or $CODEX_HOME) hold any." in out
