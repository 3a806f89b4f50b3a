"""Acknowledgements: a download is not a delivery.

After applying the Siège's package, an establishment uploads ``ACK-<site>-<seq>.json`` into
its ``/in`` folder (same ``.part`` then rename path as its packages). It names the Siège
package it applied (origin, sequence, change-log position reached, the Siège's state
identity) and carries the establishment's per-table checksums computed right after that
apply. The Siège counts an establishment as served only on that file, advances what it
knows the establishment holds, and compares the checksums with its own as they were when
it published that package: the round's « Contrôle ».

A table whose checksums differ is compared again by the sums of its rows as each side last
exchanged them (``checksum.agreed_sums``; the ack carries the establishment's for those
tables, the package the Siège's): when those agree, the databases differ only by changes
made since the capture — a shop that kept working while the round ran — which the next
capture sends (the table is read whole then): « identiques hors modifications récentes »,
not a failure. When they differ too, the table is « différente »: the run fails.

The applied package is recorded in the establishment's state in the same transaction as
the apply (``serveur_node.LAST_HQ``, ``serveur_node.ACK_DUE``), so an ack lost to a crash is
sent by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from synchro.engine.checksum import Sums, differing, in_names_of, sums_from_json, to_json
from synchro.errors import Say
from synchro.names import read_ack_name

if TYPE_CHECKING:
    from synchro.engine.serveur_node import ServeurNode

ACK_LIMIT = 4 * 1024 * 1024  # an ack bigger than this is not read
IDENTICAL = "identiques"
PENDING = "identiques hors modifications récentes (envoyées au prochain tour) : "
# The Contrôle's French words, kept as they are in the Rapport's details (``report_summary``
# says them in English), and their keys in the locales (a status line says them so).
NO_SUMS = "non vérifiable (sommes de contrôle absentes)"
EARLIER = "non vérifiable (paquet d'un état antérieur du siège)"
_CONTROLE_KEYS = {
    IDENTICAL: "engine.controle.identical",
    NO_SUMS: "engine.controle.no_sums",
    EARLIER: "engine.controle.earlier",
}


@dataclass(frozen=True)
class Ack:
    site: str
    origin: str  # the Siège's code
    sequence: int  # the Siège package applied
    to_pos: int  # the Siège change-log position the establishment now holds
    instance: str  # the Siège state identity that position belongs to
    checksums: Sums = field(default_factory=dict)
    sent: str = ""
    # Seconds the establishment's clock is ahead of the Siège's (behind: negative; 0: they
    # agree), as its run measured it (``engine.clocks``); None: not measured this run.
    clock: int | None = None
    # The sums of its rows as exchanged, for the tables whose checksums differed from the
    # Siège's (``checksum.agreed_sums``); empty when none did.
    agreed: Sums = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        data: dict[str, object] = {
            "site": self.site,
            "origin": self.origin,
            "sequence": self.sequence,
            "to_pos": self.to_pos,
            "instance": self.instance,
            "checksums": to_json(self.checksums),
            "sent": self.sent or dt.datetime.now(dt.UTC).isoformat(),
        }
        if self.clock is not None:
            data["clock"] = self.clock
        if self.agreed:
            data["agreed"] = to_json(self.agreed)
        return json.dumps(data, ensure_ascii=False, sort_keys=True).encode()


def read_ack(path: Path, site: str) -> Ack | None:
    """The ack in ``path`` uploaded by ``site``; None when it is not a sound ack of it."""
    named = read_ack_name(path.name)
    if named is None or named.origin != site:
        return None
    try:
        if path.stat().st_size > ACK_LIMIT:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        ack = Ack(
            site=str(data["site"]),
            origin=str(data["origin"]),
            sequence=int(data["sequence"]),
            to_pos=int(data["to_pos"]),
            instance=str(data.get("instance", "")),
            checksums=sums_from_json(data.get("checksums")),
            sent=str(data.get("sent", "")),
            clock=_seconds(data.get("clock")),
            agreed=sums_from_json(data.get("agreed")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if ack.site != site or ack.sequence != named.sequence:
        return None
    return ack


def _seconds(value: object) -> int | None:
    """An ack's clock field: whole seconds, or None (absent or malformed)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Controle(NamedTuple):
    """The « Contrôle » of an establishment: the words of the Rapport, the tables that
    differ (the run fails), the tables that differ only by changes made since the capture."""

    text: str
    tables: list[str]
    pending: list[str]


class OwedAck(NamedTuple):
    """A Serveur's ack to send, and the Siège's checksums it compares with (None: unknown),
    and the Siège's sums of its rows as exchanged (None: not sent, an older Siège)."""

    ack: Ack
    theirs: Sums | None
    theirs_agreed: Sums | None = None


def controle(
    theirs: Sums,
    ours: Sums | None,
    theirs_agreed: Sums | None = None,
    ours_agreed: Sums | None = None,
) -> Controle:
    """The « Contrôle » of an establishment (``theirs``: its checksums, ``ours``: the
    Siège's; ``*_agreed``: the sums of their rows as exchanged, see the module docstring).

    ``ours`` is None when the Siège no longer knows its checksums for that package."""
    if ours is None or not theirs:
        return Controle(NO_SUMS, [], [])
    ours = in_names_of(theirs, ours)  # both sides' tables under the establishment's names
    ours_agreed = in_names_of(theirs, ours_agreed or {})
    tables = differing(theirs, ours)
    if not tables:
        return Controle(IDENTICAL, [], [])
    mine, yours = theirs_agreed or {}, ours_agreed or {}
    pending = [
        t for t in tables if t in mine and t in yours and not differing({t: mine[t]}, {t: yours[t]})
    ]
    differ = [t for t in tables if t not in pending]
    if differ:
        return Controle("tables différentes : " + ", ".join(differ), differ, pending)
    return Controle(PENDING + ", ".join(pending), [], pending)


def controle_words(text: str, tables: list[str]) -> Say:
    """A Contrôle (``controle``'s text and tables) as words of the locales."""
    if tables:
        return ("engine.controle.differ", {"tables": ", ".join(tables)})
    if text.startswith(PENDING):
        return ("engine.controle.pending", {"tables": text[len(PENDING) :]})
    key = _CONTROLE_KEYS.get(text)
    return (key, {}) if key else ("engine.pkg.raw", {"text": text})


def make_ack(node: ServeurNode, clock: int | None = None) -> OwedAck | None:
    """Serveur: the ack of the Siège package it applied last, with its checksums now (and
    ``clock``: what this run measured of the clocks), and the Siège's checksums sent in
    that package; None before any Siège package."""
    from synchro.engine.serveur_node import LAST_HQ

    text = node.state.get_meta(LAST_HQ)
    if not text:
        return None
    last = json.loads(text)
    theirs = sums_from_json(last.get("checksums")) or None
    sums = node.checksums()
    differ = differing(sums, theirs) if theirs else []
    ack = Ack(
        site=node.code,
        origin=str(last["origin"]),
        sequence=int(last["sequence"]),
        to_pos=int(last.get("to_pos", 0)),
        instance=str(last.get("instance", "")),
        checksums=sums,
        clock=clock,
        agreed=node.agreed_sums(differ) if differ else {},
    )
    return OwedAck(ack, theirs, sums_from_json(last.get("agreed")) or None)
