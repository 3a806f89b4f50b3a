"""Row digests: blake2b over the canonical form of each column, prepared per table.

``row_hash`` is the definition; ``row_hasher(kinds)`` gives the same digest with fast
paths: per kind, a value of the kind's usual type is turned into its canonical text by the
helper ``synchro.values.canonical`` itself uses, anything else goes through ``canonical``;
the texts of a row are joined by one generated f-string per table (``_text_joiner``) and
hashed in one call. tests/test_values.py compares both with a plain reference definition.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from synchro.values.canonical import NULL, SEP, bool_text, canonical, datetime_text, decimal_text
from synchro.values.kinds import Kind


def row_hash(kinds: Sequence[Kind], row: Sequence[Any]) -> bytes:
    """A 16-byte digest of the canonical encoding of a row.

    The digest is blake2b over ``canonical(kind, value) + b"\\x1f"`` for every column in
    order. Callers hashing many rows should keep ``row_hasher(kinds)`` and call it.
    """
    return row_hasher(tuple(kinds))(row)


class _NotText(Exception):
    """A canonical encoding that is not UTF-8 text (bytes in a non-blob column)."""


def _slow_text(kind: Kind) -> Callable[[Any], str]:
    def slow(value: Any) -> str:
        try:
            return canonical(kind, value).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _NotText from None

    return slow


# Per kind, the usual Python type and its canonical text (as ``canonical`` writes it).
_PLAIN_TEXTS: dict[str, tuple[type, Callable[[Any], str]]] = {
    Kind.INT: (int, str),
    Kind.TEXT: (str, str),
    Kind.FLOAT: (float, repr),
    Kind.BOOL: (bool, bool_text),
    Kind.DATE: (dt.date, dt.date.isoformat),
    Kind.TIME: (dt.time, dt.time.isoformat),
    Kind.DATETIME: (dt.datetime, datetime_text),
}


# Per kind, a value as a driver returns it before ``normalise`` (SQLite's storage classes:
# a DECIMAL as an integer or a real, dates as text, a BOOLEAN as 0/1) whose canonical text
# is found without making the Python value first; None when the value is not of that
# simple shape (``canonical`` then decides). The checksum and the read-back hash rows as
# they are read (``Adapter.scan(raw=True)``): a fifth of a received row's cost went into
# making Decimal and datetime objects only to write them back as text.
_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?", re.ASCII).fullmatch
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII).fullmatch


def _datetime_as_stored(value: str) -> str | None:
    """A naive datetime as SQLite keeps it is its own canonical text: ``as_datetime`` reads
    it (or keeps it as text when it is no date, e.g. month 13), ``isoformat(" ")`` writes
    the same digits back; microseconds only when not all zero (``isoformat`` drops them)."""
    if _ISO_DATETIME(value) is None or value.endswith(".000000"):
        return None
    return value


def _date_as_stored(value: str) -> str | None:
    """``YYYY-MM-DD`` is its own canonical text (a date, or text kept as it is)."""
    return value if _ISO_DATE(value) is not None else None


def _decimal_of_float(value: float) -> str | None:
    """A DECIMAL read as a real: ``as_decimal`` takes its shortest text (``repr``), which
    has no trailing zero but a single ``.0``; ``-0`` is ``0``. Exponents, NaN and the
    infinities go through ``canonical``."""
    text = repr(value)
    if "e" in text or "n" in text:
        return None
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


_RAW_TEXTS: dict[str, tuple[type, Callable[[Any], str | None]]] = {
    Kind.DATETIME: (str, _datetime_as_stored),
    Kind.DATE: (str, _date_as_stored),
    Kind.BOOL: (int, str),  # 0 and 1 are False and True ("0", "1"); any other int is kept
}


def _text_canon(kind: Kind) -> Callable[[Any], str]:
    """``canonical(kind, v)`` as text, with a fast path for the usual type of the kind and
    for its usual raw form (``_RAW_TEXTS``).

    Every fast path gives exactly the text ``canonical`` encodes (the tests compare them);
    anything unusual goes through ``canonical`` itself.
    """
    slow = _slow_text(kind)
    null = NULL.decode()
    raw_type, raw = _RAW_TEXTS.get(kind, (type(None), _no_raw))
    plain_text = _PLAIN_TEXTS.get(kind)
    if plain_text is not None:
        plain_type, plain = plain_text

        def canon_plain(value: Any) -> str:
            if type(value) is plain_type:
                return plain(value)
            if value is None:
                return null
            if type(value) is raw_type:
                text = raw(value)
                if text is not None:
                    return text
            return slow(value)

        return canon_plain
    if kind == Kind.DECIMAL:

        def canon_decimal(value: Any) -> str:
            if type(value) is Decimal and value.is_finite():
                return decimal_text(value)
            if value is None:
                return null
            if type(value) is int:  # Decimal(n): every digit, no point
                return str(value)
            if type(value) is float:
                text = _decimal_of_float(value)
                if text is not None:
                    return text
            return slow(value)

        return canon_decimal

    def canon_other(value: Any) -> str:
        return null if value is None else slow(value)

    return canon_other


def _no_raw(_value: Any) -> str | None:
    return None


def _bytes_canon(kind: Kind) -> Callable[[Any], bytes]:
    """``canonical(kind, v)`` with a fast path (used when a row holds raw bytes)."""
    if kind == Kind.BLOB:

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


def value_canon(kind: Kind) -> Callable[[Any], bytes]:
    """``canonical(kind, value)`` prepared for one kind (the fast paths row digests use)."""
    return _bytes_canon(kind)


@functools.lru_cache(maxsize=256)
def row_hasher(kinds: tuple[Kind, ...]) -> Callable[[Sequence[Any]], bytes]:
    """``row_hash`` for rows of these column kinds, prepared once (identical digests).

    The canonical texts of a row are joined and hashed in one call. Rows without bytes
    are joined as text and encoded once; a table with a blob column (or a row where a
    non-blob column holds bytes) is joined as bytes.
    """
    width = len(kinds)
    texts = tuple(_text_canon(k) for k in kinds)
    raws = tuple(_bytes_canon(k) for k in kinds)
    blake2b = hashlib.blake2b
    sep = SEP

    def by_bytes(row: Sequence[Any]) -> bytes:
        data = sep.join([f(v) for f, v in zip(raws, row, strict=False)])
        return blake2b(data + sep, digest_size=16).digest()

    def check(row: Sequence[Any]) -> None:
        if len(row) != width:
            raise ValueError(f"row of {len(row)} values for {width} columns")

    if Kind.BLOB in kinds:

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
    Kind.INT: "{{v{i} if type(v{i}) is int else c{i}(v{i})}}",
    Kind.TEXT: "{{v{i} if type(v{i}) is str else c{i}(v{i})}}",
}


def _text_joiner(
    kinds: tuple[Kind, ...], texts: tuple[Callable[[Any], str], ...]
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


# Per kind, a test of two values of column i that is true only when both are of the kind's
# usual type and ``canonical`` writes the same text for them (so their digests agree):
# ``==`` alone is not enough (1 == 1.0 == True; 0.0 == -0.0; aware datetimes of one instant
# written with their offset at the ends of the calendar; a signalling NaN raises).
_SAME = {
    Kind.INT: "(type(a{i}) is int and type(b{i}) is int and a{i} == b{i})",
    Kind.TEXT: "(type(a{i}) is str and type(b{i}) is str and a{i} == b{i})",
    Kind.BLOB: "(type(a{i}) is bytes and type(b{i}) is bytes and a{i} == b{i})",
    Kind.BOOL: "(type(a{i}) is bool and type(b{i}) is bool and a{i} == b{i})",
    Kind.FLOAT: "(type(a{i}) is float and type(b{i}) is float and a{i} == b{i} and a{i} != 0)",
    Kind.DECIMAL: "(type(a{i}) is Decimal and type(b{i}) is Decimal and a{i}.is_finite()"
    " and b{i}.is_finite() and a{i} == b{i})",
    Kind.DATE: "(type(a{i}) is date and type(b{i}) is date and a{i} == b{i})",
    Kind.TIME: "(type(a{i}) is time and type(b{i}) is time and a{i}.tzinfo is None"
    " and b{i}.tzinfo is None and a{i} == b{i})",
    Kind.DATETIME: "(type(a{i}) is datetime and type(b{i}) is datetime and a{i}.tzinfo is None"
    " and b{i}.tzinfo is None and a{i} == b{i})",
}


@functools.lru_cache(maxsize=256)
def row_sameness(kinds: tuple[Kind, ...]) -> Callable[[Sequence[Any], Sequence[Any]], bool]:
    """A test of two rows of these kinds: True only when every column's canonical form is
    the same in both (the rows' digests are then equal); False means "not proven", and
    the caller compares digests. The verified apply uses it to skip hashing a read-back
    row that came back exactly as it was sent (value, type and all). The same object in
    both rows (None included) is the same; uuid and json columns are proven only so.
    """
    if not kinds:
        return lambda a, b: True
    tests = " and ".join(
        f"(a{i} is b{i} or {_SAME[kind].format(i=i)})" if kind in _SAME else f"a{i} is b{i}"
        for i, kind in enumerate(kinds)
    )
    a_names = ", ".join(f"a{i}" for i in range(len(kinds)))
    b_names = ", ".join(f"b{i}" for i in range(len(kinds)))
    source = f"def same(a, b):\n    {a_names}, = a\n    {b_names}, = b\n    return bool({tests})\n"
    scope: dict[str, Any] = {
        "Decimal": Decimal,
        "date": dt.date,
        "time": dt.time,
        "datetime": dt.datetime,
    }
    exec(source, scope)  # the source comes from the fixed templates above only
    same: Callable[[Sequence[Any], Sequence[Any]], bool] = scope["same"]
    return same
