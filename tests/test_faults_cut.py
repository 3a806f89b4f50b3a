"""A round survives cut links (issue 12, point 3).

Establishment A dials the Siège through a loopback relay (``tests/ftp_proxy.py``) that cuts
data connections at a chosen byte, as a network cut would; B dials the Siège directly. The
transfer must resume (REST) or start over, the run finish OK within its attempts budget, the
packages be verified (SHA-256) and every node hold the expected rows. Attempts that advance
must not use up the budget. The last scenarios put A in its own network namespace behind a
2 Mbit/s link (veth pair + ``tc tbf``), where the races that loopback always wins are lost.

As in ``test_faults_kill.py``, the selected scenarios run together (``outcomes``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from fault_helpers import (
    Job,
    Outcome,
    build_template,
    cut_job,
    netns_problem,
    print_table,
    run_all,
    slow_link_job,
)
from ftp_proxy import alias_available

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="loopback aliases and netns are Linux"),
]
WORKERS = 3
Cut = tuple[int, int] | None  # (at this many bytes of a data connection, this many times)

CUTS: dict[str, tuple[Cut, Cut]] = {  # name -> (upload cut, download cut)
    "upload-100k": ((100_000, 1), None),
    "upload-250k": ((250_000, 1), None),
    "download-30k": (None, (30_000, 1)),
    "download-100k": (None, (100_000, 1)),
    "both": ((200_000, 1), (60_000, 1)),
    "upload-3x": ((80_000, 3), None),
    "download-3x": (None, (30_000, 3)),
}
SERVE_CUTS = ("upload-250k", "download-100k", "both")  # the same against ``serve``
# every attempt advances, but A is cut more often than its attempts (BUDGET_ATTEMPTS)
BUDGET_ATTEMPTS = 4
BUDGET: dict[str, tuple[Cut, Cut]] = {  # each cut lets tens of KB through
    "upload-6x": ((60_000, 6), None),
    "download-6x": (None, (30_000, 6)),
}
SLOW = {"slow-steady": 0.0, "slow-link-down-4s": 4.0}  # name -> seconds the link is down


def cut_names() -> list[str]:
    return (
        [f"sync-{c}" for c in CUTS]
        + [f"serve-{c}" for c in SERVE_CUTS]
        + [f"sync-{c}" for c in BUDGET]
    )


def slow_names() -> list[str]:
    return [f"{m}-{s}" for m in ("sync", "serve") for s in SLOW]


def jobs(template: Path, slow: bool) -> dict[str, Job]:
    out: dict[str, Job] = {}
    for name in cut_names():
        mode, cut = name.split("-", 1)
        upload, download = {**CUTS, **BUDGET}[cut]
        attempts = BUDGET_ATTEMPTS if cut in BUDGET else 0
        out[name] = cut_job(template, mode, upload, download, name, attempts)
    if slow:
        for index, name in enumerate(slow_names()):
            mode, what = name.split("-", 1)
            out[name] = slow_link_job(template, mode, SLOW[what], index, name)
    return out


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """The outcome of every scenario selected in this session, run together."""
    if not alias_available():
        require("127.0.0.2 is not a loopback address here (the cutting proxy needs it)")
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is sys.modules[__name__] and hasattr(item, "callspec")
    }
    root = tmp_path_factory.mktemp("cuts")
    template = build_template(root / "template")
    chosen = {n: j for n, j in jobs(template, not netns_problem()).items() if n in selected}
    result = run_all(chosen, root / "runs", WORKERS)
    yield result
    print_table(request, result, "cuts")


@pytest.mark.parametrize("name", cut_names())
def test_cut_link_resumes_and_the_round_finishes(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    _cut, kind = name.split("-", 1)
    wanted = BUDGET_ATTEMPTS + 1 if kind in BUDGET else 1
    assert outcome.cuts >= wanted, f"only {outcome.cuts} data connection(s) cut"
    problems = outcome.problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", slow_names())
def test_rate_limited_link_finishes_the_round(outcomes: dict[str, Outcome], name: str) -> None:
    problem = netns_problem()
    if problem:
        require(problem)
    problems = outcomes[name].problems()
    assert not problems, "\n".join(problems)
