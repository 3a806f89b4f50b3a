"""The Email dialog (manual §2.1.1.3): its five fields plus port, security and a Test button.

Ok checks the fields (every bad one named), then hands the settings to ``on_ok`` (the
General window saves them, the wizard keeps them); Annuler or ESC closes without a change.
Changing the security proposes its usual port (465 SSL, 587 STARTTLS, 25 none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import EmailSettings, MailSecurity
from synchro.gui.base import (
    KEY_ENTER,
    KEY_ESCAPE,
    Controller,
    Shell,
    Values,
    bind_keys,
    mark_problems,
)
from synchro.gui.fields import Form, FormError
from synchro.gui.ports import Probe
from synchro.i18n import tr

RECIPIENT = "-RECIPIENT-"
SENDER = "-SENDER-"
SERVER = "-SERVER-"
PORT = "-PORT-"
SECURITY = "-SECURITY-"
LOGIN = "-LOGIN-"
PASSWORD = "-PASSWORD-"
TEST = "-TEST-"
TEST_RESULT = "-TEST-RESULT-"
OK = "-OK-"
CANCEL = "-CANCEL-"
MESSAGE = "-MESSAGE-"
INPUTS = [RECIPIENT, SENDER, SERVER, PORT, LOGIN, PASSWORD]
DEFAULT_PORTS = {MailSecurity.SSL: 465, MailSecurity.STARTTLS: 587, MailSecurity.NONE: 25}


def security_names(lang: str) -> list[str]:
    return [tr(f"gui.email.sec.{s.value}", lang) for s in MailSecurity]


def security_of(name: str, lang: str) -> MailSecurity:
    for sec in MailSecurity:
        if tr(f"gui.email.sec.{sec.value}", lang) == name:
            return sec
    return MailSecurity.STARTTLS


def build_email(settings: EmailSettings, lang: str) -> list[list[Any]]:
    def row(label: str, key: str, value: str, **kw: Any) -> list[Any]:
        return [
            sg.Text(tr(label, lang), size=(28, 1), key=f"-LABEL{key}"),
            sg.Input(value, key=key, size=(34, 1), **kw),
        ]

    return [
        row("gui.email.recipient", RECIPIENT, ", ".join(settings.recipients)),
        row("gui.email.sender", SENDER, settings.sender),
        row("gui.email.server", SERVER, settings.server),
        [
            sg.Text(tr("gui.email.port", lang), size=(28, 1), key=f"-LABEL{PORT}"),
            sg.Input(str(settings.port), key=PORT, size=(7, 1)),
            sg.Text(tr("gui.email.security", lang), key=f"-LABEL{SECURITY}"),
            sg.Combo(
                security_names(lang),
                default_value=tr(f"gui.email.sec.{settings.security.value}", lang),
                key=SECURITY,
                readonly=True,
                enable_events=True,
                size=(10, 1),
            ),
        ],
        row("gui.email.login", LOGIN, settings.login),
        row("gui.email.password", PASSWORD, settings.password, password_char="*"),
        [sg.Text("", key=MESSAGE, size=(64, 3))],
        [
            sg.Button(tr("gui.test", lang), key=TEST, size=(10, 1)),
            sg.Push(),
            sg.Button(tr("gui.ok", lang), key=OK, size=(10, 1)),
            sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(10, 1)),
        ],
    ]


def make_email_window(settings: EmailSettings, lang: str) -> sg.Window:
    window = sg.Window(tr("gui.email.title", lang), build_email(settings, lang), finalize=True)
    bind_keys(window)
    return window


def read_email(values: Values, base: EmailSettings, lang: str) -> tuple[EmailSettings, Form]:
    """The settings typed in the dialog and the form holding any problems."""
    form = Form(lang)
    recipients = form.emails(RECIPIENT, "gui.email.recipient", values[RECIPIENT], required=True)
    sender = form.email(SENDER, "gui.email.sender", values[SENDER], required=True)
    server = form.host(SERVER, "gui.email.server", values[SERVER], required=True)
    port = form.integer(PORT, "gui.email.port", values[PORT], 1, 65535)
    settings = EmailSettings(
        recipients=recipients,
        sender=sender,
        server=server,
        port=port,
        security=security_of(str(values[SECURITY]), lang),
        login=str(values[LOGIN]).strip(),
        password=str(values[PASSWORD]),
        timeout_s=base.timeout_s,
    )
    return settings, form


def is_blank(values: Values) -> bool:
    return not any(str(values[k]).strip() for k in (RECIPIENT, SENDER, SERVER, LOGIN, PASSWORD))


class EmailController(Controller):
    def __init__(
        self,
        window: sg.Window,
        shell: Shell,
        base: EmailSettings,
        on_ok: Callable[[EmailSettings], str],
        lang: str | None = None,
    ) -> None:
        super().__init__(window, shell)
        self.base = base
        self.on_ok = on_ok
        self.own_lang = lang

    @property
    def lang(self) -> str:
        return self.own_lang or self.shell.lang

    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CANCEL, KEY_ESCAPE):
            self.close()
        elif values is None:
            return
        elif event == SECURITY:
            security = security_of(str(values[SECURITY]), self.lang)
            self.window[PORT].update(str(DEFAULT_PORTS[security]))
        elif event in (OK, KEY_ENTER):
            self.ok(values)
        elif event == TEST:
            self.test(values)
        elif event == TEST_RESULT:
            result: Probe = values[event]
            self.message(result.text, error=not result.ok)

    def checked(self, values: Values) -> EmailSettings:
        settings, form = read_email(values, self.base, self.lang)
        mark_problems(self.window, [p.key for p in form.problems], INPUTS)
        form.check()
        return settings

    def ok(self, values: Values) -> None:
        if is_blank(values):  # everything emptied: no email at all
            settings = EmailSettings(timeout_s=self.base.timeout_s)
        else:
            try:
                settings = self.checked(values)
            except FormError as exc:
                self.message(str(exc))
                return
        self.on_ok(settings)
        self.close()

    def test(self, values: Values) -> None:
        try:
            settings = self.checked(values)
        except FormError as exc:
            self.message(str(exc))
            return
        self.message(tr("gui.msg.testing", self.lang), error=False)
        backend = self.backend
        self.probe(TEST_RESULT, lambda: Probe(True, backend.send_test_email(settings)))
