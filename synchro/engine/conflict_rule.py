"""Which version of a row wins a conflict: the table's rule (``ConflictPolicy``), asked by
the apply when a package's change meets a row changed here too, and by the retry of a row
set aside unread (another program kept it locked) that was changed here meanwhile."""

from __future__ import annotations

from synchro.config.model import ConflictPolicy, TableRule
from synchro.db.base import Row, Table
from synchro.engine.policy import ApplyPolicy


def incoming_wins(
    rule: TableRule,
    table: Table,
    policy: ApplyPolicy,
    incoming: tuple[Row | None, str],
    local: tuple[Row | None, str],
) -> bool:
    """Whether the incoming version (its row, None for a delete, and its origin) wins over
    the local one (the row here, None when gone, and who changed it: this node, or at the
    Siège another origin)."""
    row, origin = incoming
    here, other = local
    if rule.conflict is ConflictPolicy.LATEST_WINS and rule.modified_column:
        pos = table.column_names.index(rule.modified_column)
        mine = row[pos] if row is not None else None
        theirs = here[pos] if here is not None else None
        if mine != theirs and mine is not None and theirs is not None:
            return bool(mine > theirs)
        if mine != theirs:
            return mine is not None
        return origin > other
    if rule.conflict is ConflictPolicy.LATEST_WINS:
        return True  # no clock: the change applied last at the Siège wins, everywhere
    if rule.conflict is ConflictPolicy.ORIGIN_OWNS and rule.owner_column:
        pos = table.column_names.index(rule.owner_column)
        if row is not None and str(row[pos]) == origin:
            return True
        if here is not None and str(here[pos]) == other:
            return False
    return not policy.holds_siege_version  # hq-wins: the Siège's version
