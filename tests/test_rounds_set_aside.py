"""One establishment's delivery the Siège cannot apply no longer fails the group's round.

The Siège's database lives on a real disk that fills up (a tmpfs): one establishment sends
a package too big for the room left (a year of history), another a small one. The big
import is undone whole (``TransactionLost``, kind disk); before, the round then ended
``Echec`` for every establishment and nobody was served. Now that delivery is set aside
(kept in ``/in``, its establishment's row ``Echec`` saying so), the others are applied and
published, and the one set aside is applied once room is made.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

from rounds_helpers import group, sql, stepped
from test_faults_lost_transaction import small_disk

from synchro.engine import hq_deliveries
from synchro.report_summary import detail_lines
from synchro.reports import State

BIG = 40000  # rows of the big delivery: ~6 MB in the Siège's database and state


def count(db: Path, where: str = "1") -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM articles WHERE {where}").fetchone()[0])
    finally:
        conn.close()


def test_a_delivery_the_siege_cannot_apply_is_set_aside_and_the_others_served(
    tmp_path: Path,
) -> None:
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    with (
        small_disk(tmp_path / "SIEGE", "16m") as disk,
        group(tmp_path, ["3615", "3616"], run_service=False, now=lambda: clock[0]) as g,
    ):
        big, small = g.sites["3615"], g.sites["3616"]
        conn = sqlite3.connect(big.db)
        conn.executemany(
            "INSERT INTO articles VALUES (?, ?, '1.50')",
            [(100000 + i, f"historique {i:06d} — Ω") for i in range(BIG)],
        )
        conn.commit()
        conn.close()
        sql(small.db, "INSERT INTO articles VALUES (7, 'Thé vert', '4.20');")
        g.service.step("open")
        g.deliver("3615")
        g.deliver("3616")
        filler = disk / "filler"
        filler.write_bytes(bytes(shutil.disk_usage(disk).free - 1024 * 1024))  # 1 MB left
        g.service.step()  # both delivered: the round closes, applies, publishes

        round_row = next(r for r in g.reports.latest() if r.kind == "round")
        rows = {r.site: r for r in g.reports.for_round(round_row.id) if r.site != "SIEGE"}
        kept = rows["3615"]
        assert kept.state is State.FAILED
        assert kept.details["error_kind"] == "disk"
        assert hq_deliveries.KEPT in kept.error
        shown = detail_lines(kept.details, kept.error, "fr")
        name = kept.details["kept"]
        assert f"Paquet gardé au siège, il sera intégré de nouveau : {name}" in shown
        inbox = tmp_path / "ftp" / "3615" / "in"
        assert [p.name for p in inbox.glob("*.pkg")] == [kept.details["kept"]]
        assert not (g.hq.folder / "packages" / "rejected").exists()
        assert count(g.hq.db, "id >= 100000") == 0  # nothing of it kept
        # the other establishment was applied and served in the same round
        assert count(g.hq.db, "id = 7") == 1
        assert rows["3616"].state is State.RUNNING  # waits for its acknowledgement
        g.answer("3616")
        g.service.step()
        assert g.reports.get(rows["3616"].id).state is State.OK
        with small.node() as node:
            assert count(small.db, "id = 7") == 1 and node.state.outbox() == []
        final = g.reports.get(round_row.id)
        assert final.state is State.FAILED and "en échec : 3615" in final.error

        filler.unlink()  # room made
        g.service.step()  # outside a round, within the pause: not tried again yet
        assert count(g.hq.db, "id >= 100000") == 0
        clock[0] += hq_deliveries.REST_FIRST
        g.service.step()  # the pause over: applied, and its answer published
        assert count(g.hq.db, "id >= 100000") == BIG
        assert not list(inbox.glob("*.pkg"))
        assert g.service.resting == {}
        g.answer("3615")
        assert count(big.db) == BIG + count(g.hq.db, "id < 100000")
        g.service.step("open")  # the next round brings the big one to the others
        g.deliver("3615")
        g.deliver("3616")
        g.service.step()
        for code in ("3615", "3616"):
            g.answer(code)
        assert g.converged()


def test_a_delivery_set_aside_outside_a_round_is_tried_again_with_longer_pauses(
    tmp_path: Path,
) -> None:
    """Outside a round (a late establishment) a delivery that keeps failing is tried again
    after 1, 2, 4... minutes, up to an hour, and its row is written once, not at each try."""
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    with (
        small_disk(tmp_path / "SIEGE", "16m") as disk,
        group(tmp_path, ["3615"], run_service=False, now=lambda: clock[0]) as g,
    ):
        conn = sqlite3.connect(g.sites["3615"].db)
        conn.executemany(
            "INSERT INTO articles VALUES (?, ?, '1.50')",
            [(100000 + i, f"historique {i:06d}") for i in range(BIG)],
        )
        conn.commit()
        conn.close()
        g.deliver("3615")
        filler = disk / "filler"
        filler.write_bytes(bytes(shutil.disk_usage(disk).free - 1024 * 1024))
        tries = []
        for _ in range(8):
            g.service.step()
            [path] = g.service.resting
            tries.append(g.service.resting[path].pause)
            clock[0] += g.service.resting[path].pause
        minutes = [int(p.total_seconds() // 60) for p in tries]
        assert minutes == [1, 2, 4, 8, 16, 32, 60, 60]
        rows = [r for r in g.reports.latest() if r.kind == "site-in-round"]
        assert len(rows) == 1 and rows[0].state is State.FAILED
        filler.unlink()
        g.service.step()
        assert count(g.hq.db, "id >= 100000") == BIG
        assert g.service.resting == {}


REFUSE = (  # the Siège's database refuses this name (a rule of its own)
    "CREATE TRIGGER refuse BEFORE INSERT ON articles WHEN new.nom = 'refusé' "
    "BEGIN SELECT RAISE(ABORT, 'nom refusé au siège'); END;"
)


def test_a_row_a_delivery_settles_during_the_round_does_not_fail_it(tmp_path: Path) -> None:
    """A row of an establishment's earlier package waits in the Siège's quarantine (its
    database refused it); the Siège's next round tries it again in vain at its start, then
    applies the establishment's newer version of it, exactly, which settles it. The round
    counts what waits at its close: nothing, OK. Before, it said « 1 ligne non appliquée »
    and ended Echec for a row no longer waiting (``soak_live`` seed 7087: an order sent
    without its client, then deleted)."""
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    with stepped(tmp_path, ["3615"], clock) as g:
        sql(g.hq.db, REFUSE)
        sql(g.sites["3615"].db, "INSERT INTO articles VALUES (7, 'refusé', '1.00');")
        g.all_deliver()
        first = next(r for r in g.reports.latest() if r.kind == "round")
        by_site = {r.site: r for r in g.reports.for_round(first.id)}
        assert by_site["3615"].quarantined == 1  # refused at the Siège
        g.answer("3615")
        g.service.step()
        sql(g.sites["3615"].db, "UPDATE articles SET nom = 'accepté' WHERE id = 7;")
        clock[0] += dt.timedelta(days=1)
        g.all_deliver()
        g.answer("3615")
        g.service.step()
        second = next(r for r in g.reports.latest() if r.kind == "round")
        assert second.id != first.id
        assert (second.state, second.quarantined) == (State.OK, 0), second.error
        assert count(g.hq.db, "id = 7 AND nom = 'accepté'") == 1
        with g.hq.node() as hq:
            assert hq.state.pending() == []
