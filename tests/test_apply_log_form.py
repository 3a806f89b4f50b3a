"""The Siège's change log keeps an applied row in the JSON form its package carried
(``Change.sent``) instead of encoding the row again. That is exact only if the carried form
is the one the applied row encodes to: ``row_to_json(normalise(decode(sent))) == sent`` for
every value a package can carry. Checked here on the fidelity suite's whole catalogue (every
kind, its limits, all of Unicode) written as given (not normalised first) and read through
real package files; where it does not hold (a uuid in capitals is lowered by ``normalise``)
the engine encodes the row again (``carried_form_is_normal``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fidelity_helpers import TABLES

from synchro.engine.node import Node
from synchro.errors import PackageError
from synchro.package import PackageWriter, TableSchema, open_package
from synchro.values import (
    Kind,
    carried_form_is_normal,
    json_text_encoder,
    row_normaliser,
    row_to_json,
)

DUMPS = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
TEXT = json_text_encoder()  # what the engine writes into its state database


def _every_code_point() -> list[str]:
    """All of Unicode in strings of 4,096 code points, lone surrogates included."""
    points = [chr(c) for c in range(0x110000)]
    return ["".join(points[i : i + 4096]) for i in range(0, len(points), 4096)]


def _catalogue() -> list[tuple[str, Kind, list[object]]]:
    found = [(k.name, Kind(k.kind), [v.value for v in k.values]) for k in TABLES]
    found.append(("unicode", Kind.TEXT, list(_every_code_point())))
    return found


@pytest.mark.parametrize(("name", "kind", "values"), _catalogue(), ids=lambda x: str(x)[:12])
def test_the_carried_form_is_the_form_the_applied_row_encodes_to(
    tmp_path: Path, name: str, kind: Kind, values: list[object]
) -> None:
    schema = TableSchema(f"fid_{name}", (("id", Kind.INT), ("v", kind)), ("id",))
    path = tmp_path / "p.pkg"
    written = 0
    with PackageWriter(path, origin="S1", sequence=1, kind="site", tables=[schema]) as writer:
        for number, value in enumerate(values):
            try:
                writer.write(schema.name, "U", (number, value), origin="S1", pos=number + 1)
            except PackageError:
                continue  # cannot travel: refused up front, never logged
            written += 1
    assert written, f"{name}: no value could travel"
    normalise, encode = row_normaliser(schema.kinds), row_to_json(schema.kinds)
    read = reshaped = 0
    for change in open_package(path).changes():
        assert change.sent is not None
        assert TEXT(change.sent) == json.dumps(change.sent, ensure_ascii=False)
        read += 1
        if DUMPS(change.sent) != DUMPS(encode(normalise(change.values))):
            reshaped += 1
            assert not carried_form_is_normal(schema.kinds), (name, change.values)
    assert read == written
    if kind is Kind.UUID:  # the case the rule is there for: it must be met here
        assert reshaped and not carried_form_is_normal(schema.kinds)


def test_only_kinds_with_an_exact_type_log_the_carried_form() -> None:
    assert carried_form_is_normal((Kind.INT, Kind.TEXT, Kind.DECIMAL, Kind.DATETIME, Kind.JSON))
    assert not carried_form_is_normal((Kind.INT, Kind.UUID))


def test_a_siege_logs_the_carried_form_and_the_sites_get_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real apply at a Siège: its rows are not encoded again for its change log (the cost
    this saves), and the sites served from that log end with the rows the sender has.
    (SQLite has no uuid kind; PostgreSQL's uuid columns go through the fidelity pairs.)"""
    from engine_helpers import checksums

    from synchro.engine import apply_rows

    encoded: dict[tuple[Kind, ...], int] = {}

    def counting(kinds: tuple[Kind, ...]) -> object:
        encode = row_to_json(kinds)

        def counted(row: tuple[object, ...]) -> object:
            encoded[tuple(kinds)] = encoded.get(tuple(kinds), 0) + 1
            return encode(row)

        return counted

    monkeypatch.setattr(apply_rows, "row_to_json", counting)
    schema = (
        "CREATE TABLE ventes(id INTEGER PRIMARY KEY, libelle TEXT, montant DECIMAL(12,2),"
        " le DATETIME, photo BLOB);"
    )
    nodes = _nodes(tmp_path, schema, "HQ", "S1", "S2")
    try:
        conn = sqlite3.connect(tmp_path / "S1.db")
        with conn:
            conn.executemany(
                "INSERT INTO ventes VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        n,
                        f"vente {n} é中😀",
                        f"{n}.50",
                        f"1969-07-{1 + n % 28:02d} 20:17:40",
                        bytes([0, n % 256, 0]),
                    )
                    for n in range(50)
                ],
            )
        conn.close()
        package = nodes["S1"].export().path
        encoded.clear()
        assert nodes["HQ"].import_package(package).status == "applied"
        assert sum(encoded.values()) == 0, f"rows encoded again for the change log: {encoded}"
        for code in ("S1", "S2"):
            path, _manifest = nodes["HQ"].publish(code, tmp_path / "out")
            assert nodes[code].import_package(path).status == "applied"
        sums = [checksums(str(tmp_path / f"{c}.db")) for c in ("HQ", "S1", "S2")]
        assert sums[0] == sums[1] == sums[2]
    finally:
        for node in nodes.values():
            node.close()


def test_a_siege_logs_its_own_changes_in_their_carried_form_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Siège logs its own changes from the package it exported: in the form that
    package carries, not encoded value by value again; a site served from that log gets
    the Siège's rows."""
    from engine_helpers import checksums

    from synchro.engine import siege_node

    calls = [0]
    real = siege_node.to_json

    def counted(kind: Kind, value: object) -> object:
        calls[0] += 1
        return real(kind, value)

    monkeypatch.setattr(siege_node, "to_json", counted)
    schema = "CREATE TABLE t(id INTEGER PRIMARY KEY, nom TEXT, prix DECIMAL(9,3), le DATE)"
    nodes = _nodes(tmp_path, schema, "HQ", "S1")
    try:
        conn = sqlite3.connect(tmp_path / "HQ.db")
        with conn:
            conn.executemany(
                "INSERT INTO t VALUES (?, ?, ?, ?)",
                [
                    (n, f"article {n} Ø𝄞", f"{n}.125", f"1901-01-{1 + n % 28:02d}")
                    for n in range(40)
                ],
            )
        conn.close()
        nodes["HQ"].export()
        assert calls[0] == 0, "the Siège's own rows were encoded again for its log"
        path, _manifest = nodes["HQ"].publish("S1", tmp_path / "out")
        assert nodes["S1"].import_package(path).status == "applied"
        assert checksums(str(tmp_path / "HQ.db")) == checksums(str(tmp_path / "S1.db"))
    finally:
        for node in nodes.values():
            node.close()


def _nodes(folder: Path, schema: str, *codes: str) -> dict[str, Node]:
    """A node per code on its own SQLite file made with ``schema``; ``HQ`` is the Siège."""
    from engine_helpers import make_node

    nodes = {}
    for code in codes:
        conn = sqlite3.connect(folder / f"{code}.db")
        conn.executescript(schema)
        conn.close()
        nodes[code] = make_node(folder, code, str(folder / f"{code}.db"), hq=code == "HQ")
    return nodes
