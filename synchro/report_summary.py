"""Plain lines for a Rapport row's details (the double-click on a row), in the UI language.

The engine records its details as JSON (``{"controle": "identiques", "accuse": 12}``); the
user reads them as sentences: « Contrôle : identiques », « Accusé de réception : paquet 12 ».
The Contrôle texts are written in French by the engine (synchro.engine.ack); in English the
known phrases are translated and table or site names kept as they are.

Why a row failed, and what to do, comes from its *reason* (:func:`reason_of`): the
:class:`~synchro.errors.ErrorKind` or :class:`~synchro.reports.Outcome` the engine stored
in ``details["error_kind"]`` — never from the error's text, which stays as raised (French).
The email and the Rapport's detail window say the same words (``reports.reason.<code>``,
``reports.advice.<code>``)."""

from __future__ import annotations

import json
from typing import Any

from synchro.errors import ErrorKind
from synchro.i18n import tr
from synchro.reports import Outcome, RunRecord, State

OTHER = "other"  # a failed row without a stored kind (written by an older Synchro)
REASONS = (*(str(k) for k in ErrorKind), *(str(o) for o in Outcome), OTHER)

# keys shown elsewhere in the detail (own lists) or internal to the report store and mail
_NOT_SHOWN = {"quarantined", "conflicts", "not_applied", "error_kind", "email", "late"}

# the engine's French Contrôle phrases (synchro.engine.ack, hq_acks) and their English
_CONTROLE_EN = (
    ("non vérifiable (sommes de contrôle absentes)", "not verifiable (checksums missing)"),
    (
        "non vérifiable (paquet d'un état antérieur du siège)",
        "not verifiable (package from an earlier state of the headquarters)",
    ),
    ("tables différentes : ", "tables differ: "),
    (
        "identiques hors modifications récentes (envoyées au prochain tour) : ",
        "identical but for recent changes (sent at the next round): ",
    ),
    ("identiques", "identical"),
    (" : ", ": "),
)


def controle_text(text: str, lang: str) -> str:
    """The engine's Contrôle text (« identiques », « tables différentes : a, b », or a
    round's « 3615 : tables différentes : a ; 3616 : … ») in the UI language."""
    if lang == "fr":
        return text
    for french, english in _CONTROLE_EN:
        text = text.replace(french, english)
    return text


def keyless_line(details: dict[str, Any], lang: str) -> str | None:
    """The line naming the tables not synchronised for want of a key (``details["keyless"]``,
    written by every run), for the Rapport's detail and the email; None when there are none."""
    value = details.get("keyless")
    return tr("app.summary.keyless", lang, tables=_names(value)) if value else None


def copy_line(details: dict[str, Any], lang: str) -> str | None:
    """The line saying the Siège refused a package sent under this node's code by another
    machine (``details["copy_seen"]``: its number, ``engine.marks``); None otherwise."""
    value = details.get("copy_seen")
    if not isinstance(value, dict) or "number" not in value:
        return None
    return tr("app.summary.copy_seen", lang, number=value["number"], at=value.get("at", "?"))


def clock_line(details: dict[str, Any], lang: str) -> str | None:
    """The line saying this node's clock is ahead of or behind the Siège's
    (``details["clock"]``: seconds ahead, ``engine.clocks``); None when they agreed."""
    value = details.get("clock")
    if not isinstance(value, int) or not value:
        return None
    side = "ahead" if value > 0 else "behind"
    return tr(f"app.summary.clock.{side}", lang, span=span(value, lang))


def span(seconds: int, lang: str) -> str:
    """« 2 h 13 min », « 5 min », « 3 j 4 h » (in English, d for days)."""
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "j" if lang == "fr" else "d"), (hours, "h"), (minutes, "min")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or f"{abs(seconds)} s"


def _names(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _retried(item: Any, lang: str) -> str:
    if not isinstance(item, dict):
        return str(item)
    outcome = "applied" if item.get("outcome") == "applied" else "local"
    return tr(
        f"app.summary.retried.{outcome}",
        lang,
        table=item.get("tbl"),
        key=item.get("key_json"),
    )


def _value(value: Any) -> str:
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)[:300]


def detail_lines(details: dict[str, Any], error: str, lang: str) -> list[str]:
    """One readable line per known key of ``details`` (unknown keys as « key : value »),
    leaving out what ``error`` already says (a round's missing or failed establishments,
    a Contrôle that made the run an Echec) and what the detail lists on its own."""
    lines: list[str] = []
    for key, value in details.items():
        if key in _NOT_SHOWN or value in (None, "", [], {}):
            continue
        if key == "controle":
            if str(value) not in error:
                lines.append(tr("app.summary.controle", lang, text=controle_text(str(value), lang)))
        elif key == "accuse":
            lines.append(tr("app.summary.accuse", lang, sequence=value))
        elif key == "kept":
            lines.append(tr("app.summary.kept", lang, name=value))
        elif key == "attempts":
            lines.append(tr("app.summary.attempts", lang, n=value))
        elif key in ("missing", "failed"):
            if not error:
                lines.append(tr(f"app.summary.{key}", lang, sites=_names(value)))
        elif key == "security" and isinstance(value, list):
            lines.append(tr("app.summary.security", lang, n=len(value)))
            lines += [f"  {v}" for v in value[-10:]]
        elif key == "keyless" and (keyless := keyless_line(details, lang)):
            lines.append(keyless)
        elif key == "clock" and (clock := clock_line(details, lang)):
            lines.append(clock)
        elif key == "copy_seen" and (copy := copy_line(details, lang)):
            lines.append(copy)
        elif key == "retried" and isinstance(value, list):
            lines += [_retried(item, lang) for item in value]
        else:
            sep = " : " if lang == "fr" else ": "
            lines.append(f"{key}{sep}{_value(value)}")
    return lines


def reason_of(record: RunRecord) -> str:
    """The code explaining a failed or stopped row (one of :data:`REASONS`), read from its
    state and the kind stored with it; ``other`` when none was stored."""
    if record.state is State.STOPPED:
        return str(ErrorKind.STOPPED)
    given = str(record.details.get("error_kind", ""))
    return given if given in REASONS else OTHER


def cause_lines(record: RunRecord, lang: str) -> list[str]:
    """« Cause : … » and « À faire : … » for a failed or stopped row; nothing otherwise."""
    if record.state not in (State.FAILED, State.STOPPED):
        return []
    code = reason_of(record)
    return [
        tr("reports.cause", lang, reason=tr(f"reports.reason.{code}", lang)),
        tr("reports.todo", lang, advice=tr(f"reports.advice.{code}", lang)),
    ]
