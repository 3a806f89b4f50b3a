"""synchro service install|remove: generated systemd unit and Windows scheduled task."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

from synchro.errors import PlatformError
from synchro.platform.service import (
    DeleteFile,
    RunCommand,
    ServicePlan,
    WriteFile,
    apply_plan,
    plan_install,
    plan_remove,
    plan_systemd_install,
    plan_systemd_remove,
    plan_task_install,
    plan_task_remove,
    serve_command,
    service_action,
    service_name,
    systemd_quote,
    systemd_unit,
    task_xml,
)

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def test_service_names() -> None:
    assert service_name(Path("/etc/synchro/synchro.toml")) == "synchro"
    assert service_name(Path("/srv/hq.toml")) == "synchro-hq"
    assert service_name(Path("/srv/site 3615 (Paris).toml")) == "synchro-site-3615-Paris"


def test_serve_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hq.toml"
    assert serve_command(config) == [
        sys.executable,
        "-m",
        "synchro",
        "serve",
        "--config",
        str(config),
    ]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert serve_command(config) == [sys.executable, "serve", "--config", str(config)]


def _parse_unit(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def test_systemd_unit_text(tmp_path: Path) -> None:
    config = tmp_path / "my data" / "hq.toml"
    unit = systemd_unit(
        ["/opt/synchro/synchro", "serve", "--config", str(config)], config=config, user="sync"
    )
    parsed = _parse_unit(unit)
    assert parsed["Unit"]["After"] == "network-online.target"
    assert parsed["Service"]["ExecStart"] == (f'/opt/synchro/synchro serve --config "{config}"')
    assert parsed["Service"]["User"] == "sync"
    assert parsed["Service"]["Restart"] == "on-failure"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert "User" not in _parse_unit(systemd_unit(["/x"], config=config))["Service"]
    with pytest.raises(PlatformError, match="absolu"):
        systemd_unit(["synchro", "serve"], config=config)
    with pytest.raises(PlatformError, match="Saut de ligne"):
        systemd_unit(["/x"], config=tmp_path / "a\nExecStartPre=/bin/evil" / "b.toml")


def test_systemd_quoting() -> None:
    assert systemd_quote("/usr/bin/synchro") == "/usr/bin/synchro"
    assert systemd_quote("/data/50%/$HOME") == "/data/50%%/$$HOME"
    assert systemd_quote('/a b/"c"\\d') == '"/a b/\\"c\\"\\\\d"'
    assert systemd_quote("") == '""'


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit (this interpreter as the executable)."""
    config = tmp_path / "odd dir %h $X" / "site.toml"
    plan = plan_systemd_install(config, target_dir=tmp_path / "units", user=None)
    apply_plan(plan, run_commands=False)
    unit = tmp_path / "units" / "synchro-site.service"
    assert unit.is_file()
    if shutil.which("systemd-analyze") is None:
        text = unit.read_text()
        assert text.count("[Service]") == 1 and "ExecStart=/" in text
        pytest.skip("systemd-analyze not installed: text checked only")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "synchro-site.service" not in done.stderr  # no warning about our unit
    assert (
        "odd dir %%h $X/site.toml)" in unit.read_text()
    )  # Description: % escaped (specifiers), $ kept


def test_systemd_install_and_remove_plans(tmp_path: Path) -> None:
    config = tmp_path / "hq.toml"
    install = plan_systemd_install(config, target_dir=tmp_path)
    assert install.name == "synchro-hq.service"
    assert [s for s in install.steps if isinstance(s, RunCommand)] == [
        RunCommand(("systemctl", "daemon-reload")),
        RunCommand(("systemctl", "enable", "--now", "synchro-hq.service")),
    ]
    remove = plan_systemd_remove(config, target_dir=tmp_path)
    assert remove.steps == (
        RunCommand(("systemctl", "disable", "--now", "synchro-hq.service")),
        DeleteFile(tmp_path / "synchro-hq.service"),
        RunCommand(("systemctl", "daemon-reload")),
    )
    assert "systemctl disable --now synchro-hq.service" in remove.describe()
    apply_plan(install, run_commands=False)
    assert (tmp_path / "synchro-hq.service").exists()
    apply_plan(remove, run_commands=False)
    assert not (tmp_path / "synchro-hq.service").exists()


def test_apply_plan_runs_commands_and_reports_failures(tmp_path: Path) -> None:
    seen: list[Sequence[str]] = []

    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        code = 1 if argv[1] == "enable" else 0
        return subprocess.CompletedProcess(list(argv), code, "", "Access denied")

    plan = plan_systemd_install(tmp_path / "a.toml", target_dir=tmp_path)
    with pytest.raises(PlatformError, match="Access denied"):
        apply_plan(plan, runner=runner)
    assert [a[1] for a in seen] == ["daemon-reload", "enable"]
    # A real command that does not exist is a PlatformError too, not an OSError.
    bad = ServicePlan("x", (RunCommand(("/nonexistent/systemctl", "daemon-reload")),))
    with pytest.raises(PlatformError, match="nonexistent"):
        apply_plan(bad)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PlatformError, match="administrateur"):
        apply_plan(ServicePlan("x", (WriteFile(blocker / "u.service", b""),)))


def test_windows_task_xml() -> None:
    exe = r"C:\Program Files\Synchro\synchro-cli.exe"
    config = Path("C:/Synchro & Co/<hq>.toml")
    text = task_xml([exe, "serve", "--config", "C:\\Synchro & Co\\hq.toml"], config=config)
    root = ET.fromstring(text.replace('encoding="UTF-16"', ""))
    assert root.tag == f"{{{NS['t']}}}Task" and root.get("version") == "1.2"
    assert root.find("t:Triggers/t:BootTrigger/t:Enabled", NS) is not None
    assert root.findtext("t:Principals/t:Principal/t:UserId", namespaces=NS) == "S-1-5-18"
    assert root.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=NS) == "PT0S"
    assert root.findtext("t:Settings/t:MultipleInstancesPolicy", namespaces=NS) == "IgnoreNew"
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == f'"{exe}"'
    assert (
        root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS)
        == 'serve --config "C:\\Synchro & Co\\hq.toml"'
    )
    as_user = ET.fromstring(
        task_xml(["C:\\s.exe"], config=config, user="DOM\\sync").replace('encoding="UTF-16"', "")
    )
    principal = as_user.find("t:Principals/t:Principal", NS)
    assert principal is not None
    assert principal.findtext("t:UserId", namespaces=NS) == "DOM\\sync"
    assert principal.findtext("t:LogonType", namespaces=NS) == "Password"
    with pytest.raises(PlatformError):
        task_xml([], config=config)


def test_windows_task_plans(tmp_path: Path) -> None:
    config = tmp_path / "hq.toml"
    plan = plan_task_install(config, command=["C:\\synchro.exe", "serve"])
    assert plan.name == "\\Synchro\\synchro-hq"
    write, create = plan.steps
    assert isinstance(write, WriteFile) and write.path == tmp_path / "synchro-hq-task.xml"
    assert write.data.startswith(b"\xff\xfe")  # UTF-16 LE with BOM, as schtasks expects
    assert "<BootTrigger>" in write.data.decode("utf-16")
    assert create == RunCommand(
        ("schtasks", "/Create", "/TN", "\\Synchro\\synchro-hq", "/XML", str(write.path), "/F")
    )
    as_user = plan_task_install(config, command=["C:\\s.exe"], user="sync", password="pw")
    assert as_user.steps[1] == RunCommand((*create.argv, "/RU", "sync", "/RP", "pw"))
    remove = plan_task_remove(config)
    assert remove.steps == (
        RunCommand(("schtasks", "/Delete", "/TN", "\\Synchro\\synchro-hq", "/F")),
        DeleteFile(write.path),
    )


def test_plan_for_platform(tmp_path: Path) -> None:
    config = tmp_path / "synchro.toml"
    assert plan_install(config, platform="win32").name == "\\Synchro\\synchro"
    assert plan_remove(config, platform="win32").name == "\\Synchro\\synchro"
    linux = plan_install(config, platform="linux", user="sync")
    assert linux.name == "synchro.service"
    assert isinstance(linux.steps[0], WriteFile)
    assert linux.steps[0].path == Path("/etc/systemd/system/synchro.service")
    assert b"User=sync\n" in linux.steps[0].data
    assert plan_remove(config, platform="linux").name == "synchro.service"


def test_service_action_dry_run_and_errors(tmp_path: Path) -> None:
    config = tmp_path / "hq.toml"
    text = service_action("install", config, dry_run=True, platform="linux", user="sync")
    assert text.splitlines() == [
        "write  /etc/systemd/system/synchro-hq.service",
        "run    systemctl daemon-reload",
        "run    systemctl enable --now synchro-hq.service",
    ]
    text = service_action("remove", config, dry_run=True, platform="win32")
    assert text.splitlines()[0] == "run    schtasks /Delete /TN \\Synchro\\synchro-hq /F"
    with pytest.raises(PlatformError, match="inconnue"):
        service_action("restart", config)
