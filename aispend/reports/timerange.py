"""Date ranges for reports: ``--since 30d``, ``--since 2026-02-01``, ``--until ...``, ``--tz``.

Both ends are inclusive whole days in the chosen time zone. ``30d`` means
today and the 29 days before. ``AISPEND_NOW`` (an ISO timestamp) pins "now"
for reproducible output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aispend.clock import now
from aispend.errors import AispendError

_REL = re.compile(r"^(\d+)([dwm])$")


def zone(name: str | None) -> tzinfo:
    """The named IANA zone, ``UTC``, or the local zone when ``name`` is None."""
    if not name or name == "local":
        return _local_zone()
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AispendError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin, or UTC)") from None


def _local_zone() -> tzinfo:
    """The machine's zone, DST rules included when they can be found."""
    candidates = []
    env = os.environ.get("TZ")
    if env:
        candidates.append(env.lstrip(":"))
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for c in candidates:
        if c.upper() in ("UTC", "UTC0", "GMT"):
            return timezone.utc
        try:
            return ZoneInfo(c)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    tz = datetime.now().astimezone().tzinfo
    return tz if tz is not None else timezone.utc


def zone_name(tz: tzinfo) -> str:
    key = getattr(tz, "key", None)
    if key:
        return str(key)
    if tz is timezone.utc:
        return "UTC"
    return datetime.now(tz).strftime("%z") or str(tz)


def parse_day(value: str, tz: tzinfo, option: str) -> date:
    """``30d``/``4w``/``3m`` relative to today, or a date ``YYYY-MM-DD``/``YYYYMMDD``."""
    v = value.strip()
    today = now().astimezone(tz).date()
    m = _REL.match(v)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise AispendError(f"{option} {value!r}: the count must be at least 1")
        days = {"d": n, "w": 7 * n, "m": 30 * n}[m.group(2)]
        return today - timedelta(days=days - 1)
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError:
            continue
    raise AispendError(f"{option} {value!r}: expected a date (YYYY-MM-DD) or a span such as 30d, 4w")


@dataclass(frozen=True)
class DayRange:
    since: date | None
    until: date | None
    tz: tzinfo

    def bounds_ms(self) -> tuple[int | None, int | None]:
        """UTC milliseconds: ``[start, end)`` covering the local days."""
        lo = hi = None
        if self.since:
            lo = _local_midnight_ms(self.since, self.tz)
        if self.until:
            hi = _local_midnight_ms(self.until + timedelta(days=1), self.tz)
        return lo, hi


def _local_midnight_ms(d: date, tz: tzinfo) -> int:
    dt = datetime(d.year, d.month, d.day, tzinfo=tz)
    return int(dt.astimezone(timezone.utc).timestamp()) * 1000


def day_range(since: str | None, until: str | None, tz_name: str | None) -> DayRange:
    tz = zone(tz_name)
    s = parse_day(since, tz, "--since") if since else None
    u = parse_day(until, tz, "--until") if until else None
    if s and u and s > u:
        raise AispendError(f"--since {s} is after --until {u}")
    return DayRange(s, u, tz)
