"""The Siège's FTP(S) server: pyftpdlib in a background thread, one confined account per site.

    HQServer(root, accounts, cert_file=..., key_file=...)   build (nothing listens yet)
    .start()        bind, then serve in a daemon thread (``.port`` is then the real port)
    .stop()         close every connection and the listening socket
    .security_events()   refusals (failed logins, bans, forbidden paths...), newest last

Each site logs in with its code and secret (explicit FTPS required by default) and sees its
own folder ``root/<site>`` as ``/``: it reads ``/out`` and uploads into ``/in`` as
``<name>.part``, then renames to the final name (``os.replace``: overwrites on Windows too).
That rename, not the end of the data connection, means "upload complete": pyftpdlib cannot
tell a finished upload from a cut one, the client can (it checks size and ``XSHA256``).
``on_received(site, final_path)`` is called then, from the connection's thread: it must only
enqueue. Every connection has its own thread (``ThreadedFTPServer``), so checksums never
stall other sites; secrets are checked in one thread of their own, once per site
(``ftp_secrets``: scrypt in every session thread cost ~16 MB resident per thread). Sessions
at once, from one address too: ``session_limit``. Rules: ``synchro.transport.ftp_policy``.

Custom commands: ``XSHA256 <file>`` → ``213 <hex>``; ``ALLO <bytes>`` → ``552`` when the file
would exceed the upload limit (checked again while writing).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyftpdlib.handlers import TLS_DTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer

from synchro.config.model import HQSettings
from synchro.config.passwords import verify_password
from synchro.errors import ErrorKind, TransportError
from synchro.transport.ftp_handler import (
    DiskAwareData,
    OnReceived,
    PlainHandler,
    ServerState,
    SiteFS,
    TLSHandler,
)
from synchro.transport.ftp_policy import (
    Accounts,
    Guard,
    Policy,
    SecurityEvent,
    SiteAuthorizer,
    Verify,
)
from synchro.transport.tls import certificate_fingerprint, server_context

log = logging.getLogger("synchro.transport.server")


SESSION_POLL_S = 5.0
"""How often an idle session's thread wakes. At 0.2 s, 200 sessions kept open by waiting
establishments cost the Siège 157 µs of CPU per session and second (~3 s in a round of 200,
which grows as sites × round length); at 5 s, 12 µs (``bench/bench_ftp_idle.py``). Stopping
does not wait for it: ``close_all`` shuts every session's socket, which wakes its thread."""


class _Server(ThreadedFTPServer):  # type: ignore[misc]
    """pyftpdlib shares state between servers of one process: the IOLoop (``IOLoop.instance``)
    and ThreadedFTPServer's stop Event and lock are process-wide, so stopping one server
    would kill the others. Each server here gets its own. Banned addresses are turned away
    before a handler (and its thread) is even created."""

    poll_timeout = SESSION_POLL_S  # a session's thread, between two events

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self._lock = threading.Lock()
        self._exit = threading.Event()
        self._sessions: set[Any] = set()  # handlers whose thread runs, under _sessions_lock
        self._sessions_lock = threading.Lock()
        super().__init__(address, handler, ioloop=IOLoop.factory())

    def _loop(self, handler: Any) -> None:
        """A session's thread. It is known to ``close_all`` before it first polls: one that
        registers after the stop sees ``_exit`` set and ends without polling."""
        with self._sessions_lock:
            self._sessions.add(handler)
        try:
            super()._loop(handler)
        finally:
            with self._sessions_lock:
                self._sessions.discard(handler)

    def close_all(self) -> None:
        """Stop: every session's thread is woken at once (its socket shut down), not at its
        next poll."""
        self._exit.set()
        with self._sessions_lock:
            sessions = list(self._sessions)
        for handler in sessions:
            _shut(handler)
        super().close_all()

    def handle_accepted(self, sock: Any, addr: Any) -> Any:
        guard: Guard = self.handler.synchro.guard
        left = guard.banned_for(str(addr[0]))
        if left:
            guard.event(str(addr[0]), "", "connexion", "adresse bloquée")
            with contextlib.suppress(OSError):
                sock.send(f"421 Adresse bloquée ({int(left) + 1} s).\r\n".encode())
            sock.close()
            return None
        return super().handle_accepted(sock, addr)


def _shut(handler: Any) -> None:
    """Shut a session's socket down from another thread: its poll returns at once and the
    session closes in its own thread. ``shutdown`` acts on the socket, not the descriptor,
    so a duplicate is enough (the TLS layer's own ``shutdown`` would send a TLS alert)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = handler.socket.fileno()
        if fd >= 0:
            with socket.socket(fileno=os.dup(fd)) as dup:
                dup.shutdown(socket.SHUT_RDWR)


class HQServer:
    """The Siège's FTP(S) server. See the module docstring."""

    def __init__(
        self,
        root: Path,
        accounts: Accounts,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        require_tls: bool = True,
        host: str = "0.0.0.0",
        port: int = 21,
        passive_ports: tuple[int, int] | None = None,
        masquerade_address: str = "",
        on_received: OnReceived | None = None,
        max_upload_bytes: int = 2048 * 1024 * 1024,
        ban_after_failures: int = 5,
        ban_seconds: float = 15 * 60,
        idle_timeout_s: float = 300,
        verify: Verify | None = None,
        clock: Callable[[], float] = time.time,
        auth_failed_delay_s: float = 1.0,
        max_connections: int = 256,
        max_connections_per_ip: int = 16,
        poll_interval_s: float = 0.2,
    ) -> None:
        if require_tls and cert_file is None:
            raise TransportError(say=("engine.ftp.no_certificate", {}), kind=ErrorKind.TLS)
        self.root = Path(root)
        self.host = host
        self.requested_port = port
        self.cert_file = cert_file
        self.require_tls = require_tls
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.poll_interval_s = poll_interval_s  # how fast the accept loop sees stop()
        self.guard = Guard(ban_after=ban_after_failures, ban_seconds=ban_seconds, clock=clock)
        self.root.mkdir(parents=True, exist_ok=True)
        policy = Policy(str(self.root))
        authorizer = SiteAuthorizer(accounts, verify or verify_password, policy, self.guard)
        state = ServerState(policy, self.guard, max_upload_bytes, on_received)
        self._handler = self._handler_class(
            authorizer,
            state,
            cert_file,
            key_file,
            passive_ports,
            masquerade_address,
            idle_timeout_s,
            auth_failed_delay_s,
        )
        self._authorizer = authorizer
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def from_settings(
        cls,
        root: Path,
        hq: HQSettings,
        *,
        cert_file: Path,
        key_file: Path,
        on_received: OnReceived | None = None,
        verify: Verify | None = None,
        auth_failed_delay_s: float = 1.0,
    ) -> HQServer:
        """Build the server the *Mode siège* settings describe."""
        hashes = {site.code: site.secret_hash for site in hq.sites}
        sessions = session_limit(len(hashes))
        return cls(
            root,
            hashes,
            cert_file=cert_file,
            key_file=key_file,
            require_tls=not hq.allow_plain_ftp,
            host=hq.listen_address,
            port=hq.port,
            passive_ports=hq.passive_ports,
            masquerade_address=hq.masquerade_address,
            on_received=on_received,
            max_upload_bytes=hq.max_upload_mb * 1024 * 1024,
            ban_after_failures=hq.ban_after_failures,
            ban_seconds=hq.ban_minutes * 60,
            idle_timeout_s=hq.idle_timeout_s,
            verify=verify,
            auth_failed_delay_s=auth_failed_delay_s,
            max_connections=max(256, sessions),
            max_connections_per_ip=max(16, sessions),
        )

    def _handler_class(
        self,
        authorizer: SiteAuthorizer,
        state: ServerState,
        cert_file: Path | None,
        key_file: Path | None,
        passive_ports: tuple[int, int] | None,
        masquerade_address: str,
        idle_timeout_s: float,
        auth_failed_delay_s: float,
    ) -> Any:
        """A handler subclass for this server only: no setting is shared between servers."""
        attrs: dict[str, Any] = {
            "authorizer": authorizer,
            "synchro": state,
            "abstracted_fs": SiteFS,
            "banner": "Synchro : serveur du siège prêt.",
            "timeout": idle_timeout_s,
            "max_login_attempts": 3,
            "auth_failed_timeout": auth_failed_delay_s,
            "passive_ports": list(range(passive_ports[0], passive_ports[1] + 1))
            if passive_ports
            else None,
            "masquerade_address": masquerade_address or None,
            "masquerade_address_map": {},
            "permit_foreign_addresses": False,
            "permit_privileged_ports": False,
        }
        proto_cmds = dict((TLSHandler if cert_file else PlainHandler).proto_cmds)
        for name in ("STOU", "SITE CHMOD", "MFMT"):  # never useful here; refused anyway
            proto_cmds.pop(name, None)
        proto_cmds["XSHA256"] = {
            "perm": "l",
            "auth": True,
            "arg": True,
            "help": "Syntax: XSHA256 <SP> file-name (SHA-256 of a file, hex).",
        }
        attrs["proto_cmds"] = proto_cmds
        if cert_file is None:
            base: Any = PlainHandler
            data = (DiskAwareData, base.dtp_handler)
            attrs["dtp_handler"] = type("SiteDTP", data, {"timeout": idle_timeout_s})
        else:
            base = TLSHandler
            attrs["ssl_context"] = server_context(cert_file, key_file)
            attrs["certfile"] = str(cert_file)
            attrs["keyfile"] = str(key_file or cert_file)
            attrs["tls_control_required"] = self.require_tls
            attrs["tls_data_required"] = self.require_tls
            data = (DiskAwareData, TLS_DTPHandler)
            attrs["dtp_handler"] = type("SiteDTP", data, {"timeout": idle_timeout_s})
        return type("SiteHandler", (base,), attrs)

    # --- life cycle

    def start(self) -> None:
        """Listen, then serve in a daemon thread. Raises TransportError if the port is taken."""
        if self._server is not None:
            return
        _quiet_pyftpdlib_logging()
        try:
            server = _Server((self.host, self.requested_port), self._handler)
        except OSError as exc:
            where = {"hp": f"{self.host}:{self.requested_port}", "detail": exc.strerror or exc}
            raise TransportError(say=("engine.ftp.cannot_listen", where)) from exc
        server.max_cons = self.max_connections
        server.max_cons_per_ip = self.max_connections_per_ip
        self._server = server
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve,
            args=(server, self._stopping, self.poll_interval_s),
            name="synchro-ftp",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "Serveur FTP%s du siège à l'écoute sur %s:%s",
            "S" if self.cert_file else "",
            self.host,
            self.port,
        )

    @staticmethod
    def _serve(server: Any, stopping: threading.Event, poll_s: float) -> None:
        """The accept loop. It closes the server itself when asked to stop: closing an IOLoop
        from another thread while it polls makes the poll fail (EBADF)."""
        try:
            while not stopping.is_set():
                server.serve_forever(timeout=poll_s, blocking=False, handle_exit=False)
        except Exception:
            log.exception("Le serveur FTP du siège s'est arrêté sur une erreur")
        finally:
            server.close_all()

    def stop(self) -> None:
        """Disconnect every client and stop listening (waits for the threads)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._authorizer.secrets.close()
        log.info("Serveur FTP du siège arrêté.")

    def __enter__(self) -> HQServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- facts

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually listened on (after ``start``)."""
        if self._server is None:
            return (self.host, self.requested_port)
        host, port = self._server.address
        return (str(host), int(port))

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the served certificate ("" for plain FTP)."""
        return certificate_fingerprint(self.cert_file) if self.cert_file else ""

    def downloads(self) -> list[tuple[str, str]]:
        """(site, file name) of the downloads completed since start, oldest first."""
        return list(self._handler.synchro.sent)

    def security_events(self) -> list[SecurityEvent]:
        """Refusals seen since start (bounded; the oldest are forgotten first)."""
        return self.guard.events()


def session_limit(sites: int) -> int:
    """Sessions the server must hold at once, from one address too: every establishment
    may be connected at the same time (a round starts everywhere at once) and sites behind
    one NAT share an address — loopback in the benchmarks — so a limit of a few sessions
    per address refused legitimate ones (issue 15: 87 refusals in a round of 50). Twice
    the sites (a session being closed while the next one opens), plus a margin; guessing
    is limited by the ban after failed logins, not by this."""
    return 2 * sites + 16


def _quiet_pyftpdlib_logging() -> None:
    """pyftpdlib installs a stderr handler of its own when neither its logger nor the root
    logger has one (stderr is None in a windowed exe). The app configures logging first
    (``synchro.log``); when nothing did, a NullHandler stops pyftpdlib from doing it. Levels
    are left alone: pyftpdlib's INFO lines (sessions, transfers) belong in the app's log."""
    logger = logging.getLogger("pyftpdlib")
    if not logger.handlers and not logging.getLogger().handlers:
        logger.addHandler(logging.NullHandler())
