"""synchro.values: the fast paths give exactly what the plain definitions give.

``reference_canonical`` / ``reference_row_hash`` are the original, obviously-correct
definitions (one ``canonical`` call and one ``update`` per value). The prepared hashers and
the fast paths of ``normalise`` must agree with them on every shape a driver may return,
so an unchanged row never looks changed after an optimisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synchro import values as V

_NULL = b"\x00N"
_SEP = b"\x1f"


def reference_canonical(kind: str, value: Any) -> bytes:
    if value is None:
        return _NULL
    value = V.normalise(kind, value)
    if kind == "decimal" and isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            return str(value).encode()
        text = format(value.normalize(V.EXACT_CONTEXT), "f")
        return b"0" if text in {"-0", "0"} else text.encode()
    if kind == "float" and isinstance(value, float):
        return repr(value).encode()  # the sign of a zero, nan and infinities kept
    if kind == "bool" and isinstance(value, bool):
        return b"1" if value else b"0"
    if kind == "datetime" and isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            return value.isoformat(" ").encode()
        try:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            return value.isoformat(" ").encode()
        return (utc.isoformat(" ") + "Z").encode()
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat().encode()
    if kind == "time" and isinstance(value, dt.time):
        return value.isoformat().encode()
    if kind == "json" and isinstance(value, str):
        return V.json_canonical(value).encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    return str(value).encode("utf-8", "surrogatepass")


def reference_row_hash(kinds: Sequence[str], row: Sequence[Any]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for kind, value in zip(kinds, row, strict=True):
        digest.update(reference_canonical(kind, value))
        digest.update(_SEP)
    return digest.digest()


UTC2 = dt.timezone(dt.timedelta(hours=2))
UTC = dt.UTC
UTC1 = dt.timezone(dt.timedelta(hours=1))

# Shapes drivers return, per kind: the usual type and the unusual ones.
ODD: list[tuple[str, Any]] = [
    ("int", 0),
    ("int", -(2**63)),
    ("int", True),
    ("int", "42"),
    ("int", "4.0"),
    ("int", Decimal("7")),
    ("int", 3.0),
    ("int", "pas un nombre"),
    ("int", b"\xff\xfe"),
    ("float", 1.5),
    ("float", "2.25"),
    ("float", 3),
    ("float", float("nan")),
    ("float", float("-inf")),
    ("float", -0.0),
    ("decimal", Decimal("12.50")),
    ("decimal", Decimal("-0.00")),
    ("decimal", Decimal("0E+3")),
    ("decimal", Decimal("1E+5")),
    ("decimal", Decimal("NaN")),
    ("decimal", Decimal("-Infinity")),
    ("decimal", Decimal("1234567890123456789012345678901234.5")),
    ("decimal", "12.5"),
    ("decimal", " 12.50 "),
    ("decimal", 12.5),
    ("decimal", 3),
    ("decimal", True),
    ("decimal", "abc"),
    ("text", "Café ☕ 😀"),
    ("text", "\ud800 seul"),
    ("text", ""),
    ("text", 12),
    ("text", b"octets"),
    ("bool", True),
    ("bool", 0),
    ("bool", "t"),
    ("bool", "FALSE"),
    ("bool", "peut-être"),
    ("date", dt.date(2024, 2, 29)),
    ("date", dt.datetime(2024, 2, 29, 23, 59)),
    ("date", "2024-02-29"),
    ("date", "2024-02-29 10:00:00"),
    ("date", "hier"),
    ("datetime", dt.datetime(2024, 1, 2, 3, 4, 5)),
    ("datetime", dt.datetime(2024, 1, 2, 3, 4, 5, 999999)),
    ("datetime", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC2)),
    ("datetime", dt.datetime(987, 1, 2)),
    ("datetime", dt.date(2024, 1, 2)),
    ("datetime", "2024-01-02T03:04:05.123"),
    ("datetime", "2024-01-02 03:04:05"),
    ("datetime", "demain"),
    ("time", dt.time(1, 2, 3)),
    ("time", dt.time(1, 2, 3, 500000)),
    ("time", dt.time(1, 2, 3, tzinfo=UTC2)),
    ("time", dt.timedelta(hours=25, seconds=7)),
    ("time", "10:11:12.5"),
    ("time", "midi"),
    ("blob", b"\x00\x01\xff"),
    ("blob", bytearray(b"ab")),
    ("blob", memoryview(b"cd")),
    ("blob", "texte"),
    ("datetime", dt.datetime(1, 1, 1, tzinfo=UTC2)),
    ("datetime", dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)),
    ("time", dt.timedelta(hours=1, microseconds=250)),
    ("uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
    ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("uuid", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"),
    ("uuid", b"\xa0" * 16),
    ("uuid", "pas un uuid"),
    ("json", '{"b": 1, "a": [1.0, "é"], "a": 2}'),
    ("json", "[1e2, -0, true, null]"),
    ("json", "pas du json {"),
    ("json", 12),
]


@pytest.mark.parametrize(("kind", "value"), ODD)
def test_row_hash_equals_reference_for_every_shape(kind: str, value: Any) -> None:
    for kinds, row in (
        ((kind,), (value,)),
        (("int", kind, "text"), (1, value, "x")),
        (("blob", kind), (b"z", value)),
        ((kind, kind), (value, None)),
    ):
        assert V.row_hash(kinds, row) == reference_row_hash(kinds, row)
        assert V.row_hasher(kinds)(row) == reference_row_hash(kinds, row)
    assert V.canonical(kind, value) == reference_canonical(kind, value)


@pytest.mark.parametrize(("kind", "value"), ODD)
def test_normalise_fast_path_keeps_values(kind: str, value: Any) -> None:
    out = V.normalise(kind, value)
    again = V.normalise(kind, out)
    assert type(again) is type(out)
    assert again == out or (out != out and again != again)  # NaN


def test_row_of_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError):
        V.row_hash(("int", "text"), (1,))
    with pytest.raises(ValueError):
        V.row_hasher(("int", "blob"))((1, b"x", 3))


def test_row_hash_accepts_a_list_of_kinds() -> None:
    assert V.row_hash(["int", "text"], [1, "a"]) == reference_row_hash(("int", "text"), (1, "a"))


def _outcome(func: Any, *args: Any) -> Any:
    """The result, or the exception type (both versions refuse the same odd values)."""
    try:
        return func(*args)
    except Exception as exc:
        return type(exc)


_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(),
    st.floats(),
    st.decimals(),
    st.booleans(),
    st.binary(max_size=8),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.datetimes(timezones=st.just(UTC2)),
    st.times(),
    st.uuids(),
    st.uuids().map(lambda u: str(u).upper()),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(V.KINDS), _VALUES), min_size=1, max_size=6))
def test_row_hash_equals_reference_on_random_rows(cells: list[tuple[str, Any]]) -> None:
    kinds = tuple(k for k, _ in cells)
    row = tuple(v for _, v in cells)
    assert _outcome(V.row_hash, kinds, row) == _outcome(reference_row_hash, kinds, row)
    for kind, value in cells:
        once = _outcome(V.to_json, kind, value)
        twice = _outcome(lambda k, v: V.to_json(k, V.normalise(k, v)), kind, value)
        assert repr(once) == repr(twice)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(V.KINDS), _VALUES), min_size=1, max_size=6))
def test_prepared_row_functions_equal_per_value_ones(cells: list[tuple[str, Any]]) -> None:
    kinds = tuple(k for k, _ in cells)
    row = tuple(v for _, v in cells)
    normalise_row = V.row_normaliser(kinds)
    for _ in range(2):  # the second call takes the remembered-signature path
        got = _outcome(normalise_row, row)
        want = _outcome(_normalise_each, kinds, row)
        assert repr(got) == repr(want)
        if isinstance(want, tuple):
            assert [type(v) for v in got] == [type(v) for v in want]
    got_json = _outcome(V.row_to_json(kinds), row)
    want_json = _outcome(_to_json_each, kinds, row)
    assert repr(got_json) == repr(want_json)


def _normalise_each(kinds: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(V.normalise(k, v) for k, v in zip(kinds, row, strict=True))


def _to_json_each(kinds: tuple[str, ...], row: tuple[Any, ...]) -> list[Any]:
    return [V.to_json(k, v) for k, v in zip(kinds, row, strict=True)]


def test_prepared_row_functions_refuse_a_row_of_wrong_width() -> None:
    normalise_row = V.row_normaliser(("int", "text"))
    assert normalise_row((1, None)) == (1, None)
    with pytest.raises(ValueError):
        normalise_row((1,))
    with pytest.raises(ValueError):
        V.row_to_json(("int",))((1, 2))


def _reference_as_datetime(value: str) -> Any:
    try:
        return dt.datetime.fromisoformat(value.strip().replace("T", " "))
    except ValueError:
        return value


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05",
        "2024-01-02 03:04:5 ",
        " 2024-01-02 03:04:0",
        "2024-01-02 03:04:05.250",
        "2024-01-02 03:04:05+02:00",
        "2024-13-02 03:04:05",
        "20240102T030405",
        "2024-01-02",
        "pas une date du tout",
    ],
)
def test_datetime_text_fast_path_parses_as_before(text: str) -> None:
    assert V.as_datetime(text) == _reference_as_datetime(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.datetimes().map(lambda d: d.isoformat(" ", "seconds"))))
def test_datetime_text_parses_as_before(text: str) -> None:
    assert V.as_datetime(text) == _reference_as_datetime(text)


def test_signed_zero_and_huge_int_values() -> None:
    """-0.0 and 0.0 are two values (a back end that cannot keep the sign refuses -0.0);
    an infinite value in an integer column is kept as it came instead of crashing."""
    assert V.row_hash(("float",), (-0.0,)) != V.row_hash(("float",), (0.0,))
    assert V.row_hasher(("float", "int"))((-0.0, 1)) != V.row_hasher(("float", "int"))((0.0, 1))
    assert V.canonical("float", -0.0) == b"-0.0"
    assert V.canonical("float", float("nan")) == b"nan"
    assert V.canonical("float", float("-inf")) == b"-inf"
    assert V.normalise("int", "inf") == "inf"


def test_canonical_keeps_everything_a_value_holds() -> None:
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert V.canonical("datetime", at) == b"2024-01-02 03:04:05.123456"
    assert V.canonical("datetime", at.replace(microsecond=0)) == b"2024-01-02 03:04:05"
    assert V.canonical("time", dt.time(1, 2, 3, 4)) == b"01:02:03.000004"
    assert V.canonical("decimal", Decimal("-0.00")) == V.canonical("decimal", Decimal("0"))
    assert V.canonical("decimal", Decimal("1.10")) == b"1.1"
    assert V.canonical("decimal", Decimal("12345678901234567890.0123456789")) == (
        b"12345678901234567890.0123456789"
    )


def test_aware_datetimes_hash_as_their_instant_naive_ones_as_they_are() -> None:
    here = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC2)
    utc = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC)
    naive = dt.datetime(2024, 6, 1, 10, 0)
    assert V.canonical("datetime", here) == V.canonical("datetime", utc) == b"2024-06-01 10:00:00Z"
    assert V.canonical("datetime", naive) != V.canonical("datetime", utc)
    assert V.canonical("datetime", "2024-06-01 12:00+02:00") == b"2024-06-01 10:00:00Z"
    assert V.to_json("datetime", here) == "2024-06-01 12:00:00+02:00"  # travels with its offset
    assert V.from_json("datetime", V.to_json("datetime", here)).utcoffset() == here.utcoffset()


def test_a_value_of_another_kind_is_converted_only_when_exact() -> None:
    """A decimal arriving in an integer or float column is converted only when nothing is
    lost; otherwise it stays as it came, so the write or its verification says why."""
    assert V.normalise("int", Decimal("7.00")) == 7
    assert V.normalise("int", "4.0") == 4
    assert V.normalise("int", Decimal("4.5")) == Decimal("4.5")
    assert V.normalise("int", 3.5) == 3.5
    assert V.normalise("float", Decimal("0.10")) == 0.1
    assert V.normalise("float", "0.10000000000000001") == 0.1  # SQLite ODBC's 17 digits
    assert V.normalise("date", dt.datetime(2024, 2, 29)) == dt.date(2024, 2, 29)
    assert V.normalise("date", "2024-02-29 00:00:00") == dt.date(2024, 2, 29)
    assert V.normalise("date", "2024-02-29 10:00:00") == dt.datetime(2024, 2, 29, 10)
    assert V.canonical("date", "2024-02-29 10:00") != V.canonical("date", dt.date(2024, 2, 29))
    assert V.normalise("bool", 1) is True and V.normalise("bool", 5) == 5
    assert V.normalise("text", b"\xff\x00") == b"\xff\x00"
    assert V.normalise("text", 12) == "12"
    precise = Decimal("0.10000000000000000001")
    assert V.normalise("float", precise) is precise
    assert V.canonical("float", precise) != V.canonical("float", 0.1)


def test_uuid_is_lowercase_text_and_json_compares_as_data() -> None:
    upper = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
    assert V.normalise("uuid", upper) == upper.lower()
    assert V.canonical("uuid", upper) == upper.lower().encode()
    jsonb = '{"a": 3, "b": 1}'  # what PostgreSQL's jsonb keeps of the text below
    assert V.canonical("json", '{"b":1,"a":2,"a":3}') == V.canonical("json", jsonb)
    assert V.canonical("json", '{"x": 1.0}') == V.canonical("json", '{"x":1}')
    assert V.canonical("json", '{"x": 1}') != V.canonical("json", '{"x": "1"}')
    assert V.canonical("json", "pas du json") != V.canonical("json", '"pas du json"')
    assert V.to_json("json", '{"b":1,"a":2}') == '{"b":1,"a":2}'  # the text travels as it is


def test_a_kind_is_its_text_on_disk_and_in_comparisons() -> None:
    """``Kind`` is a StrEnum: manifests, JSON and string comparisons see the same text."""
    import json

    assert V.Kind.DECIMAL == "decimal" and "decimal" in V.KINDS
    assert json.dumps([V.Kind.INT, V.Kind.JSON]) == '["int", "json"]'
    assert f"{V.Kind.DATETIME}" == "datetime" and str(V.Kind.BLOB) == "blob"
    names = "int float decimal text bool date datetime time blob uuid json"
    assert [k.value for k in V.KINDS] == names.split()
    assert V.row_hash([V.Kind.INT, V.Kind.TEXT], [1, "a"]) == V.row_hash(["int", "text"], [1, "a"])


# Pairs ``==`` calls equal whose canonical forms may differ, and pairs that are the same.
_LOOK_ALIKE: list[tuple[str, Any, Any]] = [
    ("int", 1, 1.0),
    ("int", 1, True),
    ("int", 10**30, 10**30),
    ("float", 0.0, -0.0),
    ("float", 1.0, 1),
    ("float", 2.5, 2.5),
    ("float", float("nan"), float("nan")),
    ("float", float("inf"), float("inf")),
    ("decimal", Decimal("1.0"), Decimal("1.00")),
    ("decimal", Decimal("-0"), Decimal("0")),
    ("decimal", Decimal("1E+2"), Decimal("100")),
    ("decimal", Decimal("1"), 1),
    ("decimal", Decimal("sNaN"), Decimal("1")),
    ("decimal", Decimal("1"), Decimal("sNaN")),
    ("decimal", Decimal("NaN"), Decimal("NaN")),
    ("text", "é", "é"),
    ("text", "e\u0301", "é"),
    ("text", "\ud800 seul", "\ud800 seul"),
    ("text", "1", 1),
    ("text", "ab", b"ab"),
    ("blob", b"\x00a", b"\x00a"),
    ("blob", b"ab", bytearray(b"ab")),
    ("bool", True, 1),
    ("bool", False, False),
    ("date", dt.date(1900, 1, 1), dt.datetime(1900, 1, 1)),
    ("date", dt.date(2100, 12, 31), dt.date(2100, 12, 31)),
    ("datetime", dt.datetime(2024, 1, 2, 3), dt.datetime(2024, 1, 2, 3)),
    ("datetime", dt.datetime(2024, 1, 2, 3, tzinfo=UTC2), dt.datetime(2024, 1, 2, 1, tzinfo=UTC)),
    ("datetime", dt.datetime(1, 1, 1, 1, tzinfo=UTC2), dt.datetime(1, 1, 1, 1, tzinfo=UTC2)),
    # one instant before year 1 in UTC: == says equal, canonical keeps each offset
    ("datetime", dt.datetime(1, 1, 1, 1, tzinfo=UTC2), dt.datetime(1, 1, 1, tzinfo=UTC1)),
    ("datetime", dt.datetime(2024, 1, 2, 3), dt.datetime(2024, 1, 2, 3, tzinfo=dt.UTC)),
    ("datetime", dt.datetime(2024, 1, 2, 3, fold=1), dt.datetime(2024, 1, 2, 3)),
    ("time", dt.time(1, 2, 3), dt.time(1, 2, 3)),
    ("time", dt.time(3, tzinfo=UTC2), dt.time(1, tzinfo=dt.UTC)),
    ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
    ("json", '{"a": 1}', '{"a":1}'),
]


def _canonical_or_error(kind: str, value: Any) -> Any:
    return _outcome(V.canonical, kind, value)


@pytest.mark.parametrize(("kind", "a", "b"), _LOOK_ALIKE)
def test_rows_are_called_the_same_only_when_their_canonical_forms_are(
    kind: str, a: Any, b: Any
) -> None:
    """``row_sameness`` lets the verified apply skip hashing a read-back row; it must never
    call two rows the same when their digests differ."""
    same = V.row_sameness((kind, "int"))
    for left, right in ((a, b), (b, a)):
        if same((left, 7), (right, 7)):
            assert _canonical_or_error(kind, left) == _canonical_or_error(kind, right)
            assert V.row_hasher((kind, "int"))((left, 7)) == V.row_hasher((kind, "int"))((right, 7))


def test_rows_of_the_usual_types_are_proven_the_same_without_hashing() -> None:
    """The fast path fires for what a read-back usually gives (equal values, distinct
    objects), and not when one column differs."""
    kinds = ("text", "int", "int", "decimal", "datetime", "date", "time", "float", "bool", "blob")
    row = (
        "vente n°1 — 北京",
        10**12,
        -3,
        Decimal("12.30"),
        dt.datetime(1969, 7, 20, 20, 17, 40, 5),
        dt.date(2040, 2, 29),
        dt.time(23, 59, 59, 999999),
        1e-300,
        False,
        b"\x00\xff\x00",
    )
    sent = json.loads(json.dumps([V.to_json(k, v) for k, v in zip(kinds, row, strict=True)]))
    copy = tuple(V.from_json(k, v) for k, v in zip(kinds, sent, strict=True))
    assert all(copy[i] is not row[i] for i in (0, 3, 4, 5, 6, 9))  # equal, not the same objects
    same = V.row_sameness(kinds)
    assert same(row, copy)
    assert same((None,) * len(kinds), (None,) * len(kinds))
    for i in range(len(kinds)):
        changed = list(copy)
        changed[i] = None
        assert not same(row, tuple(changed)), kinds[i]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(V.KINDS), _VALUES, _VALUES), min_size=1, max_size=5),
    st.booleans(),
)
def test_rows_called_the_same_hash_the_same_on_random_values(
    cells: list[tuple[str, Any, Any]], copy: bool
) -> None:
    kinds = tuple(k for k, _, _ in cells)
    left = tuple(V.normalise(k, a) if copy else a for k, a, _ in cells)
    right = tuple(a if copy else b for _, a, b in cells)
    if V.row_sameness(kinds)(left, right):
        assert _outcome(V.row_hash, kinds, left) == _outcome(V.row_hash, kinds, right)


_KEY_VALUES = st.one_of(
    st.integers(),
    st.text(),  # lone surrogates and control characters included
    st.floats(),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False).map(str),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_KEY_VALUES, max_size=4), st.lists(_KEY_VALUES, max_size=4))
def test_the_prepared_json_encoders_write_what_json_dumps_writes(
    key: list[Any], row: list[Any]
) -> None:
    """A key's text names it in the change log, conflicts and quarantine, where it is
    compared as text with entries written before: the prepared C encoders must write
    exactly what ``json.dumps`` wrote."""
    from synchro.state import key_json

    assert key_json(tuple(key)) == json.dumps(key, ensure_ascii=False, separators=(",", ":"))
    assert V.json_text_encoder(compact=True)(row) == json.dumps(
        row, ensure_ascii=False, separators=(",", ":")
    )
    assert V.json_text_encoder()(row) == json.dumps(row, ensure_ascii=False)


# Values as SQLite returns them before ``normalise`` (a DECIMAL as an integer or a real,
# dates as text, a BOOLEAN as 0/1): the hashers take a fast path for these shapes
# (``hashing._RAW_TEXTS``), which must give the digest of the normalised value.
RAW = [
    *[("decimal", v) for v in (0, -7, 10**30, 120, 12.5, 120.0, -0.0, 0.0, 0.001, 1e-05)],
    *[("decimal", v) for v in (1e16, 123456789012345.67, 5e-324, float("nan"), float("-inf"))],
    *[("bool", v) for v in (0, 1, 5, -1, 2**70)],
    *[
        ("datetime", v)
        for v in (
            "2026-11-01 00:00:00",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.999999",
            "2026-11-01 10:00:00.500000",
            "2026-11-01 10:00:00.000000",
            "2026-13-01 10:00:00",
            "2026-02-30 10:00:00",
            "2026-11-01 24:00:00",
            "2026-11-01 23:59:60",
            "0000-01-01 00:00:00",
            "2026-11-01T10:00:00",
            "2026-11-01 10:00:00.5",
            "2026-11-01 10:00:00+01:00",
            "٢٠٢٦-١١-٠١ 10:00:00",
            " 2026-11-01 10:00:00",
        )
    ],
    *[
        ("date", v)
        for v in (
            *("2026-11-01", "2026-02-30", "0000-01-01", "2026-W01-1"),
            *(" 2026-11-01", "2026-11-01 ", "١٢٣٤-01-01"),
        )
    ],
]


@pytest.mark.parametrize(("kind", "value"), RAW)
def test_values_as_read_hash_as_their_normal_form(kind: str, value: Any) -> None:
    hasher = V.row_hasher((kind, "text"))
    assert hasher((value, "x")) == reference_row_hash((kind, "text"), (value, "x"))
    assert hasher((value, "x")) == hasher((V.normalise(kind, value), "x"))


@settings(max_examples=300, deadline=None)
@given(
    st.floats(),
    st.integers(),
    st.datetimes(),
    st.dates(),
    st.from_regex(r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\Z"),
)
def test_random_values_as_read_hash_as_their_normal_form(
    real: float, whole: int, moment: dt.datetime, day: dt.date, pattern: str
) -> None:
    stored = moment.isoformat(" ")  # as the binder writes a datetime into SQLite
    kinds = ("decimal", "decimal", "bool", "datetime", "datetime", "date")
    row = (real, whole, whole, stored, pattern, day.isoformat())
    normal = tuple(V.normalise(k, v) for k, v in zip(kinds, row, strict=True))
    assert V.row_hasher(kinds)(row) == reference_row_hash(kinds, row)
    assert V.row_hasher(kinds)(row) == V.row_hasher(kinds)(normal)
