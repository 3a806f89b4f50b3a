"""Real SMTP servers on loopback for the mail tests (aiosmtpd), and their certificates.

- :func:`smtp_server` runs an aiosmtpd server on 127.0.0.1, port chosen by the system: plain,
  STARTTLS (``tls_context``), implicit TLS (``ssl_context``), with or without AUTH.
- :func:`self_signed` makes a throw-away certificate for 127.0.0.1 with ``cryptography``;
  :func:`client_context` is an SSL context that trusts exactly that certificate (what the
  code under test receives as ``ssl_context``).
- :func:`closed_port` (nothing listens: connection refused) and :func:`stalled_server` (the
  TCP connection is accepted by the kernel, but no greeting ever comes: timeout);
  :func:`unanswered_port` (no answer to the connection at all, as behind a firewall that
  drops packets: the connection itself waits).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class Inbox:
    """aiosmtpd handler keeping every message it accepts; ``refused`` recipients get a 550."""

    messages: list[Received] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw)
        )
        return "250 OK"


class LoopbackController(Controller):
    """aiosmtpd's Controller with ``port=0``: learn the real port before the start-up probe
    (the stock one would probe port 0)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def password_authenticator(login: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting exactly this login and password."""

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == login
            and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


@contextmanager
def smtp_server(
    *,
    tls_context: ssl.SSLContext | None = None,
    ssl_context: ssl.SSLContext | None = None,
    authenticator: Any = None,
    auth_require_tls: bool = True,
) -> Iterator[tuple[Inbox, int]]:
    """A running server: ``tls_context`` offers STARTTLS (and requires it), ``ssl_context``
    is TLS from the first byte (port-465 style). Yields (inbox, port); stops on exit."""
    inbox = Inbox()
    kwargs: dict[str, Any] = {"auth_require_tls": auth_require_tls}
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=True)
    if authenticator is not None:
        kwargs.update(authenticator=authenticator)
    controller = LoopbackController(inbox, hostname=HOST, port=0, ssl_context=ssl_context, **kwargs)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, valid today."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synchro test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def server_context(certificate: Certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


def client_context(certificate: Certificate) -> ssl.SSLContext:
    """Verifies the server (host name included) against this one certificate only."""
    return ssl.create_default_context(cafile=str(certificate.cert))


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def stalled_server() -> Iterator[int]:
    """A port whose connections are accepted by the kernel (listen backlog) but never
    answered: an SMTP client waits for a greeting that never comes."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port on loopback whose connection requests are never answered, as a firewall that
    drops packets leaves them: its listen queue (backlog 0) holds one connection nobody
    accepts, and Linux then drops every new SYN, so ``connect`` waits up to its timeout.
    Checked before use: a connection tried there must time out."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError("unanswered_port relies on Linux dropping SYNs to a full queue")
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(0)
        port: int = sock.getsockname()[1]
        with socket.create_connection((HOST, port), timeout=5):
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect((HOST, port))
            except TimeoutError:
                pass
            else:
                raise RuntimeError(f"port {port} answered: the queue was not full")
            finally:
                probe.close()
            yield port
