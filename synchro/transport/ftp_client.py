"""The establishment's side of the FTP(S) exchange: ftplib with a pinned certificate.

    with SiteClient(host, port, site, secret, fingerprint) as hq:
        hq.upload(Path("3615-000042.pkg"), "3615-000042.pkg")   # → /in, resumable, verified
        for name in hq.list_out():
            hq.download(name, folder / name)                     # ← /out, resumable, verified

Security: explicit FTPS (``AUTH TLS``), then the SHA-256 of the server's certificate is
compared with the pinned fingerprint *before* the secret is sent, and again on every data
connection; ``PROT P`` encrypts the data channel. No CA, no host name check: the pin is the
trust. Plain FTP only when ``allow_plain`` is set and no fingerprint is known. The
connection itself is ``ftp_pinned.open_ftp``.

Transfers never leave a partial file under its final name: uploads go to ``in/<name>.part``
and downloads to ``<local>.part``; a new attempt resumes from the partial file's size
(``REST``), then size and SHA-256 (server command ``XSHA256``) are checked, then the file is
renamed. A mismatch deletes the partial file and fails (the next attempt starts over).

Errors (``synchro.errors``): failing to reach or log in to the Siège raises
``ConnectionTestError`` whose ``code`` is one of dns, refused, timeout, tls, certificate,
auth, protocol, quota; a connection cut or a failed check during a transfer raises
``TransportError``. Messages are French, name ``host:port`` and say what to do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ftplib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from synchro import faults
from synchro.errors import Cancelled, ConnectionTestError, ErrorKind, Say, TransportError
from synchro.platform.cancel_watch import CancelWatch, stopped_by
from synchro.transport.files import PART, file_sha256
from synchro.transport.ftp_errors import Where, doing, reply_after_cut, translate
from synchro.transport.ftp_pinned import (
    PinnedFTP,
    close_quietly,
    open_ftp,
    sockets_of,
)
from synchro.transport.ftp_pinned import fetch_fingerprint as fetch_fingerprint  # (its home)
from synchro.transport.tls import normalize_fingerprint

BLOCK = 256 * 1024
Progress = Callable[[int, int], None]


class SiteClient:
    """One session with the Siège, opened on first use (or by ``with``); one thread at a time.

    ``cancel`` (ARRETER, a stop) is checked between blocks of a transfer and raises
    ``Cancelled``; while the session waits on its sockets (a silent Siège, a hung link),
    ``platform.cancel_watch.CancelWatch`` shuts them down at once, and ``Cancelled`` is raised too.
    The partial file stays and the next attempt resumes it. ``on_progress(done, total)``
    reports bytes after each block (for the progress bar), and where each transfer starts
    (a resumed one starts further on). ``on_confirmed(size, total)`` reports what the Siège
    says it holds of an upload, at its start and at its size check: bytes written to the
    socket are not bytes received when the link is cut."""

    def __init__(
        self,
        host: str,
        port: int,
        site: str,
        secret: str,
        fingerprint: str,
        *,
        allow_plain: bool = False,
        timeout: float = 60,
        cancel: threading.Event | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self.where = Where(host, port, site, timeout)
        self.secret = secret
        try:
            self.fingerprint = normalize_fingerprint(fingerprint) if fingerprint else ""
        except ValueError as exc:
            raise ConnectionTestError(
                "certificate",
                say=("engine.ftp.bad_pin", {"hp": self.where.hp, "detail": str(exc)}),
            ) from exc
        self.allow_plain = allow_plain
        self.cancel = cancel
        self.on_progress = on_progress
        self.on_confirmed: Progress | None = None
        self._ftp: ftplib.FTP | None = None
        self._opening: ftplib.FTP | None = None  # the session while it connects
        self._watch: CancelWatch | None = None

    # --- session

    def connect(self) -> None:
        """Connect, check the certificate, log in. Raises ConnectionTestError."""
        if self._ftp is not None:
            return
        w = self.where
        if not self.fingerprint and not self.allow_plain:
            raise ConnectionTestError(
                "certificate", say=("engine.ftp.no_pin", {"hp": f"{w.host}:{w.port}"})
            )
        if self.cancel is not None and self._watch is None:  # a stop shuts the sockets
            sockets = lambda: sockets_of(self._opening) + sockets_of(self._ftp)  # noqa: E731
            self._watch = CancelWatch(self.cancel, sockets).start()
        try:
            self._ftp = open_ftp(w, self.secret, self.fingerprint, self._opened, self.cancel)
        except BaseException as exc:
            stopped_by(self.cancel, exc)
            raise

    def _opened(self, ftp: ftplib.FTP | None) -> None:
        self._opening = ftp

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None and not (self._watch is not None and self._watch.fired):
            with contextlib.suppress(OSError, EOFError, ftplib.Error):
                ftp.quit()
        if ftp is not None:
            close_quietly(ftp)
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()

    def __enter__(self) -> SiteClient:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _session(self, action: Say) -> Iterator[ftplib.FTP]:
        """The connected ftplib object; errors translated; a broken session is dropped."""
        self.connect()
        assert self._ftp is not None
        try:
            with translate(self.where, action):
                yield self._ftp
        except BaseException as exc:
            close_quietly(self._ftp)
            self._ftp = None
            stopped_by(self.cancel, exc)
            raise

    # --- listing

    def list_out(self) -> list[str]:
        """Complete files offered by the Siège in ``/out`` (sorted)."""
        return [n for n in self._list("out") if not n.endswith(PART)]

    def list_in(self) -> list[str]:
        """Files of this site in ``/in`` (complete and ``.part``), sorted."""
        return self._list("in")

    def _list(self, folder: str) -> list[str]:
        with self._session(doing("list", folder=folder)) as ftp:
            names = ftp.nlst(folder)
        return sorted(os.path.basename(n.rstrip("/")) for n in names)

    def delete_in(self, name: str) -> None:
        """Delete ``in/<name>`` (the Siège allows it for ``.part`` files only)."""
        with self._session(doing("delete", name=name)) as ftp:
            ftp.delete(f"in/{_plain_name(name)}")

    def remote_size(self, remote_path: str) -> int | None:
        """Size of ``in/x`` or ``out/x`` on the Siège, None when it does not exist."""
        with self._session(doing("size", path=remote_path)) as ftp:
            ftp.voidcmd("TYPE I")  # listings switch to ASCII, where SIZE is refused
            try:
                return ftp.size(remote_path)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return None
                raise

    def remote_sha256(self, remote_path: str) -> str:
        with self._session(doing("digest", path=remote_path)) as ftp:
            return ftp.sendcmd(f"XSHA256 {remote_path}").split()[-1].lower()

    def remote_time(self, remote_path: str) -> dt.datetime | None:
        """When the Siège's machine last wrote ``remote_path``, by its own clock (FTP
        ``MDTM``: UTC, to the second); None when the file is gone already (the Siège took
        it) or the server does not say."""
        with self._session(doing("date", path=remote_path)) as ftp:
            try:
                reply = ftp.sendcmd(f"MDTM {remote_path}")
            except ftplib.error_perm:  # (the session stays usable)
                return None
        try:
            stamp = dt.datetime.strptime(reply.split()[-1][:14], "%Y%m%d%H%M%S")
        except (ValueError, IndexError):
            return None
        return stamp.replace(tzinfo=dt.UTC)

    # --- transfers

    def upload(self, local: Path, remote_name: str) -> bool:
        """Send ``local`` to ``in/<remote_name>``: via ``.part``, resumed, verified, renamed.
        True when bytes of it were written now (``stage``)."""
        wrote = self.stage(local, remote_name)
        self.finish_upload(remote_name)
        return wrote

    def stage(self, local: Path, remote_name: str) -> bool:
        """The first half of ``upload``: ``in/<remote_name>.part`` complete and verified.
        Several files staged, then all renamed, reach the Siège together. True when bytes
        of it were written now (False: an earlier attempt had sent it all; the Siège's
        date of the file is then that attempt's)."""
        name = _plain_name(remote_name)
        part = f"in/{name}{PART}"
        total, want = _local_facts(local)
        with self._session(doing("send", name=name)) as ftp:
            ftp.sendcmd(f"ALLO {total}")  # 552 when the Siège would refuse the size
        offset = self.remote_size(part) or 0
        if offset > total:  # a stale partial file of another content: start over
            self.delete_in(name + PART)
            offset = 0
        self._progress(offset, total)  # where this attempt starts (a resume is progress)
        self._confirm(offset, total)
        if offset < total:
            self._send(local, part, offset, total, doing("send", name=name))
        faults.point("client.upload.sent")
        self._verify_remote(part, total, want, doing("send", name=name))
        return offset < total

    def finish_upload(self, remote_name: str) -> None:
        """The second half of ``upload``: rename the verified ``.part`` to its final name
        (the Siège knows the file when this returns)."""
        name = _plain_name(remote_name)
        part = f"in/{name}{PART}"
        with self._session(doing("send", name=name)) as ftp:
            ftp.sendcmd(f"RNFR {part}")
            ftp.sendcmd(f"RNTO in/{name}")
        faults.point("client.upload.renamed")

    def _send(self, local: Path, part: str, offset: int, total: int, action: Say) -> None:
        done = offset

        def sent(block: bytes) -> None:
            nonlocal done
            done += len(block)
            faults.point_bytes("client.send", done)
            self._progress(done, total)

        try:
            source: BinaryIO = open(local, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            unreadable = {"path": str(local), "detail": str(exc.strerror)}
            raise TransportError(
                kind=ErrorKind.DISK, say=("engine.ftp.unreadable", unreadable)
            ) from exc
        with source, self._session(action) as ftp:
            source.seek(offset)
            try:
                ftp.storbinary(f"STOR {part}", source, BLOCK, sent, rest=offset or None)
            except OSError:  # the Siège may have said why it ended the transfer (disk full)
                reply = reply_after_cut(ftp, min(2.0, self.where.timeout))
                if reply is None or not reply.startswith("4"):
                    raise
                raise ftplib.error_temp(reply) from None

    def _verify_remote(self, remote: str, total: int, want: str, action: Say) -> None:
        size = self.remote_size(remote)
        self._confirm(size or 0, total)
        if size != total:
            short = {"action": action, "hp": self.where.hp, "size": size or 0, "total": total}
            raise TransportError(say=("engine.ftp.sent_short", short))
        if self.remote_sha256(remote) != want:
            self.delete_in(os.path.basename(remote))
            differs = {"action": action, "hp": self.where.hp}
            raise TransportError(say=("engine.ftp.sent_differs", differs))

    def read_small(self, remote_name: str, limit: int = 65536) -> bytes | None:
        """The content of a small file of ``/out`` (None when it is not there or too big)."""
        name = _plain_name(remote_name)
        size = self.remote_size(f"out/{name}")
        if size is None or size > limit:
            return None
        chunks: list[bytes] = []
        with self._session(doing("read", name=name)) as ftp:
            ftp.retrbinary(f"RETR out/{name}", chunks.append)
        return b"".join(chunks)[:limit]

    def download(self, remote_name: str, local: Path) -> None:
        """Fetch ``out/<remote_name>`` into ``local``: via ``local.part``, resumed, verified."""
        name = _plain_name(remote_name)
        remote = f"out/{name}"
        action = doing("receive", name=name)
        total = self.remote_size(remote)
        if total is None:
            raise TransportError(say=("engine.ftp.absent", {"name": name, "hp": self.where.hp}))
        part = local.with_name(local.name + PART)
        offset = part.stat().st_size if part.exists() else 0
        if offset > total:
            part.unlink()
            offset = 0
        self._progress(offset, total)  # where this attempt starts (a resume is progress)
        if offset < total:
            self._receive(remote, part, offset, total, action)
        size = part.stat().st_size if part.exists() else 0
        if size != total:
            short = {"action": action, "hp": self.where.hp, "size": size, "total": total}
            raise TransportError(say=("engine.ftp.received_short", short))
        if file_sha256(part) != self.remote_sha256(remote):
            part.unlink()
            differs = {"action": action, "hp": self.where.hp}
            raise TransportError(say=("engine.ftp.received_differs", differs))
        faults.point("client.download.verified")
        os.replace(part, local)

    def _receive(self, remote: str, part: Path, offset: int, total: int, action: Say) -> None:
        done = offset
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "ab") as out, self._session(action) as ftp:

            def write(block: bytes) -> None:
                nonlocal done
                try:
                    out.write(block)
                except OSError as exc:
                    unwritable = ("engine.ftp.unwritable", {"path": str(part), "detail": str(exc)})
                    raise TransportError(kind=ErrorKind.DISK, say=unwritable) from exc
                done += len(block)
                faults.point_bytes("client.recv", done)
                self._progress(done, total)

            ftp.retrbinary(f"RETR {remote}", write, BLOCK, rest=offset or None)

    def _confirm(self, size: int, total: int) -> None:
        if self.on_confirmed is not None:
            self.on_confirmed(size, total)

    def _progress(self, done: int, total: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.on_progress is not None:
            self.on_progress(done, total)


@dataclass(frozen=True)
class LoginCheck:
    """What the *Test* button found: the session was encrypted and its certificate the
    pinned one (``secure``), and how many packages wait in ``/out``."""

    secure: bool
    waiting: int


def login_check(
    host: str,
    port: int,
    site: str,
    secret: str,
    fingerprint: str,
    allow_plain: bool = False,
    timeout: float = 10,
) -> LoginCheck:
    """The *Test* button: log in and list ``/out`` (so passive ports are tried too); the
    packages (``*.pkg``) counted, not the Siège's ``tour.json`` or ``schemas.json``.
    Raises ConnectionTestError with the exact ``code``."""
    try:
        with SiteClient(
            host, port, site, secret, fingerprint, allow_plain=allow_plain, timeout=timeout
        ) as client:
            count = sum(1 for name in client.list_out() if name.endswith(".pkg"))
            secure = isinstance(client._ftp, PinnedFTP)
    except ConnectionTestError:
        raise
    except TransportError as exc:
        raise ConnectionTestError("protocol", str(exc)) from exc
    return LoginCheck(secure, count)


def _local_facts(local: Path) -> tuple[int, str]:
    try:
        return local.stat().st_size, file_sha256(local)
    except OSError as exc:
        unreadable = {"path": str(local), "detail": str(exc.strerror or exc)}
        raise TransportError(
            kind=ErrorKind.DISK, say=("engine.ftp.unreadable", unreadable)
        ) from exc


def _plain_name(name: str) -> str:
    """A bare file name: no folder, no '..' (the server refuses them anyway)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise TransportError(say=("engine.ftp.bad_name", {"name": repr(name)}))
    return name
