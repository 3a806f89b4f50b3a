"""``synchro service install|remove``: start the headless ``synchro serve`` with the machine.

The Run key and the XDG autostart entry (:mod:`synchro.platform.autostart`) only fire when
someone logs in. A server that reboots unattended (power cut, Windows Update) needs Synchro to
start with the machine:

- Linux: a systemd unit ``synchro[-<name>].service`` running ``synchro serve --config PATH``
  (restarted on failure, after the network is up).
- Windows: a scheduled task ``\\Synchro\\<name>`` "at startup" (Task Scheduler XML 1.2, run as
  SYSTEM by default, no time limit, restarted on failure), created with ``schtasks /Create /XML``.

Installing is described first as a :class:`ServicePlan` (files to write, commands to run), which
``synchro service install --dry-run`` can print and tests can inspect; :func:`apply_plan` carries
it out. Nothing here runs at import; every target folder is a parameter.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from synchro.errors import PlatformError
from synchro.i18n import tr

SYSTEMD_DIR = Path("/etc/systemd/system")
TASK_FOLDER = "\\Synchro\\"
SYSTEM_SID = "S-1-5-18"
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class WriteFile:
    path: Path
    data: bytes


@dataclass(frozen=True)
class DeleteFile:
    path: Path


@dataclass(frozen=True)
class RunCommand:
    argv: tuple[str, ...]


Step = WriteFile | DeleteFile | RunCommand


@dataclass(frozen=True)
class ServicePlan:
    """What installing or removing the service does, in order."""

    name: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """Human-readable steps (``--dry-run``)."""
        lines = []
        for step in self.steps:
            if isinstance(step, WriteFile):
                lines.append(f"write  {step.path}")
            elif isinstance(step, DeleteFile):
                lines.append(f"delete {step.path}")
            else:
                lines.append("run    " + subprocess.list2cmdline(step.argv))
        return "\n".join(lines)


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


def apply_plan(plan: ServicePlan, *, run_commands: bool = True, runner: Runner = _run) -> None:
    """Carries out ``plan``; with ``run_commands=False`` only files are written or deleted."""
    for step in plan.steps:
        if isinstance(step, WriteFile):
            try:
                step.path.parent.mkdir(parents=True, exist_ok=True)
                step.path.write_bytes(step.data)
            except OSError as exc:
                said = {"path": str(step.path), "detail": str(exc.strerror or exc)}
                raise PlatformError(say=("platform.service.unwritable", said)) from exc
        elif isinstance(step, DeleteFile):
            try:
                step.path.unlink(missing_ok=True)
            except OSError as exc:
                said = {"path": str(step.path), "detail": str(exc)}
                raise PlatformError(say=("platform.service.undeletable", said)) from exc
        elif run_commands:
            _run_step(step, runner)


def _run_step(step: RunCommand, runner: Runner) -> None:
    shown = subprocess.list2cmdline(step.argv)
    try:
        done = runner(step.argv)
    except (OSError, subprocess.SubprocessError) as exc:
        said = {"command": shown, "detail": str(exc)}
        raise PlatformError(say=("platform.service.failed", said)) from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip()
        refused = {"command": shown, "code": str(done.returncode), "detail": detail}
        raise PlatformError(say=("platform.service.refused", refused))


# --------------------------------------------------------------------------- commands


def serve_command(config: Path) -> list[str]:
    """``synchro serve --config PATH`` with this program (frozen exe or ``python -m synchro``)."""
    config_arg = str(Path(config).absolute())
    if getattr(sys, "frozen", False):
        return [sys.executable, "serve", "--config", config_arg]
    return [sys.executable, "-m", "synchro", "serve", "--config", config_arg]


def service_name(config: Path) -> str:
    """``synchro`` for ``synchro.toml``, ``synchro-<stem>`` for other settings files."""
    stem = Path(config).stem
    if stem == "synchro":
        return "synchro"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "node"
    return f"synchro-{safe}"


def default_service_user() -> str | None:
    """The user the Linux unit runs as: the one behind ``sudo``, else the current one.

    None (no ``User=``, i.e. root) only when that user is root.
    """
    name = os.environ.get("SUDO_USER") or _current_user()
    return None if name in ("", "root") else name


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


# --------------------------------------------------------------------------- systemd


def systemd_quote(arg: str) -> str:
    """One ExecStart word: double-quoted when needed; ``%`` and ``$`` escaped for systemd."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and not re.search(r"[\s\"'\\;]", text):
        return text
    inner = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{inner}"'


def systemd_unit(command: Sequence[str], *, config: Path, user: str | None = None) -> str:
    """The text of the unit running ``command`` (absolute executable first) at boot."""
    if not command or not os.path.isabs(command[0]):
        said = {"command": str(command)}
        raise PlatformError(say=("platform.service.not_absolute", said))
    config = Path(config).absolute()
    if any(c in str(config) for c in "\r\n") or any(c in a for a in command for c in "\r\n"):
        raise PlatformError(say=("platform.service.newline", {"config": str(config)}))
    lines = [
        "[Unit]",
        f"Description=Synchro - synchronisation des bases ({config})".replace("%", "%%"),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(systemd_quote(a) for a in command),
        # Not a command line: no quotes, no $ expansion, only % specifiers to escape.
        "WorkingDirectory=" + str(config.parent).replace("%", "%%"),
        *([f"User={user}"] if user else []),
        "Restart=on-failure",
        "RestartSec=30",
        # A run stops at its next safe point (never mid-transaction): give it time.
        "TimeoutStopSec=120",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def plan_systemd_install(
    config: Path,
    *,
    command: Sequence[str] | None = None,
    user: str | None = None,
    target_dir: Path = SYSTEMD_DIR,
) -> ServicePlan:
    name = service_name(config) + ".service"
    unit = systemd_unit(command or serve_command(config), config=config, user=user)
    return ServicePlan(
        name,
        (
            WriteFile(Path(target_dir) / name, unit.encode("utf-8")),
            RunCommand(("systemctl", "daemon-reload")),
            RunCommand(("systemctl", "enable", "--now", name)),
        ),
    )


def plan_systemd_remove(config: Path, *, target_dir: Path = SYSTEMD_DIR) -> ServicePlan:
    name = service_name(config) + ".service"
    return ServicePlan(
        name,
        (
            RunCommand(("systemctl", "disable", "--now", name)),
            DeleteFile(Path(target_dir) / name),
            RunCommand(("systemctl", "daemon-reload")),
        ),
    )


# --------------------------------------------------------------------------- Windows task


def task_xml(command: Sequence[str], *, config: Path, user: str | None = None) -> str:
    """Task Scheduler 1.2 XML: at startup (1 min delay for the network), no time limit,
    one instance, restart 3 times on failure. ``user`` None = SYSTEM (needs system DSNs)."""
    if not command:
        raise PlatformError(say=("platform.service.empty_task", {}))
    exe, *args = command
    exe_text = f'"{exe}"' if " " in exe else exe
    principal = (
        f"      <UserId>{SYSTEM_SID}</UserId>\n      <RunLevel>HighestAvailable</RunLevel>"
        if user is None
        else f"      <UserId>{escape(user)}</UserId>\n      <LogonType>Password</LogonType>\n"
        "      <RunLevel>LeastPrivilege</RunLevel>"
    )
    workdir = escape(str(Path(config).absolute().parent))
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>Synchro</Author>
    <Description>{escape(f"Synchro serve ({Path(config).absolute()})")}</Description>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
      <Delay>PT1M</Delay>
    </BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
{principal}
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT5M</Interval>
      <Count>3</Count>
    </RestartOnFailure>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(exe_text)}</Command>
      <Arguments>{escape(subprocess.list2cmdline(args))}</Arguments>
      <WorkingDirectory>{workdir}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def task_name(config: Path) -> str:
    return TASK_FOLDER + service_name(config)


def plan_task_install(
    config: Path,
    *,
    command: Sequence[str] | None = None,
    user: str | None = None,
    password: str | None = None,
    target_dir: Path | None = None,
) -> ServicePlan:
    """Writes the XML (UTF-16 with BOM, what schtasks expects) beside the config, registers it."""
    name = task_name(config)
    xml_path = Path(target_dir or Path(config).absolute().parent) / (
        service_name(config) + "-task.xml"
    )
    xml = task_xml(command or serve_command(config), config=config, user=user)
    create = ["schtasks", "/Create", "/TN", name, "/XML", str(xml_path), "/F"]
    if user is not None:
        create += ["/RU", user, "/RP", password or "*"]
    return ServicePlan(name, (WriteFile(xml_path, xml.encode("utf-16")), RunCommand(tuple(create))))


def plan_task_remove(config: Path, *, target_dir: Path | None = None) -> ServicePlan:
    name = task_name(config)
    xml_path = Path(target_dir or Path(config).absolute().parent) / (
        service_name(config) + "-task.xml"
    )
    return ServicePlan(
        name, (RunCommand(("schtasks", "/Delete", "/TN", name, "/F")), DeleteFile(xml_path))
    )


# --------------------------------------------------------------------------- entry points


def plan_install(
    config: Path, *, platform: str | None = None, user: str | None = None
) -> ServicePlan:
    """The install plan for this OS: a scheduled task on Windows, a systemd unit elsewhere."""
    if (platform or sys.platform) == "win32":
        return plan_task_install(config, user=user)
    return plan_systemd_install(config, user=user if user is not None else default_service_user())


def plan_remove(config: Path, *, platform: str | None = None) -> ServicePlan:
    if (platform or sys.platform) == "win32":
        return plan_task_remove(config)
    return plan_systemd_remove(config)


def service_action(
    action: str,
    config: Path,
    *,
    dry_run: bool = False,
    user: str | None = None,
    platform: str | None = None,
    lang: str = "fr",
) -> str:
    """``synchro service install|remove [--dry-run]``: does it and returns the text to print
    (in ``lang``)."""
    if action == "install":
        plan = plan_install(Path(config).absolute(), platform=platform, user=user)
    elif action == "remove":
        plan = plan_remove(Path(config).absolute(), platform=platform)
    else:
        raise PlatformError(say=("platform.service.unknown_action", {"action": repr(action)}))
    if dry_run:
        return plan.describe()
    apply_plan(plan)
    done = "platform.service.installed" if action == "install" else "platform.service.removed"
    return tr(done, lang, name=plan.name)
