"""Crash logs for unexpected errors: what is needed to report the bug, no secrets."""

from __future__ import annotations

import platform
import sys
import time
import traceback
from pathlib import Path

from aispend import __version__
from aispend.paths import data_subdir, private_file


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback (without local variables) to the data dir; return its path."""
    try:
        d = data_subdir("crash")
        path = d / time.strftime("crash-%Y%m%dT%H%M%S.log", time.gmtime())
        lines = [
            f"aispend {__version__}",
            f"python {sys.version.split()[0]} on {platform.platform()}",
            f"command: aispend {' '.join(sys.argv[1:])}",
            "",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ]
        private_file(path)  # 0600: a traceback may name paths and settings
        path.write_text("\n".join(lines), encoding="utf-8")
        return path
    except OSError:
        return None
