"""A Siège started again, twice, while an establishment's acknowledgement is in flight.

Found by the random campaign's second kill (``bench/soak_faults.py --kinds kill2``, seed
222): the Siège's ``sync`` killed after A had applied its answer (A's acknowledgement
refused: nothing listened), started again — it takes the round over and, A not having
acknowledged, publishes A its answer again — killed again, started again: the same. A's
acknowledgement of the first copy then arrives; A's run ends OK and every node holds the
same rows, so the Siège's round must say OK too, not « Etablissements en échec : A » once
``ack_wait`` ran out.

The Siège here is the real round service over real FTPS on loopback and real SQLite files;
a restart is what a new process does at start-up: every row left « En cours... » closed
« interrompu » (``ReportStore.close_interrupted``, as ``App`` does), the node opened again
from its files, a new service over them, which runs the ``sync`` command.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from rounds_helpers import Group, backup, group, rows, sql

from synchro.engine.hq_round import HQService
from synchro.engine.siege_node import take_back_key
from synchro.names import published_name
from synchro.reports import INTERRUPTED, State


def restart(g: Group) -> None:
    """The Siège's process killed and started again (``sync``: a round opened at once,
    as MANUELLE)."""
    g.reports.close_interrupted(dt.datetime.now())
    g.hq_node.close()
    g.hq_node = g.hq.node()
    settings = g.service.settings
    g.service = HQService(g.hq_node, g.reports, g.root / "ftp", settings)
    g.service.step("open")  # takes the interrupted round over (within max_reception)
    g.service.step()


def offered(g: Group, code: str) -> list[str]:
    return sorted(p.name for p in (g.root / "ftp" / code / "out").glob("*.pkg"))


def last_round(g: Group) -> Any:
    return next(r for r in g.reports.latest() if r.kind == "round")


def test_an_ack_of_an_answer_published_again_since_ends_the_round_ok(tmp_path: Path) -> None:
    with group(tmp_path, ["A"], run_service=False) as g:
        sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90');")
        sql(g.sites["A"].db, "INSERT INTO articles VALUES (10, 'Thé du Yunnan 雲南', '7.50');")
        g.service.step("open")
        g.deliver("A")
        g.service.step()  # applied, answered; waiting for A's ack
        first = g.hq_node.state.site("A").out_seq
        assert offered(g, "A") == [published_name("SIEGE", "A", first)]
        assert g.answer("A", ack=False) == published_name("SIEGE", "A", first)
        again: list[int] = []
        for _ in range(2):  # killed, started again: the round taken over, A answered again
            restart(g)
            again.append(g.hq_node.state.site("A").out_seq)
            assert offered(g, "A") == [published_name("SIEGE", "A", again[-1])]
        assert first < again[0] < again[1]  # each start published A its answer again
        waiting = [a.sequence for a in g.service.acks.awaited("A")]
        assert waiting and min(waiting) > first  # the row waits for a later package
        assert g.acknowledge("A") == first  # A's ack of the first copy, in flight till now
        g.service.step()
        rounds = [r for r in g.reports.latest() if r.kind == "round"]
        assert [r.state for r in rounds[:3]] == [State.OK, State.FAILED, State.FAILED]
        assert all(r.error == INTERRUPTED for r in rounds[1:3])
        served = [r for r in g.reports.for_round(rounds[0].id) if r.kind == "site-in-round"]
        assert [(r.site, r.state) for r in served] == [("A", State.OK)]
        assert served[0].details["accuse"] == first
        assert served[0].details["controle"] == "identiques"
        assert g.service.acks.awaited("A") == []
        assert g.converged()


def a_round(g: Group, code: str) -> None:
    g.service.step("open")
    g.deliver(code)
    g.service.step()
    g.answer(code)
    g.service.step()  # takes the ack: the round ends
    assert last_round(g).state is State.OK


def test_a_site_taking_the_data_back_is_served_by_the_first_copy_of_everything(
    tmp_path: Path,
) -> None:
    """The same, while A takes the group's data back after a restore: its package of
    everything published, then published again by each start; A's acknowledgement of the
    first copy ends the take-back (A holds every row) and the round is OK."""
    with group(tmp_path, ["A"], run_service=False) as g:
        sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90');")
        a_db = g.sites["A"].db
        a_round(g, "A")
        backup(a_db, tmp_path / "backup.db")
        sql(a_db, "INSERT INTO articles VALUES (11, 'Ουζο ούζο', '12.00');")  # sent, then lost
        sql(g.hq.db, "INSERT INTO articles VALUES (2, 'Kaffee Größe XL', '4.20');")
        a_round(g, "A")
        group_rows = rows(g.hq.db, "articles")
        backup(tmp_path / "backup.db", a_db)  # the restore: rows 2 and 11 gone
        with g.sites["A"].node() as node:
            node.take_back()  # *Reprendre les données du groupe*
        g.service.step("open")
        g.deliver("A")  # asks for everything
        g.service.step()
        everything = g.hq_node.state.site("A").out_seq
        assert g.hq_node.state.get_meta(take_back_key("A")) == str(everything)
        g.answer("A", ack=False)
        assert rows(a_db, "articles") == group_rows  # A holds every row again
        for _ in range(2):
            restart(g)
        assert int(g.hq_node.state.get_meta(take_back_key("A")) or 0) > everything
        assert g.acknowledge("A") == everything
        g.service.step()
        assert g.hq_node.state.get_meta(take_back_key("A")) is None  # the take-back is over
        assert last_round(g).state is State.OK
        assert g.service.acks.awaited("A") == []
        assert g.converged()
