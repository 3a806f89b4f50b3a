"""Packages in the state: those applied (exactly once), this node's outbox, the apply in
progress (``intent``, for crash recovery) and this node's package sequence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from synchro.state.store import Store, now_text


class Intent(NamedTuple):
    """The package being applied when the node stopped (applied again at the next start)."""

    origin: str
    sequence: int
    path: Path


class Outgoing(NamedTuple):
    """A package of this node the Siège has not acknowledged yet."""

    sequence: int
    path: Path


class Packages(Store):
    """The ``applied``, ``outbox`` and ``intent`` tables."""

    def is_applied(self, origin: str, sequence: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM applied WHERE origin = ? AND sequence = ?", (origin, sequence)
        ).fetchone()
        return row is not None

    def mark_applied(
        self, origin: str, sequence: int, kind: str, rows: int, digest: str = ""
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO applied (origin, sequence, kind, applied_at, rows, digest)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (origin, sequence, kind, now_text(), rows, digest or None),
        )

    def applied_digest(self, origin: str, sequence: int) -> str | None:
        """The SHA-256 of the package ``(origin, sequence)`` applied here (None: not
        applied, or applied before it was recorded)."""
        row = self.conn.execute(
            "SELECT digest FROM applied WHERE origin = ? AND sequence = ?", (origin, sequence)
        ).fetchone()
        return str(row[0]) if row is not None and row[0] else None

    def applied_digests(self, origin: str, up_to: int, count: int) -> dict[str, str]:
        """The digests of the last ``count`` packages of ``origin`` applied here up to
        ``up_to``, by number as text; their first 16 hex digits: enough to tell two
        packages apart, for the acknowledgement that names them (``engine.twins``)."""
        rows = self.conn.execute(
            "SELECT sequence, digest FROM applied WHERE origin = ? AND sequence <= ? "
            "AND sequence > ? AND digest IS NOT NULL",
            (origin, up_to, up_to - count),
        )
        return {str(seq): str(digest)[:16] for seq, digest in rows}

    def forget_applied(self, origin: str) -> None:
        """Forget every package of ``origin`` applied here (a new life of that peer numbers
        its packages from 1 again)."""
        self.conn.execute("DELETE FROM applied WHERE origin = ?", (origin,))

    def next_sequence(self) -> int:
        """The next package sequence of this node (never reused)."""
        value = self.get_int("next_sequence", 1)
        self.set_meta("next_sequence", str(value + 1))
        return value

    # -- outbox ---------------------------------------------------------------------------

    def add_outbox(self, sequence: int, path: Path, rows: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?)",
            (sequence, str(path), now_text(), rows),
        )

    def outbox(self) -> list[Outgoing]:
        rows = self.conn.execute("SELECT sequence, path FROM outbox ORDER BY sequence")
        return [Outgoing(int(s), Path(p)) for s, p in rows]

    def ack_outbox(self, up_to: int) -> list[Path]:
        """Forget packages the Siège acknowledged; returns their files (to delete)."""
        rows = self.conn.execute("SELECT path FROM outbox WHERE sequence <= ?", (up_to,))
        paths = [Path(r[0]) for r in rows]
        self.conn.execute("DELETE FROM outbox WHERE sequence <= ?", (up_to,))
        return paths

    def drop_outbox(self, sequences: Sequence[int]) -> list[Path]:
        """Forget these packages (the Siège holds them as they are); returns their files."""
        paths: list[Path] = []
        for sequence in sequences:
            row = self.conn.execute(
                "SELECT path FROM outbox WHERE sequence = ?", (sequence,)
            ).fetchone()
            if row is not None:
                paths.append(Path(row[0]))
                self.conn.execute("DELETE FROM outbox WHERE sequence = ?", (sequence,))
        return paths

    # -- intent (crash recovery of an apply) ---------------------------------------------

    def set_intent(self, origin: str, sequence: int, path: Path) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO intent VALUES (1, ?, ?, ?, ?)",
            (origin, sequence, str(path), now_text()),
        )

    def intent(self) -> Intent | None:
        row = self.conn.execute("SELECT origin, sequence, path FROM intent").fetchone()
        return Intent(str(row[0]), int(row[1]), Path(row[2])) if row else None

    def clear_intent(self) -> None:
        self.conn.execute("DELETE FROM intent")
