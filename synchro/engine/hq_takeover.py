"""A Siège round that takes over the round a crash interrupted.

A Siège killed after it applied the establishments' packages leaves its round ``En cours...``;
the next start closes that row « interrompu ». The establishments' data is integrated by then
(and sometimes already answered and acknowledged), so the establishments do not deliver again:
they wait for the Siège's answer, or have finished. The first round the restarted process
opens soon after its start (within *Temps maximum de réception*) is the same round carried
on — not one a later process opens (``interrupted_round``), nor for an establishment
whose ack the restarted process took before (its run is over: it delivers anew): each
establishment that had a row in the interrupted round counts as delivered —

- **awaiting**: the Siège applied a package of that site it holds no acknowledgement for (it
  died before publishing, or before the site's ack came): the new round opens the site a row
  ``En cours...`` that the site's ack makes final, exactly as for a delivery of its own;
- **done**: the site had acknowledged its answer: its row in the new round is ``OK`` at once,
  and says which round it was taken over from.

An establishment whose row in the interrupted round was a real failure (a refused package) is
not taken over: it must deliver again. What the interrupted round left in ``/in`` unapplied is
not taken over here: it is a delivery of the new round like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from synchro.engine.hq_acks import AckBook
from synchro.reports import INTERRUPTED, ReportStore, RunRecord, State


@dataclass(frozen=True)
class TakenOver:
    from_round: int | None = None  # the interrupted round's report row
    done: frozenset[str] = frozenset()  # served and acknowledged before the crash
    awaiting: dict[str, int] = field(default_factory=dict)  # site -> new row awaiting its ack

    @property
    def sites(self) -> set[str]:
        return set(self.done) | set(self.awaiting)


def interrupted_round(
    reports: ReportStore,
    now: dt.datetime,
    window: dt.timedelta,
    inherited: Collection[int] | None = None,
) -> RunRecord | None:
    """The newest round row, if a crash interrupted it and this start closed it recently:
    among ``inherited``, the rows this process's start closed (None: any). A row an
    earlier start closed is not carried on: that process saw the round's aftermath through
    (published the answers, took the acks), and a round opened now is a new one, whose
    establishments deliver again. Before, the first round of any later process within the
    window counted them as delivered and closed at once, before their new packages came:
    those reached the others only a round later."""
    rounds = reports.latest(1, kinds=("round",))
    if not rounds:
        return None
    last = rounds[0]
    if last.state is not State.FAILED or last.error != INTERRUPTED or last.ended is None:
        return None
    if inherited is not None and last.id not in inherited:
        return None
    return last if now - last.ended <= window else None


def take_over(
    reports: ReportStore,
    acks: AckBook,
    previous: RunRecord,
    round_id: int,
    sites: Sequence[str],
    now: dt.datetime,
    ack_wait: dt.timedelta,
) -> TakenOver:
    """Open the new round's rows of the establishments the interrupted round had served."""
    members = {r.site: r for r in reports.for_round(previous.id) if r.id != previous.id}
    state = acks.node.state
    done: set[str] = set()
    awaiting: dict[str, int] = {}
    for site in sites:
        old = members.get(site)
        if old is None:
            continue
        _acked, applied, offered = state.site(site)
        details: dict[str, object] = {"repris": previous.id}
        if applied > acks.served(site):
            rid = _copy(reports, old, round_id, details)
            awaiting[site] = rid
            if int(state.get_meta(f"offered_acked:{site}") or 0) >= applied:
                acks.expect(site, rid, offered, now + ack_wait)  # its answer is offered
        elif old.state is State.OK or old.error == INTERRUPTED:
            rid = _copy(reports, old, round_id, details)
            if old.details.get("controle"):
                details["controle"] = old.details["controle"]
            reports.finish(rid, State.OK, now=now, details=details)
            done.add(site)
    return TakenOver(previous.id, frozenset(done), awaiting)


def _copy(reports: ReportStore, old: RunRecord, round_id: int, details: dict[str, object]) -> int:
    rid = reports.start(old.site, "site-in-round", round_id=round_id, now=old.started)
    reports.update(
        rid,
        rows_received=old.rows_received,
        bytes_received=old.bytes_received,
        rows_sent=old.rows_sent,
        bytes_sent=old.bytes_sent,
        conflicts=old.conflicts,
        quarantined=old.quarantined,
    )
    reports.merge_details(rid, details)
    return rid
