"""Report emails against real SMTP servers on loopback (aiosmtpd), reports in a real file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import ssl
import string
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from smtp_server import (
    Certificate,
    Inbox,
    client_context,
    closed_port,
    password_authenticator,
    self_signed,
    server_context,
    smtp_server,
    stalled_server,
    unanswered_port,
)

import synchro
from synchro.config.model import Config, EmailSettings, MailSecurity, Role
from synchro.errors import ErrorKind
from synchro.mail import (
    MailOutcome,
    MailPolicy,
    MailSendError,
    ReportMailer,
    ReportMessage,
    build_report_message,
    send_message,
    send_test,
)
from synchro.report_summary import reason_of
from synchro.reports import ReportStore, RunRecord, State

PASSWORD = "S3cret-Pa55!word"
LOGIN = "jdupont"
T0 = dt.datetime(2005, 12, 5, 23, 0, 0)


def settings(port: int, **changes: object) -> EmailSettings:
    base = EmailSettings(
        recipients=("chef@example.com", "compta@example.com"),
        sender="info@example.com",
        server="127.0.0.1",
        port=port,
        security=MailSecurity.NONE,
        timeout_s=5,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def record(**changes: object) -> RunRecord:
    base = RunRecord(
        id=1,
        site="3615",
        kind="run",
        round_id=None,
        started=T0,
        ended=T0 + dt.timedelta(hours=4, minutes=2, seconds=14),
        state=State.OK,
        rows_sent=1234,
        rows_received=567,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


MESSAGE = build_report_message([record()], site="3615", role=Role.SITE, lang="fr", now=T0)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("smtp-cert"))


@pytest.fixture
def plain() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


# -- the message ------------------------------------------------------------------------


def test_failed_run_message_in_french() -> None:
    failed = record(
        state=State.FAILED,
        rows_sent=0,
        rows_received=0,
        error="Siège injoignable après 10 tentatives",
        details={"error_kind": "network"},
    )
    msg = build_report_message([failed], site="3615", role=Role.SITE, lang="fr", now=T0)
    assert msg.subject == "Synchronisation Serveur 3615 : Echec le 05/12/2005 23:00:00"
    for part in (msg.text, msg.html):
        for cell in ("Etablissement", "Début", "Fin", "Etat", "05/12/2005 23:00:00"):
            assert cell in part
        assert "06/12/2005 03:02:14" in part
        assert "Siège injoignable après 10 tentatives" in part
        assert "le siège n'a pas pu être joint" in part
        assert "pare-feu" in part  # what to do
    assert "<table" in msg.html and "<table" not in msg.text


def test_ok_run_message_in_english() -> None:
    msg = build_report_message([record()], site="3615", role=Role.SITE, lang="en", now=T0)
    assert msg.subject == "Synchronisation Establishment (Serveur) 3615: OK on 05/12/2005 23:00:00"
    assert "Rows sent" in msg.text and "1234" in msg.text and "567" in msg.html
    assert "What to do" not in msg.text


def test_round_message_names_missing_and_late_establishments() -> None:
    round_row = record(
        id=10,
        site="0001",
        kind="round",
        state=State.FAILED,
        error="Etablissements sans données : 3616, 3617, 3619",
        details={"missing": ["3616", "3617", "3619"]},
    )
    members = [
        record(id=11, site="3615", kind="site-in-round", round_id=10, rows_received=5),
        record(
            id=12,
            site="3616",
            kind="site-in-round",
            round_id=10,
            state=State.FAILED,
            error="aucune donnée reçue",
            details={"error_kind": "no-data"},
        ),
        record(
            id=13,
            site="3617",
            kind="site-in-round",
            round_id=10,
            state=State.FAILED,
            error="x",
            details={"error_kind": "no-data"},
        ),
        record(id=14, site="3618", kind="site-in-round", round_id=10, details={"late": True}),
    ]
    msg = build_report_message([round_row, *members], site="0001", role=Role.HQ, lang="fr", now=T0)
    assert msg.subject.startswith("Synchronisation Siège 0001 : Echec")
    assert "Etablissements absents (aucune donnée reçue) : 3616, 3617, 3619" in msg.text
    assert "Etablissements en retard : 3618" in msg.text
    assert "Etablissements à jour : 2 sur 4" in msg.text
    for site in ("3615", "3616", "3617", "3618"):
        assert site in msg.html
    assert "RAZ" in msg.text  # the advice for a missing establishment
    assert "0001 :" not in msg.text  # the round row's error only summarises the others
    assert "3616 : Aucune donnée reçue de cet établissement" in msg.text


def test_the_reason_is_the_stored_kind_never_the_text() -> None:
    """A row's explanation comes from ``details["error_kind"]``; words in its error text
    (French or English) decide nothing."""
    for kind in ("network", "auth", "tls", "database", "disk", "data", "config", "no-data"):
        assert reason_of(record(state=State.FAILED, details={"error_kind": kind})) == kind
    assert reason_of(record(state=State.FAILED, error="certificat refusé, réseau")) == "other"
    assert reason_of(record(state=State.FAILED, details={"error_kind": "???"})) == "other"
    assert reason_of(record(state=State.STOPPED)) == "stopped"


def test_quarantine_listed_and_html_escaped() -> None:
    rows = [{"table": "ventes", "key": [n], "error": "<NOT NULL>"} for n in range(12)]
    events = ["5 échecs de connexion depuis 10.0.0.9 : adresse bloquée 15 min"]
    bad = record(
        state=State.FAILED,
        quarantined=12,
        error="<b>",
        details={"quarantined": rows, "security": events},
    )
    msg = build_report_message([bad], site="3615", role=Role.SITE, lang="fr", now=T0)
    assert "<b>" not in msg.html and "&lt;b&gt;" in msg.html
    assert "&lt;NOT NULL&gt;" in msg.html
    assert "... et 2 autre(s) : voir le Rapport." in msg.text
    assert "Evénements de sécurité :\n- 3615 : 5 échecs de connexion" in msg.text


def test_every_text_has_both_languages_and_the_same_fields() -> None:
    for area in ("mail", "reports", "engine"):
        path = Path(synchro.__file__).with_name("locales") / f"{area}.json"
        for key, texts in json.loads(path.read_text(encoding="utf-8")).items():
            assert key.startswith(f"{area}.")
            assert set(texts) == {"fr", "en"} and all(texts.values()), key
            fields = [{f[1] for f in string.Formatter().parse(t) if f[1]} for t in texts.values()]
            assert fields[0] == fields[1], key


# -- sending ----------------------------------------------------------------------------


def assert_delivered(inbox: Inbox, cfg: EmailSettings, message: ReportMessage) -> None:
    assert len(inbox.messages) == 1
    got = inbox.messages[0]
    assert got.mail_from == cfg.sender
    assert sorted(got.rcpt_tos) == sorted(cfg.recipients)
    assert got.message["Subject"] == message.subject
    assert got.message["From"] == cfg.sender
    assert got.message["To"] == ", ".join(cfg.recipients)
    text = got.message.get_body(("plain",))
    page = got.message.get_body(("html",))
    assert text is not None and page is not None
    for part in (text.get_content(), page.get_content()):
        assert "3615" in part and "1234" in part and "05/12/2005 23:00:00" in part


def test_plain_send(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    cfg = settings(port)
    send_message(cfg, MESSAGE)
    assert_delivered(inbox, cfg, MESSAGE)


def test_starttls_with_auth(certificate: Certificate) -> None:
    with smtp_server(
        tls_context=server_context(certificate),
        authenticator=password_authenticator(LOGIN, PASSWORD),
    ) as (inbox, port):
        cfg = settings(port, security=MailSecurity.STARTTLS, login=LOGIN, password=PASSWORD)
        send_message(cfg, MESSAGE, ssl_context=client_context(certificate))
        assert_delivered(inbox, cfg, MESSAGE)


def test_starttls_checks_the_certificate_by_default(certificate: Certificate) -> None:
    """Without a context trusting the test certificate, the system store refuses it."""
    with smtp_server(tls_context=server_context(certificate)) as (inbox, port):
        cfg = settings(port, security=MailSecurity.STARTTLS)
        with pytest.raises(MailSendError) as err:
            send_message(cfg, MESSAGE)
        assert err.value.code == "tls" and err.value.kind is ErrorKind.TLS
        assert str(err.value).startswith("Problème TLS avec 127.0.0.1 port")
        assert inbox.messages == []


def test_implicit_tls_with_auth(certificate: Certificate) -> None:
    with smtp_server(
        ssl_context=server_context(certificate),
        authenticator=password_authenticator(LOGIN, PASSWORD),
        auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS
    ) as (inbox, port):
        cfg = settings(port, security=MailSecurity.SSL, login=LOGIN, password=PASSWORD)
        send_message(cfg, MESSAGE, ssl_context=client_context(certificate))
        assert_delivered(inbox, cfg, MESSAGE)


def test_auth_refused(certificate: Certificate) -> None:
    with smtp_server(
        tls_context=server_context(certificate),
        authenticator=password_authenticator(LOGIN, "another"),
    ) as (inbox, port):
        cfg = settings(port, security=MailSecurity.STARTTLS, login=LOGIN, password=PASSWORD)
        with pytest.raises(MailSendError) as err:
            send_message(cfg, MESSAGE, ssl_context=client_context(certificate), lang="en")
        assert err.value.code == "auth" and err.value.kind is ErrorKind.AUTH
        assert str(err.value).startswith('Authentication refused by 127.0.0.1 for "jdupont"')
        assert "535" in str(err.value)
        assert inbox.messages == []


def test_login_on_a_server_without_auth(plain: tuple[Inbox, int]) -> None:
    _, port = plain
    with pytest.raises(MailSendError) as err:
        send_message(settings(port, login=LOGIN, password=PASSWORD), MESSAGE)
    assert err.value.code == "auth"
    assert "ne propose pas l'authentification" in str(err.value)


def test_starttls_asked_from_a_plain_server(plain: tuple[Inbox, int]) -> None:
    _, port = plain
    with pytest.raises(MailSendError) as err:
        send_message(settings(port, security=MailSecurity.STARTTLS), MESSAGE)
    assert err.value.code == "tls"


def test_implicit_tls_asked_from_a_plain_server(plain: tuple[Inbox, int]) -> None:
    _, port = plain
    with pytest.raises(MailSendError) as err:
        send_message(settings(port, security=MailSecurity.SSL), MESSAGE)
    assert err.value.code == "tls"


def test_a_refused_recipient_is_named(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    inbox.refused.add("compta@example.com")
    with pytest.raises(MailSendError) as err:
        send_message(settings(port), MESSAGE)
    assert err.value.code == "recipients"
    assert "compta@example.com (550 5.1.1 No such user here)" in str(err.value)
    assert [m.rcpt_tos for m in inbox.messages] == [["chef@example.com"]]

    inbox.refused.add("chef@example.com")
    with pytest.raises(MailSendError) as err:
        send_message(settings(port), MESSAGE)
    assert err.value.code == "recipients"
    assert len(inbox.messages) == 1


def test_server_down_is_refused() -> None:
    with pytest.raises(MailSendError) as err:
        send_message(settings(closed_port()), MESSAGE)
    assert err.value.code == "refused" and err.value.kind is ErrorKind.NETWORK
    assert str(err.value).startswith("Connexion refusée par 127.0.0.1 port")


def test_name_not_found() -> None:
    # A leading '-' is not a valid host name: the system resolver answers "name not known"
    # without sending a DNS query (checked with strace), so no traffic leaves loopback.
    with pytest.raises(MailSendError) as err:
        send_message(settings(25, server="-smtp.example.invalid"), MESSAGE)
    assert err.value.code == "dns" and err.value.kind is ErrorKind.NETWORK
    assert str(err.value).startswith("Nom introuvable : le Serveur de mail « -smtp.example.invalid")


@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_stalled_server_times_out(security: MailSecurity) -> None:
    with stalled_server() as port, pytest.raises(MailSendError) as err:
        send_message(settings(port, timeout_s=1, security=security), MESSAGE)
    assert err.value.code == "timeout" and err.value.kind is ErrorKind.NETWORK
    assert str(err.value).startswith("Délai dépassé : 127.0.0.1 port")


@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_a_stop_cuts_the_wait_for_a_silent_server(security: MailSecurity) -> None:
    """The program stops (``stop`` set) while the server has accepted and stays silent:
    the sending is given up at once (code « stopped »), not after the 30 s timeout."""
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with stalled_server() as port, pytest.raises(MailSendError) as err:
        send_message(settings(port, timeout_s=20, security=security), MESSAGE, stop=stop)
    took = time.monotonic() - started
    assert err.value.code == "stopped" and err.value.kind is ErrorKind.STOPPED
    assert str(err.value).startswith("Le programme s'arrêtait : l'envoi à 127.0.0.1 port")
    assert took < 10, took  # (the bound of a hang: the timeout is 20 s)


def test_a_stop_gives_up_a_connection_no_server_answers() -> None:
    """The mail server's machine drops the connection request (a firewall, a machine
    gone): without a stop the connection waits up to the timeout, and a stop ends that
    wait at once."""
    with unanswered_port() as port, pytest.raises(MailSendError) as err:
        send_message(settings(port, timeout_s=0.5), MESSAGE)
    assert err.value.code == "timeout"
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with unanswered_port() as port, pytest.raises(MailSendError) as err:
        send_message(settings(port, timeout_s=20), MESSAGE, stop=stop)
    took = time.monotonic() - started
    assert err.value.code == "stopped" and err.value.kind is ErrorKind.STOPPED
    assert took < 10, took  # (the bound of a hang: the timeout is 20 s)


def test_the_mailer_stops_trying_once_the_program_stops(tmp_path: Path) -> None:
    """Between attempts the mailer waits on its ``stop``: a stop ends the wait and no
    other attempt is made; the row says why the email did not go."""
    with ReportStore(tmp_path / "rapport.db") as store, stalled_server() as port:
        email = settings(port, timeout_s=1)
        config = Config(role=Role.SITE, site="3615", send_email=True, email=email)
        policy = MailPolicy(attempts=3, retry_delay_s=60)
        mailer = ReportMailer(store, lambda: config, Clock(T0), policy=policy)
        rec = finished_run(store, State.OK, T0)
        threading.Timer(1.5, mailer.stop.set).start()  # during the wait before the 2nd try
        started = time.monotonic()
        assert mailer.after_run([rec], State.OK) is MailOutcome.FAILED
        assert time.monotonic() - started < 20  # (not 3 x 1 s + 2 x 60 s)
        email_note = store.get(rec.id).details["email"]
        assert email_note["status"] == "failed", email_note
        assert store.get(rec.id).state is State.OK


def test_missing_settings() -> None:
    with pytest.raises(MailSendError) as err:
        send_message(settings(25, server=""), MESSAGE)
    assert err.value.kind is ErrorKind.CONFIG
    assert err.value.code == "config" and "Serveur de mail vide" in str(err.value)
    with pytest.raises(MailSendError) as err:
        send_message(settings(25, recipients=()), MESSAGE, lang="en")
    assert "recipient address is empty" in str(err.value)


def test_send_test(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    shown = send_test(settings(port), "fr", site="3615", now=T0)
    assert shown == ("Message de test envoyé à chef@example.com, compta@example.com par 127.0.0.1.")
    assert inbox.messages[0].message["Subject"] == "Synchro : message de test"


# -- the mailer ------------------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def make_mailer(
    store: ReportStore, email: EmailSettings, clock: Clock, sleeps: list[float]
) -> ReportMailer:
    config = Config(role=Role.SITE, site="3615", send_email=True, email=email)
    return ReportMailer(
        store,
        lambda: config,
        clock,
        policy=MailPolicy(attempts=3, retry_delay_s=0.5),
        sleep=sleeps.append,
    )


def finished_run(store: ReportStore, state: State, now: dt.datetime, error: str = "") -> RunRecord:
    run = store.start("3615", "run", now=now)
    return store.finish(run, state, now=now + dt.timedelta(minutes=5), error=error, rows_sent=3)


def test_ok_run_with_the_mail_server_down_is_still_ok(tmp_path: Path) -> None:
    with ReportStore(tmp_path / "rapport.db") as store:
        sleeps: list[float] = []
        mailer = make_mailer(store, settings(closed_port()), Clock(T0), sleeps)
        rec = finished_run(store, State.OK, T0)
        assert mailer.after_run([rec], State.OK) is MailOutcome.FAILED
        assert sleeps == [0.5, 0.5]  # three attempts
        after = store.get(rec.id)
        assert after.state is State.OK
        assert after.details["email"]["status"] == "failed"
        assert after.details["email"]["message"].startswith(
            "email non envoyé : Connexion refusée par 127.0.0.1"
        )


def test_sent_status_recorded_and_disabled_sends_nothing(
    tmp_path: Path, plain: tuple[Inbox, int]
) -> None:
    inbox, port = plain
    with ReportStore(tmp_path / "rapport.db") as store:
        mailer = make_mailer(store, settings(port), Clock(T0), [])
        rec = finished_run(store, State.STOPPED, T0)
        assert mailer.after_run([rec], State.STOPPED) is MailOutcome.SENT
        assert store.get(rec.id).details["email"]["status"] == "sent"
        assert "Arrêt" in inbox.messages[0].message["Subject"]

        off = Config(site="3615", send_email=False, email=settings(port))
        quiet = ReportMailer(store, lambda: off, Clock(T0))
        assert quiet.after_run([rec], State.STOPPED) is MailOutcome.DISABLED
        assert len(inbox.messages) == 1


def test_a_failing_site_emails_once_a_day(tmp_path: Path, plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    with ReportStore(tmp_path / "rapport.db") as store:
        clock = Clock(T0)
        mailer = make_mailer(store, settings(port), clock, [])
        outcomes = []
        for day in range(3):
            for hour in (0, 1, 2):  # the nightly run and two manual retries, all failing
                clock.now = T0.replace(hour=9 + hour) + dt.timedelta(days=day)
                rec = finished_run(store, State.FAILED, clock.now, "Siège injoignable")
                outcomes.append(mailer.after_run([rec], State.FAILED))
        assert outcomes == [MailOutcome.SENT, MailOutcome.THROTTLED, MailOutcome.THROTTLED] * 3
        assert len(inbox.messages) == 3
        throttled = store.latest()[0]
        assert throttled.state is State.FAILED
        assert throttled.details["email"]["status"] == "throttled"

        # OK and Arrêt always go; after an OK, a new failure the same day is news again.
        for state in (State.STOPPED, State.OK, State.OK, State.FAILED):
            clock.now += dt.timedelta(minutes=10)
            rec = finished_run(store, state, clock.now, "x")
            assert mailer.after_run([rec], state) is MailOutcome.SENT
        assert len(inbox.messages) == 7


def test_round_email_from_the_mailer(tmp_path: Path, plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    with ReportStore(tmp_path / "rapport.db") as store:
        round_id = store.start("0001", "round", now=T0)
        a = store.start("3615", "site-in-round", round_id=round_id, now=T0)
        b = store.start("3616", "site-in-round", round_id=round_id, now=T0)
        later = T0 + dt.timedelta(hours=4)
        store.finish(a, State.OK, now=later, rows_received=10)
        store.finish(b, State.FAILED, now=later, error="aucune donnée reçue")
        store.finish(round_id, State.FAILED, now=later)
        config = Config(role=Role.HQ, site="0001", send_email=True, email=settings(port))
        mailer = ReportMailer(store, lambda: config, Clock(later))
        assert mailer.after_run(store.for_round(round_id), State.FAILED) is MailOutcome.SENT
        got = inbox.messages[0].message
        assert got["Subject"] == "Synchronisation Siège 0001 : Echec le 05/12/2005 23:00:00"
        body = got.get_body(("plain",))
        assert body is not None and "3616" in body.get_content()
        assert store.get(round_id).details["email"]["status"] == "sent"
        assert "email" not in store.get(b).details


def test_the_password_never_leaks(
    tmp_path: Path, certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    """Every text produced (exceptions and their chains, logs, report file, CSV, emails)
    is searched for the password."""
    caplog.set_level(logging.DEBUG)
    produced: list[str] = []
    context = client_context(certificate)

    def attempt(cfg: EmailSettings, ctx: ssl.SSLContext | None = context) -> None:
        try:
            send_message(cfg, MESSAGE, ssl_context=ctx)
        except MailSendError as exc:
            produced.append(str(exc))
            produced.append(repr(exc))
            produced.append("".join(traceback.format_exception(exc)))

    refused = password_authenticator(LOGIN, "other")
    with smtp_server(tls_context=server_context(certificate), authenticator=refused) as (
        _,
        port,
    ):
        cfg = settings(port, security=MailSecurity.STARTTLS, login=LOGIN, password=PASSWORD)
        attempt(cfg)
        attempt(cfg, None)
        attempt(dataclasses.replace(cfg, login=PASSWORD))  # even a password typed as login
        attempt(dataclasses.replace(cfg, server=f"-{PASSWORD}.invalid"))
        attempt(settings(closed_port(), login=LOGIN, password=PASSWORD))
        with ReportStore(tmp_path / "rapport.db") as store:
            cfg_ok = dataclasses.replace(cfg, port=port)
            mailer = ReportMailer(
                store,
                lambda: Config(site="3615", send_email=True, email=cfg_ok),
                Clock(T0),
                policy=MailPolicy(attempts=2, retry_delay_s=0),
                sleep=lambda _: None,
                ssl_context=context,
            )
            rec = finished_run(store, State.FAILED, T0, "Siège injoignable")
            assert mailer.after_run([rec], State.FAILED) is MailOutcome.FAILED
            produced.append(repr(store.get(rec.id)))
            store.export_csv(tmp_path / "r.csv")
        with smtp_server(
            tls_context=server_context(certificate),
            authenticator=password_authenticator(LOGIN, PASSWORD),
        ) as (ok_inbox, ok_port):
            send_message(dataclasses.replace(cfg, port=ok_port), MESSAGE, ssl_context=context)
            produced += [m.raw.decode(errors="replace") for m in ok_inbox.messages]
    assert len(produced) >= 15
    produced += [r.getMessage() for r in caplog.records]
    produced += [caplog.text]
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert any(p.name == "rapport.db" for p in files)
    for text in produced:
        assert PASSWORD not in text
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_rows_not_applied_are_explained_in_the_ui_language_from_the_kind() -> None:
    quarantined = [
        {
            "package": "SIEGE#3",
            "tbl": "t",
            "key_json": "[2]",
            "row_json": '[2, "beta", 2]',
            "error": 'valeur enregistrée différente de la valeur envoyée — nom : envoyé "beta", '
            'enregistré "BETA"',
        }
    ]
    failed = record(
        state=State.FAILED,
        quarantined=1,
        error="1 ligne non appliquée — voir le rapport",
        details={
            "error_kind": "not-applied",
            "not_applied": {"applied": 1, "sent": 0},
            "quarantined": quarantined,
        },
    )
    assert reason_of(failed) == "not-applied"
    msg = build_report_message([failed], site="3615", role=Role.SITE, lang="en", now=T0)
    assert "1 row not applied — see the report" in msg.text
    assert "not stored exactly as sent" in msg.text
    assert "table t, key [2]: valeur enregistrée différente" in msg.text
    assert "row_json" not in msg.text  # one short line per row, not the whole entry
    fr = build_report_message([failed], site="3615", role=Role.SITE, lang="fr", now=T0)
    assert "1 ligne non appliquée — voir le rapport" in fr.text
    assert "table t, clé [2] : valeur enregistrée différente" in fr.text
