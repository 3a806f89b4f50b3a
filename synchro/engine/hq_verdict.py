"""What the Rapport says of a Siège round: who counts as having delivered early, and the
round's final state from its establishments' rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

from synchro.engine.hq_acks import controle_summary
from synchro.errors import STOPPED_SAY, ErrorKind, Say, SynchroError
from synchro.i18n import render
from synchro.reports import Outcome, ReportStore, RunRecord, State
from synchro.reports.records import unrecorded_run
from synchro.transport.ftp_policy import HQ_DISK_FULL

NO_DATA = "aucune donnée reçue"
UNFINISHED = "le tour s'est terminé avant la fin du traitement de ses données"
EARLY = dt.timedelta(hours=2)  # a scheduled round counts deliveries this much before it


def early_sites(reports: ReportStore, round_id: int, opened: dt.datetime) -> set[str]:
    """Establishments that did their whole run (delivered, acknowledged) outside a round
    just before a scheduled one opened at ``opened`` (a clock a little ahead). Read from
    the report, so a restart forgets nothing."""
    rounds = [
        r for r in reports.latest(50, kinds=("round",)) if r.ended is not None and r.id != round_id
    ]
    since = opened - EARLY
    if rounds and rounds[0].ended is not None:
        since = max(since, rounds[0].ended)
    return {
        r.site
        for r in reports.latest(1000, kinds=("site-in-round",))
        if r.round_id is None and r.state is State.OK and r.started >= since
    }


def missing_row(
    events: Callable[[], list[object]] | None, site: str, since: dt.datetime
) -> tuple[str, dict[str, object]]:
    """The error and kind of the row of an establishment that delivered nothing: « aucune
    donnée reçue », unless this Siège's FTP server refused its upload since ``since`` for
    want of room on its disk; then that (kind disk: the Siège's administrator must free
    some), not an establishment that sent nothing. Returns the error and the row's details
    (its kind, and its words when they are not a round's rule's own)."""
    for event in reversed(events() if events is not None else []):
        reason = str(getattr(event, "reason", ""))
        recent = float(getattr(event, "when", 0.0)) >= since.timestamp()
        if getattr(event, "user", "") == site and HQ_DISK_FULL in reason and recent:
            say = ("engine.round.upload_refused", {"reason": reason})
            return render(say, "fr"), {"error_kind": str(ErrorKind.DISK), "error_say": list(say)}
    return NO_DATA, {"error_kind": str(Outcome.NO_DATA)}


def record_missing(
    reports: ReportStore,
    events: Callable[[], list[object]] | None,
    missing: Sequence[str],
    round_id: int,
    opened: dt.datetime,
    now: dt.datetime,
) -> None:
    """A row for each establishment of the round that delivered nothing, dated from its
    opening: « aucune donnée reçue », or why not (``missing_row``)."""
    for site in missing:
        rid = reports.start(site, "site-in-round", round_id=round_id, now=opened)
        text, details = missing_row(events, site, opened)
        reports.finish(rid, State.FAILED, now=now, error=text, details=details)


def round_verdict(
    reports: ReportStore,
    round_id: int,
    missing: Sequence[str],
    hq_code: str,
    state: State,
    error: str,
    now: dt.datetime,
    security_events: Callable[[], list[object]] | None = None,
) -> tuple[State, str, dict[str, object]]:
    """The round's final state, error and details from its establishments' rows; a row
    still ``En cours...`` (cut short by an error) is closed ``Echec`` first."""
    for r in reports.for_round(round_id):
        if r.state is State.RUNNING and r.id != round_id:
            cut: dict[str, object] = {"error_kind": Outcome.UNFINISHED}
            reports.finish(r.id, State.FAILED, now=now, error=UNFINISHED, details=cut)
    members = reports.for_round(round_id)
    failures = [
        r.site
        for r in members
        if r.site != hq_code and r.state is State.FAILED and r.error != NO_DATA
    ]
    checks = {r.site: str(r.details["controle"]) for r in members if r.details.get("controle")}
    say = STOPPED_SAY if state is State.STOPPED else None  # (only ARRETER stops a round)
    if state is State.OK and (missing or failures):
        state = State.FAILED
        parts: list[Say] = []
        if missing:
            parts.append(("engine.round.sites.missing", {"sites": ", ".join(missing)}))
        if failures:
            parts.append(("engine.round.sites.failed", {"sites": ", ".join(failures)}))
        say = ("engine.round.sites", {"parts": parts})
        error = render(say, "fr")
    details: dict[str, object] = {"missing": list(missing), "failed": failures}
    if say is not None:  # (``records.error_in`` says it in the UI language)
        details["error_say"] = list(say)
    if checks:
        details["controle"] = controle_summary(checks)
    if security_events is not None:
        details["security"] = [str(e) for e in security_events()][-100:]
    return state, error, details


class Unwritten:
    """Round rows the Rapport could not make final (its disk full): the round is said and
    emailed as ``Echec`` with the Rapport's error all the same, and each row is written at
    the service's next step that finds room, so none stays « En cours... » (where the next
    start would take it for a round a crash cut)."""

    def __init__(self) -> None:
        self.rows: dict[int, RunRecord] = {}

    def hold(
        self, report_id: int, code: str, opened: dt.datetime, now: dt.datetime, exc: BaseException
    ) -> RunRecord:
        record = dataclasses.replace(
            unrecorded_run(code, opened, now, exc, kind="round"), id=report_id
        )
        self.rows[report_id] = record
        return record

    def write(self, reports: ReportStore) -> None:
        for report_id, record in list(self.rows.items()):
            try:
                reports.finish(
                    report_id,
                    record.state,
                    now=record.ended or record.started,
                    error=record.error,
                    details=record.details,
                )
            except SynchroError:
                return  # (still no room: the next step tries again)
            del self.rows[report_id]
