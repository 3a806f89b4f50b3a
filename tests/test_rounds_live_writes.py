"""The shops keep working while the round runs (rules 1 and 3, and what a user expects).

A Siège and two establishments run a whole round as real ``python -m synchro`` processes
over FTPS on loopback while, at every node, the shop's own program (``live_writer``, a
process of its own) writes into the same database: new clients, changes and deletes of
them, and changes of a few « hot » clients that every shop changes. Then the writers stop
and one more round runs, as the next day's would. Checked, through each node's own
driver, as ``live_helpers`` says (nothing lost, nothing extra, nothing applied twice; no
shop's write lost silently), and: both rounds end OK at every node — a change a shop
makes while the round runs is sent by the next one, it is no damage (before the
« Contrôle » compared what the nodes exchanged, every node ended « Echec : tables
différentes » here).

On PostgreSQL, MariaDB and SQLite (the Siège, A, B), and on SQLite files; and with a node
killed by SIGKILL at a failpoint (its capture, its apply, between its two commits) and
started again while the shops go on writing.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import NODES, SITES, World, build_template
from fault_servers import ServerWorld, build_server_template, drop_template
from live_helpers import Writers, check_rows
from server_dbs import require_servers

pytestmark = [pytest.mark.faults]
# the Siège on PostgreSQL, A on MariaDB, B on SQLite (as ``test_faults_rounds_servers``)
SERVERS = {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"}


class Templates:
    """Each layout's group after a first round (made on first use, under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, Path] = {}

    def world(self, layout: str, root: Path) -> World:
        """A copy of ``layout``'s group in ``root``."""
        if layout == "sqlite":
            if layout not in self.made:
                self.made[layout] = build_template(self.root / "sqlite")
            return World.copy(self.made[layout], root)
        require_servers()
        if layout not in self.made:
            self.made[layout] = build_server_template(self.root / "servers", SERVERS)
        return ServerWorld.copy(self.made[layout], root)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """The templates of this module's tests; their server databases dropped at the end."""
    made = Templates(tmp_path_factory.mktemp("live"))
    yield made
    if "servers" in made.made:
        drop_template(made.made["servers"])


@pytest.mark.parametrize("layout", ["sqlite", "servers"])
def test_a_round_while_every_shop_writes(layout: str, templates: Templates, tmp_path: Path) -> None:
    with templates.world(layout, tmp_path / "world") as world:
        world.mutate(2)
        writers = Writers(world)
        try:
            writers.wait_started()
            began = time.time()
            live = world.round("sync")
            ended = time.time()
            writers.stop()
        finally:
            writers.kill()
        during = {n: sum(began <= c["at"] <= ended for c in writers.changes(n)) for n in NODES}
        assert all(during.values()), f"writes during the round: {during}"
        outputs = "\n".join(p.output()[-1500:] for p in world.procs)
        assert live == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        assert "modifications récentes" in world.procs[0].output(), outputs
        quiet = world.round("sync")
        outputs = "\n".join(p.output()[-1500:] for p in world.procs[3:])
        assert quiet == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        check_rows(world, templates.made[layout], writers)


# (victim, failpoint): the capture written but not committed, a delivery half written,
# the user's database committed and the state not
KILLS = (
    ("A", "node.export.written"),
    ("SIEGE", "node.export.written"),
    ("A", "apply.batch:2"),
    ("SIEGE", "apply.batch:2"),
    ("A", "node.apply.db_committed"),
)


@pytest.mark.parametrize(("victim", "point"), KILLS)
def test_a_node_killed_while_every_shop_writes(
    victim: str, point: str, templates: Templates, tmp_path: Path
) -> None:
    """As above, and ``victim`` dies by SIGKILL at ``point`` and is started again at once
    while the shops go on writing; the round ends, then a quiet one: every node holds
    every write once, and nothing is left « En cours... »."""
    with templates.world("sqlite", tmp_path / "world") as world:
        world.mutate(2)
        writers = Writers(world)
        try:
            writers.wait_started()
            procs = {"SIEGE": world.siege("sync", kill=point if victim == "SIEGE" else "")}
            for site in SITES:
                procs[site] = world.start(site, "sync", kill=point if victim == site else "")
            assert procs[victim].wait() == -signal.SIGKILL, procs[victim].output()[-2000:]
            procs[victim] = (
                world.siege("sync", open_round=False)
                if victim == "SIEGE"
                else world.start(victim, "sync")
            )
            for proc in procs.values():
                proc.wait()
            writers.stop()
        finally:
            writers.kill()
        for _round in range(2):  # a quiet round; a second when the first found a restart
            quiet = world.round("sync")
            if quiet == {"A": 0, "B": 0, "SIEGE": 0}:
                break
        outputs = "\n".join(p.output()[-1500:] for p in world.procs)
        assert quiet == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        check_rows(world, templates.made["sqlite"], writers)
        assert not [world.running_rows(n) for n in NODES if world.running_rows(n)]
