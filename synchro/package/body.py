"""The lines of a package's body, and lines made once for several packages.

A body is one zlib stream of lines of grouped changes (``records.py``). ``BodyEncoder``
batches changes into those lines; the writer compresses them. A **segment** is a run of
one origin's changes already made into lines, kept in a spill file (``SegmentStore``:
memory stays flat), which any number of packages can take as they are (``splice``).

Why (issue 15): the Siège sends each establishment every change except its own. Reading the
log and encoding the same rows again for each of n establishments made its work grow as
n². The changes are now read and encoded once per publication (``SegmentBuilder``), one
segment per run of an origin's changes; a site's package is the others' segments,
compressed in one stream (compressing each segment alone would lose what rows of different
sites have in common: measured, twice the bytes on the wire).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synchro.errors import Worded

from . import stream
from .manifest import TableSchema
from .records import RecordCodec

BATCH_RECORDS = 512  # changes per line, at most
BATCH_BYTES = 256 * 1024  # rough size of a line, at most


class TooBig(Worded, ValueError):
    """A single change longer than a line may be (the reader would refuse it)."""

    def __init__(self, table: str, size: int) -> None:
        said = {"table": table, "size": size, "most": stream.MAX_LINE}
        super().__init__(say=("engine.travel.too_big", said))


@dataclass(frozen=True)
class Segment:
    """Changes of one origin as lines, kept at ``offset`` in a store."""

    origin: str
    offset: int
    size: int  # bytes of its lines
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: int = 0


class SegmentStore:
    """A spill file of segments: appended once, read by every package that splices them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "w+b")  # noqa: SIM115 - closed in close()
        self._end = 0

    def append(self, data: bytes) -> int:
        """Write ``data`` at the end; returns its offset."""
        offset = self._end
        self._fh.seek(offset)
        self._fh.write(data)
        self._end += len(data)
        return offset

    def read(self, segment: Segment) -> bytes:
        self._fh.seek(segment.offset)
        return self._fh.read(segment.size)

    def close(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SegmentStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class BodyEncoder:
    """Changes to lines, handed to ``line`` as they are made (the writer compresses them).

    ``write`` and ``write_json`` raise ``Unrepresentable`` for a value that cannot travel
    (nothing is queued then), ``TooBig`` for a change longer than a line may be, ValueError
    for a call that breaks the schema.
    """

    def __init__(self, tables: Sequence[TableSchema], line: Callable[[bytes], None]) -> None:
        self.codec = RecordCodec(tables)
        self.counts = {t.name: {"U": 0, "D": 0} for t in tables}
        self.rows = 0
        self._line = line

    def write(self, table: str, op: str, values: Sequence[Any], origin: str, pos: int) -> None:
        codec = self.codec
        change = codec.encode(table, op, values, origin, pos)  # may raise Unrepresentable
        if change.size >= BATCH_BYTES:  # a big change travels on a line of its own
            self.flush()
            codec.queue(change)
            line = codec.take_line()
            if len(line) > stream.MAX_LINE:
                raise TooBig(table, len(line))
            self._line(line)
        else:
            codec.queue(change)
            if codec.pending >= BATCH_RECORDS or codec.pending_size >= BATCH_BYTES:
                self.flush()
        self.counts[table][op] += 1
        self.rows += 1

    def write_json(self, table: str, op: str, text: str, origin: str, pos: int) -> None:
        codec = self.codec
        if len(text) >= BATCH_BYTES:
            self.flush()  # a big row on a line of its own, as in ``write``
        codec.queue_json(table, op, text, origin, pos)
        if codec.pending >= BATCH_RECORDS or codec.pending_size >= BATCH_BYTES:
            self.flush()
        self.counts[table][op] += 1
        self.rows += 1

    def flush(self) -> None:
        """The queued changes as one line."""
        if self.codec.pending:
            self._line(self.codec.take_line())

    def splice(self, segment: Segment, data: bytes) -> None:
        """A segment's lines here, after what was written so far."""
        self.flush()
        self._line(data)
        for table, ops in segment.counts.items():
            for op, n in ops.items():
                self.counts[table][op] += n
        self.rows += segment.rows

    def take_counts(self) -> tuple[dict[str, dict[str, int]], int]:
        """The counts so far (the tables with changes only), and start again from zero."""
        counts = {t: dict(ops) for t, ops in self.counts.items() if any(ops.values())}
        rows = self.rows
        self.counts = {t: {"U": 0, "D": 0} for t in self.counts}
        self.rows = 0
        return counts, rows


class SegmentBuilder:
    """Cuts changes into segments, one per run of the same origin, into a store.

    A new table or op must also start a segment: call ``cut()`` then (a segment is spliced
    whole, and a package's tables come in their order)."""

    def __init__(self, tables: Sequence[TableSchema], store: SegmentStore) -> None:
        self._store = store
        self._lines: list[bytes] = []
        self._origin: str | None = None
        self._encoder = BodyEncoder(tables, self._lines.append)
        self.segments: list[Segment] = []

    def _start(self, origin: str) -> None:
        if origin != self._origin:
            self.cut()
            self._origin = origin

    def write(self, table: str, op: str, values: Sequence[Any], origin: str, pos: int) -> None:
        self._start(origin)
        self._encoder.write(table, op, values, origin, pos)

    def write_json(self, table: str, op: str, text: str, origin: str, pos: int) -> None:
        self._start(origin)
        self._encoder.write_json(table, op, text, origin, pos)

    def cut(self) -> None:
        """End the current segment."""
        self._encoder.flush()
        counts, rows = self._encoder.take_counts()
        if rows and self._origin is not None:
            data = b"".join(self._lines)
            offset = self._store.append(data)
            self.segments.append(Segment(self._origin, offset, len(data), counts, rows))
        self._lines.clear()
        self._origin = None

    def close(self) -> list[Segment]:
        self.cut()
        return self.segments


def segments_for(segments: Sequence[Segment], site: str) -> Iterator[Segment]:
    """The segments to splice into ``site``'s package: all but its own."""
    return (s for s in segments if s.origin != site)
