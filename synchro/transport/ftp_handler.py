"""pyftpdlib handler classes of the Siège's server: Synchro's commands and safeguards.

``ftp_server.HQServer`` derives a subclass of ``PlainHandler`` or ``TLSHandler`` per server,
holding that server's settings (``synchro``: a ``ServerState``). What they add to pyftpdlib:

- ``XSHA256 <file>`` → ``213 <hex>``: the client verifies every transfer with it.
- ``ALLO <bytes>`` → ``552`` when the file would exceed the upload limit; the limit is also
  enforced while writing (``SiteFS.open``), and an oversized ``.part`` is deleted. ``452``
  when the Siège's disk has not that much room (a resumed upload counts what its ``.part``
  holds); a write that finds the disk full is answered ``452`` by the data channel
  (``DiskAwareData``). Both are events of the Siège's report.
- ``RNFR`` only from ``.part`` files; ``RNTO`` overwrites (``os.replace``) and calls
  ``on_received`` before replying, so a finished ``rename`` means the Siège knows.
- every refusal (pyftpdlib's own 550 answers included) becomes a security event before the
  client hears about it.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.utils import strerror

from synchro import faults
from synchro.transport.files import PART, file_sha256
from synchro.transport.ftp_policy import INBOX, Guard, Policy, SiteAuthorizer, disk_full

log = logging.getLogger("synchro.transport.server")

OnReceived = Callable[[str, Path], None]


class ServerState:
    """What one server's handlers share: reached as ``handler.synchro`` (per-server class)."""

    def __init__(
        self, policy: Policy, guard: Guard, max_upload: int, on_received: OnReceived | None
    ) -> None:
        self.policy = policy
        self.guard = guard
        self.max_upload = max_upload
        self.on_received = on_received
        # (site, file name) of every download that went to its end, oldest first (bounded)
        self.sent: collections.deque[tuple[str, str]] = collections.deque(maxlen=10000)


class _QuotaFile:
    """A file opened for upload that refuses to grow past ``limit`` bytes (then deletes it)."""

    def __init__(
        self,
        f: Any,
        limit: int,
        on_exceeded: Callable[[], None],
        on_full: Callable[[OSError], None],
    ) -> None:
        self._f = f
        self._limit = limit
        self._on_exceeded = on_exceeded
        self._on_full = on_full
        self.exceeded = False

    def write(self, data: bytes) -> int:
        if self._f.tell() + len(data) > self._limit:
            if not self.exceeded:
                self.exceeded = True
                self._on_exceeded()
                with contextlib.suppress(OSError):  # POSIX: at once; Windows: in close()
                    os.remove(self._f.name)
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        faults.point_bytes("server.receive", self._f.tell() + len(data))
        view = memoryview(data)
        try:
            while view:  # an unbuffered file may take part of it (a disk filling up)
                view = view[self._f.write(view) :]
        except OSError as exc:  # the data channel then answers 452 (``DiskAwareData``)
            if _is_full(exc):
                self._on_full(exc)
            raise
        return len(data)

    def close(self) -> None:
        self._f.close()
        if self.exceeded:
            with contextlib.suppress(OSError):
                os.remove(self._f.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class SiteFS(AbstractedFS):  # type: ignore[misc]
    """Uploads are size-limited; rename overwrites (``os.replace``, as on POSIX)."""

    def open(self, filename: str, mode: str) -> Any:
        if not any(c in mode for c in "wa+"):
            return open(filename, mode)
        # Unbuffered: a full disk fails the write, where pyftpdlib answers 426 with the
        # reason. Buffered, it failed the close instead, inside pyftpdlib's own error
        # handling, which then never answered: the site waited for its timeout and said
        # "connection reset" or "timed out" (measured).
        f = open(filename, mode, buffering=0)  # noqa: SIM115 - closed by the data channel
        handler = self.cmd_channel
        state: ServerState = handler.synchro

        def exceeded() -> None:
            state.guard.event(
                handler.remote_ip, handler.username, "STOR", "taille maximale d'envoi dépassée"
            )

        def full(exc: OSError) -> None:
            why = disk_full(f"{exc.strerror}, {os.path.basename(filename)}")
            state.guard.event(handler.remote_ip, handler.username, "STOR", why)

        return _QuotaFile(f, state.max_upload, exceeded, full)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)


def _is_full(exc: OSError) -> bool:
    """The write failed for want of room (the disk full, or the account's quota)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _partly_here(inbox: str, size: int) -> int:
    """Bytes of an upload of ``size`` the Siège may already hold: the largest ``.part`` of
    the site's inbox not bigger than it (``ALLO`` does not name its file; a resume sends
    only the rest, and the writes stay the judge of what fits)."""
    try:
        with os.scandir(inbox) as entries:
            held = [e.stat().st_size for e in entries if e.name.endswith(PART) and e.is_file()]
    except OSError:
        return 0
    return max((n for n in held if n <= size), default=0)


class _SiteHandlerMixin:
    """Synchro's additions to pyftpdlib's handler (plain or TLS)."""

    synchro: ServerState
    remote_ip: str
    username: str
    authorizer: SiteAuthorizer
    fs: Any
    close_when_done: Callable[[], None]
    run_as_current_user: Callable[..., Any]
    _rnfr: str | None
    proto_cmds: dict[str, dict[str, Any]]

    def ftp_XSHA256(self, path: str) -> None:
        if not self.fs.isfile(path):
            self.respond("550 Fichier introuvable.")
            return
        try:
            digest = file_sha256(path)
        except OSError as exc:
            self.respond(f"550 {os.strerror(exc.errno or errno.EIO)}.")
            return
        self.respond(f"213 {digest}")

    def ftp_ALLO(self, line: str) -> None:
        try:
            size = int(line.split()[0])
        except (ValueError, IndexError):
            self.respond("501 Taille attendue : ALLO <octets>.")
            return
        if size > self.synchro.max_upload:
            self._refuse("ALLO", f"{size} octets > limite de {self.synchro.max_upload}")
            self.respond(f"552 Fichier trop gros : limite {self.synchro.max_upload} octets.")
            return
        need = size - _partly_here(os.path.join(self.fs.root, INBOX), size)
        try:
            free = shutil.disk_usage(self.fs.root).free
        except OSError:
            free = need  # not known: the writes will say it
        if free < need:
            self._refuse("ALLO", disk_full(f"{free} octets libres pour un envoi de {need}"))
            self.respond(f"452 Disque du siège plein : {free} octets libres pour {need}.")
            return
        self.respond("200 Taille acceptée.")

    def ftp_RNFR(self, path: str) -> None:
        if not path.endswith(PART):
            self._refuse("RNFR", f"{self.fs.fs2ftp(path)} : seuls les .part se renomment")
            self.respond("550 Seuls les fichiers .part peuvent être renommés.")
            return
        super().ftp_RNFR(path)  # type: ignore[misc]

    def ftp_RNTO(self, path: str) -> Any:
        """pyftpdlib's RNTO, but ``on_received`` runs BEFORE the 250 reply: when a client's
        rename returns, the Siège already knows about the file."""
        src, self._rnfr = self._rnfr, None
        if not src:
            self.respond("503 Bad sequence of commands: use RNFR first.")
            return None
        try:
            self.run_as_current_user(self.fs.rename, src, path)
        except (OSError, FilesystemError) as exc:
            self.respond(f"550 {strerror(exc)}.")
            return None
        faults.point("server.renamed")
        parts = self.synchro.policy.parts(self.username, path)
        if self.synchro.on_received and parts and parts[0] == INBOX and not path.endswith(PART):
            try:
                self.synchro.on_received(self.username, Path(path))
            except Exception:
                log.exception("on_received a échoué pour %s", path)
        self.respond("250 Renaming ok.")
        return (src, path)

    def on_file_sent(self, file: str) -> None:
        """pyftpdlib: a RETR went to its end (the site may still refuse what it got)."""
        self.synchro.sent.append((self.username, os.path.basename(file)))
        faults.point("server.sent")

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        self._synchro_cmd = (cmd, arg)  # for respond(): which command is being refused
        super().pre_process_command(line, cmd, arg)  # type: ignore[misc]

    def respond(self, resp: str, *args: Any, **kwargs: Any) -> None:
        """Turn pyftpdlib's own refusals into security events, before the client hears."""
        if resp.startswith("550 "):
            try:
                self._note_refusal(resp[4:])
            except Exception:  # a report problem must never break the session
                log.exception("événement de sécurité non enregistré : %s", resp)
        super().respond(resp, *args, **kwargs)  # type: ignore[misc]

    def _note_refusal(self, text: str) -> None:
        cmd, arg = getattr(self, "_synchro_cmd", ("?", ""))
        if text == "Not enough privileges.":
            perm = self.proto_cmds.get(cmd, {}).get("perm") or "?"
            real = self.fs.ftp2fs(arg or self.fs.cwd) if self.fs is not None else arg
            why = self.synchro.policy.refusal(self.username, perm, real) or "refusé"
            self._refuse(cmd, f"{arg or '.'} : {why}")
        elif "outside the user's root" in text:
            self._refuse(cmd, f"{arg} : chemin hors du dossier de l'établissement")
        elif "SSL/TLS required" in text:
            self._refuse(cmd, "connexion non chiffrée refusée (FTPS obligatoire)")

    def _refuse(self, action: str, reason: str) -> None:
        self.synchro.guard.event(self.remote_ip, self.username, action, reason)


class DiskAwareData:
    """pyftpdlib's data channel, answering ``452`` (with the system's words) when a file
    write of an upload finds the Siège's disk full. pyftpdlib's TLS data channel let that
    error escape: the whole session was closed without an answer, and the site waited for
    its timeout to say "connection reset" (measured)."""

    _resp: tuple[str, Callable[..., None]]
    close: Callable[[], None]

    def handle_read_event(self) -> None:
        try:
            super().handle_read_event()  # type: ignore[misc]
        except OSError as exc:
            cause = exc.__cause__ if exc.errno is None else exc  # pyftpdlib wraps the write's
            if not isinstance(cause, OSError) or not _is_full(cause):
                raise
            self._resp = (f"452 Disque du siège plein ({cause.strerror}).", log.warning)
            self.close()


class PlainHandler(_SiteHandlerMixin, FTPHandler):  # type: ignore[misc]
    pass


class TLSHandler(_SiteHandlerMixin, TLS_FTPHandler):  # type: ignore[misc]
    pass
