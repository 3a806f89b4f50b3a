"""The pre-flight schema check: comparison rules, column details on real back ends, the
details in packages and ``schemas.json``, and ``synchro check`` between a Siège and an
establishment on MariaDB over a real FTPS server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import PG, need_pyodbc
from conftest import require
from pair_helpers import cli_pair, free_port, synchro

from synchro.app import App
from synchro.config.model import (
    Config,
    DatabaseSettings,
    HQSettings,
    Role,
    SiteSettings,
)
from synchro.config.store import load_config, save_config
from synchro.db import open_database
from synchro.db.base import Column, Table
from synchro.db.details import (
    from_json,
    mysql_details,
    odbc_details,
    postgresql_details,
    to_json,
)
from synchro.engine.preflight import Finding, compare, describe, hold, local_limits
from synchro.engine.preflight_run import check_site, local_tables
from synchro.engine.schema_exchange import (
    decode,
    encode,
    newest_package,
    remember_received,
    site_declared,
)
from synchro.enrolment import add_site, join_with_token
from synchro.gui_backend import AppBackend
from synchro.log import setup_logging, shutdown_logging
from synchro.package import PackageWriter, TableSchema, open_package
from synchro.package.manifest import DETAILS_VERSION, FORMAT_VERSION
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import NodePaths, certificate_files, paths_beside
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import ensure_certificate


def col(name: str, kind: str, type_name: str, **details: object) -> Column:
    return dataclasses.replace(Column(name, kind, type_name), **details)


def codes(found: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.column, f.code, f.side) for f in found]


# -- rules ----------------------------------------------------------------------------------


def test_text_length_charset_and_sqlite_not_enforced() -> None:
    short = col("nom", "text", "varchar", length=20)
    wide = col("nom", "text", "varchar", length=50)
    unlimited = col("nom", "text", "text")
    assert codes(hold(short, wide, "here")) == [("nom", "short_chars", "here")]
    assert codes(hold(short, unlimited, "here")) == [("nom", "short_chars_unlimited", "here")]
    assert hold(wide, short, "here") == []
    sqlite = col("nom", "text", "VARCHAR(5)", length=5, enforced=False)
    assert hold(sqlite, unlimited, "here") == []  # SQLite stores any length
    assert codes(hold(short, sqlite, "here")) == []  # declared 5 fits in 20
    mb3 = col("nom", "text", "varchar", length=50, charset="utf8mb3")
    assert codes(hold(mb3, wide, "here")) == [("nom", "charset", "here")]
    assert hold(col("nom", "text", "varchar", length=50, charset="utf8mb4"), wide, "x") == []


def test_integers_decimals_floats() -> None:
    int4 = col("n", "int", "INT", width=4)
    int8 = col("n", "int", "BIGINT", width=8)
    u8 = col("n", "int", "BIGINT UNSIGNED", width=8, unsigned=True)
    u4 = col("n", "int", "INT UNSIGNED", width=4, unsigned=True)
    assert codes(hold(int4, int8, "here")) == [("n", "int", "here")]
    assert hold(int8, int4, "here") == []
    assert codes(hold(int8, u8, "here")) == [("n", "int", "here")]  # 2^64-1 > 2^63-1
    assert hold(int8, u4, "here") == []
    assert codes(hold(u8, int4, "here")) == [("n", "int", "here")]  # negatives
    d10 = col("p", "decimal", "DECIMAL", precision=10, scale=2)
    d12 = col("p", "decimal", "NUMERIC", precision=12, scale=4)
    free = col("p", "decimal", "numeric")
    found = hold(d10, d12, "here")
    assert codes(found) == [("p", "decimal", "here")]
    assert found[0].values["suggest"] == "DECIMAL(12,4)"
    assert codes(hold(d10, free, "here")) == [("p", "decimal", "here")]
    assert hold(d12, d10, "here") == [] and hold(free, d12, "here") == []
    sqlite = col("p", "decimal", "DECIMAL(10,2)", precision=10, scale=2, enforced=False)
    assert hold(sqlite, d12, "here") == []  # 12 digits: a double keeps 15
    d38 = col("p", "decimal", "numeric", precision=38, scale=10)
    assert codes(hold(sqlite, d38, "here")) == [("p", "sqlite_digits", "here")]
    single = col("f", "float", "FLOAT", width=4)
    double = col("f", "float", "DOUBLE", width=8)
    assert codes(hold(single, double, "here")) == [("f", "float", "here")]
    assert hold(double, single, "here") == []


def test_dates_range_fraction_and_not_null() -> None:
    ts = col("quand", "datetime", "TIMESTAMP", years=(1970, 2038), fraction=0)
    dt6 = col("quand", "datetime", "timestamp", fraction=6)
    assert codes(hold(ts, dt6, "here")) == [
        ("quand", "years", "here"),
        ("quand", "fraction", "here"),
    ]
    assert codes(hold(dt6, ts, "here")) == []
    date = col("jour", "date", "DATE", years=(1000, 9999))
    assert codes(hold(date, col("jour", "date", "date"), "here")) == [("jour", "years", "here")]
    required = dataclasses.replace(Column("c", "text", "text", nullable=False))
    optional = Column("c", "text", "text")
    assert codes(hold(required, optional, "here")) == [("c", "not_null", "here")]
    assert hold(optional, required, "here") == []


def test_time_zones_kind_families_and_sqlite_integers() -> None:
    tz = col("t", "datetime", "timestamptz", fraction=6, zone=True)
    naive = col("t", "datetime", "timestamp", fraction=6, zone=False)
    sqlite = col("t", "datetime", "DATETIME", enforced=False)
    assert codes(hold(naive, tz, "here")) == [("t", "zone_missing", "here")]
    assert codes(hold(tz, naive, "here")) == [("t", "zone_required", "here")]
    assert hold(tz, sqlite, "here") == [] and hold(sqlite, tz, "here") == []
    assert "une date avec fuseau serait refusée" in hold(naive, tz, "here")[0].text("fr")
    text = Table("t", (col("id", "int", "INT", width=4), col("u", "text", "CHAR(36)")), ("id",))
    uuid_ = Table("t", (col("id", "int", "INT", width=4), col("u", "uuid", "uuid")), ("id",))
    found = compare([text], [uuid_], "hq")
    assert codes(found) == [("u", "kind", "hq")]  # text holds a UUID, not the reverse
    assert found[0].text("fr").startswith("t.u : types incompatibles : UUID au siège, CHAR(36) ici")
    assert codes(compare([uuid_], [text], "hq")) == [("u", "kind", "here")]
    blob = Table("t", (col("id", "int", "INT", width=4), col("u", "blob", "BLOB")), ("id",))
    assert codes(compare([text], [blob], "hq")) == [("u", "kind", "here")]
    lite = col("n", "decimal", "NUMERIC", enforced=False)
    assert hold(lite, col("n", "decimal", "numeric", precision=18, scale=0), "here") == []
    big = col("n", "decimal", "numeric", precision=19, scale=0)
    assert codes(hold(lite, big, "here")) == [("n", "sqlite_digits", "here")]


def test_compare_both_directions_missing_parts_key_and_words() -> None:
    here = [
        Table(
            "a",
            (col("id", "int", "INT", width=4), col("nom", "text", "varchar", length=20)),
            ("id",),
        ),
        Table("only_here", (col("id", "int", "INT", width=4),), ("id",)),
        Table("k", (col("x", "int", "INT", width=8), col("y", "int", "INT", width=8)), ("x",)),
    ]
    there = [
        Table(
            "a",
            (
                col("id", "int", "INTEGER", width=8, enforced=False),
                col("nom", "text", "VARCHAR(50)", length=50, enforced=False),
                col("extra", "text", "TEXT", enforced=False),
            ),
            ("id",),
        ),
        Table("only_there", (col("id", "int", "INTEGER", width=8),), ("id",)),
        Table("k", (col("x", "int", "INT", width=8), col("y", "text", "TEXT")), ("x", "y")),
    ]
    found = compare(here, there, "hq")
    assert [(f.table, f.column, f.code, f.side) for f in found] == [
        ("a", "extra", "missing_column", "here"),
        ("a", "id", "int", "here"),
        ("a", "nom", "short_chars", "here"),
        ("k", "", "key", "here"),
        ("k", "y", "kind", "here"),
        ("only_here", "", "missing_table", "hq"),
        ("only_there", "", "missing_table", "here"),
    ]
    lines = [f.text("fr") for f in found]
    assert lines[2] == (
        "a.nom : trop courte : VARCHAR(20) ici, jusqu'à 50 caractères au siège. "
        "À faire : agrandissez la colonne ici à 50 caractères au moins."
    )
    assert lines[5].startswith("only_here : table absente au siège (elle existe ici)")
    english = found[1].text("en")
    assert english.startswith("a.id: narrower integer: INT here, INTEGER at the headquarters.")
    # The other direction: the Siège's narrower column is said to be at the Siège.
    back = compare(there, here, "3615")
    assert ("a", "nom", "short_chars", "here") not in [
        (f.table, f.column, f.code, f.side) for f in back
    ]
    assert [(f.column, f.code, f.side) for f in back if f.table == "a"] == [
        ("id", "int", "3615"),
        ("nom", "short_chars", "3615"),
        ("extra", "missing_column", "3615"),
    ]
    nom = next(f for f in back if f.column == "nom").text("fr")
    assert nom.startswith("a.nom : trop courte : VARCHAR(20) à l'établissement 3615, jusqu'à 50")


def test_local_limits_and_describe() -> None:
    tables = [
        Table(
            "t",
            (
                col("a", "text", "VARCHAR", length=20, charset="latin1"),
                col("b", "datetime", "TIMESTAMP", years=(1970, 2038)),
                col("c", "decimal", "DECIMAL(38,10)", precision=38, scale=10, enforced=False),
                col("d", "decimal", "DECIMAL", precision=10, scale=2),
            ),
            ("a",),
        )
    ]
    found = local_limits(tables)
    assert [(f.column, f.code, f.blocking) for f in found] == [
        ("a", "charset", False),
        ("b", "years_local", False),
        ("c", "sqlite_digits", False),
    ]
    assert "1970 à 2038" in found[1].text("fr")
    assert describe(tables[0].columns[0]) == "VARCHAR(20) latin1"
    assert describe(tables[0].columns[3]) == "DECIMAL(10,2)"


def test_details_parsers_and_json_round_trip() -> None:
    assert mysql_details("bigint(20) unsigned", None) == {"width": 8, "unsigned": True}
    assert mysql_details("varchar(20)", "utf8") == {"length": 20, "charset": "utf8mb3"}
    assert mysql_details("text", "utf8mb4") == {"length": 16383, "charset": "utf8mb4"}
    assert mysql_details("timestamp(3)", None) == {
        "years": (1970, 2038),
        "fraction": 3,
        "zone": False,
    }
    assert postgresql_details("timestamp with time zone", None, None, None, 6, "UTF8") == {
        "fraction": 6,
        "zone": True,
    }
    assert mysql_details("decimal(12,4)", None) == {"precision": 12, "scale": 4}
    assert postgresql_details("numeric", None, None, None, None, "UTF8") == {
        "precision": None,
        "scale": None,
    }
    assert postgresql_details("text", None, None, None, None, "LATIN1") == {
        "length": None,
        "charset": "latin1",
    }
    c = col("q", "datetime", "TIMESTAMP", years=(1970, 2038), fraction=0, nullable=False)
    back = from_json("q", "datetime", to_json(c))
    assert from_json("q", "datetime", to_json(dataclasses.replace(c, zone=True))).zone is True
    assert (back.years, back.fraction, back.nullable, back.type_name) == (
        (1970, 2038),
        0,
        False,
        "TIMESTAMP",
    )
    assert from_json("x", "text", "junk") == Column("x", "text")


def test_packages_carry_details_and_stay_readable_without(tmp_path: Path) -> None:
    table = Table(
        "t", (col("id", "int", "INT", width=4), col("nom", "text", "varchar", length=20)), ("id",)
    )
    plain = TableSchema("t", (("id", "int"), ("nom", "text")), ("id",))
    with PackageWriter(
        tmp_path / "old.pkg", origin="A", sequence=1, kind="site", tables=[plain]
    ) as w:
        w.write("t", "U", (1, "x"))
    with PackageWriter(
        tmp_path / "new.pkg", origin="A", sequence=2, kind="site", tables=[TableSchema.of(table)]
    ) as w:
        w.write("t", "U", (1, "x"))
    old, new = open_package(tmp_path / "old.pkg"), open_package(tmp_path / "new.pkg")
    assert old.manifest.format == FORMAT_VERSION and not old.manifest.tables[0].details
    assert new.manifest.format == DETAILS_VERSION
    assert new.manifest.tables[0] == plain  # details take no part in equality
    assert new.manifest.tables[0].table.columns[1].length == 20
    assert [c.values for c in new.changes()] == [(1, "x")]
    raw = (tmp_path / "old.pkg").read_bytes()
    assert raw[12:14] == FORMAT_VERSION.to_bytes(2, "big")  # still what format 1 readers read


@pytest.mark.parametrize("missing", [True, False])
def test_no_details_no_rules(missing: bool) -> None:
    """A schema from a format 1 package says names and kinds only: no size rule applies."""
    here = [Table("t", (col("id", "int", "INT", width=4),), ("id",))]
    there = [Table("t", (Column("id", "int", "" if missing else "BIGINT", width=8),), ("id",))]
    assert bool(compare(here, there, "hq")) is not missing


# -- end to end: a Siège on SQLite, an establishment on MariaDB, real FTPS -----------------

SITE_DDL = (
    "CREATE TABLE clients (id BIGINT PRIMARY KEY, nom VARCHAR(20) NOT NULL,"
    " ville VARCHAR(50) CHARACTER SET utf8mb3, naissance TIMESTAMP NULL, solde DECIMAL(10,2))"
)
HQ_DDL = (
    "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom VARCHAR(50) NOT NULL,"
    " ville VARCHAR(50), naissance DATETIME, solde DECIMAL(12,4))"
)
FIXES = (
    "ALTER TABLE clients MODIFY nom VARCHAR(50) NOT NULL,"
    " MODIFY ville VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,"
    " MODIFY naissance DATETIME(6) NULL, MODIFY solde DECIMAL(12,4)"
)


def _configs(tmp_path: Path, site_db: str, hq_db: str = "") -> tuple[NodePaths, NodePaths, Config]:
    """A Siège (SQLite with HQ_DDL unless ``hq_db`` is given) and establishment 3615."""
    hq_paths = paths_beside(tmp_path / "hq" / "synchro.toml").ensure()
    if not hq_db:
        hq_db = str(tmp_path / "hq" / "siege.db")
        with sqlite3.connect(hq_db) as conn:
            conn.execute(HQ_DDL)
        conn.close()
    fingerprint = ensure_certificate(*certificate_files(hq_paths), "SIEGE")
    hq = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(listen_address="127.0.0.1", port=free_port()),
        database=DatabaseSettings(connection=hq_db),
    )
    hq, token = add_site(hq, "3615", "127.0.0.1", fingerprint)
    save_config(hq, hq_paths.config_file)
    site_paths = paths_beside(tmp_path / "site" / "synchro.toml").ensure()
    site = Config(
        role=Role.SITE,
        site_settings=SiteSettings(auto_sync=False, timeout_s=10),
        database=DatabaseSettings(connection=site_db),
    )
    save_config(join_with_token(site, token), site_paths.config_file)
    return hq_paths, site_paths, hq


@pytest.fixture()
def logs(tmp_path: Path) -> Iterator[None]:
    setup_logging(tmp_path / "logs", console=False)  # the App masks secrets in its log
    yield
    shutdown_logging()


def check_cli(paths: NodePaths) -> subprocess.CompletedProcess[str]:
    return synchro("--config", str(paths.config_file), "check", cwd=paths.config_file.parent)


PG_HQ_DDL = (
    "CREATE TABLE clients (id BIGINT PRIMARY KEY, nom VARCHAR(50) NOT NULL,"
    " ville VARCHAR(50), naissance TIMESTAMP, solde NUMERIC(12,4))"
)


@pytest.mark.parametrize("hq_backend", ["sqlite", "postgresql"])
def test_check_siege_against_mariadb_site(
    tmp_path: Path, make_backend: Any, logs: None, hq_backend: str
) -> None:
    maria = make_backend("mariadb")
    maria.execute(SITE_DDL)
    hq_db = ""
    if hq_backend == "postgresql":
        pg = make_backend("postgresql")
        pg.execute(PG_HQ_DDL)
        hq_db = pg.connection
    hq_paths, site_paths, hq = _configs(tmp_path, maria.connection, hq_db)
    decimal = "NUMERIC(12,4)" if hq_db else "DECIMAL(12,4)"

    # The Siège knows no establishment's schemas yet: its own limits only, exit 0; and it
    # publishes its schemas for 3615.
    done = check_cli(hq_paths)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Établissement 3615 : schémas encore inconnus" in done.stdout
    assert (hq_paths.ftp_root / "3615" / "out" / "schemas.json").is_file()

    cert, key = certificate_files(hq_paths)
    server = HQServer.from_settings(hq_paths.ftp_root, hq.hq, cert_file=cert, key_file=key)
    server.start()
    try:
        done = check_cli(site_paths)
        out = done.stdout
        assert done.returncode == 1, out + done.stderr
        assert "Comparé avec les schémas publiés par le siège" in out
        assert "clients.nom : trop courte : VARCHAR(20) ici, jusqu'à 50 caractères au siège" in out
        assert "clients.ville : jeu de caractères utf8mb3 ici" in out
        assert "À faire : convertissez la colonne ici en utf8mb4" in out
        assert "clients.naissance : plage de dates trop courte : TIMESTAMP ici" in out
        assert "accepte les années 1970 à 2038" in out
        assert "clients.naissance : fractions de seconde perdues" in out
        assert f"clients.solde : décimal plus étroit : DECIMAL(10,2) ici, {decimal} au siège" in out
        assert "utilisez ici DECIMAL(12,4) au moins" in out
        assert "5 problème(s)" in out
        # The establishment sent its schemas: the Siège now checks the other direction.
        assert (hq_paths.ftp_root / "3615" / "in" / "schemas.json").is_file()
        done = check_cli(hq_paths)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "les schémas déclarés par l'établissement 3615" in done.stdout
        assert "VARCHAR(20) à l'établissement 3615" in done.stdout

        # The Test button of the General window says the same after its login check.
        backend = AppBackend(site_paths, autostart=XdgAutostart(tmp_path / "autostart"))
        try:
            tested = backend.test_connection(f"127.0.0.1:{hq.hq.port}")
            tables = backend.list_tables(maria.connection)
        finally:
            backend.close()
        assert "réussie" in tested.text and "clients.nom : trop courte" in tested.text
        assert not tested.ok  # shown in red: the login worked, the schemas do not fit
        assert tables == [
            "clients — à vérifier : ville : jeu de caractères utf8mb3 ; "
            "naissance : années 1970 à 2038 seulement"
        ]

        maria.execute(FIXES)
        done = check_cli(site_paths)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Toutes les colonnes peuvent recevoir les valeurs de l'autre côté" in done.stdout
        done = check_cli(hq_paths)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.stop()


def test_check_site_without_hq_schemas_and_bad_settings(tmp_path: Path) -> None:
    site_db = tmp_path / "m.db"
    with sqlite3.connect(site_db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d DECIMAL(38,10))")
    conn.close()
    _hq_paths, site_paths, _hq = _configs(tmp_path, str(site_db))
    done = check_cli(site_paths)  # no FTP server listening
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Schémas du siège introuvables" in done.stdout
    assert "t.d : SQLite ne garde que 15 chiffres exacts" in done.stdout
    text = site_paths.config_file.read_text(encoding="utf-8")
    site_paths.config_file.write_text(text.replace("role = ", "role = 'x' #"), encoding="utf-8")
    done = check_cli(site_paths)
    assert done.returncode == 2, done.stdout + done.stderr


def test_app_publishes_the_siege_schemas_at_start(tmp_path: Path, logs: None) -> None:
    hq_paths, _site_paths, hq = _configs(tmp_path, "unused.db")
    target = hq_paths.ftp_root / "3615" / "out" / "schemas.json"
    app = App(hq, hq_paths)
    app.start()
    try:
        for _ in range(200):  # the engine thread publishes as it starts
            if target.is_file():
                break
            time.sleep(0.05)
    finally:
        app.close()
    declared = decode(target.read_bytes())
    assert declared.origin == "SIEGE"
    assert [c.length for c in declared.tables[0].columns] == [None, 50, 50, None, None]


def test_site_add_publishes_and_json_output_when_everything_fits(tmp_path: Path) -> None:
    hq_dir, site_dir, _token = cli_pair(tmp_path)
    hq_paths = paths_beside(hq_dir / "synchro.toml")
    published = decode((hq_paths.ftp_root / "3615" / "out" / "schemas.json").read_bytes())
    assert [t.name for t in published.tables] == ["articles"]
    hq = load_config(hq_paths.config_file)
    cert, key = certificate_files(hq_paths)
    server = HQServer.from_settings(hq_paths.ftp_root, hq.hq, cert_file=cert, key_file=key)
    server.start()
    try:
        done = synchro("--config", "synchro.toml", "check", "--json", cwd=site_dir)
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert (data["site"], data["exit_code"], data["compared"], data["findings"]) == (
        "3615",
        0,
        1,
        [],
    )
    assert "Toutes les colonnes peuvent recevoir" in data["lines"][-1]


def test_package_headers_are_a_source_on_both_sides(tmp_path: Path) -> None:
    """The Siège's package in an establishment's inbox, an establishment's package archived
    at the Siège: their headers say the sender's schemas."""
    narrow = Table("t", (col("id", "int", "INT", width=4, nullable=False),), ("id",))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with PackageWriter(
        inbox / "SIEGE-3615-00000001.pkg",
        origin="SIEGE",
        sequence=1,
        kind="hq",
        tables=[TableSchema.of(narrow)],
    ):
        pass
    found = newest_package(inbox, exclude="3615")
    assert found is not None and found.origin == "SIEGE"
    assert found.package == "SIEGE-3615-00000001.pkg"
    assert found.tables[0].columns[0].width == 4
    assert newest_package(inbox, exclude="SIEGE") is None
    (inbox / "junk.pkg").write_bytes(b"not a package")
    assert newest_package(inbox, origin="SIEGE") is not None  # a damaged file is skipped
    archive = tmp_path / "archive"
    (archive / "3615").mkdir(parents=True)
    (inbox / "SIEGE-3615-00000001.pkg").rename(archive / "3615" / "x.pkg")
    assert site_declared(tmp_path / "ftp", archive, "3615") == []  # origin is not 3615
    wide = Table("t", (col("id", "int", "BIGINT", width=8, nullable=False),), ("id",))
    with PackageWriter(
        archive / "3615" / "3615-00000001.pkg",
        origin="3615",
        sequence=1,
        kind="site",
        tables=[TableSchema.of(wide)],
    ):
        pass
    declared = site_declared(tmp_path / "ftp", archive, "3615")
    assert [d.package for d in declared] == ["3615-00000001.pkg"]
    # A schemas.json from the establishment's check: the freshest source comes first.
    uploaded = tmp_path / "ftp" / "3615" / "in" / "schemas.json"
    uploaded.parent.mkdir(parents=True)
    uploaded.write_bytes(encode("3615", "serveur", [narrow], dt.datetime(2026, 1, 1)))
    os.utime(uploaded, (1, 1))
    assert [d.package for d in site_declared(tmp_path / "ftp", archive, "3615")] == [
        "3615-00000001.pkg",
        "",
    ]
    os.utime(uploaded)
    newest = site_declared(tmp_path / "ftp", archive, "3615")[0]
    assert (newest.package, newest.created) == ("", "2026-01-01T00:00:00")
    found_codes = codes(compare([narrow], declared[0].tables, "3615"))
    assert found_codes == [("id", "int", "here")]


def test_odbc_catalog_details_for_other_sources() -> None:
    assert odbc_details(-9, 50, None) == {"length": 50}  # nvarchar(50)
    assert odbc_details(-9, 0, None) == {"length": None}  # nvarchar(max)
    assert odbc_details(-10, 1073741823, None) == {"length": None}
    assert odbc_details(3, 18, 4) == {"precision": 18, "scale": 4}
    assert odbc_details(5, 5, 0) == {"width": 2}
    assert odbc_details(7, 24, None) == {"width": 4}
    assert odbc_details(93, 23, 3) == {"fraction": 3, "zone": None}
    assert odbc_details(-155, 34, 7) == {"fraction": 7, "zone": True}
    assert odbc_details(-7, 1, None) == {}


def test_site_check_uses_the_last_siege_package_when_the_siege_is_unreachable(
    tmp_path: Path,
) -> None:
    site_db = tmp_path / "m.db"
    with sqlite3.connect(site_db) as conn:
        conn.execute(HQ_DDL.replace("ville VARCHAR(50)", "ville VARCHAR(50) NOT NULL"))
    conn.close()
    hq_paths, site_paths, hq = _configs(tmp_path, str(site_db))
    siege = local_tables(hq, hq_paths)
    with PackageWriter(
        tmp_path / "p.pkg",
        origin="SIEGE",
        sequence=7,
        kind="hq",
        tables=[TableSchema.of(t) for t in siege],
    ) as writer:
        pass
    remember_received(site_paths.packages_dir, writer.close(), dt.datetime(2026, 1, 2))
    report = check_site(load_config(site_paths.config_file), site_paths, lang="en")
    assert report.exit_code == 1 and not report.failed
    assert "Compared with the schemas of the headquarters' package SIEGE#7." in report.lines
    assert report.lines[1].startswith("Schemas published by the headquarters not read: ")
    assert report.lines[-1].startswith(
        "  clients.ville: required (NOT NULL) here but optional at the headquarters"
    )


def test_postgresql_database_not_in_utf8_is_a_charset_limit() -> None:
    pyodbc = need_pyodbc("postgresql")
    name = f"synchro_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = pyodbc.connect(PG.format(db="postgres"), autocommit=True, timeout=5)
    except pyodbc.Error as exc:
        require(f"postgresql server on 127.0.0.1 unreachable: {exc}")
    try:
        admin.execute(
            f"CREATE DATABASE {name} ENCODING 'LATIN1' TEMPLATE template0"
            " LC_COLLATE 'C' LC_CTYPE 'C'"
        )
        conn = pyodbc.connect(PG.format(db=name), autocommit=True, timeout=5)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, nom VARCHAR(20))")
        conn.close()
        with open_database(PG.format(db=name)) as adapter:
            tables = adapter.tables()
        nom = tables[0].columns[1]
        assert (nom.length, nom.charset) == (20, "latin1")
        assert [(f.column, f.code) for f in local_limits(tables)] == [("nom", "charset")]
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
