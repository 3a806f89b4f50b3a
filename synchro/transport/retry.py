"""Try a transfer *Nombre de tentatives* times, *Temps entre tentatives* apart.

What is retried: every ``TransportError`` (network cut, timeout, refused connection, DNS
failure, TLS handshake cut, size or checksum mismatch after a transfer...), because the next
attempt may succeed: uploads and downloads resume where they stopped.

What is NOT retried (raised at once): a ``ConnectionTestError`` whose ``code`` is in
``PERMANENT_KINDS``:

- ``auth``: wrong site code or secret, or this address is blocked after repeated failures.
  Retrying cannot fix the secret and would only extend the ban.
- ``certificate``: the Siège shows a certificate other than the pinned one. Either an
  attacker is in the middle or the certificate was renewed; both need a human
  (``synchro trust``), never a silent retry.
- ``quota``: the file is larger than the Siège accepts; it will be as large next time.

Any other exception (a bug, a disk error on this machine) is not a transport problem and
propagates at once. The wait between attempts is interruptible by ``cancel`` (ARRETER):
the helper then raises ``Cancelled``. ``sleep`` is injected so tests never wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from synchro.errors import Cancelled, ConnectionTestError, TransportError

T = TypeVar("T")

PERMANENT_KINDS = frozenset({"auth", "certificate", "quota"})


def is_permanent(error: TransportError) -> bool:
    """True when retrying ``error`` cannot help (see the module docstring)."""
    return isinstance(error, ConnectionTestError) and error.code in PERMANENT_KINDS


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    delay_s: float,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    on_attempt: Callable[[int, Exception], None] | None = None,
    progressed: Callable[[], int] | None = None,
) -> T:
    """Run ``action`` until it succeeds, at most ``attempts`` times (at least once).

    ``on_attempt(number, error)`` is called after each failed attempt (1-based number), before
    waiting, so the caller can log "tentative 3/10 : ...". When every attempt failed the last
    ``TransportError`` is raised. Without an injected ``sleep`` the wait is
    ``cancel.wait(delay_s)`` (or a private Event), so ARRETER interrupts it at once.

    ``progressed()`` (a counter of bytes or blocks moved) makes an attempt that moved data
    before failing start the count again: a link cut several times during one long
    transfer does not use up the attempts while each try advances (at most ten times the
    attempts in all, so a transfer that always fails after moving data still ends).
    """
    total = max(1, attempts)
    number = tries = 0
    while True:
        tries += 1
        _check_cancel(cancel)
        before = progressed() if progressed is not None else 0
        try:
            return action()
        except TransportError as exc:
            moved = progressed is not None and progressed() > before
            number = 1 if moved else number + 1
            if on_attempt is not None:
                on_attempt(number, exc)
            if is_permanent(exc) or number >= total or tries >= total * 10:
                raise
        _wait(delay_s, cancel, sleep)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _wait(
    delay_s: float, cancel: threading.Event | None, sleep: Callable[[float], None] | None
) -> None:
    if delay_s > 0:
        if sleep is not None:
            sleep(delay_s)
        else:
            (cancel or threading.Event()).wait(delay_s)
    _check_cancel(cancel)
