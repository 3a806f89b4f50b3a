"""Typed column values: canonical form for hashing, JSON form for packages.

Every column has a *kind* (see ``KINDS``). Drivers return the same value in different
shapes (DECIMAL as ``str`` from the SQLite ODBC driver, fractional seconds dropped by
MariaDB, booleans as 0/1...). ``canonical`` maps all of them to one text so that an
unchanged row always hashes the same; ``to_json``/``from_json`` carry values exactly
through a package.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

KINDS = ("int", "float", "decimal", "text", "bool", "date", "datetime", "time", "blob")

_NULL = b"\x00N"
_SEP = b"\x1f"


def _parse_datetime(value: str) -> dt.datetime | None:
    text = value.strip().replace("T", " ")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def as_datetime(value: Any) -> Any:
    """A ``datetime`` from what a driver returned; the value itself when it is not one."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        parsed = _parse_datetime(value)
        return parsed if parsed is not None else value
    return value


def as_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return value
    return value


def as_time(value: Any) -> Any:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, dt.timedelta):  # MySQL TIME
        seconds = int(value.total_seconds()) % 86400
        return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            return value
    return value


def as_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return value
    return value


def as_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in {"1", "0", "t", "f", "true", "false"}:
        return value.strip().lower() in {"1", "t", "true"}
    return value


def normalise(kind: str, value: Any) -> Any:
    """The Python value of a column of ``kind`` from what a driver returned."""
    if value is None:
        return None
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            return value
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if kind == "decimal":
        return as_decimal(value)
    if kind == "bool":
        return as_bool(value)
    if kind == "date":
        return as_date(value)
    if kind == "datetime":
        return as_datetime(value)
    if kind == "time":
        return as_time(value)
    if kind == "blob":
        return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else value
    return value if isinstance(value, str) else str(value)


def canonical(kind: str, value: Any) -> bytes:
    """One byte string per logical value, whatever shape the driver gave it."""
    if value is None:
        return _NULL
    value = normalise(kind, value)
    if kind == "decimal" and isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            return str(value).encode()
        text = format(value.normalize(), "f")
        return b"0" if text in {"-0", "0"} else text.encode()
    if kind == "float" and isinstance(value, float):
        return repr(value).encode()
    if kind == "bool" and isinstance(value, bool):
        return b"1" if value else b"0"
    if kind == "datetime" and isinstance(value, dt.datetime):
        # Seconds are the precision every driver keeps (MariaDB drops fractions).
        return value.replace(microsecond=0, tzinfo=None).isoformat(" ").encode()
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat().encode()
    if kind == "time" and isinstance(value, dt.time):
        return value.replace(microsecond=0, tzinfo=None).isoformat().encode()
    if isinstance(value, bytes):
        return b"b" + value
    return str(value).encode("utf-8", "surrogatepass")


def row_hash(kinds: Sequence[str], row: Sequence[Any]) -> bytes:
    """A 16-byte digest of the canonical encoding of a row."""
    digest = hashlib.blake2b(digest_size=16)
    for kind, value in zip(kinds, row, strict=True):
        digest.update(canonical(kind, value))
        digest.update(_SEP)
    return digest.digest()


def to_json(kind: str, value: Any) -> Any:
    """A JSON-safe value that ``from_json`` turns back into the same value, exactly."""
    if value is None:
        return None
    value = normalise(kind, value)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def from_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind == "float" and isinstance(value, int | float):
        return float(value)
    if kind == "int" and isinstance(value, int):
        return value
    return normalise(kind, value)


def key_of(row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
    return tuple(row[i] for i in positions)
