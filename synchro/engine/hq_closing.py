"""The end of a Siège's round: the close that applies and publishes, who sent nothing, and
the round's verdict once the establishments' acks are in (``engine.hq_round`` opens rounds
and decides when one closes; this is how it ends).

``RoundClosing`` is a part of ``HQService``, built on ``DeliveryWork`` (whose work the close
runs): its methods use the service's open round, reports, acks and callbacks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from synchro import faults
from synchro.engine.events import said, state_changed
from synchro.engine.hq_deliveries import DeliveryOutcome, DeliveryWork
from synchro.engine.hq_files import announce
from synchro.engine.hq_takeover import TakenOver
from synchro.engine.hq_verdict import Unwritten, early_sites, record_missing, round_verdict
from synchro.errors import Cancelled, SynchroError, error_details, error_text
from synchro.reports import RowError, RunRecord, State


@dataclass
class OpenRound:
    """A round from its opening (``HQService.round``) until its row is final (``closing``
    while its establishments' acks are awaited)."""

    report_id: int
    opened: dt.datetime
    deadline: dt.datetime
    manual: bool
    send_restored: bool = False  # Envoyer: the Siège's restored database sent as it is
    missing: list[str] = field(default_factory=list)  # set at the close
    leftovers: set[tuple[str, int, int]] = field(default_factory=set)  # in /in at opening
    taken: TakenOver = field(default_factory=TakenOver)  # from a round a crash interrupted


class RoundClosing(DeliveryWork):
    """Closing rounds and making their rows final, for ``HQService``."""

    round: OpenRound | None
    closing: OpenRound | None  # closed, waiting for the establishments' acks
    last_round: RunRecord | None
    on_round_closed: Callable[[RunRecord], None] | None
    security_events: Callable[[], list[object]] | None
    unwritten: Unwritten  # round rows a full disk kept from being final

    def _check_closing(self) -> None:
        """End the closed round once no establishment row waits for its ack any more."""
        current = self.closing
        if current is None:
            return
        members = self.reports.for_round(current.report_id)
        if any(r.state is State.RUNNING for r in members if r.id != current.report_id):
            return
        self.closing = None
        self._finish_round(current, State.OK, "")

    def _close(self, state: State, error: str) -> None:
        current = self.round
        assert current is not None
        self.round = None
        if state is State.OK:  # the establishments wait on while it applies and publishes
            self._announce(closing=True)
        faults.point("hq.round.closing")
        try:
            state, error = self._conclude(current, state, error)
        except Exception as exc:
            self._failed(current, exc)
            raise
        finally:
            self._announce()  # closed: the answers are published (or the round failed)
        if state is State.OK:
            self.closing = current  # ends when every establishment served has acked
            self._check_closing()
            return
        self._finish_round(current, state, error)

    def _finish_round(self, current: OpenRound, state: State, error: str) -> None:
        """The round's verdict, once the acks are in (or overdue): its row, its email."""
        try:
            state, error, details = round_verdict(
                self.reports,
                current.report_id,
                current.missing,
                self.code,
                state,
                error,
                self.now(),
                self.security_events,
            )  # from its establishments' rows
        except Exception as exc:
            self._failed(current, exc)
            raise
        faults.point("hq.report.round")
        record = self._end(current, state, error, details)
        faults.point("hq.round.closed")
        if self.on_round_closed is not None:  # after the row is final (email, watermark)
            self.on_round_closed(record)

    def _failed(self, current: OpenRound, exc: Exception) -> None:
        """A round that could not be concluded: its row made final, its email sent."""
        record = self._end(current, State.FAILED, error_text(exc), error_details(exc))
        if self.on_round_closed is not None:
            self.on_round_closed(record)

    def _conclude(self, current: OpenRound, state: State, error: str) -> tuple[State, str]:
        """Apply and publish (for an ``OK`` close); who sent nothing is ``Echec`` at once."""
        if state is State.OK:
            try:
                outcome = self._process(
                    self.deliveries(),
                    round_id=current.report_id,
                    publish_all=True,
                    rows=dict(current.taken.awaiting),
                    manual=current.manual,
                    send_restored=current.send_restored,
                )
            except Cancelled as exc:
                state, error = State.STOPPED, str(exc)
                outcome = DeliveryOutcome()
            except SynchroError as exc:
                state, error = State.FAILED, str(exc)
                self.reports.merge_details(current.report_id, error_details(exc))
                outcome = DeliveryOutcome()
            delivered = self._early(current) | current.taken.sites | set(outcome.applied)
            delivered |= outcome.refused | outcome.failed  # « en échec », not « sans données »
            current.missing = [s for s in self.settings.sites if s not in delivered]
            rid, opened, events = current.report_id, current.opened, self.security_events
            record_missing(self.reports, events, current.missing, rid, opened, self.now())
        return state, error

    def _end(
        self, current: OpenRound, state: State, error: str, details: dict[str, object]
    ) -> RunRecord:
        """The round's row made final (or held: ``hq_verdict.Unwritten``), and said."""
        try:
            record = self.reports.finish(
                current.report_id, state, now=self.now(), error=error, details=details
            )
        except SynchroError as exc:
            record = self.unwritten.hold(
                current.report_id, self.code, current.opened, self.now(), exc
            )
        state, error = record.state, record.error  # OK becomes Echec with rows not applied
        self.last_round = record
        word = {State.OK: "ok", State.STOPPED: "stopped"}.get(state, "failed")
        row = RowError(record)
        self.emit(state_changed(word, current.report_id, row, "engine.round.done"))
        if error:
            self.emit(said("engine.round.end_error", state=state, error=row))
        else:
            self.emit(said("engine.round.end", state=state, detail=""))
        return record

    def _announce(self, *, closing: bool = False) -> None:
        """``/out/tour.json`` for every establishment (``hq_files.announce``)."""
        deadline = self.round.deadline if self.round is not None else None
        if deadline is None and closing:
            deadline = self.now() + self.settings.max_reception
        announce(self.ftp_root, self.settings.sites, self.settings.awaited, deadline, closing)

    def _early(self, current: OpenRound) -> set[str]:
        """A scheduled round also counts the sites that did their whole run just before it
        opened (``hq_verdict.early_sites``); a MANUELLE one only what comes while open."""
        if current.manual:
            return set()
        return early_sites(self.reports, current.report_id, current.opened)
