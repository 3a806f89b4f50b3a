"""A Serveur's run, the receiving half: the Siège's answer polled for, downloaded to
``inbox/`` and applied (and one a previous run downloaded but did not apply, first).

``Receiving`` is a part of ``engine.site_run.SiteRun``: its methods use the run's node,
options, flags and totals. The connection helpers (``_client`` and the progress it
reports, which makes an attempt count as moving data) are here too: the upload and the
ack use them as well.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synchro import faults
from synchro.engine import twins
from synchro.engine.events import Emit, Progress, said
from synchro.engine.hq_files import ROUND_FILE
from synchro.engine.resend import RESENT
from synchro.engine.schema_exchange import remember_received
from synchro.engine.serveur_node import ServeurNode
from synchro.errors import Cancelled, PackageError, Say, SynchroError, TransportError
from synchro.names import read_published_name
from synchro.package import read_manifest
from synchro.transport.files import file_sha256
from synchro.transport.ftp_client import SiteClient


@dataclass(frozen=True)
class RunOptions:
    """A run's settings, and what the person who started it asked (``asked``)."""

    attempts: int = 10
    delay_s: float = 600.0
    poll_s: float = 30.0
    since: dt.datetime | None = None  # modification-date pre-filter bound (watermark - margin)
    manual: bool = False  # MANUELLE, ``synchro sync``: a person's word for mass deletes
    take_back: bool = False  # first take the group's data back (``ServeurNode.take_back``)
    send_restored: bool = False  # Envoyer: a restored database sent as it is (``marks``)


MANUAL = ("sync", "take-back", "send")  # the engine thread's commands a person gives


def asked(command: str) -> dict[str, bool]:
    """``RunOptions``' fields for the engine thread's ``command``: ``sync`` (MANUELLE),
    after a restore ``take-back`` (*Reprendre les données du groupe*) or ``send``
    (Envoyer); anything else is the hour's run."""
    return {
        "manual": command in MANUAL,
        "take_back": command == "take-back",
        "send_restored": command == "send",
    }


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


Connect = Callable[[], SiteClient]
ROUND_MARGIN_S = 120.0  # after the Siège's deadline: its close and publication take time
APPLIED_FILE = "applied_file"  # meta: name and SHA-256 of the Siège file applied last
MAX_ROUND_WAIT_S = 24 * 3600.0  # a wrong clock or file never makes a run wait forever
FIRST_POLL_S, POLL_GROWTH = 1.0, 1.5  # waiting for the Siège: 1 s, 1.5 s, 2.25 s… up to poll_s


class NotYet(TransportError):
    """The Siège has not published this site's consolidated package yet (retried)."""


UNAPPLIED: Say = ("engine.wait.unapplied", {})  # the Siège has not taken our last yet


class Receiving:
    """Receiving the Siège's answer, for ``SiteRun``."""

    node: ServeurNode
    connect: Connect
    options: RunOptions
    cancel: threading.Event
    emit: Emit
    now: Callable[[], dt.datetime]
    sleep: Callable[[float], None] | None
    monotonic: Callable[[], float]
    site: str
    totals: RunTotals
    _seen: set[str]
    _stale: set[str]
    _moved: int
    _furthest: dict[int, int]
    _held: dict[int, int]
    _kept: SiteClient | None  # the session a waiting site keeps between polls

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
                    why = [exc.say] if exc.say is not None else str(exc)
                    minutes = f"{budget / 60:.0f}"
                    gave_up = ("engine.wait.gave_up", {"why": why, "minutes": minutes})
                    raise TransportError(say=gave_up) from None
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
        """True when the Siège's package is applied (or nothing more is due).

        A site that waits keeps its session between polls: a new session per poll (TLS
        handshake, login) cost the Siège most of its work per waiting site, 7–8 logins per
        site in a round of 200 against 4–6 in one of 50 (issue 15). A kept session the
        Siège dropped meanwhile (its idle timeout, a restart, a cut) is not a failed attempt:
        the poll is made again at once on a new one."""
        kept, self._kept = self._kept, None
        if kept is not None:
            try:
                return self._look(kept)
            except NotYet:
                raise
            except TransportError:
                pass  # ``_look`` closed it: once more, on a new session
        return self._look(self._client())

    def _look(self, client: SiteClient) -> bool:
        """One poll on ``client``: kept open when there is nothing yet, else closed."""
        try:
            newest = self._newest(client)
            if newest is None:
                raise NotYet(say=("engine.wait.unpublished", {}))
            sequence, origin, name = newest
            if self.node.state.is_applied(origin, sequence):
                if not self.node.state.outbox():
                    return True
                # (a Siège with a new state reuses numbers: look once, unless it is the
                # very file applied last)
                if name in self._seen or self._applied_file(client, name):
                    raise NotYet(say=UNAPPLIED)
            if name in self._stale:  # already found stale: wait for the next one
                raise NotYet(say=UNAPPLIED)
            local = self.node.packages_dir / "inbox" / name
            local.parent.mkdir(parents=True, exist_ok=True)
            self.emit(Progress("receive", self.site, detail=name))
            client.download(name, local)
        except NotYet:
            self._kept = client
            raise
        finally:
            if self._kept is not client:
                client.close()
        faults.point("site.downloaded")
        return self._apply_local(local)

    def _newest(self, client: SiteClient) -> tuple[int, str, str] | None:
        """The Siège's newest package to this site in ``/out``: (sequence, origin, name)."""
        offers = sorted(
            (named.sequence, named.origin, name)
            for name in client.list_out()
            if (named := read_published_name(name, self.site))
        )
        return offers[-1] if offers else None

    def _catch_up(self) -> None:
        """Before the packages of a machine held as one of two go again: the Siège's newest
        package to this code read (downloaded, verified, never applied), so that they are
        numbered after every package the other machine sent since this one was held
        (``twins.catch_up``); nothing published: nothing to catch up with."""
        client = self._client()
        try:
            newest = self._newest(client)
            if newest is None:
                return
            local = self.node.packages_dir / "peek" / newest[2]
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download(newest[2], local)
        finally:
            client.close()
        try:
            manifest = read_manifest(local, self.node.keys())
            twins.catch_up(self.node, manifest, self.node.acked_seq(manifest))
        finally:
            local.unlink(missing_ok=True)

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
            if result.say is not None:
                raise NotYet(say=result.say)
            if result.message:
                raise NotYet(result.message)
            raise NotYet(say=("engine.wait.nothing_new", {}))
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
        if result.attempts > 1:  # made again after the database ended its transaction
            self.totals.details["attempts"] = result.attempts
        self._copy_seen(result.manifest.meta.get("copy_seen"))
        local.unlink(missing_ok=True)
        self.emit(said("engine.applied", rows=stats.rows))
        return True

    def _copy_seen(self, seen: object) -> None:
        """The Siège refused a package under this code as another machine's: said in the
        Rapport — unless it was one of ours, refused before we sent it again."""
        if not isinstance(seen, dict) or not isinstance(seen.get(self.site), dict):
            return
        ours = json.loads(self.node.state.get_meta(RESENT) or "[]")
        if seen[self.site].get("number") not in ours:
            self.totals.details["copy_seen"] = seen[self.site]

    def _collect_details(self, package_id: str) -> None:
        conflicts = self.node.state.conflicts(package_id)
        quarantined = self.node.state.quarantined(package_id)
        if conflicts:
            self.totals.details.setdefault("conflicts", []).extend(conflicts[:200])
        if quarantined:
            self.totals.details.setdefault("quarantined", []).extend(quarantined[:200])
