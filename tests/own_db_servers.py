"""Private PostgreSQL and MariaDB servers a test starts, crashes and starts again.

The shared servers (127.0.0.1:5432 and :3306) run the rest of the suite and must never be
touched: to kill the database *server* (a power cut of the database tier, a server
restarted in the night), a test starts its own instance of it here, on 127.0.0.1 and a
free port, its data in a directory of its own, as real server processes it stops by PID.

- ``OwnServer.start()`` starts the instance (made with ``initdb`` / ``mariadb-install-db``
  the first time) and waits until it answers through the real ODBC driver;
- ``crash()`` SIGKILLs every process of the instance (the server's PID and its
  descendants, found in ``/proc``; never a process found by name), as a power cut would;
- ``start()`` again on the same data directory: the server's own crash recovery;
- ``stop()`` ends it cleanly (SIGTERM, then SIGKILL after a while), by its PID;
- ``pause()`` / ``resume()`` SIGSTOP / SIGCONT the instance (a server that hangs: bytes
  sent to it wait in its socket, ``waiting_bytes`` counts them);
- ``own_server(kind)`` is the context manager a fixture uses: stopped in ``finally``.

``ServerDb(kind, name, port=server.port)`` (``server_dbs``) names a database on it: the
same connection strings and functions as for the shared servers, on another port. When
the binaries, pyodbc or the ODBC driver are missing, ``require`` skips (fails under
``SYNCHRO_REQUIRE_ALL=1``). As root the servers run as ``postgres`` / ``mysql``
(PostgreSQL refuses root), the data directory given to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from backends import need_pyodbc
from conftest import require
from pair_helpers import free_port
from server_dbs import ServerDb

START_S = 60.0  # the longest a start (crash recovery included) may take: a hang fails
STOP_S = 30.0
ADMIN_DB = {"postgresql": "postgres", "mariadb": "mysql"}
USER = {"postgresql": "postgres", "mariadb": "mysql"}


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def binaries(kind: str) -> dict[str, Path] | None:
    """The programs that make and run an instance of ``kind``; None when one is missing."""
    if kind == "postgresql":
        folder = _postgres_bin()
        if folder is None or not (folder / "initdb").exists():
            return None
        return {"init": folder / "initdb", "server": folder / "postgres"}
    init = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
    )
    if init is None or server is None:
        return None
    return {"init": Path(init), "server": Path(server)}


def require_binaries(kind: str) -> dict[str, Path]:
    """The programs of ``kind``, or ``require`` (skip; fail under SYNCHRO_REQUIRE_ALL=1)."""
    need_pyodbc(kind)
    found = binaries(kind)
    if found is None:
        require(
            f"{kind} server binaries missing (apt-get install "
            f"{'postgresql' if kind == 'postgresql' else 'mariadb-server'})"
        )
    return found


class OwnServer:
    """One private server of ``kind`` (postgresql / mariadb) with its data under ``root``."""

    def __init__(self, kind: str, root: Path, options: tuple[str, ...] = ()) -> None:
        """``options``: more of the server's command-line options (``--log-bin``...)."""
        self.kind = kind
        self.root = root
        self.options = options
        self.bins = require_binaries(kind)
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self.crashes = 0
        self.log = root / "server.log"
        root.mkdir(parents=True, exist_ok=True)
        self.user = USER[kind] if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def db(self, name: str) -> ServerDb:
        """The database ``name`` on this server."""
        return ServerDb(self.kind, name, port=self.port)

    @property
    def admin(self) -> ServerDb:
        return self.db(ADMIN_DB[self.kind])

    # -- making, starting, stopping ---------------------------------------------------------

    def _as_user(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for folder, _dirs, files in os.walk(path):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
                for name in files:
                    os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)

    def _init(self) -> None:
        self._as_user(self.root)
        if self.kind == "postgresql":
            args = [str(self.bins["init"]), "-D", str(self.data), "-A", "trust"]
            args += ["-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"]
        else:
            args = [str(self.bins["init"]), "--no-defaults", f"--datadir={self.data}"]
            args += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        done = subprocess.run(
            args,
            user=self.user,
            cwd=self.root,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")

    def _command(self) -> list[str]:
        if self.kind == "postgresql":
            return [
                str(self.bins["server"]),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-h",
                "127.0.0.1",
                "-c",
                "fsync=off",  # a crash here kills processes, not the machine's page cache
                "-c",
                "max_connections=50",
                *self.options,
            ]
        return [
            str(self.bins["server"]),
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.root / 'mysqld.sock'}",
            f"--pid-file={self.root / 'mysqld.pid'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--character-set-server=utf8mb4",
            *([f"--user={self.user}"] if self.user else []),
            *self.options,
        ]

    def start(self, timeout: float = START_S) -> float:
        """Start the instance (made first if it is not) and wait until it answers; the
        seconds that took (after a crash: the server's recovery)."""
        assert self.popen is None or self.popen.poll() is not None, "already running"
        if not self.data.exists():
            self._init()
        began = time.monotonic()
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self._command(),
                user=self.user,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # no signal of the test's terminal reaches it
            )
        self.wait_ready(timeout)
        return time.monotonic() - began

    def answers(self) -> bool:
        """Whether the server takes a connection and a query now."""
        pyodbc = need_pyodbc(self.kind)
        try:
            conn = pyodbc.connect(self.admin.connection, autocommit=True, timeout=2)
        except pyodbc.Error:
            return False
        try:
            conn.execute("SELECT 1").fetchall()
            return True
        except pyodbc.Error:
            return False
        finally:
            conn.close()

    def wait_ready(self, timeout: float = START_S) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.kind} server ended at start:\n{self.tail()}")
            if self.answers():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"{self.kind} server does not answer after {timeout} s:\n{self.tail()}"
        )

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def pids(self) -> set[int]:
        """Every process of the instance: the server and its descendants, found through
        ``/proc`` (PostgreSQL's backends leave the server's process group: ``setsid``)."""
        if self.popen is None:
            return set()
        children: dict[int, list[int]] = {}
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = Path(stat).read_text()
                fields = text[text.rindex(")") + 2 :].split()
                children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        found, todo = set(), [self.popen.pid]
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, []))
        return found

    def _signal_all(self, sig: signal.Signals) -> set[int]:
        """``sig`` to every process of the instance; the PIDs it went to."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pids

    def crash(self) -> None:
        """SIGKILL every process of the instance, as a power cut would: all of them
        stopped first (none goes on alone, none forks meanwhile), then all killed; returns
        once every one is gone."""
        assert self.popen is not None
        self.pause()
        pids = self._signal_all(signal.SIGKILL)
        self.popen.wait(STOP_S)
        self._wait_gone(pids)
        self.crashes += 1

    def _wait_gone(self, pids: set[int]) -> None:
        """Until none of ``pids`` is left (a child is reaped by init a moment after)."""
        end = time.monotonic() + STOP_S
        while time.monotonic() < end:
            if not any(Path(f"/proc/{pid}").exists() for pid in pids):
                return
            time.sleep(0.01)
        raise AssertionError(f"{self.kind}: processes {sorted(pids)} outlive SIGKILL")

    def pause(self) -> None:
        """SIGSTOP every process of the instance (again until no new one appears): it
        takes bytes into its sockets and answers none."""
        stopped: set[int] = set()
        while True:
            pids = self.pids()
            if pids <= stopped:
                return
            stopped |= self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def waiting_bytes(self) -> int:
        """Bytes that clients sent the server and that it has not read yet (its sockets'
        receive queues on its port): a paused server's unanswered requests. Read from the
        kernel's table of TCP sockets (``/proc/net/tcp``: local address, state 01 =
        established, ``tx_queue:rx_queue`` in hex), no tool needed."""
        waiting = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    local, state, queues = fields[1], fields[3], fields[4]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == self.port:
                        waiting += int(queues.split(":")[1], 16)
        return waiting

    def stop(self) -> None:
        """End the instance cleanly (SIGTERM; SIGKILL if it still runs after a while)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.resume()  # a paused server would not hear SIGTERM
        self.popen.send_signal(signal.SIGTERM)
        pids = self.pids()
        try:
            self.popen.wait(STOP_S)
        except subprocess.TimeoutExpired:
            pids |= self._signal_all(signal.SIGKILL)
            self.popen.wait(STOP_S)
        self._wait_gone(pids)  # its children end with it


@contextlib.contextmanager
def own_server(kind: str, *options: str) -> Iterator[OwnServer]:
    """A private server of ``kind`` started in a new directory of the system's temporary
    folder (not pytest's: its folders are closed to other users, and a socket's path must
    be short); stopped (by PID) at the end, whatever happened, and its data removed."""
    need_pyodbc(kind)
    require_binaries(kind)
    root = Path(tempfile.mkdtemp(prefix=f"synchro-own-{kind[:5]}-"))
    root.chmod(0o711)  # the server's user reaches its data inside
    server = OwnServer(kind, root, options)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
