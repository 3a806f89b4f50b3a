"""Reading what the user typed: one ``Form`` per window, every bad field named at once.

Each reader takes the element key, the label key (the field's name on screen) and the raw
text; it returns the parsed value, or a placeholder while noting a problem. ``check()``
then raises ``FormError`` listing every bad field with the expected form, in the UI
language, so a window shows one message and saves nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from synchro.errors import ErrorKind, SynchroError
from synchro.i18n import tr
from synchro.names import is_site_code, split_address

DATE_FORMAT = "%d/%m/%Y %H:%M:%S"
_HOST = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_IPV6 = re.compile(r"^\[?[0-9A-Fa-f:]+\]?$")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_TIME = re.compile(r"^(\d{1,2})[:hH](\d{2})(?::(\d{2}))?$")
_DURATION = re.compile(r"^(\d{1,3}):(\d{2})(?::(\d{2}))?$")
_DATETIME = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


@dataclass(frozen=True)
class Problem:
    key: str  # element key of the bad field
    text: str  # "Heure de départ : une heure HH:MM (ex. 23:00)"


class FormError(SynchroError):
    """Some fields are wrong; ``problems`` names each one. Nothing has been saved."""

    default_kind = ErrorKind.CONFIG

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.text for p in problems))


def format_datetime(value: dt.datetime | None) -> str:
    return value.strftime(DATE_FORMAT) if value else ""


def format_time(value: dt.time) -> str:
    return value.strftime("%H:%M")


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def format_size(n: int, lang: str) -> str:
    """1 234 567 → "1,2 Mo" (fr) / "1.2 MB" (en)."""
    units = ("o", "Ko", "Mo", "Go", "To") if lang == "fr" else ("B", "KB", "MB", "GB", "TB")
    size = float(n)
    for unit in units:
        if size < 1024 or unit == units[-1]:
            text = f"{size:.0f}" if unit == units[0] else f"{size:.1f}"
            return f"{text.replace('.', ',') if lang == 'fr' else text} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_count(n: int, lang: str) -> str:
    """12345 → "12 345" (fr) / "12,345" (en)."""
    text = f"{n:,}"
    return text.replace(",", "\u202f") if lang == "fr" else text


class Form:
    """Collects the problems of one window's fields while reading them."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.problems: list[Problem] = []

    def bad(self, key: str, label: str, expected: str) -> None:
        field = tr(label, self.lang)
        self.problems.append(
            Problem(
                key,
                tr("gui.field.problem", self.lang, field=field, expected=tr(expected, self.lang)),
            )
        )

    def bad_text(self, key: str, label: str, expected_text: str) -> None:
        field = tr(label, self.lang)
        self.problems.append(
            Problem(key, tr("gui.field.problem", self.lang, field=field, expected=expected_text))
        )

    def check(self) -> None:
        if self.problems:
            raise FormError(self.problems)

    def integer(self, key: str, label: str, raw: object, lo: int, hi: int) -> int:
        text = str(raw or "").strip()
        if re.fullmatch(r"\d{1,9}", text) and lo <= int(text) <= hi:
            return int(text)
        self.bad_text(key, label, tr("gui.expect.int", self.lang, lo=lo, hi=hi))
        return lo

    def time(self, key: str, label: str, raw: object) -> dt.time:
        match = _TIME.match(str(raw or "").strip())
        if match:
            h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
            if h < 24 and m < 60 and s < 60:
                return dt.time(h, m, s)
        self.bad(key, label, "gui.expect.time")
        return dt.time(0, 0)

    def duration(self, key: str, label: str, raw: object) -> dt.timedelta:
        match = _DURATION.match(str(raw or "").strip())
        if match:
            h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
            value = dt.timedelta(hours=h, minutes=m, seconds=s)
            if m < 60 and s < 60 and value > dt.timedelta(0):
                return value
        self.bad(key, label, "gui.expect.duration")
        return dt.timedelta(hours=1)

    def datetime(self, key: str, label: str, raw: object, *, required: bool) -> dt.datetime | None:
        text = str(raw or "").strip()
        if not text and not required:
            return None
        match = _DATETIME.match(text)
        if match:
            parts = [int(g) if g else 0 for g in match.groups()]
            day, month, year, hour, minute, second = parts
            try:
                return dt.datetime(year, month, day, hour, minute, second)
            except ValueError:
                pass
        self.bad(key, label, "gui.expect.datetime")
        return None

    def host(self, key: str, label: str, raw: object, *, required: bool) -> str:
        text = str(raw or "").strip()
        if not text and not required:
            return ""
        if text and (_HOST.match(text) or (":" in text and _IPV6.match(text))):
            return text
        self.bad(key, label, "gui.expect.host")
        return ""

    def address(self, key: str, label: str, raw: object, default_port: int) -> tuple[str, int]:
        """*Adresse du siège*: ``host`` or ``host:port`` (``synchro.names.split_address``)."""
        host, port_text = split_address(str(raw or ""))
        port = default_port
        if port_text is not None:
            port = self.integer(key, label, port_text, 1, 65535)
        return self.host(key, label, host, required=True), port

    def email(self, key: str, label: str, raw: object, *, required: bool) -> str:
        text = str(raw or "").strip()
        if not text and not required:
            return ""
        if _EMAIL.match(text):
            return text
        self.bad(key, label, "gui.expect.email")
        return ""

    def emails(self, key: str, label: str, raw: object, *, required: bool) -> tuple[str, ...]:
        parts = [p.strip() for p in re.split(r"[,;]", str(raw or "")) if p.strip()]
        if not parts and not required:
            return ()
        if parts and all(_EMAIL.match(p) for p in parts):
            return tuple(parts)
        self.bad(key, label, "gui.expect.emails")
        return ()

    def site_code(self, key: str, label: str, raw: object) -> str:
        text = str(raw or "").strip()
        if is_site_code(text):
            return text
        self.bad(key, label, "gui.expect.site_code")
        return ""

    def required(self, key: str, label: str, raw: object) -> str:
        text = str(raw or "").strip()
        if not text:
            self.bad(key, label, "gui.expect.not_empty")
        return text
