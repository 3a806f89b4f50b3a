"""A stop while a data connection waits for an answer that never comes.

A firewall that leaves the Siège's passive ports closed and drops packets (rather than
refusing them) lets the control connection work and leaves every data connection waiting
up to the session's timeout (60 s). A stop must end that wait at once (``Dialing``,
``cancel_watch.dial``): the shutdown of the control socket does not reach a connection
still being made. The scene runs in a network namespace of its own (``unshare --net``,
deleted with the process), where ``tc`` drops every packet to the passive port:
tests/passive_probe.py, with a real Siège FTPS server and a real ``SiteClient``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import require

PROBE = Path(__file__).with_name("passive_probe.py")


def _problem() -> str:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "a network namespace of its own needs root (unshare --net)"
    for tool in ("unshare", "ip", "tc"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (util-linux, iproute2)"
    return ""


def probe(tmp_path: Path, stop_after: float, timeout: float) -> dict[str, Any]:
    problem = _problem()
    if problem:
        require(problem)
    command = ["unshare", "--net", sys.executable, str(PROBE), str(tmp_path)]
    done = subprocess.run(
        [*command, str(stop_after), str(timeout)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_a_stop_the_unanswered_data_connection_is_a_timeout(tmp_path: Path) -> None:
    """The scene is what it says: the control connection works, the listing's data
    connection is never answered and ends at the session's timeout."""
    result = probe(tmp_path, stop_after=0, timeout=1)
    assert result["root"] == "TimeoutError", result
    assert "ne répond pas" in result["raised"] and "liste de /out" in result["raised"], result


def test_a_stop_ends_a_data_connection_that_is_never_answered(tmp_path: Path) -> None:
    """Stopped 0.5 s into the wait: ``Cancelled``, because the connection was given up
    (``ConnectionAbortedError``), not because the kernel or the timeout (20 s) ended it.
    The old code waited until the kernel gave up (6 s here: its SYNs are dropped on
    this machine, which makes it give up sooner than across a network)."""
    result = probe(tmp_path, stop_after=0.5, timeout=20)
    assert result["raised"].startswith("Cancelled"), result
    assert result["root"] == "ConnectionAbortedError", result
    assert result["took"] < 4, result  # (the bound of a hang: the kernel's is 6 s)
