"""synchro.db.binding: each column gets values as its driver keeps them, or refuses them.

Pure functions of (dialect, kind, column type): no database here. The fidelity suite
(tests/test_fidelity_*.py) proves the same rules against the real back ends.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synchro.capture.source import snapshot_key
from synchro.db.binding import Refused, binder, row_flattener
from synchro.state.snapshots import snap_value
from synchro.values import Kind, normalise

PLUS2 = dt.timezone(dt.timedelta(hours=2))
NAN, INF = float("nan"), float("inf")


def bind(dialect: str, kind: str, column_type: str, value: Any, **kw: Any) -> Any:
    f = binder(dialect, kind, column_type, **kw)
    return value if f is None else f(value)


@pytest.mark.parametrize(
    ("dialect", "column_type", "value", "why"),
    [
        ("sqlite", "REAL", NAN, "NaN"),
        ("sqlite", "REAL", -0.0, "signe d'un zéro"),
        ("mysql", "DOUBLE", NAN, "NaN"),
        ("mysql", "DOUBLE", -INF, "l'infini"),
        ("mysql", "double", -0.0, "signe d'un zéro"),
        ("postgresql", "real", 0.1 + 2**-40, "simple précision"),
        ("mysql", "float", 0.30000000000000004, "simple précision"),
        ("postgresql", "real", 1e300, "simple précision"),
        ("postgresql", "real", 16777217.0, "simple précision"),
    ],
)
def test_floats_a_column_cannot_hold_are_refused(
    dialect: str, column_type: str, value: float, why: str
) -> None:
    with pytest.raises(Refused, match=why):
        bind(dialect, "float", column_type, value)


@pytest.mark.parametrize(
    ("dialect", "column_type", "value"),
    [
        ("sqlite", "REAL", INF),
        ("sqlite", "REAL", 0.1),  # SQLite's REAL is a double
        ("sqlite", "REAL", 5e-324),
        ("postgresql", "double precision", -0.0),
        ("postgresql", "double precision", NAN),
        ("postgresql", "real", 0.5),
        ("postgresql", "real", 0.1),  # stored 0.1f, read back "0.1"
        ("mysql", "float", 3.4e38),
        ("mysql", "double", 1e308),
    ],
)
def test_floats_a_column_holds_pass_as_they_are(
    dialect: str, column_type: str, value: float
) -> None:
    assert repr(bind(dialect, "float", column_type, value)) == repr(value)


def test_decimals_are_refused_rather_than_rounded_to_the_scale() -> None:
    assert bind("postgresql", "decimal", "numeric(12,2)", Decimal("1.50")) == Decimal("1.50")
    assert bind("mysql", "decimal", "decimal(12,2)", Decimal("-9999999999.99"))
    with pytest.raises(Refused, match="3 décimales"):
        bind("postgresql", "decimal", "numeric(12,2)", Decimal("1.005"))
    with pytest.raises(Refused, match="capacité"):
        bind("mysql", "decimal", "decimal(12,2)", Decimal("10000000000"))
    with pytest.raises(Refused, match="NaN"):
        bind("mysql", "decimal", "decimal(12,2)", Decimal("NaN"))
    assert bind("postgresql", "decimal", "numeric", Decimal("NaN")).is_nan()
    assert bind("postgresql", "decimal", "numeric", Decimal("1E+40")) == Decimal("1E+40")


def test_sqlite_decimals_are_integers_or_at_most_15_digits() -> None:
    assert bind("sqlite", "decimal", "DECIMAL(38,10)", Decimal("123456789012345678")) == (
        123456789012345678
    )
    assert bind("sqlite", "decimal", "DECIMAL(12,2)", Decimal("-0.00")) == 0
    bound = bind("sqlite", "decimal", "DECIMAL(12,2)", Decimal("12345678901234.5"))
    assert (type(bound), bound) == (float, 12345678901234.5)  # the nearest double, not text
    with pytest.raises(Refused, match=r"17 chiffres significatifs.*PostgreSQL ou MariaDB"):
        bind("sqlite", "decimal", "DECIMAL(38,10)", Decimal("1234567890123456.7"))
    with pytest.raises(Refused, match="NaN"):
        bind("sqlite", "decimal", "NUMERIC", Decimal("NaN"))


class _Slow(Decimal):
    """A Decimal that is not exactly ``Decimal``: the binders' fast paths let it through
    to the full check, so the two can be compared."""


@settings(max_examples=3000, deadline=None)
@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        Decimal, st.from_regex(r"-?[0-9]{1,18}(\.[0-9]{0,18})?(E[+-]?[0-9]{1,3})?", fullmatch=True)
    )
)
def test_sqlite_decimal_fast_path_binds_what_the_full_check_binds(value: Decimal) -> None:
    bind_decimal = binder("sqlite", Kind.DECIMAL, "DECIMAL(12,2)")
    assert bind_decimal is not None
    try:
        slow: Any = bind_decimal(_Slow(value))
    except Refused as exc:
        with pytest.raises(Refused, match=re.escape(str(exc))):
            bind_decimal(value)
        return
    fast = bind_decimal(value)
    assert (type(fast), fast) == (type(slow), slow if type(slow) is not _Slow else Decimal(slow))


def test_integers_beyond_64_bits() -> None:
    assert bind("mysql", "int", "bigint(20) unsigned", 2**64 - 1) == str(2**64 - 1)
    assert bind("sqlite", "int", "INTEGER", True) == 1
    with pytest.raises(Refused, match="64 bits"):
        bind("sqlite", "int", "INTEGER", 2**63)
    for dialect, column_type in (("postgresql", "int8"), ("mysql", "bigint(20)")):
        assert bind(dialect, "int", column_type, -(2**63)) == -(2**63)
        with pytest.raises(Refused, match="64 bits"):
            bind(dialect, "int", column_type, 2**63)
    with pytest.raises(Refused, match="64 bits"):
        bind("mysql", "int", "bigint(20) unsigned", 2**64)


def test_datetimes_keep_fractions_and_offsets_or_are_refused() -> None:
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert bind("mysql", "datetime", "datetime(6)", at) == "2024-01-02 03:04:05.123456"
    assert bind("postgresql", "datetime", "timestamp without time zone", at) is at
    aware = at.replace(tzinfo=PLUS2)
    assert bind("postgresql", "datetime", "timestamp(6) with time zone", aware) == (
        "2024-01-02 03:04:05.123456+02:00"
    )
    with pytest.raises(Refused, match="1 chiffre"):
        bind("postgresql", "datetime", "timestamp(1) without time zone", at)
    with pytest.raises(Refused, match="0 chiffre"):
        bind("mysql", "datetime", "datetime", at)
    with pytest.raises(Refused, match="fuseau horaire"):
        bind("mysql", "datetime", "datetime(6)", aware)
    with pytest.raises(Refused, match="fuseau horaire"):
        bind("postgresql", "datetime", "timestamp without time zone", aware)
    with pytest.raises(Refused, match="n'a pas de fuseau"):
        bind("postgresql", "datetime", "timestamp with time zone", at)
    with pytest.raises(Refused, match="TIMESTAMP MariaDB"):
        bind("mysql", "datetime", "timestamp", dt.datetime(1960, 1, 1))
    assert bind("mysql", "datetime", "timestamp", dt.datetime(2000, 1, 1)) == "2000-01-01 00:00:00"


def test_times_are_bound_as_text() -> None:
    t = dt.time(12, 34, 56, 789012)
    assert bind("postgresql", "time", "time without time zone", t) == "12:34:56.789012"
    assert bind("mysql", "time", "time(6)", t) == "12:34:56.789012"
    with pytest.raises(Refused, match="fraction"):
        bind("mysql", "time", "time", t)
    with pytest.raises(Refused, match="fuseau"):
        bind("postgresql", "time", "time without time zone", t.replace(tzinfo=PLUS2))


def test_nul_in_text() -> None:
    with pytest.raises(Refused, match=r"PostgreSQL.*NUL"):
        bind("postgresql", "text", "text", "a\x00b")
    with pytest.raises(Refused, match=r"SQLite \(pilote ODBC\).*NUL"):
        bind("sqlite", "text", "TEXT", "a\x00b", nul=False)
    assert binder("mysql", "text", "longtext") is None
    assert binder("sqlite", "text", "TEXT") is None


def test_text_longer_than_a_varchar_is_refused_naming_the_sizes() -> None:
    assert bind("postgresql", "text", "character varying(3)", "😀é中") == "😀é中"
    assert bind("mysql", "text", "varchar(3)", "😀é中") == "😀é中"
    with pytest.raises(Refused, match=r"4 caractères, la colonne \(varchar\(3\)\) en garde 3"):
        bind("mysql", "text", "varchar(3)", "😀é中a")
    with pytest.raises(Refused, match="en garde 3"):
        bind("postgresql", "text", "character(3)", "abcd")
    assert binder("sqlite", "text", "VARCHAR(3)") is None  # SQLite keeps any length


# -- the generated hot paths: the same values as the plain code they replace --------------

_KEY_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([Kind.INT, Kind.TEXT]), min_size=1, max_size=3),
    data=st.data(),
)
def test_a_plain_snapshot_key_is_each_value_s_snapshot_value(kinds: list[Kind], data: Any) -> None:
    """``snapshot_key`` for int and text keys is generated code with a shortcut for values
    of exactly those types; every row, odd values included (True in an int key, a number
    in a text key), gets what ``snap_value`` gives value by value: the value of its normal
    form (a row read raw has the key of the row normalised: ``Adapter.read_back(raw=True)``)."""
    width = len(kinds) + 2
    positions = data.draw(st.permutations(range(width)))[: len(kinds)]
    row = tuple(data.draw(st.lists(_KEY_VALUES, min_size=width, max_size=width)))
    pairs = list(zip(kinds, positions, strict=False))
    try:
        expected: Any = tuple(snap_value(k, row[p]) for k, p in pairs)
    except Exception as exc:  # (a value canonical cannot write: the same error)
        expected = type(exc)
    try:  # the raw value and its normal form: one key
        normal: Any = tuple(snap_value(k, normalise(k, row[p])) for k, p in pairs)
    except Exception as exc:
        normal = type(exc)
    assert normal == expected
    key = snapshot_key(kinds, positions)
    try:
        got: Any = key(row)
    except Exception as exc:
        got = type(exc)
    assert got == expected
    if expected is not type and not isinstance(expected, type):
        assert [type(v) for v in got] == [type(v) for v in expected]


def _flat(binders: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> list[Any]:
    """What the parameters were before they were generated: each value through its binder,
    None as it is."""
    return [
        v if f is None or v is None else f(v)
        for row in rows
        for f, v in zip(binders, row, strict=True)
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_the_generated_row_flattener_binds_as_each_binder_does(dialect: str) -> None:
    kinds = [Kind.TEXT, Kind.INT, Kind.DECIMAL, Kind.DATETIME, Kind.BOOL]
    stamp = {"postgresql": "timestamp"}.get(dialect, "DATETIME")
    types = ["TEXT", "INTEGER", "DECIMAL(12,2)", stamp, "BOOLEAN"]
    binders = tuple(binder(dialect, k, t) for k, t in zip(kinds, types, strict=True))
    flatten = row_flattener(binders)
    rows = [
        ("3615", 7, Decimal("12.50"), dt.datetime(1969, 7, 20, 20, 17, 40), True),
        (None, None, None, None, None),
        ("x", -(2**63), Decimal("-0.01"), dt.datetime(2100, 1, 1), False),
    ]
    assert flatten(rows) == _flat(binders, rows)
    assert [type(v) for v in flatten(rows)] == [type(v) for v in _flat(binders, rows)]
    assert row_flattener((None,))([(1,), ("a",)]) == [1, "a"]
    with pytest.raises(ValueError):  # a row of the wrong width is refused, as zip did
        flatten([("3615", 7)])
    with pytest.raises(Refused):  # a value its column cannot hold: the binder's refusal
        flatten([("3615", 2**64, None, None, None)])
