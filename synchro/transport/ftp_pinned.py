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
from collections.abc import Callable
from typing import Any

from synchro.transport.ftp_errors import CONNECT, PinMismatch, Where, translate
from synchro.transport.tls import fingerprint_of


def peer_fingerprint(sock: Any) -> str:
    """The fingerprint of the certificate the other end of ``sock`` presented."""
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    return fingerprint_of(der or b"")


class PlainFTP(ftplib.FTP):
    """ftplib's FTP that keeps its last data connection (``data_conn``): a stop shuts it
    down from another thread (``platform.cancel_watch``)."""

    data_conn: socket.socket | None = None

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = super().ntransfercmd(cmd, rest)
        self.data_conn = conn
        return conn, size


class PinnedFTP(PlainFTP, ftplib.FTP_TLS):
    """FTP_TLS that checks the pinned certificate on the data connections too, and keeps
    the last one (``data_conn``) as ``PlainFTP`` does (its ``ntransfercmd`` runs
    FTP_TLS's: the connection kept is the TLS one)."""

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
) -> ftplib.FTP:
    """A logged-in binary passive session: pinned FTPS with a ``fingerprint``, plain FTP
    without one. Errors are translated (``ftp_errors.translate``); nothing stays open.
    ``opening`` is given the session before it connects, and None once it is open or
    failed (a stop shuts its socket down meanwhile: ``platform.cancel_watch``)."""
    ftp: ftplib.FTP
    if fingerprint:
        ftp = PinnedFTP(context=tls_context(), timeout=w.timeout)
        ftp.pin = fingerprint
    else:
        ftp = PlainFTP(timeout=w.timeout)
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
