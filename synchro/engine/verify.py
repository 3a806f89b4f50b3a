"""Stored = sent: after a write, read the rows back and compare them with what was sent.

The receiver of a change writes a batch, then reads the same keys back with
``Adapter.read_back`` (another read path where a driver may convert values) in the same
transaction, and compares the canonical hash of what the database holds with the hash of
the row it was sent. A database that truncates, rounds, shifts or rewrites a value (a
non-strict SQL mode, a trigger, a driver's conversion) is caught here, never silently.

One ``read_back`` per batch, the rows as the driver returns them (``raw``: not normalised),
and per row a comparison of the stored values with the sent ones (``values.row_sameness``:
same type and same canonical form, proven without hashing: what ODBC drivers return) or
else the digest of the stored values: a value's canonical form is its normal form's, and
the digests' fast paths take SQLite's storage classes as they come (a DECIMAL as a real, a
datetime as text), so no Decimal or datetime is made for a row stored exactly. A row that
differs is normalised and described. The cost is one keyed SELECT per batch of 500 rows
(bench/README.md has the figure).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from synchro.capture.source import snapshot_key
from synchro.db.base import Adapter, Key, Row, Table
from synchro.errors import Say
from synchro.i18n import render
from synchro.values import canonical, row_hasher, row_normaliser, row_sameness, row_to_json

SHOWN = 80  # characters of a value shown in a reason text (the whole value is in the JSON)


@dataclass(frozen=True)
class Mismatch:
    """How the stored row differs from the sent one. ``stored`` is None when the row is
    absent; ``columns`` lists ``{"column", "sent", "stored"}`` (JSON value forms)."""

    stored: Row | None
    say: Say  # why, as words of the locales (``engine.verify.*``)
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why, in French (the quarantine keeps both)."""
        return render(self.say, "fr")

    def __str__(self) -> str:
        return self.reason


class Written(NamedTuple):
    """One row just written: its snapshot key, key values, and the sent row (None for a
    delete) with its hash. A tuple: one is made for every row applied."""

    skey: tuple[Any, ...]
    key: Key
    row: Row | None
    digest: bytes | None


class Verifier:
    """Checks the rows written to one table (prepared once per table)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.kinds = table.kinds
        self.names = table.column_names
        self.hash_row = row_hasher(table.kinds)
        self.same = row_sameness(table.kinds)
        # Whether to try ``same`` first: until a row stored exactly comes back in another
        # shape (SQLite's DECIMAL as a real, dates as text), then its digest at once.
        self.try_same = True
        self.normalise = row_normaliser(table.kinds)
        self.json_values = row_to_json(table.kinds)
        self.row_skey = snapshot_key(table.key_kinds, table.key_positions)

    def check(
        self, adapter: Adapter, written: Sequence[Written]
    ) -> dict[tuple[Any, ...], Mismatch]:
        """The rows of ``written`` the database does not hold exactly, by snapshot key."""
        if not written:
            return {}
        keys = [w.key for w in written]
        stored = {self.row_skey(r): r for r in adapter.read_back(self.table, keys, raw=True)}
        bad: dict[tuple[Any, ...], Mismatch] = {}
        same, hash_row = self.same, self.hash_row
        for w in written:
            row = stored.get(w.skey)
            if w.row is None:
                if row is not None:
                    bad[w.skey] = Mismatch(self.normalise(row), ("engine.verify.still_there", {}))
            elif row is None:
                bad[w.skey] = Mismatch(None, ("engine.verify.absent", {}))
            elif self.try_same and same(w.row, row):
                continue
            elif hash_row(row) != w.digest:
                bad[w.skey] = self.describe(w.row, self.normalise(row))
            else:  # stored exactly, in another shape than sent: hash this table's rows
                self.try_same = False
        return bad

    def describe(self, sent: Row, stored: Row) -> Mismatch:
        """The columns whose canonical values differ, and a reason naming them."""
        sent_json, stored_json = self.json_values(sent), self.json_values(stored)
        columns: list[dict[str, Any]] = []
        for i, (kind, a, b) in enumerate(zip(self.kinds, sent, stored, strict=True)):
            if canonical(kind, a) != canonical(kind, b):
                columns.append(
                    {"column": self.names[i], "sent": sent_json[i], "stored": stored_json[i]}
                )
        parts: list[Say] = [
            (
                "engine.verify.column",
                {"column": c["column"], "sent": _shown(c["sent"]), "stored": _shown(c["stored"])},
            )
            for c in columns[:3]
        ]
        if not parts:
            return Mismatch(stored, ("engine.verify.differs", {}), columns)
        more: list[Say] = [("engine.verify.more", {"count": len(columns) - 3})]
        said = {"columns": parts, "more": more if len(columns) > 3 else []}
        return Mismatch(stored, ("engine.verify.differs_in", said), columns)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
