"""Which tables are synchronised, with which key, in which order.

Every table with a key is synchronised unless the configuration includes or excludes it.
A table without a key is never silently skipped: it comes back in ``skipped`` with the
reason, and every run's report and email name it (``details["keyless"]``). A table whose
names the database's driver cannot carry (``Table.unusable``) is refused: the run stops
before anything is read or written, naming the table and column. Keys named in the
configuration override (or supply) the key. Tables are ordered parents before children
following the foreign keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from synchro.config.model import DatabaseSettings
from synchro.db.base import Table
from synchro.errors import ConfigError, DatabaseError, FieldProblem, Say
from synchro.i18n import render

NO_KEY: Say = ("engine.table.no_key", {})  # why a table without a key is left out


@dataclass(frozen=True)
class Skipped:
    table: str
    reason: str  # French; ``say``: its words, in the UI language (``i18n.render``)
    say: Say = NO_KEY


class TableSelection(NamedTuple):
    """The synchronised tables (parents before children), and the tables left out."""

    synced: list[Table]
    skipped: list[Skipped]


def select_tables(found: Sequence[Table], settings: DatabaseSettings) -> TableSelection:
    names = {t.name for t in found}
    problems = [
        FieldProblem("database.include", ("config.expect.table_exists", {"name": name}), name)
        for name in settings.include
        if name not in names
    ]
    chosen: list[Table] = []
    skipped: list[Skipped] = []
    unusable: list[Say] = []
    for table in sorted(found, key=lambda t: t.name):
        if settings.include and table.name not in settings.include:
            continue
        if table.name in settings.exclude:
            continue
        if table.unusable:
            why = {"table": table.name, "reason": [table.unusable]}
            unusable.append(("engine.err.unusable.table", why))
            continue
        rule = settings.rule(table.name)
        columns = set(table.column_names)
        for label, column in (
            ("modified_column", rule.modified_column),
            ("owner_column", rule.owner_column),
        ):
            if column and column not in columns:
                problems.append(
                    FieldProblem(
                        f"database.tables.{table.name}.{label}",
                        ("config.expect.column_of", {"table": table.name}),
                        column,
                    )
                )
        if rule.key:
            unknown = [k for k in rule.key if k not in columns]
            if unknown:
                problems.append(
                    FieldProblem(
                        f"database.tables.{table.name}.key",
                        ("config.expect.columns_of", {"table": table.name}),
                        ", ".join(unknown),
                    )
                )
                continue
            table = table.with_key(rule.key, "config")
        if not table.key:
            skipped.append(Skipped(table.name, render(NO_KEY, "fr"), NO_KEY))
            continue
        chosen.append(table)
    if problems:
        raise ConfigError(problems)
    if unusable:
        raise DatabaseError(say=("engine.err.unusable", {"tables": unusable}))
    return TableSelection(dependency_order(chosen), skipped)


def dependency_order(tables: Sequence[Table]) -> list[Table]:
    """Parents before children (stable by name; cycles broken by name order)."""
    by_name = {t.name: t for t in tables}
    parents = {
        t.name: {fk.ref_table for fk in t.foreign_keys if fk.ref_table in by_name} - {t.name}
        for t in tables
    }
    ordered: list[Table] = []
    done: set[str] = set()
    pending = sorted(by_name)
    while pending:
        ready = [n for n in pending if parents[n] <= done]
        if not ready:  # a cycle: take the first by name
            ready = [pending[0]]
        for name in ready:
            ordered.append(by_name[name])
            done.add(name)
        pending = [n for n in pending if n not in done]
    return ordered
