"""Report emails (manual: *Envoi d'un email*, the EMAIL dialog, ARRETER).

Three layers:

- :func:`build_report_message` turns report rows into a :class:`ReportMessage` (subject,
  plain text, HTML) in the UI language: the Rapport table, why each failure happened in plain
  words and what to do, and at the Siège the missing and late establishments.
- :func:`send_message` / :func:`send_test` deliver it through yagmail 0.16 and translate every
  library error into :class:`MailSendError` (a :class:`~synchro.errors.MailError`) whose
  ``kind`` and text name the exact failure: ``dns`` (name not found), ``refused``,
  ``timeout``, ``tls``, ``auth``, ``sender``, ``recipients``, ``disconnected``, ``protocol``,
  ``network``, ``config``. The password never appears in these texts.
- :class:`ReportMailer` is the policy the engine calls after each run/round: send when
  *Envoi d'un email* is on, retry a few times, at most one failure email per day per site, and
  record the outcome in the report's details. It never raises and never changes a run's state.

yagmail facts (DESIGN §5) and how they are handled here: ``smtp_skip_login=True`` always (so
yagmail never reaches for keyring or an interactive prompt) and we log in ourselves with the
*Nom de connexion*, which yagmail would otherwise turn into ``name@gmail.com``; ``timeout=``
always; ``smtp_ssl=True`` for implicit TLS, STARTTLS unless ``smtp_starttls=False``. The MIME
message is built with the stdlib (a true text/HTML alternative: yagmail's builder puts the
HTML source in the text part and attaches any string that happens to be a file path), and sent
on yagmail's connection. TLS certificates are verified against the system's trust store
(smtplib alone would verify nothing); tests pass their own ``ssl_context``.

Contract with the engine for clear explanations: put a stable code in a row's
``details["error_kind"]`` (one of :data:`ERROR_KINDS`, or a ``ConnectionTestError.kind``);
without it the error text is matched against common words. An establishment that sent nothing
to the Siège's round is a ``site-in-round`` row in ``Echec`` with kind ``no-data``; one that
arrived after the reception time has ``details["late"] = True``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html as htmllib
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import Any

import yagmail

from synchro.config.model import Config, EmailSettings, MailSecurity, Role
from synchro.errors import MailError
from synchro.i18n import tr
from synchro.reports import (
    ReportStore,
    RunRecord,
    State,
    format_date,
    state_label,
    unapplied_text,
)

log = logging.getLogger(__name__)

COLUMNS = (
    "site",
    "started",
    "ended",
    "state",
    "rows_sent",
    "rows_received",
    "conflicts",
    "quarantined",
    "error",
)
ERROR_KINDS = (
    "interrupted",
    "certificate",
    "auth",
    "no-data",
    "package",
    "disk",
    "database",
    "hq-unreachable",
    "not-applied",
)
# Words looked for (lower case) in an error text without an error_kind, in this order.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "interrupted": ("interrompu", "interrupted"),
    "certificate": ("certificat", "certificate", "empreinte", "fingerprint"),
    "auth": (
        "authentification",
        "authentication",
        "identifiant",
        "login",
        "530 ",
        "secret incorrect",
        "bloque temporairement",
    ),
    "no-data": ("aucune donnée", "no data"),
    "package": ("paquet", "package", "checksum", "corrompu", "corrupt"),
    "disk": ("espace disque", "disque plein", "no space", "disk full"),
    "database": ("base de données", "database", "quarantaine", "quarantine", "contrainte"),
    "hq-unreachable": (
        "injoignable",
        "unreachable",
        "refuse la connexion",
        "ne répond pas",
        "refusée",
        "refused",
        "délai",
        "timed out",
        "timeout",
        "introuvable",
        "not known",
        "dns",
        "réseau",
        "network",
    ),
}
_CONNECTION_KINDS = {
    "dns": "hq-unreachable",
    "refused": "hq-unreachable",
    "timeout": "hq-unreachable",
    "protocol": "hq-unreachable",
    "tls": "certificate",
}
MAX_LISTED = 10  # quarantined rows / conflicts listed in an email; the rest is in the Rapport


# -- the message ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportMessage:
    subject: str
    text: str
    html: str


def error_kind(record: RunRecord) -> str:
    """The stable code explaining a failed or stopped row ("other" when nothing matches)."""
    if record.state is State.STOPPED:
        return "stopped"
    given = str(record.details.get("error_kind", ""))
    given = _CONNECTION_KINDS.get(given, given)
    if given in ERROR_KINDS:
        return given
    text = record.error.lower()
    for kind, words in _KEYWORDS.items():
        if any(word in text for word in words):
            return kind
    return "other"


def _main_record(records: Sequence[RunRecord]) -> RunRecord:
    if not records:
        raise ValueError("a report message needs at least one report row")
    return next((r for r in records if r.kind in ("run", "round")), records[0])


def _cells(record: RunRecord, lang: str) -> list[str]:
    return [
        record.site,
        format_date(record.started),
        format_date(record.ended),
        state_label(record.state, lang),
        str(record.rows_sent),
        str(record.rows_received),
        str(record.conflicts),
        str(record.quarantined),
        record.error,
    ]


def _esc(text: str) -> str:
    """HTML-escape element text (quotes stay readable: no attribute is ever built from it)."""
    return htmllib.escape(text, quote=False)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    style = 'style="border:1px solid #999;padding:3px 6px;text-align:left"'
    head = "".join(f"<th {style}>{_esc(c)}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(f"<td {style}>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">'
        f"<tr>{head}</tr>{body}</table>"
    )


def _listed(details: dict[str, Any], key: str, lang: str = "fr") -> list[str]:
    """Short lines for the quarantined rows or conflicts kept in a row's details."""
    items = details.get(key)
    if not isinstance(items, list):
        return []
    lines = []
    for item in items:
        if key == "quarantined" and isinstance(item, dict) and "tbl" in item:
            table, row_key, error = item.get("tbl"), item.get("key_json"), item.get("error")
            lines.append(tr("mail.quarantined_line", lang, table=table, key=row_key, error=error))
        elif isinstance(item, dict):
            lines.append(", ".join(f"{k}: {v}" for k, v in item.items()))
        else:
            lines.append(str(item))
    return lines


def _intro(main: RunRecord, members: list[RunRecord], site: str, mode: str, lang: str) -> str:
    started = format_date(main.started)
    state = state_label(main.state, lang)
    if main.state is State.RUNNING:
        return tr("mail.intro.running", lang, site=site, mode=mode, started=started)
    if main.kind == "round":
        ok = sum(1 for r in members if r.state is State.OK)
        total = len(members)
        return tr(
            "mail.intro.round", lang, site=site, started=started, state=state, ok=ok, total=total
        )
    return tr("mail.intro.run", lang, site=site, mode=mode, started=started, state=state)


def _why(rows: list[RunRecord], lang: str) -> list[str]:
    """For each failed or stopped row: the reason in plain words, the error, what to do."""
    lines = []
    for rec in rows:
        if rec.state not in (State.FAILED, State.STOPPED):
            continue
        kind = error_kind(rec)
        error = "" if kind == "no-data" else rec.error.strip().rstrip(".")
        counts = rec.details.get("not_applied")
        if kind == "not-applied" and isinstance(counts, dict):
            error = unapplied_text(counts, lang)  # the words of the UI language
        lines.append(
            tr(
                "mail.why_line",
                lang,
                site=rec.site,
                reason=tr(f"mail.reason.{kind}", lang),
                error=tr("mail.error_part", lang, error=error) if error else "",
                advice=tr(f"mail.advice.{kind}", lang),
            )
        )
    return lines


def _blocks(main: RunRecord, members: list[RunRecord], lang: str) -> list[tuple[str, list[str]]]:
    """The paragraphs after the table, as (title, lines); an empty title is a plain line."""
    blocks: list[tuple[str, list[str]]] = []
    missing = [r.site for r in members if r.state is State.FAILED and error_kind(r) == "no-data"]
    listed = main.details.get("missing")  # the Siège's round may list them on its own row
    if isinstance(listed, list):
        missing += [str(code) for code in listed if str(code) not in missing]
    late = [r.site for r in members if r.details.get("late") or r.state is State.RUNNING]
    if missing:
        blocks.append(("", [tr("mail.missing", lang, sites=", ".join(missing))]))
    if late:
        blocks.append(("", [tr("mail.late", lang, sites=", ".join(late))]))
    if main.details.get("controle"):  # the per-round proof (engine.ack)
        blocks.append(("", [tr("mail.controle", lang, text=main.details["controle"])]))
    # A round's own row is explained when it was stopped or when no establishment row
    # explains its failure already (its error then only summarises theirs).
    troubled = any(r.state in (State.FAILED, State.STOPPED) for r in members)
    own = main.state is State.STOPPED or not troubled
    explained = [main, *members] if own else members
    why = _why(explained, lang)
    if why:
        blocks.append((tr("mail.why", lang), why))
    for key in ("quarantined", "conflicts", "security"):
        lines = [
            tr("mail.site_line", lang, site=r.site, text=line)
            for r in [main, *members]
            for line in _listed(r.details, key, lang)
        ]
        if lines:
            extra = len(lines) - MAX_LISTED
            lines = lines[:MAX_LISTED] + ([tr("mail.more", lang, n=extra)] if extra > 0 else [])
            blocks.append((tr(f"mail.title.{key}", lang), lines))
    return blocks


def build_report_message(
    records: Sequence[RunRecord], *, site: str, role: Role, lang: str, now: dt.datetime
) -> ReportMessage:
    """The email for one run (one ``run`` row) or one round (its ``round`` row and its
    ``site-in-round`` rows), in ``lang``: subject with mode, site, state and date; the
    Rapport table; missing/late establishments; why each failure happened and what to do."""
    main = _main_record(records)
    members = [r for r in records if r.kind == "site-in-round"] if main.kind == "round" else []
    mode = tr(f"mail.mode.{Role(role).value}", lang)
    state = state_label(main.state, lang)
    date = format_date(main.started)
    subject = tr("mail.subject", lang, mode=mode, site=site, state=state, date=date)
    intro = _intro(main, members, site, mode, lang)
    header = [tr(f"mail.column.{name}", lang) for name in COLUMNS]
    rows = [_cells(r, lang) for r in (members or [main])]
    footer = tr("mail.footer", lang, date=format_date(now))

    text_parts = [intro, "", _text_table(header, rows)]
    html_parts = [f"<p>{_esc(intro)}</p>", _html_table(header, rows)]
    for title, lines in _blocks(main, members, lang):
        if title:
            text_parts += ["", tr("mail.block_title", lang, title=title)]
            text_parts += [f"- {line}" for line in lines]
            items = "".join(f"<li>{_esc(line)}</li>" for line in lines)
            html_parts.append(f"<h3>{_esc(title)}</h3><ul>{items}</ul>")
        else:
            text_parts += ["", *lines]
            html_parts += [f"<p>{_esc(line)}</p>" for line in lines]
    text_parts += ["", footer]
    html_parts.append(f'<p style="color:#666">{_esc(footer)}</p>')
    body = "\n".join(html_parts)
    page = f'<html><body style="font-family:sans-serif">{body}</body></html>'
    return ReportMessage(subject=subject, text="\n".join(text_parts) + "\n", html=page)


# -- sending ----------------------------------------------------------------------------


class MailSendError(MailError):
    """Why an email could not be sent. ``kind``: dns, refused, timeout, tls, auth, sender,
    recipients, disconnected, protocol, network, config."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


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


def _failure(kind: str, exc: BaseException | None, settings: EmailSettings, lang: str) -> str:
    detail = _detail(exc) if exc is not None else ""
    text = tr(
        f"mail.error.{kind}",
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


def _client(settings: EmailSettings, context: ssl.SSLContext) -> Any:
    """A yagmail client that never logs in by itself (see the module docstring)."""
    implicit = settings.security is MailSecurity.SSL
    extra: dict[str, Any] = {"context": context} if implicit else {}
    starttls: bool | dict[str, Any] = (
        {"context": context} if settings.security is MailSecurity.STARTTLS else False
    )
    client = yagmail.SMTP(
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
    client.set_logging(None)  # yagmail would add its own stderr handler (None in a .exe)
    return client


def send_message(
    settings: EmailSettings,
    message: ReportMessage,
    *,
    lang: str = "fr",
    now: dt.datetime | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send ``message`` to every recipient, or raise :class:`MailSendError`.

    ``ssl_context`` replaces the default (system trust store, host name checked); tests
    pass one that trusts their self-signed certificate."""
    _check(settings, lang)
    context = ssl_context or ssl.create_default_context()
    mime = _mime(settings, message, now or dt.datetime.now().astimezone())
    client = None
    try:
        client = _client(settings, context)
        client.login()  # connects (and STARTTLS); skip_login: no password lookup
        if settings.login:
            client.smtp.login(settings.login, settings.password)
        refused = client.smtp.send_message(
            mime, from_addr=settings.sender, to_addrs=list(settings.recipients)
        )
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
    except (OSError, smtplib.SMTPException, UnicodeError) as exc:
        kind = _classify(exc)
        text = _failure(kind, exc, settings, lang)
        raise MailSendError(kind.removesuffix("_unsupported"), text) from exc
    finally:
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.close()


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
        html=f"<html><body><p>{_esc(body)}</p></body></html>",
    )
    send_message(settings, message, lang=lang, now=when, ssl_context=ssl_context)
    recipients = ", ".join(settings.recipients)
    return tr("mail.test.sent", lang, recipients=recipients, server=settings.server)


# -- policy -----------------------------------------------------------------------------


class MailOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # every attempt failed; the reason is in the row's details
    THROTTLED = "throttled"  # a failure email already went out today for this site
    DISABLED = "disabled"  # Envoi d'un email is off
    SKIPPED = "skipped"  # nothing to report (still running)


@dataclass(frozen=True)
class MailPolicy:
    """How hard to try, and how often a failing site may email."""

    attempts: int = 3
    retry_delay_s: float = 10.0
    one_failure_email_per_day: bool = True

    def failure_allowed(self, store: ReportStore, site: str, now: dt.datetime) -> bool:
        """A failure email goes out unless one already went out today for this site and
        no success email came after it (a site that fails every day: one email a day)."""
        if not self.one_failure_email_per_day:
            return True
        last = store.last_mail(site, "failure")
        if last is None or last.date() != now.date():
            return True
        last_ok = store.last_mail(site, "ok")
        return last_ok is not None and last_ok > last


class ReportMailer:
    """Sends the report email after each run or round, from the engine thread.

    ``settings_provider`` returns the current :class:`~synchro.config.model.Config` (read at
    each call, so a change in the EMAIL dialog applies to the next run); ``now`` gives the
    time; ``sleep`` waits between attempts (tests pass a no-op)."""

    def __init__(
        self,
        store: ReportStore,
        settings_provider: Callable[[], Config],
        now: Callable[[], dt.datetime],
        *,
        policy: MailPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.store = store
        self.settings_provider = settings_provider
        self.now = now
        self.policy = policy or MailPolicy()
        self.sleep = sleep
        self.ssl_context = ssl_context

    def after_run(self, records: Sequence[RunRecord], state: State) -> MailOutcome:
        """Email the report of a finished run/round (``records`` as in
        :func:`build_report_message`). Never raises: a mail problem is logged and written
        in the main row's ``details["email"]``; the row's state is left as it is."""
        try:
            return self._after_run(records, State(state))
        except Exception as exc:  # a report email must never break the synchronisation
            log.exception("report email: unexpected error")
            self._note(records, "failed", tr("mail.not_sent", "fr", reason=exc))
            return MailOutcome.FAILED

    def _after_run(self, records: Sequence[RunRecord], state: State) -> MailOutcome:
        config = self.settings_provider()
        lang = config.language
        if not config.send_email:
            return MailOutcome.DISABLED
        if state is State.RUNNING or not records:
            return MailOutcome.SKIPPED
        main = _main_record(records)
        now = self.now()
        if state is State.FAILED and not self.policy.failure_allowed(self.store, main.site, now):
            reason = tr("mail.throttled", lang, site=main.site)
            self._note(records, "throttled", tr("mail.not_sent", lang, reason=reason))
            log.info("report email for %s not sent: %s", main.site, reason)
            return MailOutcome.THROTTLED
        message = build_report_message(
            records, site=config.site or main.site, role=config.role, lang=lang, now=now
        )
        error = self._send(config.email, message, lang, now)
        if error is not None:
            text = tr("mail.not_sent", lang, reason=error)
            self._note(records, "failed", text)
            log.warning("report email for %s: %s", main.site, text)
            return MailOutcome.FAILED
        category = {State.FAILED: "failure", State.OK: "ok"}.get(state, "stopped")
        self.store.record_mail(main.site, category, now)
        self._note(records, "sent", "")
        log.info(
            "report email for %s sent to %d recipient(s)", main.site, len(config.email.recipients)
        )
        return MailOutcome.SENT

    def _send(
        self, settings: EmailSettings, message: ReportMessage, lang: str, now: dt.datetime
    ) -> MailSendError | None:
        """Try ``policy.attempts`` times; the last error, or None once sent."""
        error: MailSendError | None = None
        for attempt in range(max(1, self.policy.attempts)):
            if attempt:
                self.sleep(self.policy.retry_delay_s)
            try:
                send_message(settings, message, lang=lang, now=now, ssl_context=self.ssl_context)
                return None
            except MailSendError as exc:
                error = exc
                if exc.kind == "config":
                    break  # trying again cannot help
        return error

    def _note(self, records: Sequence[RunRecord], status: str, message: str) -> None:
        if not records:
            return
        main = _main_record(records)
        entry = {"status": status, "at": self.now().isoformat(), "message": message}
        try:
            self.store.merge_details(main.id, {"email": entry})
        except Exception:
            log.exception("report email: cannot record the email status of row %s", main.id)
