"""Encrypted packages: the group key, AES-256-GCM chunks, tampering, rotation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro.errors import ConfigError, PackageError, text_in
from synchro.package import (
    Change,
    Manifest,
    PackageWriter,
    TableSchema,
    open_package,
    read_manifest,
)
from synchro.package.crypto import (
    CHUNK,
    TAG_SIZE,
    decode_key,
    encode_key,
    key_id,
    new_group_key,
)

AUTH = "clé de groupe incorrecte ou paquet modifié"
DOCS = TableSchema("docs", (("id", "int"), ("titre", "text"), ("contenu", "blob")), ("id",))
OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))


def rows(count: int, blob_size: int) -> list[tuple[Any, ...]]:
    return [(i, f"document n°{i} « é »", os.urandom(blob_size)) for i in range(count)]


def write(path: Path, data: list[tuple[Any, ...]], key: bytes | None = OLD_KEY) -> Manifest:
    with PackageWriter(path, origin="3615", sequence=3, kind="site", tables=[DOCS], key=key) as w:
        for row in data:
            w.write("docs", "U", row)
        w.write("docs", "D", (123,), origin="0001", pos=9)
    return w.close()


def flip(path: Path, position: int, bit: int) -> None:
    """Flip one bit in place (rewriting whole files is slow on ext4: truncate + flush)."""
    with open(path, "r+b") as fh:
        fh.seek(position)
        byte = fh.read(1)[0]
        fh.seek(position)
        fh.write(bytes([byte ^ (1 << bit)]))


def refused(path: Path, key: Any) -> str:
    handed: list[Change] = []
    with pytest.raises(PackageError) as info:
        handed.extend(open_package(path, key).changes())
    assert handed == []
    assert str(path) in str(info.value)
    return info.value.reason


class Parts:
    """A package file cut into its parts, to forge variants with a valid trailer."""

    def __init__(self, data: bytes) -> None:
        header_len = int.from_bytes(data[14:18], "big")
        self.head = data[: 18 + header_len]
        end = len(data) - 12
        trailer_start = end - int.from_bytes(data[end : end + 4], "big")
        self.body = data[len(self.head) : trailer_start]
        self.trailer = json.loads(data[trailer_start:end])
        self.end = data[end + 4 :]

    @property
    def header(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.head[18:])
        return loaded

    def chunks(self) -> list[bytes]:
        step = self.header["encryption"]["chunk"] + TAG_SIZE
        return [self.body[i : i + step] for i in range(0, len(self.body), step)]

    def build(self, head: bytes | None = None, body: bytes | None = None) -> bytes:
        """The file with this head and body and a trailer that matches them (an attacker's)."""
        head = self.head if head is None else head
        body = self.body if body is None else body
        trailer = dict(self.trailer, body_size=len(body))
        trailer["sha256"] = hashlib.sha256(head + body).hexdigest()
        raw = json.dumps(trailer, sort_keys=True, separators=(",", ":")).encode()
        return head + body + raw + len(raw).to_bytes(4, "big") + self.end


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, list[tuple[Any, ...]]]:
    """An encrypted package of several chunks (random blobs do not compress)."""
    data = rows(40, 5000)
    path = tmp_path / "big.pkg"
    write(path, data)
    return path, data


def test_round_trip_over_several_chunks(big: tuple[Path, list[tuple[Any, ...]]]) -> None:
    path, data = big
    reader = open_package(path, OLD_KEY)
    assert reader.manifest.encrypted
    assert reader.manifest.key_id == key_id(OLD_KEY)
    assert len(Parts(path.read_bytes()).chunks()) >= 3
    changes = list(reader.changes())
    assert changes[:-1] == [Change("docs", "U", row) for row in data]
    assert changes[-1] == Change("docs", "D", (123,), "0001", 9)
    assert read_manifest(path, [OLD_KEY]) == reader.manifest
    assert write(path, data) == open_package(path, OLD_KEY).manifest


def test_content_is_not_readable_without_the_key(big: tuple[Path, list[tuple[Any, ...]]]) -> None:
    path, data = big
    raw = path.read_bytes()
    assert data[0][2][:32] not in raw
    assert "document n°1".encode() not in raw


def test_wrong_key_and_no_key_are_refused(big: tuple[Path, list[tuple[Any, ...]]]) -> None:
    path, _ = big
    reason = refused(path, NEW_KEY)
    assert reason.startswith(AUTH)
    assert key_id(OLD_KEY) in reason and key_id(NEW_KEY) in reason
    assert refused(path, None) == "paquet chiffré : clé de groupe requise"


def test_unencrypted_package_is_refused_when_a_key_is_set(tmp_path: Path) -> None:
    path = tmp_path / "clair.pkg"
    write(path, rows(2, 10), key=None)
    assert refused(path, OLD_KEY) == "paquet non chiffré refusé : une clé de groupe est configurée"
    assert len(list(open_package(path).changes())) == 3


def test_key_rotation(big: tuple[Path, list[tuple[Any, ...]]], tmp_path: Path) -> None:
    path, data = big
    assert len(list(open_package(path, [NEW_KEY, OLD_KEY]).changes())) == len(data) + 1
    newer = tmp_path / "new.pkg"
    write(newer, data[:2], key=NEW_KEY)
    reader = open_package(newer, (OLD_KEY, NEW_KEY))
    assert reader.manifest.key_id == key_id(NEW_KEY)
    assert len(list(reader.changes())) == 3


def test_tampered_ciphertext_is_refused(big: tuple[Path, list[tuple[Any, ...]]]) -> None:
    path, _ = big
    parts = Parts(path.read_bytes())
    body = bytearray(parts.body)
    body[len(body) // 2] ^= 0x01
    path.write_bytes(parts.build(body=bytes(body)))  # even with a recomputed checksum
    assert refused(path, OLD_KEY) == AUTH
    data = bytearray(parts.build())
    data[len(parts.head) + 10] ^= 0x80  # plain damage: checksum and tag both fail
    path.write_bytes(bytes(data))
    assert refused(path, OLD_KEY).startswith(AUTH)


def test_removed_reordered_and_foreign_chunks_are_refused(
    big: tuple[Path, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    path, data = big
    parts = Parts(path.read_bytes())
    chunks = parts.chunks()
    forged = tmp_path / "forged.pkg"
    variants = {
        "dernier bloc retiré": b"".join(chunks[:-1]),
        "bloc du milieu retiré": b"".join(chunks[:1] + chunks[2:]),
        "blocs inversés": b"".join([chunks[1], chunks[0], *chunks[2:]]),
        "bloc répété": b"".join([chunks[0], *chunks]),
        "coupé dans un bloc": parts.body[: CHUNK // 2],
    }
    other = tmp_path / "other.pkg"
    write(other, data)  # same key, same rows: another salt, so other package keys
    variants["bloc d'un autre paquet"] = b"".join(
        [Parts(other.read_bytes()).chunks()[0], *chunks[1:]]
    )
    for name, body in variants.items():
        forged.write_bytes(parts.build(body=body))
        assert refused(forged, OLD_KEY).startswith(AUTH), name


def test_changed_header_is_refused_even_with_a_valid_checksum(
    big: tuple[Path, list[tuple[Any, ...]]],
) -> None:
    path, _ = big
    parts = Parts(path.read_bytes())
    head = parts.head.replace(b'"sequence":3', b'"sequence":4')
    assert head != parts.head
    path.write_bytes(parts.build(head=head))
    assert refused(path, OLD_KEY).startswith(AUTH)


def test_every_truncation_of_an_encrypted_package_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pkg"
    write(cut, rows(2, 20))
    for length in reversed(range(cut.stat().st_size)):
        os.truncate(cut, length)
        refused(cut, OLD_KEY)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_bit_flip_of_an_encrypted_package_is_refused(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / "p.pkg"
    if not path.exists():
        write(path, rows(3, 30))
    position = data.draw(st.integers(0, path.stat().st_size - 1))
    bit = data.draw(st.integers(0, 7))
    flip(path, position, bit)
    try:
        refused(path, OLD_KEY)
    finally:
        flip(path, position, bit)
    assert open_package(path, OLD_KEY).manifest.rows == 4


def test_group_keys() -> None:
    key = new_group_key()
    assert len(key) == 32 and key != new_group_key()
    text = encode_key(key)
    assert len(text) == 44
    assert decode_key(f"  {text[:20]}\n{text[20:]} ") == key
    assert len(key_id(key)) == 8 and int(key_id(key), 16) >= 0
    for bad in ("", "pas une clé", encode_key(key)[:-4], "A" * 48):
        with pytest.raises(ConfigError, match="Clé du groupe"):
            decode_key(bad)


def test_writer_refuses_a_short_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PackageWriter(
            tmp_path / "p.pkg", origin="1", sequence=1, kind="site", tables=[DOCS], key=b"court"
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        open_package(tmp_path / "p.pkg", b"court")


def test_a_package_refused_for_its_key_is_said_in_the_ui_language(
    big: tuple[Path, list[tuple[Any, ...]]],
) -> None:
    """The refusals a person acts on (the group key) read whole in English too."""
    path, _ = big
    for key, english in (
        (NEW_KEY, "wrong group key, or the package was changed (package encrypted with key"),
        (None, "encrypted package: a group key is needed"),
    ):
        with pytest.raises(PackageError) as info:
            list(open_package(path, key).changes())
        shown = text_in(info.value, "en")
        assert shown.startswith(f"Package refused {path}: {english}"), shown
