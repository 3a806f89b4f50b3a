"""Crash-safe file replacement for the small settings files.

``atomic_write(path, data)`` writes ``<path>.tmp`` in the same folder, flushes and fsyncs
it, then ``os.replace``s it over ``path`` (atomic on POSIX and on Windows when both names
are on one volume). A crash or a failed write at any point leaves either the old file or
the new one, never a mix; a failed write removes its ``.tmp``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def tmp_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, backup: Path | None = None) -> None:
    """Replace ``path`` by ``data`` atomically; new files get ``mode`` (POSIX).

    With ``backup``, the previous content of ``path`` (if any) is first copied there, also
    atomically, so the backup is always a complete earlier version. Raises ``OSError``.
    """
    tmp = tmp_path_for(path)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a stale .tmp may carry another mode; O_CREAT would keep it
    try:
        _write_new(tmp, data, mode)
        if backup is not None and path.exists():
            _copy_atomic(path, backup, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # umask may have removed bits we want; never add others
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_atomic(source: Path, target: Path, mode: int) -> None:
    tmp = tmp_path_for(target)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        _write_new(tmp, source.read_bytes(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open folders this way."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
