"""The fast value encoders/decoders of packages agree with ``synchro.values`` exactly."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synchro import values as V
from synchro.package.manifest import Invalid, TableSchema
from synchro.package.records import RecordCodec
from synchro.package.rowcodec import (
    Unrepresentable,
    decoder,
    encoder,
    row_decoder,
    row_encoder,
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(min_value=-(2**70), max_value=2**70),
    "float": st.floats(allow_nan=False),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False, places=4),
    "text": st.text(),
    "bool": st.booleans(),
    "date": st.dates(),
    "datetime": st.datetimes() | st.datetimes(timezones=st.just(dt.UTC)),
    "time": st.times(),
    "blob": st.binary(),
    "uuid": st.uuids().map(str),
    "json": st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=8,
    ).map(lambda data: json.dumps(data, ensure_ascii=False)),
}


def through_json(kind: str, value: Any) -> Any:
    text = json.dumps(encoder(kind)(value), ensure_ascii=False)
    return decoder(kind)(json.loads(text))


@pytest.mark.parametrize("kind", V.KINDS)
@settings(derandomize=True, deadline=None)
@given(data=st.data())
def test_fast_codec_matches_values_module(kind: str, data: st.DataObject) -> None:
    value = data.draw(st.none() | STRATEGIES[kind])
    encoded = encoder(kind)(value)
    assert encoded == V.to_json(kind, value)
    assert type(encoded) is type(V.to_json(kind, value))
    back = through_json(kind, value)
    assert back == value
    assert type(back) is type(value)
    assert str(back) == str(value)
    expected = V.from_json(kind, encoded)
    assert type(decoder(kind)(encoded)) is type(expected)


@settings(derandomize=True, deadline=None)
@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans()))
def test_decoders_agree_with_values_on_any_json_scalar(value: Any) -> None:
    for kind in V.KINDS:
        try:
            expected = V.from_json(kind, value)
        except (ValueError, TypeError, ArithmeticError):
            with pytest.raises((ValueError, TypeError, ArithmeticError)):
                decoder(kind)(value)
            continue
        got = decoder(kind)(value)
        assert type(got) is type(expected)
        assert got == expected or (got != got and expected != expected)


def test_values_of_other_types_take_the_slow_path() -> None:
    assert encoder("int")(True) == 1
    assert encoder("float")(3) == 3.0
    assert encoder("decimal")(2) == "2"
    assert encoder("decimal")("1.50") == "1.50"
    assert encoder("datetime")(dt.date(2024, 1, 2)) == "2024-01-02 00:00:00"
    assert encoder("blob")(bytearray(b"ab")) == "YWI="
    assert encoder("date")("31/12/2024") == "31/12/2024"  # SQLite: any text in a DATE
    with pytest.raises(Unrepresentable):
        encoder("blob")("texte")


def line_of(codec: RecordCodec, *changes: tuple[Any, ...]) -> bytes:
    for table, op, values, origin, pos in changes:
        codec.queue(codec.encode(table, op, values, origin, pos))
    return codec.take_line()


def test_changes_are_grouped_in_order() -> None:
    codec = RecordCodec([TableSchema("t", (("id", "int"), ("d", "date")), ("id",))])
    changes = [
        ("t", "U", (1, dt.date(2024, 1, 2)), "", 0),
        ("t", "U", (2, None), "", 0),
        ("t", "D", (3,), "", 0),
        ("t", "D", (4,), "0001", 7),
        ("t", "D", (5,), "0002", 8),
        ("t", "U", (6, None), "", 0),
    ]
    line = line_of(codec, *changes)
    assert json.loads(line) == [
        [0, "U", [[1, "2024-01-02"], [2, None]]],
        [0, "D", [[3]]],
        [0, "D", [[4], [5]], ["0001", "0002"], [7, 8]],
        [0, "U", [[6, None]]],
    ]
    assert codec.pending == 0
    decoded = codec.decode(line, 1)
    assert [(c.table, c.op, c.values, c.origin, c.pos) for c in decoded] == changes
    counts = [{"U": 0, "D": 0}]
    assert codec.count(line, 1, counts) == 6
    assert counts == [{"U": 3, "D": 3}]


def test_records_are_checked() -> None:
    codec = RecordCodec([TableSchema("t", (("id", "int"), ("d", "date")), ("id",))])
    good = line_of(codec, ("t", "U", (1, dt.date(2024, 1, 2)), "", 0))
    assert [c.values for c in codec.decode(good, 1)] == [(1, dt.date(2024, 1, 2))]
    bad_lines = [
        b"[]",
        b"{}",
        b"[[]]",
        b'[[0,"U"]]',
        b'[[0,"U",[]]]',
        b'[[0,"U",[1,null]]]',
        b'[[1,"U",[[1,null]]]]',
        b'[[-1,"U",[[1,null]]]]',
        b'[[true,"U",[[1,null]]]]',
        b'[[0,"X",[[1,null]]]]',
        b'[[0,["U"],[[1,null]]]]',
        b'[[0,"U",[[1]]]]',
        b'[[0,"D",[[1,null]]]]',
        b'[[0,"U",[[1,[2]]]]]',
        b'[[0,"U",[[1,null]],[5],[0]]]',
        b'[[0,"U",[[1,null]],["a"],[-1]]]',
        b'[[0,"U",[[1,null]],["a"],[1,2]]]',
        b'[[0,"U",[[1,null]],["a"]]]',
        b'[[0,"U",[[1,null]],"a",1]]',
        b'[[0,"U",[[1,null]]]',
    ]
    for line in bad_lines:
        with pytest.raises(Invalid):
            codec.decode(line, 1)
        counts = [{"U": 0, "D": 0}]
        with pytest.raises(Invalid):
            codec.count(line, 1, counts)


def test_decimal_scale_and_surrogates_survive() -> None:
    codec = RecordCodec(
        [TableSchema("t", (("id", "int"), ("n", "decimal"), ("s", "text")), ("id",))]
    )
    row = (1, Decimal("10.500"), "a\ud800b")
    (change,) = codec.decode(line_of(codec, ("t", "U", row, "", 0)), 1)
    assert change.values == row
    assert str(change.values[1]) == "10.500"


ALL_KINDS = TableSchema("t", tuple((f"c{i}", k) for i, k in enumerate(V.KINDS)), ("c0",))


@settings(derandomize=True, deadline=None)
@given(st.tuples(*(st.none() | STRATEGIES[k] for k in V.KINDS)))
def test_compiled_row_codecs_match_the_value_codecs(row: tuple[Any, ...]) -> None:
    encoded, _ = row_encoder(V.KINDS)(row)
    assert encoded == [encoder(k)(v) for k, v in zip(V.KINDS, row, strict=True)]
    loaded = json.loads(json.dumps(encoded))
    decoded = row_decoder(V.KINDS)(loaded)
    assert decoded == tuple(decoder(k)(v) for k, v in zip(V.KINDS, loaded, strict=True))
    assert [type(v) for v in decoded] == [type(v) for v in row]


def test_odd_values_fall_back_to_the_value_codecs() -> None:
    codec = RecordCodec([ALL_KINDS])
    odd = (True, 1, "1,5", 5, 1, "hier", "31/12/2024", "midi", 7, "PAS-UN-UUID", "{pas du json")
    (change,) = codec.decode(line_of(codec, ("t", "U", odd, "", 0)), 1)
    assert change.values == tuple(
        V.from_json(k, V.to_json(k, v)) for k, v in zip(V.KINDS, odd, strict=True)
    )
