"""The « Contrôle » whose connection the database server ended is read again (rule 3).

An establishment reads every table of its database to make the checksums of its
acknowledgement, and the Siège to make those it sends with its packages: a streamed read
of every row, outside any transaction. When PostgreSQL or MariaDB ends the session in the
middle of it (a server restarted, a cut network), the checksums are read again on a new
connection (``engine.lost``) and come out as the database holds them. Before, the read
failed — « connexion perdue » — and with it the acknowledgement of a package already
applied, or the Siège's publication for every establishment. The server really ends the
session (``pg_terminate_backend``, ``KILL CONNECTION``) after the first row of the first
table was read: PostgreSQL's driver fetches 2,000 rows at a time (``UseDeclareFetch``), so
its next fetch meets the cut; MariaDB's holds the table's page, so the next table's read
does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node
from test_db_errors import end_other_sessions

ROWS = 3_000  # more than one fetch of psqlODBC's (Fetch=2000)


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
def test_checksums_whose_connection_the_server_ended_are_read_again(
    name: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    backend = make_backend(name)
    backend.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    backend.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    for start in range(0, ROWS, 500):
        values = ", ".join(f"({i}, 'ligne {i} · 日本語 😀')" for i in range(start, start + 500))
        backend.execute(f"INSERT INTO a VALUES {values}")
    backend.execute("INSERT INTO b VALUES (1, 'Zoé'), (2, 'Ελληνικά')")
    with make_node(tmp_path, "HQ", backend.connection, hq=True) as reference:
        expected = reference.checksums()  # another node, another connection, no cut
    assert expected["a"][0] == ROWS and expected["b"][0] == 2
    with make_node(tmp_path, "S1", backend.connection) as node:
        adapter = node.adapter
        real_scan = adapter.scan
        cut: list[str] = []

        def scan_then_cut(table: Any, **options: Any) -> Iterator[Any]:
            for row in real_scan(table, **options):
                yield row
                if not cut:  # once, in the middle of the first table read
                    end_other_sessions(backend)
                    cut.append(table.name)

        adapter.scan = scan_then_cut  # type: ignore[method-assign]
        assert node.checksums() == expected
        assert cut, "the session was never ended"
        assert node.checksums() == expected  # and the new connection serves what follows
