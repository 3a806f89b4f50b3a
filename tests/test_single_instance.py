"""Single instance: real flock across real processes, real loopback control channel,
Windows named mutex through a fake."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synchro.errors import PlatformError
from synchro.platform.single_instance import (
    ControlServer,
    InstanceLock,
    control_file_for,
    lock_file_for_config,
    mutex_name,
    send_command,
)

REPO = Path(__file__).resolve().parents[1]

# A helper process: takes the lock; "hold" mode keeps it with a control server that prints
# every command it receives, and releases it when told; "try" mode tries once, and when busy
# asks the holder to show its window.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from synchro.platform.single_instance import ControlServer, InstanceLock

    mode, lock_file = sys.argv[1], Path(sys.argv[2])
    lock = InstanceLock(lock_file)
    if mode == "try":
        if lock.acquire():
            print("acquired", flush=True)
            sys.exit(0)
        print("busy notified=%s" % lock.notify_running("show", timeout=5), flush=True)
        sys.exit(1)
    assert lock.acquire()
    def handler(cmd, args):
        print("cmd", cmd, flush=True)
        return {"pid": __import__("os").getpid()}
    server = ControlServer(lock_file, handler).start()
    print("holding", flush=True)
    for line in sys.stdin:
        if line.strip() == "release":
            server.close()
            lock.release()
            print("released", flush=True)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "hold", str(tmp_path / "node.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _try(lock_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, "try", str(lock_file)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )


def test_second_process_blocked_until_release(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock_file = tmp_path / "node.lock"
    busy = _try(lock_file)
    assert busy.returncode == 1 and busy.stdout.startswith("busy notified=True")
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().split() == ["cmd", "show"]  # the first was told to show
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert _try(lock_file).stdout.strip() == "acquired"


def test_lock_freed_when_holder_is_killed(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    lock_file = tmp_path / "node.lock"
    assert not InstanceLock(lock_file).acquire()  # this process too is a second process
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert _try(lock_file).stdout.strip() == "acquired"
    # Its control file is left behind, pointing to a closed port: a clear error, not a hang.
    with pytest.raises(PlatformError, match="pas lancé"):
        send_command(lock_file, "status", timeout=2)
    lock = InstanceLock(lock_file)
    assert lock.acquire()
    assert not lock.notify_running("show", timeout=0.5)
    lock.release()


def test_lock_in_process_and_context_manager(tmp_path: Path) -> None:
    lock_file = tmp_path / "sub" / "node.lock"
    with InstanceLock(lock_file) as first:
        assert first.held
        assert lock_file.read_text().strip() == str(os.getpid())
        second = InstanceLock(lock_file)
        assert not second.acquire()
        with pytest.raises(PlatformError, match="déjà lancé"):
            second.__enter__()
    assert not first.held
    assert InstanceLock(lock_file).acquire()


def test_lock_file_keyed_by_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = lock_file_for_config(Path("site.toml"), tmp_path / "locks")
    assert a == lock_file_for_config(tmp_path / "x" / ".." / "site.toml", tmp_path / "locks")
    assert a != lock_file_for_config(tmp_path / "hq.toml", tmp_path / "locks")
    assert a.parent == tmp_path / "locks" and a.suffix == ".lock"


# ----------------------------------------------------------------- control channel


@dataclass
class Recorder:
    calls: list[tuple[str, dict[str, Any]]]

    def __call__(self, cmd: str, args: Mapping[str, Any]) -> Mapping[str, Any] | None:
        self.calls.append((cmd, dict(args)))
        if cmd == "status":
            return {"state": "En cours...", "site": "3615"}
        if cmd == "raz":
            raise PlatformError("RAZ impossible : aucune réception en cours")
        if cmd == "sync":
            raise RuntimeError("boom")
        return None


@dataclass(frozen=True)
class FakePaths:
    lock_file: Path


def test_control_channel_round_trip(tmp_path: Path) -> None:
    lock_file = tmp_path / "node.lock"
    rec = Recorder([])
    with ControlServer(lock_file, rec) as server:
        control = control_file_for(lock_file)
        assert stat.S_IMODE(control.stat().st_mode) == 0o600
        info = json.loads(control.read_text())
        assert info["port"] == server.port and len(info["token"]) >= 40
        assert send_command(lock_file, "status") == {
            "ok": True,
            "state": "En cours...",
            "site": "3615",
        }
        assert send_command(FakePaths(lock_file), "show", args={"why": "2nd start"}) == {"ok": True}
        assert send_command(control, "stop") == {"ok": True}
        raz = send_command(lock_file, "raz")
        assert raz == {"ok": False, "error": "RAZ impossible : aucune réception en cours"}
        sync = send_command(lock_file, "sync")
        assert sync["ok"] is False and "boom" in sync["error"]
    assert [c for c, _ in rec.calls] == ["status", "show", "stop", "raz", "sync"]
    assert rec.calls[1][1] == {"why": "2nd start"}
    assert not control.exists()  # removed on close
    with pytest.raises(PlatformError, match="pas lancé"):
        send_command(lock_file, "status")


def _raw(port: int, payload: bytes) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        with sock.makefile("rb") as f:
            reply: dict[str, Any] = json.loads(f.readline())
    return reply


def test_control_channel_refuses_without_token(tmp_path: Path) -> None:
    rec = Recorder([])
    with ControlServer(tmp_path / "node.lock", rec) as server:
        token = json.loads(server.control_file.read_text())["token"]
        assert _raw(server.port, b'{"token": "guess", "cmd": "stop"}\n')["error"] == "bad token"
        assert _raw(server.port, b'{"cmd": "stop"}\n')["error"] == "bad token"
        assert _raw(server.port, b"not json\n")["error"] == "bad request"
        assert _raw(server.port, b"[1]\n")["error"] == "bad request"
        bad_cmd = json.dumps({"token": token, "cmd": "rm -rf"}).encode() + b"\n"
        assert "unknown command" in _raw(server.port, bad_cmd)["error"]
        bad_args = json.dumps({"token": token, "cmd": "show", "args": [1]}).encode() + b"\n"
        assert _raw(server.port, bad_args)["error"] == "bad args"
    assert rec.calls == []


def test_send_command_errors(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="inconnue"):
        send_command(tmp_path / "node.lock", "format-disk")
    with pytest.raises(PlatformError, match="dossier"):
        send_command(tmp_path, "status")
    control_file_for(tmp_path / "node.lock").write_text("{garbage")
    with pytest.raises(PlatformError, match="illisible"):
        send_command(tmp_path / "node.lock", "status")


def test_control_server_keeps_a_newer_servers_file(tmp_path: Path) -> None:
    lock_file = tmp_path / "node.lock"
    old = ControlServer(lock_file, Recorder([])).start()
    with ControlServer(lock_file, Recorder([])) as new:
        old.close()  # must not delete the file that now belongs to `new`
        assert json.loads(new.control_file.read_text())["port"] == new.port
        assert send_command(lock_file, "show")["ok"] is True


# ----------------------------------------------------------------- Windows mutex (fake)


class FakeMutexApi:
    """Kernel named objects: a name exists while at least one handle to it is open."""

    def __init__(self) -> None:
        self.open_handles: dict[int, str] = {}
        self.next_handle = 100

    def create(self, name: str) -> tuple[int, bool]:
        existed = name in self.open_handles.values()
        self.next_handle += 4
        self.open_handles[self.next_handle] = name
        return self.next_handle, existed

    def close(self, handle: int) -> None:
        del self.open_handles[handle]


def test_windows_named_mutex(tmp_path: Path) -> None:
    api = FakeMutexApi()
    lock_file = tmp_path / "node.lock"
    first = InstanceLock(lock_file, mutex_api=api, platform="win32")
    second = InstanceLock(lock_file, mutex_api=api, platform="win32")
    other = InstanceLock(tmp_path / "other.lock", mutex_api=api, platform="win32")
    assert first.acquire() and first.held
    assert not second.acquire()
    assert other.acquire()
    assert len(api.open_handles) == 2  # the refused handle was closed again
    assert sorted(api.open_handles.values()) == sorted(
        [mutex_name(lock_file), mutex_name(tmp_path / "other.lock")]
    )
    assert mutex_name(lock_file).startswith("Global\\Synchro-")
    assert not lock_file.exists()  # Windows uses the mutex, not the file
    first.release()
    assert second.acquire()
    second.release()
    other.release()
    assert api.open_handles == {}
