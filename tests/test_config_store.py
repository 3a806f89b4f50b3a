"""The settings file: defaults of the manual, round trip, every bad field, atomic save."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro.config import atomic
from synchro.config.model import (
    Config,
    ConflictPolicy,
    DatabaseSettings,
    EmailSettings,
    HQSettings,
    MailSecurity,
    Role,
    SiteAccount,
    SiteSettings,
    TableRule,
)
from synchro.config.passwords import hash_password, verify_password
from synchro.config.secrets import SecretStore
from synchro.config.store import (
    check_config,
    config_from_dict,
    config_to_dict,
    load_config,
    resolve_connection,
    save_config,
)
from synchro.errors import ConfigError, PlatformError
from synchro.platform.paths import resolve_paths

GROUP_KEY = base64.b64encode(bytes(range(32))).decode()


@functools.cache
def a_hash(n: int) -> str:
    return hash_password(f"secret-{n}")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    """Load ``text`` as a settings file; field → message of every problem."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "synchro.toml", text))
    assert info.value.source == str(tmp_path / "synchro.toml")
    return {p.field: str(p) for p in info.value.problems}


# -- defaults ------------------------------------------------------------------------------


def test_defaults_are_the_manuals() -> None:
    config = Config()
    assert config.hq.servers == 1  # Nombre de serveurs
    assert config.hq.max_reception == dt.timedelta(hours=4)  # Temps maximum de réception
    assert config.site_settings.attempts == 10  # Nombre de tentatives
    assert config.site_settings.retry_delay == dt.timedelta(minutes=10)  # Temps entre tentatives
    assert config.admin_password_hash == ""
    assert verify_password("ADMIN", config.admin_password_hash)


def test_a_minimal_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "synchro.toml", 'site = "3615"\n'))
    assert config == Config(site="3615")


def test_defaults_are_written_in_the_manuals_forms(tmp_path: Path) -> None:
    save_config(Config(site="3615"), tmp_path / "synchro.toml")
    text = (tmp_path / "synchro.toml").read_text(encoding="utf-8")
    assert 'max_reception = "04:00:00"' in text
    assert 'retry_delay = "00:10:00"' in text
    assert 'start_time = "23:00"' in text
    assert "attempts = 10" in text
    assert "servers = 1" in text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"synchro\.toml"):
        load_config(tmp_path / "synchro.toml")
    assert load_config(tmp_path / "synchro.toml", missing_ok=True) == Config()


def test_retry_delay_in_minutes_as_on_the_screen(tmp_path: Path) -> None:
    text = 'site = "A"\n[site_settings]\nretry_delay = 5\n'
    config = load_config(write(tmp_path / "synchro.toml", text))
    assert config.site_settings.retry_delay == dt.timedelta(minutes=5)


def test_file_with_a_bom_loads(tmp_path: Path) -> None:
    (tmp_path / "synchro.toml").write_bytes(b'\xef\xbb\xbfsite = "3615"\n')
    assert load_config(tmp_path / "synchro.toml").site == "3615"


# -- round trip ----------------------------------------------------------------------------

codes = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
hosts = st.from_regex(r"[a-z0-9.-]{0,30}", fullmatch=True)
emails = st.from_regex(r"[a-z0-9._+-]{1,12}@[a-z0-9.-]{1,12}", fullmatch=True)
whole_seconds = st.integers(min_value=0, max_value=500 * 3600).map(
    lambda s: dt.timedelta(seconds=s)
)
ports = st.integers(min_value=1, max_value=65535)


@st.composite
def table_rules(draw: st.DrawFn) -> tuple[TableRule, ...]:
    table_names = draw(st.lists(names, max_size=3, unique=True))
    rules = []
    for name in table_names:
        conflict = draw(st.sampled_from(ConflictPolicy))
        owner = draw(names) if conflict is ConflictPolicy.ORIGIN_OWNS else draw(st.text())
        rules.append(
            TableRule(
                name=name,
                conflict=conflict,
                key=tuple(draw(st.lists(names, max_size=3))),
                modified_column=draw(st.text(max_size=10)),
                owner_column=owner,
            )
        )
    return tuple(rules)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    include = draw(st.lists(names, max_size=3, unique=True))
    exclude = draw(st.lists(names.filter(lambda n: n not in include), max_size=3))
    low = draw(st.integers(min_value=1024, max_value=65535))
    high = draw(st.integers(min_value=low, max_value=65535))
    site_codes = draw(st.lists(codes, max_size=3, unique=True))
    return Config(
        role=draw(st.sampled_from(Role)),
        site=draw(codes),
        language=draw(st.sampled_from(["fr", "en"])),
        admin_password_hash=draw(st.sampled_from(["", a_hash(0)])),
        last_sync=draw(st.none() | st.datetimes(min_value=dt.datetime(1900, 1, 1))),
        start_time=draw(st.times().map(lambda t: t.replace(microsecond=0))),
        send_email=draw(st.booleans()),
        start_with_windows=draw(st.booleans()),
        database=DatabaseSettings(
            connection=draw(names),
            include=tuple(include),
            exclude=tuple(exclude),
            tables=draw(table_rules()),
            modified_overlap=draw(whole_seconds),
        ),
        hq=HQSettings(
            servers=draw(st.integers(min_value=1, max_value=9999)),
            max_reception=draw(whole_seconds.filter(lambda d: d.total_seconds() >= 1)),
            listen_address=draw(hosts.filter(bool)),
            port=draw(ports),
            passive_ports=draw(st.sampled_from([None, (low, high)])),
            masquerade_address=draw(hosts),
            public_address=draw(hosts),
            allow_plain_ftp=draw(st.booleans()),
            max_upload_mb=draw(st.integers(min_value=1, max_value=1_000_000)),
            ban_after_failures=draw(st.integers(min_value=0, max_value=1000)),
            ban_minutes=draw(st.integers(min_value=0, max_value=100_000)),
            idle_timeout_s=draw(st.integers(min_value=1, max_value=86_400)),
            sites=tuple(
                SiteAccount(code=c, secret_hash=a_hash(i % 2), label=draw(st.text(max_size=20)))
                for i, c in enumerate(site_codes)
            ),
        ),
        site_settings=SiteSettings(
            attempts=draw(st.integers(min_value=1, max_value=1000)),
            retry_delay=draw(whole_seconds),
            hq_address=draw(hosts),
            hq_port=draw(ports),
            auto_sync=draw(st.booleans()),
            secret=draw(st.text(max_size=30)),
            certificate_fingerprint=draw(st.sampled_from(["", "ab" * 32, ":".join(["CD"] * 32)])),
            allow_plain_ftp=draw(st.booleans()),
            timeout_s=draw(st.integers(min_value=1, max_value=3600)),
        ),
        email=EmailSettings(
            recipients=tuple(draw(st.lists(emails, max_size=3))),
            sender=draw(st.just("") | emails),
            server=draw(hosts),
            port=draw(ports),
            security=draw(st.sampled_from(MailSecurity)),
            login=draw(st.text(max_size=20)),
            password=draw(st.text(max_size=20)),
            timeout_s=draw(st.integers(min_value=1, max_value=3600)),
        ),
        group_key=draw(st.sampled_from(["", GROUP_KEY])),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_save_then_load_gives_the_same_config(config: Config) -> None:
    assert check_config(config) == []
    assert config_from_dict(config_to_dict(config)) == dataclasses.replace(
        config,
        group_key="",
        site_settings=dataclasses.replace(config.site_settings, secret=""),
        email=dataclasses.replace(config.email, password=""),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synchro.toml"
        save_config(config, path)
        assert load_config(path) == config


# -- every bad field -----------------------------------------------------------------------

BAD_FIELDS = [
    ('site = "A"\nstart_time = "25:00"', "start_time", "Heure de départ"),
    (
        'site = "A"\n[site_settings]\nattempts = -1',
        "site_settings.attempts",
        "Nombre de tentatives",
    ),
    ('site = "A"\n[site_settings]\nattempts = "10"', "site_settings.attempts", "Nombre de"),
    ('site = "A"\nrole = "boss"', "role", "siege, serveur"),
    ('site = "36/15"', "site", "Etablissement"),
    ('site = "36 15"', "site", "lettres, chiffres"),
    ('site = ""', "site", "Etablissement"),
    (f'site = "{"x" * 33}"', "site", "32"),
    ('site = "A"\n[hq]\nport = 0', "hq.port", "1 à 65535"),
    ('site = "A"\n[hq]\nport = 65536', "hq.port", "1 à 65535"),
    ('site = "A"\n[site_settings]\nhq_port = 70000', "site_settings.hq_port", "65535"),
    ('site = "A"\n[email]\nport = -25', "email.port", "65535"),
    ('site = "A"\n[hq]\npassive_ports = [60100, 60000]', "hq.passive_ports", "croissante"),
    ('site = "A"\n[hq]\npassive_ports = [0, 70000]', "hq.passive_ports", "1 à 65535"),
    ('site = "A"\n[hq]\npassive_ports = [60000]', "hq.passive_ports", "deux ports"),
    ('site = "A"\n[hq]\nservers = 0', "hq.servers", "Nombre de serveurs"),
    ('site = "A"\n[hq]\nmax_reception = "00:00:00"', "hq.max_reception", "HH:MM:SS"),
    ('site = "A"\n[hq]\nmax_reception = "4h"', "hq.max_reception", "Temps maximum"),
    ('site = "A"\n[site_settings]\nretry_delay = -3', "site_settings.retry_delay", "minutes"),
    (
        'site = "A"\n[[database.tables]]\nname = "t"\nconflict = "random"',
        "database.tables[0].conflict",
        "hq-wins, latest-wins, origin-owns",
    ),
    (
        'site = "A"\n[[database.tables]]\nname = "t"\nconflict = "origin-owns"',
        "database.tables[0].owner_column",
        "origin-owns",
    ),
    ('site = "A"\n[[database.tables]]\nconflict = "hq-wins"', "database.tables[0].name", "oblig"),
    (
        'site = "A"\n[[database.tables]]\nname = "t"\n[[database.tables]]\nname = "t"',
        "database.tables[1].name",
        "unique",
    ),
    ('site = "A"\n[database]\ninclude = ["a"]\nexclude = ["a"]', "database.exclude", "exclue"),
    ('site = "A"\n[database]\nconnection = ""', "database.connection", "obligatoire"),
    ('site = "A"\n[email]\nrecipients = ["nobody"]', "email.recipients", "Adresse email du"),
    ('site = "A"\n[email]\nsender = "info.example.com"', "email.sender", "Votre adresse"),
    ('site = "A"\n[email]\nsecurity = "tls"', "email.security", "ssl, starttls, none"),
    ('site = "A"\n[site_settings]\nhq_address = "192.168.0.24 x"', "site_settings.hq_address", ""),
    ('site = "A"\nsend_email = "oui"', "send_email", "true ou false"),
    ('site = "A"\nlanguage = "de"', "language", "fr, en"),
    ('site = "A"\nlast_sync = "hier"', "last_sync", "Dernière synchronisation"),
    ('site = "A"\nadmin_password_hash = "ADMIN"', "admin_password_hash", "scrypt"),
    ('site = "A"\nversion = 2', "version", "plus récent"),
    ('site = "A"\n[[hq.sites]]\ncode = "B"', "hq.sites[0].secret_hash", "oblig"),
    ('site = "A"\n[[hq.sites]]\ncode = "B/1"\nsecret_hash = "x"', "hq.sites[0].code", "lettres"),
    (
        'site = "A"\n[site_settings]\ncertificate_fingerprint = "abc"',
        "site_settings.certificate_fingerprint",
        "64",
    ),
    ('site = "A"\nsitee = "B"', "sitee", "« site »"),
    ('site = "A"\n[site_settings]\natempts = 3', "site_settings.atempts", "« attempts »"),
    ('site = "A"\n[sites_settings]\nattempts = 3', "sites_settings", "« site_settings »"),
    ('site = "A"\nhq = 3', "hq", "table"),
]


@pytest.mark.parametrize(("text", "field", "message"), BAD_FIELDS)
def test_each_bad_field_is_named(tmp_path: Path, text: str, field: str, message: str) -> None:
    problems = problems_of(tmp_path, text + "\n")
    assert field in problems, problems
    assert message in problems[field]


def test_duplicate_site_codes(tmp_path: Path) -> None:
    text = f'site = "A"\n[[hq.sites]]\ncode = "B"\nsecret_hash = "{a_hash(0)}"\n' * 1
    text += f'[[hq.sites]]\ncode = "B"\nsecret_hash = "{a_hash(1)}"\n'
    assert "unique" in problems_of(tmp_path, text)["hq.sites[1].code"]


def test_every_bad_field_is_reported_at_once(tmp_path: Path) -> None:
    text = """
site = "a b"
role = "boss"
start_time = "25:00"
colour = "blue"
[hq]
port = 70000
passive_ports = [2000, 1000]
[site_settings]
attempts = -1
[email]
sender = "no-at-sign"
"""
    problems = problems_of(tmp_path, text)
    assert set(problems) == {
        "site",
        "role",
        "start_time",
        "colour",
        "hq.port",
        "hq.passive_ports",
        "site_settings.attempts",
        "email.sender",
    }


def test_secrets_in_the_file_are_refused_without_echo(tmp_path: Path) -> None:
    text = 'site = "A"\ngroup_key = "TOPSECRET1"\n[email]\npassword = "TOPSECRET2"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "synchro.toml", text))
    assert {p.field for p in info.value.problems} == {"group_key", "email.password"}
    assert "TOPSECRET" not in str(info.value)


def test_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    text = 'site = "A"\n\n[hq]\nport = = 21\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "synchro.toml", text))
    (problem,) = info.value.problems
    assert problem.field == "ligne 4"
    assert "ligne 4" in str(info.value)
    assert "synchro.toml" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "synchro.toml").write_bytes(b'site = "\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(tmp_path / "synchro.toml")


# -- secrets -------------------------------------------------------------------------------


def full_config() -> Config:
    return Config(
        site="3615",
        site_settings=SiteSettings(hq_address="192.168.0.24", secret="FTP-SECRET-ø"),
        email=EmailSettings(
            recipients=("a@b.fr",), sender="c@d.fr", server="smtp", login="u", password="MAILPW"
        ),
        group_key=GROUP_KEY,
    )


def test_secrets_never_reach_the_toml(tmp_path: Path) -> None:
    path = tmp_path / "synchro.toml"
    save_config(full_config(), path)
    text = path.read_text(encoding="utf-8")
    for secret in ("FTP-SECRET", "MAILPW", GROUP_KEY):
        assert secret not in text
    assert (tmp_path / "secrets.json").exists()
    assert load_config(path) == full_config()
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_an_emptied_secret_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "synchro.toml"
    save_config(full_config(), path)
    save_config(dataclasses.replace(full_config(), group_key=""), path)
    assert "group_key" not in SecretStore(tmp_path / "secrets.json").names()
    assert load_config(path).group_key == ""


def test_bad_group_key_in_the_secrets_file(tmp_path: Path) -> None:
    path = write(tmp_path / "synchro.toml", 'site = "A"\n')
    SecretStore(tmp_path / "secrets.json").set("group_key", "c2hvcnQ=")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.field for p in info.value.problems] == ["group_key"]
    assert "c2hvcnQ" not in str(info.value)


def test_secrets_follow_the_settings_file_name(tmp_path: Path) -> None:
    save_config(full_config(), tmp_path / "hq.toml")
    assert (tmp_path / "hq.secrets.json").exists()
    assert load_config(tmp_path / "hq.toml") == full_config()


# -- atomic save ---------------------------------------------------------------------------


def test_save_keeps_a_backup_of_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "synchro.toml"
    save_config(Config(site="OLD"), path)
    first = path.read_bytes()
    save_config(Config(site="NEW"), path)
    assert (tmp_path / "synchro.toml.bak").read_bytes() == first
    assert load_config(path).site == "NEW"


def test_a_write_failing_midway_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "synchro.toml"
    save_config(Config(site="OLD"), path)
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def half_then_fail(fd: int, data: bytes | memoryview) -> int:
        if calls:
            raise OSError(28, "No space left on device")
        calls.append(fd)
        return real_write(fd, bytes(data)[: len(data) // 2])

    monkeypatch.setattr(atomic.os, "write", half_then_fail)
    with pytest.raises(PlatformError, match="intact"):
        save_config(Config(site="NEW"), path)
    monkeypatch.undo()
    assert calls, "the write really started"
    assert path.read_bytes() == before
    assert not (tmp_path / "synchro.toml.tmp").exists()
    assert load_config(path).site == "OLD"


def test_a_failing_fsync_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "synchro.toml"
    save_config(Config(site="OLD"), path)
    before = path.read_bytes()

    def no_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", no_fsync)
    with pytest.raises(PlatformError):
        save_config(Config(site="OLD2"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before


def test_saving_an_invalid_config_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "synchro.toml"
    bad = Config(site="a/b", site_settings=SiteSettings(attempts=-1, secret="s"))
    with pytest.raises(ConfigError) as info:
        save_config(bad, path)
    assert {p.field for p in info.value.problems} == {"site", "site_settings.attempts"}
    assert list(tmp_path.iterdir()) == []


# -- the database connection -----------------------------------------------------------------


def test_relative_sqlite_path_is_beside_the_settings(tmp_path: Path) -> None:
    paths = resolve_paths(str(tmp_path / "node" / "synchro.toml"))
    relative = Config(database=DatabaseSettings(connection="base/compta.db"))
    assert resolve_connection(relative, paths) == str(tmp_path / "node" / "base" / "compta.db")
    absolute = Config(database=DatabaseSettings(connection=str(tmp_path / "x.db")))
    assert resolve_connection(absolute, paths) == str(tmp_path / "x.db")
    odbc = "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;DATABASE=test"
    assert resolve_connection(Config(database=DatabaseSettings(connection=odbc)), paths) == odbc
    dsn = Config(database=DatabaseSettings(connection="DSN=Compta"))
    assert resolve_connection(dsn, paths) == "DSN=Compta"


def test_table_rules_can_be_added_by_hand_to_a_saved_file(tmp_path: Path) -> None:
    path = tmp_path / "synchro.toml"
    save_config(Config(site="3615"), path)
    with path.open("a", encoding="utf-8") as file:
        file.write('\n[[database.tables]]\nname = "ventes"\nconflict = "latest-wins"\n')
        file.write('\n[[hq.sites]]\ncode = "3616"\nsecret_hash = "' + a_hash(0) + '"\n')
    config = load_config(path)
    assert [(r.name, r.conflict) for r in config.database.tables] == [
        ("ventes", ConflictPolicy.LATEST_WINS)
    ]
    assert [s.code for s in config.hq.sites] == ["3616"]


def test_messages_quote_what_was_found(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, 'site = "A"\n[site_settings]\nattempts = -1\n')
    assert problems["site_settings.attempts"] == (
        "Nombre de tentatives (site_settings.attempts) : un nombre entier de 1 à 1000 "
        "(trouvé : « -1 »)"
    )
