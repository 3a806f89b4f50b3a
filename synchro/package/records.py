"""Changes as records in batch lines, and back, checked.

A record is ``[table_index, "U"|"D", [values...]]`` or, when the change carries its origin
site, ``[table_index, op, [values...], origin, pos]``; values in the JSON form of
``synchro.values`` (see ``rowcodec``). A batch line is the JSON array of up to a few hundred
records; the body of a package is a sequence of such lines. One JSON call per line instead
of one per change is what makes reading and writing fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .manifest import Change, Invalid, TableSchema
from .rowcodec import Unrepresentable, decoder, encoder, row_decoder, row_encoder

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


class _Shape:
    """One (table, op): its index, names and kinds, and its compiled row functions."""

    def __init__(self, index: int, schema: TableSchema, op: str) -> None:
        self.index = index
        self.table = schema.name
        self.names = schema.column_names if op == "U" else schema.key
        self.kinds = schema.kinds if op == "U" else schema.key_kinds
        self.arity = len(self.kinds)
        self.encode_row = row_encoder(self.kinds)
        self.decode_row = row_decoder(self.kinds)

    def which(self, values: Sequence[Any]) -> Unrepresentable:
        """The error naming the first value that cannot travel."""
        for name, kind, value in zip(self.names, self.kinds, values, strict=True):
            try:
                encoder(kind)(value)
            except Unrepresentable:
                return Unrepresentable(
                    f"valeur non transportable dans {self.table}.{name} ({kind}) : {value!r:.80}"
                )
        return Unrepresentable(f"valeur non transportable dans {self.table}")

    def decode_slowly(self, row: list[Any], number: int) -> tuple[Any, ...]:
        """Value by value, for the odd values the compiled fast path does not take."""
        try:
            return tuple([decoder(k)(v) for k, v in zip(self.kinds, row, strict=True)])
        except (ValueError, TypeError, ArithmeticError):
            raise Invalid(f"enregistrement n°{number} : valeur illisible") from None


class RecordCodec:
    """Changes to records (writer) and batch lines to checked changes (reader)."""

    def __init__(self, tables: Sequence[TableSchema]) -> None:
        self.tables = tuple(tables)
        self._index = {t.name: i for i, t in enumerate(self.tables)}
        self._by_name: dict[tuple[str, str], _Shape] = {}
        self._by_index: dict[tuple[int, str], _Shape] = {}
        self._dumps: Callable[[Any], str] = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=False
        ).encode

    def _shape(self, index: int, op: str) -> _Shape:
        shape = self._by_index.get((index, op))
        if shape is None:
            shape = _Shape(index, self.tables[index], op)
            self._by_index[index, op] = shape
            self._by_name[shape.table, op] = shape
        return shape

    def encode(
        self, table: str, op: str, values: Sequence[Any], origin: str, pos: int
    ) -> tuple[list[Any], int]:
        """The record and a rough size of its JSON text. ValueError for a call that breaks
        the schema; ``Unrepresentable`` (naming the column) for a value that cannot travel.
        """
        shape = self._by_name.get((table, op))
        if shape is None:
            if table not in self._index:
                raise ValueError(f"table {table!r} absente du schéma du paquet")
            if op not in ("U", "D"):
                raise ValueError(f"opération {op!r} inconnue (attendue : U ou D)")
            shape = self._shape(self._index[table], op)
        if len(values) != shape.arity:
            raise ValueError(f"{table} {op} : {len(values)} valeurs pour {shape.arity} colonnes")
        try:
            row, size = shape.encode_row(values)
        except Unrepresentable:
            raise shape.which(values) from None
        if origin or pos:
            if not isinstance(origin, str) or type(pos) is not int or pos < 0:
                raise ValueError("origin doit être un texte et pos un entier positif")
            return [shape.index, op, row, origin, pos], size + len(origin)
        return [shape.index, op, row], size

    def line(self, records: list[list[Any]]) -> bytes:
        """One batch line, newline included."""
        return (self._dumps(records) + "\n").encode("utf-8", "surrogatepass")

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
        shapes, tables = self._by_index, len(self.tables)
        number = first
        for number, record in enumerate(records, first):
            if type(record) is not list or len(record) not in (3, 5):
                raise Invalid(f"enregistrement n°{number} mal formé")
            index, op, row = record[0], record[1], record[2]
            shape = shapes.get((index, op)) if type(index) is int and type(op) is str else None
            if shape is None:
                if type(index) is not int or not 0 <= index < tables or op not in ("U", "D"):
                    raise Invalid(f"enregistrement n°{number} : table ou opération inconnue")
                shape = self._shape(index, op)
            if type(row) is not list or len(row) != shape.arity:
                raise Invalid(f"enregistrement n°{number} : nombre de valeurs incorrect")
            try:
                values = shape.decode_row(row)
            except (ValueError, TypeError, ArithmeticError):
                values = shape.decode_slowly(row, number)
            if len(record) == 3:
                if changes is not None:
                    changes.append(_change(shape.table, op, values, "", 0))
            else:
                origin, pos = record[3], record[4]
                if type(origin) is not str or type(pos) is not int or pos < 0:
                    raise Invalid(f"enregistrement n°{number} : origine ou position illisible")
                if changes is not None:
                    changes.append(_change(shape.table, op, values, origin, pos))
            if counts is not None:
                counts[index][op] += 1
        return number - first + 1
