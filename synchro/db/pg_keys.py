"""PostgreSQL: a batch of keys of several columns, matched in one statement.

Through psqlODBC, PostgreSQL took up to 277 ms for 500 keys as ``(a, b) IN ((?, ?), ...)``
(the server itself 6 ms), and 6 ms every time for the same keys as a typed ``VALUES`` list
it semi-joins (``values_condition``; engine import +30 %, ``bench/bench_db.py``). Each key
value is cast to its column's type without size: nothing is rounded or cut before the
comparison.

The read-back of every applied row, the rows read before a batch and the deletes look rows
up by a batch of keys. A key of several columns went as a typed ``VALUES`` list, two
parameters a key: through psqlODBC 9.3 µs a row read back for 500 keys, half of it the
client binding 1,000 parameters, and the server planning the list every time. As one array
literal per column, unnested (``(a, b) IN (SELECT * FROM unnest(CAST(? AS t1[]), ...))``):
4.1 µs a row, the same rows (``bench/README.md``).

Only where the literal is exact by construction: key columns of integers and texts, each
value quoted with ``"`` and ``\\`` escaped — the only characters PostgreSQL's array input
reads inside quotes — and NULL as NULL (it matches nothing, as in the list). Any other
value (another type, a NUL character PostgreSQL refuses in text) sends that batch the
usual way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from synchro.db.base import Table
from synchro.values import Kind

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
_EXACT = {Kind.INT: int, Kind.TEXT: str}


def base_type(type_name: str) -> str:
    """A PostgreSQL type name as ODBC reports it, without size (``numeric(12,2)`` ->
    ``numeric``), when it is a plain name; "" for anything else (quoted or odd names)."""
    base = type_name.split("(")[0].strip()
    return base if _PLAIN.fullmatch(base) else ""


def values_condition(columns: str, table: Table, nkeys: int) -> str:
    """``WHERE`` text matching ``nkeys`` keys as a typed ``VALUES`` list (parameters: the
    keys flattened); "" when a key column's type has no plain name."""
    types = {c.name: base_type(c.type_name) for c in table.columns}
    if not all(types.get(k) for k in table.key):
        return ""
    one = "(" + ", ".join(f"CAST(? AS {types[k]})" for k in table.key) + ")"
    values = ", ".join([one] * nkeys)
    return f"({columns}) IN (SELECT * FROM (VALUES {values}) AS k)"


def array_types(table: Table) -> tuple[str, ...] | None:
    """The PostgreSQL type of each column of ``table``'s key (as ODBC names it, without
    size) when the key has several columns, all integers or texts; None otherwise."""
    if len(table.key) < 2:
        return None
    columns = {c.name: c for c in table.columns}
    types: list[str] = []
    for name in table.key:
        column = columns.get(name)
        if column is None or column.kind not in _EXACT:
            return None
        base = base_type(column.type_name)
        if not base:
            return None
        types.append(base)
    return tuple(types)


def arrays_condition(columns: str, types: Sequence[str]) -> str:
    """``WHERE`` text matching the keys of ``array_params`` (``columns``: quoted, joined)."""
    arrays = ", ".join(f"CAST(? AS {t}[])" for t in types)
    return f"({columns}) IN (SELECT * FROM unnest({arrays}))"


def array_params(table: Table, keys: Sequence[Sequence[Any]]) -> list[str] | None:
    """One array literal per key column for ``keys``; None when a value is not exactly an
    integer or a text (or holds a NUL): that batch then goes as a list."""
    kinds = {c.name: c.kind for c in table.columns}
    params: list[str] = []
    for i, name in enumerate(table.key):
        exact = _EXACT[kinds[name]]
        parts: list[str] = []
        for key in keys:
            value = key[i]
            if value is None:
                parts.append("NULL")
                continue
            if type(value) is not exact or (isinstance(value, str) and "\x00" in value):
                return None
            text = str(value).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{text}"')
        params.append("{" + ",".join(parts) + "}")
    return params
