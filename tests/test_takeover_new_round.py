"""After a Siège killed mid-round, a round a later process opens is a new round.

Found by ``bench/soak_live.py --only serve:SIEGE`` (seeds 11016, 11035, 11045: the nodes
converged only at the second quiet round). The Siège's service is killed after it applied
both establishments' packages and before it published; the service manager starts it
again (it closes the round's row « interrompu », publishes the answers outside any round,
takes the acks), and it is stopped. The next day — here at once — a new service process
opens a round (MANUELLE) and the establishments run again with new changes. Before, that
round took the interrupted one over (« Reprise du tour … : A, B comptés comme livrés »),
closed the moment it opened, and answered each establishment as its package came: A, first,
never got B's changes of the round. Now only the process whose start closed the
interrupted row carries it on (``hq_takeover.interrupted_round``), and not for a site
whose ack it took since (its run is over: it delivers anew); this round waits for both
and each gets the other's changes. The same when the restarted service itself opens the
round once it took both acks. Real processes over FTPS on loopback, SQLite files.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import SITES, Proc, World, build_template, expected_rounds

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield build_template(tmp_path_factory.mktemp("takeover") / "template")


def delivered(proc: Proc, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while "Données envoyées au siège" not in proc.output():
        assert proc.popen.poll() is None and time.monotonic() < end, proc.output()[-2000:]
        time.sleep(0.05)


@pytest.mark.parametrize("opener", ["later-process", "restarted-process"])
def test_a_round_opened_after_the_kill_s_aftermath_waits_for_the_new_deliveries(
    template: Path, tmp_path: Path, opener: str
) -> None:
    """``later-process``: the round is opened by another process; ``restarted-process``: by
    the restarted service itself, once it took both acks (the sites it heard from since its
    start have ended their runs: they deliver anew)."""
    with World.copy(template, tmp_path / "world") as world:
        world.mutate(2)
        killed = world.siege("serve", kill="hq.publish.before")
        sites = {site: world.start(site, "sync") for site in SITES}
        assert killed.wait() == -signal.SIGKILL, killed.output()[-2000:]
        restarted = world.siege("serve", open_round=False)  # its service manager
        assert {s: p.wait() for s, p in sites.items()} == {"A": 0, "B": 0}
        if opener == "later-process":
            assert world.stop(restarted) == 0
            serve = world.siege("serve")  # MANUELLE opens the round
        else:
            serve = restarted
            wait_for_acks(serve)
            world.open_round(serve)

        world.mutate(3)
        expected = expected_rounds(world, template, (2, 3))
        a = world.start("A", "sync")
        delivered(a)  # A first: its answer must wait for B's package
        b = world.start("B", "sync")
        assert (a.wait(), b.wait()) == (0, 0), (a.output()[-2000:], b.output()[-2000:])
        assert world.stop(serve) == 0
        assert world.differences(expected) == (0, 0, [])
        assert "Reprise du tour" not in serve.output()


def wait_for_acks(serve: Proc, timeout: float = 60) -> None:
    """Until the restarted service took both establishments' acks."""
    end = time.monotonic() + timeout
    while serve.output().count("a intégré les données du siège") < len(SITES):
        assert serve.popen.poll() is None and time.monotonic() < end, serve.output()[-2000:]
        time.sleep(0.05)
