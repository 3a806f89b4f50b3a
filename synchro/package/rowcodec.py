"""Values and rows of a table to their JSON form and back, exactly and fast.

The JSON form is the one of ``synchro.values`` (``to_json``/``from_json``). ``encoder`` and
``decoder`` give one function per kind: a fast path for the usual Python type of the kind,
``values`` itself for anything else; the encoder refuses a value that would not come back
identical (``Unrepresentable``). ``row_encoder``/``row_decoder`` compile one function per
row shape, with no call at all for the usual types: that is where packages spend their time.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from synchro import values as V
from synchro.errors import Worded
from synchro.values import Kind
from synchro.values.json_form import NATIVE_JSON, TYPED_JSON

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class Unrepresentable(Worded, ValueError):
    """A value that would not read back identical (e.g. text in a blob column); ``say``:
    the words naming it (table, column), when known."""


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return bool(b.is_nan())
    return bool(a == b) and str(a) == str(b)  # str: Decimal scale, datetime offset


def _encode_slow(kind: Kind, value: Any) -> Any:
    expected = V.normalise(kind, value)
    encoded = V.to_json(kind, value)
    try:
        back = V.from_json(kind, encoded)
    except (ValueError, TypeError) as exc:
        raise Unrepresentable(repr(value)) from exc
    if not _same(back, expected):
        raise Unrepresentable(repr(value))
    return encoded


def encoder(kind: Kind) -> Encoder:
    """A function from a Python value of ``kind`` to its JSON form (``values.to_json``)."""
    native = NATIVE_JSON.get(kind)
    if native is not None:

        def encode_native(value: Any) -> Any:
            if value is None or type(value) is native:
                return value
            return _encode_slow(kind, value)

        return encode_native
    typ, fast = TYPED_JSON[kind]

    def encode_typed(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is typ:
            return fast(value)
        return _encode_slow(kind, value)

    return encode_typed


def _decode_slow(kind: Kind, value: Any) -> Any:
    if isinstance(value, list | dict):
        raise ValueError("valeur composée")
    return V.from_json(kind, value)


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


_FAST_DECODE: dict[str, Callable[[str], Any]] = {
    Kind.DECIMAL: Decimal,
    Kind.DATETIME: dt.datetime.fromisoformat,
    Kind.DATE: dt.date.fromisoformat,
    Kind.TIME: dt.time.fromisoformat,
    Kind.BLOB: _b64,
}


def decoder(kind: Kind) -> Decoder:
    """The inverse of ``encoder(kind)`` (``values.from_json``); ValueError on a bad value."""
    native = NATIVE_JSON.get(kind)
    if native is not None:

        def decode_native(value: Any) -> Any:
            if value is None or type(value) is native:
                return value
            return _decode_slow(kind, value)

        return decode_native
    typ, fast = TYPED_JSON[kind][0], _FAST_DECODE[kind]

    def decode_typed(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is str:
            try:
                out = fast(value)
            except (ValueError, ArithmeticError):
                return _decode_slow(kind, value)
            if type(out) is typ:
                return out
        return _decode_slow(kind, value)

    return decode_typed


# Row codecs are compiled once per table from these templates: one expression per column,
# no call for the usual types, the per-value functions above (``slow``) for anything else.
# Only column positions go into the generated code, never a name read from a file.
_ENCODE_EXPR: dict[Kind, str] = {
    Kind.INT: "{v} if type({v}) is int or {v} is None else slow[{i}]({v})",
    Kind.FLOAT: "{v} if type({v}) is float or {v} is None else slow[{i}]({v})",
    Kind.TEXT: "{v} if type({v}) is str or {v} is None else slow[{i}]({v})",
    Kind.BOOL: "{v} if type({v}) is bool or {v} is None else slow[{i}]({v})",
    Kind.UUID: "{v} if type({v}) is str or {v} is None else slow[{i}]({v})",
    Kind.JSON: "{v} if type({v}) is str or {v} is None else slow[{i}]({v})",
    Kind.DECIMAL: "str({v}) if type({v}) is Decimal else slow[{i}]({v})",
    Kind.DATETIME: "{v}.isoformat(' ') if type({v}) is DateTime else slow[{i}]({v})",
    Kind.DATE: "{v}.isoformat() if type({v}) is Date else slow[{i}]({v})",
    Kind.TIME: "{v}.isoformat() if type({v}) is Time else slow[{i}]({v})",
    Kind.BLOB: "b64encode({v}).decode('ascii') if type({v}) is bytes else slow[{i}]({v})",
}
_DECODE_EXPR: dict[Kind, str] = {
    Kind.INT: _ENCODE_EXPR[Kind.INT],
    Kind.FLOAT: _ENCODE_EXPR[Kind.FLOAT],
    Kind.TEXT: _ENCODE_EXPR[Kind.TEXT],
    Kind.BOOL: _ENCODE_EXPR[Kind.BOOL],
    Kind.UUID: _ENCODE_EXPR[Kind.UUID],
    Kind.JSON: _ENCODE_EXPR[Kind.JSON],
    Kind.DECIMAL: "Decimal({v}) if type({v}) is str else slow[{i}]({v})",
    Kind.DATETIME: "from_datetime({v}) if type({v}) is str else slow[{i}]({v})",
    Kind.DATE: "from_date({v}) if type({v}) is str else slow[{i}]({v})",
    Kind.TIME: "from_time({v}) if type({v}) is str else slow[{i}]({v})",
    Kind.BLOB: "b64decode({v}) if type({v}) is str else slow[{i}]({v})",
}
_NAMES: dict[str, Any] = {
    "Decimal": Decimal,
    "DateTime": dt.datetime,
    "Date": dt.date,
    "Time": dt.time,
    "b64encode": base64.b64encode,
    "b64decode": base64.b64decode,
    "from_datetime": dt.datetime.fromisoformat,
    "from_date": dt.date.fromisoformat,
    "from_time": dt.time.fromisoformat,
}


def _compile(
    kinds: Sequence[Kind],
    templates: dict[Kind, str],
    slow: tuple[Callable[[Any], Any], ...],
    kind: str,
) -> Callable[[Sequence[Any]], Any]:
    """``row -> (list, size)`` (encode) or ``row -> tuple`` (decode) for rows of these kinds.

    The row must have ``len(kinds)`` items (checked by the caller). A fast expression may
    raise (e.g. ``Decimal("abc")``): the caller then retries value by value with ``slow``.
    """
    names = [f"v{i}" for i in range(len(kinds))]
    exprs = [
        templates[k].format(v=v, i=i) for i, (k, v) in enumerate(zip(kinds, names, strict=True))
    ]
    if kind == "encode":
        # With a rough size of the JSON text: fixed part, plus the length of long texts.
        sizes = [str(16 + 8 * len(kinds))] + [
            f"(len(r[{i}]) if type(r[{i}]) is str else 0)"
            for i, k in enumerate(kinds)
            if k in (Kind.TEXT, Kind.BLOB)
        ]
        built = f"r = [{', '.join(exprs)}]\n    return r, {' + '.join(sizes)}"
    else:
        built = f"return ({', '.join(exprs)},)"
    source = f"def row_{kind}(row):\n    {', '.join(names)}, = row\n    {built}\n"
    namespace = dict(_NAMES, slow=slow)
    exec(source, namespace)
    function: Callable[[Sequence[Any]], Any] = namespace[f"row_{kind}"]
    return function


@functools.lru_cache(maxsize=512)
def row_encoder(kinds: tuple[Kind, ...]) -> Callable[[Sequence[Any]], tuple[list[Any], int]]:
    """``values -> (JSON values, rough size of their JSON text)`` for rows of ``kinds``.

    Raises ``Unrepresentable`` like ``encoder``. Cached: a pure function of ``kinds``.
    """
    slow = tuple(encoder(k) for k in kinds)
    return _compile(kinds, _ENCODE_EXPR, slow, "encode")


@functools.lru_cache(maxsize=512)
def row_decoder(kinds: tuple[Kind, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``JSON values -> values`` for rows of ``kinds``. May raise ValueError, TypeError or
    ArithmeticError on an odd value: decode it value by value with ``decoder`` then."""
    slow = tuple(decoder(k) for k in kinds)
    return _compile(kinds, _DECODE_EXPR, slow, "decode")
