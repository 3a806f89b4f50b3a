"""Each kind of error, from a real failure to the words of the email (issue 14, point 3).

A Serveur's real run against a real Siège on loopback that refuses its secret (auth), shows
another certificate (tls), or does not listen (network); a real SQLite and ODBC error
(database); a folder this machine cannot write (disk); a tampered package (data); a bad
settings file (config). Each ends as a Rapport row whose stored kind, never its text, gives
the reason and the advice of the email, received by a real SMTP server (aiosmtpd), in
French and in English."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require, require_module
from pair_helpers import app_pair
from smtp_server import Inbox, smtp_server

from synchro.app import App
from synchro.config.model import Config, EmailSettings, MailSecurity, Role
from synchro.config.store import load_config, save_config
from synchro.db import open_database
from synchro.engine.nodes import open_node
from synchro.errors import (
    DatabaseError,
    ErrorKind,
    PlatformError,
    SynchroError,
    kind_of,
    server_disk_full,
)
from synchro.i18n import tr
from synchro.log import setup_logging, shutdown_logging
from synchro.mail import MailPolicy, ReportMailer
from synchro.platform.paths import NodePaths
from synchro.report_summary import REASONS, reason_of
from synchro.reports import ReportStore, RunRecord, State

T0 = dt.datetime(2026, 12, 4, 23, 0, 0)
UNWRITABLE = Path("/sys/kernel")  # sysfs: no file can be created there, even by root
FULL = Path("/dev/full")  # every write fails with ENOSPC: a full disk


@pytest.fixture(autouse=True)
def logging_set_up(tmp_path: Path) -> Iterator[None]:
    setup_logging(tmp_path / "logs", console=False)
    yield
    shutdown_logging()


@pytest.fixture()
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


def email_settings(port: int) -> EmailSettings:
    return EmailSettings(
        recipients=("chef@example.com",),
        sender="synchro@example.com",
        server="127.0.0.1",
        port=port,
        security=MailSecurity.NONE,
        timeout_s=5,
    )


def mailing(config: Config, port: int, lang: str) -> Config:
    return dataclasses.replace(config, send_email=True, email=email_settings(port), language=lang)


def assert_words(inbox: Inbox, kind: str, lang: str) -> None:
    """The one email received explains the failure with the words of ``kind``."""
    assert len(inbox.messages) == 1
    text = inbox.messages[0].message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert tr(f"reports.reason.{kind}", lang) in body, body
    assert tr(f"reports.advice.{kind}", lang) in body, body
    inbox.messages.clear()


def site_run(paths: NodePaths, config: Config) -> RunRecord:
    """One real run of the Serveur with ``config`` (saved first, as VALIDER would)."""
    save_config(config, paths.config_file)
    app = App(
        load_config(paths.config_file),
        paths,
        now=lambda: T0,
        sleep=lambda _s: None,
        poll_s=0.1,
        mail_policy=MailPolicy(attempts=1, retry_delay_s=0, one_failure_email_per_day=False),
    )
    try:
        with open_node(app.config, paths, app.now) as node:
            return app.run_site(node)
    finally:
        app.close()


# -- real runs of a Serveur -----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_runs_against_a_real_siege_give_network_auth_tls_and_disk(
    tmp_path: Path, smtp: tuple[Inbox, int], lang: str
) -> None:
    if not UNWRITABLE.is_dir():
        require(f"no {UNWRITABLE} (Linux sysfs) to stand for a folder that cannot be written")
    inbox, port = smtp
    hq_paths, site_paths = app_pair(tmp_path)
    base = mailing(load_config(site_paths.config_file), port, lang)
    s = base.site_settings
    one_try = dataclasses.replace(s, attempts=1)
    base = dataclasses.replace(base, site_settings=one_try)

    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.run_now()
        outbox = site_paths.packages_dir / "outbox"  # where the run writes its package
        outbox.symlink_to(UNWRITABLE, target_is_directory=True)  # no right to write there
        try:
            record = site_run(site_paths, base)
        finally:
            outbox.unlink()
        assert record.details["error_kind"] == "disk", record.error
        assert "erreur interne" not in record.error
        assert_words(inbox, "disk", lang)

        wrong_secret = dataclasses.replace(one_try, secret="pas-le-bon-secret-0123456789")
        record = site_run(site_paths, dataclasses.replace(base, site_settings=wrong_secret))
        assert record.details["error_kind"] == "auth", record.error  # FTP 530
        assert_words(inbox, "auth", lang)

        other_pin = dataclasses.replace(one_try, certificate_fingerprint="ab" * 32)
        record = site_run(site_paths, dataclasses.replace(base, site_settings=other_pin))
        assert record.details["error_kind"] == "tls", record.error  # not the pinned one
        assert_words(inbox, "tls", lang)
    finally:
        hq.close()

    record = site_run(site_paths, base)  # the Siège stopped: its port is closed
    assert (record.state, record.details["error_kind"]) == (State.FAILED, "network")
    assert_words(inbox, "network", lang)


# -- real errors of each other kind, through the report store and the mailer ---------------


def mail_failure(tmp_path: Path, port: int, exc: SynchroError, lang: str) -> RunRecord:
    """The row a run ended by ``exc`` leaves, and its email (what SiteRun and the App do)."""
    store = ReportStore(tmp_path / f"rapport-{lang}.db")
    try:
        rid = store.start("3615", "run", now=T0)
        record = store.finish(rid, State.FAILED, now=T0, error=exc)
        config = mailing(Config(site="3615"), port, lang)
        mailer = ReportMailer(store, lambda: config, lambda: T0, policy=MailPolicy(attempts=1))
        mailer.after_run([record], record.state)
        return store.get(rid)
    finally:
        store.close()


def raised(action: object) -> SynchroError:
    assert callable(action)
    with pytest.raises(SynchroError) as caught:
        action()
    return caught.value


def sqlite_error(tmp_path: Path) -> SynchroError:
    garbage = tmp_path / "pas-une-base.db"
    garbage.write_bytes(b"ceci n'est pas une base SQLite" * 100)

    def read() -> None:
        with open_database(str(garbage)) as adapter:
            adapter.tables()

    return raised(read)


def odbc_error(_tmp_path: Path) -> SynchroError:
    require_module("pyodbc")
    connection = (
        "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;UID=postgres;"
        "DATABASE=synchro_absente_kinds"
    )

    def read() -> None:
        with open_database(connection) as adapter:
            adapter.tables()

    return raised(read)


def package_error(tmp_path: Path) -> SynchroError:
    _hq, site_paths = app_pair(tmp_path)
    forged = tmp_path / "SIEGE-00000001.pkg"
    forged.write_bytes(b"SYNCHRO" + bytes(range(256)) * 8)
    config = load_config(site_paths.config_file)

    def apply() -> None:
        with open_node(config, site_paths, lambda: T0) as node:
            node.import_package(forged)

    return raised(apply)


def config_error(tmp_path: Path) -> SynchroError:
    path = tmp_path / "synchro.toml"
    path.write_text('site = "3615"\nlast_sync = "hier"\n', encoding="utf-8")
    return raised(lambda: load_config(path))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (sqlite_error, ErrorKind.DATABASE),
        (odbc_error, ErrorKind.DATABASE),
        (package_error, ErrorKind.DATA),
        (config_error, ErrorKind.CONFIG),
    ],
)
def test_real_errors_of_each_kind_give_their_words(
    tmp_path: Path, smtp: tuple[Inbox, int], make: object, kind: ErrorKind
) -> None:
    inbox, port = smtp
    assert callable(make)
    exc = make(tmp_path)
    assert exc.kind is kind, exc
    for lang in ("fr", "en"):
        record = mail_failure(tmp_path, port, exc, lang)
        assert record.details["error_kind"] == kind.value
        assert record.error == str(exc)  # the text kept as raised
        assert_words(inbox, kind.value, lang)


def test_a_full_disk_is_disk_and_anything_else_unexpected_is_internal() -> None:
    if not FULL.exists():
        require(f"no {FULL} (a device that is always full) on this system")
    with pytest.raises(OSError) as caught, open(FULL, "wb") as full:
        full.write(b"x")
        full.flush()
    assert kind_of(caught.value) is ErrorKind.DISK
    assert kind_of(KeyError("x")) is ErrorKind.INTERNAL


def test_a_synchro_error_raised_from_a_disk_error_is_disk() -> None:
    if not FULL.exists():
        require(f"no {FULL} (a device that is always full) on this system")
    with pytest.raises(SynchroError) as caught:
        try:
            with open(FULL, "wb") as full:
                full.write(b"x")
                full.flush()
        except OSError as exc:
            raise PlatformError(f"Impossible d'écrire : {exc}") from exc
    assert caught.value.kind is ErrorKind.DISK  # PlatformError's default is config
    assert PlatformError("Action inconnue").kind is ErrorKind.CONFIG


def test_a_database_server_s_full_disk_is_disk_an_ftp_reply_s_words_are_not() -> None:
    """``errors.server_disk_full`` reads a driver's error (SQLSTATE, message) only: the
    Siège's FTP server saying its disk is full is the Siège's disk (``hq-disk``), never this
    machine's. (The servers' real errors: ``test_server_disk_full.py``.)"""
    maria = ("HY000", "[HY000] [ma-3.1.15][10.11.19-MariaDB]The table 't' is full (1114)")
    assert server_disk_full(Exception(*maria)) and server_disk_full(Exception("53100", "x"))
    assert not server_disk_full(Exception("HY000", "Duplicate entry '1' for key 'PRIMARY' (1062)"))
    ftp = Exception("452 Écriture impossible : No space left on device")
    assert not server_disk_full(ftp)
    error = DatabaseError("écriture impossible")
    error.__cause__ = ftp
    assert error.kind is ErrorKind.DATABASE


def test_every_reason_has_its_words_in_both_languages() -> None:
    for code in REASONS:
        for lang in ("fr", "en"):
            for area in ("reason", "advice", "short"):
                key = f"reports.{area}.{code}"
                assert tr(key, lang) != key, key
        assert tr(f"reports.reason.{code}", "fr") != tr(f"reports.reason.{code}", "en"), code


def test_a_row_cut_by_a_crash_is_interrupted(tmp_path: Path) -> None:
    with ReportStore(tmp_path / "rapport.db") as store:
        rid = store.start("3615", "run", now=T0)
        store.merge_details(rid, {"controle": "identiques"})
    with ReportStore(tmp_path / "rapport.db") as store:
        (record,) = store.close_interrupted(T0)
    assert record.details == {"controle": "identiques", "error_kind": "interrupted"}
    assert reason_of(record) == "interrupted"


def test_every_bare_synchro_error_names_its_kind() -> None:
    """A subclass has a default kind; the base class has none worth showing, so every
    ``SynchroError(...)`` built in synchro/ says ``kind=`` (read with ``ast``)."""
    package = Path(__file__).resolve().parents[1] / "synchro"
    bare = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "SynchroError"
                and not any(k.arg == "kind" for k in node.keywords)
            ):
                bare.append(f"{path.relative_to(package)}:{node.lineno}")
    assert bare == []


# -- at the Siège: a round's establishments -------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_round_explains_a_forged_package_and_a_silent_site_from_their_kinds(
    tmp_path: Path, smtp: tuple[Inbox, int], lang: str
) -> None:
    from rounds_helpers import stepped

    inbox, port = smtp
    clock = [dt.datetime(2026, 11, 29, 23, 0)]
    with stepped(tmp_path, ["3615", "3616"], clock) as g:
        g.service.step("open")
        forged = tmp_path / "3615-00000001.pkg"  # 3615 drops a package that is not one
        forged.write_bytes(b"SYNCHRO" + bytes(range(256)) * 8)
        with g.client("3615")() as client:
            client.upload(forged, forged.name)
        g.service.step()
        clock[0] += dt.timedelta(hours=4, seconds=1)  # 3616 never comes
        g.service.step()
        round_row = g.round_ended(timeout=5)
        members = g.reports.for_round(round_row.id)
        kinds = sorted((r.site, r.details.get("error_kind")) for r in members[1:])
        # the refused package's row (3615 did deliver: not also « sans données »), 3616's
        assert kinds == [("3615", "data"), ("3616", "no-data")]
        assert round_row.details["missing"] == ["3616"]
        assert round_row.details["failed"] == ["3615"]
        config = mailing(Config(site="SIEGE", role=Role.HQ), port, lang)
        mailer = ReportMailer(g.reports, lambda: config, lambda: clock[0])
        mailer.after_run(members, round_row.state)
    body = inbox.messages[0].message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for kind in ("data", "no-data"):
        assert tr(f"reports.reason.{kind}", lang) in text, text
        assert tr(f"reports.advice.{kind}", lang) in text, text
