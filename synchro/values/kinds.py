"""The kinds of column values, and the Python type each kind normalises to.

A kind is a ``StrEnum``: ``Kind.INT == "int"``, so a kind read from a manifest or written
to JSON is the same text as before it was an enum. docs/TYPES.md tells the whole story.
"""

from __future__ import annotations

import datetime as dt
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from enum import StrEnum


class Kind(StrEnum):
    """What a column holds, whatever the database calls its type."""

    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    TEXT = "text"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    BLOB = "blob"
    UUID = "uuid"
    JSON = "json"


KINDS: tuple[Kind, ...] = tuple(Kind)

# The Python type each kind normalises to: a value of exactly that type is already normal
# (uuid has none: its normal form is lowercase text, which not every str is).
EXACT_TYPES: dict[str, type] = {
    Kind.INT: int,
    Kind.FLOAT: float,
    Kind.DECIMAL: Decimal,
    Kind.TEXT: str,
    Kind.BOOL: bool,
    Kind.DATE: dt.date,
    Kind.DATETIME: dt.datetime,
    Kind.TIME: dt.time,
    Kind.BLOB: bytes,
    Kind.JSON: str,
}

# normalize() rounds to the context's precision (28 digits by default): never here.
EXACT_CONTEXT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
