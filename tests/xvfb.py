"""A private X display for GUI tests: Xvfb on a free display number, stopped by PID.

Xvfb picks the free number itself (``-displayfd``), so parallel runs never collide.
``DISPLAY`` is set for the whole session because Tk and pystray's Xlib read it once.
Use the ``xvfb`` fixture (imported by the GUI test modules); without Xvfb the test
calls ``require()``: skipped on a user's machine, a failure in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from conftest import require


def start_xvfb(width: int = 1280, height: int = 800) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb and return (process, display name like ``:12``)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        require("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            exe,
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        number = pipe.readline().strip().decode()
    if not number:
        proc.kill()
        proc.wait()
        raise RuntimeError("Xvfb did not report a display number")
    return proc, f":{number}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_RUNNING: dict[str, subprocess.Popen[bytes]] = {}  # one Xvfb per test session


@pytest.fixture(scope="session", name="xvfb")
def xvfb_fixture(request: pytest.FixtureRequest) -> Iterator[str]:
    """The display name of a running Xvfb; DISPLAY points at it for the rest of the session.

    Every GUI test module imports this fixture; they all share one server, because Tk keeps
    its hidden root window on the first display it opened.
    """
    if not _RUNNING:
        proc, display = start_xvfb()
        _RUNNING[display] = proc
        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display

        def cleanup() -> None:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old
            stop(proc)

        request.config.add_cleanup(cleanup)
    yield next(iter(_RUNNING))
