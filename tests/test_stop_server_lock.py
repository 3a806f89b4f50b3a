"""A ``synchro sync`` waiting for another program's lock on its database server stops when
asked (SIGTERM by PID), and the next round converges.

The fault suite's group on servers (``fault_servers``: A on MariaDB with the Siège on
PostgreSQL, or the two swapped; B on SQLite; real ``python -m synchro`` processes over
FTPS on loopback). Another program — the test's own connection through the real driver —
keeps A's ``clients`` table locked (MariaDB ``LOCK TABLES … WRITE``, PostgreSQL ``LOCK
TABLE … IN ACCESS EXCLUSIVE MODE`` in an open transaction), so A's run waits on the server
at its capture, up to ``odbc.LOCK_WAIT_S`` (50 s): its ``sync``, or its service asked
MANUELLE (``stop_server_helpers``). SIGTERMed there, it ends within seconds, the run
« Arrêt », its statement cancelled on the server
(``db.statement_watch``); before, it was still waiting 45 s later, past what a service
manager allows. Once the other program lets go, a round ends OK at every node with
exactly the expected rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import NODES, expected_after
from fault_servers import ServerWorld, build_server_template, drop_template
from server_dbs import require_servers
from stop_helpers import How
from stop_server_helpers import LAYOUTS, SERVER_STATES

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM by PID is POSIX"),
]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The group of each layout, made when a test first needs it; dropped at the end."""
    require_servers()
    made: dict[str, Path] = {}
    try:
        yield made
    finally:
        for template in made.values():
            drop_template(template)


@pytest.fixture
def template(
    request: pytest.FixtureRequest,
    templates: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    kind = request.param
    if kind not in templates:
        templates[kind] = build_server_template(tmp_path_factory.mktemp("srvlock"), LAYOUTS[kind])
    return templates[kind]


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[ServerWorld]:
    made = ServerWorld.copy(template, tmp_path / "w")
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("state", list(SERVER_STATES))
@pytest.mark.parametrize("template", list(LAYOUTS), indirect=True)
def test_a_run_waiting_for_a_lock_on_its_server_stops_when_asked(
    world: ServerWorld, template: Path, state: str
) -> None:
    expected = expected_after(world, template, 2)  # (the state makes round 2's changes)
    stopped = SERVER_STATES[state](world, How(limit=45))
    code = 3 if "sync" in state else 0  # a run ended « Arrêt »; a service stopped cleanly
    assert stopped.code == code, (stopped.seconds, stopped.code, stopped.output[-3000:])
    assert "Arrêt" in stopped.output, stopped.output[-3000:]
    assert stopped.seconds < 20, (stopped.seconds, stopped.stacks or stopped.output[-2000:])
    codes = world.round("sync")
    assert codes == dict.fromkeys(NODES, 0), [p.output()[-2000:] for p in world.procs]
    assert world.differences(expected) == (0, 0, [])
