"""The Siège's service keeps one Node open for its life: a row refused by a column too
short is applied by the retry at the next export once the column is widened, with no
restart (the adapter reads the column types again after a refusal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from engine_helpers import make_node


def test_quarantined_row_flows_after_alter_table_on_the_same_node(
    tmp_path: Path, make_backend: Any
) -> None:
    hq_db = str(tmp_path / "siege.db")
    with sqlite3.connect(hq_db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'abcdefgh'), (2, 'ok')")
    site_db = make_backend("mariadb")
    site_db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5))")
    with (
        make_node(tmp_path, "SIEGE", hq_db, hq=True) as hq,
        make_node(tmp_path, "3615", site_db.connection) as site,
    ):
        hq.export()
        published, _manifest = hq.publish("3615", tmp_path / "out")
        result = site.import_package(published)
        assert result.stats.quarantined == 1
        assert site_db.query("SELECT id, v FROM t ORDER BY id") == [(2, "ok")]
        site.tables()  # discovered before the change, as a running service has

        site_db.execute("ALTER TABLE t MODIFY v VARCHAR(50)")
        site.export()  # the retry of quarantined rows runs first
        assert site_db.query("SELECT id, v FROM t ORDER BY id") == [(1, "abcdefgh"), (2, "ok")]
        assert site.state.quarantined() == []
