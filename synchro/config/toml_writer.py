"""A small TOML writer for the settings file (Python has ``tomllib`` to read, nothing to write).

It handles exactly what the settings use: strings (fully escaped), integers, booleans,
lists of strings or integers, tables, and arrays of tables. ``None`` values are left out
(a missing key means "the default"). Anything else raises ``TypeError``: a new kind of value
in ``Config`` must be given a text form on purpose, not written by accident.

Order inside a table: plain values first, then sub-tables, then arrays of tables, so the
output is valid TOML and reads top-down like the settings screens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def dumps(data: Mapping[str, object]) -> str:
    """The TOML text of ``data`` (a table of the supported values)."""
    lines: list[str] = []
    _table(data, (), lines, header=None)
    return "\n".join(lines).strip("\n") + "\n"


def _table(
    data: Mapping[str, object], path: tuple[str, ...], lines: list[str], header: str | None
) -> None:
    if header is not None:
        if lines:
            lines.append("")
        lines.append(header)
    subtables: list[tuple[str, Mapping[str, object]]] = []
    arrays: list[tuple[str, Sequence[Mapping[str, object]]]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"TOML keys are strings, not {key!r}")
        if value is None:
            continue
        if isinstance(value, Mapping):
            subtables.append((key, value))
        elif _is_table_array(value):
            arrays.append((key, value))  # type: ignore[arg-type]
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, table in subtables:
        sub = (*path, key)
        _table(table, sub, lines, header=f"[{_dotted(sub)}]")
    for key, items in arrays:
        sub = (*path, key)
        for item in items:
            _table(item, sub, lines, header=f"[[{_dotted(sub)}]]")


def _is_table_array(value: object) -> bool:
    if not isinstance(value, list | tuple) or not value:
        return False
    tables = [isinstance(item, Mapping) for item in value]
    if any(tables) and not all(tables):
        raise TypeError("a TOML array mixes tables and plain values")
    return all(tables)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"the settings writer has no TOML form for {type(value).__name__}")


def quote(text: str) -> str:
    """A TOML basic string: backslash escapes, control characters as ``\\uXXXX``."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else quote(key)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)
