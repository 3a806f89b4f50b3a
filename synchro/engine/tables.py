"""Which tables are synchronised, with which key, in which order.

Every table with a key is synchronised unless the configuration includes or excludes it.
A table without a key is never silently skipped: it comes back in ``skipped`` with the
reason, and every run's report and email name it (``details["keyless"]``). A table whose
names the database's driver cannot carry (``Table.unusable``) is refused: the run stops
before anything is read or written, naming the table and column. Keys named in the
configuration override (or supply) the key. Tables are ordered parents before children
following the foreign keys. The settings name tables and columns as a person wrote them;
the selection holds their rules under the database's own names (``TableSelection.rules``),
and every step asks it, not the settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import NamedTuple

from synchro.config.model import DatabaseSettings, TableRule
from synchro.db.base import Table
from synchro.errors import ConfigError, DatabaseError, FieldProblem, Say
from synchro.i18n import render
from synchro.names import same_names, spelt_alike

NO_KEY: Say = ("engine.table.no_key", {})  # why a table without a key is left out


@dataclass(frozen=True)
class Skipped:
    table: str
    reason: str  # French; ``say``: its words, in the UI language (``i18n.render``)
    say: Say = NO_KEY


class TableSelection(NamedTuple):
    """The synchronised tables (parents before children), the tables left out, and the
    settings' table rules under the database's own names (``select_tables``)."""

    synced: list[Table]
    skipped: list[Skipped]
    rules: Mapping[str, TableRule] = MappingProxyType({})

    def rule(self, table: str) -> TableRule:
        """The rule the settings give ``table`` (a local name), else the default one."""
        return self.rules.get(table) or TableRule(name=table)


def select_tables(found: Sequence[Table], settings: DatabaseSettings) -> TableSelection:
    """The tables to synchronise. Every name the settings give (included, excluded, a
    table's rule and its columns) stands for the database's table or column of that name,
    else the only one it equals ignoring case (``names.same_names``: PostgreSQL folds an
    unquoted ``Clients`` to ``clients``); a name that stands for none is a settings error
    naming it, never ignored: an exclusion that excluded nothing would send the table."""
    names = [t.name for t in found]
    problems: list[FieldProblem] = []
    include = set(_local_tables(settings.include, names, "database.include", problems))
    exclude = set(_local_tables(settings.exclude, names, "database.exclude", problems))
    if include & exclude:
        both = ", ".join(sorted(include & exclude))
        problems.append(
            FieldProblem("database.exclude", ("config.expect.include_exclude", {}), both)
        )
    rules: dict[str, TableRule] = {}
    for index, rule in enumerate(settings.tables):
        path = f"database.tables[{index}].name"
        for local in _local_tables((rule.name,), names, path, problems):
            if local in rules:
                problems.append(FieldProblem(path, ("config.expect.unique", {}), rule.name))
            rules[local] = rule
    chosen: list[Table] = []
    skipped: list[Skipped] = []
    unusable: list[Say] = []
    for table in sorted(found, key=lambda t: t.name):
        if (include and table.name not in include) or table.name in exclude:
            continue
        if table.unusable:
            why = {"table": table.name, "reason": [table.unusable]}
            unusable.append(("engine.err.unusable.table", why))
            continue
        rule = rules[table.name] = _local_columns(
            rules.get(table.name, TableRule(name=table.name)), table, problems
        )
        if rule.key and set(rule.key) <= set(table.column_names):
            table = table.with_key(rule.key, "config")
        elif rule.key:
            continue  # a settings error, raised below
        if not table.key:
            skipped.append(Skipped(table.name, render(NO_KEY, "fr"), NO_KEY))
            continue
        chosen.append(table)
    if problems:
        raise ConfigError(problems)
    if unusable:
        raise DatabaseError(say=("engine.err.unusable", {"tables": unusable}))
    return TableSelection(dependency_order(chosen), skipped, MappingProxyType(rules))


def _local_tables(
    asked: Iterable[str], names: Sequence[str], path: str, problems: list[FieldProblem]
) -> list[str]:
    """The local table each name of the settings stands for; a problem for each other."""
    found: list[str] = []
    for name in asked:
        local = same_names((name,), names).get(name)
        if local is not None:
            found.append(local)
            continue
        alike = spelt_alike(name, names)
        say: Say = (
            ("config.expect.one_table", {"name": name, "tables": ", ".join(alike)})
            if len(alike) > 1
            else ("config.expect.table_exists", {"name": name})
        )
        problems.append(FieldProblem(path, say, name))
    return found


def _local_columns(rule: TableRule, table: Table, problems: list[FieldProblem]) -> TableRule:
    """``rule`` under ``table``'s own names (rule name and columns); a problem for each
    column that stands for none of the table's."""
    columns = table.column_names
    local_of = same_names({*rule.key, rule.modified_column, rule.owner_column} - {""}, columns)
    for label in ("modified_column", "owner_column"):
        column = getattr(rule, label)
        if column and column not in local_of:
            problems.append(
                FieldProblem(
                    f"database.tables.{table.name}.{label}",
                    ("config.expect.column_of", {"table": table.name}),
                    column,
                )
            )
    unknown = [k for k in rule.key if k not in local_of]
    if unknown:
        problems.append(
            FieldProblem(
                f"database.tables.{table.name}.key",
                ("config.expect.columns_of", {"table": table.name}),
                ", ".join(unknown),
            )
        )
    return replace(
        rule,
        name=table.name,
        key=tuple(local_of.get(k, k) for k in rule.key),
        modified_column=local_of.get(rule.modified_column, rule.modified_column),
        owner_column=local_of.get(rule.owner_column, rule.owner_column),
    )


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
