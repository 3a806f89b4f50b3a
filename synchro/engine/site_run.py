"""A Serveur's run: [kept package] → capture → upload → wait → download → apply → ack.

- A Siège package a previous run downloaded (complete and verified in ``inbox/``) but died
  before applying is applied first.
- Capture makes a new package unless nothing changed while older ones still wait for the
  Siège (they are sent again instead: a new sequence would make the answer to them stale).
- Every waiting package is staged (``.part``, verified) then all are renamed together.
- The Siège's answer is polled for, downloaded to ``inbox/`` and applied; an answer older
  than this site's last delivery ("stale") is not fetched again in the run, nor is the
  file applied last (same SHA-256).
- The ack (``engine.ack``) names the package applied and carries this site's per-table
  checksums; the run compares them with the Siège's sent in that package (« Contrôle »).

``Dernière synchronisation`` advances only when everything succeeded: the Siège
acknowledged every package of this site, its package was applied and acknowledged, the
checksums agree. Each connection is tried ``Nombre de tentatives`` times, ``Temps entre
tentatives`` apart (an attempt that moved data further does not count); waiting for the
Siège's package polls within the same budget (attempts × delay): after 1 s, then each wait
half as long again, up to ``poll_s`` (a round of a few rows ends in seconds; a long wait polls
every ``poll_s``). ``cancel`` (ARRETER) stops at the next safe point: between transfers, between
batches of an apply (whose transaction is then rolled back whole).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from synchro import faults
from synchro.config.atomic import atomic_write
from synchro.engine.ack import controle, make_ack
from synchro.engine.clocks import ahead_by
from synchro.engine.events import (
    Emit,
    Progress,
    ignore,
    progress,
    said,
    state_changed,
)
from synchro.engine.serveur_node import ACK_DUE, UNSENT, ServeurNode
from synchro.engine.site_receive import Connect, Receiving, RunOptions, RunTotals
from synchro.engine.twins import held as twin_held
from synchro.engine.watermark import remember_differing
from synchro.errors import Cancelled, ErrorKind, SynchroError, TransportError
from synchro.names import ack_name
from synchro.reports import ReportStore, RowError, RunRecord, State
from synchro.state import HELD
from synchro.transport.ftp_client import SiteClient
from synchro.transport.retry import with_retries

log = logging.getLogger("synchro.engine")


class SiteRun(Receiving):
    """One run of one site. ``run()`` never raises: it returns the report row; receiving the
    Siège's answer is ``Receiving``'s part."""

    def __init__(
        self,
        node: ServeurNode,
        connect: Connect,
        reports: ReportStore,
        options: RunOptions,
        *,
        cancel: threading.Event | None = None,
        emit: Emit = ignore,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node, self.connect, self.reports, self.options = node, connect, reports, options
        self.cancel = cancel or threading.Event()
        self.emit, self.now, self.sleep, self.monotonic = emit, now, sleep, monotonic
        self.site = node.code
        self.totals = RunTotals()
        self._seen: set[str] = set()  # Siège packages already looked at in this run
        self._stale: set[str] = set()  # Siège packages older than our last delivery
        self._moved = 0  # grows when a transfer gets further (an attempt made progress)
        self._furthest: dict[int, int] = {}  # transfer size -> furthest byte reached
        self._held: dict[int, int] = {}  # upload size -> most bytes the Siège said it holds
        self._kept: SiteClient | None = None  # the session kept while waiting (Receiving)
        self._clock_compared = False  # once a run (``_compare_clocks``)
        self._clock_known = False  # the Siège's date was read: the ack tells it the result
        self.started = now()

    def run(self) -> RunRecord:
        rid = self.reports.start(self.site, "run", now=self.started)
        self.emit(state_changed("running", rid, None, "engine.run.running", site=self.site))
        self.emit(said("engine.run.start", site=self.site))
        try:
            self._run(rid)
        except Cancelled as exc:
            return self._finish(rid, State.STOPPED, exc)
        except SynchroError as exc:
            return self._finish(rid, State.FAILED, exc)
        except Exception as exc:  # never let a bug leave the row "En cours..."
            return self._finish(rid, State.FAILED, exc)
        faults.point("site.report")
        return self._finish(rid, State.OK, "")

    def _finish(self, rid: int, state: State, error: str | Exception) -> RunRecord:
        """The row made final; an exception's text and kind are kept (``reports.finish``)."""
        record = self.reports.finish(
            rid,
            state,
            now=self.now(),
            error=error,
            details=self.totals.details,
            **self.totals.counters(),
        )
        state, error = record.state, record.error  # OK becomes Echec with rows not applied
        word = {State.OK: "ok", State.STOPPED: "stopped"}.get(state, "failed")
        row = RowError(record)
        self.emit(state_changed(word, rid, row, "engine.run.done"))
        if error:
            self.emit(said("engine.run.end_error", state=state, error=row))
        else:
            self.emit(said("engine.run.end", state=state, detail=""))
        return record

    # -- steps ------------------------------------------------------------------------

    def _run(self, rid: int) -> None:
        faults.point("site.run.start")
        if self.options.take_back or (  # a person chose it, after a restore (``marks``)
            self.options.send_restored and self.node.sends_again()  # or packages held
        ):
            self.emit(progress("capture", self.site, "engine.progress.take_back"))
            if twin_held(self.node):  # numbered after what the other machine sent since
                self._retry(self._catch_up, "engine.attempt.receive")
            self.node.take_back()
        self._apply_inbox()  # a Siège package kept from a run that died before applying it
        self._exchange(rid)
        if self.node.state.get_meta(UNSENT):  # rows made here since a restore that the
            self._exchange(rid)  # group's data taken back did not hold: sent in this run

    def _exchange(self, rid: int) -> None:
        """Capture → upload → wait → download → apply → ack."""
        self.emit(progress("capture", self.site, "engine.progress.changes"))
        exported = self.node.export(
            cancel=self.cancel,
            since=self.options.since,
            progress=lambda table, n: self.emit(Progress("capture", self.site, n, 0, table)),
            only_if_new=True,
            deletes_confirmed=self.options.manual,
            restore_confirmed=self.options.send_restored,
        )
        self.totals.rows_sent += exported.manifest.rows
        self.reports.update(rid, rows_sent=self.totals.rows_sent)
        keyless = self.node.keyless_tables()
        if keyless:  # said in every report, never skipped in silence
            self.totals.details["keyless"] = keyless
        if exported.capture.held:
            self.totals.quarantined += exported.capture.held
            held = self.node.state.quarantined(HELD)
            self.totals.details.setdefault("quarantined", []).extend(held[:200])
            self.emit(said("engine.held", count=exported.capture.held))
        unapplied = exported.capture.unapplied  # rows of earlier packages, retried in vain
        if unapplied:
            self.totals.quarantined += len(unapplied)
            self.totals.details.setdefault("quarantined", []).extend(unapplied[:200])
        if exported.capture.retried:
            self.totals.details["retried"] = exported.capture.retried[:200]
        if self.node.state.outbox():
            self._retry(self._upload_all, "engine.attempt.send")
        try:
            self._receive()
        finally:
            kept, self._kept = self._kept, None
            if kept is not None:
                kept.close()
        if self.node.state.outbox():
            raise TransportError(say=("engine.wait.unacked", {}))
        self._acknowledge()

    def _retry(self, action: Callable[[], None], message: str) -> None:
        """``action`` tried ``attempts`` times; each failure said with ``message`` (a key
        of locales/engine.json taking number, attempts and error)."""

        def note(number: int, exc: Exception) -> None:
            self.emit(said(message, number=number, attempts=self.options.attempts, error=exc))

        with_retries(
            action,
            attempts=self.options.attempts,
            delay_s=self.options.delay_s,
            cancel=self.cancel,
            sleep=self.sleep,
            on_attempt=note,
            progressed=lambda: self._moved,
        )

    def _acknowledge(self) -> None:
        """Tell the Siège which of its packages this site applied, with this site's
        checksums: only then does the Siège count it as served. The site also compares
        its checksums with the Siège's (sent in that package): the « Contrôle »."""
        measured = self.totals.details.get("clock", 0) if self._clock_known else None
        made = make_ack(self.node, measured)
        if made is None:
            return
        ack, theirs, theirs_agreed = made
        name = ack_name(ack.site, ack.sequence)
        folder = self.node.packages_dir / "acks"
        folder.mkdir(parents=True, exist_ok=True)
        local = folder / name
        atomic_write(local, ack.to_bytes())
        faults.point("site.ack.written")

        def send() -> None:
            with self._client() as client:
                if client.upload(local, name):
                    self._compare_clocks(client, name)

        self._retry(send, "engine.attempt.send")
        faults.point("site.ack.sent")
        text, tables, pending = controle(ack.checksums, theirs, ack.agreed, theirs_agreed)
        with self.node.state.transaction():
            self.node.state.set_meta(ACK_DUE, "0")
            remember_differing(self.node.state, tables + pending)  # read whole next time
        local.unlink(missing_ok=True)
        self.totals.details["controle"] = text
        if tables and not self.node.state.get_meta(UNSENT):  # (else: sent next, ``_run``)
            said = ("engine.err.controle", {"tables": ", ".join(tables)})
            raise SynchroError(kind=ErrorKind.DATA, say=said)

    def _upload_all(self) -> None:
        """Every waiting package sent and verified under a temporary name first, then all
        renamed: the Siège sees them together and does not close its round between two."""
        with self._client() as client:
            outbox = self.node.state.outbox()
            written = ""  # a file written now: the Siège dates it by its clock
            for sequence, path in outbox:
                if self.cancel.is_set():
                    raise Cancelled()
                size = path.stat().st_size
                done = (self.totals.rows_sent, size)
                self.emit(
                    progress("send", self.site, "engine.progress.package", done=done, n=sequence)
                )
                if client.stage(path, path.name):
                    written = path.name
                self.totals.bytes_sent += size
            for _sequence, path in outbox:
                client.finish_upload(path.name)
            if written:
                self._compare_clocks(client, written)
        faults.point("site.uploaded")
        self.emit(said("engine.sent"))

    def _compare_clocks(self, client: SiteClient, name: str) -> None:
        """This machine's clock against the Siège's, by the date its server gave the file
        ``name`` just written (``engine.clocks``; not one an earlier attempt had sent
        whole), once a run: said when they differ."""
        if self._clock_compared:
            return
        self._clock_compared = True
        theirs = client.remote_time(f"in/{name}")
        self._clock_known = theirs is not None
        ahead = ahead_by(self.now(), theirs) if theirs is not None else None
        if ahead is not None:
            self.totals.details["clock"] = ahead
            log.warning("Horloge : ce poste et le siège diffèrent de %d s", ahead)


def site_connect(config: Any, *, timeout: float | None = None) -> Connect:
    """The SiteClient factory of a Serveur configuration."""
    s = config.site_settings

    def connect() -> SiteClient:
        return SiteClient(
            s.hq_address,
            s.hq_port,
            config.site,
            s.secret,
            s.certificate_fingerprint,
            allow_plain=s.allow_plain_ftp,
            timeout=timeout or s.timeout_s,
        )

    return connect
