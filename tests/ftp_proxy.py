"""A loopback TCP relay for an FTP(S) server, able to cut a data transfer after N bytes.

The server listens on 127.0.0.1 (control port and a small passive port range); the proxy
listens on 127.0.0.2 on the SAME port numbers and relays each connection to 127.0.0.1.
Because ftplib ignores the address in a PASV reply and dials the control connection's peer
(127.0.0.2) with the announced port, control and data connections both go through the proxy
without reading the (encrypted) control channel. ``cut_next_data_after(n)`` makes the next
data connection die after ``n`` relayed bytes, as a network cut would: both sides closed.
``cut_control_at(*offsets)`` cuts the control connection in use when the control bytes
relayed so far (every control connection, both ways: ``control_bytes``) reach each offset.

Threads only, loopback only; ``stop()`` closes everything it opened.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading

LISTEN = "127.0.0.2"
TARGET = "127.0.0.1"


def alias_available() -> bool:
    """127.0.0.2 answers on Linux (all of 127/8 is loopback); not on macOS by default."""
    try:
        with socket.socket() as s:
            s.bind((LISTEN, 0))
    except OSError:
        return False
    return True


def ephemeral_low() -> int:
    """Where the kernel's range of ports for outgoing connections starts (Linux)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_GIVEN: set[int] = set()  # ports handed out in this test process: never handed out twice
_GIVEN_LOCK = threading.Lock()


def claim(ports: range) -> bool:
    """Take ``ports`` for one test's servers when no other test of this process has them.
    A server started again on its port for a next round (between two rounds nothing holds
    it) lost it once to a scenario running side by side that had just found it free: « Address
    already in use » (measured, the kill tests)."""
    with _GIVEN_LOCK:
        if _GIVEN.intersection(ports):
            return False
        _GIVEN.update(ports)
        return True


def free_port_range(count: int, attempts: int = 200) -> tuple[int, int]:
    """A run of ``count`` ports free on both 127.0.0.1 and 127.0.0.2 (checked, then released;
    ``claim``-ed for this test alone)."""
    rng = random.Random()
    for _ in range(attempts):
        low = ephemeral_low()  # below it: no outgoing connection can hold one of them
        start = rng.randrange(max(1024, low - 12000), low - count)
        socks: list[socket.socket] = []
        try:
            for port in range(start, start + count):
                for host in (TARGET, LISTEN):
                    s = socket.socket()
                    socks.append(s)
                    s.bind((host, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        if claim(range(start, start + count)):
            return (start, start + count - 1)
    raise RuntimeError("no free port range on loopback")


class FTPProxy:
    def __init__(self, control_port: int, data_ports: tuple[int, int]) -> None:
        self.control_port = control_port
        self.data_ports = list(range(data_ports[0], data_ports[1] + 1))
        self.host = LISTEN
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cut_after: int | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.data_bytes: list[int] = []  # bytes relayed by each finished data connection
        self.seen = bytearray()  # every byte relayed, both ways (what a wiretap would see)
        self.control_bytes = 0  # relayed by every control connection so far, both ways
        self.control_cuts: list[int] = []  # offsets (in control_bytes) where a cut came
        self._control_at: list[int] = []  # offsets still to come

    def cut_control_at(self, *offsets: int) -> None:
        """Cut the control connection relaying the byte that brings ``control_bytes`` to
        each of ``offsets`` (a command or reply cut in its middle, both sides closed); they
        replace the offsets not reached yet (none: no more cuts)."""
        with self._lock:
            self._control_at = sorted({o for o in offsets if o > 0})

    def _control_keep(self, size: int) -> tuple[int, bool]:
        """How many of ``size`` control bytes to relay, and whether to cut after them."""
        with self._lock:
            before = self.control_bytes
            due = [o for o in self._control_at if o <= before + size]
            keep = max(0, min(size, due[0] - before)) if due else size
            if due:
                self._control_at.remove(due[0])
                self.control_cuts.append(due[0])
            self.control_bytes += keep
            return keep, bool(due)

    def cut_next_data_after(self, nbytes: int) -> None:
        with self._lock:
            self._cut_after = nbytes

    def start(self) -> FTPProxy:
        for port in [self.control_port, *self.data_ports]:
            listener = socket.socket()
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((LISTEN, port))
                listener.listen(8)
            except OSError:
                listener.close()
                raise
            listener.settimeout(0.1)
            self._sockets.append(listener)
            self._spawn(self._accept_loop, listener, port, port != self.control_port)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=5)

    def __enter__(self) -> FTPProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        with self._lock:
            self._threads.append(t)

    def _accept_loop(self, listener: socket.socket, port: int, is_data: bool) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection((TARGET, port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                cut = self._cut_after if is_data else None
                if is_data:
                    self._cut_after = None
            self._relay(client, upstream, cut, is_data)

    def _relay(self, a: socket.socket, b: socket.socket, cut: int | None, is_data: bool) -> None:
        state = {"bytes": 0, "closed": False}
        lock = threading.Lock()

        def close_both() -> None:
            with lock:
                if state["closed"]:
                    return
                state["closed"] = True
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
            if is_data:
                self.data_bytes.append(int(state["bytes"]))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    chunk = src.recv(65536)
                    if not chunk:
                        with contextlib.suppress(OSError):
                            dst.shutdown(socket.SHUT_WR)
                        return
                    with lock:
                        if not is_data:
                            keep, cutting = self._control_keep(len(chunk))
                            chunk = chunk[:keep]
                        elif cut is not None and state["bytes"] + len(chunk) >= cut:
                            chunk = chunk[: max(0, cut - int(state["bytes"]))]
                            cutting = True
                        else:
                            cutting = False
                        state["bytes"] = int(state["bytes"]) + len(chunk)
                        self.seen += chunk
                    if chunk:
                        dst.sendall(chunk)
                    if cutting:
                        close_both()
                        return
            except OSError:
                close_both()

        done = threading.Barrier(2, action=close_both)

        def run(src: socket.socket, dst: socket.socket) -> None:
            pump(src, dst)
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait(timeout=30)

        self._spawn(run, a, b)
        self._spawn(run, b, a)
