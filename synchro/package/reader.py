"""Reading a package file (layout in ``manifest.py``, writing in ``writer.py``).

Reading verifies the whole file first — SHA-256, decompression, every record parsed and
counted against the trailer — and raises one ``PackageError`` naming the file and the reason
before a single change is handed out; ``PackageReader.changes()`` then streams the file
again. Memory stays flat whatever the size: the body is read, inflated and parsed in bounded
blocks (``stream.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from synchro.errors import PackageError, Say

from . import crypto, stream
from .manifest import Change, Header, Invalid, Manifest, Trailer, format_version, invalid

KeyArg = bytes | Sequence[bytes] | None


@dataclass(frozen=True)
class _Layout:
    """What was verified in a file, to stream it again and notice if it changed."""

    header: Header
    header_bytes: bytes
    trailer_start: int
    size: int
    key: bytes | None


UNREADABLE: Say = ("engine.pkg.illegible", {})  # nothing else known of what went wrong


def _open(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise PackageError(str(path), say=("engine.pkg.missing", {})) from exc
    except OSError as exc:
        detail = {"detail": exc.strerror or str(exc)}
        raise PackageError(str(path), say=("engine.pkg.unreadable", detail)) from exc


def _keys(key: KeyArg) -> tuple[bytes, ...]:
    if key is None:
        return ()
    if isinstance(key, bytes | bytearray):
        return (crypto.check_key(key),)
    return tuple(crypto.check_key(k) for k in key)


@dataclass(frozen=True)
class _Read:
    """What one full pass over a sound file found."""

    header: Header
    header_bytes: bytes
    counts: dict[str, dict[str, int]]
    key: bytes | None


def _read_all(src: stream.Source, trailer: Trailer, keys: tuple[bytes, ...]) -> _Read:
    header, header_bytes = stream.read_header(src)
    if src.remaining != trailer.body_size:
        raise invalid("body_size")
    body = stream.Body(src, header, header_bytes, keys)
    counts = body.count()
    return _Read(header, header_bytes, counts, body.opener.key if body.opener else None)


def _verify(path: Path, keys: tuple[bytes, ...]) -> tuple[Manifest, _Layout]:
    """Read the whole file once; the manifest when everything checks out, else PackageError.

    Integrity comes first: whatever goes wrong inside the body, the rest of the file is
    still hashed, so a damaged file is reported as such rather than as its first symptom.
    """
    name = str(path)
    with _open(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            trailer, trailer_start = stream.frame(fh, size)
        except Invalid as exc:
            raise refused(name, exc) from None
        src = stream.Source(fh, trailer_start)
        problem: Invalid | None = None
        try:
            read: _Read | None = _read_all(src, trailer, keys)
        except Invalid as exc:
            read, problem = None, exc
        try:
            src.drain()
        except Invalid as exc:
            raise refused(name, exc) from None
    if src.sha.hexdigest() != trailer.sha256:
        auth = problem is not None and problem.reason.startswith(stream.AUTH)
        raise PackageError(name, say=("engine.pkg.auth_sha" if auth else "engine.pkg.sha", {}))
    if read is None:
        raise refused(name, problem) if problem else PackageError(name, say=UNREADABLE)
    found = read.counts
    if trailer.counts != found or trailer.rows != sum(sum(n.values()) for n in found.values()):
        raise PackageError(name, say=_count_problem(trailer, found))
    header = read.header
    encryption = header.encryption or {}
    manifest = Manifest(
        format=format_version(header.tables),
        origin=header.origin,
        sequence=header.sequence,
        kind=header.kind,
        created=header.created,
        meta=header.meta,
        tables=header.tables,
        counts=found,
        rows=trailer.rows,
        sha256=trailer.sha256,
        size=size,
        encrypted=bool(encryption),
        key_id=encryption.get("key_id", ""),
    )
    return manifest, _Layout(header, read.header_bytes, trailer_start, size, read.key)


def _count_problem(trailer: Trailer, found: dict[str, dict[str, int]]) -> Say:
    for table in sorted(set(trailer.counts) | set(found)):
        for op in ("U", "D"):
            said = trailer.counts.get(table, {}).get(op)
            seen = found.get(table, {}).get(op)
            if said != seen:
                shown = {"said": said if said is not None else "-", "seen": seen or 0}
                return ("engine.pkg.count_op", {"table": table, "op": op, **shown})
    return ("engine.pkg.count", {"rows": trailer.rows})


def sealed_digest(path: Path) -> str:
    """The SHA-256 a package's trailer names, read from its end alone (the package is not
    verified: a node compares it with the digest another node recorded of the package it
    verified and applied under the same number)."""
    with _open(Path(path)) as fh:
        try:
            trailer, _start = stream.frame(fh, os.fstat(fh.fileno()).st_size)
        except Invalid as exc:
            raise refused(str(path), exc) from None
    return trailer.sha256


def read_manifest(path: Path, key: KeyArg = None) -> Manifest:
    """The manifest of a fully verified package (PackageError if anything is wrong)."""
    return _verify(Path(path), _keys(key))[0]


class PackageReader:
    """A verified package: ``manifest`` at once, ``changes()`` to stream its changes.

    ``key``: the group key, or several (key rotation: the one the package names is tried
    first). A keyed reader refuses unencrypted packages. The file is not kept open
    between calls; ``changes()`` checks again, as it streams, that the file is the one
    verified, and raises PackageError if it was replaced or changed meanwhile (the
    engine's transaction then rolls back what it applied).
    """

    def __init__(self, path: Path, key: KeyArg = None) -> None:
        self.path = Path(path)
        self.manifest, self._layout = _verify(self.path, _keys(key))

    def changes(self) -> Iterator[Change]:
        name = str(self.path)
        modified: Say = ("engine.pkg.modified", {})
        layout = self._layout
        keys = (layout.key,) if layout.key is not None else ()
        with _open(self.path) as fh:
            if os.fstat(fh.fileno()).st_size != layout.size:
                raise PackageError(name, say=modified)
            src = stream.Source(fh, layout.trailer_start)
            try:
                header_bytes = stream.read_header(src).raw
                if header_bytes != layout.header_bytes:
                    raise invalid("header_changed")
                yield from stream.Body(src, layout.header, header_bytes, keys).changes()
                src.drain()
            except Invalid as exc:
                why: list[Say] = (
                    [exc.say] if exc.say else [("engine.pkg.raw", {"text": exc.reason})]
                )
                raise PackageError(name, say=("engine.pkg.modified_as", {"why": why})) from None
        if src.sha.hexdigest() != self.manifest.sha256:
            raise PackageError(name, say=modified)


def open_package(path: Path, key: KeyArg = None) -> PackageReader:
    """Open and fully verify a package; PackageError before any change if it is not sound."""
    return PackageReader(path, key)


def refused(name: str, exc: Invalid) -> PackageError:
    """The ``PackageError`` of a package found ``exc``: in its words where it gave them."""
    if exc.say is not None:
        return PackageError(name, say=exc.say)
    return PackageError(name, exc.reason)
