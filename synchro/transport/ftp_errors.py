"""Translate ftplib, socket and ssl errors into Synchro's, at the client's boundary.

    ConnectionTestError(code, message)   reaching or logging in to the Siège failed (its
                                        kind: network, tls, auth or config)
        dns          the Siège's name does not resolve
        refused      nothing listens there (or the network is unreachable)
        timeout      no answer in time (firewall dropping packets, wrong address)
        tls          the TLS negotiation failed, or FTPS is required/missing
        certificate  the certificate is not the pinned one
        auth         wrong site code or secret; or this address is banned for a while
        quota        the file is larger than the Siège accepts
        hq-disk      the Siège's disk has no room for the file (retried: room may be made)
        protocol     any other unexpected answer
    TransportError(message)             a transfer was cut or failed after login

``action`` (``doing("send", name=X)``: « envoi de X ») says what was being done; during the
``"connexion"`` step every failure is a ``ConnectionTestError``.
"""

from __future__ import annotations

import contextlib
import errno
import ftplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from synchro.errors import ConnectionTestError, Say, SynchroError, TransportError

CONNECT: Say = ("engine.ftp.doing.connect", {})  # what is being done (``doing``)


@dataclass(frozen=True)
class Where:
    host: str
    port: int
    site: str
    timeout: float

    @property
    def hp(self) -> str:
        return f"{self.host}:{self.port}"


class PinMismatch(Exception):
    """The server's certificate is not the pinned one (``got`` = its fingerprint)."""

    def __init__(self, got: str) -> None:
        super().__init__(got)
        self.got = got


@contextlib.contextmanager
def translate(w: Where, action: Say) -> Iterator[None]:
    """Re-raise library errors from the block as ConnectionTestError / TransportError."""
    try:
        yield
    except SynchroError:
        raise
    except PinMismatch as exc:
        raise _said("certificate", "pin", hp=w.hp, got=exc.got[:16]) from exc
    except ftplib.Error as exc:
        raise _ftp_reply(w, action, str(exc).strip()) from exc
    except EOFError as exc:
        raise _cut(w, action, [("engine.ftp.closed", {})]) from exc
    except UnicodeDecodeError as exc:  # ftplib reads replies as UTF-8: the link was cut
        # inside a character (between the two bytes of the banner's « è »), a cut like any other
        raise _cut(w, action, [("engine.ftp.closed", {})]) from exc
    except OSError as exc:
        raise _os_error(w, action, exc) from exc


def reply_after_cut(ftp: ftplib.FTP, wait_s: float = 2.0) -> str | None:
    """The reply the Siège sent when it ended a transfer itself (``452``: its disk full),
    read after the data connection broke; None when none comes within ``wait_s`` (the
    network was cut)."""
    sock = ftp.sock
    if sock is None:
        return None
    before = sock.gettimeout()
    try:
        sock.settimeout(wait_s)
        return ftp.getresp()
    except ftplib.Error as exc:
        return str(exc).strip()
    except (OSError, EOFError):
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(before)


def _said(code: str, key: str, **values: object) -> ConnectionTestError:
    """A ``ConnectionTestError`` whose words are ``engine.ftp.<key>`` (French and English)."""
    return ConnectionTestError(code, say=(f"engine.ftp.{key}", values))


def _ftp_reply(w: Where, action: Say, reply: str) -> TransportError:
    code = reply[:3]
    if code == "530":
        return _said("auth", "auth", hp=w.hp, site=w.site, reply=reply)
    if code == "421" and "bloqu" in reply.lower():
        return _said("auth", "banned", hp=w.hp)
    if "SSL/TLS required" in reply:
        return _said("tls", "tls_required", hp=w.hp)
    if code == "552":
        return _said("quota", "quota", hp=w.hp, reply=reply)
    if code == "452":
        return _said("hq-disk", "hq_disk", hp=w.hp, reply=reply)
    if action == CONNECT and code in ("500", "502", "504", "534") and "AUTH" in reply.upper():
        return _said("tls", "no_ftps", hp=w.hp, reply=reply)
    if code.startswith("4") and action != CONNECT:
        return _cut(w, action, reply)
    return _said("protocol", "protocol", hp=w.hp, action=[action], reply=reply)


def _os_error(w: Where, action: Say, exc: OSError) -> TransportError:
    if isinstance(exc, socket.gaierror):
        return _said("dns", "dns", host=w.host)
    if isinstance(exc, ConnectionRefusedError):
        return _said("refused", "refused", hp=w.hp)
    if isinstance(exc, TimeoutError):
        return _said("timeout", "timeout", hp=w.hp, timeout=f"{w.timeout:g}", action=[action])
    if isinstance(exc, ssl.SSLError) and action == CONNECT:
        return _said("tls", "tls", hp=w.hp, reason=str(exc.reason or exc))
    if action == CONNECT:
        unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET)
        code = "refused" if unreachable else "protocol"
        return _said(code, "unreachable", hp=w.hp, reason=str(exc.strerror or exc))
    return _cut(w, action, exc.strerror or str(exc))


def _cut(w: Where, action: Say, detail: str | list[Say]) -> TransportError:
    if action == CONNECT:
        return _said("protocol", "cut_connect", hp=w.hp, detail=detail)
    return TransportError(
        say=("engine.ftp.cut", {"hp": w.hp, "action": [action], "detail": detail})
    )


def doing(what: str, **values: object) -> Say:
    """What a session is doing, as words of the locales (``engine.ftp.doing.<what>``)."""
    return (f"engine.ftp.doing.{what}", values)
