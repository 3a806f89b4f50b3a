"""The dependency direction is the architecture (docs/ARCHITECTURE.md, DESIGN §2): every
``import`` in synchro/ (read with ``ast``, lazy and TYPE_CHECKING imports included) is checked
against the layers below. A lower layer importing a higher one, a front end reaching into the
engine's internals, or a library imported outside the package that owns it fails here.

What was already so when these rules were written is listed in ``KNOWN_DEBT`` (issue 14):
each entry is a debt, not a permission. Remove an entry when its import goes; the test also
fails when an entry no longer matches any import, so the list only shrinks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "synchro"

# Areas: a sub-package (``synchro.engine.node`` -> ``engine``) or a top-level module
# (``synchro.cli_rounds`` -> ``cli_rounds``). A higher layer may import a lower one or its own.
LAYERS: dict[str, int] = {
    # 0 - shared basics, imported by everyone
    "synchro": 0,  # synchro/__init__.py: __version__
    "errors": 0,
    "values": 0,
    "i18n": 0,
    "log": 0,
    "faults": 0,
    "names": 0,
    # 1 - the user's database, the settings, the machine
    "db": 1,
    "config": 1,
    "platform": 1,
    # 2 - files, network, the report store
    "package": 2,
    "transport": 2,
    "state": 2,
    "reports": 2,
    "report_summary": 2,
    # 3 - change capture, email
    "capture": 3,
    "mail": 3,
    # 4 - runs and rounds
    "engine": 4,
    "scheduler": 4,
    # 5 - the composition root
    "app": 5,
    "enrolment": 5,
    "application": 5,
    # 6 - front ends
    "cli": 6,
    "cli_engine": 6,
    "cli_rounds": 6,
    "demo": 6,
    "gui_backend": 6,
    "gui": 6,
    "__main__": 6,
}
FRONT_ENDS = {area for area, layer in LAYERS.items() if layer == 6}
# What a front end must reach through the application layer (app), never directly.
INTERNALS = {"engine", "capture", "package", "transport", "db"}
# A third-party or stdlib library with one home: translated at that boundary (errors.py).
LIBRARY_HOME = {
    "FreeSimpleGUI": {"gui"},
    "pystray": {"gui"},
    "tkinter": {"gui"},
    "_tkinter": {"gui"},
    "pyodbc": {"db"},
    "pyftpdlib": {"transport"},
    "OpenSSL": {"transport"},
    "ftplib": {"transport"},
    "yagmail": {"mail"},
    "smtplib": {"mail"},
}
GUI_TOOLKITS = ("FreeSimpleGUI", "pystray", "tkinter", "_tkinter")

# (importing module, imported area or library): imports that break a rule today. Debt for
# issue 14 (points 1, 4 and 7); the lead decides how each goes. Do not add to this list.
KNOWN_DEBT: set[tuple[str, str]] = set()


def area_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every module name the file imports (``from a import b`` gives ``a`` and ``a.b``)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            if base == "synchro":  # from synchro import faults (a module, not __version__)
                for alias in node.names:
                    where = PACKAGE / alias.name
                    if where.is_dir() or where.with_suffix(".py").is_file():
                        yield f"synchro.{alias.name}"


def all_imports() -> list[tuple[str, str]]:
    """(importing module, imported module) for every import in synchro/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        found += [(importer, name) for name in imports(path) if name]
    return found


def broken_rules(importer: str, imported: str) -> list[str]:
    """What the import breaks, as readable lines (empty when it is allowed)."""
    source = area_of(importer)
    problems: list[str] = []
    top = imported.split(".")[0]
    if top != "synchro":
        home = LIBRARY_HOME.get(top)
        if home is not None and source not in home:
            problems.append(f"{importer} imports {top}, which only {sorted(home)} may import")
        return problems
    target = area_of(imported)
    if source not in LAYERS or target not in LAYERS:
        unknown = source if source not in LAYERS else target
        problems.append(f"{importer} -> {imported}: area {unknown!r} has no layer in LAYERS")
    elif LAYERS[target] > LAYERS[source]:
        problems.append(f"{importer} (layer {LAYERS[source]}) imports higher {imported}")
    if source in FRONT_ENDS and target in INTERNALS:
        problems.append(f"front end {importer} reaches into {imported} (go through app)")
    return problems


def debt_key(importer: str, imported: str) -> tuple[str, str]:
    top = imported.split(".")[0]
    return importer, (top if top != "synchro" else area_of(imported))


def test_every_import_follows_the_layers() -> None:
    violations = []
    used_debt = set()
    for importer, imported in all_imports():
        problems = broken_rules(importer, imported)
        key = debt_key(importer, imported)
        if problems and key in KNOWN_DEBT:
            used_debt.add(key)
        elif problems:
            violations += problems
    assert not violations, "\n".join(sorted(set(violations)))
    assert used_debt == KNOWN_DEBT, f"paid off, remove from KNOWN_DEBT: {KNOWN_DEBT - used_debt}"


def test_the_brief_rules_hold_with_no_exception() -> None:
    """DESIGN §2 in its own words (none of these is in KNOWN_DEBT)."""
    never = {
        ("engine", "capture", "package", "transport", "db", "reports", "mail"): {
            *GUI_TOOLKITS,
            "gui",
            "cli",
            "cli_engine",
            "cli_rounds",
            "demo",
            "gui_backend",
            "app",
        },
        ("values", "db", "package"): {"engine"},
        ("config",): {"engine", "transport", "db"},
    }
    found = []
    for importer, imported in all_imports():
        top = imported.split(".")[0]
        target = top if top != "synchro" else area_of(imported)
        for sources, forbidden in never.items():
            if area_of(importer) in sources and target in forbidden:
                found.append(f"{importer} imports {imported}")
    assert not found, "\n".join(found)


def test_the_checker_sees_a_violation() -> None:
    assert broken_rules("synchro.db.odbc", "synchro.engine.node")
    assert broken_rules("synchro.engine.node", "FreeSimpleGUI")
    assert broken_rules("synchro.demo", "synchro.transport.token")
    assert broken_rules("synchro.mail", "synchro.newthing")  # every area needs a layer
    assert not broken_rules("synchro.engine.node", "synchro.db.base")
    assert not broken_rules("synchro.cli", "synchro.app")
    relative = PACKAGE / "engine" / "node.py"
    assert all(not name.startswith(".") for name in imports(relative))


def test_nothing_outside_gui_loads_a_gui_toolkit_or_pyodbc() -> None:
    """Importing every module outside synchro/gui/ (engine, app, CLI, tray backend...) loads
    neither FreeSimpleGUI, pystray nor Tk, so the headless CLI runs with no display and no
    python3-tk; pyodbc is loaded only when an ODBC database is opened."""
    names = sorted(
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if "gui" not in p.relative_to(PACKAGE).parts[:1] and p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{(*GUI_TOOLKITS, 'pyodbc')!r})\n"
        "print(repr(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(names) > 50
    assert done.stdout.strip() == "[]"


def test_the_architecture_page_shows_these_layers() -> None:
    """docs/ARCHITECTURE.md's layer table names every area at the layer LAYERS gives it."""
    shown: dict[str, int] = {}
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip()[:1].isdigit():
            layer = int(cells[1].strip().split()[0])
            for name in cells[2].split("`")[1::2]:
                area = name.removesuffix("/").removesuffix(".py")
                shown["synchro" if area == "__init__" else area] = layer
    shown.pop("locales", None)  # i18n's texts, not an area
    assert shown == LAYERS


def test_front_ends_use_the_application_api_not_its_insides() -> None:
    """A front end holds a ``Synchro`` and calls its methods: reaching ``.app`` (the
    composition root behind it) or importing ``synchro.app`` goes around the API."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if area_of(module) not in FRONT_ENDS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "app":
                found.append(f"{module}:{node.lineno} reaches .app")
        found += [f"{module} imports {name}" for name in imports(path) if area_of(name) == "app"]
    assert not found, "\n".join(found)
