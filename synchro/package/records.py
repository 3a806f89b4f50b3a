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


_new = object.__new__
_set = object.__setattr__


def _change(table: str, op: str, values: tuple[Any, ...], origin: str, pos: int) -> Change:
    """``Change(table, op, values, origin, pos)`` at half the cost: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``; reading makes one per row.
    """
    change = _new(Change)
    _set(
        change,
        "__dict__",
        {"table": table, "op": op, "values": values, "origin": origin, "pos": pos},
    )
    return change


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


# Row codecs are compiled once per table from these templates: one expression per column,
# no call for the usual types, the per-value functions above (``slow``) for anything else.
# Only column positions go into the generated code, never a name read from a file.
_ENCODE_EXPR = {
    "int": "{v} if type({v}) is int or {v} is None else slow[{i}]({v})",
    "float": "{v} if type({v}) is float or {v} is None else slow[{i}]({v})",
    "text": "{v} if type({v}) is str or {v} is None else slow[{i}]({v})",
    "bool": "{v} if type({v}) is bool or {v} is None else slow[{i}]({v})",
    "decimal": "str({v}) if type({v}) is Decimal else slow[{i}]({v})",
    "datetime": "{v}.isoformat(' ') if type({v}) is DateTime else slow[{i}]({v})",
    "date": "{v}.isoformat() if type({v}) is Date else slow[{i}]({v})",
    "time": "{v}.isoformat() if type({v}) is Time else slow[{i}]({v})",
    "blob": "b64encode({v}).decode('ascii') if type({v}) is bytes else slow[{i}]({v})",
}
_DECODE_EXPR = {
    "int": _ENCODE_EXPR["int"],
    "float": _ENCODE_EXPR["float"],
    "text": _ENCODE_EXPR["text"],
    "bool": _ENCODE_EXPR["bool"],
    "decimal": "Decimal({v}) if type({v}) is str else slow[{i}]({v})",
    "datetime": "from_datetime({v}) if type({v}) is str else slow[{i}]({v})",
    "date": "from_date({v}) if type({v}) is str else slow[{i}]({v})",
    "time": "from_time({v}) if type({v}) is str else slow[{i}]({v})",
    "blob": "b64decode({v}) if type({v}) is str else slow[{i}]({v})",
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
    kinds: Sequence[str],
    templates: dict[str, str],
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
            if k in ("text", "blob")
        ]
        built = f"r = [{', '.join(exprs)}]\n    return r, {' + '.join(sizes)}"
    else:
        built = f"return ({', '.join(exprs)},)"
    source = f"def row_{kind}(row):\n    {', '.join(names)}, = row\n    {built}\n"
    namespace = dict(_NAMES, slow=slow)
    exec(source, namespace)
    function: Callable[[Sequence[Any]], Any] = namespace[f"row_{kind}"]
    return function


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
        self.encode_row = {
            op: _compile(self.kinds[op], _ENCODE_EXPR, self.encoders[op], "encode")
            for op in ("U", "D")
        }
        self.decode_row = {
            op: _compile(self.kinds[op], _DECODE_EXPR, self.decoders[op], "decode")
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
        self._plans = {(t.index, op): _Plan(t, op) for t in self.tables for op in ("U", "D")}
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
        encode_row = codec.encode_row.get(op) if codec is not None else None
        if codec is None or encode_row is None:
            what = f"table {table!r} absente du schéma" if codec is None else f"opération {op!r}"
            raise ValueError(f"{what} inconnue du paquet (opérations : U ou D)")
        if len(values) != len(codec.kinds[op]):
            raise ValueError(
                f"{table} {op} : {len(values)} valeurs pour {len(codec.kinds[op])} colonnes"
            )
        try:
            row, size = encode_row(values)
        except Unrepresentable:
            raise self._which(codec, op, values) from None
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
        self._walk(line, first, changes, None)
        return changes

    def count(self, line: bytes, first: int, counts: list[dict[str, int]]) -> int:
        """Check every record of one batch line as ``decode`` does, but only count them per
        table and op (``counts[table_index][op]``). Returns the number of records."""
        return self._walk(line, first, None, counts)

    def _walk(
        self,
        line: bytes,
        first: int,
        changes: list[Change] | None,
        counts: list[dict[str, int]] | None,
    ) -> int:
        """Check each record of a line; build its change or count it. One tight loop: this
        is where reading spends its time."""
        try:
            records = json.loads(line)
        except ValueError:
            raise Invalid(f"enregistrement n°{first} illisible") from None
        if type(records) is not list or not records:
            raise Invalid(f"enregistrement n°{first} illisible")
        plans = self._plans
        number = first
        for number, record in enumerate(records, first):
            if type(record) is not list or len(record) not in (3, 5):
                raise Invalid(f"enregistrement n°{number} mal formé")
            index, op, row = record[0], record[1], record[2]
            plan = plans.get((index, op)) if type(index) is int and type(op) is str else None
            if plan is None:
                raise Invalid(f"enregistrement n°{number} : table ou opération inconnue")
            if type(row) is not list or len(row) != plan.arity:
                raise Invalid(f"enregistrement n°{number} : nombre de valeurs incorrect")
            try:
                values = plan.decode_row(row)
            except (ValueError, TypeError, ArithmeticError):
                values = plan.decode_slowly(row, number)
            if len(record) == 3:
                if changes is not None:
                    changes.append(_change(plan.table, op, values, "", 0))
            else:
                origin, pos = record[3], record[4]
                if type(origin) is not str or type(pos) is not int or pos < 0:
                    raise Invalid(f"enregistrement n°{number} : origine ou position illisible")
                if changes is not None:
                    changes.append(_change(plan.table, op, values, origin, pos))
            if counts is not None:
                counts[index][op] += 1
        return number - first + 1


class _Plan:
    """How to decode the values of one (table, op)."""

    def __init__(self, codec: TableCodec, op: str) -> None:
        self.table = codec.schema.name
        self.arity = len(codec.kinds[op])
        self.decode_row = codec.decode_row[op]
        self.decoders = codec.decoders[op]

    def decode_slowly(self, row: list[Any], number: int) -> tuple[Any, ...]:
        """Value by value, for the odd values the compiled fast path does not take."""
        try:
            return tuple([dec(v) for dec, v in zip(self.decoders, row, strict=True)])
        except (ValueError, TypeError, ArithmeticError):
            raise Invalid(f"enregistrement n°{number} : valeur illisible") from None
