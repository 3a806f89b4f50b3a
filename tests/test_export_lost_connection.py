"""An export whose connection the database server ended is made again (rule 3).

The Siège captures its own changes at the start of every round; its service keeps its
connection for days. When PostgreSQL or MariaDB ends the session in the middle of the
capture (a server restarted, a cut network), the export is made again on a new
connection (``engine.lost``): the package holds every row once, and the next export finds
nothing new. Before, the round failed at once for every establishment (« Lecture de la
table clients impossible ») and, the connection never made again, so did every later
round of the service. The server really ends the session (``pg_terminate_backend``,
``KILL CONNECTION``), at a chosen moment: just after the export wrote its number into the
database (``engine.marks``), before it reads the tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node
from test_db_errors import end_other_sessions

from synchro.engine import marks
from synchro.package import open_package

ROWS = [(1, "Zoé à l'hôtel"), (2, "日本語 😀"), (3, "Ελληνικά")]


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
def test_an_export_whose_connection_the_server_ended_is_made_again(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = make_backend(name)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    for row in ROWS:
        backend.execute("INSERT INTO t VALUES (?, ?)", row)
    real_bump = marks.bump
    cut: list[int] = []

    def bump_then_cut(*args: Any, **kwargs: Any) -> None:
        real_bump(*args, **kwargs)
        if not cut:  # the first export only
            end_other_sessions(backend)
            cut.append(1)

    monkeypatch.setattr(marks, "bump", bump_then_cut)
    with make_node(tmp_path, "S1", backend.connection) as node:
        made = node.export()
        assert cut, "the session was never ended"
        sent = sorted(c.values for c in open_package(made.path, node.keys()).changes())
        assert sent == ROWS  # every row once, as the database holds it
        assert made.manifest.sequence == 1  # the failed try left no package number behind
        again = node.export()
        assert again.manifest.rows == 0  # nothing new: the first one's snapshot was kept
        assert again.manifest.sequence == 2
