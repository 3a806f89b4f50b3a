"""The connection lost at the very COMMIT of an apply (rules 2 and 3).

The network between a node and its database server is cut while the server commits the
apply's transaction (``db_relay``: a real relay in front of the real PostgreSQL or
MariaDB, the connection cut at the ``COMMIT`` the driver sends): the server kept the rows
(the cut came after it committed, its answer lost) or not (the cut came before). The
node cannot tell. Before, the apply's intent was dropped as for any failed apply: the
import failed, and where the server had kept the rows the next capture took them for the
node's own changes — the Siège logged and sent them on again as its own, winning over the
establishments' (« hq-wins »). Now the commit in doubt keeps the intent and the import is
made again at once on a new connection (idempotent): every row once, the change log holds
each change once, and the next capture finds nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from db_relay import DbRelay
from engine_helpers import make_node

from synchro import faults
from synchro.engine.lost import LOST_TRIES
from synchro.errors import CommitInDoubt

ROWS = [(i, f"ligne {i} · Zoé 😀 𠜎") for i in range(1, 301)]


class Setting:
    """The receiving node's database (table ``t``, empty) behind a relay, a sender's
    SQLite file holding ``ROWS``, and the relay armed at the COMMIT of the next ``cuts``
    applies (``kept``: whether the cut lets the server commit first)."""

    def __init__(self, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend = backend
        backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(60))")
        self.relay = DbRelay(5432 if backend.name == "postgresql" else 3306)
        self.connection = self.relay.connection(backend.connection)
        self.sender_db = tmp_path / "sender.db"
        with sqlite3.connect(self.sender_db) as conn:
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(60))")
            conn.executemany("INSERT INTO t VALUES (?, ?)", ROWS)
        self.kept = True
        self.cuts = 0
        real_point = faults.point

        def point(name: str, *args: Any, **kwargs: Any) -> None:
            if name == "node.apply.before_db_commit" and self.relay.cuts < self.cuts:
                self.relay.arm(self.kept)
            real_point(name, *args, **kwargs)

        monkeypatch.setattr(faults, "point", point)

    def stored(self) -> list[tuple[Any, ...]]:
        """The table as the server holds it, read by the test's own connection."""
        return self.backend.query("SELECT id, v FROM t ORDER BY id")


@pytest.fixture
def setting(
    request: pytest.FixtureRequest,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Setting]:
    made = Setting(make_backend(request.param), tmp_path, monkeypatch)
    yield made
    made.relay.stop()


@pytest.mark.parametrize("kept", [True, False], ids=["committed", "rolled-back"])
@pytest.mark.parametrize("setting", ["postgresql", "mariadb"], indirect=True)
@pytest.mark.parametrize("role", ["siege", "serveur"])
def test_an_apply_whose_commit_is_in_doubt_is_made_again_once(
    role: str, setting: Setting, kept: bool, tmp_path: Path
) -> None:
    hq = role == "siege"
    with (
        make_node(tmp_path, "A" if hq else "HQ", str(setting.sender_db), hq=not hq) as sender,
        make_node(tmp_path, "HQ" if hq else "A", setting.connection, hq=hq) as node,
    ):
        package = sender.export().path  # a site's delivery; the Siège's own changes
        if not hq:  # published to the site
            package = sender.publish("A", tmp_path / "out").path
        setting.kept, setting.cuts = kept, 1
        result = node.import_package(package)
        assert setting.relay.cuts == 1, "the connection was never cut at its COMMIT"
        assert result.status == "applied" and result.attempts == 2, result
        assert node.state.intent() is None
        assert setting.stored() == ROWS  # every row once
        if hq:
            logged = node.state.conn.execute("SELECT COUNT(*) FROM changelog").fetchone()[0]
            assert logged == len(ROWS)  # each change logged once
        again = node.export()
        assert again.manifest.rows == 0  # nothing taken for this node's own changes


@pytest.mark.parametrize("setting", ["postgresql", "mariadb"], indirect=True)
def test_a_siege_whose_every_commit_is_cut_redoes_the_apply_before_it_captures(
    setting: Setting, tmp_path: Path
) -> None:
    """Every try of the import cut after the server committed: the import fails (its
    error says so), the intent stays; the next export, once the network is back, applies
    the package again first — the rows the server kept are not the Siège's own changes.
    Before, that export sent all 300 rows on to every establishment as the Siège's."""
    with (
        make_node(tmp_path, "A", str(setting.sender_db)) as sender,
        make_node(tmp_path, "HQ", setting.connection, hq=True) as hq,
    ):
        package = sender.export().path
        setting.cuts = LOST_TRIES
        with pytest.raises(CommitInDoubt) as failed:
            hq.import_package(package)
        assert "connexion perdue pendant la validation" in str(failed.value)
        assert setting.relay.cuts == LOST_TRIES
        assert len(setting.stored()) == len(ROWS)  # kept, which the Siège cannot know
        made = hq.export()
        assert made.manifest.rows == 0  # the package applied again first, nothing taken
        assert hq.state.is_applied("A", 1)
        assert setting.stored() == ROWS
        logged = hq.state.conn.execute("SELECT COUNT(*) FROM changelog").fetchone()[0]
        assert logged == len(ROWS)
