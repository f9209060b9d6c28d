"""Read the complete lines appended to a log file, in bounded memory.

A line is complete when it ends with a newline; an unfinished last line is left
for the next run. Lines longer than :data:`MAX_LINE` are skipped (and reported)
without ever being held in memory whole.

:class:`ChunkReader` hands out blocks of whole lines, so that a parser can find
the few lines it needs with ``bytes.find`` instead of visiting every line in
Python; :class:`LineReader` splits those blocks into single lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, Iterator

import orjson

if TYPE_CHECKING:
    from aispend.sources.base import ParseResult

_MAX_RECOVERY_TRIES = 256

CHUNK = 4 << 20
#: Longest line we parse. Real usage lines are at most a few MB (tool output).
MAX_LINE = 32 << 20


class ChunkReader:
    """Iterate ``(offset, block)`` over ``[start, end)`` of a file.

    Each block is a run of complete lines, newline included. After iteration,
    :attr:`end_offset` is the offset just past the last complete line and
    :attr:`too_long` lists the offsets of skipped giant lines.
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
        max_line = self.max_line
        pos = self.start  # file offset of buf[0]
        buf = b""
        skipping = False  # inside a line longer than max_line
        skip_start = 0
        remaining = self.end - self.start
        while remaining > 0:
            data = fh.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    pos += len(data)
                    continue
                self.too_long.append(skip_start)
                pos += nl + 1
                self.end_offset = pos
                data = data[nl + 1 :]
                skipping = False
            buf = buf + data if buf else data
            last = buf.rfind(b"\n")
            if last >= 0:
                block = buf[: last + 1] if last + 1 < len(buf) else buf
                if len(block) > max_line:
                    yield from self._without_long_lines(pos, block)
                else:
                    yield pos, block
                pos += last + 1
                self.end_offset = pos
                buf = buf[last + 1 :]
            if len(buf) > max_line:
                skipping = True
                skip_start = pos
                pos += len(buf)
                buf = b""

    def _without_long_lines(self, pos: int, block: bytes) -> Iterator[tuple[int, bytes]]:
        """Split a block around lines longer than max_line (rare: only giant lines)."""
        start = 0  # start of the pending run of acceptable lines
        i = 0
        n = len(block)
        while i < n:
            nl = block.find(b"\n", i)
            if nl - i > self.max_line:
                if i > start:
                    yield pos + start, block[start:i]
                self.too_long.append(pos + i)
                start = nl + 1
            i = nl + 1
        if start < n:
            yield pos + start, block[start:]


class LineReader:
    """Iterate ``(offset, line)`` (newline stripped) over ``[start, end)`` of a file."""

    def __init__(self, fh: BinaryIO, start: int, end: int, max_line: int | None = None) -> None:
        self.chunks = ChunkReader(fh, start, end, max_line)

    @property
    def end_offset(self) -> int:
        return self.chunks.end_offset

    @property
    def too_long(self) -> list[int]:
        return self.chunks.too_long

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for pos, block in self.chunks:
            start = 0
            find = block.find
            while True:
                nl = find(b"\n", start)
                if nl < 0:
                    break
                yield pos + start, block[start:nl]
                start = nl + 1


def lines_as_blocks(lines: Iterator[tuple[int, bytes]] | object) -> Iterator[tuple[int, bytes]]:
    """Adapt ``(offset, line)`` pairs to ``(offset, block)`` pairs of one line each."""
    if isinstance(lines, LineReader):
        yield from lines.chunks
        return
    for off, line in lines:  # type: ignore[attr-defined]
        yield off, line + b"\n"


_TYPE = b'"type":"'


def kind_of(buf: bytes, start: int = 0, end: int | None = None) -> tuple[bytes | None, int]:
    """The value of the first ``"type":"...`` in ``buf[start:end]``, and where it ends.

    Agents write compact JSON whose leading keys are scalars, so in their logs
    this is the line's own type (Codex: ``event_msg``; Claude: ``progress``,
    ``user``, or ``message`` for an assistant line, whose message comes first).
    A raw ``"type":"`` cannot occur inside a string (quotes there are escaped).
    ``None`` when there is none: the caller then looks at the whole line.
    Working on bounds of a block, not on a copy of the line, keeps skipped
    lines free of cost.
    """
    if end is None:
        end = len(buf)
    i = buf.find(_TYPE, start, end)
    if i < 0:
        return None, -1
    j = buf.find(b'"', i + 8, min(i + 80, end))
    if j < 0:
        return None, -1
    return buf[i + 8 : j], j


def object_lines(base: int, block: bytes, result: "ParseResult") -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every line of a block of whole lines that starts like a JSON object.

    Other non-blank lines are counted as ``not_object`` (at ``base + start``).
    """
    find = block.find
    pos = 0
    n = len(block)
    while pos < n:
        end = find(b"\n", pos)
        if end < 0:
            end = n
        if end > pos:
            if block[pos] == 0x7B:  # "{"
                yield pos, end
            elif block[pos:end].strip():
                result.problem(base + pos, "not_object")
        pos = end + 1


def cut_short(block: bytes, start: int, end: int) -> bool:
    """A line that starts like an object but does not end like one was cut short."""
    return block[end - 1] != 0x7D and block[start:end].rstrip()[-1:] != b"}"


def load_line(line: bytes, offset: int, result: "ParseResult") -> Iterator[tuple[int, dict[str, Any]]]:
    """Parse one JSON-object line; yield ``(offset, object)`` for what can be used.

    A line that is not valid JSON is counted as ``bad_json``. When a writer died
    mid-line and the next run appended to the same line, the glued line is bad
    but its complete tail is a good line: it is recovered from the first ``{"``
    from which the rest of the line parses as one object (a suffix that starts
    inside the broken part fails: its brackets do not balance to the end).
    """
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        result.problem(offset, "bad_json")
        d = None
        pos = 0
        for _ in range(_MAX_RECOVERY_TRIES):
            pos = line.find(b'{"', pos + 1)
            if pos < 0:
                break
            try:
                tail = orjson.loads(line[pos:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(tail, dict):
                result.count("recovered_lines")
                yield offset + pos, tail
            break
        return
    if isinstance(d, dict):
        yield offset, d
    else:
        result.problem(offset, "not_object")
