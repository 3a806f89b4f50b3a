"""A column's Python value from whatever shape its driver returned.

Drivers return the same value in different shapes (DECIMAL as ``str`` from the SQLite ODBC
driver, booleans as 0/1, MySQL TIME as a ``timedelta``...). ``normalise`` maps them to the
kind's own Python type when that loses nothing; a value that would lose something (4.5 in
an int column, a time of day in a date column) is kept as it came, so it cannot travel
instead of being cut. ``row_normaliser`` is the same for whole rows, prepared per table.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import struct
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from synchro.values.kinds import EXACT_TYPES, Kind


def _parse_datetime(value: str) -> dt.datetime | None:
    if len(value) == 19 and value[10] == " ":  # "YYYY-MM-DD HH:MM:SS" as SQLite keeps it
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
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
    """A ``date``; a datetime or text with a time of day other than midnight is kept as
    it came (a date would lose the time: the value then cannot travel, it is not cut)."""
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() and value.tzinfo is None else value
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            moment = as_datetime(text)
            return as_date(moment) if isinstance(moment, dt.datetime) else value
        except ValueError:
            return value
    return value


def as_time(value: Any) -> Any:
    """A ``time`` of day; a MySQL TIME outside one day is kept as it came."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, dt.timedelta):  # MySQL TIME
        if not dt.timedelta(0) <= value < dt.timedelta(days=1):
            return value  # -838:59:59 .. 838:59:59 is no time of day: kept, cannot travel
        seconds = value.seconds
        return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, value.microseconds)
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            return _duration_text(value)
    return value


_DURATION = re.compile(r"(-?)(\d{2,}):([0-5]\d):([0-5]\d)(?:\.(\d{1,6}))?")


def _duration_text(text: str) -> str:
    """A time out of one day (PostgreSQL's ``24:00:00``, MariaDB's ``-838:59:59.000000``)
    in one spelling whatever the server printed: no trailing zeros in the fraction (the
    same value read from a TIME(6) is then equal to the one sent). Other text as it is."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        return text
    sign, hours, minutes, seconds, fraction = found.groups()
    fraction = (fraction or "").rstrip("0")
    return f"{sign}{hours}:{minutes}:{seconds}" + (f".{fraction}" if fraction else "")


def as_decimal(value: Any) -> Any:
    """A ``Decimal`` with every digit the value holds; odd text as it came."""
    if isinstance(value, Decimal):
        return value
    if type(value) is float:  # SQLite's NUMERIC affinity: str() is the shortest exact text
        return Decimal(str(value))
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return value
    return value


def as_bool(value: Any) -> Any:
    """A ``bool`` from 0/1 or its usual spellings; any other value as it came."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1 if value in (0, 1) else value  # 5 in a BOOLEAN: kept, not "true"
    if isinstance(value, str) and value.strip().lower() in {"1", "0", "t", "f", "true", "false"}:
        return value.strip().lower() in {"1", "t", "true"}
    return value


def as_uuid(value: Any) -> Any:
    """A UUID as lowercase ``8-4-4-4-12`` text (drivers differ in case); odd text as it is."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    if isinstance(value, str):
        if len(value) == 36 and value.islower():
            return value
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            return value
    return value


def round_to_single(value: float) -> float:
    """``value`` rounded to a 4-byte float (inf beyond its range)."""
    try:
        rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return rounded


def single_read_back(value: float) -> float:
    """What a 4-byte float column gives back for ``value`` through the ODBC drivers: the
    stored float, printed with the fewest digits that identify it (``0.1``, not
    ``0.10000000149011612``), read as a double. Equal to ``value`` when the column keeps it.
    """
    stored = round_to_single(value)
    if not math.isfinite(stored):
        return stored
    for digits in range(1, 10):
        text = f"{stored:.{digits}g}"
        if round_to_single(float(text)) == stored:
            return float(text)
    return stored


def _as_int(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))
        if number != number.to_integral_value():
            return value  # 4.5 is no integer: kept as it came, never truncated
        return int(number)
    except (InvalidOperation, ValueError, OverflowError):  # "inf": kept as it came
        return value


def _as_float(value: Any) -> Any:
    try:
        double = float(value)
    except (TypeError, ValueError):
        return value
    if isinstance(value, Decimal) and value.is_finite() and Decimal(repr(double)) != value:
        return value  # more digits than a double holds: kept, never rounded
    return double


def _as_blob(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else value


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)  # bytes in a text column (SQLite): kept, never "b'...'"
    return value if isinstance(value, str) else str(value)


# What normalise() does, per kind, to a non-NULL value of another type than the kind's own.
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    Kind.INT: _as_int,
    Kind.FLOAT: _as_float,
    Kind.DECIMAL: as_decimal,
    Kind.BOOL: as_bool,
    Kind.DATE: as_date,
    Kind.DATETIME: as_datetime,
    Kind.TIME: as_time,
    Kind.BLOB: _as_blob,
    Kind.UUID: as_uuid,
    Kind.TEXT: _as_text,
    Kind.JSON: _as_text,
}


def normalise(kind: Kind, value: Any) -> Any:
    """The Python value of a column of ``kind`` from what a driver returned."""
    if value is None or type(value) is EXACT_TYPES.get(kind):
        return value
    return _CONVERTERS.get(kind, _as_text)(value)


def row_normaliser(kinds: Sequence[Kind]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``tuple(normalise(k, v) for k, v in zip(kinds, row))``, prepared for one table.

    Rows of one table mostly come with the same Python types (one pattern per set of NULL
    columns), so the columns that need ``normalise`` are worked out once per pattern of
    types and remembered (up to 64 patterns): a row whose values already have their
    kind's exact type is returned as a tuple at once, another one only has its odd
    columns converted (SQLite returns DECIMAL as float, dates as text...).
    """
    kinds = tuple(kinds)
    width = len(kinds)
    exact = tuple(EXACT_TYPES.get(k) for k in kinds)
    fixes: dict[tuple[type, ...], tuple[int, ...]] = {}
    none = type(None)
    converters = tuple(_CONVERTERS.get(k) or functools.partial(normalise, k) for k in kinds)

    def fix_of(signature: tuple[type, ...]) -> tuple[int, ...]:
        fix = tuple(
            i
            for i, (t, e) in enumerate(zip(signature, exact, strict=True))
            if t is not none and t is not e
        )
        if len(fixes) < 64:
            fixes[signature] = fix
        return fix

    def normalise_row(row: Sequence[Any]) -> tuple[Any, ...]:
        signature = tuple(map(type, row))
        fix = fixes.get(signature)
        if fix is None:
            if len(row) != width:
                raise ValueError(f"row of {len(row)} values for {width} columns")
            fix = fix_of(signature)
        if not fix:
            return tuple(row)
        out = list(row)
        for i in fix:
            out[i] = converters[i](out[i])
        return tuple(out)

    return normalise_row
