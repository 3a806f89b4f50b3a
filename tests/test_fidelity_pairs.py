"""Every ordered pair of back ends, through the real export → package → import path.

Three sources (embedded SQLite, PostgreSQL and MariaDB through ODBC) hold one table per
value kind (``fidelity_helpers.TABLES``); each exports one package, imported into a fresh
database of each back end (9 pairs). What the destination stores is read by a second path
(stdlib sqlite3, or hex text through a separate plain connection) and compared value by
value with what the source stores, read the same way. Every value either arrives exactly
(after the normalisation its kind documents, docs/TYPES.md) or is refused with a message
naming the table, the column and why: never changed in silence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db, make_node
from fidelity_helpers import TABLES, compare_kind, create_tables, second_read, write_each

from synchro.values import canonical

NAMES = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb"}
DIALECTS = ("sqlite", "postgresql", "mysql")


class Source:
    def __init__(self, backend: Backend, package: Path, refused: dict[str, dict[int, str]]):
        self.backend, self.package, self.refused = backend, package, refused


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    made: dict[str, Source] = {}
    backends: list[Backend] = []
    try:
        for dialect in DIALECTS:
            folder = tmp_path_factory.mktemp(f"src-{dialect}")
            backend = Backend(NAMES[dialect], folder)
            backends.append(backend)
            create_tables(backend)
            refused: dict[str, dict[int, str]] = {}
            with Db(backend.connection) as db:
                for k in TABLES:
                    rows = [(i, v.value) for i, v in enumerate(k.values)]
                    refused[k.name] = write_each(db, f"fid_{k.name}", rows)
            with make_node(folder, "S1", backend.connection) as node:
                package = node.export(folder / "out.pkg").path
            made[dialect] = Source(backend, package, refused)
        yield made
    finally:
        for backend in backends:
            backend.close()


def test_a_source_refuses_what_it_cannot_hold_naming_table_and_column(
    sources: dict[str, Source],
) -> None:
    for dialect, source in sources.items():
        for k in TABLES:
            expected = {i for i, v in enumerate(k.values) if dialect not in v.holds}
            assert set(source.refused[k.name]) == expected, (dialect, k.name)
            for message in source.refused[k.name].values():
                assert f"table fid_{k.name}, colonne v" in message, message


def test_a_source_stores_what_it_was_given(sources: dict[str, Source]) -> None:
    """Written through the adapter, read by the second path: the very values."""
    for dialect, source in sources.items():
        for k in TABLES:
            kind = k.kind_on(dialect)
            stored = second_read(source.backend, f"fid_{k.name}", kind)
            for i, v in enumerate(k.values):
                if dialect not in v.holds:
                    assert i not in stored
                    continue
                assert canonical(kind, stored[i]) == canonical(kind, v.value), (dialect, k.name, i)


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("origin", DIALECTS)
def test_pair_stores_exactly_or_refuses_naming_table_and_column(
    origin: str, target: str, sources: dict[str, Source], tmp_path: Path
) -> None:
    source = sources[origin]
    dest = Backend(NAMES[target], tmp_path)
    try:
        create_tables(dest)
        with make_node(tmp_path, "SIEGE", dest.connection, hq=True) as hq:
            hq.import_package(source.package)
            quarantine = _quarantine(hq)
        problems: list[str] = []
        for k in TABLES:
            table = f"fid_{k.name}"
            src_kind, dst_kind = k.kind_on(origin), k.kind_on(target)
            kind = compare_kind(src_kind, dst_kind)
            sent = second_read(source.backend, table, src_kind)
            got = second_read(dest, table, dst_kind)
            for i, value in enumerate(k.values):
                if i not in sent:
                    continue  # the source could not hold it (asserted above)
                refusal = quarantine.get((table, i))
                if target not in value.holds:
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
        assert not problems, f"{origin} → {target}:\n" + "\n".join(problems)
    finally:
        dest.close()


def _quarantine(node: Any) -> dict[tuple[str, int], str]:
    rows = node.state.conn.execute("SELECT tbl, key_json, error FROM quarantine").fetchall()
    return {(str(t), int(json.loads(k)[0])): str(e) for t, k, e in rows}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
