"""The Siège's FTPS control connection as a site opens it: explicit TLS, pinned certificate.

``open_ftp`` connects, switches to TLS (``AUTH TLS``), compares the SHA-256 of the server's
certificate with the pinned fingerprint *before* the secret is sent, logs in and encrypts
the data channel (``PROT P``); ``PinnedFTP`` checks the pin again on every data connection.
No CA, no host name check: the pin is the trust. Plain FTP only without a fingerprint (the
caller allows it). ``ftp_client.SiteClient`` runs its sessions on this. A session keeps its
last data connection (``data_conn``: a stop shuts it down, ``platform.cancel_watch``).
``fetch_fingerprint``: the certificate the Siège presents now, without logging in
(``synchro trust``).
"""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

from synchro.platform.cancel_watch import dial
from synchro.transport.ftp_errors import CONNECT, PinMismatch, Where, translate
from synchro.transport.tls import fingerprint_of


def peer_fingerprint(sock: Any) -> str:
    """The fingerprint of the certificate the other end of ``sock`` presented."""
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    return fingerprint_of(der or b"")


class Dialing(ftplib.FTP):
    """ftplib's FTP whose connections — the session's and each passive data connection —
    are made by ``platform.cancel_watch.dial``: a stop (``cancel`` set) ends a connection
    still waiting for an answer at once, not at the timeout."""

    cancel: threading.Event | None = None

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        self.host = host or self.host
        self.port = port if port > 0 else self.port
        self.timeout = self.timeout if timeout == -999 else timeout
        self.source_address = source_address or self.source_address
        sys.audit("ftplib.connect", self, self.host, self.port)
        self.sock = dial(self.host, self.port, self.timeout, self.cancel, self.source_address)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        if not self.passiveserver:
            return super().ntransfercmd(cmd, rest)
        host, port = self.makepasv()
        conn = dial(host, port, self.timeout, self.cancel, self.source_address)
        try:
            if rest is not None:
                self.sendcmd(f"REST {rest}")
            reply = self.sendcmd(cmd)
            if reply[0] == "2":  # (a 200 before the 150, as ftplib allows)
                reply = self.getresp()
            if reply[0] != "1":
                raise ftplib.error_reply(reply)
        except BaseException:
            conn.close()
            raise
        return conn, ftplib.parse150(reply) if reply[:3] == "150" else None


class PlainFTP(Dialing):
    """The session a site opens: connections made by ``Dialing``, and its last data
    connection kept (``data_conn``): a stop shuts it down from another thread
    (``platform.cancel_watch``)."""

    data_conn: socket.socket | None = None

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = super().ntransfercmd(cmd, rest)
        self.data_conn = conn
        return conn, size


class PinnedFTP(ftplib.FTP_TLS, PlainFTP):
    """FTP_TLS over ``PlainFTP`` (its connections made by ``Dialing``: the method order is
    PinnedFTP, FTP_TLS, PlainFTP, Dialing, FTP), that checks the pinned certificate on the
    data connections too and keeps the last one, the TLS one, as ``data_conn``."""

    pin = ""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = super().ntransfercmd(cmd, rest)
        if isinstance(conn, ssl.SSLSocket):
            got = peer_fingerprint(conn)
            if got != self.pin:
                conn.close()
                raise PinMismatch(got)
        self.data_conn = conn
        return conn, size


def sockets_of(ftp: ftplib.FTP | None) -> list[Any]:
    """The control and the last data socket of a session (those it has)."""
    if ftp is None:
        return []
    return [s for s in (ftp.sock, getattr(ftp, "data_conn", None)) if s is not None]


def tls_context() -> ssl.SSLContext:
    """TLS 1.2 or later, no CA and no host name check: the pinned fingerprint is the trust."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # trust comes from the pinned fingerprint instead
    context.verify_mode = ssl.CERT_NONE
    return context


def open_ftp(
    w: Where,
    secret: str,
    fingerprint: str,
    opening: Callable[[ftplib.FTP | None], None] | None = None,
    cancel: threading.Event | None = None,
) -> ftplib.FTP:
    """A logged-in binary passive session: pinned FTPS with a ``fingerprint``, plain FTP
    without one. Errors are translated (``ftp_errors.translate``); nothing stays open.
    ``opening`` is given the session before it connects, and None once it is open or
    failed (a stop shuts its socket down meanwhile: ``platform.cancel_watch``); once
    ``cancel`` is set, a connection still being made is given up (``Dialing``)."""
    ftp: PlainFTP
    if fingerprint:
        ftp = PinnedFTP(context=tls_context(), timeout=w.timeout)
        ftp.pin = fingerprint
    else:
        ftp = PlainFTP(timeout=w.timeout)
    ftp.cancel = cancel
    if opening is not None:
        opening(ftp)
    try:
        with translate(w, CONNECT):
            ftp.connect(w.host, w.port)
            if isinstance(ftp, PinnedFTP):
                ftp.auth()
                got = peer_fingerprint(ftp.sock)
                if got != fingerprint:
                    raise PinMismatch(got)
            ftp.login(w.site, secret)
            if isinstance(ftp, PinnedFTP):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
            ftp.set_pasv(True)
    except BaseException:
        close_quietly(ftp)
        raise
    finally:
        if opening is not None:
            opening(None)
    return ftp


def close_quietly(ftp: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ftp.close()


def fetch_fingerprint(host: str, port: int, timeout: float = 10) -> str:
    """Fingerprint of the certificate the Siège presents now (for ``synchro trust``).

    Does not log in. The caller must have the administrator compare it with the one shown
    at the Siège before pinning it.
    """
    w = Where(host, port, "", timeout)
    ftp = ftplib.FTP_TLS(context=tls_context(), timeout=timeout)
    try:
        with translate(w, CONNECT):
            ftp.connect(host, port)
            ftp.auth()
            return peer_fingerprint(ftp.sock)
    finally:
        close_quietly(ftp)
