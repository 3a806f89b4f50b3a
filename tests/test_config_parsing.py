"""Times, durations and French dates as people type them (shared by GUI, CLI and loader)."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synchro.config.parsing import ConfigProblem, field_label
from synchro.config.store import (
    format_datetime_fr,
    format_duration,
    format_minutes,
    format_time,
    parse_datetime_fr,
    parse_duration,
    parse_minutes,
    parse_time,
)
from synchro.config.toml_writer import dumps, quote
from synchro.errors import ConfigError


def test_parse_time() -> None:
    assert parse_time("23:00") == dt.time(23, 0)
    assert parse_time("7:05") == dt.time(7, 5)
    assert parse_time(" 00:00 ") == dt.time(0, 0)
    assert parse_time("12:30:15") == dt.time(12, 30, 15)


@pytest.mark.parametrize("text", ["25:00", "23:60", "", "2300", "23h00", "-1:00", "ab:cd"])
def test_bad_time_names_the_field_and_the_form(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_time(text)
    (found,) = info.value.problems
    assert found.field == "start_time"
    assert "HH:MM" in found.expected
    assert "Heure de départ" in str(info.value)


def test_parsers_use_the_callers_field_name() -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration("4h", field="hq.max_reception")
    problem = info.value.problems[0]
    assert isinstance(problem, ConfigProblem)
    assert problem.field == "hq.max_reception"
    assert problem.label == "Temps maximum de réception"
    assert problem.found == "4h"


def test_parse_duration() -> None:
    assert parse_duration("04:00:00") == dt.timedelta(hours=4)
    assert parse_duration("48:30:05") == dt.timedelta(hours=48, minutes=30, seconds=5)
    for bad in ("4:00", "04:60:00", "04:00:60", "-01:00:00", "", "1 day"):
        with pytest.raises(ConfigError, match="HH:MM:SS"):
            parse_duration(bad)


def test_parse_minutes_like_the_manuals_field() -> None:
    assert parse_minutes("10") == dt.timedelta(minutes=10)
    assert parse_minutes(10) == dt.timedelta(minutes=10)
    assert parse_minutes("00:10:00") == dt.timedelta(minutes=10)
    assert parse_minutes("00:00:30") == dt.timedelta(seconds=30)
    for bad in ("-5", -5, "dix", "10.5", ""):
        with pytest.raises(ConfigError) as info:
            parse_minutes(bad)
        assert info.value.problems[0].field == "site_settings.retry_delay"
        assert "Temps entre tentatives" in str(info.value)


def test_parse_datetime_fr_as_in_the_report() -> None:
    assert parse_datetime_fr("06/12/2005 15:15:11") == dt.datetime(2005, 12, 6, 15, 15, 11)
    assert parse_datetime_fr("06/12/2005 15:15") == dt.datetime(2005, 12, 6, 15, 15)
    assert parse_datetime_fr("06/12/2005") == dt.datetime(2005, 12, 6)
    for bad in ("31/02/2005 10:00", "2005-12-06 15:15:11", "06/12/2005 25:00", "hier"):
        with pytest.raises(ConfigError) as info:
            parse_datetime_fr(bad)
        assert info.value.problems[0].field == "last_sync"
        assert "JJ/MM/AAAA" in str(info.value)


def test_formatting() -> None:
    assert format_datetime_fr(dt.datetime(2005, 12, 6, 15, 15, 11)) == "06/12/2005 15:15:11"
    assert format_duration(dt.timedelta(hours=4)) == "04:00:00"
    assert format_duration(dt.timedelta(days=2, seconds=5)) == "48:00:05"
    assert format_time(dt.time(23, 0)) == "23:00"
    assert format_time(dt.time(7, 5, 9)) == "07:05:09"
    assert format_minutes(dt.timedelta(minutes=10)) == "10"
    assert format_minutes(dt.timedelta(seconds=90)) == "00:01:30"


@given(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=9999)))
def test_duration_round_trip(value: dt.timedelta) -> None:
    whole = dt.timedelta(seconds=int(value.total_seconds()))
    assert parse_duration(format_duration(value)) == whole
    assert parse_minutes(format_minutes(whole)) == whole


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1)))
def test_datetime_fr_round_trip(value: dt.datetime) -> None:
    assert parse_datetime_fr(format_datetime_fr(value)) == value.replace(microsecond=0)


@given(st.times())
def test_time_round_trip(value: dt.time) -> None:
    assert parse_time(format_time(value)) == value.replace(microsecond=0)


def test_labels_come_from_the_manual() -> None:
    assert field_label("site_settings.attempts") == "Nombre de tentatives"
    assert field_label("hq.servers") == "Nombre de serveurs"
    assert field_label("hq.sites[3].code") == "Etablissement"
    assert field_label("email.login") == "Nom de connexion"
    assert field_label("site_settings.attempts", "en") == "Number of attempts"
    assert field_label("no.such.field") == ""


# -- the TOML writer -----------------------------------------------------------------------

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.lists(st.text(), max_size=4),
    st.lists(st.integers(min_value=0, max_value=70000), max_size=4),
)
flat_tables = st.dictionaries(keys, scalars, max_size=5)
documents = st.dictionaries(
    keys,
    st.one_of(
        scalars,
        flat_tables,
        st.lists(flat_tables, min_size=1, max_size=3),
        st.dictionaries(keys, st.one_of(scalars, st.lists(flat_tables, min_size=1, max_size=2))),
    ),
    max_size=6,
)


@given(documents)
def test_toml_writer_round_trips_through_tomllib(data: dict[str, object]) -> None:
    assert tomllib.loads(dumps(data)) == data


def test_toml_writer_escapes_every_awkward_character() -> None:
    text = 'a"b\\c\nd\te\x00f\x7fg\u00e9\U0001f600 ]] # = '
    assert tomllib.loads("k = " + quote(text)) == {"k": text}
    assert tomllib.loads(dumps({"a b": {"c.d": text}})) == {"a b": {"c.d": text}}


def test_toml_writer_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        dumps({"x": 1.5})
    with pytest.raises(TypeError):
        dumps({"x": [{"a": 1}, 2]})
