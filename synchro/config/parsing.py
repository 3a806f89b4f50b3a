"""Text ↔ value for the settings people type: times, durations, French dates.

The GUI, the CLI and the settings loader share these, so a bad ``25:00`` reads the same
everywhere: ``parse_*`` raise ``ConfigError`` whose one problem names the field (dotted path
plus the manual's label, e.g. ``site_settings.attempts`` / *Nombre de tentatives*) and the
expected form. Forms:

- time ``HH:MM`` (``23:00``; ``HH:MM:SS`` accepted) — *Heure de départ*
- duration ``HH:MM:SS`` (``04:00:00``, hours may exceed 24) — *Temps maximum de réception*
- minutes ``10`` or ``HH:MM:SS`` — *Temps entre tentatives*
- French date ``JJ/MM/AAAA HH:MM[:SS]`` (``06/12/2005 15:15:11``) — *Dernière synchronisation*
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from synchro.errors import ConfigError, FieldProblem, Say, is_say
from synchro.i18n import render, tr

# What a field expects, as words of synchro/locales/config.json (``render(EXPECT_TIME)``).
EXPECT_TIME: Say = ("config.expect.time", {})
EXPECT_DURATION: Say = ("config.expect.duration", {})
EXPECT_MINUTES: Say = ("config.expect.minutes", {})
EXPECT_DATETIME_FR: Say = ("config.expect.datetime_fr", {})
EXPECT_DATETIME_ISO: Say = ("config.expect.datetime_iso", {})

_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DURATION = re.compile(r"(\d{1,4}):(\d{2}):(\d{2})")
_DATETIME_FR = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True, init=False)
class ConfigProblem(FieldProblem):
    """A ``FieldProblem`` that also carries the label the user sees on screen (French; its
    words are ``config.field.<path>``): « Label (path) : expected (trouvé : « found ») »."""

    label: str = ""

    def __init__(
        self,
        field: str,
        expected: str | Say,
        found: str = "",
        label: str = "",
        *,
        name: Say | None = None,
    ) -> None:
        super().__init__(field, expected, found, name=name)
        object.__setattr__(self, "label", label)

    @property
    def say(self) -> Say:
        shown: object = self.shown_name()
        if self.label:
            key = label_key(self.field)
            words: object = [(key, {})] if tr(key) == self.label else self.label
            shown = [("config.problem.labelled", {"label": words, "field": self.field})]
        values: dict[str, Any] = {"field": shown, "expected": self.shown_expected()}
        if not self.found:
            return ("config.problem", values)
        return ("config.problem.found_quoted", {**values, "found": self.found})


class Bad(ValueError):
    """Internal: a value does not have the expected form (``expected`` says which: French
    text or words of the locales)."""

    def __init__(self, expected: str | Say, found: object = "") -> None:
        super().__init__(render(expected, "fr") if is_say(expected) else expected)
        self.expected = expected
        self.found = show(found)


def show(value: object) -> str:
    """A short printable form of a found value for messages."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def label_key(path: str) -> str:
    """The key of a settings field's label in the locales (``config.field.hq.sites.code``)."""
    return "config.field." + _INDEX.sub("", path)


def field_label(path: str, lang: str = "fr") -> str:
    """The on-screen label of a settings field (``hq.sites[2].code`` → *Etablissement*)."""
    key = label_key(path)
    text = tr(key, lang)
    return "" if text == key else text


def problem(
    field: str, expected: str | Say, found: object = "", *, name: Say | None = None
) -> ConfigProblem:
    """A bad field named by its path (and its label); ``name``: the words of a field that
    is no settings key (``fichier``)."""
    return ConfigProblem(field, expected, show(found), field_label(field), name=name)


def _raise(field: str, bad: Bad) -> ConfigError:
    return ConfigError([problem(field, bad.expected, bad.found)])


# -- values (raise Bad) --------------------------------------------------------------------


def time_value(text: object) -> dt.time:
    if isinstance(text, dt.time):
        return text
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise Bad(EXPECT_TIME, text)
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise Bad(EXPECT_TIME, text)
    return dt.time(hours, minutes, seconds)


def duration_value(text: object) -> dt.timedelta:
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise Bad(EXPECT_DURATION, text)
    hours, minutes, seconds = (int(g) for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise Bad(EXPECT_DURATION, text)
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def minutes_value(value: object) -> dt.timedelta:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise Bad(EXPECT_MINUTES, value)
        return dt.timedelta(minutes=value)
    if isinstance(value, str) and value.strip().isdigit():
        return dt.timedelta(minutes=int(value.strip()))
    try:
        return duration_value(value)
    except Bad:
        raise Bad(EXPECT_MINUTES, value) from None


def datetime_fr_value(text: object) -> dt.datetime:
    match = _DATETIME_FR.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise Bad(EXPECT_DATETIME_FR, text)
    day, month, year, hour, minute, second = (int(g or 0) for g in match.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise Bad(EXPECT_DATETIME_FR, text) from None


def iso_datetime_value(value: object) -> dt.datetime:
    """ISO text (what the file stores) or a TOML datetime; French text is accepted too."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise Bad(EXPECT_DATETIME_ISO, value)
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        pass
    try:
        return datetime_fr_value(value)
    except Bad:
        raise Bad(EXPECT_DATETIME_ISO, value) from None


# -- public parsers (raise ConfigError) ------------------------------------------------------


def parse_time(text: str, field: str = "start_time") -> dt.time:
    """``"23:00"`` → ``time(23, 0)``; ``ConfigError`` naming ``field`` otherwise."""
    try:
        return time_value(text)
    except Bad as bad:
        raise _raise(field, bad) from None


def parse_duration(text: str, field: str = "hq.max_reception") -> dt.timedelta:
    """``"04:00:00"`` → 4 hours; ``ConfigError`` naming ``field`` otherwise."""
    try:
        return duration_value(text)
    except Bad as bad:
        raise _raise(field, bad) from None


def parse_minutes(text: str | int, field: str = "site_settings.retry_delay") -> dt.timedelta:
    """``"10"`` (minutes, as on the manual's screen) or ``"00:10:00"`` → 10 minutes."""
    try:
        return minutes_value(text)
    except Bad as bad:
        raise _raise(field, bad) from None


def parse_datetime_fr(text: str, field: str = "last_sync") -> dt.datetime:
    """``"06/12/2005 15:15:11"`` (seconds optional; a date alone means midnight)."""
    try:
        return datetime_fr_value(text)
    except Bad as bad:
        raise _raise(field, bad) from None


# -- formatting ----------------------------------------------------------------------------


def format_datetime_fr(value: dt.datetime) -> str:
    """``06/12/2005 15:15:11``, the manual's report form."""
    return value.strftime("%d/%m/%Y %H:%M:%S")


def format_duration(value: dt.timedelta) -> str:
    """``04:00:00``; whole seconds (fractions are dropped), hours may exceed 24."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"


def format_time(value: dt.time) -> str:
    """``23:00``; ``HH:MM:SS`` only when the seconds are not zero."""
    if value.second:
        return value.strftime("%H:%M:%S")
    return value.strftime("%H:%M")


def format_minutes(value: dt.timedelta) -> str:
    """``10`` for whole minutes (the manual's field), else ``HH:MM:SS``."""
    seconds = int(value.total_seconds())
    return str(seconds // 60) if seconds >= 0 and seconds % 60 == 0 else format_duration(value)
