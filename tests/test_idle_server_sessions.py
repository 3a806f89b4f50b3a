"""The Siège's service keeps its database connection from one day's round to the next;
the server ends a session idle that long (MariaDB's ``wait_timeout``, 8 hours by default;
PostgreSQL's ``idle_session_timeout``, which an administrator may set). The next round
must find it gone, make a new one and end OK everywhere, with every row — without a
« connexion perdue » in its log and without spending one of the export's tries on it
(``OdbcAdapter._still_there``: before, every day's round began with both).

Real ``python -m synchro serve`` for the Siège, sites' ``sync`` processes, FTPS on
loopback; the Siège's database on MariaDB or PostgreSQL through its real ODBC driver,
its idle limit made 2 s (MariaDB: the session's, through the driver's ``INITSTMT``;
PostgreSQL: the database's) so that the wait between two rounds outlasts it.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import NODES, SITES, sql, table_rows
from fault_servers import ServerWorld, build_server_template, drop_template
from server_dbs import connect, require_servers

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="a POSIX test group")]
IDLE_S = 2
LAYOUTS = {
    "mariadb": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
    "postgresql": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    require_servers()
    root = tmp_path_factory.mktemp(f"idle-{request.param}") / "template"
    build_server_template(root, LAYOUTS[request.param])
    try:
        yield root
    finally:
        drop_template(root)


def idle_limit(world: ServerWorld) -> None:
    """The Siège's sessions ended by its server after ``IDLE_S`` idle."""
    from synchro.config.store import load_config, save_config

    db = world.servers["SIEGE"]
    if db.kind == "postgresql":
        conn = connect(db)
        conn.autocommit = True
        conn.execute(f"ALTER DATABASE \"{db.name}\" SET idle_session_timeout = '{IDLE_S}s'")
        conn.close()
        return
    path = world.folder("SIEGE") / "synchro.toml"
    config = load_config(path)
    limited = f"{db.connection};INITSTMT=SET SESSION wait_timeout={IDLE_S}"
    save_config(
        dataclasses.replace(
            config, database=dataclasses.replace(config.database, connection=limited)
        ),
        path,
    )


def expected(world: ServerWorld, template: Path, last: int) -> dict[str, set[tuple[object, ...]]]:
    """The template's tables with every node's changes of rounds 2 to ``last``."""
    model = world.root / "expected.db"
    shutil.copyfile(world.model(template), model)
    for round_no in range(2, last + 1):
        for node in NODES:
            sql(model, world.mutations(node, round_no))
    return table_rows(model)


def test_the_sieges_service_finds_its_idle_session_ended_and_the_next_round_ends_ok(
    template: Path, tmp_path: Path
) -> None:
    with ServerWorld.copy(template, tmp_path / "world") as world:
        idle_limit(world)
        hq = world.siege("serve")
        for round_no in (2, 3):
            world.mutate(round_no)
            if round_no == 3:
                time.sleep(IDLE_S * 2)  # the Siège's session idle past the server's limit
                world.open_round(hq)
            sites = {s: world.start(s, "sync") for s in SITES}  # both at once
            codes = {s: p.wait() for s, p in sites.items()}
            assert codes == {"A": 0, "B": 0}, world.procs[-1].output()[-3000:]
            differ = world.differences(expected(world, template, round_no))[2]
            assert not differ, (round_no, differ, hq.output()[-3000:])
        world.stop(hq)
        said = hq.output()
        assert "nouvel essai" not in said and "connexion perdue" not in said, said[-3000:]
        for node in NODES:
            *_, last = world.report(node)
            assert last[2] == "OK", (node, last, hq.output()[-3000:])
