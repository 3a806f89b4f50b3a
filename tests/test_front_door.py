"""The front door: on a fresh Debian 12 with Debian's own python3 and nothing else (no python3-tk,
no unixODBC's libodbc.so.2, no Xvfb), the suite collects without a single error and the tests
that need a missing part are skipped with the reason; with ``SYNCHRO_REQUIRE_ALL=1`` (CI) the
same tests fail instead.

The bare machine is played by a ``sitecustomize`` on ``PYTHONPATH`` that makes ``import
tkinter`` / ``_tkinter`` fail as on Debian without python3-tk and ``import pyodbc`` fail as the
wheel does without libodbc.so.2, and by a ``PATH`` holding only the virtual environment's
``bin`` (no Xvfb, trayer, xdotool, wine, database tools). No database server is stopped: the
ODBC-backed tests reach their ``require`` before any connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HIDE = '''\
"""Test-only: play a Debian python3 without python3-tk and without unixODBC."""
import importlib.abc
import sys


class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top == "pyodbc":  # what the pyodbc wheel says when libodbc.so.2 is not installed
            raise ImportError(
                "libodbc.so.2: cannot open shared object file: No such file or directory",
                name=name,
            )
        if top in ("tkinter", "_tkinter"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
'''

# One test of each kind, run for real on the bare machine (the rest of the suite is collected).
GUI_MODULES = ("test_gui_dialogs", "test_gui_general", "test_gui_main", "test_gui_round")
GUI_MODULES += ("test_gui_wizard",)  # their imports need Tk
NEEDS_XVFB = "tests/test_gui_tray.py::test_real_tray_changes_state_and_queues_menu_commands"
NEEDS_ODBC = "tests/test_db_sqlite.py::test_stdlib_and_odbc_discover_the_same_tables"
NEEDS_BUILD = "tests/test_build.py::test_version_from_an_empty_folder"  # pyodbc + Tk bundled
ONE_EACH = (NEEDS_XVFB, NEEDS_ODBC, NEEDS_BUILD)
SELECTED = {f"tests/{m}.py::needs" for m in GUI_MODULES} | set(ONE_EACH)
K_EXPR = " or ".join(["(test_gui and needs)", *(n.rpartition("::")[2] for n in ONE_EACH)])


def bare_pytest(tmp_path: Path, *args: str, require_all: bool) -> tuple[str, dict[str, str]]:
    """Runs pytest as on the bare machine; returns its output and {node id: outcome: text}."""
    hide = tmp_path / "hide"
    hide.mkdir(exist_ok=True)
    (hide / "sitecustomize.py").write_text(HIDE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SYNCHRO_"))}
    env.pop("DISPLAY", None)
    env["PYTHONPATH"] = str(hide)
    env["PATH"] = str(Path(sys.executable).parent)
    if require_all:
        env["SYNCHRO_REQUIRE_ALL"] = "1"
    junit = tmp_path / f"junit-{require_all}.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    done = subprocess.run(
        [*command, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert junit.is_file(), output[-4000:]
    return output, outcomes(junit)


def outcomes(junit: Path) -> dict[str, str]:
    """{``tests/x.py::name``: ``passed`` / ``skipped: reason`` / ``failed: message``}."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").split(".")
        node = f"tests/{module[-1]}.py::{case.get('name')}"
        result = "passed"
        for kind in ("skipped", "failure", "error"):
            child = case.find(kind)
            if child is not None:
                result = f"{kind}: {child.get('message', '')}"
        found[node] = result
    return found


def test_bare_debian_collects_everything_and_skips_with_reasons(tmp_path: Path) -> None:
    output, results = bare_pytest(tmp_path, "tests", "-k", K_EXPR, require_all=False)
    assert "error" not in output.rpartition("\n==")[2].lower(), output[-4000:]
    assert "ERROR collecting" not in output and "Interrupted" not in output, output[-4000:]
    assert set(results) >= SELECTED, (sorted(results), output[-3000:])
    for node in SELECTED:
        assert results[node].startswith("skipped: "), (node, results[node])
    for module in GUI_MODULES:
        assert "Tk is missing (apt-get install python3-tk)" in results[f"tests/{module}.py::needs"]
    assert "Xvfb is not installed" in results[NEEDS_XVFB]
    assert "libodbc.so.2" in results[NEEDS_ODBC]
    assert "libodbc.so.2" in results[NEEDS_BUILD]


def test_bare_debian_under_require_all_fails_instead(tmp_path: Path) -> None:
    nodes = [*(f"tests/{m}.py" for m in GUI_MODULES), *ONE_EACH]
    output, results = bare_pytest(tmp_path, *nodes, require_all=True)
    assert "ERROR collecting" not in output and "Interrupted" not in output, output[-4000:]
    assert set(results) == SELECTED, (sorted(results), output[-3000:])
    for node, result in results.items():
        assert result.startswith(("failure: ", "error: ")), (node, result)
        assert "SYNCHRO_REQUIRE_ALL=1" in result, (node, result)
