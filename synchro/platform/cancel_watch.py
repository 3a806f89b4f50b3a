"""Sockets that a stop shuts down at once, not at their timeout: a site's FTP session and
the report email.

ftplib blocks in the socket — reading a reply, writing a block of an upload, reading one of
a download — up to the session's timeout (60 s) when the Siège falls silent or the link
hangs without being cut; smtplib waits for a silent mail server's greeting up to its
timeout (30 s). ARRETER and a service's stop (SIGTERM: Windows' service manager and
systemd kill a service 5-20 s after asking) set the run's ``cancel``; ``CancelWatch`` then
shuts the sockets down from its own thread, so the blocked call fails at once and the
caller raises ``Cancelled`` (``SiteClient``: the partial file stays, the next run resumes
it) or gives the email up (``mail.smtp``). ``shutdown`` acts on the socket, not on the
descriptor: a duplicate is shut, and the owner's thread closes its sockets as usual (the
TLS layer's own ``shutdown`` would write an alert from this thread).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from synchro.errors import Cancelled

POLL_S = 0.2
"""How often the watch looks at ``cancel`` while a session is open (its only cost)."""


class CancelWatch:
    """While started: once ``cancel`` is set, every socket ``sockets()`` gives is shut
    down (``fired`` then says so). ``stop()`` ends the watch (the session closed)."""

    def __init__(self, cancel: threading.Event, sockets: Callable[[], Iterable[Any]]) -> None:
        self.cancel = cancel
        self.sockets = sockets
        self.fired = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CancelWatch:
        self._thread = threading.Thread(target=self._watch, name="synchro-ftp-cancel", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1)
        self._thread = None

    def _watch(self) -> None:
        while not self._done.is_set():
            if self.cancel.wait(POLL_S):
                if not self._done.is_set():
                    self.fired = True
                    for sock in self.sockets():
                        shut(sock)
                return


def stopped_by(cancel: threading.Event | None, exc: BaseException) -> None:
    """A session's error once ``cancel`` is set is the stop's doing: ``Cancelled``."""
    if cancel is not None and cancel.is_set():
        raise Cancelled() from exc


def shut(sock: Any) -> None:
    """Shut ``sock`` down for both directions from any thread (a duplicate of it: the
    owner's descriptor stays valid until the owner closes it); quiet when already gone."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sock.fileno()
        if fd >= 0:
            with socket.socket(fileno=os.dup(fd)) as dup:
                dup.shutdown(socket.SHUT_RDWR)
