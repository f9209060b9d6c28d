"""The time: ``AISPEND_NOW`` (an ISO timestamp) pins it, for tests and reproducible reports."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from aispend.errors import AispendError


def now() -> datetime:
    pinned = os.environ.get("AISPEND_NOW")
    if pinned:
        return parse_pin(pinned)
    return datetime.now(timezone.utc)


def parse_pin(value: str) -> datetime:
    """An ``AISPEND_NOW`` value as a time (UTC when it names no zone); the hooks record it too."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise AispendError(f"AISPEND_NOW={value!r} is not an ISO timestamp") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def now_ms() -> int:
    return int(now().timestamp() * 1000)
