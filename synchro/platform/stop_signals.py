"""A stop asked by a signal (SIGTERM, Ctrl-C), seen at once whatever the work is doing.

Windows' service manager, a shutdown and systemd ask a service to stop and kill it 5-20 s
later. Python runs a signal's handler on the main thread only, between two bytecodes: a
main thread blocked in C — a socket read of ``synchro sync``'s run waiting on a silent
Siège (60 s), SQLite waiting for another program's lock (30 s), a long statement — saw
the stop only when that call returned. And a handler that sets an ``Event`` the main
thread is waiting on can deadlock on the Event's own lock, taken by the main thread just
when the signal came. So:

- ``StopSignals`` installs handlers that only set a flag (no lock taken);
- the main thread only waits (``wait``: short sleeps, which a signal cuts), and the work
  runs on a thread of its own (``run_stoppable``); on the first stop the main thread calls
  ``on_stop`` (ARRETER: flags the work honours at its next safe point, sockets shut),
  then waits for the work to end — ``GIVE_UP_S`` at most (``StopNotHonoured``): a work
  stuck where no stop reaches it (a database server that hangs) is left there;
- a stop that takes longer than ``STUCK_S`` writes every thread's stack on stderr
  (``stacks_if_stuck``; the service's log): a hang in the field says where it waits.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Generic, NoReturn, TypeVar

from synchro.errors import ErrorKind, SynchroError

T = TypeVar("T")
POLL_S = 0.1
"""How long the main thread sleeps between two looks at the flag (a signal cuts it)."""
STUCK_S = 8.0
"""A stop not done after that long has its threads' stacks written (``stacks_if_stuck``)."""
GIVE_UP_S = 20.0
"""A stop the work has not honoured after that long is waited for no more
(``StopNotHonoured``): the work is stuck in a call nothing can cut — a statement sent to a
database server that hangs, which reads no cancel either. As long as Windows' service
manager waits before it kills a service by default."""


class StopNotHonoured(SynchroError):
    """The work did not end within ``GIVE_UP_S`` of the stop. The caller ends the process
    as a kill would; its next start finds the run interrupted and makes it again (the
    Rapport row « interrompu », an import's intent record)."""

    default_kind = ErrorKind.STOPPED

    def __init__(self, seconds: float) -> None:
        super().__init__(say=("platform.stop.not_honoured", {"seconds": round(seconds)}))


class StopSignals:
    """``install()`` SIGTERM and SIGINT (and SIGBREAK on Windows) handlers that set
    ``asked``; ``wait(until)`` on the main thread until one came or ``until()`` holds."""

    def __init__(self) -> None:
        self.asked = False

    def install(self) -> StopSignals:
        """Must be called on the main thread (Python's rule for signal handlers)."""
        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            number = getattr(signal, name, None)
            if number is not None:
                signal.signal(number, self._handler)
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.asked = True  # nothing else: no lock may be taken here

    def wait(self, until: Callable[[], bool] = lambda: False) -> bool:
        """Sleep until a stop is asked (True) or ``until()`` holds (False)."""
        while not self.asked:
            if until():
                return False
            time.sleep(POLL_S)
        return True


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None


def run_stoppable(
    work: Callable[[], T],
    on_stop: Callable[[], None],
    signals: StopSignals,
    give_up_s: float = GIVE_UP_S,
) -> T:
    """``work()`` on a thread of its own while the main thread waits on ``signals``; at the
    first stop asked, ``on_stop()`` (it only sets flags), then the work is waited for
    (its stacks written should that take ``STUCK_S``), ``give_up_s`` at most:
    ``StopNotHonoured`` then, the work left where it is stuck. Its result, or its exception
    raised here."""
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = work()
        except BaseException as exc:  # given to the main thread, raised there
            outcome.error = exc

    worker = threading.Thread(target=run, name="synchro-work", daemon=True)
    worker.start()
    if signals.wait(until=lambda: not worker.is_alive()):
        on_stop()
        asked = time.monotonic()
        with stacks_if_stuck():  # a stop that hangs says where it waits
            while worker.is_alive():
                if time.monotonic() - asked > give_up_s:
                    raise StopNotHonoured(give_up_s)
                worker.join(POLL_S)
    worker.join()
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # (set: the work returned)


def end_now(said: str, code: int) -> NoReturn:
    """End the process at once with ``code``, saying ``said`` (stdout and the log), the
    work's thread left where it is stuck: nothing of it is closed or waited for, its state
    is what a kill leaves — the Rapport row « En cours » becomes « interrompu » at the next
    start, an import's intent record has it made again."""
    logging.getLogger("synchro").error("%s", said)
    print(said, flush=True)
    logging.shutdown()
    os._exit(code)


@contextlib.contextmanager
def stacks_if_stuck(after_s: float = STUCK_S) -> Iterator[None]:
    """While the block runs (a stop), every thread's stack is written on stderr should it
    last more than ``after_s`` (``faulthandler``: from a C thread, so a main thread stuck
    in a lock still gets it said). Nothing where there is no stderr (a windowed exe)."""
    stream = sys.stderr
    try:
        fileno = stream.fileno() if stream is not None else -1
    except (OSError, ValueError):
        fileno = -1
    if fileno < 0:
        yield
        return
    faulthandler.dump_traceback_later(after_s, exit=False, file=stream)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
