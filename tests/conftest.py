"""Shared test helpers.

A test that needs a server or driver that is missing calls ``require(...)``: on a user's
machine it is skipped with the reason; with ``SYNCHRO_REQUIRE_ALL=1`` (set by ``.ci/run``)
it fails instead, so CI always exercises the real thing.

Parts of the machine a bare Debian python3 lacks (Tk from python3-tk, the ODBC driver manager
libodbc.so.2 from unixodbc) are named in ``OPTIONAL_MODULES``:

- a test module whose *import* fails for want of one of them is collected as a single item,
  ``<module>::needs``, that calls ``require(reason)`` (never a collection error, which would
  stop the whole run);
- inside a test, ``require_module(name)`` imports one of them or calls ``require(reason)``.

``tests/test_front_door.py`` proves both with those modules hidden.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

pytest_plugins = ["backends"]

REQUIRE_ALL = os.environ.get("SYNCHRO_REQUIRE_ALL") == "1"

TK = "Tk is missing (apt-get install python3-tk)"
ODBC = "the ODBC driver manager is missing (apt-get install unixodbc)"
OPTIONAL_MODULES = {"tkinter": TK, "_tkinter": TK, "pyodbc": ODBC}


def require(reason: str) -> NoReturn:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (SYNCHRO_REQUIRE_ALL=1: missing servers and drivers are failures)")
    pytest.skip(reason)


def missing_reason(exc: BaseException | None) -> str | None:
    """Why ``exc`` (or an exception it was raised from) means an optional part is missing;
    None when it is any other error, which must stay an error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            top = (exc.name or "").partition(".")[0]
            if top in OPTIONAL_MODULES:
                return f"{OPTIONAL_MODULES[top]}: {exc}"
            if "libodbc" in str(exc):
                return f"{ODBC}: {exc}"
        exc = exc.__cause__ or exc.__context__
    return None


def require_module(name: str) -> ModuleType:
    """``import name``, or ``require(reason)`` when it is one of the missing optional parts."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require(missing_reason(exc) or f"{name} cannot be imported: {exc}")


class MissingPart(pytest.Item):
    """Stands for a test module that could not be imported without an optional part."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        require(self.reason)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}: needs what is missing"


class GuardedModule(pytest.Module):
    """A test module whose import error for a missing optional part becomes ``MissingPart``."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        try:
            self.obj  # noqa: B018 - imports the test module
        except self.CollectError as exc:
            reason = missing_reason(exc.__cause__)
            if reason is None:
                raise
            return [MissingPart.from_parent(self, name="needs", reason=reason)]
        return super().collect()


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    return GuardedModule.from_parent(parent, path=module_path)
