"""Sending an email through yagmail 0.16 (the report, and the EMAIL dialog's Test button).

:func:`send_message` / :func:`send_test` translate every library error into
:class:`MailSendError` (a :class:`~synchro.errors.MailError`): its ``code`` and text name the
exact failure (``dns``, ``refused``, ``timeout``, ``tls``, ``auth``, ``sender``,
``recipients``, ``disconnected``, ``protocol``, ``network``, ``config``), its ``kind`` the
sort of trouble. The password never appears in these texts.

yagmail facts (DESIGN §5) and how they are handled here: ``smtp_skip_login=True`` always (so
yagmail never reaches for keyring or an interactive prompt) and we log in ourselves with the
*Nom de connexion*, which yagmail would otherwise turn into ``name@gmail.com``; ``timeout=``
always; ``smtp_ssl=True`` for implicit TLS, STARTTLS unless ``smtp_starttls=False``. The MIME
message is built with the stdlib (a true text/HTML alternative: yagmail's builder puts the
HTML source in the text part and attaches any string that happens to be a file path), and sent
on yagmail's connection. TLS certificates are verified against the system's trust store
(smtplib alone would verify nothing); tests pass their own ``ssl_context``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import yagmail

from synchro.config.model import EmailSettings, MailSecurity
from synchro.errors import ErrorKind, MailError
from synchro.i18n import tr
from synchro.mail.message import ReportMessage, escape
from synchro.platform.cancel_watch import CancelWatch, dial
from synchro.reports import format_date

# The exact code of a failure -> its kind (the words of the code are ``mail.error.<code>``).
CODE_KINDS = {
    "dns": ErrorKind.NETWORK,
    "refused": ErrorKind.NETWORK,
    "timeout": ErrorKind.NETWORK,
    "disconnected": ErrorKind.NETWORK,
    "network": ErrorKind.NETWORK,
    "protocol": ErrorKind.NETWORK,
    "tls": ErrorKind.TLS,
    "auth": ErrorKind.AUTH,
    "sender": ErrorKind.CONFIG,
    "recipients": ErrorKind.CONFIG,
    "config": ErrorKind.CONFIG,
    "stopped": ErrorKind.STOPPED,
}


class MailSendError(MailError):
    """Why an email could not be sent. ``code``: dns, refused, timeout, tls, auth, sender,
    recipients, disconnected, protocol, network, config, stopped (the program stopping cut
    it); ``kind`` its ``ErrorKind``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message, kind=CODE_KINDS.get(code, ErrorKind.NETWORK))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _classify(exc: BaseException) -> str:
    chain = _chain(exc)
    for err in chain:
        if isinstance(err, smtplib.SMTPAuthenticationError):
            return "auth"
        if isinstance(err, smtplib.SMTPNotSupportedError):
            return "tls" if "STARTTLS" in str(err) else "auth_unsupported"
        if isinstance(err, smtplib.SMTPSenderRefused):
            return "sender"
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            return "recipients"
    if any(isinstance(err, TimeoutError) for err in chain):
        return "timeout"
    for err in chain:
        if isinstance(err, ssl.SSLError | ssl.CertificateError):
            return "tls"
        if isinstance(err, socket.gaierror | UnicodeError):
            return "dns"
        if isinstance(err, ConnectionRefusedError):
            return "refused"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "disconnected"
    if isinstance(exc, smtplib.SMTPException):
        return "protocol"
    return "network"


def _detail(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return ", ".join(
            f"{addr} ({code} {msg.decode(errors='replace')})"
            for addr, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        message = exc.smtp_error
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__


def _mask(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _failure(code: str, exc: BaseException | None, settings: EmailSettings, lang: str) -> str:
    detail = _detail(exc) if exc is not None else ""
    text = tr(
        f"mail.error.{code}",
        lang,
        server=settings.server,
        port=settings.port,
        timeout=settings.timeout_s,
        login=settings.login,
        sender=settings.sender,
        detail=detail,
    )
    return _mask(text, settings.password)


def _check(settings: EmailSettings, lang: str) -> None:
    for field in ("server", "sender", "recipients"):
        if not getattr(settings, field):
            detail = tr(f"mail.error.config.{field}", lang)
            raise MailSendError("config", tr("mail.error.config", lang, detail=detail))


def _mime(settings: EmailSettings, message: ReportMessage, now: dt.datetime) -> EmailMessage:
    mime = EmailMessage()
    mime["Subject"] = message.subject
    mime["From"] = settings.sender
    mime["To"] = ", ".join(settings.recipients)
    mime["Date"] = formatdate(now.timestamp(), localtime=True)
    domain = settings.sender.rpartition("@")[2] or None
    mime["Message-ID"] = make_msgid(domain=domain)
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


def _client(
    settings: EmailSettings,
    context: ssl.SSLContext,
    sockets: list[Any],
    stop: threading.Event | None,
) -> Any:
    """A yagmail client that never logs in by itself (see the module docstring). The
    sockets its connection opens go into ``sockets`` (for a stop to shut them down); a
    connection still being made when ``stop`` is set is given up."""
    implicit = settings.security is MailSecurity.SSL
    extra: dict[str, Any] = {"context": context} if implicit else {}
    starttls: bool | dict[str, Any] = (
        {"context": context} if settings.security is MailSecurity.STARTTLS else False
    )
    client = _Client(
        user=settings.sender,
        host=settings.server,
        port=settings.port,
        smtp_ssl=implicit,
        smtp_starttls=starttls,
        smtp_skip_login=True,
        soft_email_validation=False,
        timeout=settings.timeout_s,
        **extra,
    )
    client.sockets = sockets
    client.stop = stop
    client.set_logging(None)  # yagmail would add its own stderr handler (None in a .exe)
    return client


class _Client(yagmail.SMTP):  # type: ignore[misc]  # (yagmail has no type stubs)
    """yagmail's client whose smtplib connection records each socket it opens, as soon as
    it is connected (smtplib's ``_get_socket`` hook, under ``SMTP_SSL``'s TLS handshake),
    as a descriptor of its own that ``send_message`` closes: a server that accepts and
    then stays silent, or never ends the handshake, can be cut. The connection itself is
    made by ``cancel_watch.dial``: one that no server answers is given up once ``stop``
    is set."""

    sockets: list[Any]
    stop: threading.Event | None = None

    @property
    def connection(self) -> Any:
        sockets, stop = self.sockets, self.stop

        class Recording(smtplib.SMTP):
            def _get_socket(self, host: str, port: int, timeout: float) -> Any:
                sock = dial(host, port, timeout, stop, self.source_address)
                # a descriptor of its own: SMTP_SSL's wrapping detaches ``sock``'s
                sockets.append(socket.socket(fileno=os.dup(sock.fileno())))
                return sock

        base = super().connection
        if base is smtplib.SMTP:
            return Recording
        return type("RecordingSSL", (base, Recording), {})  # SMTP_SSL's handshake on top


def send_message(
    settings: EmailSettings,
    message: ReportMessage,
    *,
    lang: str = "fr",
    now: dt.datetime | None = None,
    ssl_context: ssl.SSLContext | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Send ``message`` to every recipient, or raise :class:`MailSendError`.

    ``ssl_context`` replaces the default (system trust store, host name checked); tests
    pass one that trusts their self-signed certificate. ``stop``: once set (the program
    stops), the connection is shut down and the sending given up (code ``stopped``) rather
    than waiting for a silent server up to the timeout."""
    _check(settings, lang)
    context = ssl_context or ssl.create_default_context()
    mime = _mime(settings, message, now or dt.datetime.now().astimezone())
    client = None
    sockets: list[Any] = []
    watch = CancelWatch(stop, lambda: list(sockets)).start() if stop is not None else None
    try:
        client = _client(settings, context, sockets, stop)
        client.login()  # connects (and STARTTLS); skip_login: no password lookup
        if settings.login:
            client.smtp.login(settings.login, settings.password)
        refused = client.smtp.send_message(
            mime, from_addr=settings.sender, to_addrs=list(settings.recipients)
        )
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
    except (OSError, smtplib.SMTPException, UnicodeError) as exc:
        code = "stopped" if stop is not None and stop.is_set() else _classify(exc)
        text = _failure(code, exc, settings, lang)
        raise MailSendError(code.removesuffix("_unsupported"), text) from exc
    finally:
        if watch is not None:
            watch.stop()
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.close()
        for sock in sockets:
            sock.close()


def send_test(
    settings: EmailSettings,
    lang: str = "fr",
    *,
    site: str = "",
    now: dt.datetime | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """The EMAIL dialog's Test button: send a short message; return what to show the user,
    or raise :class:`MailSendError` with the exact reason."""
    when = now or dt.datetime.now().astimezone()
    body = tr("mail.test.body", lang, site=site or settings.sender, date=format_date(when))
    message = ReportMessage(
        subject=tr("mail.test.subject", lang),
        text=body + "\n",
        html=f"<html><body><p>{escape(body)}</p></body></html>",
    )
    send_message(settings, message, lang=lang, now=when, ssl_context=ssl_context)
    recipients = ", ".join(settings.recipients)
    return tr("mail.test.sent", lang, recipients=recipients, server=settings.server)
