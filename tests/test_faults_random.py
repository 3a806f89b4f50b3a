"""A few seeds of the random fault campaign (``bench/soak_faults.py``), run by its own code.

Each seed draws a SIGKILL by PID at a moment of the victim's life in round 2 (Siège on
``sync`` or ``serve``; the victim the Siège, A or B) — a ``kill2`` seed then kills the
restarted victim once more, a ``kill2n`` seed kills two different nodes in the same round —
or cuts of A's upload and download at byte offsets (``cutctl``: of A's control connection
at offsets of its control bytes, with or without a data cut), through
the fault suite's scenarios (``fault_helpers``: real ``python -m synchro`` processes over
FTPS on loopback, real SQLite files). Whatever the draw: no row lost or extra on any node,
the killed runs' rows closed « interrompu », nothing left « En cours... », every process
started again ends OK. The campaign itself (hundreds of seeds) is run by hand; these seeds
are a fixed sample, chosen where the kills land.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import require
from ftp_proxy import alias_available

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import soak_faults

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and loopback aliases are POSIX"),
]
# lives measured on a 2-core machine, 2 scenarios at once (a fixed one: no measuring here)
CALIBRATION = (
    "serve.A=4.90,serve.B=4.45,serve.SIEGE=5.80,sync.A=3.56,sync.B=3.22,"
    "sync.SIEGE=4.73,upload=399199,download=166554,control=11103"
)
# kill2 7: the Siège on ``serve`` killed at 2.75 s, then 0.34 s after its restart (a service
# lives until stopped: both kills land on any machine); kill2 19: B at 0.47 s, then 0.77 s
# after its restart, each run leaving its row « En cours... »; kill2n 6: A at 0.16 s and B at
# 0.56 s, kill2n 95: the Siège's ``sync`` at 0.07 s and A at 0.60 s (early in every life: both
# land on any machine); cutctl 1: A's control cut at bytes 1034, 1932 and 4180 (a session's
# handshake and login are more) and its download at 126,741 bytes; cutctl 34: the Siège on
# ``serve``, control cuts at 454, 491 and 3758, the download cut at 60,741 bytes
SEEDS = [
    *[(2, "kill"), (3, "kill"), (4, "kill"), (7, "kill2"), (19, "kill2")],
    *[(6, "kill2n"), (95, "kill2n"), (2, "cut"), (3, "cut"), (1, "cutctl"), (34, "cutctl")],
]


def test_random_faults_lose_nothing_and_leave_nothing_running(tmp_path: Path) -> None:
    if not alias_available():
        require("127.0.0.2 is not a loopback address here (the cutting proxy needs it)")
    cal = soak_faults.Calibration.parse(CALIBRATION)
    faults, _cal = soak_faults.campaign(SEEDS, 2, tmp_path, cal)
    assert [(f.seed, f.kind) for f in faults] == sorted(SEEDS)
    failed = {f"{f.seed} {f.kind} ({f.drawn()})": f.problems() for f in faults if f.problems()}
    assert not failed, failed
    outcomes = [f.outcome for f in faults if f.outcome]
    assert sum(o.lost + o.extra for o in outcomes) == 0
    assert all(o.interrupted_closed and not o.left_running for o in outcomes)
    assert any(f.landed for f in faults if f.kind == "kill"), "no kill landed"
    assert any(f.again_landed for f in faults if f.kind == "kill2"), "no second kill landed"
    assert any(f.landed and f.landed2 for f in faults if f.kind == "kill2n"), "no two kills"
    assert sum(o.cuts for f in faults if f.kind == "cut" and (o := f.outcome)) >= 1
    assert sum(o.control_cuts for f in faults if f.kind == "cutctl" and (o := f.outcome)) >= 1
