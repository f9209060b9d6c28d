"""The time: ``AISPEND_NOW`` (an ISO timestamp) pins it, for tests and reproducible reports."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from aispend.errors import AispendError


def now() -> datetime:
    pinned = os.environ.get("AISPEND_NOW")
    if pinned:
        try:
            dt = datetime.fromisoformat(pinned)
        except ValueError:
            raise AispendError(f"AISPEND_NOW={pinned!r} is not an ISO timestamp") from None
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def now_ms() -> int:
    return int(now().timestamp() * 1000)
