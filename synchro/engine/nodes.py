"""Making a node: the Siège's or a Serveur's, as the config's role says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from synchro.config.model import Config
from synchro.config.store import resolve_connection
from synchro.engine.serveur_node import ServeurNode
from synchro.engine.siege_node import SiegeNode
from synchro.package.crypto import decode_key
from synchro.platform.paths import NodePaths


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


def group_key(text: str) -> bytes | None:
    """The group's AES-256 key (packages are encrypted and authenticated when it is set)."""
    return decode_key(text) if text else None


def open_node(
    config: Config,
    paths: NodePaths,
    now: Callable[[], dt.datetime],
    stopping: Callable[[], bool] | None = None,
) -> SiegeNode | ServeurNode:
    """The node of this installation (its state, packages, database and group key).
    ``stopping()``: the program stops, a wait for another program's lock on the state or
    the database ends (``Cancelled``: ``db.lock_wait``)."""
    node = build_node(
        config,
        paths.state_db,
        paths.packages_dir,
        connection=resolve_connection(config, paths),
        key=group_key(config.group_key),
        now=now,
    )
    node.state.stopping = stopping
    return node
