"""``aispend hook NAME``: what the installed hooks run (for hook frameworks and PATH fallbacks)."""

from __future__ import annotations

from typing import Optional

import typer


def hook(
    name: str = typer.Argument(..., help="prepare-commit-msg, post-commit or post-rewrite."),
    args: Optional[list[str]] = typer.Argument(None, help="The hook's own arguments."),
) -> None:
    """Run one of aispend's git hooks by hand (never fails: problems go to hooks.log)."""
    from aispend import hookrun

    hookrun.main([name, *(args or [])])
