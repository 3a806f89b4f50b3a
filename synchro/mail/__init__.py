"""Report emails (manual: *Envoi d'un email*, the EMAIL dialog, ARRETER), in three parts:

- :mod:`synchro.mail.message`: report rows -> :class:`ReportMessage` (subject, text, HTML) in
  the UI language, each failure explained from the kind stored with its row;
- :mod:`synchro.mail.smtp`: delivery through yagmail; every library error becomes a
  :class:`MailSendError` with an exact ``code`` and an ``ErrorKind``;
- :mod:`synchro.mail.policy`: :class:`ReportMailer`, what the engine calls after each run or
  round (retries, one failure email a day per site, the outcome noted in the row).

Contract with the engine for clear explanations: a failed row carries its kind in
``details["error_kind"]`` (``ReportStore.finish(error=exc)`` puts it there); an establishment
that sent nothing to the Siège's round is a ``site-in-round`` row in ``Echec`` with kind
``no-data``; one that arrived after the reception time has ``details["late"] = True``.
"""

from synchro.mail.message import COLUMNS, MAX_LISTED, ReportMessage, build_report_message
from synchro.mail.policy import MailOutcome, MailPolicy, ReportMailer
from synchro.mail.smtp import MailSendError, send_message, send_test

__all__ = [
    "COLUMNS",
    "MAX_LISTED",
    "MailOutcome",
    "MailPolicy",
    "MailSendError",
    "ReportMailer",
    "ReportMessage",
    "build_report_message",
    "send_message",
    "send_test",
]
