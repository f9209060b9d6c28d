"""The CLI reference (docs/cli.md), generated from the commands themselves.

``python -m aispend.cli.reference > docs/cli.md`` rewrites it; a test fails when the
committed file and the code disagree.
"""

from __future__ import annotations

from typing import Any

import typer


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    commands = getattr(cmd, "commands", None)
    if commands:
        for name in sorted(commands):
            out.extend(_walk(commands[name], path + [name]))
    return out


def render() -> str:
    from aispend.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# Command reference",
        "",
        "Generated from the code by `python -m aispend.cli.reference > docs/cli.md`; "
        "`tests/test_docs.py` fails when this file and the commands disagree.",
        "",
    ]
    for path, cmd in _walk(root, ["aispend"]):
        ctx = cmd.context_class(cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100)
        lines.append(f"## `{' '.join(path)}`")
        lines.append("")
        lines.append("```")
        lines.append(_plain(cmd.get_help(ctx)).rstrip())
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


def _plain(text: str) -> str:
    """No colour codes, and no `<str>`-style type hints (typer versions differ there)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return re.sub(r"^(  [A-Z]+) <\w+>", r"\1", text, flags=re.M)


if __name__ == "__main__":
    import os

    os.environ.setdefault("TERMINAL_WIDTH", "100")
    print(render(), end="")
