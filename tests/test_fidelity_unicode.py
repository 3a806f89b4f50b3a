"""Text, decimals and dates through each ODBC back end, checked by a second path.

- Every Unicode scalar value (surrogates excluded; NUL where the back end stores it), in
  chunks, both ways: written by the adapter and read by the second path (stdlib sqlite3,
  hex through a separate plain connection), then written by the second path (from hex)
  and read by the adapter, its ``read_back`` included.
- Hypothesis: random full-Unicode text, decimals of DECIMAL(38,10) and dates/datetimes
  with microseconds, written by the adapter, read by ``read_back`` and the second path.
- MariaDB: repeated exports in subprocesses of texts the driver's UTF-16 path used to cut
  (and to corrupt the heap with): every export exits 0 and carries the exact texts.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db
from fidelity_helpers import D8DB, parse_text, second_read, sqlite_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro import values as V
from synchro.errors import DatabaseError
from synchro.package.reader import open_package
from synchro.values import canonical

ODBC = ("sqlite-odbc", "postgresql", "mariadb")
TYPES = {
    "sqlite": ("TEXT", "DECIMAL(38,10)", "DATE", "DATETIME"),
    "postgresql": ("TEXT", "DECIMAL(38,10)", "DATE", "TIMESTAMP"),
    "mysql": ("LONGTEXT", "DECIMAL(38,10)", "DATE", "DATETIME(6)"),
}
CHUNK = 4096


def _scalars(nul: bool) -> list[str]:
    first = 0 if nul else 1
    return [chr(c) for c in range(first, 0x110000) if not 0xD800 <= c <= 0xDFFF]


def _chunks(chars: list[str]) -> list[tuple[int, str]]:
    return [(i, "".join(chars[s : s + CHUNK])) for i, s in enumerate(range(0, len(chars), CHUNK))]


def _create(backend: Backend) -> None:
    text, dec, date, stamp = TYPES[backend.dialect]
    engine = " ENGINE=InnoDB" if backend.dialect == "mysql" else ""
    backend.execute(f"CREATE TABLE sweep (id INTEGER NOT NULL PRIMARY KEY, v {text}){engine}")
    backend.execute(
        f"CREATE TABLE gen (id INTEGER NOT NULL PRIMARY KEY, t {text}, d {dec}, day {date},"
        f" at {stamp}){engine}"
    )


def _raw_insert(backend: Backend, rows: list[tuple[int, str]]) -> None:
    """Write text without the adapter: as hex, decoded by the server (or stdlib sqlite3)."""
    mark = {
        "sqlite": "CAST(X'{}' AS TEXT)",
        "postgresql": "convert_from(decode('{}', 'hex'), 'UTF8')",
        "mysql": "CONVERT(UNHEX('{}') USING utf8mb4)",
    }[backend.dialect]
    for i, text in rows:
        literal = mark.format(text.encode("utf-8").hex())
        backend.execute(f"INSERT INTO sweep (id, v) VALUES ({int(i)}, {literal})")


@pytest.mark.parametrize("name", ODBC)
def test_every_unicode_scalar_value_both_ways(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(name)
    _create(backend)
    nul = backend.name == "mariadb"  # PostgreSQL and the SQLite ODBC driver refuse NUL
    rows = _chunks(_scalars(nul))
    with Db(backend.connection) as db:
        db.write("sweep", rows)
        stored = second_read(backend, "sweep", "text")
        bad = [i for i, text in rows if stored.get(i) != text]
        assert not bad, f"{name}: chunks stored differently: {bad[:10]}"
        db.delete("sweep", [(i,) for i, _ in rows])
        _raw_insert(backend, rows)
        table = db.tables["sweep"]
        scanned = {r[0]: r[1] for r in db.adapter.scan(table)}
        back = {r[0]: r[1] for r in db.adapter.read_back(table, [(i,) for i, _ in rows])}
        for label, got in (("scan", scanned), ("read_back", back)):
            bad = [i for i, text in rows if got.get(i) != text]
            assert not bad, f"{name} {label}: chunks read differently: {bad[:10]}"
        if not nul:
            with pytest.raises(DatabaseError, match=r"table sweep, colonne v .*NUL"):
                db.write("sweep", [(10**6, "a\x00b")])


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Backend, Db]]]:
    made: dict[str, tuple[Backend, Db]] = {}
    try:
        for name in ODBC:
            backend = Backend(name, tmp_path_factory.mktemp(name))
            _create(backend)
            made[name] = (backend, Db(backend.connection))
        yield made
    finally:
        for backend, db in made.values():
            db.close()
            backend.close()


_ids = count(1)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_DEC = st.decimals(
    min_value=Decimal("-9999999999999999999999999999.9999999999"),
    max_value=Decimal("9999999999999999999999999999.9999999999"),
    places=10,
    allow_nan=False,
    allow_infinity=False,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=_TEXT,
    number=_DEC,
    day=st.dates(),
    at=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
)
def test_generated_values_round_trip(
    generated: dict[str, tuple[Backend, Db]],
    text: str,
    number: Decimal,
    day: dt.date,
    at: dt.datetime,
) -> None:
    for name, (backend, db) in generated.items():
        i = next(_ids)
        row = (i, text, number, day, at)
        table = db.tables["gen"]
        try:
            db.write("gen", [row])
        except DatabaseError as exc:
            # Only SQLite may refuse, and only a decimal of more than 15 digits.
            assert backend.dialect == "sqlite" and "colonne d" in str(exc), str(exc)
            assert len(number.normalize(V.EXACT_CONTEXT).as_tuple().digits) > 15
            continue
        (back,) = db.adapter.read_back(table, [(i,)])
        for kind, sent, got in zip(table.kinds, row, back, strict=True):
            assert canonical(kind, got) == canonical(kind, sent), (name, kind, sent, got)
        seen = _second_row(backend, i)
        for kind, sent, got in zip(table.kinds[1:], row[1:], seen, strict=True):
            assert canonical(kind, got) == canonical(kind, sent), (name, kind, sent, got)


def _second_row(backend: Backend, i: int) -> tuple[Any, ...]:
    """Row ``i`` of ``gen`` read by the second path: stdlib sqlite3, or the server's text
    of each value as hex through a separate plain connection, parsed here."""
    kinds = ("text", "decimal", "date", "datetime")
    if backend.dialect == "sqlite":
        conn = sqlite3.connect(backend.database)
        try:
            row = conn.execute("SELECT t, d, day, at FROM gen WHERE id = ?", (i,)).fetchone()
        finally:
            conn.close()
        return tuple(sqlite_value(k, v) for k, v in zip(kinds, row, strict=True))
    if backend.dialect == "postgresql":
        cols = [f"encode(convert_to(CAST({c} AS text), 'UTF8'), 'hex')" for c in COLUMNS]
    else:
        cols = [f"HEX(CONVERT(CAST({c} AS CHAR) USING utf8mb4))" for c in COLUMNS]
    (row,) = backend.query(f"SELECT {', '.join(cols)} FROM gen WHERE id = ?", (i,))
    return tuple(
        None if h is None else parse_text(k, bytes.fromhex(h).decode("utf-8"))
        for k, h in zip(kinds, row, strict=True)
    )


COLUMNS = ("t", "d", "day", "at")


EXPORT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from engine_helpers import make_node
    with make_node(Path(sys.argv[2]), "M1", sys.argv[1]) as node:
        node.export(Path(sys.argv[2]) / "out.pkg")
    """
)


def test_mariadb_exports_in_subprocesses_carry_every_text_exactly(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    backend = make_backend("mariadb")
    _create(backend)
    texts = [(i, (D8DB[i % len(D8DB) :] + "Último 😀 ") * (1 + i % 50)) for i in range(400)]
    texts.append((400, D8DB * 20_000))
    with Db(backend.connection) as db:
        db.write("sweep", texts)
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "LANG": "C.UTF-8"}
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", EXPORT, backend.connection, str(folder), tests_dir],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        carried = {
            c.values[0]: c.values[1]
            for c in open_package(folder / "out.pkg", ()).changes()
            if c.table == "sweep"
        }
        assert carried == dict(texts)
