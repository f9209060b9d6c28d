"""``.aispend.toml``: the repository's budgets, teams and alert thresholds (docs/budgets.md).

Every problem is reported with the line and the field it is on, so that a lead who
edits the file by hand knows what to fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aispend.errors import AispendError

FILE = ".aispend.toml"


class PolicyError(AispendError):
    """``.aispend.toml`` is not valid; the message names the line and the field."""


@dataclass(frozen=True)
class Budget:
    scope: str  # repo | team | author
    name: str
    monthly_usd: float
    soft: float  # warn at this share of monthly_usd
    hard: float  # the louder warning at this share (never a blocked commit)
    members: tuple[str, ...] = ()  # a team's emails (lower case)


@dataclass(frozen=True)
class Alerts:
    spike_factor: float = 2.0
    runaway_session_hours: float = 6.0
    runaway_session_usd: float = 50.0
    model_switch_share: float = 0.3
    context_bloat_factor: float = 2.0
    low_cache_hit_gap: float = 0.25


@dataclass(frozen=True)
class Policy:
    budgets: list[Budget] = field(default_factory=list)
    alerts: Alerts = Alerts()
    allowed_signers: str | None = None
    path: Path | None = None


def load(worktree: Path) -> Policy:
    """The policy of the repository at ``worktree``; the defaults when it has no ``.aispend.toml``."""
    path = worktree / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Policy()
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(f"{path}: cannot read it ({e})") from None
    return parse(text, path)


def parse(text: str, path: Path) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{path}: {e}") from None
    where = _Locator(text, path)
    known = {"budget", "teams", "authors", "alerts", "trust"}
    for key in data:
        if key not in known:
            raise where.error(key, None, f"unknown section [{key}] (expected one of: {', '.join(sorted(known))})")
    budgets: list[Budget] = []
    if "budget" in data:
        budgets.append(_budget(where, "budget", "repo", "repository", _table(where, "budget", data["budget"])))
    for name, t in _table(where, "teams", data.get("teams", {})).items():
        t = _table(where, f"teams.{name}", t)
        members = t.get("members")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and "@" in m for m in members):
            raise where.error(f"teams.{name}", "members", "members must be a list of email addresses")
        b = _budget(where, f"teams.{name}", "team", name, {k: v for k, v in t.items() if k != "members"})
        budgets.append(Budget(b.scope, b.name, b.monthly_usd, b.soft, b.hard, tuple(m.lower() for m in members)))
    for email, t in _table(where, "authors", data.get("authors", {})).items():
        if "@" not in email:
            raise where.error(f"authors.{email}", None, f"{email!r} is not an email address")
        budgets.append(_budget(where, f'authors."{email}"', "author", email.lower(), _table(where, f"authors.{email}", t)))
    alerts = Alerts()
    if "alerts" in data:
        a = _table(where, "alerts", data["alerts"])
        values = {}
        for key, value in a.items():
            if key not in Alerts.__dataclass_fields__:
                raise where.error("alerts", key, f"unknown field (expected one of: {', '.join(Alerts.__dataclass_fields__)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise where.error("alerts", key, "must be a positive number")
            values[key] = float(value)
        alerts = Alerts(**values)
    signers = None
    if "trust" in data:
        t = _table(where, "trust", data["trust"])
        for key, value in t.items():
            if key != "allowed_signers":
                raise where.error("trust", key, "unknown field (expected allowed_signers)")
            if not isinstance(value, str) or not value:
                raise where.error("trust", key, "must be a path (relative to the repository)")
            signers = value
    return Policy(budgets, alerts, signers, path)


def _table(where: "_Locator", name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(name, None, "must be a table")
    return value


def _budget(where: "_Locator", section: str, scope: str, name: str, t: dict[str, Any]) -> Budget:
    for key in t:
        if key not in ("monthly_usd", "soft", "hard"):
            raise where.error(section, key, "unknown field (expected monthly_usd, soft, hard)")
    monthly = t.get("monthly_usd")
    if isinstance(monthly, bool) or not isinstance(monthly, (int, float)) or monthly <= 0:
        raise where.error(section, "monthly_usd", "monthly_usd must be a positive number of dollars")
    soft, hard = t.get("soft", 0.8), t.get("hard", 1.0)
    for key, v in (("soft", soft), ("hard", hard)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 10:
            raise where.error(section, key, f"{key} must be a share of monthly_usd, such as 0.8")
    if soft > hard:
        raise where.error(section, "soft", "soft must not be above hard")
    return Budget(scope, name, float(monthly), float(soft), float(hard))


class _Locator:
    """Finds the line of a section or field, for error messages."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def error(self, section: str, key: str | None, message: str) -> PolicyError:
        line = self._line(section, key)
        field_name = f"{section}.{key}" if key else section
        at = f"line {line}: " if line else ""
        return PolicyError(f"{self.path.name}: {at}{field_name}: {message}")

    def _line(self, section: str, key: str | None) -> int | None:
        want = "[" + section.replace('"', "").replace(" ", "") + "]"
        start = None
        for i, line in enumerate(self.lines, 1):
            if line.split("#")[0].replace('"', "").replace(" ", "").strip() == want:
                start = i
                break
        if start is None:
            return None
        if key is None:
            return start
        for i in range(start, len(self.lines)):
            text = self.lines[i].strip()
            if text.startswith("["):
                break
            if text.split("=")[0].strip().strip('"') == key:
                return i + 1
        return start
