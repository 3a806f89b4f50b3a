"""A stop while a connection waits for an answer that never comes: a passive data
connection, and the look-up of the Siège's name.

A firewall that leaves the Siège's passive ports closed and drops packets (rather than
refusing them) lets the control connection work and leaves every data connection waiting
up to the session's timeout (60 s). A stop must end that wait at once (``Dialing``,
``cancel_watch.dial``): the shutdown of the control socket does not reach a connection
still being made. The scene runs in a network namespace of its own (``unshare --net``,
deleted with the process), where ``tc`` drops every packet to the passive port:
tests/passive_probe.py, with a real Siège FTPS server and a real ``SiteClient``.

A name server that stops answering (the shop's router, its Internet box) leaves the
look-up of the Siège's name waiting by itself (5 s, twice, here); ``dial`` looks it up in
a thread of its own and gives up once a stop comes: tests/resolver_probe.py, in a network
and mount namespace of its own whose ``/etc/resolv.conf`` names a silent port of its own
loopback (nothing leaves the namespace).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conftest import require

PROBE = Path(__file__).with_name("passive_probe.py")


RESOLVER = Path(__file__).with_name("resolver_probe.py")


def _problem() -> str:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "a network namespace of its own needs root (unshare --net)"
    for tool in ("unshare", "ip", "tc", "mount"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (util-linux, iproute2)"
    return ""


def probe(tmp_path: Path, stop_after: float, timeout: float) -> dict[str, Any]:
    command = ["unshare", "--net", sys.executable, str(PROBE), str(tmp_path)]
    return run(command, str(stop_after), str(timeout))


def run(command: list[str], *args: str) -> dict[str, Any]:
    problem = _problem()
    if problem:
        require(problem)
    done = subprocess.run(
        [*command, *args],
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


def test_without_a_stop_a_silent_name_server_is_waited_for() -> None:
    """The scene is what it says: the look-up of the Siège's name waits for the silent
    name server (5 s, twice) and fails as a name not found."""
    result = resolve(stop_after=0)
    assert result["root"] == "gaierror", result
    assert "introuvable" in result["raised"], result


def test_a_stop_ends_the_look_up_of_the_siege_s_name() -> None:
    """Stopped 0.5 s into the look-up: ``Cancelled`` at once (``ConnectionAbortedError``),
    not once the resolver gives up (10 s; the old code waited that long)."""
    result = resolve(stop_after=0.5)
    assert result["raised"].startswith("Cancelled"), result
    assert result["root"] == "ConnectionAbortedError", result
    assert result["took"] < 5, result  # (the bound of a hang: the resolver's is 10 s)


def resolve(stop_after: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        command = ["unshare", "--net", "--mount", sys.executable, str(RESOLVER), folder]
        return run(command, str(stop_after))
