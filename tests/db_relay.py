"""A loopback TCP relay in front of a database server that can cut a connection at its
COMMIT, as a network cut at the worst moment would.

``DbRelay(port)`` listens on 127.0.0.1 (a port of its own) and relays every connection to
127.0.0.1:``port`` (PostgreSQL, MariaDB). ``arm(kept)``: the next client message that
holds the statement ``COMMIT`` (psqlODBC and MariaDB Connector/ODBC both send their
``SQLEndTran`` as that text) ends the connection — either before the server sees it
(``kept=False``: the server rolls the transaction back when the connection drops) or once
the server has answered it, the answer never relayed (``kept=True``: committed, and the
client cannot know). ``cuts`` counts the connections cut. Threads only; ``stop()`` closes
everything it opened.
"""

from __future__ import annotations

import contextlib
import socket
import threading

COMMIT = b"COMMIT"


class DbRelay:
    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        self._armed: bool | None = None  # None: not armed; else: whether the commit is kept
        self._lock = threading.Lock()
        self._open: list[socket.socket] = [self.listener]
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def connection(self, connection: str) -> str:
        """An ODBC connection string like ``connection`` but through this relay."""
        parts = [p for p in connection.split(";") if not p.upper().startswith("PORT=")]
        return ";".join([*parts, f"PORT={self.port}"])

    def arm(self, kept: bool) -> None:
        with self._lock:
            self._armed = kept

    def stop(self) -> None:
        self._stopping = True
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._open += [client, server]
            swallow = threading.Event()  # the server's next answer is not relayed
            threading.Thread(
                target=self._upstream, args=(client, server, swallow), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(server, client, swallow), daemon=True
            ).start()

    def _take(self, data: bytes) -> bool | None:
        """Whether this client message is the armed cut's (and which), disarming it."""
        with self._lock:
            if self._armed is None or COMMIT not in data:
                return None
            kept, self._armed = self._armed, None
            self.cuts += 1
            return kept

    def _upstream(
        self, client: socket.socket, server: socket.socket, swallow: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                kept = self._take(data)
                if kept is False:
                    break  # the server never sees the COMMIT
                if kept:
                    swallow.set()
                server.sendall(data)
        except OSError:
            pass
        if not swallow.is_set():
            _close(client, server)

    def _downstream(
        self, server: socket.socket, client: socket.socket, swallow: threading.Event
    ) -> None:
        try:
            while data := server.recv(65536):
                if swallow.is_set():
                    break  # committed; the answer is lost with the connection
                client.sendall(data)
        except OSError:
            pass
        _close(client, server)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
