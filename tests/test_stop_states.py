"""A service or a run asked to stop (SIGTERM by PID) stops in any state, says so, and the
next start recovers.

Windows' service manager and systemd kill a service 5-20 s after asking it to stop. Each
test brings a real ``python -m synchro`` process of the fault suite's group (a Siège, two
establishments, FTPS on loopback, real SQLite files: ``tests/fault_helpers.py``) into a
state where it used to wait far longer — a transfer hung in a stalled relay (60 s: the
socket's timeout, the stop not even seen by ``sync``'s main thread), another program
holding its database or its state locked (30 s: SQLite's busy timeout) — sends SIGTERM,
and gives it 20 s (``LIMIT_S``; no timing is asserted beyond that). It must end with its
stop's exit code and words; then every node runs a round with nothing held, and the group
must hold exactly the expected rows (nothing lost, nothing twice), no row left « En
cours ». ``bench/bench_stop.py`` measures the same states (seconds to exit, before/after).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import fault_helpers as fh
import pytest
import stop_helpers as sh
from conftest import require
from ftp_proxy import alias_available
from rounds_helpers import sql

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM by PID is POSIX")

LIMIT_S = 20.0
HOW = sh.How(big=0, limit=LIMIT_S)
SYNC_STOPPED = (3, "Arrêt")  # ``synchro sync``: exit 3, its run « Arrêt »
SERVE_STOPPED = (0, "Synchro arrêté proprement.")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fh.build_template(tmp_path_factory.mktemp("stop") / "template")


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[fh.World]:
    with fh.World.copy(template, tmp_path / "world") as world:
        yield world


def stopped_then_recovers(
    world: fh.World,
    template: Path,
    state: sh.State,
    expected: tuple[int, str],
    how: sh.How = HOW,
    more: tuple[str, str] | None = None,
) -> None:
    """``state`` brought about and its victim SIGTERMed: it ended with ``expected`` (exit
    code, words it printed); then the group converges on round 2's rows (and the rows
    ``more``'s SQL adds at its node: (node, sql))."""
    result = state(world, how)
    code, words = expected
    tail = result.output[-2500:] + (f"\n--- stacks:\n{result.stacks}" if result.stacks else "")
    assert result.code is not None, f"still running {LIMIT_S:.0f} s after SIGTERM:\n{tail}"
    assert (result.code, words in result.output) == (code, True), tail
    world.set_port(fh.free_port())  # every site straight to the Siège again (no relay)
    wanted = fh.expected_after(world, template, 2)  # (its model: root/expected.db)
    if more is not None:
        sql(world.root / "expected.db", more[1])
        wanted = fh.table_rows(world.root / "expected.db")
    for _round in range(2):  # as the kill suite allows: that round or the next
        codes = world.round("sync")
        lost, extra, differ = world.differences(wanted)
        if not differ:
            break
    siege = next(p for p in reversed(world.procs) if p.node == "SIEGE")
    if codes["SIEGE"] == 1 and "sans données" in siege.output():
        # a site that had delivered before its stop (its package applied, the Siège's
        # answer waiting) takes that answer at once and has nothing new to send: the
        # Siège's new round says it « sans données », as the kill suite allows
        codes["SIEGE"] = 0
    assert codes == {"A": 0, "B": 0, "SIEGE": 0}, [p.output()[-1500:] for p in world.procs]
    assert (lost, extra, differ) == (0, 0, [])
    assert [r for n in fh.NODES for r in world.running_rows(n)] == []


def needs_alias() -> None:
    if not alias_available():
        require("127.0.0.2 is not a loopback address here (the stalling relay needs it)")


def test_sync_stops_while_its_upload_hangs(world: fh.World, template: Path) -> None:
    needs_alias()
    stopped_then_recovers(world, template, sh.site_sync_upload_stalled, SYNC_STOPPED)


def test_sync_stops_while_its_download_hangs(world: fh.World, template: Path) -> None:
    needs_alias()
    stopped_then_recovers(world, template, sh.site_sync_download_stalled, SYNC_STOPPED)


def test_a_site_service_stops_while_its_upload_hangs(world: fh.World, template: Path) -> None:
    needs_alias()
    stopped_then_recovers(world, template, sh.site_serve_upload_stalled, SERVE_STOPPED)


def test_a_site_service_stops_while_another_program_locks_its_database(
    world: fh.World, template: Path
) -> None:
    stopped_then_recovers(world, template, sh.site_serve_db_locked, SERVE_STOPPED)


def test_sync_stops_while_another_program_locks_its_database(
    world: fh.World, template: Path
) -> None:
    stopped_then_recovers(world, template, sh.site_sync_db_locked, SYNC_STOPPED)


def test_sync_stops_while_another_program_locks_its_state(world: fh.World, template: Path) -> None:
    stopped_then_recovers(world, template, sh.site_sync_state_locked, SYNC_STOPPED)


def test_serve_stops_while_another_program_locks_the_siege_database(
    world: fh.World, template: Path
) -> None:
    stopped_then_recovers(world, template, sh.siege_serve_db_locked, SERVE_STOPPED)


def test_sync_stops_while_its_report_email_waits_on_a_silent_server(
    world: fh.World, template: Path
) -> None:
    """The run ended OK; its email waits for a greeting (30 s timeout, 3 tries): the stop
    gives the email up at once and the run's exit code stays the run's."""
    stopped_then_recovers(world, template, sh.site_sync_mail_silent, (0, "OK"))


def test_sync_stops_while_its_connection_to_the_siege_is_never_answered(
    world: fh.World, template: Path
) -> None:
    """The Siège's machine drops A's connection requests (a firewall): the connection
    waits up to the session's 60 s timeout, and the stop ends it at once."""
    stopped_then_recovers(world, template, sh.site_sync_siege_unanswered, SYNC_STOPPED)


def test_sync_stopped_in_the_middle_of_its_apply_recovers(world: fh.World, template: Path) -> None:
    """A applies a big package of the Siège's (30,000 rows) and is stopped in the middle of
    it (it stops itself at its second batch, is SIGTERMed there and let go:
    ``stop_helpers.site_sync_big_apply``): its transaction is rolled back, the package
    applied whole by the next run, once (no fix was needed here: a guard for the rule)."""
    big = sh.How(big=30_000, limit=LIMIT_S)
    more = ("SIEGE", sh.big_rows("SIEGE", big.big))
    stopped_then_recovers(world, template, sh.site_sync_big_apply, SYNC_STOPPED, big, more)
