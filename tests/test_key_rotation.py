"""Group key rotation: the old key is accepted for a grace period, then refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from synchro.config.model import Config, Role
from synchro.engine.node import Node
from synchro.engine.nodes import build_node
from synchro.errors import PackageError
from synchro.package.crypto import decode_key, encode_key, key_id, new_group_key

OLD, NEW = encode_key(new_group_key()), encode_key(new_group_key())
T0 = dt.datetime(2026, 11, 29, 23, 0)


def make(
    tmp: Path,
    name: str,
    role: Role,
    key: str,
    previous: str = "",
    until: dt.datetime | None = None,
    now: dt.datetime = T0,
) -> Node:
    db = tmp / f"{name}.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.close()
    config = Config(
        role=role, site=name, group_key=key, previous_group_key=previous, previous_key_until=until
    )
    return build_node(
        config,
        tmp / f"{name}.state",
        tmp / f"{name}-pk",
        connection=str(db),
        key=decode_key(key),
        now=lambda: now,
    )


def add(tmp: Path, name: str, row: int) -> None:
    conn = sqlite3.connect(tmp / f"{name}.db")
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (row, f"v{row}"))
    conn.commit()
    conn.close()


def test_rotation_grace_period_then_old_key_refused(tmp_path: Path) -> None:
    until = T0 + dt.timedelta(days=14)
    add(tmp_path, "S1", 1)
    # the Siège rotated; the site still has the old key
    with (
        make(tmp_path, "HQ", Role.HQ, NEW, OLD, until) as hq,
        make(tmp_path, "S1", Role.SITE, OLD) as site,
    ):
        package = site.export().path
        assert hq.import_package(package).status == "applied"  # old key still accepted
        out, manifest = hq.publish("S1", tmp_path / "out")
        assert manifest.key_id == key_id(decode_key(OLD))
        assert site.import_package(out).status == "applied"  # answered with the old key
    # the site takes the new key (keeps the old one to read what was already sealed)
    add(tmp_path, "S1", 2)
    with (
        make(tmp_path, "HQ", Role.HQ, NEW, OLD, until) as hq,
        make(tmp_path, "S1", Role.SITE, NEW, OLD, until) as site,
    ):
        package = site.export().path
        assert hq.import_package(package).status == "applied"
        out, manifest = hq.publish("S1", tmp_path / "out")
        assert manifest.key_id == key_id(decode_key(NEW))  # the site now sends with NEW
        assert site.import_package(out).status == "applied"
    with make(tmp_path, "S1", Role.SITE, NEW) as site_new_only:
        assert site_new_only.keys() == (decode_key(NEW),)
    # after the grace period, a package sealed with the old key is refused whole
    add(tmp_path, "S2", 5)
    later = until + dt.timedelta(seconds=1)
    with make(tmp_path, "S2", Role.SITE, OLD) as late_site:
        package = late_site.export().path
    with make(tmp_path, "HQ", Role.HQ, NEW, OLD, until, now=later) as hq:
        assert hq.keys() == (decode_key(NEW),)
        with pytest.raises(PackageError):
            hq.import_package(package)
    conn = sqlite3.connect(tmp_path / "HQ.db")
    assert conn.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,)]
    conn.close()


def test_a_package_without_the_key_is_refused(tmp_path: Path) -> None:
    add(tmp_path, "S1", 1)
    plain = Config(role=Role.SITE, site="S1")
    with build_node(
        plain, tmp_path / "p.state", tmp_path / "p-pk", connection=str(tmp_path / "S1.db")
    ) as site:
        package = site.export().path
    with make(tmp_path, "HQ", Role.HQ, NEW) as hq, pytest.raises(PackageError):
        hq.import_package(package)


def test_config_keeps_both_keys_out_of_the_toml(tmp_path: Path) -> None:
    from synchro.config.store import load_config, save_config

    config = dataclasses.replace(
        Config(role=Role.HQ, site="SIEGE"),
        group_key=NEW,
        previous_group_key=OLD,
        previous_key_until=T0,
    )
    path = tmp_path / "synchro.toml"
    save_config(config, path)
    text = path.read_text(encoding="utf-8")
    assert NEW not in text and OLD not in text
    loaded = load_config(path)
    assert (loaded.group_key, loaded.previous_group_key, loaded.previous_key_until) == (
        NEW,
        OLD,
        T0,
    )
