"""Failpoints: named places where a test may have this process die (SIGKILL), as a power
cut or ``kill -9`` would, to prove that a round survives a crash anywhere.

The engine calls ``point("site.upload.before_rename")`` at such places. Nothing happens
unless the environment variable ``SYNCHRO_KILL_AT`` names that point:

- ``name``      die the first time ``name`` is reached;
- ``name:N``    die the N-th time (1-based) it is reached;
- ``name@B``    for byte counters (``point_bytes``): die once ``B`` bytes or more of the
                transfer named ``name`` have been moved.

``SYNCHRO_STOP_AT`` takes the same ``name`` or ``name:N`` and has the process SIGSTOP
itself there instead: a test then does what it wants meanwhile (kills the database server
at that very step of an apply) and lets it go on with SIGCONT.

The variables are read once, on the first call (never at import); afterwards an unnamed
point costs one dictionary lookup. A process only ever sees its own variable, so a test chooses
which process of a group dies, and where.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from dataclasses import dataclass, field

ENV = "SYNCHRO_KILL_AT"
STOP_ENV = "SYNCHRO_STOP_AT"


@dataclass
class _Plan:
    """The one kill the environment asks for (``names`` empty: none)."""

    names: dict[str, int] = field(default_factory=dict)  # point -> the hit that kills
    byte_limits: dict[str, int] = field(default_factory=dict)  # transfer -> bytes
    hits: dict[str, int] = field(default_factory=dict)
    stops: dict[str, int] = field(default_factory=dict)  # point -> the hit that stops


def _parse(spec: str) -> _Plan:
    plan = _Plan()
    spec = spec.strip()
    if not spec:
        return plan
    if "@" in spec:
        name, _, limit = spec.partition("@")
        plan.byte_limits[name] = int(limit)
    elif ":" in spec:
        name, _, nth = spec.partition(":")
        plan.names[name] = max(1, int(nth))
    else:
        plan.names[spec] = 1
    return plan


@functools.cache
def _plan() -> _Plan:
    """Read on first use, then kept for the life of the process."""
    plan = _parse(os.environ.get(ENV, ""))
    plan.stops = _parse(os.environ.get(STOP_ENV, "").partition("@")[0]).names
    return plan


def die() -> None:
    """SIGKILL this process now: no ``finally``, no ``atexit``, no flush."""
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """Die here (or stop, ``SYNCHRO_STOP_AT``) if the environment names this point and
    this is the hit it names."""
    plan = _plan()
    nth, stop_at = plan.names.get(name), plan.stops.get(name)
    if nth is None and stop_at is None:
        return
    hit = plan.hits.get(name, 0) + 1
    plan.hits[name] = hit
    if nth is not None and hit >= nth:
        die()
    if stop_at is not None and hit == stop_at:
        # Sent to this very thread, which stops before it goes on: sent to the process,
        # another thread may take it (``sync`` runs its work on a thread of its own) and
        # this one run on a moment — past the point, its COMMIT answered.
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)  # until the test's SIGCONT


def point_bytes(name: str, done: int) -> None:
    """Die once ``done`` (bytes of the transfer ``name`` moved so far) reaches the limit
    the environment names (``name@B``)."""
    limit = _plan().byte_limits.get(name)
    if limit is not None and done >= limit:
        die()


def reset() -> None:
    """Forget the plan read from the environment (tests that change it in-process)."""
    _plan.cache_clear()
