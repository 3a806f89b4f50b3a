"""``platform/stop_signals``: a stop signal is seen whatever the work is doing, and its
handler takes no lock. Each case is a real Python process signalled by PID.

The handlers ``synchro serve`` had set ``threading.Event.set`` on the event its main thread
waited on: a signal coming while that thread held the Event's own lock (a few bytecodes of
every 0.5 s wait; longer when the engine thread keeps the GIL) ran the handler there, which
waited for that lock for ever — a service that never stops (the fault campaign saw one
``serve`` not ended 30 s after its SIGTERM, kill2n seed 1017). The first test shows that
deadlock with the lock held on purpose; the second that the handlers now set a flag only.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM by PID is POSIX")

LIMIT_S = 20.0

# the main thread holds the Event's lock when the signal comes (raised by itself: its
# handler runs at the next bytecode, as a signal landing in that window would)
HELD = """
import os, signal, threading
done = threading.Event()
{install}
with done._cond:
    os.kill(os.getpid(), signal.SIGTERM)
    pass
{then}
print("stopped", flush=True)
"""


def _run(code: str, timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None


def _sigterm_when_ready(code: str) -> tuple[int, str, str]:
    """Run ``code`` in a new Python; once it prints "ready", SIGTERM it by PID. Its exit
    code, what it printed after "ready" (stripped), its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=LIMIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, out.strip(), err


def test_a_handler_that_sets_the_awaited_event_deadlocks_when_the_lock_is_held() -> None:
    """The old ``serve`` handler, in the window: the process never ends (the cause)."""
    old = HELD.format(
        install="signal.signal(signal.SIGTERM, lambda *_: done.set())",
        then="done.wait()",
    )
    assert _run(old, 5) is None


def test_the_stop_handler_takes_no_lock() -> None:
    """``StopSignals`` in the same window: the stop is seen, the work ends."""
    new = HELD.format(
        install=(
            "from synchro.platform.stop_signals import StopSignals, run_stoppable\n"
            "signals = StopSignals().install()"
        ),
        then="run_stoppable(lambda: done.wait(), done.set, signals)",
    )
    done = _run(new, LIMIT_S)
    assert done is not None, "still running"
    assert (done.returncode, done.stdout.strip()) == (0, "stopped"), done.stderr


def test_a_stop_is_seen_while_the_work_blocks_in_c() -> None:
    """The work waits in a socket read (C, no timeout): ``on_stop`` runs at once from the
    main thread and ends it (as ``synchro sync``'s shuts its FTP session down)."""
    code = """
    import socket
    from synchro.platform.stop_signals import StopSignals, run_stoppable
    signals = StopSignals().install()
    a, b = socket.socketpair()
    print("ready", flush=True)
    got = run_stoppable(lambda: a.recv(1), lambda: a.shutdown(socket.SHUT_RDWR), signals)
    print("stopped", repr(got), flush=True)
    """
    code_, out, err = _sigterm_when_ready(code)
    assert (code_, out) == (0, "stopped b''"), err


def test_a_work_no_stop_reaches_is_waited_for_give_up_s_at_most() -> None:
    """The work ignores the stop (``on_stop`` cannot cut it: a statement sent to a database
    server that hangs): ``StopNotHonoured`` after ``give_up_s``, the work left running
    (``tests/test_stop_server_hangs.py`` has the real one)."""
    code = """
    import threading
    from synchro.errors import ErrorKind
    from synchro.platform.stop_signals import StopNotHonoured, StopSignals, run_stoppable
    signals = StopSignals().install()
    stuck = threading.Event()
    print("ready", flush=True)
    try:
        run_stoppable(lambda: stuck.wait(), lambda: None, signals, give_up_s=0.5)
    except StopNotHonoured as exc:
        print("given up", exc.kind is ErrorKind.STOPPED, flush=True)
    """
    code_, out, err = _sigterm_when_ready(code)
    assert (code_, out) == (0, "given up True"), err
