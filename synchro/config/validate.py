"""Settings as read from the file (plain dict) → a checked ``Config``.

``config_from_dict`` checks every key once and raises one ``ConfigError`` listing every bad
field (dotted path, the label on screen, what is expected and what was found), unknown keys
included, with a "did you mean" for typos. Secrets found in the file are refused without
echoing them. What only matters when a synchronisation starts is said by the run that
meets it (an empty *Adresse du siège*, an email without recipients: ``mail.smtp``; a
« Nombre de serveurs » above the establishments declared: ``RoundSettings.awaited``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

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
from synchro.config.parsing import (
    EXPECT_DURATION,
    Bad,
    duration_value,
    iso_datetime_value,
    minutes_value,
    problem,
    time_value,
)
from synchro.config.passwords import is_password_hash
from synchro.errors import ConfigError, FieldProblem, Say
from synchro.i18n import LANGUAGES
from synchro.names import is_site_code

FORMAT_VERSION = 1
EXPECT_SITE_CODE: Say = ("config.expect.site_code", {})
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
SECRETS_BY_SECTION = {
    "": ("group_key", "previous_group_key"),
    "site_settings": ("secret",),
    "email": ("password",),
}

Convert = Callable[[Any], object]
E = TypeVar("E", bound=StrEnum)


# -- converters: value → checked value, or Bad(expected, found) -----------------------------


def integer(low: int, high: int) -> Convert:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Bad(("config.expect.integer", {"low": low, "high": high}), value)
        return value

    return convert


port = integer(1, 65535)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(("config.expect.boolean", {}), value)
    return value


def text(*, required: bool = False, no_spaces: bool = False) -> Convert:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(("config.expect.text", {}), value)
        if required and not value.strip():
            raise Bad(("config.expect.not_empty", {}), value)
        if no_spaces and any(c.isspace() for c in value):
            raise Bad(("config.expect.address", {}), value)
        return value

    return convert


def choice(enum: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        values = [member.value for member in enum]
        if value not in values:
            raise Bad(("config.expect.one_of", {"values": ", ".join(values)}), value)
        return enum(value)

    return convert


def site_code(value: Any) -> str:
    if not isinstance(value, str) or not is_site_code(value):
        raise Bad(EXPECT_SITE_CODE, value)
    return value


def language(value: Any) -> str:
    if value not in LANGUAGES:
        raise Bad(("config.expect.language", {"values": ", ".join(LANGUAGES)}), value)
    return str(value)


def version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Bad(("config.expect.version", {"version": FORMAT_VERSION}), value)
    if value > FORMAT_VERSION:
        raise Bad(("config.expect.version_newer", {"version": FORMAT_VERSION}))
    return value


def duration(minimum_s: int) -> Convert:
    def convert(value: Any) -> object:
        result = duration_value(value)
        if result.total_seconds() < minimum_s:
            said = {"expected": [EXPECT_DURATION], "minimum": minimum_s}
            raise Bad(("config.expect.duration_min", said), value)
        return result

    return convert


def last_sync(value: Any) -> object:
    return None if value == "" else iso_datetime_value(value)


def names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Bad(("config.expect.names", {}), value)
    return tuple(value)


def email_address(value: Any) -> str:
    if not isinstance(value, str) or (value and not EMAIL.fullmatch(value)):
        raise Bad(("config.expect.email", {}), value)
    return value


def email_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    if not isinstance(value, list):
        raise Bad(("config.expect.email_list", {}), value)
    for item in value:
        if not isinstance(item, str) or not EMAIL.fullmatch(item):
            raise Bad(("config.expect.emails", {}), item)
    return tuple(value)


def passive_ports(value: Any) -> tuple[int, int] | None:
    if value == [] or value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    if not ok or not all(not isinstance(v, bool) and isinstance(v, int) for v in value):
        raise Bad(("config.expect.port_range", {}), value)
    low, high = value
    if not (1 <= low <= 65535 and 1 <= high <= 65535):
        raise Bad(("config.expect.ports", {}), value)
    if low > high:
        raise Bad(("config.expect.port_order", {}), value)
    return low, high


def admin_hash(value: Any) -> str:
    if not isinstance(value, str) or (value and not is_password_hash(value)):
        raise Bad(("config.expect.admin_hash", {}))
    return value


def secret_hash(value: Any) -> str:
    if not isinstance(value, str) or not is_password_hash(value):
        raise Bad(("config.expect.secret_hash", {}))
    return value


def fingerprint(value: Any) -> str:
    if not isinstance(value, str) or (value and not HEX64.fullmatch(re.sub(r"[\s:]", "", value))):
        raise Bad(("config.expect.fingerprint", {}), value)
    return value


TOP: dict[str, Convert] = {
    "version": version,
    "role": choice(Role),
    "site": site_code,
    "language": language,
    "admin_password_hash": admin_hash,
    "last_sync": last_sync,
    "previous_key_until": last_sync,
    "start_time": time_value,
    "send_email": boolean,
    "start_with_windows": boolean,
}
DATABASE: dict[str, Convert] = {
    "connection": text(required=True),
    "include": names,
    "exclude": names,
    "modified_overlap": duration(0),
}
TABLE_RULE: dict[str, Convert] = {
    "name": text(required=True),
    "conflict": choice(ConflictPolicy),
    "key": names,
    "modified_column": text(),
    "owner_column": text(),
}
HQ: dict[str, Convert] = {
    "servers": integer(1, 9999),
    "max_reception": duration(1),
    "listen_address": text(required=True, no_spaces=True),
    "port": port,
    "passive_ports": passive_ports,
    "masquerade_address": text(no_spaces=True),
    "public_address": text(no_spaces=True),
    "allow_plain_ftp": boolean,
    "max_upload_mb": integer(1, 1_000_000),
    "ban_after_failures": integer(0, 1000),
    "ban_minutes": integer(0, 100_000),
    "idle_timeout_s": integer(1, 86_400),
}
SITE_ACCOUNT: dict[str, Convert] = {"code": site_code, "secret_hash": secret_hash, "label": text()}
SITE: dict[str, Convert] = {
    "attempts": integer(1, 1000),
    "retry_delay": minutes_value,
    "hq_address": text(no_spaces=True),
    "hq_port": port,
    "auto_sync": boolean,
    "certificate_fingerprint": fingerprint,
    "allow_plain_ftp": boolean,
    "timeout_s": integer(1, 3600),
}
EMAIL_FIELDS: dict[str, Convert] = {
    "recipients": email_list,
    "sender": email_address,
    "server": text(no_spaces=True),
    "port": port,
    "security": choice(MailSecurity),
    "login": text(),
    "timeout_s": integer(1, 3600),
}
SECTIONS = ("database", "hq", "site_settings", "email")


class Reader:
    """Walks the settings dict, converting values and collecting every problem."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def add(self, field: str, expected: str | Say, found: object = "") -> None:
        self.problems.append(problem(field, expected, found))

    def table(
        self,
        data: object,
        path: str,
        spec: Mapping[str, Convert],
        *,
        skip: tuple[str, ...] = (),
        required: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Convert the keys of one TOML table; unknown and missing keys are problems."""
        if not isinstance(data, Mapping):
            self.add(path or "configuration", ("config.expect.table", {"path": path}), data)
            return {}
        out: dict[str, Any] = {}
        secrets = SECRETS_BY_SECTION.get(path, ())
        for key, value in data.items():
            field = f"{path}.{key}" if path else str(key)
            if key in skip:
                continue
            if key in secrets:
                self.add(field, ("config.expect.no_secret", {}))
            elif key not in spec:
                self.add(field, unknown_key(str(key), [*spec, *skip]), "")
            else:
                try:
                    out[key] = spec[key](value)
                except Bad as bad:
                    self.add(field, bad.expected, bad.found)
        for key in required:
            if key not in data:
                self.add(f"{path}.{key}", ("config.expect.required", {}))
        return out

    def array(
        self, data: object, path: str, spec: Mapping[str, Convert], required: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """An array of tables ``[[path]]``: one converted dict per valid item."""
        if not isinstance(data, list):
            self.add(path, ("config.expect.tables", {"path": path}), data)
            return []
        items = []
        for index, item in enumerate(data):
            before = len(self.problems)
            values = self.table(item, f"{path}[{index}]", spec, required=required)
            if len(self.problems) == before:
                items.append(values)
        return items

    def unique(self, items: list[dict[str, Any]], path: str, key: str) -> None:
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item[key] in seen:
                self.add(f"{path}[{index}].{key}", ("config.expect.unique", {}), item[key])
            seen.add(item[key])


def unknown_key(key: str, known: list[str]) -> Say:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return ("config.expect.unknown_key_close", {"close": close[0]})
    return ("config.expect.unknown_key", {})


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """A checked ``Config`` from the settings dict; ``ConfigError`` lists every bad field."""
    reader = Reader()
    top = reader.table(data, "", TOP, skip=SECTIONS)
    top.pop("version", None)
    database = _database(reader, data.get("database", {}))
    hq = _hq(reader, data.get("hq", {}))
    site = reader.table(data.get("site_settings", {}), "site_settings", SITE)
    email = reader.table(data.get("email", {}), "email", EMAIL_FIELDS)
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(
        **top,
        database=database,
        hq=hq,
        site_settings=SiteSettings(**site),
        email=EmailSettings(**email),
    )


def _database(reader: Reader, data: object) -> DatabaseSettings:
    values = reader.table(data, "database", DATABASE, skip=("tables",))
    raw = data.get("tables", []) if isinstance(data, Mapping) else []
    rules = reader.array(raw, "database.tables", TABLE_RULE, required=("name",))
    reader.unique(rules, "database.tables", "name")
    for index, rule in enumerate(rules):
        owner = rule.get("owner_column", "")
        if rule.get("conflict") is ConflictPolicy.ORIGIN_OWNS and not owner:
            reader.add(
                f"database.tables[{index}].owner_column",
                ("config.expect.owner_column", {}),
            )
    both = set(values.get("include", ())) & set(values.get("exclude", ()))
    if both:
        reader.add("database.exclude", ("config.expect.include_exclude", {}), both)
    return DatabaseSettings(**values, tables=tuple(TableRule(**rule) for rule in rules))


def _hq(reader: Reader, data: object) -> HQSettings:
    values = reader.table(data, "hq", HQ, skip=("sites",))
    raw = data.get("sites", []) if isinstance(data, Mapping) else []
    sites = reader.array(raw, "hq.sites", SITE_ACCOUNT, required=("code", "secret_hash"))
    reader.unique(sites, "hq.sites", "code")
    return HQSettings(**values, sites=tuple(SiteAccount(**site) for site in sites))
