"""When the report email goes out (manual: *Envoi d'un email*, the EMAIL dialog, ARRETER).

:class:`ReportMailer` is the policy the engine calls after each run/round: send when
*Envoi d'un email* is on, retry a few times, at most one failure email per day per site, and
record the outcome (and the kind of a failure) in the report's details. It never raises and
never changes a run's state.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from synchro.config.model import Config, EmailSettings
from synchro.errors import ErrorKind
from synchro.i18n import tr
from synchro.mail.message import ReportMessage, build_report_message, main_record
from synchro.mail.smtp import MailSendError, send_message
from synchro.reports import ReportStore, RunRecord, State

log = logging.getLogger(__name__)


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
    time; ``sleep`` waits between attempts (tests pass a no-op; by default the wait ends
    at ``stop``). ``stop``: set when the program stops (a service stop, SIGTERM): the email
    being sent is given up and no other attempt is made — a service manager kills a
    service 5-20 s after asking, and a silent server would hold the stop 3 × 30 s."""

    def __init__(
        self,
        store: ReportStore,
        settings_provider: Callable[[], Config],
        now: Callable[[], dt.datetime],
        *,
        policy: MailPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.store = store
        self.settings_provider = settings_provider
        self.now = now
        self.policy = policy or MailPolicy()
        self.stop = threading.Event()
        self.sleep = sleep if sleep is not None else self.stop.wait
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
        main = main_record(records)
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
            self._note(records, "failed", text, error.kind)
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
                if self.stop.is_set():
                    break  # the program stops: the last error stands
            try:
                send_message(
                    settings,
                    message,
                    lang=lang,
                    now=now,
                    ssl_context=self.ssl_context,
                    stop=self.stop,
                )
                return None
            except MailSendError as exc:
                error = exc
                if exc.code in ("config", "stopped"):
                    break  # trying again cannot help, or must not
        return error

    def _note(
        self,
        records: Sequence[RunRecord],
        status: str,
        message: str,
        kind: ErrorKind | None = None,
    ) -> None:
        if not records:
            return
        main = main_record(records)
        entry = {"status": status, "at": self.now().isoformat(), "message": message}
        if kind is not None:  # what sort of trouble kept the email from going out
            entry["kind"] = str(kind)
        try:
            self.store.merge_details(main.id, {"email": entry})
        except Exception:
            log.exception("report email: cannot record the email status of row %s", main.id)
