"""How a value of each kind is bound for a given column, and which values a column refuses.

Drivers and databases round or shift some values in silence: MariaDB drops the fractional
seconds of a bound ``datetime``/``time``, pyodbc drops the offset of an aware datetime,
SQLite's NUMERIC affinity keeps 15 significant digits and turns NaN into NULL, PostgreSQL
rounds ``numeric(p, s)`` to its scale, REAL columns round a double... ``binder(dialect,
kind, column_type)`` gives, for one column, the function that turns a value of its kind
into the parameter the driver keeps exactly (text for times with microseconds, for
instance), and raises ``Refused`` with the reason, in plain French, when the column cannot
hold the value. The adapter names the table and column (``generic.SqlAdapter``).

Pure functions of the dialect name and the column's full type (``numeric(38,10)``,
``datetime(6)``, ``timestamp with time zone``...): no connection here, unit-tested as such.
docs/TYPES.md sums the rules up.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from synchro.errors import Worded
from synchro.values import Kind
from synchro.values.convert import single_read_back

Binder = Callable[[Any], Any]
Binders = tuple[Binder | None, ...]
Flattener = Callable[[Sequence[Sequence[Any]]], list[Any]]

INT64 = (-(2**63), 2**63 - 1)
SQLITE_DIGITS = 15  # NUMERIC affinity keeps a number as a double: 15 digits exactly
# MariaDB TIMESTAMP holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC.
MYSQL_TIMESTAMP = (dt.datetime(1970, 1, 1, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 7, 999999))
_ARGS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}


class Refused(Worded, ValueError):
    """The column cannot hold this value exactly: why, as ``engine.bind.<why>``."""

    def __init__(self, why: str, **values: Any) -> None:
        super().__init__(say=(f"engine.bind.{why}", values))


def _args(column_type: str) -> tuple[int | None, int | None]:
    m = _ARGS.search(column_type)
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None


def fraction_digits(dialect: str, column_type: str) -> int:
    """Digits of fractional seconds a datetime/time column keeps (6 when unknown)."""
    t = column_type.lower()
    if dialect == "sqlite":
        return 6  # text: whatever is written
    n, _ = _args(t)
    if n is not None and not t.startswith(("numeric", "decimal")):
        return n
    return 0 if dialect == "mysql" else 6


def has_time_zone(dialect: str, column_type: str) -> bool:
    t = column_type.lower()
    return dialect == "postgresql" and ("timestamptz" in t or "with time zone" in t)


def _show(value: Any) -> str:
    text = value.isoformat(" ") if isinstance(value, dt.datetime) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- per kind -------------------------------------------------------------------------


def _float_binder(dialect: str, column_type: str) -> Binder | None:
    t = column_type.lower()
    # PostgreSQL real/float4 and MariaDB FLOAT hold 4 bytes (SQLite's REAL holds 8).
    single = (dialect == "postgresql" and t in ("real", "float4")) or (
        dialect == "mysql" and t.split("(")[0].strip() == "float"
    )
    name = _NAMES.get(dialect, dialect)
    no_nan = dialect in ("sqlite", "mysql")
    no_inf = dialect == "mysql"
    no_negative_zero = dialect in ("sqlite", "mysql")
    if not (single or no_nan or no_negative_zero):
        return None

    def bind(value: Any) -> Any:
        if not isinstance(value, float):
            return value
        if math.isnan(value) and no_nan:
            raise Refused("nan", db=name)
        if math.isinf(value) and no_inf:
            raise Refused("inf", db=name, value=value)
        if value == 0.0 and math.copysign(1.0, value) < 0 and no_negative_zero:
            raise Refused("negative_zero", db=name)
        if single and math.isfinite(value) and single_read_back(value) != value:
            raise Refused("single", type=column_type, value=repr(value))
        return value

    return bind


def _decimal_binder(dialect: str, column_type: str) -> Binder | None:
    precision, scale = _args(column_type.lower())
    name = _NAMES.get(dialect, dialect)
    sized = dialect != "sqlite" and precision is not None and scale is not None
    whole = (precision or 0) - (scale or 0)  # digits the column keeps before the point

    def bind(value: Any) -> Any:
        if type(value) is Decimal and sized:  # the usual case, in a few C calls
            text = str(value)
            point = text.find(".")
            fraction = 0 if point < 0 else len(text) - point - 1
            small = fraction <= (scale or 0) and value.adjusted() < whole
            if small and text[-1].isdigit() and "E" not in text:
                return value
        elif type(value) is Decimal and dialect == "sqlite":
            # SQLite's usual case: plain text whose last digit is after the point (not an
            # integer) and has at most 15 digits in all, which ``check`` also gives as a
            # double (``_sqlite_decimal``).
            text = str(value)
            last = text[-1]
            digits = len(text) - 1 - (text[0] == "-")  # the point and the sign left out
            plain = "." in text and "E" not in text and last != "0"
            if plain and last.isdigit() and digits <= SQLITE_DIGITS:
                return float(text)
        return check(value)

    def check(value: Any) -> Any:
        if not isinstance(value, Decimal):
            return value
        if not value.is_finite():
            if dialect != "postgresql":
                raise Refused("decimal_special", db=name, value=value)
            return value
        _sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite
        count = len(digits)
        trailing = count - len("".join(map(str, digits)).rstrip("0"))
        # Significant digits and the exponent of the last one (zero: one digit, 10**0).
        significant, low = (1, 0) if trailing == count else (count - trailing, exponent + trailing)
        after = max(0, -low)  # digits after the point, trailing zeros left out
        before = max(0, count + exponent)  # digits before the point
        if dialect == "sqlite":  # the declared size means nothing to SQLite
            return _sqlite_decimal(value, significant, low)
        if scale is not None and after > scale:
            raise Refused("scale", value=_show(value), after=after, type=column_type, scale=scale)
        if precision is not None and scale is not None and before > precision - scale:
            raise Refused("capacity", value=_show(value), type=column_type)
        return value

    return bind


def _sqlite_decimal(value: Decimal, significant: int, low: int) -> Any:
    """A decimal as SQLite's NUMERIC affinity keeps it exactly: an integer, or a double
    that gives the decimal back. Every decimal of at most 15 significant digits is one (the
    double nearest to it); one of 16 or 17 digits is one when it is the shortest text of a
    double, as SQLite's own arithmetic makes them (0.1 + 0.2 = 0.30000000000000004, a price
    × 1.1) and an SQLite sender reads them. Bound as a double, not as text: SQLite's own
    text-to-number conversion (3.40) lands one double away from the nearest for about 1
    decimal in 50,000 (98.080959 was stored as 98.08095900000001); Python's is exact."""
    if low >= 0 and INT64[0] <= value <= INT64[1]:
        return int(value)
    if significant <= SQLITE_DIGITS or _is_a_double(value):
        return float(value)
    raise Refused("sqlite_digits", value=_show(value), digits=significant, kept=SQLITE_DIGITS)


def _is_a_double(value: Decimal) -> bool:
    """``value`` is exactly the shortest text of a double (the one it is read back as)."""
    double = float(value)
    return math.isfinite(double) and Decimal(repr(double)) == value


def _int_binder(dialect: str, *, unsigned: bool) -> Binder:
    low, high = INT64
    wide = dialect == "mysql" and unsigned  # BIGINT UNSIGNED: up to 2**64 - 1

    def bind(value: Any) -> Any:
        if type(value) is int and low <= value <= high:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            return int(value) if isinstance(value, bool) and dialect == "sqlite" else value
        if INT64[0] <= value <= INT64[1]:
            return value
        if wide and 0 <= value < 2**64:
            return str(value)  # the server converts the text
        raise Refused("int64", value=value)

    return bind


def _moment_check(dialect: str, column_type: str) -> Callable[[Any], None]:
    """Refuse a datetime/time the column would shift (offset) or round (fractions)."""
    digits = fraction_digits(dialect, column_type)
    step = 10 ** (6 - digits) if 0 <= digits < 6 else 1
    zone = has_time_zone(dialect, column_type)
    t = column_type.lower()
    timestamp = dialect == "mysql" and t.startswith("timestamp")

    def check(value: Any) -> None:
        aware = value.utcoffset() is not None
        if aware and not zone and dialect != "sqlite":
            zone_of = str(value.tzinfo)
            raise Refused("zone_lost", value=_show(value), zone=zone_of, type=column_type)
        if zone and not aware:
            raise Refused("zone_missing", value=_show(value), type=column_type)
        if value.microsecond % step:
            raise Refused("fraction", value=_show(value), type=column_type, digits=digits)
        if timestamp and isinstance(value, dt.datetime) and not aware:
            low, high = MYSQL_TIMESTAMP
            if not low <= value <= high:
                raise Refused("timestamp_range", value=_show(value))

    return check


def _datetime_binder(dialect: str, column_type: str) -> Binder:
    check = _moment_check(dialect, column_type)
    native = dialect == "postgresql"
    # Columns that take any naive datetime: no fractions lost, no range, no time zone.
    plain = (
        fraction_digits(dialect, column_type) >= 6
        and not has_time_zone(dialect, column_type)
        and not (dialect == "mysql" and column_type.lower().startswith("timestamp"))
    )

    def bind(value: Any) -> Any:
        if plain and type(value) is dt.datetime and value.tzinfo is None:
            return value if native else value.isoformat(" ")
        if not isinstance(value, dt.datetime):
            return value
        check(value)
        if native and value.tzinfo is None:
            return value  # psqlODBC keeps microseconds of a naive datetime
        return value.isoformat(" ")  # MariaDB drops fractions, pyodbc drops offsets

    return bind


def _sqlite_date(value: Any) -> Any:
    """A date as the ISO text stdlib ``sqlite3`` writes, by both SQLite back ends; a datetime
    kept in a DATE column (SQLite's dynamic typing) too: through the SQLite ODBC driver
    it was stored as '2024-02-29 10:00:00.000' where the sender held '2024-02-29 10:00:00'."""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    return value.isoformat() if isinstance(value, dt.date) else value


def _time_binder(dialect: str, column_type: str) -> Binder:
    check = _moment_check(dialect, column_type)

    def bind(value: Any) -> Any:
        if not isinstance(value, dt.time):
            return value
        check(value)
        return value.isoformat()  # both ODBC drivers drop the fractions of a bound time

    return bind


def _text_binder(dialect: str, column_type: str, nul: bool) -> Binder | None:
    """NUL where it cannot be stored; more characters than a ``varchar(n)``/``char(n)``
    holds (PostgreSQL's own error does not name the column)."""
    t = column_type.lower()
    n, _ = _args(t)
    limit = n if n is not None and "char" in t and dialect in ("postgresql", "mysql") else None
    no_nul = not nul or dialect == "postgresql"
    fixed = dialect in ("postgresql", "mysql") and _fixed_width(t)
    if limit is None and not no_nul and not fixed:
        return None
    named = _NAMES.get(dialect, dialect)
    name = [
        ("engine.bind.db" if dialect == "postgresql" else "engine.bind.db_driver", {"db": named})
    ]

    def bind(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if (
            (limit is None or len(value) <= limit)
            and "\x00" not in value
            and not (fixed and value.endswith(" "))
        ):
            return value
        if no_nul and "\x00" in value:
            raise Refused("nul", db=name)
        if limit is not None and len(value) > limit:
            raise Refused("length", count=len(value), type=column_type, limit=limit)
        if fixed and value.endswith(" "):
            raise Refused("fixed", type=column_type)
        return value

    return bind


def _fixed_width(column_type: str) -> bool:
    """CHAR(n) / character(n) / bpchar: trailing spaces are not kept as sent."""
    base = column_type.split("(")[0].strip()
    return base in ("char", "character", "bpchar", "nchar", "national char")


def blob_bytes(value: Any) -> Any:
    """A bytes-like value as ``bytes`` (drivers bind ``bytes`` alike); others as they are."""
    return bytes(value) if isinstance(value, bytearray | memoryview) else value


def binder(dialect: str, kind: Kind, column_type: str, *, nul: bool = True) -> Binder | None:
    """The binder of one column (None: the value as it is). ``nul``: the driver keeps the
    character U+0000 in text (the SQLite ODBC driver cuts the text there)."""
    if kind == Kind.FLOAT:
        return _float_binder(dialect, column_type)
    if kind == Kind.DECIMAL:
        return _decimal_binder(dialect, column_type)
    if kind == Kind.INT:
        # Beyond 64 bits pyodbc and sqlite3 raise OverflowError, which names no column:
        # refused here instead; only MariaDB's BIGINT UNSIGNED takes more (as text).
        return _int_binder(dialect, unsigned="unsigned" in column_type.lower())
    if kind == Kind.DATETIME:
        return _datetime_binder(dialect, column_type)
    if kind == Kind.DATE and dialect == "sqlite":
        return _sqlite_date
    if kind == Kind.TIME:
        return _time_binder(dialect, column_type)
    if kind in (Kind.TEXT, Kind.JSON):
        return _text_binder(dialect, column_type, nul)
    if kind == Kind.BLOB:
        return blob_bytes
    return None


def row_flattener(binders: Binders) -> Flattener:
    """``rows → [each value converted by its column's binder (None stays None), ...]``, the
    parameters of a statement on these rows, flattened (the hot path of every write: made
    once per table as one comprehension, a row of the wrong width refused as ``zip`` would).
    """
    names = [f"v{i}" for i in range(len(binders))]
    values = [
        name if binder is None else f"(None if {name} is None else b{i}({name}))"
        for i, (name, binder) in enumerate(zip(names, binders, strict=True))
    ]
    row = ", ".join(names) + ("," if len(names) == 1 else "")
    source = (
        f"def flatten(rows):\n    return [x for {row} in rows for x in ({', '.join(values)},)]\n"
    )
    scope: dict[str, Any] = {f"b{i}": b for i, b in enumerate(binders)}
    exec(source, scope)  # the source comes from the fixed template above only
    flatten: Flattener = scope["flatten"]
    return flatten
