"""One change as one JSON line, and back, exactly.

A record is ``[table_index, "U"|"D", [values...]]`` or, when the change carries its origin
site, ``[table_index, op, [values...], origin, pos]``. Values are in the JSON form of
``synchro.values`` (``to_json``/``from_json``). The encoders and decoders here are fast paths
for the usual Python type of each kind; anything else goes through ``values`` itself, and the
writer refuses a value that would not come back identical.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from synchro import values as V

from .manifest import Change, Invalid, TableSchema

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

# Kinds whose JSON value is the Python value itself, with that exact type.
_NATIVE: dict[str, type] = {"int": int, "float": float, "text": str, "bool": bool}
_TYPES: dict[str, type] = {
    "decimal": Decimal,
    "datetime": dt.datetime,
    "date": dt.date,
    "time": dt.time,
    "blob": bytes,
}


class Unrepresentable(ValueError):
    """A value that would not read back identical (e.g. text in a blob column)."""


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return bool(b.is_nan())
    return bool(a == b) and str(a) == str(b)  # str: Decimal scale, datetime offset


def _encode_slow(kind: str, value: Any) -> Any:
    expected = V.normalise(kind, value)
    encoded = V.to_json(kind, value)
    try:
        back = V.from_json(kind, encoded)
    except (ValueError, TypeError) as exc:
        raise Unrepresentable(repr(value)) from exc
    if not _same(back, expected):
        raise Unrepresentable(repr(value))
    return encoded


def _to_iso_space(value: dt.datetime) -> str:
    return value.isoformat(" ")


def _to_iso(value: dt.date | dt.time) -> str:
    return value.isoformat()


def _to_b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_FAST_ENCODE: dict[str, Callable[[Any], Any]] = {
    "decimal": str,
    "datetime": _to_iso_space,
    "date": _to_iso,
    "time": _to_iso,
    "blob": _to_b64,
}


def encoder(kind: str) -> Encoder:
    """A function from a Python value of ``kind`` to its JSON form (``values.to_json``)."""
    native = _NATIVE.get(kind)
    if native is not None:

        def encode_native(value: Any) -> Any:
            if value is None or type(value) is native:
                return value
            return _encode_slow(kind, value)

        return encode_native
    typ, fast = _TYPES[kind], _FAST_ENCODE[kind]

    def encode_typed(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is typ:
            return fast(value)
        return _encode_slow(kind, value)

    return encode_typed


def _decode_slow(kind: str, value: Any) -> Any:
    if isinstance(value, list | dict):
        raise ValueError("valeur composée")
    return V.from_json(kind, value)


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


_FAST_DECODE: dict[str, Callable[[str], Any]] = {
    "decimal": Decimal,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "blob": _b64,
}


def decoder(kind: str) -> Decoder:
    """The inverse of ``encoder(kind)`` (``values.from_json``); ValueError on a bad value."""
    native = _NATIVE.get(kind)
    if native is not None:

        def decode_native(value: Any) -> Any:
            if value is None or type(value) is native:
                return value
            return _decode_slow(kind, value)

        return decode_native
    typ, fast = _TYPES[kind], _FAST_DECODE[kind]

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


class TableCodec:
    """Encoders and decoders of one table's rows (``U``) and keys (``D``)."""

    def __init__(self, index: int, schema: TableSchema) -> None:
        self.index = index
        self.schema = schema
        self.encoders = {
            "U": tuple(encoder(k) for k in schema.kinds),
            "D": tuple(encoder(k) for k in schema.key_kinds),
        }
        self.decoders = {
            "U": tuple(decoder(k) for k in schema.kinds),
            "D": tuple(decoder(k) for k in schema.key_kinds),
        }
        self.names = {"U": schema.column_names, "D": schema.key}
        self.kinds = {"U": schema.kinds, "D": schema.key_kinds}
        # Columns whose JSON text can be long: they decide how big a batch line gets.
        self.long = {
            op: tuple(i for i, k in enumerate(self.kinds[op]) if k in ("text", "blob"))
            for op in ("U", "D")
        }


class RecordCodec:
    """Changes to records (writer) and batch lines to checked changes (reader).

    A batch line is the JSON array of up to a few hundred records; the body of a package
    is a sequence of such lines. One JSON call per line instead of per change is what
    makes reading and writing fast.
    """

    def __init__(self, tables: Sequence[TableSchema]) -> None:
        self.tables = tuple(TableCodec(i, t) for i, t in enumerate(tables))
        self.by_name = {t.schema.name: t for t in self.tables}
        self._dumps = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=False
        ).encode

    def encode(
        self, table: str, op: str, values: Sequence[Any], origin: str, pos: int
    ) -> tuple[list[Any], int]:
        """The record and a rough size of its JSON text. ValueError for a call that breaks
        the schema; ``Unrepresentable`` (naming the column) for a value that cannot travel.
        """
        codec = self.by_name.get(table)
        if codec is None:
            raise ValueError(f"table {table!r} absente du schéma du paquet")
        encoders = codec.encoders.get(op)
        if encoders is None:
            raise ValueError(f"opération {op!r} inconnue (attendue : U ou D)")
        if len(values) != len(encoders):
            raise ValueError(f"{table} {op} : {len(values)} valeurs pour {len(encoders)} colonnes")
        try:
            row = [enc(v) for enc, v in zip(encoders, values, strict=True)]
        except Unrepresentable:
            raise self._which(codec, op, values) from None
        size = 16 + 8 * len(row)
        for i in codec.long[op]:
            value = row[i]
            if value is not None:
                size += len(value)
        if origin or pos:
            if not isinstance(origin, str) or type(pos) is not int or pos < 0:
                raise ValueError("origin doit être un texte et pos un entier positif")
            return [codec.index, op, row, origin, pos], size + len(origin)
        return [codec.index, op, row], size

    def line(self, records: list[list[Any]]) -> bytes:
        """One batch line, newline included."""
        return (self._dumps(records) + "\n").encode("utf-8", "surrogatepass")

    @staticmethod
    def _which(codec: TableCodec, op: str, values: Sequence[Any]) -> Unrepresentable:
        for name, kind, enc, value in zip(
            codec.names[op], codec.kinds[op], codec.encoders[op], values, strict=True
        ):
            try:
                enc(value)
            except Unrepresentable:
                return Unrepresentable(
                    f"valeur non transportable dans {codec.schema.name}.{name} ({kind}) : "
                    f"{value!r:.80}"
                )
        return Unrepresentable(f"valeur non transportable dans {codec.schema.name}")

    def decode(self, line: bytes, first: int) -> list[Change]:
        """The changes of one batch line whose first record is number ``first`` (from 1);
        ``Invalid`` naming the record when one is wrong."""
        changes: list[Change] = []
        append = changes.append
        tables = self.tables
        for number, record in enumerate(self._records(line, first), first):
            index, op, row = record[0], record[1], record[2]
            values = self._values(tables, number, index, op, row)
            codec = tables[index]
            if len(record) == 3:
                append(Change(codec.schema.name, op, values))
            else:
                append(Change(codec.schema.name, op, values, record[3], record[4]))
        return changes

    def count(self, line: bytes, first: int, counts: list[dict[str, int]]) -> int:
        """Check every record of one batch line as ``decode`` does, but only count them per
        table and op (``counts[table_index][op]``). Returns the number of records."""
        tables = self.tables
        number = first
        for number, record in enumerate(self._records(line, first), first):
            index, op = record[0], record[1]
            self._values(tables, number, index, op, record[2])
            counts[index][op] += 1
        return number - first + 1

    @staticmethod
    def _records(line: bytes, first: int) -> list[list[Any]]:
        """The records of a batch line, each a list of 3 items, or 5 with a valid origin."""
        try:
            records = json.loads(line)
        except ValueError:
            raise Invalid(f"enregistrement n°{first} illisible") from None
        if type(records) is not list or not records:
            raise Invalid(f"enregistrement n°{first} illisible")
        for number, record in enumerate(records, first):
            if type(record) is not list:
                raise Invalid(f"enregistrement n°{number} mal formé")
            size = len(record)
            if size == 3:
                continue
            if size != 5:
                raise Invalid(f"enregistrement n°{number} mal formé")
            origin, pos = record[3], record[4]
            if type(origin) is not str or type(pos) is not int or pos < 0:
                raise Invalid(f"enregistrement n°{number} : origine ou position illisible")
        return records

    @staticmethod
    def _values(
        tables: tuple[TableCodec, ...], number: int, index: Any, op: Any, row: Any
    ) -> tuple[Any, ...]:
        if type(index) is not int or not 0 <= index < len(tables):
            raise Invalid(f"enregistrement n°{number} : table inconnue")
        decoders = tables[index].decoders.get(op) if type(op) is str else None
        if decoders is None:
            raise Invalid(f"enregistrement n°{number} : opération inconnue")
        if type(row) is not list or len(row) != len(decoders):
            raise Invalid(f"enregistrement n°{number} : nombre de valeurs incorrect")
        try:
            return tuple([dec(v) for dec, v in zip(decoders, row, strict=False)])
        except (ValueError, TypeError, ArithmeticError):
            raise Invalid(f"enregistrement n°{number} : valeur illisible") from None
