"""Typed column values: canonical form for hashing, JSON form for packages.

Every column has a *kind* (see ``KINDS``). Drivers return the same value in different
shapes (DECIMAL as ``str`` from the SQLite ODBC driver, booleans as 0/1...). ``canonical``
maps all of them to one text so that an unchanged row always hashes the same, and keeps
everything the value holds: microseconds, the time-zone offset (an aware datetime hashes
as its UTC instant followed by ``Z``, a naive one as it is), the sign of a float zero,
NaN and infinities, every digit of a decimal (trailing zeros and the sign of a decimal
zero are not kept: no database keeps them). ``uuid`` values are lowercase text, ``json``
values are their text, compared as data (see ``json_canonical``). ``to_json``/``from_json``
carry values exactly through a package. docs/TYPES.md tells the whole story per kind.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

KINDS = (
    "int",
    "float",
    "decimal",
    "text",
    "bool",
    "date",
    "datetime",
    "time",
    "blob",
    "uuid",
    "json",
)

# normalize() rounds to the context's precision (28 digits by default): never here.
_EXACT_CONTEXT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

_NULL = b"\x00N"
_SEP = b"\x1f"


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
            return value
    return value


def as_decimal(value: Any) -> Any:
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


def _json_number(text: str) -> Decimal:
    return Decimal(text)


def _json_text(data: Any) -> str:
    """One text per JSON value: keys sorted, numbers as exact normalised decimals."""
    if isinstance(data, dict):
        items = sorted(data.items())
        return "{" + ",".join(_json_string(k) + ":" + _json_text(v) for k, v in items) + "}"
    if isinstance(data, list):
        return "[" + ",".join(_json_text(v) for v in data) + "]"
    if isinstance(data, Decimal):
        if not data.is_finite():
            return str(data)
        text = format(data.normalize(_EXACT_CONTEXT), "f")
        return "0" if text == "-0" else text
    if isinstance(data, str):
        return _json_string(data)
    return json.dumps(data)  # true, false, null


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def json_canonical(text: str) -> str:
    """The canonical text of a JSON document, compared as data as PostgreSQL's jsonb does.

    Whitespace, key order and number spelling (``1.0``, ``1E0``) do not count; of
    duplicate keys the last one counts (jsonb keeps only that one). Text that is not
    JSON is returned as it is, prefixed with ``~`` so it never equals a document.
    """
    try:
        data = json.loads(text, parse_float=_json_number, parse_int=_json_number)
    except (ValueError, RecursionError):
        return "~" + text
    return _json_text(data)


# The Python type each kind normalises to: a value of exactly that type is already normal.
_EXACT: dict[str, type] = {
    "int": int,
    "float": float,
    "decimal": Decimal,
    "text": str,
    "bool": bool,
    "date": dt.date,
    "datetime": dt.datetime,
    "time": dt.time,
    "blob": bytes,
    "json": str,
}


def normalise(kind: str, value: Any) -> Any:
    """The Python value of a column of ``kind`` from what a driver returned."""
    if value is None or type(value) is _EXACT.get(kind):
        return value
    if kind == "int":
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
    if kind == "float":
        try:
            double = float(value)
        except (TypeError, ValueError):
            return value
        if isinstance(value, Decimal) and value.is_finite() and Decimal(repr(double)) != value:
            return value  # more digits than a double holds: kept, never rounded
        return double
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
    if kind == "uuid":
        return as_uuid(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)  # bytes in a text column (SQLite): kept, never "b'...'"
    return value if isinstance(value, str) else str(value)


def canonical(kind: str, value: Any) -> bytes:
    """One byte string per logical value, whatever shape the driver gave it."""
    if value is None:
        return _NULL
    value = normalise(kind, value)
    if kind == "decimal" and isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            return str(value).encode()
        text = format(value.normalize(_EXACT_CONTEXT), "f")
        return b"0" if text in {"-0", "0"} else text.encode()
    if kind == "float" and isinstance(value, float):
        return repr(value).encode()  # -0.0, nan, inf and -inf as they are
    if kind == "bool" and isinstance(value, bool):
        return b"1" if value else b"0"
    if kind == "datetime" and isinstance(value, dt.datetime):
        return datetime_text(value).encode()
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat().encode()
    if kind == "time" and isinstance(value, dt.time):
        return value.isoformat().encode()
    if kind == "json" and isinstance(value, str):
        return json_canonical(value).encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    return str(value).encode("utf-8", "surrogatepass")


def datetime_text(value: dt.datetime) -> str:
    """The canonical text of a datetime: a naive one as it is (microseconds when there are
    some), an aware one as its UTC instant followed by ``Z`` (the offset a database
    keeps or not is not part of the instant: PostgreSQL timestamptz keeps only the instant).
    """
    offset = value.utcoffset()
    if offset is None:
        return value.isoformat(" ")
    try:
        instant = value.replace(tzinfo=None) - offset
    except OverflowError:  # year 1 east of Greenwich, year 9999 west: kept with its offset
        return value.isoformat(" ")
    return instant.isoformat(" ") + "Z"


def row_hash(kinds: Sequence[str], row: Sequence[Any]) -> bytes:
    """A 16-byte digest of the canonical encoding of a row.

    The digest is blake2b over ``canonical(kind, value) + b"\\x1f"`` for every column in
    order. Callers hashing many rows should keep ``row_hasher(kinds)`` and call it.
    """
    return row_hasher(tuple(kinds))(row)


class _NotText(Exception):
    """A canonical encoding that is not UTF-8 text (bytes in a non-blob column)."""


def _slow_text(kind: str) -> Callable[[Any], str]:
    def slow(value: Any) -> str:
        try:
            return canonical(kind, value).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _NotText from None

    return slow


def _bool_text(value: bool) -> str:
    return "1" if value else "0"


def _canon_decimal(value: Decimal) -> str:
    text = format(value.normalize(_EXACT_CONTEXT), "f")
    return "0" if text in ("-0", "0") else text


def _text_canon(kind: str) -> Callable[[Any], str]:
    """``canonical(kind, v)`` as text, with a fast path for the usual type of the kind.

    Every fast path gives exactly the text ``canonical`` encodes (the tests compare them);
    anything unusual goes through ``canonical`` itself.
    """
    slow = _slow_text(kind)
    null = _NULL.decode()
    exact = _EXACT.get(kind)
    plain_texts: dict[str, Callable[[Any], str]] = {
        "int": str,
        "text": str,
        "float": repr,
        "date": dt.date.isoformat,
        "bool": _bool_text,
    }
    fast = plain_texts.get(kind)
    if fast is not None and exact is not None:
        plain_type, plain = exact, fast

        def canon_plain(value: Any) -> str:
            if type(value) is plain_type:
                return plain(value)
            if value is None:
                return null
            return slow(value)

        return canon_plain
    if kind == "decimal":

        def canon_decimal(value: Any) -> str:
            if type(value) is Decimal and value.is_finite():
                return _canon_decimal(value)
            if value is None:
                return null
            return slow(value)

        return canon_decimal
    if kind == "datetime":

        def canon_datetime(value: Any) -> str:
            if type(value) is dt.datetime and value.tzinfo is None:
                return value.isoformat(" ")
            if value is None:
                return null
            return slow(value)

        return canon_datetime
    if kind == "time":

        def canon_time(value: Any) -> str:
            if type(value) is dt.time and value.tzinfo is None:
                return value.isoformat()
            if value is None:
                return null
            return slow(value)

        return canon_time

    def canon_other(value: Any) -> str:
        return null if value is None else slow(value)

    return canon_other


def _bytes_canon(kind: str) -> Callable[[Any], bytes]:
    """``canonical(kind, v)`` with a fast path (used when a row holds raw bytes)."""
    if kind == "blob":

        def canon_blob(value: Any) -> bytes:
            if type(value) is bytes:
                return b"b" + value
            return canonical(kind, value)

        return canon_blob
    text = _text_canon(kind)

    def canon_bytes(value: Any) -> bytes:
        try:
            return text(value).encode("utf-8", "surrogatepass")
        except _NotText:
            return canonical(kind, value)

    return canon_bytes


@functools.lru_cache(maxsize=256)
def row_hasher(kinds: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes]:
    """``row_hash`` for rows of these column kinds, prepared once (identical digests).

    The canonical texts of a row are joined and hashed in one call. Rows without bytes
    are joined as text and encoded once; a table with a blob column (or a row where a
    non-blob column holds bytes) is joined as bytes.
    """
    width = len(kinds)
    texts = tuple(_text_canon(k) for k in kinds)
    raws = tuple(_bytes_canon(k) for k in kinds)
    blake2b = hashlib.blake2b
    sep = _SEP

    def by_bytes(row: Sequence[Any]) -> bytes:
        data = sep.join([f(v) for f, v in zip(raws, row, strict=False)])
        return blake2b(data + sep, digest_size=16).digest()

    def check(row: Sequence[Any]) -> None:
        if len(row) != width:
            raise ValueError(f"row of {len(row)} values for {width} columns")

    if "blob" in kinds:

        def hash_bytes(row: Sequence[Any]) -> bytes:
            check(row)
            return by_bytes(row)

        return hash_bytes

    text_of = _text_joiner(kinds, texts)

    def hash_text(row: Sequence[Any]) -> bytes:
        if len(row) != width:
            check(row)
        try:
            text = text_of(row)
        except _NotText:
            return by_bytes(row)
        return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    return hash_text


# Per kind, the f-string field of column i: int and text values of the exact type are
# their own canonical text (``format(v, "")`` is ``str(v)`` for them); the rest calls c<i>.
_FIELDS = {
    "int": "{{v{i} if type(v{i}) is int else c{i}(v{i})}}",
    "text": "{{v{i} if type(v{i}) is str else c{i}(v{i})}}",
}


def _text_joiner(
    kinds: tuple[str, ...], texts: tuple[Callable[[Any], str], ...]
) -> Callable[[Sequence[Any]], str]:
    """``"".join(canonical text + "\\x1f" for each column)`` as one generated f-string.

    A function per table, written from the kinds only (no names or values of the
    database enter the source), so a row costs one call instead of one per column.
    """
    if not kinds:
        return lambda row: ""
    names = [f"v{i}" for i in range(len(kinds))]
    fields = "".join(
        _FIELDS.get(kind, "{{c{i}(v{i})}}").format(i=i) + "\\x1f" for i, kind in enumerate(kinds)
    )
    source = f'def text_of(row):\n    {", ".join(names)}, = row\n    return f"{fields}"\n'
    scope: dict[str, Any] = {f"c{i}": f for i, f in enumerate(texts)}
    exec(source, scope)  # the source comes from the fixed templates above only
    joiner: Callable[[Sequence[Any]], str] = scope["text_of"]
    return joiner


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


def row_normaliser(kinds: Sequence[str]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``tuple(normalise(k, v) for k, v in zip(kinds, row))``, prepared for one table.

    Rows of one table mostly come with the same Python types (one pattern per set of NULL
    columns), so the columns that need ``normalise`` are worked out once per pattern of
    types and remembered (up to 64 patterns): a row whose values already have their
    kind's exact type is returned as a tuple at once, another one only has its odd
    columns converted (SQLite returns DECIMAL as float, dates as text...).
    """
    kinds = tuple(kinds)
    width = len(kinds)
    exact = tuple(_EXACT.get(k) for k in kinds)
    fixes: dict[tuple[type, ...], tuple[int, ...]] = {}
    none = type(None)
    # What normalise() does for a non-NULL value of another type than the kind's own.
    direct: dict[str, Callable[[Any], Any]] = {
        "decimal": as_decimal,
        "bool": as_bool,
        "date": as_date,
        "datetime": as_datetime,
        "time": as_time,
    }
    converters = tuple(direct.get(k) or functools.partial(normalise, k) for k in kinds)

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


def _json_plain(kind: str) -> Callable[[Any], Any]:
    """``to_json(kind, v)`` with a fast path for the kind's exact type."""
    exact = _EXACT.get(kind)
    fast: dict[str, Callable[[Any], Any]] = {
        "decimal": str,
        "datetime": _iso_space,
        "date": dt.date.isoformat,
        "time": dt.time.isoformat,
    }
    convert = fast.get(kind)
    if kind in ("int", "float", "text", "bool"):

        def same(value: Any) -> Any:
            return value if type(value) is exact or value is None else to_json(kind, value)

        return same
    if convert is not None:
        plain = convert

        def converted(value: Any) -> Any:
            if type(value) is exact:
                return plain(value)
            return to_json(kind, value)

        return converted
    return functools.partial(to_json, kind)


def _iso_space(value: dt.datetime) -> str:
    return value.isoformat(" ")


def row_to_json(kinds: Sequence[str]) -> Callable[[Sequence[Any]], list[Any]]:
    """``[to_json(k, v) for k, v in zip(kinds, row)]``, prepared for one table."""
    encoders = tuple(_json_plain(k) for k in kinds)
    width = len(encoders)

    def encode_row(row: Sequence[Any]) -> list[Any]:
        if len(row) != width:
            raise ValueError(f"row of {len(row)} values for {width} columns")
        return [f(v) for f, v in zip(encoders, row, strict=False)]

    return encode_row


def key_of(row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
    return tuple(row[i] for i in positions)
