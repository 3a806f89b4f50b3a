"""Making a node: the Siège's or a Serveur's, as the config's role says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from synchro.config.model import Config
from synchro.engine.serveur_node import ServeurNode
from synchro.engine.siege_node import SiegeNode


def build_node(
    config: Config,
    state_path: Path,
    packages_dir: Path,
    *,
    connection: str | None = None,
    key: bytes | None = None,
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> SiegeNode | ServeurNode:
    """The node ``config`` describes, on its state database and packages folder (close it
    after use). ``connection`` defaults to the config's; ``key`` is the group key."""
    kind = SiegeNode if config.is_hq else ServeurNode
    return kind(config, state_path, packages_dir, connection=connection, key=key, now=now)
