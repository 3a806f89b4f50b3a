"""A round survives ``kill -9`` anywhere (issue 12, point 2).

A Siège and two establishments, each a real ``python -m synchro`` process on loopback over
FTPS, set up with the CLI. In each scenario one process dies by SIGKILL during round 2 — at
a named failpoint (``SYNCHRO_KILL_AT``, ``synchro/faults.py``) or by PID from the test —
and is started again at once. Then: every node holds exactly the expected rows (nothing
lost, nothing extra) within that round or the next one; the row the killed run left
``En cours...`` is closed as ``Echec`` with « interrompu »; the restarted run, and the
processes that were not killed, end OK.

The scenarios of the selected tests run together, a few at a time (``outcomes``): they
mostly wait on their processes. Each test then checks its own scenario's outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_helpers import (
    Job,
    Outcome,
    Proc,
    World,
    build_template,
    expected_after,
    kill_job,
    kill_name,
    kill_points,
    print_table,
    run_all,
    scenario,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]
WORKERS = 3


def _new_file(folder: Path, pattern: str, before: set[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if {p.name for p in folder.glob(pattern)} - before:
            return
        time.sleep(0.01)
    raise AssertionError(f"no new {pattern} in {folder} after {timeout} s")


def serve_killed_while_a_waits(template: Path) -> Job:
    """The Siège's service dies (kill -9 by PID) once A has delivered and waits for the
    round to close; it is started again, then B runs."""

    def job(folder: Path) -> Outcome:
        out = Outcome("serve-SIEGE-pid-while-A-waits")
        with World.copy(template, folder) as world:
            world.mutate(2)
            expected = expected_after(world, template, 2)
            serve = world.siege("serve")
            a = world.start("A", "sync")
            _new_file(world.folder("SIEGE") / "data" / "ftp" / "A" / "in", "A-*.pkg", set())
            time.sleep(0.5)  # A polls for the Siège's package now
            serve.popen.kill()
            killed_at = time.monotonic()
            out.killed = serve.wait() == -signal.SIGKILL
            left_open = world.running_rows("SIEGE")
            serve = world.siege("serve", open_round=False)
            b = world.start("B", "sync")
            codes = {"A": a.wait(), "B": b.wait(), "SIEGE": world.stop(serve)}
            out.recovery_s = time.monotonic() - killed_at
            out.restarted_ok = codes["SIEGE"] == 0
            out.others_ok = codes["A"] == 0 and codes["B"] == 0
            for node, proc in (("A", a), ("B", b)):
                if codes[node]:
                    out.notes.append(f"{node} ended {codes[node]}:\n{proc.output()[-1500:]}")
            out.lost, out.extra, out.differ = world.differences(expected)
            out.recovered_in = 1
            if out.differ:  # B's changes reach A at the next round at the latest
                world.round("serve")
                out.lost, out.extra, out.differ = world.differences(expected)
                out.recovered_in = 0 if out.differ else 2
            final = {i: (s, e) for i, _k, s, e in world.report("SIEGE")}
            out.interrupted_closed = all(
                final[i][0] == "Echec" and "interrompu" in final[i][1] for i, _ in left_open
            )
            out.left_running = [
                f"{n}#{i}" for n in ("SIEGE", "A", "B") for i, _ in world.running_rows(n)
            ]
        return out

    return job


def sync_killed_after_publication(template: Path) -> Job:
    """``synchro sync`` at the Siège dies (kill -9 by PID) as soon as it has published A's
    package, while the establishments download; the administrator runs it again."""

    def job(folder: Path) -> Outcome:
        with World.copy(template, folder) as world:
            out_a = world.folder("SIEGE") / "data" / "ftp" / "A" / "out"
            before = {p.name for p in out_a.glob("*.pkg")}

            def kill(world: World, procs: dict[str, Proc]) -> None:
                _new_file(out_a, "SIEGE-A-*.pkg", before)
                procs["SIEGE"].popen.kill()

            return scenario(
                world,
                template,
                "sync",
                "SIEGE",
                trigger=kill,
                name="sync-SIEGE-pid-after-publication",
            )

    return job


PID_KILLS: dict[str, Callable[[Path], Job]] = {
    "serve-SIEGE-pid-while-A-waits": serve_killed_while_a_waits,
    "sync-SIEGE-pid-after-publication": sync_killed_after_publication,
}
# Inside the columnar scan of the capture (issue 13), taken from one row on: while the
# ADBC read is open, and after it, while the changed rows are read again.
COLUMNAR = {"SYNCHRO_COLUMNAR_FROM": "1"}
COLUMNAR_KILLS = {
    f"columnar-{kill_name(*k)}": k
    for k in (
        ("sync", "A", "capture.columnar.batch"),
        ("sync", "A", "capture.columnar.fetch"),
        ("serve", "SIEGE", "capture.columnar.fetch"),
    )
}
NAMES: list[str] = [kill_name(*k) for k in kill_points()] + list(PID_KILLS) + list(COLUMNAR_KILLS)


def jobs(template: Path) -> dict[str, Job]:
    out = {kill_name(*k): kill_job(template, *k) for k in kill_points()}
    out.update({name: factory(template) for name, factory in PID_KILLS.items()})
    out.update({n: kill_job(template, *k, env=COLUMNAR) for n, k in COLUMNAR_KILLS.items()})
    return out


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """The outcome of every scenario selected in this session, run together."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is sys.modules[__name__] and hasattr(item, "callspec")
    }
    root = tmp_path_factory.mktemp("kill")
    template = build_template(root / "template")
    chosen = {n: j for n, j in jobs(template).items() if n in selected}
    result = run_all(chosen, root / "runs", WORKERS)
    yield result
    print_table(request, result, "kills")


def _param(name: str) -> object:
    return pytest.param(name, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_killed_process_restarts_and_the_group_converges(
    outcomes: dict[str, Outcome], name: str
) -> None:
    problems = outcomes[name].problems()
    assert not problems, "\n".join(problems)


def test_there_are_at_least_50_distinct_kill_points() -> None:
    assert len(set(NAMES)) >= 50


def test_a_failpoint_kills_only_at_the_hit_it_names(tmp_path: Path) -> None:
    code = (
        "from synchro import faults\n"
        "for i in range(1, 4):\n"
        "    print(i, flush=True)\n"
        "    faults.point('x.y')\n"
        "    faults.point_bytes('t', i * 100)\n"
    )
    runs = {}
    for spec in ("", "x.y:2", "t@150", "other"):
        env = {k: v for k, v in os.environ.items() if k != "SYNCHRO_KILL_AT"}
        env["SYNCHRO_KILL_AT"] = spec
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        runs[spec] = (done.returncode, done.stdout.split())
    assert runs[""] == (0, ["1", "2", "3"])
    assert runs["other"] == (0, ["1", "2", "3"])
    assert runs["x.y:2"] == (-signal.SIGKILL, ["1", "2"])
    assert runs["t@150"] == (-signal.SIGKILL, ["1", "2"])
