"""Agent-log sources. Adding an agent means adding one module here and one line below."""

from __future__ import annotations

from aispend.sources.base import ParseResult, Prompt, Request, SessionInfo, Source

__all__ = ["ParseResult", "Prompt", "Request", "SessionInfo", "Source", "get", "names"]


def _registry() -> dict[str, Source]:
    from aispend.sources.claude import ClaudeSource
    from aispend.sources.codex import CodexSource

    return {"claude": ClaudeSource(), "codex": CodexSource()}


def names() -> list[str]:
    return ["claude", "codex"]


def get(name: str) -> Source:
    return _registry()[name]


def all_sources() -> list[Source]:
    return list(_registry().values())
