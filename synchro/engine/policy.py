"""How applying a change differs between the Siège and a Serveur, named once.

``apply`` and ``retry`` take an ``ApplyPolicy`` instead of asking "is this the Siège?":
each field is one behaviour, set by the node class (``SiegeNode.policy``,
``ServeurNode.policy``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApplyPolicy:
    """What applying a package means on one kind of node."""

    name: str
    # Every change applied here goes into the change log, with its origin: the others get
    # it from there (the Siège).
    logs_changes: bool
    # An incoming change also conflicts with a change another origin made to the same key
    # after the sender last received this node's changes (the Siège, from its change log).
    checks_change_log: bool
    # Under the hq-wins policy the local version is the Siège's, so it wins (the Siège);
    # elsewhere the incoming one is the Siège's and wins.
    holds_siege_version: bool
    # A losing incoming version is recorded in the snapshot as exchanged, so the capture
    # sends the local winner back out (a Serveur; the Siège's winner already is in its log).
    resends_local_winner: bool
    # A row the database refuses because a row it refers to was deleted brings that row
    # back, and a delete of a row still referred to is refused (the Siège, ``revive``).
    revives_referenced: bool


SIEGE_POLICY = ApplyPolicy(
    name="siege",
    logs_changes=True,
    checks_change_log=True,
    holds_siege_version=True,
    resends_local_winner=False,
    revives_referenced=True,
)

SERVEUR_POLICY = ApplyPolicy(
    name="serveur",
    logs_changes=False,
    checks_change_log=False,
    holds_siege_version=False,
    resends_local_winner=True,
    revives_referenced=False,
)

# The Siège applying its own change log to its restored database (``engine.take_back``):
# no change is logged again (each is in the log already), and none can conflict (the
# database was just made the snapshot).
TAKE_BACK_POLICY = ApplyPolicy(
    name="reprise",
    logs_changes=False,
    checks_change_log=False,
    holds_siege_version=False,
    resends_local_winner=False,
    revives_referenced=False,
)
