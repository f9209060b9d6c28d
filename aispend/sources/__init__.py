"""Agent-log sources. Adding an agent means adding one module here and one line below."""

from __future__ import annotations

from aispend.sources.base import ParseResult, Prompt, Request, SessionInfo, Source

__all__ = ["BRANCH_AT_SESSION_START", "ParseResult", "Prompt", "Request", "SessionInfo", "Source", "get", "names"]

#: Agents that log the git branch once, when a session starts (Codex's ``session_meta``), not
#: with each request: their requests carry the session's first branch, so attribution compares
#: branch creations with the session's start, not the request's time (docs/attribution.md).
BRANCH_AT_SESSION_START = ("codex",)


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
