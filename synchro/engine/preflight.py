"""The pre-flight schema check: which columns cannot hold the other side's values.

Before the first synchronisation (``synchro check``, the Test buttons) an establishment
compares its tables with the Siège's, and the Siège with what each establishment declared.
Values travel both ways, so every common column is checked in both directions: can *here*
hold what *there* may send, and can *there* hold what *here* may send. A finding names the
table, the column, why, the side where the fix belongs and what to do, in plain words
(``locales/check.json``). Nothing here touches a database or the network: the inputs are
``Table`` objects with their column details (``synchro.db.details``).

Rules (``hold``), receiver against sender, by kind:

- text: a receiver whose size is enforced must be at least as long as the sender's
  (declared) length; a character set that cannot store every Unicode character (MariaDB
  ``utf8``/``utf8mb3``, ``latin1``...) cannot hold what another side may send;
- blob: the same length rule, in bytes;
- int: the receiver's range (bytes, unsigned) must contain the sender's;
- decimal: as many digits before and after the point; SQLite keeps 15 digits exactly;
- float: single precision cannot hold double precision;
- date/datetime: the receiver's years (MariaDB ``TIMESTAMP``: 1970-2038) must contain the
  sender's; datetime/time: as many digits of fractional seconds, and the same time zone
  rule (PostgreSQL ``timestamptz`` refuses a value without zone, a column without zone a
  value with one);
- everywhere: the same kind (text holds a UUID or JSON as text), the same key, no column
  missing, no ``NOT NULL`` receiving from a column that allows NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from synchro.db.base import Column, Table
from synchro.db.details import SQLITE_DIGITS, full_unicode
from synchro.i18n import tr
from synchro.names import same_names

HERE = "here"  # a finding's side: this node
ANY_YEARS = (1, 9999)  # what Python dates (and so the packages) can carry
MAX_FRACTION = 6  # microseconds
SQLITE_INTEGER_DIGITS = 18  # every integer of 18 digits is a 64-bit integer


@dataclass(frozen=True)
class Finding:
    """One column (or table) that cannot hold the other side's values.

    ``side`` is where the limit is and the fix belongs (``HERE`` or ``other``, the other
    side: ``hq`` or a site code); ``code`` picks the words in ``locales/check.json``
    (``check.<code>`` and ``check.<code>.fix``), filled with ``values``. ``blocking`` is
    False for a limit reported without another side to compare with (exit code 0).
    """

    table: str
    column: str
    code: str
    side: str
    values: dict[str, object] = field(default_factory=dict)
    blocking: bool = True
    other: str = "hq"

    def text(self, lang: str) -> str:
        """``table.column : why. À faire : what``, in the UI language."""
        other = HERE if self.side != HERE else self.other
        sides = {"side": side_words(self.side, lang), "other": side_words(other, lang)}
        why = tr(f"check.{self.code}", lang, **sides, **self.values)
        fix = tr(f"check.{self.code}.fix", lang, **sides, **self.values)
        where = f"{self.table}.{self.column}" if self.column else self.table
        return tr("check.line", lang, where=where, why=why, fix=fix)


def side_words(side: str, lang: str) -> str:
    """``ici`` / ``au siège`` / ``à l'établissement 3615`` in the UI language."""
    if side == HERE:
        return tr("check.side.here", lang)
    if side == "hq":
        return tr("check.side.hq", lang)
    return tr("check.side.site", lang, site=side)


def describe(column: Column) -> str:
    """The column's type in the words of its database: ``VARCHAR(20)``, ``DECIMAL(10,2)``."""
    t = (column.type_name or column.kind).upper()
    if "(" not in t:
        if column.kind in ("text", "blob") and column.length and "CHAR" in t:
            t += f"({column.length})"
        elif column.kind == "decimal" and column.precision is not None:
            t += f"({column.precision},{column.scale or 0})"
    if column.unsigned and "UNSIGNED" not in t:
        t += " UNSIGNED"
    if column.charset and not full_unicode(column.charset):
        t += f" {column.charset}"
    return t


def _int_range(c: Column) -> tuple[int, int]:
    bits = 8 * (c.width if c.width and c.enforced else 8)
    return (0, 2**bits - 1) if c.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _digits(c: Column) -> tuple[float, float]:
    """(digits before the point, digits after) a decimal column may carry; inf = any."""
    if c.precision is None:
        return float("inf"), float("inf")
    scale = c.scale or 0
    return c.precision - scale, scale


def hold(receiver: Column, sender: Column, side: str) -> list[Finding]:
    """Why ``receiver`` (on ``side``) cannot hold every value ``sender`` may hold."""
    values: dict[str, object] = {"have": describe(receiver), "need": describe(sender)}
    found = [
        Finding("", receiver.name, code, side, {**values, **extra})
        for code, extra in _limits(receiver, sender)
    ]
    if not receiver.nullable and sender.nullable:
        found.append(Finding("", receiver.name, "not_null", side, values))
    return found


Limit = tuple[str, dict[str, object]]


def _limits(r: Column, s: Column) -> list[Limit]:
    kind = r.kind
    found: list[Limit] = []
    if kind in ("text", "blob"):
        found += _length(r, s)
    elif kind == "int":
        (lo, hi), (s_lo, s_hi) = _int_range(r), _int_range(s)
        if s_lo < lo or s_hi > hi:
            found.append(("int", {}))
    elif kind == "decimal":
        found += _decimal(r, s)
    elif kind == "float" and (r.width or 8) < (s.width or 8):
        found.append(("float", {}))
    if kind in ("date", "datetime"):
        years, s_years = r.years or ANY_YEARS, s.years or ANY_YEARS
        if s_years[0] < years[0] or s_years[1] > years[1]:
            found.append(
                ("years", {"y1": years[0], "y2": years[1], "z1": s_years[0], "z2": s_years[1]})
            )
    if kind in ("datetime", "time"):
        digits = MAX_FRACTION if r.fraction is None else r.fraction
        s_digits = MAX_FRACTION if s.fraction is None else s.fraction
        if digits < s_digits:
            found.append(("fraction", {"n": digits, "m": s_digits}))
        if r.zone is not None and s.zone is not None and r.zone != s.zone:
            found.append(("zone_required" if r.zone else "zone_missing", {}))
    return found


def _length(r: Column, s: Column) -> list[Limit]:
    found: list[Limit] = []
    if r.kind == "text" and not full_unicode(r.charset):
        found.append(("charset", {"charset": r.charset}))
    cap = r.length if r.enforced else None
    if cap is not None and (s.length is None or s.length > cap):
        unit = "bytes" if r.kind == "blob" else "chars"
        if s.length is None:
            found.append((f"short_{unit}_unlimited", {"n": cap}))
        else:
            found.append((f"short_{unit}", {"n": cap, "m": s.length}))
    return found


def _decimal(r: Column, s: Column) -> list[Limit]:
    s_int, s_scale = _digits(s)
    if not r.enforced:  # SQLite: a 64-bit integer, else a double (15 digits exactly)
        if s_scale == 0 and s_int <= SQLITE_INTEGER_DIGITS:
            return []
        if s_int + s_scale > SQLITE_DIGITS:
            return [("sqlite_digits", {"digits": SQLITE_DIGITS})]
        return []
    if r.precision is None:
        return []
    r_int, r_scale = _digits(r)
    if s_int > r_int or s_scale > r_scale:
        suggest = _decimal_suggestion(max(r_int, s_int), max(r_scale, s_scale))
        return [("decimal", {"suggest": suggest})]
    return []


def _decimal_suggestion(before: float, after: float) -> str:
    if before == float("inf") or after == float("inf"):
        return "NUMERIC / DECIMAL(65,30)"
    return f"DECIMAL({int(before + after)},{int(after)})"


def compare(here: Sequence[Table], there: Sequence[Table], other: str) -> list[Finding]:
    """Every finding between this node's tables and the other side's (named ``other``:
    ``hq`` or a site code), in both directions, table by table in name order; a table or
    column spelt otherwise there is the same (``names.same_names``)."""
    mine = {t.name: t for t in here}
    local_of = same_names((t.name for t in there), mine)
    theirs = {local_of.get(t.name, t.name): t for t in there}
    found: list[Finding] = []
    for name in sorted(mine.keys() | theirs.keys()):
        if name not in mine:
            found.append(Finding(name, "", "missing_table", HERE))
        elif name not in theirs:
            found.append(Finding(name, "", "missing_table", other))
        else:
            found += _compare_table(mine[name], theirs[name], other)
    return [Finding(f.table, f.column, f.code, f.side, f.values, f.blocking, other) for f in found]


def _compare_table(here: Table, there: Table, other: str) -> list[Finding]:
    found: list[Finding] = []
    local_of = same_names((c.name for c in there.columns), (c.name for c in here.columns))
    if tuple(here.key) != tuple(local_of.get(k, k) for k in there.key):
        keys: dict[str, object] = {"have": ", ".join(here.key), "need": ", ".join(there.key)}
        found.append(Finding(here.name, "", "key", HERE, keys))
    theirs = {local_of.get(c.name, c.name): c for c in there.columns}
    for column in there.columns:
        if column.name not in local_of:
            found.append(Finding(here.name, column.name, "missing_column", HERE, _need(column)))
    for column in here.columns:
        their = theirs.get(column.name)
        if their is None:
            found.append(Finding(here.name, column.name, "missing_column", other, _need(column)))
        elif their.kind != column.kind:
            found += _kinds(here.name, column, their, other)
        elif their.type_name:  # details known (a format 1 package has none)
            for f in hold(column, their, HERE) + hold(their, column, other):
                found.append(Finding(here.name, f.column, f.code, f.side, f.values))
    return found


def kind_holds(receiver: str, sender: str) -> bool:
    """Whether a column of kind ``receiver`` holds every value of kind ``sender``: the same
    kind, or text receiving a UUID or a JSON document (as its text)."""
    return receiver == sender or (receiver == "text" and sender in ("uuid", "json"))


def _kinds(table: str, here: Column, there: Column, other: str) -> list[Finding]:
    """Different kinds: one finding on the side that cannot hold the other's values
    (here when neither can)."""
    if kind_holds(here.kind, there.kind) and kind_holds(there.kind, here.kind):
        return []
    if kind_holds(here.kind, there.kind):
        values: dict[str, object] = {"have": describe(there), "need": describe(here)}
        return [Finding(table, here.name, "kind", other, values)]
    values = {"have": describe(here), "need": describe(there)}
    return [Finding(table, here.name, "kind", HERE, values)]


def _need(column: Column) -> dict[str, object]:
    return {"need": describe(column)}


def local_limits(tables: Sequence[Table]) -> list[Finding]:
    """Limits of this node's own columns, said when there is nothing to compare with:
    a character set short of Unicode, a date range short of years 1-9999, an SQLite
    decimal declared with more digits than SQLite keeps. Not blocking."""
    found: list[Finding] = []
    for table in tables:
        for c in table.columns:
            values: dict[str, object] = {"have": describe(c), "need": describe(c)}
            if c.kind == "text" and not full_unicode(c.charset):
                code = "charset"
                values["charset"] = c.charset
            elif c.kind in ("date", "datetime") and c.years and c.years != ANY_YEARS:
                code = "years_local"
                values.update(y1=c.years[0], y2=c.years[1])
            elif c.kind == "decimal" and not c.enforced and (c.precision or 0) > SQLITE_DIGITS:
                code = "sqlite_digits"
                values["digits"] = SQLITE_DIGITS
            else:
                continue
            found.append(Finding(table.name, c.name, code, HERE, values, blocking=False))
    return found
