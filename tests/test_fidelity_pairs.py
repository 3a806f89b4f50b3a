"""Every ordered pair of back ends, through the real export → package → import path.

Four sources (embedded SQLite; SQLite, PostgreSQL and MariaDB through ODBC) hold one table
per value kind (``fidelity_helpers.TABLES``); each exports one package, imported into a
fresh database of each back end (16 pairs). What the destination stores is read by a second path
(stdlib sqlite3, or hex text through a separate plain connection) and compared value by
value with what the source stores, read the same way. Every value either arrives exactly
(after the normalisation its kind documents, docs/TYPES.md) or is refused with a message
naming the table, the column and why: never changed in silence. Between two databases of
one dialect, whichever their driver, the very form the source holds (``stored_form``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db, make_node
from fidelity_helpers import (
    TABLES,
    compare_kind,
    create_tables,
    held_by,
    second_read,
    stored_form,
    write_each,
)

from synchro.values import canonical

BACKENDS = ("sqlite", "sqlite-odbc", "postgresql", "mariadb")


class Source:
    def __init__(self, backend: Backend, package: Path, refused: dict[str, dict[int, str]]):
        self.backend, self.package, self.refused = backend, package, refused


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    made: dict[str, Source] = {}
    backends: list[Backend] = []
    try:
        for name in BACKENDS:
            folder = tmp_path_factory.mktemp(f"src-{name}")
            backend = Backend(name, folder)
            backends.append(backend)
            create_tables(backend)
            refused: dict[str, dict[int, str]] = {}
            with Db(backend.connection) as db:
                for k in TABLES:
                    rows = [(i, v.value) for i, v in enumerate(k.values)]
                    refused[k.name] = write_each(db, f"fid_{k.name}", rows)
            with make_node(folder, "S1", backend.connection) as node:
                package = node.export(folder / "out.pkg").path
            made[name] = Source(backend, package, refused)
        yield made
    finally:
        for backend in backends:
            backend.close()


def test_a_source_refuses_what_it_cannot_hold_naming_table_and_column(
    sources: dict[str, Source],
) -> None:
    for name, source in sources.items():
        for k in TABLES:
            expected = {i for i, v in enumerate(k.values) if not held_by(v, source.backend)}
            assert set(source.refused[k.name]) == expected, (name, k.name)
            for message in source.refused[k.name].values():
                assert f"table fid_{k.name}, colonne v" in message, message


def test_a_source_stores_what_it_was_given(sources: dict[str, Source]) -> None:
    """Written through the adapter, read by the second path: the very values."""
    for name, source in sources.items():
        dialect = source.backend.dialect
        for k in TABLES:
            kind = k.kind_on(dialect)
            stored = second_read(source.backend, f"fid_{k.name}", kind)
            for i, v in enumerate(k.values):
                if not held_by(v, source.backend):
                    assert i not in stored
                    continue
                assert canonical(kind, stored[i]) == canonical(kind, v.value), (name, k.name, i)


@pytest.mark.parametrize("target", BACKENDS)
@pytest.mark.parametrize("origin", BACKENDS)
def test_pair_stores_exactly_or_refuses_naming_table_and_column(
    origin: str, target: str, sources: dict[str, Source], tmp_path: Path
) -> None:
    source = sources[origin]
    dest = Backend(target, tmp_path)
    try:
        create_tables(dest)
        with make_node(tmp_path, "SIEGE", dest.connection, hq=True) as hq:
            hq.import_package(source.package)
            quarantine = _quarantine(hq)
        problems: list[str] = []
        for k in TABLES:
            table = f"fid_{k.name}"
            src_kind, dst_kind = k.kind_on(source.backend.dialect), k.kind_on(dest.dialect)
            kind = compare_kind(src_kind, dst_kind)
            sent = second_read(source.backend, table, src_kind)
            got = second_read(dest, table, dst_kind)
            for i, value in enumerate(k.values):
                if i not in sent:
                    continue  # the source could not hold it (asserted above)
                refusal = quarantine.get((table, i))
                if not held_by(value, dest):
                    if refusal is None or f"table {table}, colonne v" not in refusal:
                        problems.append(f"{table} #{i}: expected a refusal, got {refusal!r}")
                    if i in got:
                        problems.append(f"{table} #{i}: refused yet stored {got[i]!r}")
                    continue
                if refusal is not None:
                    problems.append(f"{table} #{i}: refused: {refusal}")
                elif i not in got:
                    problems.append(f"{table} #{i}: missing, not reported")
                elif canonical(kind, got[i]) != canonical(kind, sent[i]):
                    problems.append(
                        f"{table} #{i}: sent {_short(sent[i])}, stored {_short(got[i])}"
                    )
            if source.backend.dialect == dest.dialect:
                here, there = stored_form(source.backend, table), stored_form(dest, table)
                for i in sorted(i for i in there if there[i] != here.get(i)):
                    problems.append(f"{table} #{i}: held as {there[i]!r}, not {here.get(i)!r}")
        assert not problems, f"{origin} → {target}:\n" + "\n".join(problems)
    finally:
        dest.close()


def _quarantine(node: Any) -> dict[tuple[str, int], str]:
    rows = node.state.conn.execute("SELECT tbl, key_json, error FROM quarantine").fetchall()
    return {(str(t), int(json.loads(k)[0])): str(e) for t, k, e in rows}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
