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

A connection not yet made is not a socket the watch can shut: a Siège behind a firewall
that drops packets, or passive ports nobody opened, leave ``connect`` waiting for an answer
up to the timeout. ``dial`` connects in steps of ``POLL_S`` and gives up as soon as
``cancel`` is set (the same on every system: it only needs ``select``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from synchro.errors import Cancelled

Address = tuple[Any, ...]

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


_PENDING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EAGAIN}


def dial(
    host: str,
    port: int,
    timeout: float | None,
    cancel: threading.Event | None,
    source_address: Any = None,
) -> socket.socket:
    """``socket.create_connection`` (each address tried for up to ``timeout``) that ends
    at once with ``ConnectionAbortedError`` when ``cancel`` is set, whether it waits for
    the name's address or for the other end to answer."""
    if cancel is None:
        return socket.create_connection((host, port), timeout, source_address)
    if not isinstance(timeout, int | float):  # (ftplib's and smtplib's "no timeout given")
        timeout = socket.getdefaulttimeout()
    error: OSError | None = None
    for family, kind, proto, _, address in _resolve(host, port, cancel):
        sock = socket.socket(family, kind, proto)
        try:
            if source_address:
                sock.bind(source_address)
            _connect(sock, address, timeout, cancel)
            sock.settimeout(timeout)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if cancel.is_set():
                raise
    raise error or OSError("getaddrinfo returns an empty list")


def _connect(
    sock: socket.socket, address: Address, timeout: float | None, cancel: threading.Event
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    sock.setblocking(False)
    code = sock.connect_ex(address)
    while code in _PENDING:
        _check(cancel)
        step = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
        if step <= 0:
            raise TimeoutError("timed out")
        _, ready, failed = select.select([], [sock], [sock], step)
        if ready or failed:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    _check(cancel)
    if code:
        raise OSError(code, os.strerror(code))  # (the subclass of its errno: refused...)


def _resolve(host: str, port: int, cancel: threading.Event) -> list[Any]:
    """``getaddrinfo`` in a thread of its own: a silent name server is waited for only
    until ``cancel`` is set (the thread ends by itself at the resolver's timeout)."""
    found: list[Any] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller
            failed.append(exc)
        done.set()

    threading.Thread(target=look_up, name="synchro-resolve", daemon=True).start()
    while not done.wait(POLL_S):
        _check(cancel)
    if failed:
        raise failed[0]
    return found


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise ConnectionAbortedError(errno.ECONNABORTED, "stopped while connecting")
