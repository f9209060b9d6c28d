"""Builders for realistic synthetic Claude Code and Codex log lines, written into a temp HOME.

Line shapes follow the real logs in ../shared/fixtures (compact JSON, the same
key order, the same fields), covering every counting rule.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

_ids = itertools.count(1)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode_cwd(cwd: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


class Logs:
    def __init__(self, claude_root: Path, codex_home: Path) -> None:
        self.claude_root = claude_root
        self.codex_home = codex_home

    # -- Claude Code -------------------------------------------------------
    def claude_file(self, session: str, cwd: str = "/work/repo", agent: str | None = None, layout: str = "new") -> Path:
        d = self.claude_root / "projects" / encode_cwd(cwd)
        if agent is None:
            return d / f"{session}.jsonl"
        if layout == "new":
            return d / session / "subagents" / f"agent-{agent}.jsonl"
        return d / f"agent-{agent}.jsonl"

    @staticmethod
    def assistant(
        ts: str,
        *,
        session: str = "sess-1",
        msg_id: str | None = None,
        req_id: str | None = "auto",
        model: str = "claude-sonnet-4-5-20250929",
        inp: Any = 10,
        out: Any = 5,
        cw: Any = 0,
        cw1h: Any = None,
        cr: Any = 0,
        cwd: str = "/work/repo",
        branch: str = "main",
        speed: str | None = None,
        cost_usd: Any = None,
        sidechain: bool = False,
        agent: str | None = None,
        text: str = "done",
    ) -> dict[str, Any]:
        n = next(_ids)
        msg_id = msg_id or f"msg_{n:024d}"
        usage: dict[str, Any] = {"input_tokens": inp, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr}
        if cw1h is not None:
            usage["cache_creation"] = {"ephemeral_5m_input_tokens": cw - cw1h, "ephemeral_1h_input_tokens": cw1h}
        usage["output_tokens"] = out
        usage["service_tier"] = "standard"
        if speed:
            usage["speed"] = speed
        line: dict[str, Any] = {
            "parentUuid": f"p-{n}",
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": cwd,
            "sessionId": session,
            "version": "2.1.39",
            "gitBranch": branch,
        }
        if agent:
            line["agentId"] = agent
        line["message"] = {
            "model": model,
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        if req_id == "auto":
            req_id = f"req_{msg_id[4:]}"
        if req_id is not None:
            line["requestId"] = req_id
        line["type"] = "assistant"
        line["uuid"] = f"u-{n}"
        line["timestamp"] = ts
        if cost_usd is not None:
            line["costUSD"] = cost_usd
        return line

    @staticmethod
    def user(ts: str, text: str, *, session: str = "sess-1", cwd: str = "/work/repo", uuid: str | None = None, **extra: Any) -> dict[str, Any]:
        n = next(_ids)
        line = {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": cwd,
            "sessionId": session,
            "version": "2.1.39",
            "gitBranch": "main",
            "type": "user",
            "message": {"role": "user", "content": text},
            "uuid": uuid or f"user-{n}",
            "timestamp": ts,
        }
        line.update(extra)
        return line

    @staticmethod
    def tool_result(ts: str, *, session: str = "sess-1", output: str = "x" * 200) -> dict[str, Any]:
        n = next(_ids)
        return {
            "parentUuid": f"p-{n}",
            "isSidechain": False,
            "type": "user",
            "sessionId": session,
            "message": {"role": "user", "content": [{"tool_use_id": f"toolu_{n}", "type": "tool_result", "content": output}]},
            "uuid": f"tr-{n}",
            "timestamp": ts,
            "toolUseResult": {"stdout": output},
        }

    @staticmethod
    def progress(ts: str, nested: dict[str, Any], *, session: str = "sess-1") -> dict[str, Any]:
        """A progress line embedding a subagent's assistant message (never counted)."""
        return {
            "parentUuid": "x",
            "isSidechain": False,
            "sessionId": session,
            "type": "progress",
            "data": {"message": nested, "type": "agent_progress"},
            "toolUseID": "toolu_1",
            "parentToolUseID": "toolu_1",
            "uuid": f"prog-{next(_ids)}",
            "timestamp": ts,
        }

    # -- Codex -------------------------------------------------------------
    def codex_file(self, name: str, day: str = "2026/02/23", archived: bool = False) -> Path:
        if archived:
            return self.codex_home / "archived_sessions" / f"rollout-{name}.jsonl"
        return self.codex_home / "sessions" / day / f"rollout-{name}.jsonl"

    @staticmethod
    def codex_meta(ts: str, sid: str, *, cwd: str = "/work/repo", branch: str = "main", forked_from: str | None = None, source: Any = "cli") -> dict[str, Any]:
        payload: dict[str, Any] = {"id": sid}
        if forked_from:
            payload["forked_from_id"] = forked_from
        payload.update(
            {
                "timestamp": ts,
                "cwd": cwd,
                "originator": "codex_cli_rs",
                "cli_version": "0.125.0",
                "source": source,
                "model_provider": "openai",
                "base_instructions": {"text": "You are Codex." * 20},
                "git": {"commit_hash": "c" * 40, "branch": branch, "repository_url": "git@example.com:x/y.git"},
            }
        )
        return {"timestamp": ts, "type": "session_meta", "payload": payload}

    @staticmethod
    def codex_turn(ts: str, model: str = "gpt-5.3-codex", cwd: str = "/work/repo") -> dict[str, Any]:
        return {"timestamp": ts, "type": "turn_context", "payload": {"turn_id": f"t{next(_ids)}", "cwd": cwd, "model": model, "effort": "medium", "summary": "auto"}}

    @staticmethod
    def codex_tokens(ts: str, total: tuple[int, int, int, int] | None, last: tuple[int, int, int, int] | None = None) -> dict[str, Any]:
        """token_count: tuples are (input incl. cached, cached, output incl. reasoning, reasoning)."""
        if total is None:
            info = None
        else:
            last = last or total

            def tu(t: tuple[int, int, int, int]) -> dict[str, int]:
                return {"input_tokens": t[0], "cached_input_tokens": t[1], "output_tokens": t[2], "reasoning_output_tokens": t[3], "total_tokens": t[0] + t[2]}

            info = {"total_token_usage": tu(total), "last_token_usage": tu(last), "model_context_window": 258400}
        return {"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": info, "rate_limits": None}}

    @staticmethod
    def codex_user(ts: str, text: str) -> dict[str, Any]:
        return {"timestamp": ts, "type": "event_msg", "payload": {"type": "user_message", "message": text, "images": []}}

    @staticmethod
    def codex_item(ts: str, size: int = 300) -> dict[str, Any]:
        return {"timestamp": ts, "type": "response_item", "payload": {"type": "function_call_output", "call_id": "c1", "output": "y" * size}}


def write(path: Path, lines: list[Any], mode: str = "a", newline: bool = True) -> Path:
    """Append lines (dicts become compact JSON; str/bytes are written raw)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode + "b") as fh:
        for i, line in enumerate(lines):
            if isinstance(line, bytes):
                data = line
            elif isinstance(line, str):
                data = line.encode()
            else:
                data = _dump(line).encode()
            last = i == len(lines) - 1
            fh.write(data + (b"\n" if (newline or not last) else b""))
    return path
