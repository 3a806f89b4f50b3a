"""Reading a package file as a stream: framing, hashing, decrypting, inflating, parsing.

``reader.py`` drives these pieces twice per package: once to verify everything, once to
hand the changes out. Every problem is raised as ``Invalid`` (a French reason); the
caller adds the file name. Memory is bounded at each stage: disk reads of ``BLOCK``
bytes (or one encrypted chunk), inflation of at most ``MAX_INFLATE`` bytes at a time,
one batch line of records.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import IO, NamedTuple

from . import crypto
from .manifest import (
    END_MAGIC,
    MAGIC,
    MAX_HEADER,
    MAX_TRAILER,
    READABLE_VERSIONS,
    Change,
    Header,
    Invalid,
    Trailer,
    bad_header,
    invalid,
)
from .records import RecordCodec

PREFIX = struct.Struct(">12sHI")  # magic, format version, header length
TAIL = struct.Struct(">I8s")  # trailer length, end magic
BLOCK = 256 * 1024  # bytes read from disk at a time
MAX_INFLATE = 256 * 1024  # bytes inflated at a time (bounds a zip bomb)
MAX_LINE = 256 * 1024 * 1024  # one batch line
AUTH = "clé de groupe incorrecte ou paquet modifié"  # (engine.pkg.auth's French words)


class Source:
    """Reads ``fh`` from its start up to ``end`` in order, hashing every byte read."""

    def __init__(self, fh: IO[bytes], end: int) -> None:
        fh.seek(0)
        self.fh = fh
        self.end = end
        self.pos = 0
        self.sha = hashlib.sha256()

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def read(self, size: int) -> bytes:
        size = min(size, self.remaining)
        data = self.fh.read(size)
        if len(data) != size:
            raise invalid("truncated")
        self.sha.update(data)
        self.pos += size
        return data

    def drain(self) -> None:
        while self.remaining:
            self.read(BLOCK)


class Framed(NamedTuple):
    """A file whose start and end were checked: its trailer, and where the trailer starts
    (everything before is covered by the trailer's SHA-256)."""

    trailer: Trailer
    trailer_start: int


class ReadHeader(NamedTuple):
    """A package's header, and its bytes from the start of the file (what AAD and checks
    bind)."""

    header: Header
    raw: bytes


def frame(fh: IO[bytes], size: int) -> Framed:
    """Check the start (magic, version) and the end (end magic, trailer) of the file.

    Returns the trailer and where it starts: everything before is covered by its SHA-256.
    """
    if size == 0:
        raise invalid("empty")
    start = fh.read(PREFIX.size)
    if len(start) < len(MAGIC):
        raise invalid("truncated" if MAGIC.startswith(start) else "foreign")
    if not start.startswith(MAGIC):
        raise invalid("foreign")
    if len(start) < PREFIX.size:
        raise invalid("truncated")
    _, version, _ = PREFIX.unpack(start)
    if version not in READABLE_VERSIONS:
        *first, last = (str(v) for v in sorted(READABLE_VERSIONS))
        raise invalid("version", version=version, first=", ".join(first), last=last)
    if size < PREFIX.size + TAIL.size:
        raise invalid("truncated")
    fh.seek(size - TAIL.size)
    trailer_len, end = TAIL.unpack(fh.read(TAIL.size))
    if end != END_MAGIC:
        raise invalid("truncated")
    trailer_start = size - TAIL.size - trailer_len
    if trailer_len > MAX_TRAILER or trailer_start < PREFIX.size:
        raise invalid("trailer")
    fh.seek(trailer_start)
    return Framed(Trailer.from_bytes(fh.read(trailer_len)), trailer_start)


def read_header(src: Source) -> ReadHeader:
    """The header, and its bytes from the start of the file (what AAD and checks bind)."""
    prefix = src.read(PREFIX.size)
    _, _, length = PREFIX.unpack(prefix)
    if length > MAX_HEADER or length > src.remaining:
        raise bad_header("length")
    raw = src.read(length)
    return ReadHeader(Header.from_bytes(raw), prefix + raw)


class Body:
    """The body of one package as a stream of changes: decrypt, inflate, split, parse."""

    def __init__(
        self, src: Source, header: Header, header_bytes: bytes, keys: tuple[bytes, ...]
    ) -> None:
        self.src = src
        self.codec = RecordCodec(header.tables)
        self.opener: crypto.ChunkOpener | None = None
        if header.encryption is None:
            if keys:
                raise invalid("unencrypted")
            return
        if not keys:
            raise invalid("key_required")
        try:
            digest = hashlib.sha256(header_bytes).digest()
            self.opener = crypto.ChunkOpener(keys, header.encryption, digest)
        except (ValueError, TypeError, KeyError):
            raise bad_header("encryption") from None

    def changes(self) -> Iterator[Change]:
        decode = self.codec.decode
        number = 1
        for line in _lines(_inflate(self._pieces())):
            changes = decode(line, number)
            number += len(changes)
            yield from changes

    def count(self) -> dict[str, dict[str, int]]:
        """Check every record as ``changes`` would; the counts per table and op."""
        counts = [{"U": 0, "D": 0} for _ in self.codec.tables]
        number = 1
        for line in _lines(_inflate(self._pieces())):
            number += self.codec.count(line, number, counts)
        return {t.name: n for t, n in zip(self.codec.tables, counts, strict=True)}

    def _pieces(self) -> Iterator[bytes]:
        src, opener = self.src, self.opener
        if opener is None:
            while src.remaining:
                yield src.read(BLOCK)
            return
        step = opener.chunk + crypto.TAG_SIZE
        while src.remaining:
            data = src.read(step)
            try:
                yield opener.open(data, final=not src.remaining)
            except crypto.AuthenticationFailed:
                raise self._auth_error(opener) from None

    @staticmethod
    def _auth_error(opener: crypto.ChunkOpener) -> Invalid:
        if opener.key is not None:
            return invalid("auth")
        known = ", ".join(crypto.key_id(k) for k in opener.candidates)
        return invalid("auth_keys", key=opener.key_id, known=known)


def _inflate(pieces: Iterator[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    try:
        for piece in pieces:
            data = piece
            while data:
                if inflater.eof:
                    raise invalid("extra_data")
                out = inflater.decompress(data, MAX_INFLATE)
                if out:
                    yield out
                data = inflater.unconsumed_tail or inflater.unused_data
        rest = inflater.flush()
    except zlib.error:
        raise invalid("stream_damaged") from None
    if rest:
        yield rest
    if not inflater.eof:
        raise invalid("stream_incomplete")


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Complete lines (without their newline) from arbitrary chunks."""
    pending: list[bytes] = []
    pending_size = 0
    for chunk in chunks:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size > MAX_LINE:
                raise invalid("record_long")
            continue
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
        last = parts.pop()
        yield from parts
        pending = [last] if last else []
        pending_size = len(last)
    if pending:
        raise invalid("last_incomplete")
