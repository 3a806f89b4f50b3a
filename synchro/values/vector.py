"""Row digests of whole column batches (Arrow), equal to ``row_hasher``'s, bit for bit.

The columnar data plane (issue 13) reads rows as Arrow record batches. Its digests are
stored in the same snapshots and summed into the same per-table checksums as the per-row
engine's, and compared with other nodes' that may still hash row by row: so they must be
the very same digests, blake2b-16 over each column's canonical form followed by ``\\x1f``
(``synchro.values.hashing``), and no group-wide change of digest is needed.

``column_forms(kind, column)`` gives each value's canonical form (``canonical``) as Arrow
``large_binary``. A vector kernel covers the usual Arrow type(s) of each kind, and only
values it can prove it writes exactly as ``canonical`` does (a date text is taken as it is
only when it is strictly ``YYYY-MM-DD`` and Arrow's strict parser accepts it; a decimal
read as a double only when its shortest text has no exponent...). Everything else — odd
types, odd texts, uuid and json, floats (Arrow's shortest text is not Python's ``repr``) —
goes value by value through the per-row engine's own helper, so what is not vectorised is
still exact. ``batch_digests`` joins the forms of a row and hashes each row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from synchro.values.canonical import NULL, SEP
from synchro.values.convert import single_read_back
from synchro.values.hashing import value_canon
from synchro.values.kinds import Kind

FORM = pa.large_binary()
_NULL = pa.scalar(NULL, FORM)
_SEP = pa.scalar(SEP, FORM)
_EMPTY = pa.scalar(b"", FORM)
_BLOB_PREFIX = pa.scalar(b"b", FORM)

# Texts the per-row engine reads back unchanged as the kind's value (``fromisoformat`` then
# ``isoformat``): exactly these shapes, with the fraction cut when it is all zeros.
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME_TEXT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$"
_TIME_TEXT = r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{6})?$"
_PLAIN_NUMBER = r"^-?\d+(\.\d+)?$"

Column = Any  # pa.Array | pa.ChunkedArray (pyarrow has no type hints)


def _per_value(kind: Kind, column: pa.Array) -> pa.Array:
    """Every value through the per-row engine's canonical helper (exact by definition).

    A 4-byte float is taken as the adapters read it back: the double of its shortest
    text (``single_read_back``: 0.1, not 0.10000000149011612)."""
    canon = value_canon(kind)
    values = column.to_pylist()
    if pa.types.is_float32(column.type) or pa.types.is_float16(column.type):
        values = [v if v is None else single_read_back(v) for v in values]
    return pa.array([canon(v) for v in values], FORM)


def _patched(kind: Kind, column: pa.Array, forms: pa.Array, ok: pa.Array) -> pa.Array:
    """``forms`` where ``ok``, the per-value form elsewhere (rare values only)."""
    if pc.all(ok).as_py() is not False:
        return forms
    canon = value_canon(kind)
    out = forms.to_pylist()
    values = column.to_pylist()
    for i, good in enumerate(ok.to_pylist()):
        if not good:
            out[i] = canon(values[i])
    return pa.array(out, FORM)


def _as_forms(texts: pa.Array) -> pa.Array:
    """Texts (or bytes) as canonical forms: binary, NULL written as ``canonical`` does."""
    return pc.fill_null(texts.cast(FORM), _NULL)


def _cut_zero_fraction(texts: pa.Array) -> pa.Array:
    """``isoformat`` writes no fraction when the microseconds are 0."""
    return pc.replace_substring_regex(texts, pattern=r"\.000000$", replacement="")


def _decimal_digits(texts: pa.Array) -> pa.Array:
    """``decimal_text`` on plain decimal texts: no trailing fraction zeros, no ``-0``."""
    cut = pc.replace_substring_regex(texts, pattern=r"\.?0+$", replacement="")
    cut = pc.if_else(pc.match_substring(texts, "."), cut, texts)
    return pc.if_else(pc.equal(cut, "-0"), pa.scalar("0"), cut)


def _strict_texts(texts: pa.Array, pattern: str, parse_type: pa.DataType | None) -> bool:
    """True when every non-null text has exactly ``pattern``'s shape, a year other than
    0000, and Arrow's strict parser reads it as ``parse_type`` (a real calendar day)."""
    shaped = pc.match_substring_regex(texts, pattern)
    if pc.all(pc.fill_null(shaped, True)).as_py() is False:
        return False
    if parse_type is None:
        return True
    year0 = pc.equal(pc.utf8_slice_codeunits(texts, 0, 4), "0000")
    if pc.any(pc.fill_null(year0, False)).as_py():
        return False
    try:
        pc.cast(texts, parse_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _ints(kind: Kind, column: pa.Array) -> pa.Array:
    return _as_forms(pc.cast(column, pa.string()))


def _text(kind: Kind, column: pa.Array) -> pa.Array:
    return _as_forms(column)


def _decimal(kind: Kind, column: pa.Array) -> pa.Array:
    typ = column.type
    if pa.types.is_integer(typ):
        return _ints(kind, column)
    texts = pc.cast(column, pa.string())
    if pa.types.is_float64(typ):
        # SQLite's REAL in a DECIMAL column: Arrow's shortest digits are repr's, never with
        # trailing fraction zeros; taken only when written without exponent (nor inf, nan).
        odd = pc.or_(pc.match_substring(texts, "e"), pc.match_substring(texts, "n"))
        plain = pc.if_else(pc.equal(texts, "-0"), pa.scalar("0"), texts)
        return _patched(kind, column, _as_forms(plain), pc.invert(pc.fill_null(odd, False)))
    if pa.types.is_decimal(typ):  # Arrow writes some decimals with an exponent (1E-10)
        ok = pc.fill_null(pc.match_substring_regex(texts, _PLAIN_NUMBER), True)
        return _patched(kind, column, _as_forms(_decimal_digits(texts)), ok)
    return _per_value(kind, column)


def _bool(kind: Kind, column: pa.Array) -> pa.Array:
    if not pa.types.is_boolean(column.type):
        return _per_value(kind, column)
    return _as_forms(pc.if_else(column, pa.scalar("1"), pa.scalar("0")))


def _date(kind: Kind, column: pa.Array) -> pa.Array:
    typ = column.type
    if pa.types.is_date(typ):
        return _as_forms(pc.cast(column, pa.string()))
    if _strict_texts(column, _DATE_TEXT, pa.date32()):  # text: the kernel takes no other type
        return _as_forms(column)
    return _per_value(kind, column)


def _datetime(kind: Kind, column: pa.Array) -> pa.Array:
    typ = column.type
    if pa.types.is_timestamp(typ) and typ.tz is None and typ.unit != "ns":
        texts = pc.cast(pc.cast(column, pa.timestamp("us")), pa.string())
        return _as_forms(_cut_zero_fraction(texts))
    if pa.types.is_timestamp(typ):  # aware (UTC instant + "Z") or ns: per value
        return _per_value(kind, column)
    if _strict_texts(column, _DATETIME_TEXT, pa.timestamp("us")):
        return _as_forms(_cut_zero_fraction(column))
    return _per_value(kind, column)


def _time(kind: Kind, column: pa.Array) -> pa.Array:
    typ = column.type
    if pa.types.is_time(typ) and typ.unit != "ns":
        texts = pc.cast(pc.cast(column, pa.time64("us")), pa.string())
        return _as_forms(_cut_zero_fraction(texts))
    if pa.types.is_time(typ):
        return _per_value(kind, column)
    if _strict_texts(column, _TIME_TEXT, None):
        return _as_forms(_cut_zero_fraction(column))
    return _per_value(kind, column)


def _blob(kind: Kind, column: pa.Array) -> pa.Array:
    typ = column.type
    if not (pa.types.is_binary(typ) or pa.types.is_large_binary(typ)):
        return _per_value(kind, column)
    prefixed = pc.binary_join_element_wise(_BLOB_PREFIX, column.cast(FORM), _EMPTY)
    return pc.fill_null(prefixed, _NULL)


def _is_type(*tests: Callable[[pa.DataType], bool]) -> Callable[[pa.DataType], bool]:
    return lambda typ: any(test(typ) for test in tests)


_is_text = _is_type(pa.types.is_string, pa.types.is_large_string)

# Per kind: which Arrow types its kernel takes, and the kernel; any other type per value.
_KERNELS: dict[Kind, tuple[Callable[[pa.DataType], bool], Callable[[Kind, pa.Array], pa.Array]]] = {
    Kind.INT: (pa.types.is_integer, _ints),
    Kind.TEXT: (_is_text, _text),
    Kind.DECIMAL: (
        _is_type(pa.types.is_integer, pa.types.is_decimal, pa.types.is_floating),
        _decimal,
    ),
    Kind.BOOL: (pa.types.is_boolean, _bool),
    Kind.DATE: (_is_type(pa.types.is_date, _is_text), _date),
    Kind.DATETIME: (_is_type(pa.types.is_timestamp, _is_text), _datetime),
    Kind.TIME: (_is_type(pa.types.is_time, _is_text), _time),
    Kind.BLOB: (_is_type(pa.types.is_binary, pa.types.is_large_binary), _blob),
}


def column_forms(kind: Kind, column: Column) -> pa.Array:
    """The canonical form of every value of ``column`` (``canonical(kind, value)``), as
    ``large_binary`` with no nulls; exact for every value (see the module's text)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return pa.array([NULL] * len(column), FORM)
    kernel = _KERNELS.get(kind)
    if kernel is None or not kernel[0](column.type):
        return _per_value(kind, column)
    return kernel[1](kind, column)


def batch_digests(kinds: Sequence[Kind], columns: Sequence[Column]) -> list[bytes]:
    """``row_hasher(kinds)(row)`` for every row of these columns (same digests)."""
    if len(kinds) != len(columns):
        raise ValueError(f"{len(columns)} columns for {len(kinds)} kinds")
    if not columns:
        return []
    return _digests([column_forms(k, c) for k, c in zip(kinds, columns, strict=True)])


def _digests(forms: Sequence[Any]) -> list[bytes]:
    """blake2b-16 of each row's forms, each followed by the separator (``row_hasher``)."""
    joined = pc.binary_join_element_wise(*forms, _EMPTY, _SEP)
    blake2b = hashlib.blake2b
    return [blake2b(data, digest_size=16).digest() for data in _each(joined)]


def _each(forms: pa.Array) -> Any:
    """The bytes of each value of a ``large_binary`` array without making a list first."""
    offsets_buf, data_buf = forms.buffers()[1], forms.buffers()[2]
    offsets = memoryview(offsets_buf).cast("q")[forms.offset : forms.offset + len(forms) + 1]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    start = offsets[0]
    for end in offsets[1:]:
        yield data[start:end]
        start = end
