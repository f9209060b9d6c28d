"""Read the complete lines appended to a log file, in bounded memory.

A line is complete when it ends with a newline; an unfinished last line is left
for the next run. Lines longer than :data:`MAX_LINE` are skipped (and reported)
without ever being held in memory whole.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

CHUNK = 1 << 20
#: Longest line we parse. Real usage lines are at most a few MB (tool output).
MAX_LINE = 32 << 20


class LineReader:
    """Iterate ``(offset, line)`` over ``[start, end)`` of a file.

    After iteration, :attr:`end_offset` is the offset just past the last
    complete line, and :attr:`too_long` lists the offsets of skipped giant lines.
    """

    def __init__(self, fh: BinaryIO, start: int, end: int, max_line: int | None = None) -> None:
        self.fh = fh
        self.start = start
        self.end = end
        self.max_line = max_line or MAX_LINE
        self.end_offset = start
        self.too_long: list[int] = []

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        fh = self.fh
        fh.seek(self.start)
        pos = self.start  # file offset of buf[0]
        buf = bytearray()
        skipping = False  # inside a line longer than max_line
        skip_start = 0
        remaining = self.end - self.start
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            if skipping:
                nl = chunk.find(b"\n")
                if nl < 0:
                    pos += len(chunk)
                    continue
                self.too_long.append(skip_start)
                pos += nl + 1
                self.end_offset = pos
                chunk = chunk[nl + 1 :]
                skipping = False
            buf += chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                if nl - start <= self.max_line:
                    yield pos + start, bytes(buf[start:nl])
                else:
                    self.too_long.append(pos + start)
                start = nl + 1
            if start:
                pos += start
                self.end_offset = pos
                del buf[:start]
            if len(buf) > self.max_line:
                skipping = True
                skip_start = pos
                pos += len(buf)
                buf = bytearray()
