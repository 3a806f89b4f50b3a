"""Stored = sent through MariaDB (ODBC): a column that truncates, a TIMESTAMP that refuses.

Both are the server's own behaviour, not fakes: in a non-strict SQL mode (set for the
connection with the driver's ``INITSTMT``, so no other test sees it) a VARCHAR(5) keeps the
first five characters of a longer text and only warns; a TIMESTAMP column (1970–2038)
refuses a 1950 date in the default strict mode.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from engine_helpers import make_node
from test_cli_engine import init

from synchro.cli import main
from synchro.platform.paths import resolve_paths
from synchro.state import StateDB

NON_STRICT = ";INITSTMT=SET SESSION sql_mode=''"


def sqlite_db(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def sync_to_mariadb(tmp_path: Path, maria: Any, connection: str, rows: str) -> Any:
    """A Siège on SQLite holding ``rows`` in ``t``, an establishment on ``maria``."""
    h = tmp_path / "h.db"
    sqlite_db(h, f"CREATE TABLE t (id INTEGER PRIMARY KEY, nom TEXT NOT NULL, n INTEGER); {rows}")
    hq = make_node(tmp_path, "SIEGE", str(h), hq=True)
    site = make_node(tmp_path, "B", connection)
    hq.export()
    path, _ = hq.publish("B", tmp_path / "out")
    result = site.import_package(path)
    hq.close()
    return site, result


def test_a_value_too_long_for_a_mariadb_column_is_never_cut_and_flows_once_widened(
    tmp_path: Path, make_backend: Any
) -> None:
    maria = make_backend("mariadb")
    maria.execute("CREATE TABLE t (id INT PRIMARY KEY, nom VARCHAR(5) NOT NULL, n INT)")
    # non-strict: the server itself would keep 5 characters and only warn
    site, result = sync_to_mariadb(
        tmp_path,
        maria,
        maria.connection + NON_STRICT,
        "INSERT INTO t VALUES (1, 'Último Pau', 1), (2, 'court', 2);",
    )
    with site:
        assert (result.stats.upserts, result.stats.quarantined) == (1, 1)
        [entry] = site.state.pending()
        assert (entry["tbl"], entry["key_json"]) == ("t", "[1]")
        assert "nom" in entry["error"]
        if entry["kind"] == "mismatch":  # cut by the server, caught by the read back
            assert json.loads(entry["columns_json"])[0]["sent"] == "Último Pau"
        again = site.export()
        assert again.manifest.rows == 0  # nothing stored differently goes out
        assert len(again.capture.unapplied) == 1

    maria.execute("ALTER TABLE t MODIFY nom VARCHAR(20) NOT NULL")
    with make_node(tmp_path, "B", maria.connection + NON_STRICT) as site:  # the next run
        fixed = site.export()
        assert fixed.manifest.rows == 0 and fixed.capture.unapplied == []
        assert [r["outcome"] for r in fixed.capture.retried] == ["applied"]
        assert maria.query("SELECT HEX(nom) FROM t ORDER BY id") == [
            ("Último Pau".encode().hex().upper(),),
            (b"court".hex().upper(),),
        ]
        assert site.export().manifest.rows == 0


def test_a_value_a_mariadb_trigger_rewrites_is_caught_by_the_read_back(
    tmp_path: Path, make_backend: Any
) -> None:
    maria = make_backend("mariadb")
    maria.execute("CREATE TABLE t (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL, n INT)")
    for when in ("INSERT", "UPDATE"):
        maria.execute(
            f"CREATE TRIGGER up_{when.lower()} BEFORE {when} ON t FOR EACH ROW "
            "SET NEW.nom = UPPER(NEW.nom)"
        )
    site, result = sync_to_mariadb(
        tmp_path,
        maria,
        maria.connection,
        "INSERT INTO t VALUES (1, 'ÉCOLE', 1), (2, 'Zoé ヘ ט', 2);",
    )
    with site:
        assert (result.stats.upserts, result.stats.mismatched) == (1, 1)
        [entry] = site.state.pending()
        assert json.loads(entry["columns_json"]) == [
            {"column": "nom", "sent": "Zoé ヘ ט", "stored": "ZOÉ ヘ ט"}
        ]
        assert site.export().manifest.rows == 0  # no echo of the stored value
        maria.execute("DROP TRIGGER up_insert")
        maria.execute("DROP TRIGGER up_update")
        fixed = site.export()
        assert fixed.manifest.rows == 0 and fixed.capture.unapplied == []
        assert maria.query("SELECT HEX(nom) FROM t WHERE id = 2") == [
            ("Zoé ヘ ט".encode().hex().upper(),)
        ]


def test_a_date_a_mariadb_timestamp_refuses_fails_the_cli_import(
    tmp_path: Path, make_backend: Any, capsys: Any
) -> None:
    maria = make_backend("mariadb")
    maria.execute("CREATE TABLE emp (id INT PRIMARY KEY, nom VARCHAR(20), born TIMESTAMP NULL)")
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    sqlite_db(
        site.with_suffix(".db"),
        "CREATE TABLE emp (id INTEGER PRIMARY KEY, nom TEXT, born DATETIME);"
        "INSERT INTO emp VALUES (1, 'Ann', '1950-03-04 08:00:00'),"
        " (2, 'Bob', '1990-01-02 03:04:05');",
    )
    assert init(site) == 0
    assert (
        main(["--config", str(hq), "init", "--role", "siege", "--site", "SIEGE", "--db",
              maria.connection, "--force"])
        == 0
    )  # fmt: skip
    package = tmp_path / "envoi.pkg"
    assert main(["--config", str(site), "export", "--out", str(package)]) == 0
    capsys.readouterr()
    assert main(["--config", str(hq), "import", str(package)]) == 1
    out = capsys.readouterr()
    assert "1 ligne non appliquée — voir le rapport" in out.err
    assert "emp [1]" in out.err
    assert maria.query("SELECT id, nom FROM emp") == [(2, "Bob")]  # the others stay applied
    state = StateDB(resolve_paths(str(hq)).state_db)
    try:
        [entry] = state.pending()
        assert (entry["tbl"], entry["key_json"], entry["kind"]) == ("emp", "[1]", "refused")
    finally:
        state.close()
