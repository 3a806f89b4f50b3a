"""Shared test helpers.

A test that needs a server or driver that is missing calls ``require(...)``: on a user's
machine it is skipped with the reason; with ``SYNCHRO_REQUIRE_ALL=1`` (set by ``.ci/run``)
it fails instead, so CI always exercises the real thing.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

pytest_plugins = ["backends"]

REQUIRE_ALL = os.environ.get("SYNCHRO_REQUIRE_ALL") == "1"


def require(reason: str) -> NoReturn:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (SYNCHRO_REQUIRE_ALL=1: missing servers and drivers are failures)")
    pytest.skip(reason)
