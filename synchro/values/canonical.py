"""The canonical form of a value: one byte string per logical value, for hashing.

``canonical`` keeps everything the value holds: microseconds, the time-zone offset (an aware
datetime is its UTC instant followed by ``Z``, a naive one as it is), the sign of a float
zero, NaN and infinities, every digit of a decimal (trailing zeros and the sign of a
decimal zero are not kept: no database keeps them). ``uuid`` values are lowercase text,
``json`` values their text compared as data (``json_canonical``). This module is the one
definition of each rule: the prepared hashers of ``synchro.values.hashing`` call the helpers
here, and the tests compare them with ``canonical``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from synchro.values.convert import normalise
from synchro.values.kinds import EXACT_CONTEXT, Kind

NULL = b"\x00N"  # the canonical form of NULL, whatever the kind
SEP = b"\x1f"  # after each column's canonical form in a row


def decimal_text(value: Decimal) -> str:
    """The canonical text of a finite decimal: every digit, no trailing zero, no ``-0``."""
    text = format(value.normalize(EXACT_CONTEXT), "f")
    return "0" if text in ("-0", "0") else text


def bool_text(value: bool) -> str:
    return "1" if value else "0"


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


def _json_number(text: str) -> Decimal:
    return Decimal(text)


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_text(data: Any) -> str:
    """One text per JSON value: keys sorted, numbers as exact normalised decimals."""
    if isinstance(data, dict):
        items = sorted(data.items())
        return "{" + ",".join(_json_string(k) + ":" + _json_text(v) for k, v in items) + "}"
    if isinstance(data, list):
        return "[" + ",".join(_json_text(v) for v in data) + "]"
    if isinstance(data, Decimal):
        return decimal_text(data) if data.is_finite() else str(data)
    if isinstance(data, str):
        return _json_string(data)
    return json.dumps(data)  # true, false, null


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


def canonical(kind: Kind, value: Any) -> bytes:
    """One byte string per logical value, whatever shape the driver gave it."""
    if value is None:
        return NULL
    value = normalise(kind, value)
    if kind == Kind.DECIMAL and isinstance(value, Decimal):
        return (decimal_text(value) if value.is_finite() else str(value)).encode()
    if kind == Kind.FLOAT and isinstance(value, float):
        return repr(value).encode()  # -0.0, nan, inf and -inf as they are
    if kind == Kind.BOOL and isinstance(value, bool):
        return bool_text(value).encode()
    if kind == Kind.DATETIME and isinstance(value, dt.datetime):
        return datetime_text(value).encode()
    if kind == Kind.DATE and isinstance(value, dt.date):
        return value.isoformat().encode()
    if kind == Kind.TIME and isinstance(value, dt.time):
        return value.isoformat().encode()
    if kind == Kind.JSON and isinstance(value, str):
        return json_canonical(value).encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    return str(value).encode("utf-8", "surrogatepass")
