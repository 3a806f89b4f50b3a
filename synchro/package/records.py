"""Changes as lines of grouped records, and back, checked.

The body of a package is a sequence of lines; each line is the JSON array of a few hundred
changes, written in their order as *groups* of consecutive changes of one table and op::

    [[table_index, "U", [[values...], [values...], ...]],
     [table_index, "D", [[key values...], ...], [origin, ...], [pos, ...]],  ...]

A group has 3 items, or 5 when its changes carry their origin site and position in HQ's
change log (one origin and one position per change). Values are in the JSON form of
``synchro.values`` (see ``rowcodec``). One JSON call per line, and no per-change wrapper,
is what makes writing and reading fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .manifest import Change, TableSchema, invalid
from .rowcodec import Unrepresentable, decoder, encoder, row_decoder, row_encoder

_new = object.__new__
_RAW = "raw"  # 6th item of a queued group whose rows are JSON text (``queue_json``)
_set = object.__setattr__


def _change(
    table: str, op: str, values: tuple[Any, ...], origin: str, pos: int, sent: list[Any]
) -> Change:
    """``Change(table, op, values, origin, pos, sent)`` at half the cost: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``; reading makes
    one per row."""
    change = _new(Change)
    _set(
        change,
        "__dict__",
        {"table": table, "op": op, "values": values, "origin": origin, "pos": pos, "sent": sent},
    )
    return change


class _Shape:
    """One (table, op): its index, names and kinds, and its compiled row functions."""

    def __init__(self, index: int, schema: TableSchema, op: str) -> None:
        self.index = index
        self.op = op
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
                shown = {"table": self.table, "column": name, "kind": str(kind)}
                return Unrepresentable(
                    say=("engine.travel.value", {**shown, "value": f"{value!r:.80}"})
                )
        return Unrepresentable(say=("engine.travel.row", {"table": self.table}))

    def decode_slowly(self, row: list[Any], number: int) -> tuple[Any, ...]:
        """Value by value, for the odd values the compiled fast path does not take."""
        try:
            return tuple([decoder(k)(v) for k, v in zip(self.kinds, row, strict=True)])
        except (ValueError, TypeError, ArithmeticError):
            raise invalid("record_value", number=number) from None


class Encoded(NamedTuple):
    """One change in its JSON form, not yet queued."""

    table_index: int
    op: str
    row: list[Any]
    origin: str | None  # None: the change carries no origin nor position
    pos: int
    size: int  # rough size of its JSON text


class RecordCodec:
    """Changes to lines (writer: ``encode``, ``queue``, ``take_line``) and lines to checked
    changes (reader: ``decode`` or ``count``)."""

    def __init__(self, tables: Sequence[TableSchema]) -> None:
        self.tables = tuple(tables)
        self._index = {t.name: i for i, t in enumerate(self.tables)}
        self._by_name: dict[tuple[str, str], _Shape] = {}
        self._by_index: dict[tuple[int, str], _Shape] = {}
        self._dumps: Callable[[Any], str] = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=False
        ).encode
        self._groups: list[list[Any]] = []
        self._last: list[Any] | None = None
        self.pending = 0  # changes waiting for take_line
        self.pending_size = 0  # rough size of their JSON text

    def _shape(self, index: int, op: str) -> _Shape:
        shape = self._by_index.get((index, op))
        if shape is None:
            shape = _Shape(index, self.tables[index], op)
            self._by_index[index, op] = shape
            self._by_name[shape.table, op] = shape
        return shape

    def encode(self, table: str, op: str, values: Sequence[Any], origin: str, pos: int) -> Encoded:
        """One change ready to queue. ValueError for a call that breaks the schema;
        ``Unrepresentable`` (naming the column) for a value that cannot travel."""
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
        if not (origin or pos):
            return Encoded(shape.index, op, row, None, 0, size)
        if not isinstance(origin, str) or type(pos) is not int or pos < 0:
            raise ValueError("origin doit être un texte et pos un entier positif")
        return Encoded(shape.index, op, row, origin, pos, size + len(origin) + 12)

    def queue(self, change: Encoded) -> None:
        """Add an encoded change to the next line (after those already queued)."""
        carries = change.origin is not None
        group = self._last
        if (
            group is None
            or group[0] != change.table_index
            or group[1] != change.op
            or (len(group) == 5) != carries
        ):
            group = (
                [change.table_index, change.op, [], [], []]
                if carries
                else [change.table_index, change.op, []]
            )
            self._groups.append(group)
            self._last = group
        group[2].append(change.row)
        if carries:
            group[3].append(change.origin)
            group[4].append(change.pos)
        self.pending += 1
        self.pending_size += change.size

    def queue_json(self, table: str, op: str, text: str, origin: str, pos: int) -> int:
        """Queue a change whose values are already in their JSON form, as the text of a
        JSON array (the Siège's change log keeps rows so): neither decoded nor encoded
        again, which is most of the cost of writing a row. The reader checks it as any
        other. Returns its rough size."""
        shape = self._by_name.get((table, op))
        if shape is None:
            if table not in self._index or op not in ("U", "D"):
                raise ValueError(f"table {table!r} ou opération {op!r} hors du schéma")
            shape = self._shape(self._index[table], op)
        group = self._last
        if group is None or group[0] != shape.index or group[1] != op or len(group) != 6:
            group = [shape.index, op, [], [], [], _RAW]
            self._groups.append(group)
            self._last = group
        group[2].append(text)
        group[3].append(origin)
        group[4].append(pos)
        size = len(text) + len(origin) + 12
        self.pending += 1
        self.pending_size += size
        return size

    def take_line(self) -> bytes:
        """The queued changes as one line (newline included), and an empty queue."""
        for group in self._groups:
            if len(group) == 6:  # rows queued as JSON text: parsed and written compact
                # again in one C call each (the change log's text has spaces, which cost
                # 30 % more bytes after compression; per-value work is what is skipped)
                group[2] = json.loads("[" + ",".join(group[2]) + "]")
                del group[5]
        line = (self._dumps(self._groups) + "\n").encode("utf-8", "surrogatepass")
        self._groups = []
        self._last = None
        self.pending = 0
        self.pending_size = 0
        return line

    def decode(self, line: bytes, first: int) -> list[Change]:
        """The changes of one line whose first change is number ``first`` (from 1);
        ``Invalid`` naming the change when one is wrong."""
        changes: list[Change] = []
        self._walk(line, first, changes, None)
        return changes

    def count(self, line: bytes, first: int, counts: list[dict[str, int]]) -> int:
        """Check every change of one line as ``decode`` does, but only count them per
        table and op (``counts[table_index][op]``). Returns the number of changes."""
        return self._walk(line, first, None, counts)

    def _walk(
        self,
        line: bytes,
        first: int,
        changes: list[Change] | None,
        counts: list[dict[str, int]] | None,
    ) -> int:
        """Check each change of a line; build it or count it. Tight loops: this is where
        reading spends its time."""
        try:
            groups = json.loads(line)
        except ValueError:
            raise invalid("record", number=first) from None
        if type(groups) is not list or not groups:
            raise invalid("record", number=first)
        number = first
        append = changes.append if changes is not None else None
        for group in groups:
            shape, rows, origins, positions = self._group(group, number)
            table, op, arity, decode_row = shape.table, shape.op, shape.arity, shape.decode_row
            for i, row in enumerate(rows):
                if type(row) is not list or len(row) != arity:
                    raise invalid("record_width", number=number + i)
                try:
                    values = decode_row(row)
                except (ValueError, TypeError, ArithmeticError):
                    values = shape.decode_slowly(row, number + i)
                if append is not None:
                    if origins is None:
                        append(_change(table, op, values, "", 0, row))
                    else:
                        append(_change(table, op, values, origins[i], positions[i], row))
            if counts is not None:
                counts[shape.index][op] += len(rows)
            number += len(rows)
        return number - first

    def _group(self, group: Any, number: int) -> tuple[_Shape, list[Any], Any, Any]:
        """The shape, rows, origins and positions of a group, checked (not the rows)."""
        if type(group) is not list or len(group) not in (3, 5):
            raise invalid("record_shape", number=number)
        index, op, rows = group[0], group[1], group[2]
        shape = self._by_index.get((index, op)) if type(index) is int and type(op) is str else None
        if shape is None:
            if type(index) is not int or not 0 <= index < len(self.tables) or op not in ("U", "D"):
                raise invalid("record_table", number=number)
            shape = self._shape(index, op)
        if type(rows) is not list or not rows:
            raise invalid("record_shape", number=number)
        if len(group) == 3:
            return shape, rows, None, None
        origins, positions = group[3], group[4]
        if (
            type(origins) is not list
            or type(positions) is not list
            or not len(origins) == len(positions) == len(rows)
            or any(type(o) is not str for o in origins)
            or any(type(p) is not int or p < 0 for p in positions)
        ):
            raise invalid("record_origin", number=number)
        return shape, rows, origins, positions
