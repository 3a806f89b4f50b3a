"""SQLite through its ODBC driver, read as stdlib ``sqlite3`` reads it.

The SQLite ODBC driver converts what it reads to the column's declared type, and changes
values in silence on the way (measured: 4.5 in an INTEGER column as 4, 'abc' there as
NULL, 5 in a BOOLEAN as true, a datetime in a DATE column as the date, a blob in a TEXT
column as the text "X'FF00'", a REAL with 15 digits). So ``Dialect.read_term`` selects
every column as text that says its value's storage class (``tagged``), and
``Dialect.read_fixes`` turns it back into the value stdlib ``sqlite3`` gives (``untagged``)
before the value is normalised to its kind, as the stdlib adapter's are.
"""

from __future__ import annotations

from typing import Any


def tagged(col: str) -> str:
    """An SQLite value as text that says its storage class (``r``, ``i``, ``t``, ``b``), for
    the SQLite ODBC driver, whose own reads change values that are not of their column's
    declared type (4.5 in an INTEGER column as 4, 'abc' there as NULL, 5 in a BOOLEAN as
    true, a time in a DATE column dropped, a blob in a TEXT column as the text "X'FF00'")
    and REAL with 15 digits (0.1 + 0.2 as 0.3); it also types an expression by its first
    row (after an integer, 2.5 came as 2), so every branch here is text.
    A REAL is printed with 20 digits: SQLite's printf makes its digits with long double
    arithmetic, and with 17 (the most a double needs) 2,757 of 1,000,000 random doubles
    came out one double off; with 18 or 20 none did. The ``!`` flag gives every digit."""
    return (
        f"CASE typeof({col}) WHEN 'real' THEN 'r' || printf('%!.20g', {col}) "
        f"WHEN 'integer' THEN 'i' || {col} WHEN 'text' THEN 't' || {col} "
        f"WHEN 'blob' THEN 'b' || hex({col}) END"
    )


def untagged(value: Any) -> Any:
    """The value of a ``tagged`` text, of the type stdlib ``sqlite3`` gives it (None stays
    None). Text first: the most common."""
    if value.__class__ is not str or not value:
        return value
    tag = value[0]
    if tag == "t":
        return value[1:]
    if tag == "i":
        return int(value[1:])
    if tag == "r":
        return float(value[1:])  # Python's conversion is exact: the stored double
    if tag == "b":
        return bytes.fromhex(value[1:])
    return value
