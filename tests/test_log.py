"""synchro.log: rotating file, console only when one exists, secrets masked everywhere."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synchro.errors import PlatformError
from synchro.log import (
    BACKUP_COUNT,
    LOG_FILE_NAME,
    MAX_BYTES,
    register_secret,
    setup_logging,
    shutdown_logging,
)


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    shutdown_logging()
    root.setLevel(level)


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_file_log_rotates_and_has_detail(tmp_path: Path) -> None:
    setup = setup_logging(tmp_path / "logs", console=False)
    assert setup.log_file == tmp_path / "logs" / LOG_FILE_NAME
    logging.getLogger("synchro.engine").info("run %s started", "3615")
    _flush()
    text = setup.log_file.read_text(encoding="utf-8")
    assert "INFO" in text and "synchro.engine: run 3615 started" in text
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert handler.maxBytes == MAX_BYTES and handler.backupCount == BACKUP_COUNT


def test_secrets_are_masked_in_message_args_and_traceback(tmp_path: Path) -> None:
    setup = setup_logging(tmp_path, console=False)
    register_secret("s3cr3t-pw")
    register_secret("")  # ignored, would otherwise match everywhere
    register_secret(None)
    log = logging.getLogger("synchro.transport")
    log.warning("login with s3cr3t-pw failed")
    log.warning("password=%s user=%s", "s3cr3t-pw", "site3615")
    try:
        raise ValueError("bad password s3cr3t-pw")
    except ValueError:
        log.exception("connect failed")
    logging.getLogger("pyftpdlib").info("PASS s3cr3t-pw from a third-party logger")
    _flush()
    text = setup.log_file.read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in text
    # message, argument, source line and message of the traceback, third-party logger
    assert text.count("***") == 5
    assert "user=site3615" in text and "ValueError: bad password ***" in text


def test_longer_secret_masked_whole_and_secrets_survive_reconfiguration(tmp_path: Path) -> None:
    setup_logging(tmp_path / "a", console=False)
    register_secret("abc")
    register_secret("abcdef")
    setup = setup_logging(tmp_path / "b", console=False)  # keeps the registered secrets
    logging.getLogger("synchro").error("key abcdef and abc")
    _flush()
    assert "key *** and ***" in setup.log_file.read_text(encoding="utf-8")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "synchro_handler", False)]
    assert len(ours) == 1  # the first file handler was replaced, not stacked


def test_register_before_setup_is_an_error() -> None:
    shutdown_logging()
    with pytest.raises(PlatformError):
        register_secret("x")


def test_console_handler_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = setup_logging(tmp_path, console=True)
    assert setup.console
    logging.getLogger("synchro").warning("visible on stderr")
    assert "visible on stderr" in capsys.readouterr().err
    setup = setup_logging(tmp_path, console=False)
    assert not setup.console
    logging.getLogger("synchro").warning("file only")
    assert "file only" not in capsys.readouterr().err


def test_windowed_exe_without_stderr_never_writes_to_console_nor_lets_pyftpdlib_do_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A windowed PyInstaller exe has sys.stdout/sys.stderr None: only the file is written."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    monkeypatch.setattr(sys, "stderr", None)
    monkeypatch.setattr(sys, "stdout", None)
    setup = setup_logging(tmp_path, console=True)
    assert not setup.console
    assert all(type(h) is not logging.StreamHandler for h in logging.getLogger().handlers)

    handler = type("Handler", (FTPHandler,), {"authorizer": DummyAuthorizer()})
    server = FTPServer(("127.0.0.1", 0), handler)
    try:
        server.serve_forever(timeout=0.01, blocking=False, handle_exit=False)
    finally:
        server.close_all()
    assert not logging.getLogger("pyftpdlib").handlers  # it did not install its own
    _flush()
    assert "starting FTP server" in setup.log_file.read_text(encoding="utf-8")


def test_unwritable_log_dir_is_a_platform_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PlatformError, match="journal"):
        setup_logging(blocker / "logs", console=False)
