"""What a node's operations return (``engine.node``): an export, an import, the status."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synchro.capture.diff import CaptureResult
from synchro.engine.apply_rows import ApplyStats
from synchro.engine.tables import Skipped
from synchro.errors import Say
from synchro.i18n import render
from synchro.package import Manifest

DUPLICATE: Say = ("engine.import.duplicate", {})  # a package applied before (sent again)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: Manifest
    capture: CaptureResult
    kept: bool = True  # False: nothing new while older packages wait (no package made)


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    stats: ApplyStats
    status: str  # "applied", "duplicate", "waiting" (an earlier package is missing), "stale"
    message: str = ""
    attempts: int = 1  # more when the database ended a transaction itself (``engine.lost``)
    say: Say | None = None  # ``message`` as words of the locales (shown in the UI language)

    @classmethod
    def held(cls, manifest: Manifest, status: str, say: Say) -> ImportResult:
        """A package not applied (``status``), for the reason ``say``: ``message`` is its
        French words."""
        return cls(manifest, ApplyStats(), status, render(say, "fr"), say=say)


@dataclass(frozen=True)
class Admission:
    """A package the node takes, and where its changes start (``ApplyContext``'s fields)."""

    base_pos: int = 0  # Siège: change-log position the sender had received
    skip_pos: int = 0  # Serveur: skip changes at or before this change-log position
    skip_origin: str = ""  # Serveur: skip the changes that came from this node itself


@dataclass(frozen=True)
class TableStatus:
    name: str
    key: tuple[str, ...]
    key_source: str
    rows: int
    known: int  # rows in the snapshot (as last exchanged)


@dataclass
class NodeStatus:
    tables: list[TableStatus] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pending: dict[str, dict[str, int]] = field(default_factory=dict)
    outbox: list[int] = field(default_factory=list)
