"""The node's own state database: what it must remember between runs (``StateDB``).

Below capture and the engine (layer 2 of docs/ARCHITECTURE.md): both use it, neither owns
it. Every SQL statement on the state database is a method of ``StateDB``; its parts are
one module each (``store``, ``snapshots``, ``packages``, ``quarantine``, ``changelog``),
put together in ``database``.
"""

from synchro.state.changelog import ChangeLogEntry, DeletedVersion, LoggedChange, SiteState
from synchro.state.database import SCHEMA_VERSION, StateDB
from synchro.state.packages import Intent, Outgoing
from synchro.state.quarantine import HELD
from synchro.state.snapshots import ORDERED_KEY_KINDS, key_json, snap_value

__all__ = [
    "HELD",
    "ORDERED_KEY_KINDS",
    "SCHEMA_VERSION",
    "ChangeLogEntry",
    "DeletedVersion",
    "Intent",
    "LoggedChange",
    "Outgoing",
    "SiteState",
    "StateDB",
    "key_json",
    "snap_value",
]
