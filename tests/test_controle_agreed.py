"""The « Contrôle » tells changes made since the capture from a real difference.

A node's agreed sums (``checksum.agreed_sums``: its snapshot, the rows as it last
exchanged them) are its checksums when nothing changed since; two nodes that exchanged
everything have the same. A row a user changes after the capture makes the databases
differ while the agreed sums still agree: « identiques hors modifications récentes », the
run does not fail, the next capture sends the row. A node whose record of what it
exchanged drifted (here its snapshot altered behind the engine's back, as a bug would)
differs on both: « tables différentes », the run fails. On every back end, every kind of
value (``engine_helpers.fill_sample``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend, create_sample_schema
from engine_helpers import Db, fill_sample, make_node

from synchro.engine.ack import PENDING, controle

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "sqlite-odbc", "postgresql", "mariadb"], indirect=True
)


def test_agreed_sums_tell_changes_made_since_from_a_drift(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    hq_db = make_backend(backend.name)
    create_sample_schema(backend)
    create_sample_schema(hq_db)
    with (
        Db(backend.connection) as site_db,
        make_node(tmp_path, "A", backend.connection) as site,
        make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq,
    ):
        fill_sample(site_db)
        assert hq.import_package(site.export().path).status == "applied"
        quiet = site.checksums()
        assert quiet["kinds"][0] > 0
        assert site.agreed_sums() == quiet  # the snapshot's digests are the rows'
        assert hq.checksums() == quiet  # (through another driver: the same rows)
        assert hq.agreed_sums() == quiet

        site_db.write("parent", [(1, "changé depuis 😀 𠜎")])  # after the capture
        mine, ours = site.checksums(), hq.checksums()
        verdict = controle(mine, ours, site.agreed_sums(["parent"]), hq.agreed_sums())
        assert (verdict.tables, verdict.pending) == ([], ["parent"])
        assert verdict.text == PENDING + "parent"
        assert controle(mine, ours) == ("tables différentes : parent", ["parent"], [])

        parent = next(t for t in site.tables().synced if t.name == "parent")
        snap = site.state.snapshot_table(parent)
        with site.state.transaction():  # what the site recorded as exchanged, drifted
            site.state.conn.execute(f'UPDATE "{snap}" SET h = zeroblob(16) WHERE k0 = 2')
        verdict = controle(mine, ours, site.agreed_sums(["parent"]), hq.agreed_sums())
        assert (verdict.tables, verdict.pending) == (["parent"], [])
        assert verdict.text == "tables différentes : parent"
