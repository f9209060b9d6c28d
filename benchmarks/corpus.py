"""Generate a realistic synthetic Claude Code + Codex history of a given size.

    python benchmarks/corpus.py OUT_DIR --mb 1000 [--codex-share 0.15] [--seed 1]

Writes OUT_DIR/claude/projects/... and OUT_DIR/codex/sessions/...; point CLAUDE_CONFIG_DIR and
CODEX_HOME there. Line shapes follow real logs: assistant lines of 1-20 KB (tool use, text),
user lines carrying tool output, progress lines with nested subagent usage, streaming duplicates
(2-4 copies of one response, the last with the final output count), resumed sessions repeating
earlier responses in a new file, subagent files, Codex rollouts with repeated token snapshots,
and a few broken lines.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODELS = ["claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
_WORDS = [w for w in "the of to and a in is it you that he was for on are with as I his they be at one have this from or had by word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find any new work part take get place made live where after back little only round man year came show every good me give our under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal point mother world near build self earth father".split()]


def _text(rnd: random.Random, n: int) -> str:
    out = []
    size = 0
    while size < n:
        w = rnd.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    s = " ".join(out)
    # real content is full of quotes, newlines and code
    return s.replace(" said ", ' said "x" ').replace(" line ", " line\n    ")


def _dump(o: object) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class ClaudeWriter:
    def __init__(self, root: Path, rnd: random.Random) -> None:
        self.root = root
        self.rnd = rnd

    def session(self, project: str, start: datetime, target_bytes: int, resumed_from: list[str] | None = None) -> tuple[int, list[str]]:
        rnd = self.rnd
        sid = str(uuid.UUID(int=rnd.getrandbits(128)))
        cwd = f"/home/dev/src/{project}"
        d = self.root / "projects" / cwd.replace("/", "-")
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{sid}.jsonl"
        written = 0
        t = start
        copies: list[str] = []
        with open(path, "w") as fh:
            if resumed_from:
                for line in resumed_from:
                    fh.write(line + "\n")
                    written += len(line) + 1
            base = {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": sid, "version": "2.1.39", "gitBranch": rnd.choice(["main", "feature-x", "fix-bug"])}
            prompt = dict(base, type="user", message={"role": "user", "content": _text(rnd, rnd.randint(50, 400))}, uuid=str(uuid.UUID(int=rnd.getrandbits(128))), timestamp=_ts(t))
            line = _dump(prompt)
            fh.write(line + "\n")
            written += len(line) + 1
            model = rnd.choice(MODELS)
            while written < target_bytes:
                t += timedelta(seconds=rnd.randint(2, 40))
                mid = "msg_01" + "".join(rnd.choices(string.ascii_letters + string.digits, k=22))
                rid = "req_011" + "".join(rnd.choices(string.ascii_letters + string.digits, k=21))
                usage = {"input_tokens": rnd.randint(1, 50), "cache_creation_input_tokens": rnd.randint(0, 20000), "cache_read_input_tokens": rnd.randint(1000, 180000), "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 0, "service_tier": "standard", "inference_geo": "global"}
                usage["cache_creation"]["ephemeral_5m_input_tokens"] = usage["cache_creation_input_tokens"]
                final_out = rnd.randint(20, 4000)
                ncopies = rnd.choice([1, 2, 2, 3, 4])
                for c in range(ncopies):
                    u = dict(usage, output_tokens=final_out if c == ncopies - 1 else rnd.choice([1, 4, 8, 10]))
                    kind = rnd.random()
                    if kind < 0.5:
                        content = [{"type": "tool_use", "id": "toolu_" + mid[6:], "name": "Edit", "input": {"file_path": f"{cwd}/src/mod{rnd.randint(1, 99)}.py", "old_string": _text(rnd, rnd.randint(200, 6000)), "new_string": _text(rnd, rnd.randint(200, 8000))}}]
                    else:
                        content = [{"type": "text", "text": _text(rnd, rnd.randint(300, 12000))}]
                    msg = {"model": model, "id": mid, "type": "message", "role": "assistant", "content": content, "stop_reason": None, "stop_sequence": None, "usage": u}
                    line = _dump(dict(base, parentUuid=str(uuid.UUID(int=rnd.getrandbits(128))), message=msg, requestId=rid, type="assistant", uuid=str(uuid.UUID(int=rnd.getrandbits(128))), timestamp=_ts(t + timedelta(milliseconds=300 * c))))
                    fh.write(line + "\n")
                    written += len(line) + 1
                    if rnd.random() < 0.05:
                        copies.append(line)
                # the tool result that follows
                out = _text(rnd, rnd.randint(100, 15000))
                tr = dict(base, type="user", message={"role": "user", "content": [{"tool_use_id": "toolu_" + mid[6:], "type": "tool_result", "content": out}]}, uuid=str(uuid.UUID(int=rnd.getrandbits(128))), timestamp=_ts(t + timedelta(seconds=1)), toolUseResult={"stdout": out[:2000], "stderr": "", "interrupted": False})
                line = _dump(tr)
                fh.write(line + "\n")
                written += len(line) + 1
                if rnd.random() < 0.15:  # progress lines embedding a subagent message
                    nested = {"model": "claude-haiku-4-5-20251001", "id": "msg_nested" + mid[10:], "type": "message", "role": "assistant", "content": [{"type": "text", "text": _text(rnd, 500)}], "usage": {"input_tokens": 5, "output_tokens": 50, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 0}}
                    line = _dump(dict(base, type="progress", data={"message": {"type": "assistant", "message": nested}, "type": "agent_progress"}, toolUseID="toolu_1", parentToolUseID="toolu_1", uuid=str(uuid.UUID(int=rnd.getrandbits(128))), timestamp=_ts(t)))
                    fh.write(line + "\n")
                    written += len(line) + 1
                if rnd.random() < 0.001:
                    fh.write('{"type":"assistant","message":{"usage":{"input_tok\n')
                    written += 50
            # a subagent file
            if rnd.random() < 0.3:
                sub = d / sid / "subagents" / f"agent-a{rnd.getrandbits(24):06x}.jsonl"
                sub.parent.mkdir(parents=True, exist_ok=True)
                with open(sub, "w") as sf:
                    for _ in range(rnd.randint(3, 30)):
                        t += timedelta(seconds=3)
                        msg = {"model": "claude-haiku-4-5-20251001", "id": "msg_01" + "".join(rnd.choices(string.ascii_letters, k=22)), "type": "message", "role": "assistant", "content": [{"type": "text", "text": _text(rnd, rnd.randint(200, 3000))}], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "cache_creation_input_tokens": 500, "cache_read_input_tokens": 9000, "output_tokens": 300}}
                        line = _dump(dict(base, isSidechain=True, agentId="a1", message=msg, requestId="req_" + msg["id"][4:], type="assistant", uuid=str(uuid.UUID(int=rnd.getrandbits(128))), timestamp=_ts(t)))
                        sf.write(line + "\n")
                        written += len(line) + 1
        return written, copies


def codex_session(root: Path, rnd: random.Random, start: datetime, target_bytes: int) -> int:
    sid = str(uuid.UUID(int=rnd.getrandbits(128)))
    local = start + timedelta(hours=1)
    d = root / "sessions" / local.strftime("%Y/%m/%d")
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"rollout-{local.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl"
    t = start
    written = 0
    total = [0, 0, 0, 0]
    with open(path, "w") as fh:
        def w(obj: object) -> None:
            nonlocal written
            line = _dump(obj)
            fh.write(line + "\n")
            written += len(line) + 1

        w({"timestamp": _ts(t), "type": "session_meta", "payload": {"id": sid, "timestamp": _ts(t), "cwd": "/home/dev/src/svc", "originator": "codex_cli_rs", "cli_version": "0.104.0", "source": "cli", "model_provider": "openai", "base_instructions": {"text": _text(rnd, 12000)}, "git": {"commit_hash": "a" * 40, "branch": "main", "repository_url": "git@example.com:a/b.git"}}})
        while written < target_bytes:
            t += timedelta(seconds=rnd.randint(5, 60))
            w({"timestamp": _ts(t), "type": "turn_context", "payload": {"turn_id": str(uuid.UUID(int=rnd.getrandbits(128))), "cwd": "/home/dev/src/svc", "model": "gpt-5.3-codex", "effort": "medium", "summary": "auto", "user_instructions": _text(rnd, 2000)}})
            w({"timestamp": _ts(t), "type": "event_msg", "payload": {"type": "user_message", "message": _text(rnd, 300), "images": []}})
            for _ in range(rnd.randint(2, 8)):
                w({"timestamp": _ts(t), "type": "response_item", "payload": {"type": "function_call_output", "call_id": "call_1", "output": _text(rnd, rnd.randint(500, 12000))}})
                last = [rnd.randint(5000, 90000), 0, rnd.randint(50, 3000), 0]
                last[1] = rnd.randint(0, last[0])
                last[3] = rnd.randint(0, last[2])
                total = [a + b for a, b in zip(total, last)]
                tu = lambda v: {"input_tokens": v[0], "cached_input_tokens": v[1], "output_tokens": v[2], "reasoning_output_tokens": v[3], "total_tokens": v[0] + v[2]}  # noqa: E731
                ev = {"timestamp": _ts(t), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": tu(total), "last_token_usage": tu(last), "model_context_window": 258400}, "rate_limits": None}}
                w(ev)
                w(ev)  # 0.104 writes each snapshot twice
    return written


def given_or_generated(corpus: Path | None, tmp: Path, mb: float) -> Path:
    """The benchmarks' corpus: the folder given (holding claude/ and codex/), else ``mb`` MB generated in ``tmp``."""
    if corpus is not None:
        return corpus
    generate(tmp / "corpus", mb)
    return tmp / "corpus"


def generate(out: Path, mb: float, codex_share: float = 0.15, seed: int = 1) -> None:
    rnd = random.Random(seed)
    target = int(mb * 1_000_000)
    cw = ClaudeWriter(out / "claude", rnd)
    t = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    codex_target = int(target * codex_share)
    claude_target = target - codex_target
    projects = [f"proj{i}" for i in range(12)]
    pending_resume: list[str] = []
    written = 0
    while written < claude_target:
        size = min(rnd.randint(300_000, 6_000_000), max(50_000, claude_target - written))
        n, copies = cw.session(rnd.choice(projects), t, size, resumed_from=pending_resume[:200] if rnd.random() < 0.1 else None)
        pending_resume = copies
        written += n
        t += timedelta(hours=rnd.randint(1, 20))
    t = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    written = 0
    while written < codex_target:
        written += codex_session(out / "codex", rnd, t, min(rnd.randint(200_000, 3_000_000), max(50_000, codex_target - written)))
        t += timedelta(hours=rnd.randint(2, 30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--codex-share", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    generate(a.out, a.mb, a.codex_share, a.seed)
    size = sum(f.stat().st_size for f in a.out.rglob("*.jsonl"))
    print(f"wrote {size / 1e6:.1f} MB in {sum(1 for _ in a.out.rglob('*.jsonl'))} files under {a.out}")


if __name__ == "__main__":
    main()
