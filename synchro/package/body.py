"""The compressed body of a package, and pieces of it made once for several packages.

A body is one zlib stream of lines of grouped changes (``records.py``). ``BodyEncoder``
batches changes into lines and compresses them; the zlib framing (2-byte header, Adler-32
of everything uncompressed at the end) is written here around raw deflate, so that a
**segment** — changes compressed once, on their own, ended by a full flush — can be spliced
into any number of bodies: the stream stays one valid zlib stream, which readers take as any
other (the file format does not change).

Why (issue 15): the Siège sends each establishment every change except its own. Encoding
and compressing the same rows again for each of n establishments made its work grow as n².
Each origin's rows are now compressed once per publication (``SegmentBuilder``), kept in a
spill file (``SegmentStore``: memory stays flat), and a package is its segments' bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stream
from .manifest import TableSchema
from .records import RecordCodec
from .rowcodec import Unrepresentable

BATCH_RECORDS = 512  # changes per line, at most
BATCH_BYTES = 256 * 1024  # rough size of a line, at most
_ADLER_BASE = 65521


class TooBig(ValueError):
    """A single change longer than a line may be (the reader would refuse it)."""


def zlib_header(level: int) -> bytes:
    """The two bytes zlib itself writes first at ``level`` (deflate, 32 kB window)."""
    cmf = 0x78
    flevel = 0 if level <= 1 else 1 if level <= 5 else 2 if level == 6 else 3
    flg = flevel << 6
    flg += 31 - (cmf * 256 + flg) % 31
    return bytes([cmf, flg])


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of ``a + b`` from that of ``a``, that of ``b`` and ``len(b)`` (zlib's
    ``adler32_combine``, which Python's zlib does not expose)."""
    base = _ADLER_BASE
    rem = second_length % base
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (second & 0xFFFF) + base - 1
    sum2 += (first >> 16) + (second >> 16) + base - rem
    sum1 %= base
    sum2 %= base
    return sum1 | (sum2 << 16)


class Deflater:
    """Raw deflate with the zlib framing kept by hand (header, running Adler-32)."""

    def __init__(self, level: int, *, framed: bool = True) -> None:
        self._zip = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._head = zlib_header(level) if framed else b""
        self.adler = 1
        self.length = 0

    def _out(self, data: bytes) -> bytes:
        if self._head:
            data, self._head = self._head + data, b""
        return data

    def compress(self, data: bytes) -> bytes:
        self.adler = zlib.adler32(data, self.adler)
        self.length += len(data)
        return self._out(self._zip.compress(data))

    def cut(self) -> bytes:
        """Flush everything, byte-aligned, and forget the history: what follows may be
        compressed elsewhere (a segment) or decompressed without what came before."""
        return self._out(self._zip.flush(zlib.Z_FULL_FLUSH))

    def account(self, adler: int, length: int) -> None:
        """Count uncompressed bytes that were compressed elsewhere and spliced in here."""
        self.adler = adler32_combine(self.adler, adler, length)
        self.length += length

    def finish(self) -> bytes:
        """The last block and the Adler-32 trailer: the stream is complete."""
        return self._out(self._zip.flush(zlib.Z_FINISH)) + self.adler.to_bytes(4, "big")


@dataclass(frozen=True)
class Segment:
    """Changes of one origin, compressed on their own, kept at ``offset`` in a store."""

    origin: str
    offset: int
    size: int
    adler: int  # of the uncompressed lines
    length: int  # uncompressed length
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
    """Changes to compressed bytes, handed to ``emit`` as they are made.

    ``write`` and ``write_json`` raise ``Unrepresentable`` for a value that cannot travel
    (nothing is queued then), ``TooBig`` for a change longer than a line may be, ValueError
    for a call that breaks the schema.
    """

    def __init__(
        self,
        tables: Sequence[TableSchema],
        level: int,
        emit: Callable[[bytes], None],
        *,
        framed: bool = True,
    ) -> None:
        self.codec = RecordCodec(tables)
        self.counts = {t.name: {"U": 0, "D": 0} for t in tables}
        self.rows = 0
        self.deflater = Deflater(level, framed=framed)
        self._emit = emit

    def write(self, table: str, op: str, values: Sequence[Any], origin: str, pos: int) -> None:
        codec = self.codec
        change = codec.encode(table, op, values, origin, pos)  # may raise Unrepresentable
        if change.size >= BATCH_BYTES:  # a big change travels on a line of its own
            self.flush()
            codec.queue(change)
            line = codec.take_line()
            if len(line) > stream.MAX_LINE:
                raise TooBig(
                    f"enregistrement trop grand dans {table} ({len(line)} octets, "
                    f"au plus {stream.MAX_LINE} par enregistrement)"
                )
            self._emit(self.deflater.compress(line))
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
        """Compress the queued changes as one line."""
        if self.codec.pending:
            self._emit(self.deflater.compress(self.codec.take_line()))

    def splice(self, segment: Segment, data: bytes) -> None:
        """Put a segment's bytes here, after what was written so far."""
        self.flush()
        self._emit(self.deflater.cut())
        self._emit(data)
        self.deflater.account(segment.adler, segment.length)
        for table, ops in segment.counts.items():
            for op, n in ops.items():
                self.counts[table][op] += n
        self.rows += segment.rows

    def finish(self) -> None:
        self.flush()
        self._emit(self.deflater.finish())


class SegmentBuilder:
    """Cuts changes into segments, one per run of the same origin, into a store.

    A new table or op must also start a segment: call ``cut()`` then (a segment is spliced
    whole, and a package's tables come in their order)."""

    def __init__(self, tables: Sequence[TableSchema], level: int, store: SegmentStore) -> None:
        self._store = store
        self._parts: list[bytes] = []
        self._origin: str | None = None
        self._encoder = BodyEncoder(tables, level, self._parts.append, framed=False)
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
        encoder, deflater = self._encoder, self._encoder.deflater
        encoder.flush()
        if encoder.rows and self._origin is not None:
            self._parts.append(deflater.cut())
            data = b"".join(self._parts)
            counts = {t: dict(ops) for t, ops in encoder.counts.items() if any(ops.values())}
            offset = self._store.append(data)
            self.segments.append(
                Segment(
                    self._origin,
                    offset,
                    len(data),
                    deflater.adler,
                    deflater.length,
                    counts,
                    encoder.rows,
                )
            )
        # the full flush forgot the history: the next segment starts from nothing
        self._parts.clear()
        deflater.adler, deflater.length = 1, 0
        encoder.counts = {t: {"U": 0, "D": 0} for t in encoder.counts}
        encoder.rows = 0
        self._origin = None

    def close(self) -> list[Segment]:
        self.cut()
        return self.segments


def segments_for(segments: Sequence[Segment], site: str) -> Iterator[Segment]:
    """The segments to splice into ``site``'s package: all but its own."""
    return (s for s in segments if s.origin != site)


__all__ = [
    "BATCH_BYTES",
    "BATCH_RECORDS",
    "BodyEncoder",
    "Deflater",
    "Segment",
    "SegmentBuilder",
    "SegmentStore",
    "TooBig",
    "Unrepresentable",
    "adler32_combine",
    "segments_for",
    "zlib_header",
]
