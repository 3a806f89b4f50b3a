"""synchro.enrolment: a site's account and token at the Siège, a Serveur joining with it.

Real files (settings, secrets, certificate, schemas.json) in tmp_path; the token is checked
by reading it back, the account by checking the secret against the stored hash."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from synchro.config.model import Config, DatabaseSettings, HQSettings, Role, SiteSettings
from synchro.config.passwords import verify_password
from synchro.config.store import load_config, save_config
from synchro.enrolment import (
    EnrolRefused,
    add_site,
    enrol_site,
    join_with_token,
    remove_site,
    rotate_group_key,
    same_fingerprint,
    take_group_key,
    trust_fingerprint,
)
from synchro.errors import ConfigError, ErrorKind
from synchro.platform.paths import NodePaths, paths_beside
from synchro.transport.token import make_token, parse_token

FINGERPRINT = "ab" * 32


@pytest.fixture()
def siege(tmp_path: Path) -> tuple[Config, NodePaths]:
    paths = paths_beside(tmp_path / "siege" / "synchro.toml").ensure()
    db = tmp_path / "siege" / "siege.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE articles(id INTEGER PRIMARY KEY, nom TEXT)")
    conn.close()
    config = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(port=2121),
        database=DatabaseSettings(connection=str(db)),
    )
    save_config(config, paths.config_file)
    return config, paths


def test_enrol_site_saves_the_account_and_gives_a_token(siege: tuple[Config, NodePaths]) -> None:
    config, paths = siege
    enrolled = enrol_site(config, paths, "3615", "siege.example.com")
    token = parse_token(enrolled.token)
    assert (token.host, token.port, token.site) == ("siege.example.com", 2121, "3615")
    assert len(token.fingerprint) == 64 and token.group_key  # certificate and key made
    saved = load_config(paths.config_file)
    assert saved == enrolled.config
    assert [s.code for s in saved.hq.sites] == ["3615"]
    assert verify_password(token.secret, saved.hq.sites[0].secret_hash)
    assert saved.group_key == token.group_key
    assert saved.hq.public_address == "siege.example.com"  # remembered for the next one
    for path in paths.config_file.parent.rglob("*"):
        if path.is_file():
            assert token.secret.encode() not in path.read_bytes(), path
    assert (paths.ftp_root / "3615" / "out" / "schemas.json").is_file()  # for `check`
    # the next establishment: same key, the address remembered
    second = parse_token(enrol_site(saved, paths, "3616").token)
    assert (second.host, second.group_key) == ("siege.example.com", token.group_key)
    assert second.secret != token.secret


def test_enrol_site_refusals(siege: tuple[Config, NodePaths], tmp_path: Path) -> None:
    config, paths = siege
    with pytest.raises(EnrolRefused) as refused:
        enrol_site(config, paths, "3615")
    assert refused.value.reason == "no-host" and refused.value.kind is ErrorKind.CONFIG
    config = enrol_site(config, paths, "3615", "127.0.0.1").config
    with pytest.raises(EnrolRefused) as refused:
        enrol_site(config, paths, "3615", "127.0.0.1")
    assert refused.value.reason == "exists"
    with pytest.raises(EnrolRefused) as refused:
        enrol_site(Config(role=Role.SITE), paths, "3616", "127.0.0.1")
    assert refused.value.reason == "not-hq"
    with pytest.raises(ConfigError):  # a bad code: nothing saved
        enrol_site(config, paths, "36 15", "127.0.0.1")
    assert [s.code for s in load_config(paths.config_file).hq.sites] == ["3615"]


def test_plain_ftp_siege_gives_a_token_without_fingerprint(
    siege: tuple[Config, NodePaths],
) -> None:
    config, paths = siege
    config = dataclasses.replace(config, hq=dataclasses.replace(config.hq, allow_plain_ftp=True))
    token = parse_token(enrol_site(config, paths, "3615", "127.0.0.1").token)
    assert token.fingerprint == ""
    joined = join_with_token(Config(), enrol_site(config, paths, "3616", "127.0.0.1").token)
    assert joined.site_settings.allow_plain_ftp


def test_remove_site(siege: tuple[Config, NodePaths]) -> None:
    config, paths = siege
    config = enrol_site(config, paths, "3615", "127.0.0.1").config
    config = enrol_site(config, paths, "3616", "127.0.0.1").config
    config = remove_site(config, paths, "3615")
    assert [s.code for s in load_config(paths.config_file).hq.sites] == ["3616"]
    with pytest.raises(EnrolRefused) as refused:
        remove_site(config, paths, "3615")
    assert refused.value.reason == "unknown"


def test_add_site_writes_nothing_and_keeps_the_key_choice(tmp_path: Path) -> None:
    config = Config(role=Role.HQ, site="SIEGE", hq=HQSettings(port=990))
    config, token = add_site(config, "A", "10.0.0.1", FINGERPRINT)
    config, _token_b = add_site(config, "B", "10.0.0.1", FINGERPRINT)
    assert [s.code for s in config.hq.sites] == ["A", "B"]
    assert config.group_key == "" and parse_token(token).group_key == ""
    assert list(tmp_path.iterdir()) == []


def test_join_with_token_sets_the_serveur_settings() -> None:
    token = make_token("siege.example.com", 2121, "3615", "s3cret-0123456789", FINGERPRINT, "")
    base = Config(group_key="a2V5", site_settings=SiteSettings(attempts=3, timeout_s=7))
    joined = join_with_token(base, token)
    s = joined.site_settings
    assert joined.site == "3615"
    assert (s.hq_address, s.hq_port, s.secret) == ("siege.example.com", 2121, "s3cret-0123456789")
    assert s.certificate_fingerprint == FINGERPRINT and not s.allow_plain_ftp
    assert (s.attempts, s.timeout_s) == (3, 7)  # the rest is kept
    assert joined.group_key == "a2V5"  # a token without a key keeps the one set
    with pytest.raises(ConfigError):
        join_with_token(base, token[:-3])


def test_group_key_rotation_and_taking_the_siege_key() -> None:
    first = rotate_group_key(Config(role=Role.HQ), 14)
    assert first.group_key and not first.previous_group_key and first.previous_key_until is None
    second = rotate_group_key(first, 14)
    assert second.previous_group_key == first.group_key and second.previous_key_until
    site = Config(group_key=first.group_key)
    assert take_group_key(site, " " + first.group_key + "\n", 14) is site  # already the key
    taken = take_group_key(site, second.group_key, 3)
    assert (taken.group_key, taken.previous_group_key) == (second.group_key, first.group_key)
    with pytest.raises(ConfigError):
        take_group_key(site, "pas une clé", 3)


def test_trusting_the_siege_certificate() -> None:
    assert same_fingerprint(":".join(["AB"] * 32), FINGERPRINT)
    assert not same_fingerprint("cd" * 32, FINGERPRINT)
    with pytest.raises(ValueError):
        same_fingerprint("abc", FINGERPRINT)
    trusted = trust_fingerprint(Config(site_settings=SiteSettings(hq_address="h")), FINGERPRINT)
    assert trusted.site_settings.certificate_fingerprint == FINGERPRINT
    assert trusted.site_settings.hq_address == "h"
