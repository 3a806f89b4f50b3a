"""One Synchro per configuration, and a local control channel to the one that runs.

**Lock.** :class:`InstanceLock` is held for the life of the program:

- Linux/macOS: ``fcntl.flock`` on the lock file (released by the kernel when the process dies,
  even with ``kill -9``; the file itself stays, which is harmless).
- Windows: a named mutex ``Global\\Synchro-<hash of the lock file path>``, behind the small
  :class:`MutexApi` interface (real one over ``kernel32`` with ctypes, a fake in tests).

**Control channel.** The instance that holds the lock runs a :class:`ControlServer`: a TCP
socket on ``127.0.0.1`` (random port) and a random token, both written in a file next to the
lock (``<lock>.control``, mode 0600, in the user's own folder). Only someone who can read that
file can talk to the instance. The protocol is one JSON line each way::

    -> {"token": "...", "cmd": "show" | "raz" | "stop" | "status" | "sync", "args": {...}}
    <- {"ok": true, ...handler's reply...}   or   {"ok": false, "error": "...", "error_say": [...]}

(``error``: the French text of a refusal; ``error_say``, when the error gave its words, the
``[key, values]`` that ``i18n.render`` says in the caller's language.)

A second start calls :meth:`InstanceLock.notify_running` ("show your window"); the CLI calls
:func:`send_command` for ``synchro raz|stop|sync|status`` against a running ``synchro serve``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from synchro.errors import PlatformError, Say, SynchroError

log = logging.getLogger(__name__)

COMMANDS = frozenset({"show", "raz", "stop", "status", "sync"})
MAX_LINE = 64 * 1024
Handler = Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]


def lock_file_for_config(config_path: Path, lock_dir: Path) -> Path:
    """A lock file name unique to one configuration file (by its absolute, resolved path)."""
    return Path(lock_dir) / f"synchro-{_path_key(config_path)}.lock"


def control_file_for(lock_file: Path) -> Path:
    """Where the control channel's port and token are written, next to the lock."""
    return lock_file.with_name(lock_file.name + ".control")


def _path_key(path: Path) -> str:
    text = os.path.normcase(str(Path(path).resolve()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# --------------------------------------------------------------------------- Windows mutex


class MutexApi(Protocol):
    """Named kernel mutexes: ``create`` returns (handle, already_existed)."""

    def create(self, name: str) -> tuple[int, bool]: ...

    def close(self, handle: int) -> None: ...


ERROR_ALREADY_EXISTS = 183
ERROR_ACCESS_DENIED = 5


class Kernel32Mutex:
    """:class:`MutexApi` over ``CreateMutexW`` / ``CloseHandle`` (Windows only)."""

    def __init__(self) -> None:
        windll: Any = getattr(ctypes, "WinDLL")  # noqa: B009 - Windows-only, typed Any
        self._k32 = windll("kernel32", use_last_error=True)
        self._k32.CreateMutexW.restype = ctypes.c_void_p
        self._k32.CreateMutexW.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_wchar_p]
        self._k32.CloseHandle.argtypes = [ctypes.c_void_p]

    def create(self, name: str) -> tuple[int, bool]:
        handle = self._k32.CreateMutexW(None, 0, name)
        error: int = getattr(ctypes, "get_last_error")()  # noqa: B009
        if not handle:
            if error == ERROR_ACCESS_DENIED:  # exists, created by another user
                return 0, True
            raise PlatformError(say=("platform.lock.create", {"name": name, "error": error}))
        return int(handle), error == ERROR_ALREADY_EXISTS

    def close(self, handle: int) -> None:
        if handle:
            self._k32.CloseHandle(handle)


def mutex_name(lock_file: Path) -> str:
    return f"Global\\Synchro-{_path_key(lock_file)}"


# --------------------------------------------------------------------------- the lock


class InstanceLock:
    """The single-instance lock of one configuration. Not re-entrant; one per process."""

    def __init__(
        self,
        lock_file: Path,
        *,
        mutex_api: MutexApi | None = None,
        platform: str | None = None,
    ) -> None:
        self.lock_file = Path(lock_file)
        self.control_file = control_file_for(self.lock_file)
        self._windows = (platform or sys.platform) == "win32"
        self._mutex_api = mutex_api
        self._file: IO[str] | None = None
        self._mutex: int | None = None

    @property
    def held(self) -> bool:
        return self._file is not None or self._mutex is not None

    def acquire(self) -> bool:
        """Takes the lock; False when another instance of this configuration holds it."""
        if self.held:
            return True
        return self._acquire_mutex() if self._windows else self._acquire_flock()

    def _acquire_flock(self) -> bool:
        import fcntl

        try:
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        except OSError as exc:
            said = {"lock": str(self.lock_file), "detail": str(exc.strerror or exc)}
            raise PlatformError(say=("platform.lock.unreachable", said)) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def _acquire_mutex(self) -> bool:
        api = self._mutex_api or Kernel32Mutex()
        self._mutex_api = api
        handle, existed = api.create(mutex_name(self.lock_file))
        if existed:
            api.close(handle)
            return False
        self._mutex = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._mutex is not None and self._mutex_api is not None:
            self._mutex_api.close(self._mutex)
            self._mutex = None

    def notify_running(self, message: str = "show", timeout: float = 5.0) -> bool:
        """Asks the instance that holds the lock to ``message`` (default: show its window).

        Waits up to ``timeout`` for its control channel (it may be starting). False when
        nobody answered or the instance refused.
        """
        deadline = time.monotonic() + timeout
        while not self.control_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            reply = send_command(self.lock_file, message, timeout=max(0.5, timeout))
        except PlatformError as exc:
            log.info("No answer from the running instance: %s", exc)
            return False
        return reply.get("ok") is True

    def __enter__(self) -> InstanceLock:
        if not self.acquire():
            raise PlatformError(say=("platform.lock.running", {"lock": str(self.lock_file)}))
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- control channel


class _RequestHandler(socketserver.StreamRequestHandler):
    timeout = 5.0
    server: _ControlTCPServer

    def handle(self) -> None:
        line = self.rfile.readline(MAX_LINE)
        reply = self.server.answer(line)
        self.wfile.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")


class _ControlTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, token: str, handler: Handler) -> None:
        self.token = token
        self.handler = handler
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"ok": False, "error": "bad request"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "bad request"}
        token = request.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode("utf-8"), self.token.encode("utf-8")
        ):
            log.warning("Control channel: request with a wrong token refused")
            return {"ok": False, "error": "bad token"}
        cmd = request.get("cmd")
        if cmd not in COMMANDS:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return {"ok": False, "error": "bad args"}
        try:
            result = self.handler(cmd, args)
        except SynchroError as exc:  # its words too, said in the caller's language
            said = {"error_say": [exc.say[0], exc.say[1]]} if exc.say is not None else {}
            return {"ok": False, "error": str(exc), **said}
        except Exception as exc:
            log.exception("Control command %s failed", cmd)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, **(result or {})}


class ControlServer:
    """Serves the control channel of the running instance; ``handler(cmd, args)`` answers.

    The handler runs in the connection's thread: it must be quick (put an event on the app's
    queue and return, or return a status snapshot). Its dict is merged into the reply.
    """

    def __init__(self, lock_file: Path, handler: Handler) -> None:
        self.control_file = control_file_for(Path(lock_file))
        self._token = secrets.token_urlsafe(32)
        self._server = _ControlTCPServer(self._token, handler)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> ControlServer:
        self._write_control_file()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="synchro-control",
            daemon=True,
        )
        self._thread.start()
        return self

    def _write_control_file(self) -> None:
        data = json.dumps({"port": self.port, "token": self._token, "pid": os.getpid()})
        tmp = self.control_file.with_name(f"{self.control_file.name}.{os.getpid()}.tmp")
        try:
            self.control_file.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, self.control_file)
        except OSError as exc:
            said = {"file": str(self.control_file), "detail": str(exc.strerror or exc)}
            raise PlatformError(say=("platform.control.unwritable", said)) from exc

    def close(self) -> None:
        """Stops serving and removes the control file if it is still ours."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        with contextlib.suppress(OSError, ValueError):
            current = json.loads(self.control_file.read_text(encoding="utf-8"))
            if current.get("token") == self._token:
                self.control_file.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _HasLockFile(Protocol):
    @property
    def lock_file(self) -> Path: ...


def _control_file(target: Path | str | _HasLockFile) -> Path:
    if isinstance(target, str | Path):
        path = Path(target)
        if path.is_dir():
            raise PlatformError(say=("platform.control.folder", {"path": str(path)}))
        return path if path.name.endswith(".control") else control_file_for(path)
    return control_file_for(Path(target.lock_file))


def send_command(
    target: Path | str | _HasLockFile,
    cmd: str,
    timeout: float = 5.0,
    args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Sends ``cmd`` to the running instance and returns its reply (``reply["ok"]`` says if done).

    ``target`` is the lock file, its ``.control`` file, or anything with a ``lock_file``
    attribute (``NodePaths``). Raises :class:`PlatformError` when no instance runs for that
    configuration, it does not answer within ``timeout``, or the answer is not understood.
    """
    if cmd not in COMMANDS:
        said = {"cmd": repr(cmd), "known": ", ".join(sorted(COMMANDS))}
        raise PlatformError(say=("platform.control.unknown_command", said))
    control = _control_file(target)
    try:
        info = json.loads(control.read_text(encoding="utf-8"))
        port, token = int(info["port"]), str(info["token"])
    except FileNotFoundError as exc:
        raise PlatformError(say=("platform.control.not_running", {})) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        said = {"file": str(control), "detail": str(exc)}
        raise PlatformError(say=("platform.control.unreadable", said)) from exc
    request = {"token": token, "cmd": cmd, "args": dict(args or {})}
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE)
    except ConnectionRefusedError as exc:
        raise PlatformError(say=("platform.control.closed", {})) from exc
    except OSError as exc:
        no_answer: Say = ("platform.control.no_answer", {"port": port, "detail": str(exc)})
        raise PlatformError(say=no_answer) from exc
    garbled: Say = ("platform.control.garbled", {"reply": repr(line[:200])})
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PlatformError(say=garbled) from exc
    if not isinstance(reply, dict):
        raise PlatformError(say=garbled)
    return reply
