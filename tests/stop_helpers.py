"""Bringing a real ``synchro`` process into a state, then asking it to stop (SIGTERM by PID).

Shared by ``bench/bench_stop.py`` (how long each state takes to stop) and
``tests/test_stop_states.py`` (each state stops, says so, and the next start recovers).
Built on the fault suite's world (``fault_helpers.World``: a Siège and two establishments,
real processes, FTPS on loopback, real SQLite files).

- ``StallingProxy``: the loopback relay whose next data connection stops relaying after N
  bytes, both sockets left open (a link that hangs, not one that is cut);
- ``sigterm(proc)``: SIGTERM, then the seconds until it ended, its code and, when it had
  not ended ``STUCK_AFTER_S`` later, every thread's stack (py-spy);
- ``hold_lock(db)``: another process holding an SQLite file locked (``BEGIN EXCLUSIVE``);
- ``silent_mail_server(world, node)``: the node's report email sent to a server that
  accepts and never answers;
- ``wait_for(...)``: until a condition holds, or fail saying what was awaited.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fault_helpers as fh
from ftp_proxy import FTPProxy
from rounds_helpers import sql


class StallingProxy(FTPProxy):
    """``FTPProxy`` whose data connections stop relaying once ``stall_at`` bytes went
    through (0: never): the sender's buffers fill, the receiver waits, nothing is closed
    until ``stop()``. ``stalled`` is set when a connection has stalled."""

    def __init__(self, control_port: int, data_ports: tuple[int, int]) -> None:
        super().__init__(control_port, data_ports)
        self.stall_at = 0
        self.stalled = threading.Event()

    def _relay(self, a: socket.socket, b: socket.socket, cut: int | None, is_data: bool) -> None:
        at = self.stall_at
        if not is_data or not at:
            super()._relay(a, b, cut, is_data)
            return
        count = [0]
        lock = threading.Lock()

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while not self._stop.is_set():
                    chunk = src.recv(65536)
                    if not chunk:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    with lock:
                        keep = max(0, min(len(chunk), at - count[0]))
                        count[0] += keep
                    if keep:
                        dst.sendall(chunk[:keep])
                    if count[0] >= at:
                        self.stalled.set()
                        self._stop.wait()  # hold both sockets open, read nothing more
                        return
            except OSError:
                return

        self._spawn(pump, a, b)
        self._spawn(pump, b, a)


def stalling(world: fh.World) -> StallingProxy:
    """Site A dials the Siège through a ``StallingProxy`` on 127.0.0.2 (same port numbers),
    B directly (``fault_helpers.proxied``). The caller stops it."""
    return fh.proxied(world, StallingProxy)


STUCK_AFTER_S = 5.0


@dataclasses.dataclass
class Stopped:
    """How a process ended after its SIGTERM."""

    seconds: float  # from the signal to its end (the limit when it did not end)
    code: int | None  # None: still running at the limit (then killed)
    output: str
    stacks: str = ""  # py-spy's dump when it had not ended STUCK_AFTER_S after the signal


def sigterm(proc: fh.Proc, limit: float = 60.0, *, resume: bool = False) -> Stopped:
    """SIGTERM ``proc`` by PID and wait for its end (killed at ``limit``); ``resume``: it
    stopped itself (``SYNCHRO_STOP_AT``), the SIGTERM waits until a SIGCONT lets it go on."""
    started = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    if resume:
        proc.popen.send_signal(signal.SIGCONT)
    stacks = ""
    while proc.popen.poll() is None and time.monotonic() - started < limit:
        if not stacks and time.monotonic() - started > STUCK_AFTER_S:
            stacks = fh.stacks(proc.pid)
        time.sleep(0.02)
    seconds = time.monotonic() - started
    code = proc.popen.poll()
    if code is None:
        proc.popen.kill()
        proc.popen.wait(10)
    return Stopped(seconds, code, proc.output(), stacks)


def listening_control(world: fh.World, proc: fh.Proc, timeout: float = 30) -> None:
    """Until ``proc`` (a ``serve``) has written its control file: it is serving."""
    control = world.folder(proc.node) / "data" / "synchro.lock.control"

    def ready() -> bool:
        with contextlib.suppress(OSError):
            return control.stat().st_mtime >= proc.started
        return False

    wait_for(ready, f"{proc.node} serving", timeout, proc)


def wait_for(
    check: Callable[[], bool], what: str, timeout: float = 60, proc: fh.Proc | None = None
) -> None:
    """Until ``check()``; fails naming ``what`` (and the tail of ``proc``'s output)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        if proc is not None and proc.popen.poll() is not None:
            break
        time.sleep(0.02)
    tail = proc.output()[-2000:] if proc is not None else ""
    raise AssertionError(f"never came: {what}\n{tail}")


@contextlib.contextmanager
def hold_lock(db: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holds ``db`` locked (``BEGIN EXCLUSIVE``: no reader, no writer) until
    the block ends; it is stopped by PID."""
    code = (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    popen = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert popen.stdout is not None
        assert popen.stdout.readline().strip() == b"locked"
        yield popen
    finally:
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(10)


def big_rows(node: str, count: int) -> str:
    """SQL inserting ``count`` small rows into ``node``'s ``clients`` (its own id range, far
    from the rounds' ids): a package whose apply takes seconds."""
    base = fh.BASE[node] + 500_000
    return (
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < "
        f"{count}) INSERT INTO clients SELECT {base} + i, '{node} gros ' || i, 'x' FROM n;"
    )


# -- the states: each brings a world into it, SIGTERMs its victim, stops the rest ---------


@dataclasses.dataclass(frozen=True)
class How:
    """``big``: rows of a big apply; ``limit``: how long the victim may take to end (then it
    is killed and its ``Stopped.code`` is None)."""

    big: int = 200_000
    limit: float = 60.0


State = Callable[[fh.World, How], Stopped]


def siege_serve_idle(world: fh.World, how: How) -> Stopped:
    proc = world.siege("serve", open_round=False)
    listening_control(world, proc)
    return sigterm(proc, how.limit)


def site_serve_idle(world: fh.World, how: How) -> Stopped:
    proc = world.start("A", "serve")
    listening_control(world, proc)
    return sigterm(proc, how.limit)


def siege_serve_round_waiting(world: fh.World, how: How) -> Stopped:
    proc = world.siege("serve")  # a round opened (MANUELLE), no site comes
    time.sleep(1)
    return sigterm(proc, how.limit)


def siege_sync_waiting(world: fh.World, how: How) -> Stopped:
    proc = world.siege("sync")
    time.sleep(1)
    return sigterm(proc, how.limit)


def site_sync_waiting_package(world: fh.World, how: How) -> Stopped:
    """A delivered; the Siège waits for B, A for the Siège's package."""
    world.mutate(2)
    hq = world.siege("serve")
    site = world.start("A", "sync")
    inbox = world.folder("SIEGE") / "data" / "ftp" / "A" / "in"
    wait_for(lambda: any(inbox.glob("A-*.pkg")), "A's package at the Siège", 60, site)
    time.sleep(1)
    out = sigterm(site, how.limit)
    sigterm(hq)
    return out


def site_run(world: fh.World, mode: str) -> fh.Proc:
    """A's run now: ``synchro sync``, or its service (``serve``) asked by MANUELLE (the
    control channel, as ``synchro sync`` does beside a running service)."""
    site = world.start("A", mode)
    if mode == "serve":
        listening_control(world, site)
        fh.run_cli(world.folder("A"), "sync")
    return site


def _stalled(world: fh.World, at: int, victim: str, limit: float, mode: str = "sync") -> Stopped:
    """A's upload (``at`` bytes in) or download stalled in the proxy; SIGTERM ``victim``.
    A runs in ``mode`` (``site_run``)."""
    world.mutate(2)
    proxy = stalling(world)
    try:
        hq = world.siege("serve")
        outbox = world.folder("SIEGE") / "data" / "ftp" / "A" / "out"
        before = set(outbox.glob("*.pkg"))  # offered since the round before
        if at < 0:  # the download: B delivers too, the round closes, then A's download stalls
            b = world.start("B", "sync")
        site = site_run(world, mode)
        if at < 0:
            new = lambda: bool(set(outbox.glob("*.pkg")) - before)  # noqa: E731
            wait_for(new, "the Siège's package for A", 60, hq)
            proxy.stall_at = -at
        else:
            proxy.stall_at = at
        wait_for(proxy.stalled.is_set, "a stalled transfer", 60, site)
        time.sleep(1)
        out = sigterm(site if victim == "A" else hq, limit)
        sigterm(hq if victim == "A" else site)
        if at < 0:
            b.wait()
        return out
    finally:
        proxy.stop()


def site_serve_upload_stalled(world: fh.World, how: How) -> Stopped:
    return _stalled(world, 100_000, "A", how.limit, "serve")


def site_sync_upload_stalled(world: fh.World, how: How) -> Stopped:
    return _stalled(world, 100_000, "A", how.limit)


def siege_serve_upload_stalled(world: fh.World, how: How) -> Stopped:
    return _stalled(world, 100_000, "SIEGE", how.limit)


def site_sync_download_stalled(world: fh.World, how: How) -> Stopped:
    return _stalled(world, -50_000, "A", how.limit)


def siege_serve_download_stalled(world: fh.World, how: How) -> Stopped:
    return _stalled(world, -50_000, "SIEGE", how.limit)


def site_sync_big_apply(world: fh.World, how: How) -> Stopped:
    """A applies a big package of the Siège's, and is stopped in the middle of it whatever
    the machine's speed: it stops itself at its apply's second batch (``SYNCHRO_STOP_AT``),
    is SIGTERMed there and let go (before, a SIGTERM 0.5 s after the apply began came once
    the apply was over on a quiet machine: 30,000 rows in ~1 s)."""
    world.mutate(2)
    sql(world.db("SIEGE"), big_rows("SIEGE", how.big))
    hq = world.siege("serve")
    b = world.start("B", "sync")
    world.env = {"SYNCHRO_STOP_AT": "apply.batch:2"}
    try:
        site = world.start("A", "sync")
    finally:
        world.env = {}
    in_apply = "A stopped in its apply"
    wait_for(lambda: applying(world, "A") and fh.is_stopped(site), in_apply, 120, site)
    out = sigterm(site, how.limit, resume=True)
    b.wait()
    sigterm(hq)
    return out


def siege_serve_big_apply(world: fh.World, how: How) -> Stopped:
    """The Siège applies a big package of A's at its round's close."""
    world.mutate(2)
    sql(world.db("A"), big_rows("A", how.big))
    hq = world.siege("serve")
    sites = [world.start(s, "sync") for s in fh.SITES]
    for site in sites:
        wait_for(lambda p=site: _says(p, "envoyées"), f"{site.node} delivered", 180, site)
    time.sleep(2)  # the round closes, the Siège applies A's package
    out = sigterm(hq, how.limit)
    for s in sites:
        sigterm(s)
    return out


def site_sync_db_locked(world: fh.World, how: How, mode: str = "sync") -> Stopped:
    """Another program holds A's database locked while A's run needs it."""
    world.mutate(2)
    hq = world.siege("serve")
    with hold_lock(world.db("A")):
        site = site_run(world, mode)
        time.sleep(3)
        out = sigterm(site, how.limit)
    sigterm(hq)
    return out


def site_serve_db_locked(world: fh.World, how: How) -> Stopped:
    return site_sync_db_locked(world, how, "serve")


def site_sync_state_locked(world: fh.World, how: How) -> Stopped:
    """Another program holds A's state database locked."""
    world.mutate(2)
    hq = world.siege("serve")
    with hold_lock(world.folder("A") / "data" / "state.db"):
        site = world.start("A", "sync")
        time.sleep(3)
        out = sigterm(site, how.limit)
    sigterm(hq)
    return out


def siege_serve_db_locked(world: fh.World, how: How) -> Stopped:
    """Another program holds the Siège's database locked when its round closes."""
    world.mutate(2)
    hq = world.siege("serve")
    with hold_lock(world.db("SIEGE")):
        sites = [world.start(s, "sync") for s in fh.SITES]
        inbox = world.folder("SIEGE") / "data" / "ftp" / "B" / "in"
        wait_for(lambda: any(inbox.glob("B-*.pkg")), "B's package at the Siège", 60, hq)
        time.sleep(2)
        out = sigterm(hq, how.limit)
    for s in sites:
        sigterm(s)
    return out


def siege_serve_after_round(world: fh.World, how: How) -> Stopped:
    """The round ended OK, every site done: the harness's stop (kill2n 1017)."""
    world.mutate(2)
    hq = world.siege("serve")
    for proc in [world.start(s, "sync") for s in fh.SITES]:
        proc.wait()
    return sigterm(hq, how.limit)


@contextlib.contextmanager
def silent_mail_server(world: fh.World, node: str) -> Iterator[int]:
    """``node`` emails its report (30 s timeout) to a loopback port whose connections the
    kernel accepts and nobody answers: the email waits for a greeting that never comes.
    Its email settings are put back as they were when the block ends."""
    from synchro.config.model import EmailSettings
    from synchro.config.store import load_config, save_config

    path = world.folder(node) / "synchro.toml"
    before = load_config(path)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        email = EmailSettings(
            server="127.0.0.1",
            port=port,
            sender="synchro@example.com",
            recipients=("chef@example.com",),
            timeout_s=30,
        )
        save_config(dataclasses.replace(before, send_email=True, email=email), path)
        try:
            yield port
        finally:
            save_config(before, path)


def site_sync_mail_silent(world: fh.World, how: How) -> Stopped:
    """A's run has ended; its report email waits on a silent mail server."""
    world.mutate(2)
    with silent_mail_server(world, "A"):
        hq = world.siege("serve")
        b = world.start("B", "sync")
        site = world.start("A", "sync")
        ended = "A's run ended, its email going"
        wait_for(lambda: _says(site, "Fin de la synchronisation"), ended, 120, site)
        time.sleep(1)
        out = sigterm(site, how.limit)
        b.wait()
        sigterm(hq)
    return out


def site_sync_siege_unanswered(world: fh.World, how: How) -> Stopped:
    """A has made its package and dials the Siège at a port that never answers (its
    connection requests dropped, as by a firewall: ``smtp_server.unanswered_port``); the
    connection would wait up to the session's 60 s timeout."""
    from smtp_server import unanswered_port

    from synchro.config.store import load_config, save_config

    world.mutate(2)
    path = world.folder("A") / "synchro.toml"
    config = load_config(path)
    with unanswered_port() as port:
        dialing = dataclasses.replace(config.site_settings, hq_port=port)
        save_config(dataclasses.replace(config, site_settings=dialing), path)
        site = world.start("A", "sync")
        outbox = world.folder("A") / "data" / "packages" / "outbox"
        wait_for(lambda: any(outbox.glob("A-*.pkg")), "A's package made", 60, site)
        time.sleep(1)
        return sigterm(site, how.limit)


def applying(world: fh.World, node: str) -> bool:
    """``node`` has begun applying a package: its intent is recorded (committed before the
    apply's transaction, cleared with it) in its state database, read here read-only."""
    uri = f"file:{world.folder(node) / 'data' / 'state.db'}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM intent").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _says(proc: fh.Proc, words: str) -> bool:
    return words in proc.output()


STATES: dict[str, State] = {
    f.__name__: f
    for f in (
        siege_serve_idle,
        site_serve_idle,
        siege_serve_round_waiting,
        siege_sync_waiting,
        site_sync_waiting_package,
        site_sync_upload_stalled,
        site_serve_upload_stalled,
        siege_serve_upload_stalled,
        site_sync_download_stalled,
        siege_serve_download_stalled,
        site_sync_big_apply,
        siege_serve_big_apply,
        site_sync_db_locked,
        site_serve_db_locked,
        site_sync_state_locked,
        siege_serve_db_locked,
        siege_serve_after_round,
        site_sync_mail_silent,
        site_sync_siege_unanswered,
    )
}
