"""The JSON form of values, as they travel in packages: exact both ways.

``to_json``/``from_json`` are the definitions; ``row_to_json`` is ``to_json`` for whole rows
with a fast path per kind that uses the same per-type encoders (``TYPED_JSON``), compared
with ``to_json`` by tests/test_values.py. ``synchro.package.rowcodec`` builds its own
compiled row codecs on these.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from json import encoder as _json_encoder
from typing import Any

from synchro.values.convert import normalise
from synchro.values.kinds import EXACT_TYPES, Kind


def iso_space(value: dt.datetime) -> str:
    """A datetime's JSON form: ISO 8601 with a space, offset kept when it has one."""
    return value.isoformat(" ")


def iso(value: dt.date | dt.time) -> str:
    return value.isoformat()


def b64_text(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# Kinds whose JSON value is the Python value itself, with that exact type.
NATIVE_JSON: dict[str, type] = {
    Kind.INT: int,
    Kind.FLOAT: float,
    Kind.TEXT: str,
    Kind.BOOL: bool,
    Kind.UUID: str,
    Kind.JSON: str,
}
# The other kinds: their usual Python type and the text that is its JSON form.
TYPED_JSON: dict[str, tuple[type, Callable[[Any], str]]] = {
    Kind.DECIMAL: (Decimal, str),
    Kind.DATETIME: (dt.datetime, iso_space),
    Kind.DATE: (dt.date, iso),
    Kind.TIME: (dt.time, iso),
    Kind.BLOB: (bytes, b64_text),
}


def to_json(kind: Kind, value: Any) -> Any:
    """A JSON-safe value that ``from_json`` turns back into the same value, exactly."""
    if value is None:
        return None
    value = normalise(kind, value)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return iso_space(value)
    if isinstance(value, dt.date | dt.time):
        return iso(value)
    if isinstance(value, bytes):
        return b64_text(value)
    return str(value)


def from_json(kind: Kind, value: Any) -> Any:
    """The value ``to_json`` was given (normalised) from its JSON form."""
    if value is None:
        return None
    if kind == Kind.BLOB and isinstance(value, str):
        return base64.b64decode(value)
    if kind == Kind.FLOAT and isinstance(value, int | float):
        return float(value)
    if kind == Kind.INT and isinstance(value, int):
        return value
    return normalise(kind, value)


def _json_plain(kind: Kind) -> Callable[[Any], Any]:
    """``to_json(kind, v)`` with a fast path for the kind's exact type."""
    if kind in (Kind.INT, Kind.FLOAT, Kind.TEXT, Kind.BOOL):
        exact = EXACT_TYPES[kind]

        def same(value: Any) -> Any:
            return value if type(value) is exact or value is None else to_json(kind, value)

        return same
    typed = TYPED_JSON.get(kind)
    if typed is not None:
        typ, plain = typed

        def converted(value: Any) -> Any:
            if type(value) is typ:
                return plain(value)
            return to_json(kind, value)

        return converted
    return functools.partial(to_json, kind)


def row_to_json(kinds: Sequence[Kind]) -> Callable[[Sequence[Any]], list[Any]]:
    """``[to_json(k, v) for k, v in zip(kinds, row)]``, prepared for one table."""
    encoders = tuple(_json_plain(k) for k in kinds)
    width = len(encoders)

    def encode_row(row: Sequence[Any]) -> list[Any]:
        if len(row) != width:
            raise ValueError(f"row of {len(row)} values for {width} columns")
        return [f(v) for f, v in zip(encoders, row, strict=False)]

    return encode_row


def carried_form_is_normal(kinds: Sequence[Kind]) -> bool:
    """Whether a row of these kinds, read from a package, may be kept in the JSON form the
    package carried (the Siège's change log does): every kind has an exact type
    (``EXACT_TYPES``), so the normalised row is the decoded row, which encodes back to the
    carried form (``tests/test_apply_log_form.py``, on the whole fidelity catalogue). A
    uuid is lowered by ``normalise`` (its text may come in capitals): encoded again."""
    return all(k in EXACT_TYPES for k in kinds)


def json_text_encoder(*, compact: bool = False) -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)`` (the text of a row in the state database),
    with the C encoder made once instead of at every call: half the cost for a row.
    ``compact``: with the separators ``(",", ":")`` (a key's text, ``state.key_json``)."""
    item_sep, key_sep = (",", ":") if compact else (", ", ": ")
    plain = json.JSONEncoder(
        ensure_ascii=False, check_circular=False, separators=(item_sep, key_sep)
    )
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python)
        return plain.encode
    basestring = _json_encoder.encode_basestring
    encode = make(None, plain.default, basestring, None, key_sep, item_sep, False, False, True)

    def text(value: Any) -> str:
        return "".join(encode(value, 0))

    return text
