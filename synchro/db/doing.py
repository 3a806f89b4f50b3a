"""What a statement on the user's database was doing when it failed, said as words of the
locales (``engine.db.doing.*``), so the error reads in the UI's language: « SQLite (…) :
écriture dans la table ventes impossible : … » / « …: writing to table ventes failed: … ».
The database's own text (the driver's, in its language) is kept as it came."""

from __future__ import annotations

from typing import Any

from synchro.errors import DatabaseError, Say


def act(what: str, table: str = "") -> Say:
    """``engine.db.doing.<what>``, naming ``table`` where there is one."""
    values: dict[str, Any] = {"table": table} if table else {}
    return (f"engine.db.doing.{what}", values)


def failed(
    where: str | list[Say], what: Say, detail: object, hint: Say | None = None
) -> DatabaseError:
    """The error of a statement of ``where`` (the database's description) while ``what``,
    the database's words ``detail``; ``hint``: what to do, when known."""
    said = detail if isinstance(detail, list) else str(detail)  # (a list: words of ours)
    values: dict[str, Any] = {"where": where, "doing": [what], "detail": said}
    if hint is None:
        return DatabaseError(say=("engine.db.failed", values))
    return DatabaseError(say=("engine.db.failed_hint", {**values, "hint": [hint]}))
