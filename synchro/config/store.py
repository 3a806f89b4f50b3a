"""The settings file of a node: TOML on disk, a checked ``Config`` in memory.

``load_config`` reads and checks everything once (every bad field reported together, see
``validate``), then adds the secrets from the secrets file beside it. ``save_config``
checks first, writes the secrets file, then replaces the TOML atomically, keeping the
previous version as ``<file>.bak``: a crash while saving never leaves a broken file.
Secrets (``SECRET_FIELDS``) never reach the TOML text.

In the file, times are ``"HH:MM"``, durations ``"HH:MM:SS"``, dates ISO text. The parsers the
GUI and CLI share (``parse_time``...) are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
import tomllib
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synchro.config.atomic import atomic_write
from synchro.config.model import Config
from synchro.config.parsing import (
    format_datetime_fr,
    format_duration,
    format_minutes,
    format_time,
    parse_datetime_fr,
    parse_duration,
    parse_minutes,
    parse_time,
    problem,
)
from synchro.config.secrets import SECRET_FIELDS, SecretStore, default_secrets_path
from synchro.config.toml_writer import dumps
from synchro.config.validate import FORMAT_VERSION, config_from_dict
from synchro.config.vault import vault_for
from synchro.errors import ConfigError, FieldProblem, PlatformError, Say

if TYPE_CHECKING:
    from synchro.platform.paths import NodePaths

__all__ = [
    "check_config",
    "config_from_dict",
    "config_to_dict",
    "format_datetime_fr",
    "format_duration",
    "format_minutes",
    "format_time",
    "is_odbc_connection",
    "load_config",
    "parse_datetime_fr",
    "parse_duration",
    "parse_minutes",
    "parse_time",
    "resolve_connection",
    "save_config",
]

HEADER = (
    "# Synchro settings (TOML). Times HH:MM, durations HH:MM:SS.\n"
    "# Secrets are not kept here but in the secrets file beside this one.\n\n"
)
# Arrays of tables are left out when empty: a written ``tables = []`` would forbid a
# ``[[database.tables]]`` block added by hand later (TOML cannot extend a static array).
TABLE_ARRAYS = ("database.tables", "hq.sites")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
FILE: Say = ("config.name.file", {})  # the settings file, as the name of a problem


def load_config(
    path: Path, *, secrets_path: Path | None = None, missing_ok: bool = False
) -> Config:
    """The checked settings of ``path`` with their secrets.

    A missing file is a ``ConfigError`` unless ``missing_ok`` (first start): then the
    manual's defaults are returned. Every bad field is listed in one ``ConfigError``.
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not missing_ok:
            missing = problem("fichier", ("config.expect.file_exists", {}), name=FILE)
            raise ConfigError([missing], source) from None
        config = Config()
    except OSError as exc:
        said = ("config.expect.file_readable", {"detail": str(exc.strerror)})
        raise ConfigError([problem("fichier", said, name=FILE)], source) from exc
    else:
        config = _parse(raw, source)
    store = SecretStore(secrets_path or default_secrets_path(path), vault_for(path))
    config = with_secrets(config, store.read_all())
    problems = secret_problems(config)
    if problems:
        raise ConfigError(problems, str(store.path))
    return config


def language_of(config_file: Path) -> str:
    """The UI's language of the settings in ``config_file``, else the system's (no settings
    yet, or the settings are what cannot be read): the command line's and a fatal error
    window's rule. Only the settings file is read (not the secrets, not the Windows vault:
    the command reads them once, after)."""
    from synchro.i18n import system_language

    try:
        return _parse(config_file.read_bytes(), str(config_file)).language
    except Exception:  # (no file, or unreadable settings: whoever reads them says why)
        return system_language()


def _parse(raw: bytes, source: str) -> Config:
    try:
        text = raw.decode("utf-8-sig")  # Notepad may add a BOM
    except UnicodeDecodeError as exc:
        said = ("config.expect.utf8", {"byte": exc.start})
        raise ConfigError([problem("fichier", said, name=FILE)], source) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc, text)], source) from exc
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> FieldProblem:
    message = str(exc)
    match = _TOML_LINE.search(message)
    line = int(match.group(1)) if match else text.count("\n") + 1
    detail = _TOML_LINE.sub("", message).strip()
    if match:
        said: Say = ("config.expect.toml_at", {"detail": detail, "column": match.group(2)})
    else:
        said = ("config.expect.toml", {"detail": detail})
    return FieldProblem(f"ligne {line}", said, name=("config.name.line", {"line": line}))


def save_config(config: Config, path: Path, *, secrets_path: Path | None = None) -> None:
    """Check ``config``, then write its secrets and its TOML file atomically (``.bak`` kept).

    ``ConfigError`` when a field is bad (nothing is written); ``PlatformError`` when the disk
    refuses (the previous file is left intact).
    """
    problems = check_config(config)
    if problems:
        raise ConfigError(problems, str(path))
    text = HEADER + dumps(config_to_dict(config))
    store = SecretStore(secrets_path or default_secrets_path(path), vault_for(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.update({name: _get(config, name) for name in SECRET_FIELDS})
        atomic_write(
            path, text.encode("utf-8"), mode=0o600, backup=path.with_name(path.name + ".bak")
        )
    except OSError as exc:
        said = ("config.err.save_settings", {"path": str(path), "detail": str(exc)})
        raise PlatformError(say=said) from exc


def config_to_dict(config: Config) -> dict[str, Any]:
    """The TOML content of ``config``: text forms of times and durations, no secrets, no None."""
    out: dict[str, Any] = {"version": FORMAT_VERSION}
    out.update(_plain(config, ""))
    return out


def _plain(obj: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        name = f"{path}.{f.name}" if path else f.name
        value = _value(getattr(obj, f.name), name)
        if name in SECRET_FIELDS or value is None or (name in TABLE_ARRAYS and not value):
            continue
        out[f.name] = value
    return out


def _value(value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(value, path)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.time):
        return format_time(value)
    if isinstance(value, tuple | list):
        return [_value(item, path) for item in value]
    return value


def _get(config: Config, dotted: str) -> str:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return str(obj)


def with_secrets(config: Config, secrets: dict[str, str]) -> Config:
    """``config`` with the secret fields taken from ``secrets`` (absent names stay as they are)."""
    site = config.site_settings
    email = config.email
    return dataclasses.replace(
        config,
        group_key=secrets.get("group_key", config.group_key),
        previous_group_key=secrets.get("previous_group_key", config.previous_group_key),
        site_settings=dataclasses.replace(
            site, secret=secrets.get("site_settings.secret", site.secret)
        ),
        email=dataclasses.replace(email, password=secrets.get("email.password", email.password)),
    )


def secret_problems(config: Config) -> list[FieldProblem]:
    """The secrets' own rules: group keys are 32 bytes in base64 (AES-256)."""
    problems: list[FieldProblem] = []
    for name in ("group_key", "previous_group_key"):
        text = getattr(config, name)
        if not text:
            continue
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            problems.append(problem(name, ("config.expect.group_key", {})))
    return problems


def check_config(config: Config) -> list[FieldProblem]:
    """Every problem of an in-memory ``config`` (same rules as loading it from a file)."""
    problems: list[FieldProblem] = []
    try:
        config_from_dict(config_to_dict(config))
    except ConfigError as exc:
        problems.extend(exc.problems)
    except (AttributeError, TypeError, ValueError) as exc:  # a field holds a foreign type
        said = ("config.expect.types", {"detail": str(exc)})
        problems.append(problem("configuration", said))
    problems.extend(secret_problems(config))
    return problems


def is_odbc_connection(connection: str) -> bool:
    """ODBC strings have ``key=value`` pairs (``DSN=Compta``); anything else is an SQLite file."""
    return "=" in connection


def resolve_connection(config: Config, paths: NodePaths) -> str:
    """``database.connection`` ready to open: a relative SQLite path is taken from the
    settings file's folder (not the current directory); ODBC strings are unchanged."""
    connection = config.database.connection.strip()
    if is_odbc_connection(connection) or connection == ":memory:" or connection.startswith("file:"):
        return connection
    path = Path(connection).expanduser()
    if not path.is_absolute():
        path = paths.config_file.parent / path
    return str(path)
