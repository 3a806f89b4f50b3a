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
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synchro import faults
from synchro.config.atomic import atomic_write
from synchro.engine.ack import controle, make_ack
from synchro.engine.events import Emit, Progress, StateChanged, ignore, said
from synchro.engine.hq_files import ROUND_FILE
from synchro.engine.schema_exchange import remember_received
from synchro.engine.serveur_node import ACK_DUE, ServeurNode
from synchro.errors import Cancelled, ErrorKind, PackageError, SynchroError, TransportError
from synchro.names import ack_name, read_published_name
from synchro.reports import ReportStore, RunRecord, State
from synchro.state import HELD
from synchro.transport.files import file_sha256
from synchro.transport.ftp_client import SiteClient
from synchro.transport.retry import with_retries

Connect = Callable[[], SiteClient]
ROUND_MARGIN_S = 120.0  # after the Siège's deadline: its close and publication take time
APPLIED_FILE = "applied_file"  # meta: name and SHA-256 of the Siège file applied last
MAX_ROUND_WAIT_S = 24 * 3600.0  # a wrong clock or file never makes a run wait forever
FIRST_POLL_S, POLL_GROWTH = 1.0, 1.5  # waiting for the Siège: 1 s, 1.5 s, 2.25 s… up to poll_s


@dataclass(frozen=True)
class RunOptions:
    attempts: int = 10
    delay_s: float = 600.0
    poll_s: float = 30.0
    since: dt.datetime | None = None  # modification-date pre-filter bound (watermark - margin)


@dataclass
class RunTotals:
    rows_sent: int = 0
    rows_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    conflicts: int = 0
    quarantined: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        return {
            "rows_sent": self.rows_sent,
            "rows_received": self.rows_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "conflicts": self.conflicts,
            "quarantined": self.quarantined,
        }


class NotYet(TransportError):
    """The Siège has not published this site's consolidated package yet (retried)."""


class SiteRun:
    """One run of one site. ``run()`` never raises: it returns the report row."""

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
        self.started = now()

    def run(self) -> RunRecord:
        rid = self.reports.start(self.site, "run", now=self.started)
        self.emit(StateChanged("running", f"Synchronisation de {self.site}", rid))
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
        self.emit(StateChanged(word, error or "Synchronisation terminée.", rid))
        self.emit(said("engine.run.end", state=state, detail=f" ({error})" if error else ""))
        return record

    # -- steps ------------------------------------------------------------------------

    def _run(self, rid: int) -> None:
        faults.point("site.run.start")
        self._apply_inbox()  # a Siège package kept from a run that died before applying it
        self.emit(Progress("capture", self.site, detail="lecture des changements"))
        exported = self.node.export(
            cancel=self.cancel,
            since=self.options.since,
            progress=lambda table, n: self.emit(Progress("capture", self.site, n, 0, table)),
            only_if_new=True,
        )
        self.totals.rows_sent = exported.manifest.rows
        self.reports.update(rid, rows_sent=self.totals.rows_sent)
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
        self._receive()
        if self.node.state.outbox():
            raise TransportError(
                "le siège n'a pas encore accusé réception de tous les envois de ce poste ; "
                "ils seront renvoyés à la prochaine synchronisation"
            )
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

    def _client(self) -> SiteClient:
        client = self.connect()
        client.cancel = self.cancel
        client.on_progress = self._on_bytes
        client.on_confirmed = self._on_held
        return client

    def _on_bytes(self, done: int, total: int) -> None:
        """A transfer got further than ever before (a block went through, or a new
        attempt resumes past where the last one started): that attempt made progress."""
        if done > self._furthest.get(total, -1):
            self._furthest[total] = done
            self._moved += 1

    def _on_held(self, size: int, total: int) -> None:
        """The Siège holds more of an upload than it ever did: a cut that shows only at the
        size check (« envoi incomplet ») after more bytes got through is progress too."""
        if size > self._held.get(total, 0):
            self._held[total] = size
            self._moved += 1

    def _acknowledge(self) -> None:
        """Tell the Siège which of its packages this site applied, with this site's
        checksums: only then does the Siège count it as served. The site also compares
        its checksums with the Siège's (sent in that package): the « Contrôle »."""
        made = make_ack(self.node)
        if made is None:
            return
        ack, theirs = made
        name = ack_name(ack.site, ack.sequence)
        folder = self.node.packages_dir / "acks"
        folder.mkdir(parents=True, exist_ok=True)
        local = folder / name
        atomic_write(local, ack.to_bytes())
        faults.point("site.ack.written")

        def send() -> None:
            with self._client() as client:
                client.upload(local, name)

        self._retry(send, "engine.attempt.send")
        faults.point("site.ack.sent")
        with self.node.state.transaction():
            self.node.state.set_meta(ACK_DUE, "0")
        local.unlink(missing_ok=True)
        text, tables = controle(ack.checksums, theirs)
        self.totals.details["controle"] = text
        if tables:
            raise SynchroError(
                f"Contrôle : {text} (différentes du siège après ce tour)", kind=ErrorKind.DATA
            )

    def _apply_inbox(self) -> None:
        """Apply, before anything else, a Siège package a previous run downloaded (complete
        and verified, under its final name) but died before applying."""
        inbox = self.node.packages_dir / "inbox"
        if not inbox.is_dir():
            return
        for stray in inbox.glob("*.part"):
            if not self._offered_name(stray.name[: -len(".part")]):
                stray.unlink(missing_ok=True)
        for local in sorted(inbox.glob("*.pkg")):
            try:
                self._apply_local(local)
            except NotYet:  # already applied before the crash, or stale: removed
                continue
            except PackageError:
                local.unlink(missing_ok=True)  # damaged: it will be downloaded again
                continue
            self.emit(said("engine.inbox", name=local.name))

    def _offered_name(self, name: str) -> bool:
        return read_published_name(name, self.site) is not None

    def _upload_all(self) -> None:
        """Every waiting package sent and verified under a temporary name first, then all
        renamed: the Siège sees them together and does not close its round between two."""
        with self._client() as client:
            outbox = self.node.state.outbox()
            for sequence, path in outbox:
                if self.cancel.is_set():
                    raise Cancelled()
                size = path.stat().st_size
                self.emit(
                    Progress("send", self.site, self.totals.rows_sent, size, f"paquet {sequence}")
                )
                client.stage(path, path.name)
                self.totals.bytes_sent += size
            for _sequence, path in outbox:
                client.finish_upload(path.name)
        faults.point("site.uploaded")
        self.emit(said("engine.sent"))

    def _receive(self) -> None:
        """Poll for the Siège's package within attempts × delay; apply it when it comes."""
        budget = max(1, self.options.attempts) * self.options.delay_s
        deadline = self.monotonic() + budget
        failures = tries = 0
        pause = min(FIRST_POLL_S, self.options.poll_s, self.options.delay_s)
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            moved = self._moved
            try:
                result = self._fetch_once()
            except NotYet as exc:
                if self.monotonic() >= deadline:
                    left = self._round_time_left()
                    if left > 0:
                        deadline = self.monotonic() + left + ROUND_MARGIN_S
                        until = self.now() + dt.timedelta(seconds=left)
                        self.emit(said("engine.wait.longer", until=f"{until:%H:%M}"))
                        continue
                    raise TransportError(
                        f"{exc} (attente de {budget / 60:.0f} min dépassée ; les données de ce "
                        "poste sont au siège et seront intégrées)"
                    ) from None
                faults.point("site.wait")
                self._wait(pause)
                pause = min(pause * POLL_GROWTH, self.options.poll_s, self.options.delay_s)
                continue
            except TransportError as exc:
                # an attempt that moved data made progress: the count starts again
                failures = 1 if self._moved > moved else failures + 1
                tries += 1  # (bounded: a transfer that always fails after moving data ends)
                self.emit(
                    said(
                        "engine.attempt.receive",
                        number=failures,
                        attempts=self.options.attempts,
                        error=exc,
                    )
                )
                from synchro.transport.retry import is_permanent

                too_many = tries >= 10 * max(1, self.options.attempts)
                if is_permanent(exc) or failures >= self.options.attempts or too_many:
                    raise
                self._wait(self.options.delay_s)
                continue
            if result:
                return

    def _round_time_left(self) -> float:
        """Seconds the Siège's open round still waits for establishments (its
        ``/out/tour.json``), 0 when no round is open or the file cannot be read."""
        try:
            with self._client() as client:
                data = client.read_small(ROUND_FILE)
            state = json.loads(data or b"{}")
            if not isinstance(state, dict) or state.get("ouvert") is not True:
                return 0.0
            end = dt.datetime.fromisoformat(str(state["fin"]))
            left = (end - dt.datetime.now(dt.UTC)).total_seconds()
        except (SynchroError, OSError, ValueError, KeyError, TypeError):
            return 0.0
        return min(max(0.0, left), MAX_ROUND_WAIT_S)

    def _wait(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        elif self.cancel.wait(seconds):
            raise Cancelled()

    def _fetch_once(self) -> bool:
        """True when the Siège's package is applied (or nothing more is due)."""
        with self._client() as client:
            offers = sorted(
                (named.sequence, named.origin, name)
                for name in client.list_out()
                if (named := read_published_name(name, self.site))
            )
            if not offers:
                raise NotYet("le siège n'a pas encore publié les données consolidées")
            sequence, origin, name = offers[-1]
            if self.node.state.is_applied(origin, sequence):
                if not self.node.state.outbox():
                    return True
                # (a Siège with a new state reuses numbers: look once, unless it is the
                # very file applied last)
                if name in self._seen or self._applied_file(client, name):
                    raise NotYet("le siège n'a pas encore intégré le dernier envoi de ce poste")
            if name in self._stale:  # already found stale: wait for the next one
                raise NotYet("le siège n'a pas encore intégré le dernier envoi de ce poste")
            local = self.node.packages_dir / "inbox" / name
            local.parent.mkdir(parents=True, exist_ok=True)
            self.emit(Progress("receive", self.site, detail=name))
            client.download(name, local)
        faults.point("site.downloaded")
        return self._apply_local(local)

    def _applied_file(self, client: SiteClient, name: str) -> bool:
        """True when ``out/<name>`` is the very file this site applied last (same SHA-256):
        no need to download it again to find it is a duplicate."""
        text = self.node.state.get_meta(APPLIED_FILE)
        if not text:
            return False
        known = json.loads(text)
        return bool(
            known.get("name") == name and client.remote_sha256(f"out/{name}") == known.get("sha256")
        )

    def _apply_local(self, local: Path) -> bool:
        """Apply a downloaded Siège package (kept in the inbox until applied)."""
        digest = file_sha256(local)
        size = local.stat().st_size
        self.totals.bytes_received += size
        result = self.node.import_package(
            local,
            cancel=self.cancel,
            progress=lambda table, n: self.emit(Progress("apply", self.site, n, size, table)),
        )
        if result.status in ("stale", "duplicate"):
            local.unlink(missing_ok=True)
            self._seen.add(local.name)
            if result.status == "stale":
                self._stale.add(local.name)
            raise NotYet(result.message or "le siège n'a pas encore publié de nouvelles données")
        faults.point("site.applied")
        with self.node.state.transaction():
            known = {"name": local.name, "sha256": digest}
            self.node.state.set_meta(APPLIED_FILE, json.dumps(known))
        # the Siège's schemas as this package carried them: `synchro check` compares with
        # them when the Siège cannot be reached (never raises)
        remember_received(self.node.packages_dir, result.manifest, self.now())
        stats = result.stats
        self.totals.rows_received += stats.rows
        self.totals.conflicts += stats.conflicts
        self.totals.quarantined += stats.quarantined
        package_id = f"{result.manifest.origin}#{result.manifest.sequence}"
        self._collect_details(package_id)
        local.unlink(missing_ok=True)
        self.emit(said("engine.applied", rows=stats.rows))
        return True

    def _collect_details(self, package_id: str) -> None:
        conflicts = self.node.state.conflicts(package_id)
        quarantined = self.node.state.quarantined(package_id)
        if conflicts:
            self.totals.details.setdefault("conflicts", []).extend(conflicts[:200])
        if quarantined:
            self.totals.details.setdefault("quarantined", []).extend(quarantined[:200])


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
