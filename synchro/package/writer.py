"""Writing a package file as a stream (layout in ``manifest.py``, reading in ``reader.py``).

Writing goes to ``<name>.tmp``, is fsynced and renamed over the final name only when
complete, so a half-written package never has the final name. Memory stays flat whatever
the size: changes are grouped in bounded lines, compressed and sealed as they come.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from synchro import faults
from synchro.errors import PackageError, Say

from . import crypto, stream
from .body import BodyEncoder, Segment, TooBig
from .manifest import (
    END_MAGIC,
    MAGIC,
    MAX_HEADER,
    PACKAGE_KINDS,
    Header,
    Manifest,
    TableSchema,
    Trailer,
    check_meta,
    check_tables,
    format_version,
)
from .rowcodec import Unrepresentable


class PackageWriter:
    """Writes one package as a stream. Use as a context manager, or call ``close()``.

    On an exception inside the ``with`` block (or ``abort()``) the temporary file is
    removed and nothing appears at ``path``. Calls that break the schema (unknown table,
    wrong op or number of values) raise ValueError; a value that would not read back
    identical raises PackageError naming the table, column and value.
    """

    def __init__(
        self,
        path: Path,
        *,
        origin: str,
        sequence: int,
        kind: str,
        tables: Sequence[TableSchema],
        meta: Mapping[str, Any] = {},
        key: bytes | None = None,
        level: int = 1,
        created: datetime | None = None,
    ) -> None:
        if not isinstance(origin, str) or type(sequence) is not int or sequence < 0:
            raise ValueError("origin doit être un texte et sequence un entier positif")
        if kind not in PACKAGE_KINDS:
            raise ValueError(f"sorte de paquet {kind!r} inconnue (attendue : {PACKAGE_KINDS})")
        if not 0 <= level <= 9:
            raise ValueError("level de compression entre 0 et 9")
        schemas = check_tables(tables)
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        header = Header(
            origin=origin,
            sequence=sequence,
            kind=kind,
            created=(created or datetime.now(UTC)).isoformat(),
            meta=check_meta(meta),
            tables=schemas,
            level=level,
            encryption=crypto.new_params(key) if key is not None else None,
        )
        self._header = header
        header_bytes = header.to_bytes()
        if len(header_bytes) > MAX_HEADER:
            raise ValueError("en-tête de paquet trop grand")
        version = format_version(schemas)
        prefix = stream.PREFIX.pack(MAGIC, version, len(header_bytes)) + header_bytes
        self._sealer: crypto.ChunkSealer | None = None
        if key is not None and header.encryption is not None:
            digest = hashlib.sha256(prefix).digest()
            self._sealer = crypto.ChunkSealer(key, header.encryption, digest)
        self._pending = bytearray()
        self._zip = zlib.compressobj(level)
        self._encoder = BodyEncoder(schemas, self._line)
        self._sha = hashlib.sha256()
        self._body_size = 0
        self._size = 0
        self._manifest: Manifest | None = None
        self._closed = False
        try:
            self._fh: IO[bytes] = open(self._tmp, "wb")  # noqa: SIM115 - closed in close/abort
        except OSError as exc:
            raise PackageError(str(self.path), say=_unwritable(exc)) from exc
        self._step(self._raw, prefix)

    def __enter__(self) -> PackageWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(
        self, table: str, op: str, values: Sequence[Any], *, origin: str = "", pos: int = 0
    ) -> None:
        """Add one change: ``U`` with the whole row, ``D`` with the key values.

        A value that cannot travel raises PackageError and leaves the writer as it was:
        the caller may set that row aside (quarantine) and go on writing.
        """
        if self._closed:
            raise ValueError("paquet déjà fermé")
        try:
            self._step(self._encoder.write, table, op, values, origin, pos)
        except (Unrepresentable, TooBig) as exc:
            if exc.say is not None:
                raise PackageError(str(self.path), say=exc.say) from None
            raise PackageError(str(self.path), str(exc)) from None

    def write_json(self, table: str, op: str, text: str, *, origin: str, pos: int) -> None:
        """Add one change whose values are already in their JSON form (``synchro.values``),
        given as the text of a JSON array: the Siège's change log keeps its rows so, and
        writing them as they are costs a fraction of ``write``. The text is trusted (it was
        checked when the change first travelled); the reader checks it as any other."""
        if self._closed:
            raise ValueError("paquet déjà fermé")
        self._step(self._encoder.write_json, table, op, text, origin, pos)

    def splice(self, segment: Segment, data: bytes) -> None:
        """Add changes encoded once for several packages (``body.SegmentBuilder``):
        ``data`` is the segment's lines, as its store gives them."""
        if self._closed:
            raise ValueError("paquet déjà fermé")
        self._step(self._encoder.splice, segment, data)

    def _step(self, func: Any, *args: Any) -> None:
        """An encoder step: it writes to the disk, so an OS error aborts the package;
        a value that cannot travel leaves the writer usable."""
        try:
            func(*args)
        except (Unrepresentable, TooBig, ValueError):
            raise
        except OSError as exc:
            self.abort()
            raise PackageError(str(self.path), say=_unwritable(exc)) from exc
        except BaseException:
            self.abort()
            raise

    def close(self) -> Manifest:
        """Finish the file, fsync it and rename it to its final name. Returns its manifest."""
        if self._manifest is not None:
            return self._manifest
        if self._closed:
            raise ValueError("paquet abandonné")
        self._step(self._finish)
        manifest = Manifest(
            format=format_version(self._header.tables),
            origin=self._header.origin,
            sequence=self._header.sequence,
            kind=self._header.kind,
            created=self._header.created,
            meta=self._header.meta,
            tables=self._header.tables,
            counts=self._encoder.counts,
            rows=self._encoder.rows,
            sha256=self._sha.hexdigest(),
            size=self._size,
            encrypted=self._sealer is not None,
            key_id=(self._header.encryption or {}).get("key_id", ""),
        )
        self._manifest = manifest
        return manifest

    def abort(self) -> None:
        """Give up: close and remove the temporary file. Nothing appears at ``path``."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def _raw(self, data: bytes) -> None:
        faults.point("package.write")
        self._fh.write(data)
        self._sha.update(data)
        self._size += len(data)

    def _body(self, data: bytes, final: bool = False) -> None:
        """Compressed bytes to the body, sealed in chunks when the package is keyed."""
        if self._sealer is None:
            self._raw(data)
            self._body_size += len(data)
            return
        pending, chunk = self._pending, self._sealer.chunk
        pending += data
        pieces = []
        while len(pending) > chunk:
            pieces.append((bytes(pending[:chunk]), False))
            del pending[:chunk]
        if final:
            pieces.append((bytes(pending), True))
            pending.clear()
        for piece, last in pieces:
            sealed = self._sealer.seal(piece, final=last)
            self._raw(sealed)
            self._body_size += len(sealed)

    def _line(self, data: bytes) -> None:
        self._body(self._zip.compress(data))

    def _finish(self) -> None:
        self._encoder.flush()
        self._body(self._zip.flush(), final=True)
        encoder = self._encoder
        trailer = Trailer(encoder.counts, encoder.rows, self._body_size, self._sha.hexdigest())
        raw = trailer.to_bytes()
        tail = raw + stream.TAIL.pack(len(raw), END_MAGIC)
        self._fh.write(tail)
        self._size += len(tail)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._closed = True
        faults.point("package.before_rename")
        os.replace(self._tmp, self.path)
        _sync_dir(self.path.parent)


def _sync_dir(folder: Path) -> None:
    """Make the rename durable where the system allows it (POSIX; best effort: some
    network file systems refuse, and Windows has no directory handles to fsync)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unwritable(exc: OSError) -> Say:
    """Why the package file cannot be written: the system's words kept as they are."""
    return ("engine.pkg.unwritable", {"detail": exc.strerror or str(exc)})
