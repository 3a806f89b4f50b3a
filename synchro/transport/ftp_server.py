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
enqueue. Every connection has its own thread (``ThreadedFTPServer``), so password hashing
and checksums never stall other sites. Rules: ``synchro.transport.ftp_policy``.

Custom commands: ``XSHA256 <file>`` → ``213 <hex>``; ``ALLO <bytes>`` → ``552`` when the file
would exceed the upload limit (checked again while writing).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer
from pyftpdlib.utils import strerror

from synchro.config.model import HQSettings
from synchro.config.passwords import verify_password
from synchro.errors import TransportError
from synchro.transport.ftp_policy import (
    INBOX,
    PART,
    Accounts,
    Guard,
    Policy,
    SecurityEvent,
    SiteAuthorizer,
    Verify,
)
from synchro.transport.tls import certificate_fingerprint

log = logging.getLogger("synchro.transport.server")

OnReceived = Callable[[str, Path], None]
CHUNK = 1024 * 1024


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _State:
    """What one server's handlers share: reached as ``handler.synchro`` (per-server class)."""

    def __init__(
        self, policy: Policy, guard: Guard, max_upload: int, on_received: OnReceived | None
    ) -> None:
        self.policy = policy
        self.guard = guard
        self.max_upload = max_upload
        self.on_received = on_received


class _QuotaFile:
    """A file opened for upload that refuses to grow past ``limit`` bytes (then deletes it)."""

    def __init__(self, f: Any, limit: int, on_exceeded: Callable[[], None]) -> None:
        self._f = f
        self._limit = limit
        self._on_exceeded = on_exceeded
        self.exceeded = False

    def write(self, data: bytes) -> int:
        if self._f.tell() + len(data) > self._limit:
            if not self.exceeded:
                self.exceeded = True
                self._on_exceeded()
                with contextlib.suppress(OSError):  # POSIX: at once; Windows: in close()
                    os.remove(self._f.name)
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        return int(self._f.write(data))

    def close(self) -> None:
        self._f.close()
        if self.exceeded:
            with contextlib.suppress(OSError):
                os.remove(self._f.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class _SiteFS(AbstractedFS):  # type: ignore[misc]
    """Uploads are size-limited; rename overwrites (``os.replace``, as on POSIX)."""

    def open(self, filename: str, mode: str) -> Any:
        f = open(filename, mode)  # noqa: SIM115 - closed by pyftpdlib's data channel
        if not any(c in mode for c in "wa+"):
            return f
        handler = self.cmd_channel
        state: _State = handler.synchro

        def exceeded() -> None:
            state.guard.event(
                handler.remote_ip, handler.username, "STOR", "taille maximale d'envoi dépassée"
            )

        return _QuotaFile(f, state.max_upload, exceeded)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)


class _SiteHandlerMixin:
    """Synchro's additions to pyftpdlib's handler (plain or TLS)."""

    synchro: _State
    remote_ip: str
    username: str
    authorizer: SiteAuthorizer
    fs: Any
    close_when_done: Callable[[], None]
    run_as_current_user: Callable[..., Any]
    _rnfr: str | None
    proto_cmds: dict[str, dict[str, Any]]

    def ftp_XSHA256(self, path: str) -> None:
        if not self.fs.isfile(path):
            self.respond("550 Fichier introuvable.")
            return
        try:
            digest = file_sha256(path)
        except OSError as exc:
            self.respond(f"550 {os.strerror(exc.errno or errno.EIO)}.")
            return
        self.respond(f"213 {digest}")

    def ftp_ALLO(self, line: str) -> None:
        try:
            size = int(line.split()[0])
        except (ValueError, IndexError):
            self.respond("501 Taille attendue : ALLO <octets>.")
            return
        if size > self.synchro.max_upload:
            self._refuse("ALLO", f"{size} octets > limite de {self.synchro.max_upload}")
            self.respond(f"552 Fichier trop gros : limite {self.synchro.max_upload} octets.")
            return
        self.respond("200 Taille acceptée.")

    def ftp_RNFR(self, path: str) -> None:
        if not path.endswith(PART):
            self._refuse("RNFR", f"{self.fs.fs2ftp(path)} : seuls les .part se renomment")
            self.respond("550 Seuls les fichiers .part peuvent être renommés.")
            return
        super().ftp_RNFR(path)  # type: ignore[misc]

    def ftp_RNTO(self, path: str) -> Any:
        """pyftpdlib's RNTO, but ``on_received`` runs BEFORE the 250 reply: when a client's
        rename returns, the Siège already knows about the file."""
        src, self._rnfr = self._rnfr, None
        if not src:
            self.respond("503 Bad sequence of commands: use RNFR first.")
            return None
        try:
            self.run_as_current_user(self.fs.rename, src, path)
        except (OSError, FilesystemError) as exc:
            self.respond(f"550 {strerror(exc)}.")
            return None
        parts = self.synchro.policy.parts(self.username, path)
        if self.synchro.on_received and parts and parts[0] == INBOX and not path.endswith(PART):
            try:
                self.synchro.on_received(self.username, Path(path))
            except Exception:
                log.exception("on_received a échoué pour %s", path)
        self.respond("250 Renaming ok.")
        return (src, path)

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        self._synchro_cmd = (cmd, arg)  # for respond(): which command is being refused
        super().pre_process_command(line, cmd, arg)  # type: ignore[misc]

    def respond(self, resp: str, *args: Any, **kwargs: Any) -> None:
        """Turn pyftpdlib's own refusals into security events, before the client hears."""
        if resp.startswith("550 "):
            self._note_refusal(resp[4:])
        super().respond(resp, *args, **kwargs)  # type: ignore[misc]

    def _note_refusal(self, text: str) -> None:
        cmd, arg = getattr(self, "_synchro_cmd", ("?", ""))
        if text == "Not enough privileges.":
            perm = self.proto_cmds.get(cmd, {}).get("perm") or "?"
            real = self.fs.ftp2fs(arg or self.fs.cwd) if self.fs is not None else arg
            why = self.synchro.policy.refusal(self.username, perm, real) or "refusé"
            self._refuse(cmd, f"{arg or '.'} : {why}")
        elif "outside the user's root" in text:
            self._refuse(cmd, f"{arg} : chemin hors du dossier de l'établissement")
        elif "SSL/TLS required" in text:
            self._refuse(cmd, "connexion non chiffrée refusée (FTPS obligatoire)")

    def _refuse(self, action: str, reason: str) -> None:
        self.synchro.guard.event(self.remote_ip, self.username, action, reason)


class _PlainHandler(_SiteHandlerMixin, FTPHandler):  # type: ignore[misc]
    pass


class _TLSHandler(_SiteHandlerMixin, TLS_FTPHandler):  # type: ignore[misc]
    pass


class _Server(ThreadedFTPServer):  # type: ignore[misc]
    """pyftpdlib shares state between servers of one process: the IOLoop (``IOLoop.instance``)
    and ThreadedFTPServer's stop Event and lock are process-wide, so stopping one server
    would kill the others. Each server here gets its own. Banned addresses are turned away
    before a handler (and its thread) is even created."""

    poll_timeout = 0.2  # how fast connection threads notice stop() (set per server)

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self._lock = threading.Lock()
        self._exit = threading.Event()
        super().__init__(address, handler, ioloop=IOLoop.factory())

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
            raise TransportError("FTPS exigé mais aucun certificat fourni au serveur du siège.")
        self.root = Path(root)
        self.host = host
        self.requested_port = port
        self.cert_file = cert_file
        self.require_tls = require_tls
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.poll_interval_s = poll_interval_s  # how fast stop() is noticed (tests: small)
        self.guard = Guard(ban_after=ban_after_failures, ban_seconds=ban_seconds, clock=clock)
        self.root.mkdir(parents=True, exist_ok=True)
        policy = Policy(str(self.root))
        authorizer = SiteAuthorizer(accounts, verify or verify_password, policy, self.guard)
        state = _State(policy, self.guard, max_upload_bytes, on_received)
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
        )

    def _handler_class(
        self,
        authorizer: SiteAuthorizer,
        state: _State,
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
            "abstracted_fs": _SiteFS,
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
        proto_cmds = dict((_TLSHandler if cert_file else _PlainHandler).proto_cmds)
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
            base: Any = _PlainHandler
            attrs["dtp_handler"] = type("SiteDTP", (base.dtp_handler,), {"timeout": idle_timeout_s})
        else:
            base = _TLSHandler
            attrs["ssl_context"] = _ssl_context(cert_file, key_file)
            attrs["certfile"] = str(cert_file)
            attrs["keyfile"] = str(key_file or cert_file)
            attrs["tls_control_required"] = self.require_tls
            attrs["tls_data_required"] = self.require_tls
            attrs["dtp_handler"] = type("SiteDTP", (TLS_DTPHandler,), {"timeout": idle_timeout_s})
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
            raise TransportError(
                f"Le serveur FTP du siège ne peut pas écouter sur {self.host}:"
                f"{self.requested_port} : {exc.strerror or exc}. Un autre programme utilise "
                "peut-être ce port : choisissez-en un autre dans les réglages du siège."
            ) from exc
        server.max_cons = self.max_connections
        server.max_cons_per_ip = self.max_connections_per_ip
        server.poll_timeout = self.poll_interval_s
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

    def security_events(self) -> list[SecurityEvent]:
        """Refusals seen since start (bounded; the oldest are forgotten first)."""
        return self.guard.events()


def _ssl_context(cert_file: Path, key_file: Path | None) -> Any:
    from OpenSSL import SSL

    try:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_options(SSL.OP_NO_COMPRESSION)
        context.use_certificate_chain_file(str(cert_file))
        context.use_privatekey_file(str(key_file or cert_file))
        context.check_privatekey()
    except (SSL.Error, OSError) as exc:
        raise TransportError(
            f"Certificat du siège inutilisable ({cert_file}) : {exc}. Supprimez le certificat "
            "et sa clé pour en créer un nouveau, puis faites « synchro trust » sur les sites."
        ) from exc
    return context


def _quiet_pyftpdlib_logging() -> None:
    """pyftpdlib installs a stderr handler of its own when neither its logger nor the root
    logger has one (stderr is None in a windowed exe). The app configures logging first
    (``synchro.log``); when nothing did, a NullHandler stops pyftpdlib from doing it. Levels
    are left alone: pyftpdlib's INFO lines (sessions, transfers) belong in the app's log."""
    logger = logging.getLogger("pyftpdlib")
    if not logger.handlers and not logging.getLogger().handlers:
        logger.addHandler(logging.NullHandler())
