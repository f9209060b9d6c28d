"""Read the complete lines appended to a log file, in bounded memory.

A line is complete when it ends with a newline; an unfinished last line is left
for the next run. Lines longer than :data:`MAX_LINE` are skipped (and reported)
without ever being held in memory whole.

:class:`ChunkReader` hands out blocks of whole lines as bounds into the buffer
it read (no copies); a parser walks their line ends, reads each line's type
from its first bytes (:func:`kind_of`) and slices out only the lines it parses.
:class:`LineReader` splits the blocks into single lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator

import msgspec
import orjson

if TYPE_CHECKING:
    from aispend.sources.base import ParseResult

_MAX_RECOVERY_TRIES = 256

CHUNK = 4 << 20
#: Longest line we parse. Real usage lines are at most a few MB (tool output).
MAX_LINE = 32 << 20


#: A block of whole lines: ``(base, buf, start, end)``; the lines are
#: ``buf[start:end]`` (newlines included) and ``base`` is the file offset of ``buf[0]``.
#: Handing out bounds rather than slices spares copying every byte read.
Block = tuple[int, bytes, int, int]


class ChunkReader:
    """Iterate :data:`Block` s over ``[start, end)`` of a file.

    After iteration, :attr:`end_offset` is the offset just past the last
    complete line and :attr:`too_long` lists the offsets of skipped giant lines.
    """

    def __init__(self, fh: BinaryIO, start: int, end: int, max_line: int | None = None) -> None:
        self.fh = fh
        self.start = start
        self.end = end
        self.max_line = max_line or MAX_LINE
        self.end_offset = start
        self.too_long: list[int] = []

    def __iter__(self) -> Iterator[Block]:
        fh = self.fh
        fh.seek(self.start)
        max_line = self.max_line
        pos = self.start  # file offset of the next byte to read
        tail = b""  # an unfinished line carried to the next read
        tail_off = pos
        skipping = False  # inside a line longer than max_line, which is never held whole
        remaining = self.end - self.start
        while remaining > 0:
            data = fh.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            data_off = pos
            pos += len(data)
            begin = 0
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                self.too_long.append(tail_off)
                self.end_offset = data_off + nl + 1
                skipping = False
                begin = nl + 1
            elif tail:
                nl = data.find(b"\n")
                if nl < 0:
                    tail += data
                    if len(tail) > max_line:
                        skipping, tail = True, b""
                    continue
                line = tail + data[: nl + 1]
                if len(line) - 1 > max_line:
                    self.too_long.append(tail_off)
                else:
                    yield tail_off, line, 0, len(line)
                self.end_offset = data_off + nl + 1
                tail = b""
                begin = nl + 1
            last = data.rfind(b"\n", begin)
            if last >= 0:
                if last + 1 - begin > max_line:
                    yield from self._without_long_lines(data_off, data, begin, last + 1)
                else:
                    yield data_off, data, begin, last + 1
                self.end_offset = data_off + last + 1
                begin = last + 1
            if begin < len(data):
                tail, tail_off = data[begin:], data_off + begin
                if len(tail) > max_line:
                    skipping, tail = True, b""

    def _without_long_lines(self, base: int, buf: bytes, start: int, end: int) -> Iterator[Block]:
        """Split a block around lines longer than max_line (rare: only giant lines)."""
        run = start  # start of the pending run of acceptable lines
        i = start
        while i < end:
            nl = buf.find(b"\n", i, end)
            if nl - i > self.max_line:
                if i > run:
                    yield base, buf, run, i
                self.too_long.append(base + i)
                run = nl + 1
            i = nl + 1
        if run < end:
            yield base, buf, run, end


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
        for base, buf, start, end in self.chunks:
            find = buf.find
            while start < end:
                nl = find(b"\n", start, end)
                yield base + start, buf[start:nl]
                start = nl + 1


def lines_as_blocks(lines: Iterable[tuple[int, bytes]]) -> Iterator[Block]:
    """Adapt ``(offset, line)`` pairs to blocks of one line each."""
    if isinstance(lines, LineReader):
        yield from lines.chunks
        return
    for off, line in lines:
        yield off, line + b"\n", 0, len(line) + 1


#: What decoding a line of unusual shape into a typed struct raises: not JSON, not UTF-8, too
#: deeply nested, a field of another type. Such a line takes the general path, which counts it.
UNUSUAL = (msgspec.DecodeError, ValueError, RecursionError)


def utf8(view: memoryview) -> memoryview:
    """``view`` itself, once checked to be UTF-8; raises a ValueError when it is not."""
    str(view, "utf-8")
    return view


_TYPE = b'"type":"'
#: How far after ``"type":"`` a type's closing quote may be (types are short words).
_KIND_SPAN = 80


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
    j = buf.find(b'"', i + 8, min(i + _KIND_SPAN, end))
    if j < 0:
        return None, -1
    return buf[i + 8 : j], j


def typed_lines(
    base: int, block: bytes, result: "ParseResult", pos: int = 0, n: int | None = None
) -> Iterator[tuple[int, int, bytes | None, int]]:
    """``(start, end, kind, kind_end)`` of every line in ``block[pos:n]`` (whole lines) that
    starts like a JSON object, with its type as :func:`kind_of` reads it.

    Other non-blank lines are counted as ``not_object`` (at ``base + start``). One
    generator does both, as this runs for every line of every log.
    """
    find = block.find
    if n is None:
        n = len(block)
    while pos < n:
        end = find(b"\n", pos, n)
        if end < 0:
            end = n
        if end > pos:
            if block[pos] == 0x7B:  # "{"
                i = find(_TYPE, pos, end)
                # kind_of, inlined: this runs for every line.
                if i >= 0 and (j := find(b'"', i + 8, i + _KIND_SPAN if i + _KIND_SPAN < end else end)) >= 0:
                    yield pos, end, block[i + 8 : j], j
                else:
                    yield pos, end, None, -1
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
