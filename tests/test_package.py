"""Package files: round trip, manifest, atomic write, and refusal of damaged files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tracemalloc
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro.db.base import Column, Table
from synchro.errors import PackageError, text_in
from synchro.package import (
    FORMAT_VERSION,
    Change,
    PackageWriter,
    TableSchema,
    open_package,
    read_manifest,
)
from synchro.package.manifest import MAGIC

EVERY = TableSchema(
    "tout",
    (
        ("id", "int"),
        ("f", "float"),
        ("prix", "decimal"),
        ("nom", "text"),
        ("actif", "bool"),
        ("jour", "date"),
        ("quand", "datetime"),
        ("heure", "time"),
        ("photo", "blob"),
    ),
    ("id",),
)
LIGNES = TableSchema(
    "lignes",
    (("site", "text"), ("num", "int"), ("qte", "int"), ("note", "text")),
    ("site", "num"),
)
TEXT = "Crème brûlée « spéciale » 😀\nligne 2\r\n\"guillemets\" 'apostrophe' \\ \t\x00 fin"
ROWS: list[tuple[Any, ...]] = [
    (
        1,
        3.14159,
        Decimal("1234.50"),
        TEXT,
        True,
        dt.date(2005, 12, 6),
        dt.datetime(2005, 12, 6, 23, 0, 0, 123456),
        dt.time(17, 39, 2, 500),
        bytes(range(256)),
    ),
    (
        2,
        -0.0,
        Decimal("-0.001"),
        "",
        False,
        dt.date(1, 1, 1),
        dt.datetime(9999, 12, 31),
        dt.time(),
        b"",
    ),
    (3, None, None, None, None, None, None, None, None),
    (
        4,
        1e300,
        Decimal("1E+3"),
        "x" * 10_000,
        True,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
        dt.time(0, 0, 0, 1),
        b"\x00\n\r",
    ),
]


def write_sample(path: Path, **kwargs: Any) -> None:
    with PackageWriter(
        path, origin="3615", sequence=7, kind="site", tables=[EVERY, LIGNES], **kwargs
    ) as writer:
        for row in ROWS:
            writer.write("tout", "U", row)
        writer.write("tout", "D", (99,))
        writer.write("lignes", "U", ("3615", 1, 2, "a"), origin="0001", pos=12)
        writer.write("lignes", "D", ("3615", 2), origin="0002", pos=13)


def test_every_kind_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    changes = list(open_package(path).changes())
    assert changes[: len(ROWS)] == [Change("tout", "U", row) for row in ROWS]
    for change, row in zip(changes, ROWS, strict=False):
        for got, sent in zip(change.values, row, strict=True):
            assert type(got) is type(sent)
            assert str(got) == str(sent)  # decimal scale, sign of zero, offsets
    assert changes[len(ROWS) :] == [
        Change("tout", "D", (99,)),
        Change("lignes", "U", ("3615", 1, 2, "a"), "0001", 12),
        Change("lignes", "D", ("3615", 2), "0002", 13),
    ]


def test_changes_can_stream_twice(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    reader = open_package(path)
    assert list(reader.changes()) == list(reader.changes())


def test_manifest_fields(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    meta = {"base_pos": 12, "round": "2026-01-02", "liste": [1, "é"]}
    with PackageWriter(
        path,
        origin="0001",
        sequence=42,
        kind="hq",
        tables=[LIGNES],
        meta=meta,
        created=created,
    ) as writer:
        writer.write("lignes", "U", ("a", 1, 1, None))
        writer.write("lignes", "U", ("a", 2, 1, None))
        writer.write("lignes", "D", ("a", 3))
    written = writer.close()
    manifest = read_manifest(path)
    assert manifest == written
    assert manifest.format == FORMAT_VERSION == 1
    assert (manifest.origin, manifest.sequence, manifest.kind) == ("0001", 42, "hq")
    assert dt.datetime.fromisoformat(manifest.created) == created
    assert manifest.meta == meta
    assert manifest.tables == (LIGNES,)
    assert manifest.counts == {"lignes": {"U": 2, "D": 1}}
    assert manifest.rows == 3
    assert manifest.size == path.stat().st_size
    assert len(manifest.sha256) == 64
    assert not manifest.encrypted


def test_empty_package(tmp_path: Path) -> None:
    path = tmp_path / "vide.pkg"
    with PackageWriter(path, origin="1", sequence=0, kind="local", tables=[LIGNES]):
        pass
    reader = open_package(path)
    assert reader.manifest.rows == 0
    assert reader.manifest.counts == {"lignes": {"U": 0, "D": 0}}
    assert list(reader.changes()) == []
    with PackageWriter(tmp_path / "rien.pkg", origin="1", sequence=0, kind="local", tables=[]):
        pass
    assert read_manifest(tmp_path / "rien.pkg").tables == ()


def test_schema_of_table() -> None:
    table = Table(
        "ventes",
        (Column("site", "text"), Column("num", "int"), Column("montant", "decimal")),
        key=("site", "num"),
    )
    schema = TableSchema.of(table)
    assert schema == TableSchema(
        "ventes", (("site", "text"), ("num", "int"), ("montant", "decimal")), ("site", "num")
    )
    assert schema.key_positions == (0, 1)
    assert schema.key_kinds == ("text", "int")


def test_writer_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    with (
        pytest.raises(RuntimeError),
        PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer,
    ):
        writer.write("lignes", "U", ("a", 1, 1, "x"))
        assert (tmp_path / "p.pkg.tmp").exists()
        assert not path.exists()
        raise RuntimeError("coupure")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_bad_calls(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    with (
        pytest.raises(ValueError),
        PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer,
    ):
        writer.write("autre", "U", ("a", 1, 1, "x"))
    assert list(tmp_path.iterdir()) == []
    with PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer:
        with pytest.raises(ValueError):
            writer.write("lignes", "X", ("a", 1))
        with pytest.raises(ValueError):
            writer.write("lignes", "D", ("a", 1, 1))
    assert read_manifest(path).rows == 0
    with pytest.raises(ValueError):
        PackageWriter(path, origin="1", sequence=1, kind="autre", tables=[LIGNES])
    with pytest.raises(ValueError):
        PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES, LIGNES])
    bad = TableSchema("t", (("a", "texte"),), ("a",))
    with pytest.raises(ValueError):
        PackageWriter(path, origin="1", sequence=1, kind="site", tables=[bad])


def test_value_that_cannot_travel_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    schema = TableSchema("docs", (("id", "int"), ("contenu", "blob")), ("id",))
    with (
        pytest.raises(PackageError) as info,
        PackageWriter(path, origin="1", sequence=1, kind="site", tables=[schema]) as writer,
    ):
        writer.write("docs", "U", (1, "du texte dans un blob"))
    assert "docs.contenu (blob)" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_odd_values_of_typeless_databases_travel_as_they_are(tmp_path: Path) -> None:
    """SQLite lets a DATE column hold any text: it is carried exactly, not refused."""
    path = tmp_path / "p.pkg"
    schema = TableSchema("t", (("id", "int"), ("jour", "date"), ("n", "decimal")), ("id",))
    with PackageWriter(path, origin="1", sequence=1, kind="site", tables=[schema]) as writer:
        writer.write("t", "U", (1, "pas une date", "12,5"))
        writer.write("t", "U", (True, "2024-01-02", 3))
    assert [c.values for c in open_package(path).changes()] == [
        (1, "pas une date", "12,5"),
        (1, dt.date(2024, 1, 2), Decimal(3)),
    ]


# ------------------------------------------------------------------ damaged files


def refused(path: Path, key: Any = None) -> PackageError:
    """Open ``path`` expecting a refusal; no change may come out."""
    handed: list[Change] = []
    with pytest.raises(PackageError) as info:
        handed.extend(open_package(path, key).changes())
    assert handed == []
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def flip(path: Path, position: int, bit: int) -> None:
    """Flip one bit in place (rewriting whole files is slow on ext4: truncate + flush)."""
    with open(path, "r+b") as fh:
        fh.seek(position)
        byte = fh.read(1)[0]
        fh.seek(position)
        fh.write(bytes([byte ^ (1 << bit)]))


def test_every_truncation_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pkg"
    write_sample(cut)
    for length in reversed(range(cut.stat().st_size)):
        os.truncate(cut, length)
        error = refused(cut)
        assert error.reason == ("fichier vide" if length == 0 else "fichier tronqué"), length


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_single_bit_flip_is_refused(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "p.pkg"
    if not path.exists():
        write_sample(path)
    position = data.draw(st.integers(0, path.stat().st_size - 1), label="octet")
    bit = data.draw(st.integers(0, 7), label="bit")
    flip(path, position, bit)
    try:
        refused(path)
    finally:
        flip(path, position, bit)
    assert open_package(path).manifest.rows == len(ROWS) + 3


def test_every_bit_flip_of_a_small_package_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    with PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer:
        writer.write("lignes", "U", ("é", 1, 2, "note"))
        writer.write("lignes", "D", ("é", 2))
    for position in range(path.stat().st_size):
        for bit in range(8):
            flip(path, position, bit)
            refused(path)
            flip(path, position, bit)
    assert open_package(path).manifest.rows == 2


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("site;num\n3615;1\n", encoding="utf-8")
    assert refused(path).reason == "ce n'est pas un paquet Synchro"
    path.write_bytes(b"PK\x03")
    assert refused(path).reason == "ce n'est pas un paquet Synchro"
    assert refused(tmp_path / "absent.pkg").reason == "fichier introuvable"


def test_text_mode_transfer_is_refused(tmp_path: Path) -> None:
    """An FTP ASCII-mode transfer rewrites line ends: the magic catches it at once."""
    path = tmp_path / "p.pkg"
    write_sample(path)
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
    assert refused(path).reason == "ce n'est pas un paquet Synchro"


def test_foreign_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) : len(MAGIC) + 2] = (7).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    assert refused(path).reason == "version de format 7 inconnue (attendue : 1 ou 2)"


def test_wrong_checksum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    data = path.read_bytes()
    sha = read_manifest(path).sha256
    other = ("0" if sha[0] != "0" else "1") + sha[1:]
    path.write_bytes(data.replace(sha.encode(), other.encode()))
    assert refused(path).reason == "somme de contrôle SHA-256 incorrecte"


def test_consistent_but_wrong_counts_are_refused(tmp_path: Path) -> None:
    """A trailer rewritten with a valid checksum but false counts is still refused."""
    path = tmp_path / "p.pkg"
    write_sample(path)
    data = path.read_bytes()
    manifest = read_manifest(path)
    end = len(data) - 12
    start = end - int.from_bytes(data[end : end + 4], "big")
    trailer = json.loads(data[start:end])
    assert trailer["sha256"] == manifest.sha256
    trailer["counts"]["tout"]["U"] += 1
    trailer["rows"] += 1
    raw = json.dumps(trailer, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(data[:start] + raw + len(raw).to_bytes(4, "big") + data[end + 4 :])
    assert refused(path).reason.startswith("nombre d'enregistrements incorrect (tout U")


def test_file_replaced_after_verification_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    reader = open_package(path)
    with PackageWriter(path, origin="9", sequence=1, kind="site", tables=[LIGNES]) as writer:
        writer.write("lignes", "U", ("a", 1, 1, "x"))
    with pytest.raises(PackageError, match="modifié depuis sa vérification"):
        list(reader.changes())


# ------------------------------------------------------------------ memory


def test_large_package_streams_with_flat_memory(tmp_path: Path) -> None:
    """20 MB of rows written, verified and read back with a few MB of Python memory.

    Rows are ~1 KB so that the size is large while tracemalloc (slow per allocation)
    sees few enough allocations to keep the test quick.
    """
    rows = 20_000
    path = tmp_path / "gros.pkg"
    tracemalloc.start()
    try:
        with PackageWriter(path, origin="3615", sequence=1, kind="site", tables=[LIGNES]) as w:
            for i in range(rows):
                w.write("lignes", "U", ("3615", i, i % 7, f"{i:08d} é " * 100))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reader = open_package(path)
        seen = 0
        for change in reader.changes():
            seen += change.values[1] == seen
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == rows == reader.manifest.rows
    data_size = rows * 1100  # the rows as text
    assert write_peak < 5_000_000 < data_size
    assert read_peak < 5_000_000 < data_size


def test_unwritable_folder_is_a_package_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="écriture impossible"):
        PackageWriter(tmp_path / "absent" / "p.pkg", origin="1", sequence=1, kind="site", tables=[])


def test_changes_are_plain_frozen_changes(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    write_sample(path)
    change = next(iter(open_package(path).changes()))
    assert type(change) is Change
    assert hash(change) == hash(Change("tout", "U", ROWS[0]))
    with pytest.raises(AttributeError):
        change.op = "D"  # type: ignore[misc]


def forge(
    path: Path, header: dict[str, Any] | None = None, lines: list[bytes] | None = None
) -> None:
    """Rewrite a plain package with another header or body and a matching trailer and
    checksum: what a buggy or hostile producer could send."""
    data = path.read_bytes()
    length = int.from_bytes(data[14:18], "big")
    head = json.loads(data[18 : 18 + length])
    end = len(data) - 12
    trailer_start = end - int.from_bytes(data[end : end + 4], "big")
    trailer = json.loads(data[trailer_start:end])
    raw_head = json.dumps(header or head).encode()
    prefix = data[:14] + len(raw_head).to_bytes(4, "big") + raw_head
    body = data[18 + length : trailer_start]
    if lines is not None:
        body = zlib.compress(b"".join(line + b"\n" for line in lines), 1)
    trailer["body_size"] = len(body)
    trailer["sha256"] = hashlib.sha256(prefix + body).hexdigest()
    raw = json.dumps(trailer, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(prefix + body + raw + len(raw).to_bytes(4, "big") + data[end + 4 :])


def test_consistent_but_malformed_packages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.pkg"
    with PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer:
        writer.write("lignes", "U", ("a", 1, 1, "x"))
    original = path.read_bytes()
    head = json.loads(original[18 : 18 + int.from_bytes(original[14:18], "big")])
    bad_headers = {
        "kind": dict(head, kind="autre"),
        "column kind": dict(
            head, tables=[dict(head["tables"][0], columns=[["site", "exec"], ["num", "int"]])]
        ),
        "key": dict(head, tables=[dict(head["tables"][0], key=["absente"])]),
        "compression": dict(head, compression={"alg": "lzma"}),
        "extra": dict(head, extra=1),
    }
    for name, header in bad_headers.items():
        path.write_bytes(original)
        forge(path, header=header)
        error = refused(path)
        assert error.reason.startswith("en-tête illisible ("), name
        assert "unreadable header (" in text_in(error, "en"), name  # the English UI's words
        assert "illisible" not in text_in(error, "en"), name
    forge(path, header=bad_headers["key"])
    assert text_in(refused(path), "en").endswith(
        "unreadable header (table lignes: key column 'absente' missing)"
    )
    bad_lines = {
        "json": [b"[[0,"],
        "table": [b'[[1,"U",[["a",1,1,"x"]]]]'],
        "op": [b'[[0,"X",[["a",1,1,"x"]]]]'],
        "arity": [b'[[0,"U",[["a",1,1]]]]'],
        "value": [b'[[0,"U",[["a",[1],1,"x"]]]]'],
        "empty line": [b'[[0,"U",[["a",1,1,"x"]]]]', b""],
    }
    for name, lines in bad_lines.items():
        path.write_bytes(original)
        forge(path, lines=lines)
        error = refused(path)
        assert error.reason.startswith("enregistrement n°"), name
        assert ": record no. " in text_in(error, "en"), name
    path.write_bytes(original)
    forge(path, lines=[b'[[0,"U",[["a",1,1,"x"]]],[0,"D",[["a",2]]]]'])
    error = refused(path)
    assert error.reason.startswith("nombre d'enregistrements incorrect (lignes D : annoncé")
    assert ": wrong number of records (lignes D: announced 0, found 1)" in text_in(error, "en")


def test_records_too_big_to_read_back_are_refused_when_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synchro.package import stream

    monkeypatch.setattr(stream, "MAX_LINE", 400_000)
    path = tmp_path / "p.pkg"
    with PackageWriter(path, origin="1", sequence=1, kind="site", tables=[LIGNES]) as writer:
        writer.write("lignes", "U", ("a", 1, 1, "x" * 1000))
        with pytest.raises(PackageError, match="enregistrement trop grand dans lignes"):
            writer.write("lignes", "U", ("a", 2, 1, "x" * 500_000))
        writer.write("lignes", "U", ("a", 3, 1, "y" * 390_000))
        writer.write("lignes", "U", ("a", 4, 1, "z" * 10))
    assert [c.values[1] for c in open_package(path).changes()] == [1, 3, 4]
