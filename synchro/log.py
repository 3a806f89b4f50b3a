"""Logging of Synchro: a rotating file with each run's detail, a console only when one exists.

Call :func:`setup_logging` first thing in ``main`` (before pyftpdlib starts a server: pyftpdlib
installs its own stderr handler when the root logger has none, and a windowed PyInstaller exe
has ``sys.stderr is None``, so nothing may ever write to the console there).

Secrets (FTP passwords, SMTP password, group key) are registered at run time with
:func:`register_secret`; every record that goes through a Synchro handler has each registered
secret replaced by ``***`` in its message, its arguments, its traceback and its stack.

The filter is attached to the handlers, not to a logger: a logger's filters do not see records
propagated from child loggers (``synchro.engine``, ``pyftpdlib``...), a handler's do. The set of
secrets lives in that filter object (found again through the root logger's handlers), so this
module holds no state of its own.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from synchro.errors import PlatformError

LOG_FILE_NAME = "synchro.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUP_COUNT = 5
MASK = "***"
FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


class SecretFilter(logging.Filter):
    """Replaces every registered secret by ``***`` in the records it sees. Thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        """Masks ``secret`` from now on. Empty strings are ignored (they would match everywhere)."""
        if not secret:
            return
        with self._lock:
            if secret not in self._secrets:
                # Longest first, so a secret containing another one is masked whole.
                self._secrets = tuple(sorted((*self._secrets, secret), key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        # Merge the arguments into the message once, then mask the result.
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


@dataclass(frozen=True)
class LogSetup:
    """What :func:`setup_logging` installed: the log file and the secret filter in use."""

    log_file: Path
    secrets: SecretFilter
    console: bool


def _is_ours(handler: logging.Handler) -> bool:
    return getattr(handler, "synchro_handler", False) is True


def _mark(handler: logging.Handler, secrets: SecretFilter) -> logging.Handler:
    handler.synchro_handler = True  # type: ignore[attr-defined]
    handler.addFilter(secrets)
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def has_console() -> bool:
    """True when a real stderr exists (False in a windowed PyInstaller exe)."""
    stream = sys.stderr
    if stream is None:
        return False
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        # Replaced by an object without a descriptor (pytest capture, IDLE): still writable.
        return hasattr(stream, "write")
    return True


def setup_logging(log_dir: Path, *, console: bool, level: int = logging.INFO) -> LogSetup:
    """Logs to ``log_dir/synchro.log`` (rotating, 2 MB x 5) and, if asked and possible, stderr.

    Calling it again replaces the handlers it installed before (secrets already registered are
    kept). Raises :class:`PlatformError` when the log folder cannot be created or written.
    """
    root = logging.getLogger()
    secrets = current_secret_filter() or SecretFilter()
    for handler in [h for h in root.handlers if _is_ours(h)]:
        root.removeHandler(handler)
        handler.close()
    log_file = Path(log_dir) / LOG_FILE_NAME
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
        )
    except OSError as exc:
        why = {"path": str(log_file), "detail": exc.strerror or str(exc)}
        raise PlatformError(say=("engine.err.log_unwritable", why)) from exc
    root.addHandler(_mark(file_handler, secrets))
    with_console = console and has_console()
    if with_console:
        root.addHandler(_mark(logging.StreamHandler(sys.stderr), secrets))
    root.setLevel(level)
    logging.captureWarnings(True)
    return LogSetup(log_file=log_file, secrets=secrets, console=with_console)


def current_secret_filter() -> SecretFilter | None:
    """The secret filter of the handlers installed by :func:`setup_logging`, if any."""
    for handler in logging.getLogger().handlers:
        if _is_ours(handler):
            for flt in handler.filters:
                if isinstance(flt, SecretFilter):
                    return flt
    return None


def register_secret(secret: str | None) -> None:
    """Masks ``secret`` as ``***`` in every record logged from now on.

    Raises :class:`PlatformError` if logging was not set up: a secret registered before
    :func:`setup_logging` would silently not be masked, which is worse than a loud error.
    """
    if not secret:
        return
    secrets = current_secret_filter()
    if secrets is None:
        raise PlatformError("register_secret() appelé avant setup_logging()")
    secrets.add(secret)


def shutdown_logging() -> None:
    """Removes and closes the handlers installed by :func:`setup_logging` (tests, exit)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _is_ours(h)]:
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(False)
