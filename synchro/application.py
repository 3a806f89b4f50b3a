"""The application API: what the front ends (CLI, demo, tray backend) ask of one node.

Front ends call this module (and ``synchro.enrolment``), never the engine, transport,
package or database modules (``tests/test_import_rules.py``)::

    node = Synchro.open(config, paths, listeners=(printer,))
    try:
        record = node.sync_once()          # MANUELLE in the foreground (``synchro sync``)
    finally:
        node.close()

    node.serve()                           # the background service (``serve``, the tray)

Progress goes to the listeners as the events below (``Progress``, ``StateChanged``,
``Status``), on the thread that works: a listener only prints or enqueues. Functions that
need no running node (the Test button, the wizard's database lists) are plain functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from synchro.config.model import Config
from synchro.engine.events import Event, Progress, StateChanged, Status, said
from synchro.errors import ConnectionTestError, ErrorKind, SynchroError
from synchro.i18n import render, tr
from synchro.names import parse_address
from synchro.platform.paths import NodePaths
from synchro.reports import RunRecord, State, error_in

if TYPE_CHECKING:  # the engine is imported when used: the CLI starts fast
    from synchro.app import App
    from synchro.db.base import Table
    from synchro.engine.checksum import Sums
    from synchro.engine.hq_round import HQService
    from synchro.engine.node_results import ExportResult, ImportResult, NodeStatus
    from synchro.engine.preflight_run import CheckReport
    from synchro.engine.serveur_node import ServeurNode
    from synchro.engine.siege_node import SiegeNode

__all__ = [
    "Event",
    "NodeChecksums",
    "Progress",
    "StateChanged",
    "Status",
    "Synchro",
    "check_schemas",
    "export_changes",
    "import_package",
    "list_tables",
    "node_checksums",
    "odbc_drivers",
    "status",
    "test_connection",
]

Listener = Callable[[Event], None]


class Synchro:
    """One node, Siège or Serveur, as every front end sees it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._interrupted = threading.Event()

    @classmethod
    def open(
        cls,
        config: Config,
        paths: NodePaths,
        *,
        listeners: tuple[Listener, ...] = (),
        poll_s: float = 30.0,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> Synchro:
        """The node ``config`` describes (nothing runs until ``serve`` or ``sync_once``)."""
        from synchro.app import App

        return cls(App(config, paths, listeners=listeners, poll_s=poll_s, now=now))

    @property
    def config(self) -> Config:
        return self.app.config

    def serve(self) -> None:
        """Start the background service and return: the Siège's FTP server and its rounds
        (*Heure de départ*, MANUELLE), or the Serveur's runs. ``close()`` stops it."""
        self.app.start()

    def sync_once(
        self, *, linger_s: float = 120.0, take_back: bool = False, send: bool = False
    ) -> RunRecord:
        """MANUELLE in the foreground, on the calling thread; the Rapport row it ended with.

        A Serveur does one run. The Siège starts its FTP server, opens a round, works it
        until it closes, then lingers (up to ``linger_s``) while establishments it served
        have not acknowledged: late deliveries are applied and published meanwhile.
        After a restore (``engine.marks``): ``take_back``, *Reprendre les données du
        groupe*; ``send``, Envoyer (the restored database sent as it is)."""
        from synchro.engine.siege_node import SiegeNode

        if self.config.is_hq:
            self.app.start_ftp()
        node = _open_node(self.config, self.app.paths, self.app.now, self._interrupted.is_set)
        try:
            if isinstance(node, SiegeNode):
                step = "open-take-back" if take_back else "open-send" if send else "open"
                return self._hq_round_now(node, linger_s, step)
            return self.app.run_site(node, "take-back" if take_back else "send" if send else "sync")
        finally:
            node.close()

    def interrupt(self) -> None:
        """Ctrl-C during ``sync_once`` (any thread, only sets flags): ARRETER, no linger."""
        self._interrupted.set()
        self.app.stop_run()
        self.app.ending()
        if self.app.hq is not None:
            self.app.hq.stop()

    def run_now(self, *, take_back: bool = False, send: bool = False) -> None:
        """MANUELLE for the service; after a restore (``engine.marks``), ``take_back``:
        *Reprendre les données du groupe*, ``send``: Envoyer."""
        self.app.run_now(take_back=take_back, send=send)

    def stop(self) -> None:
        """ARRETER: the run or round stops at its next safe point."""
        self.app.stop_run()

    def raz(self) -> None:
        """RAZ: the open round gets its whole *Temps maximum de réception* again."""
        self.app.raz()

    def is_running(self) -> bool:
        return self.app.is_running()

    def next_run(self) -> dt.datetime | None:
        return self.app.next_run()

    def control(self, cmd: str, args: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The local control channel (``synchro sync|stop|raz`` against ``serve``)."""
        return self.app.control(cmd, args)

    def report(self, limit: int = 50) -> list[RunRecord]:
        """The Rapport, newest first."""
        return self.app.reports.latest(limit)

    def held_changes(self, lang: str = "fr") -> str | None:
        """The error of the last run or round when it held mass deletes
        (``capture.mass_deletes``), a restored database (``engine.marks``) or an
        establishment's packages another machine's took the place of (``engine.twins``),
        which MANUELLE sends, in ``lang``; None otherwise."""
        last = self.app.reports.latest(1, kinds=("run", "round"))
        held = (ErrorKind.DELETES, ErrorKind.RESTORED, ErrorKind.TWIN)
        if last and last[0].details.get("error_kind") in held:
            return error_in(last[0], lang)
        return None

    def can_take_back(self) -> bool:
        """Whether the last run or round held a restored database (``engine.marks``),
        which ``run_now(take_back=True)`` settles."""
        last = self.app.reports.latest(1, kinds=("run", "round"))
        return bool(last) and last[0].details.get("error_kind") == ErrorKind.RESTORED

    def report_row(self, report_id: int) -> RunRecord:
        """One Rapport row (its detail window); KeyError when there is none."""
        return self.app.reports.get(report_id)

    def export_report_csv(self, path: Path, lang: str) -> None:
        """The Rapport as a CSV file, its headings in ``lang``."""
        self.app.reports.export_csv(path, lang)

    def save_config(self, config: Config) -> None:
        """VALIDER: keep the settings (the config file changes only here) and use them."""
        self.app.save_config(config)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener`` gets every event from now on; call the result to stop."""
        return self.app.subscribe(listener)

    def close(self) -> bool:
        """Stop and close; False when the work did not end in ``GIVE_UP_S`` (``App.close``)."""
        return self.app.close()

    # -- the Siège's round now (``synchro sync``) -------------------------------------------

    def _hq_round_now(self, node: SiegeNode, linger_s: float, step: str) -> RunRecord:
        """A round now on ``node``, its FTP server started (``sync_once``)."""
        app = self.app
        hq = app.hq_service(node)
        # the establishments' acks are awaited as long as the Siège lingers
        ack_wait = dt.timedelta(seconds=linger_s)
        hq.settings = dataclasses.replace(hq.settings, ack_wait=ack_wait)
        hq.step(step)
        hq.run(app.commands, lambda: hq.round is not None)
        if hq.last_round is None or hq.last_round.state is not State.STOPPED:
            app.emit(said("engine.linger", seconds=f"{linger_s:.0f}"))
            self._linger(hq, linger_s)
        hq.note_tail()  # late packages left in /in: applied next time, not counted then
        if hq.last_round is None:
            raise SynchroError(kind=ErrorKind.INTERNAL, say=("engine.err.no_round", {}))
        return hq.last_round

    def _linger(self, hq: HQService, linger_s: float) -> None:
        """After the round closed, keep the FTP server up and go on working — applying and
        publishing late deliveries, taking acks — until every establishment the Siège
        published to has acknowledged applying its package, or ``linger_s`` at most.
        A download is not a delivery: only the ack ends the wait. After a crash, the sites
        the round took over are waited for too, until each is heard from again."""
        end = time.monotonic() + linger_s

        def going() -> bool:
            if self._interrupted.is_set() or time.monotonic() >= end:
                return False
            waiting = hq.waiting_for_acks() or hq.not_heard_since_crash()
            return hq.closing is not None or bool(waiting)

        hq.run(self.app.commands, going)
        if hq.closing is not None:  # linger over: who has not acked is Echec
            hq.acks.expire(list(hq.settings.sites), self.app.now(), force=True)
            hq.step("")


def _open_node(
    config: Config,
    paths: NodePaths,
    now: Callable[[], dt.datetime] = dt.datetime.now,
    stopping: Callable[[], bool] | None = None,
) -> SiegeNode | ServeurNode:
    from synchro.engine.nodes import open_node

    return open_node(config, paths, now, stopping)


# -- what needs no running node -----------------------------------------------------------


@dataclass(frozen=True)
class Tested:
    """The Test button's answer, in the UI's language; ``ok`` is False when the login
    worked but the schema check found problems."""

    ok: bool
    text: str


def test_connection(
    config: Config, paths: NodePaths, address: str | None = None, *, check_schemas: bool = False
) -> Tested:
    """The Test button (``synchro test-connection``): log in to the Siège at ``address``
    (``host[:port]``; the settings' address when None) and say how it went. With
    ``check_schemas`` a Serveur also compares its database with the Siège's schemas.
    Raises ``ConnectionTestError`` (its ``code`` says what failed)."""
    from synchro.transport.ftp_client import login_check

    s = config.site_settings
    host, port = s.hq_address, s.hq_port
    if address is not None:
        try:
            host, port = parse_address(address, s.hq_port)
        except ValueError as exc:
            bad = ("engine.ftp.bad_address", {"address": address})
            raise ConnectionTestError("dns", say=bad) from exc
    found = login_check(
        host, port, config.site, s.secret, s.certificate_fingerprint, s.allow_plain_ftp
    )
    lang = config.language
    mode = tr("app.test.secure" if found.secure else "app.test.plain", lang)
    said = tr(
        "app.test.ok",
        lang,
        host=host,
        port=port,
        site=config.site,
        mode=mode,
        waiting=found.waiting,
    )
    if config.is_hq or not check_schemas:
        return Tested(True, said)
    site = dataclasses.replace(s, hq_address=host, hq_port=port)
    ok, lines = _schema_check(dataclasses.replace(config, site_settings=site), paths)
    return Tested(ok, said + "\n" + lines)


def _schema_check(config: Config, paths: NodePaths) -> tuple[bool, str]:
    """Test also compares this database with the Siège's schemas (``synchro check``):
    whether nothing blocks, and what it found."""
    from synchro.engine.preflight_run import check_site

    lang = config.language
    try:
        report = check_site(config, paths, lang=lang)
    except SynchroError as exc:
        return False, tr("check.failed", lang, error=exc)
    return report.exit_code == 0, "\n".join(report.lines)


def list_tables(connection: str, lang: str) -> list[str]:
    """The wizard's database Test: one line per table, saying a table without a key, one
    whose names the driver cannot carry (``Table.unusable``), and the columns that limit
    what can be stored."""
    from synchro.db import open_database
    from synchro.engine.preflight_run import table_limits

    with open_database(connection) as adapter:
        found = adapter.tables()
    limits = table_limits(found, lang)
    return [_table_line(t, lang) + limits.get(t.name, "") for t in found]


def _table_line(table: Table, lang: str) -> str:
    if table.unusable:
        reason = render(table.unusable, lang)
        return tr("app.table.unusable", lang, table=table.name, reason=reason)
    return table.name if table.key else tr("app.table.no_key", lang, table=table.name)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def odbc_drivers() -> list[str]:
    """The ODBC drivers installed (none when there is no driver manager)."""
    from synchro.db.drivers import odbc_drivers as installed

    return installed()


@dataclass(frozen=True)
class Imported:
    result: ImportResult
    refused: list[dict[str, Any]]  # the rows put in quarantine (not applied exactly)


@dataclass(frozen=True)
class StatusReport:
    status: NodeStatus  # tables, rows, skipped tables, packages waiting for an ack
    pending: dict[str, dict[str, int]]  # table -> inserts / updates / deletes not sent yet


def export_changes(config: Config, paths: NodePaths, out: Path | None = None) -> ExportResult:
    """``synchro export``: this node's changes since the last package, into a new one (a
    person typed it: mass deletes are sent, as at MANUELLE)."""

    with _open_node(config, paths) as node:
        return node.export(out, deletes_confirmed=True)


def import_package(config: Config, paths: NodePaths, path: Path) -> Imported:
    """``synchro import``: apply a package file exactly once, verified."""

    with _open_node(config, paths) as node:
        result = node.import_package(path)
        m, stats = result.manifest, result.stats
        refused = node.state.quarantined(f"{m.origin}#{m.sequence}") if stats.quarantined else []
    return Imported(result, refused)


def status(config: Config, paths: NodePaths) -> StatusReport:
    """``synchro status``: the tables synchronised, and what waits to be sent."""

    with _open_node(config, paths) as node:
        return StatusReport(node.status(), node.pending_changes())


def check_schemas(config: Config, paths: NodePaths, *, lang: str) -> CheckReport:
    """``synchro check``: can every value of this node travel to the others?"""
    from synchro.engine.preflight_run import check

    return check(config, paths, lang=lang)


class NodeChecksums(NamedTuple):
    sums: Sums  # per-table checksums (« Contrôle »)
    conflicts: list[dict[str, Any]]  # the conflicts this node's state kept


def node_checksums(config: Config, paths: NodePaths) -> NodeChecksums:
    """This node's per-table checksums and the conflicts its state kept."""
    with _open_node(config, paths) as node:
        return NodeChecksums(node.checksums(), node.state.conflicts())
