"""Per-table checksums: the proof that nodes converged.

The checksum of a table is the SHA-256 of the canonical row hashes in key order, so two
databases with the same rows agree whatever their driver or storage (DECIMAL as text,
fractional seconds...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from synchro.db.base import Adapter, Table
from synchro.engine.state import snap_value
from synchro.values import row_hash


def table_checksum(adapter: Adapter, table: Table) -> tuple[int, str]:
    """(row count, hex digest) of ``table``, independent of the database's row order."""
    kinds, positions, key_kinds = table.kinds, table.key_positions, table.key_kinds
    hashed = sorted(
        (
            tuple(snap_value(k, row[p]) for k, p in zip(key_kinds, positions, strict=True)),
            row_hash(kinds, row),
        )
        for row in adapter.scan(table, ordered=False)
    )
    digest = hashlib.sha256()
    for _key, h in hashed:
        digest.update(h)
    return len(hashed), digest.hexdigest()


def checksums(adapter: Adapter, tables: Sequence[Table]) -> dict[str, tuple[int, str]]:
    return {t.name: table_checksum(adapter, t) for t in tables}
