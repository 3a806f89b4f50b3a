"""The Siège's side of acknowledged delivery.

When the Siège applies an establishment's package and publishes the answer, that
establishment's report row stays ``En cours...`` and *awaits* an acknowledgement
(``engine.ack``): the row is recorded with the sequence of the package published to the
site just after. An ack naming that package or a later one — or an earlier one that answered
the same delivery, published again by a Siège started again since — makes the row ``OK`` — or
``Echec`` when the « Contrôle » finds tables that differ; no ack within ``ack_wait`` makes
it ``Echec`` (« accusé de réception non reçu »). The awaited rows are kept in the Siège's
state (meta ``await:<site>``), so a restarted Siège still knows them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from synchro.engine.ack import EARLIER, IDENTICAL, Ack, controle, controle_words, read_ack
from synchro.engine.siege_node import SiegeNode
from synchro.errors import ErrorKind
from synchro.i18n import render
from synchro.names import read_ack_name
from synchro.package.manifest import Invalid
from synchro.package.stream import Source, frame, read_header
from synchro.reports import Outcome, ReportStore, State
from synchro.scheduler import within

log = logging.getLogger(__name__)
NO_ACK = (
    "accusé de réception non reçu : l'établissement n'a pas confirmé avoir intégré les données "
    "du siège (elles lui restent proposées)"
)


@dataclass(frozen=True)
class Awaited:
    rid: int  # report row
    sequence: int  # the Siège package published to the site after that row's delivery
    until: str  # ISO time after which the row is Echec


@dataclass(frozen=True)
class Received:
    ack: Ack
    text: str  # the Contrôle, in words
    tables: list[str]  # tables that differ
    resolved: list[int]  # report rows made final by this ack


class AckBook:
    def __init__(self, node: SiegeNode, reports: ReportStore, ftp_root: Path) -> None:
        self.node, self.reports, self.ftp_root = node, reports, ftp_root
        self.archive = node.packages_dir / "archive"

    # -- awaited rows -----------------------------------------------------------------

    def awaited(self, site: str) -> list[Awaited]:
        text = self.node.state.get_meta(f"await:{site}")
        if not text:
            return []
        return [Awaited(int(r), int(s), str(u)) for r, s, u in json.loads(text)]

    def _store(self, site: str, rows: list[Awaited]) -> None:
        data = json.dumps([[a.rid, a.sequence, a.until] for a in rows])
        with self.node.state.transaction():
            self.node.state.set_meta(f"await:{site}", data)

    def expect(self, site: str, rid: int, sequence: int, until: dt.datetime) -> None:
        """Row ``rid`` of ``site`` is served once the site acks ``sequence`` or later."""
        rows = [a for a in self.awaited(site) if a.rid != rid]
        self._store(site, [*rows, Awaited(rid, sequence, until.isoformat())])

    def waiting(self, sites: list[str]) -> list[str]:
        """Establishments with a row still waiting for their ack."""
        return [s for s in sites if self._open_rows(s)]

    def _open_rows(self, site: str) -> list[Awaited]:
        return [a for a in self.awaited(site) if self._running(a.rid)]

    def _running(self, rid: int) -> bool:
        try:
            return self.reports.get(rid).state is State.RUNNING
        except KeyError:
            return False

    def expire(
        self,
        sites: list[str],
        now: dt.datetime,
        *,
        force: bool = False,
        longest: dt.timedelta | None = None,
    ) -> list[int]:
        """Rows whose ack did not come in time become ``Echec`` (all of them: ``force``).
        ``longest``: no row waits longer than that from ``now`` (a time set by a clock put
        back since is brought back to it)."""
        ended: list[int] = []
        for site in sites:
            keep: list[Awaited] = []
            for a in self.awaited(site):
                if not self._running(a.rid):
                    continue
                until = dt.datetime.fromisoformat(a.until)
                if longest is not None and within(until, now, longest) != until:
                    until = within(until, now, longest)  # set by a clock put back since
                    a = Awaited(a.rid, a.sequence, until.isoformat())
                if force or now >= until:
                    self.reports.finish(
                        a.rid,
                        State.FAILED,
                        now=now,
                        error=NO_ACK,
                        details={"error_kind": Outcome.NO_ACK},
                    )
                    ended.append(a.rid)
                else:
                    keep.append(a)
            if keep != self.awaited(site):
                self._store(site, keep)
        return ended

    # -- ack files ----------------------------------------------------------------------

    def take(self, sites: list[str], now: dt.datetime) -> list[Received]:
        """Read and file every ack waiting in the establishments' ``/in`` folders."""
        found: list[Received] = []
        for site in sites:
            try:  # os.scandir: called at every step for every site (see list_deliveries)
                with os.scandir(os.path.join(self.ftp_root, site, "in")) as inbox:
                    names = sorted(e.name for e in inbox if read_ack_name(e.name) is not None)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                path = self.ftp_root / site / "in" / name
                ack = read_ack(path, site)
                if ack is not None and ack.origin == self.node.code:
                    found.append(self._receive(ack, now))
                _file(path, self.archive / site / "acks")
        return found

    def served(self, site: str) -> int:
        """The last package of ``site`` whose answer it acknowledged having applied."""
        return int(self.node.state.get_meta(f"served:{site}") or 0)

    def _receive(self, ack: Ack, now: dt.datetime) -> Received:
        state = self.node.state
        if ack.instance != state.instance:  # a package of an earlier life of this Siège
            return Received(ack, EARLIER, [], [])
        ours = self.node.published_sums(ack.sequence)
        agreed = self.node.published_agreed(ack.sequence)
        text, tables, _pending = controle(ack.checksums, ours, ack.agreed, agreed)
        with state.transaction():
            acked, applied, out_seq = state.site(ack.site)  # a position of this Siège's log
            position = self.node.acked_after(ack.site, acked, ack.sequence, ack.to_pos)
            state.set_site(ack.site, position, applied, out_seq)
            served = self.node.answered(ack.sequence, ack.site)
            if served > self.served(ack.site):
                state.set_meta(f"served:{ack.site}", str(served))
            state.set_meta(
                f"ack:{ack.site}",
                json.dumps({"sequence": ack.sequence, "controle": text, "at": now.isoformat()}),
            )
        resolved: list[int] = []
        keep: list[Awaited] = []
        for a in self.awaited(ack.site):
            if not self._running(a.rid):
                continue
            if not self._serves(a, ack, served):
                keep.append(a)
                continue
            details: dict[str, object] = {"controle": text, "accuse": ack.sequence}
            if ack.clock:  # the establishment's clock is apart from this one: said here too
                details["clock"] = ack.clock
            if tables:
                said = ("engine.controle.failed", {"controle": [controle_words(text, tables)]})
                self.reports.finish(
                    a.rid,
                    State.FAILED,
                    now=now,
                    error=render(said, "fr"),  # « Contrôle : tables différentes : … »
                    details={**details, "error_kind": ErrorKind.DATA, "error_say": list(said)},
                )
            else:
                self.reports.finish(a.rid, State.OK, now=now, details=details)
            resolved.append(a.rid)
        self._store(ack.site, keep)
        return Received(ack, text, tables, resolved)

    def _serves(self, a: Awaited, ack: Ack, served: int) -> bool:
        """Whether ``ack`` makes the awaited row ``a`` final: it names the package the row
        waits for or a later one; or an earlier package that answered the same delivery of
        the site or a later one (``served``) — a Siège started again after the site had
        applied its answer publishes that answer again, and the site's acknowledgement of
        the first copy, in flight meanwhile, serves the row as well (found by the second
        kill of ``bench/soak_faults.py``, seed 222)."""
        if a.sequence <= ack.sequence:
            return True
        return 0 < self.node.answered(a.sequence, ack.site) <= served


def controle_summary(texts: dict[str, str]) -> str:
    """One line for a round: « identiques » everywhere, or who differs."""
    differ = {s: t for s, t in texts.items() if t != IDENTICAL}
    if not differ:
        return IDENTICAL
    return " ; ".join(f"{s} : {t}" for s, t in sorted(differ.items()))


def peek_instance(path: Path) -> str | None:
    """The sender's state identity written in a package's header (None: unreadable).
    Read without verifying the whole file: only to count a delivery as new or not."""
    try:
        with open(path, "rb") as fh:
            size = path.stat().st_size
            _trailer, start = frame(fh, size)
            header, _raw = read_header(Source(fh, start))
    except (OSError, Invalid, ValueError):
        return None
    return str((header.meta or {}).get("instance", ""))


def _file(path: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path.replace(folder / path.name)
    except OSError as exc:  # Windows: still open by the FTP server; next step
        log.info("%s non déplacé pour l'instant : %s", path, exc)
