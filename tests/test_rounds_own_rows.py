"""A site never downloads its own changes back (issue 15 point 5), with real rounds.

The Siège's package to a site holds what the others (and the Siège) changed since the site's
acknowledged position, never a row whose last version came from that site; but a site's row
the Siège did not keep as sent (it lost a conflict, or another node changed it since) still
reaches the site in its winning version.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rounds_helpers import Group, group, rows, sql

from synchro.package import Change, TableSchema, open_package
from synchro.package.records import RecordCodec
from synchro.reports import State
from synchro.values import to_json

SALES = 40


def offered(g: Group, code: str) -> Path:
    """The package the Siège offers ``code`` now (the newest in its /out)."""
    return sorted((g.root / "ftp" / code / "out").glob("*.pkg"))[-1]


def origins(g: Group, path: Path) -> Counter[str]:
    return Counter(c.origin for c in open_package(path, g.hq_node.keys()).changes())


def seed(g: Group) -> None:
    sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90'), (2, 'Thé', '7.50');")
    for n, code in enumerate(g.sites):
        values = ", ".join(f"('{code}', {i}, 1, {1 + i % 5})" for i in range(SALES))
        sql(
            g.sites[code].db,
            f"INSERT INTO articles VALUES ({10 + n}, 'local {code}', '1.00');"
            f"INSERT INTO ventes VALUES {values};",
        )


def test_a_sites_package_holds_only_what_the_others_changed(tmp_path: Path) -> None:
    sites = ["3615", "3616", "3617"]
    with group(tmp_path, sites) as g:
        seed(g)
        g.open_round()
        results = g.run_all()
        assert {c: r.state for c, r in results.items()} == dict.fromkeys(sites, State.OK)
        assert g.converged()
        mine = SALES + 1  # each site's own rows: its sales and its article
        for code in sites:
            got = origins(g, offered(g, code))
            others = {s: mine for s in sites if s != code}
            assert got == Counter({**others, "SIEGE": 2}), code  # nothing of its own
            assert results[code].rows_received == 2 * mine + 2
        round_row = g.round_ended()
        members = [r for r in g.reports.for_round(round_row.id) if r.kind == "site-in-round"]
        assert all(r.rows_sent == 2 * mine + 2 and r.state is State.OK for r in members)
        # Bytes: the package of everything (what a site in step got before) is bigger by
        # about one site's share; a site's package is at most the others' part of it.
        everything = g.hq_node.publish("ZZZZ", tmp_path / "all")[0].stat().st_size
        for code in sites:
            size = offered(g, code).stat().st_size
            assert size < everything * (2 * mine + 2) / (3 * mine + 2) + 1024


def test_a_sites_row_the_siege_did_not_keep_comes_back_in_its_winning_version(
    tmp_path: Path,
) -> None:
    sites = ["3615", "3616"]
    with group(tmp_path, sites) as g:
        seed(g)
        g.open_round()
        assert all(r.state is State.OK for r in g.run_all().values())
        # hq-wins: the Siège and 3615 both change article 1, the Siège's version stays;
        # 3615 then 3616 change article 10 (3616 had not received 3615's change: at the
        # Siège it loses to the version the Siège holds, 3615's).
        sql(g.hq.db, "UPDATE articles SET prix = '20.00' WHERE id = 1")
        sql(
            g.sites["3615"].db,
            "UPDATE articles SET prix = '99.00' WHERE id = 1;"
            "UPDATE articles SET nom = 'par 3615' WHERE id = 10;"
            "UPDATE ventes SET qte = 9 WHERE site = '3615' AND num = 0;",
        )
        sql(g.sites["3616"].db, "UPDATE articles SET nom = 'par 3616' WHERE id = 10")
        before = {code: offered(g, code) for code in sites}
        g.open_round()
        g.deliver("3615")
        g.deliver("3616")  # applied in site order: 3615 first, so 3616's change conflicts
        for code in sites:
            deadline = time.monotonic() + 30
            while offered(g, code) == before[code] and time.monotonic() < deadline:
                time.sleep(0.05)
        to_3615 = {(c.table, c.origin, c.values[0]) for c in changes_of(g, "3615")}
        assert to_3615 == {("articles", "SIEGE", 1)}  # only the version that beat its own
        to_3616 = {(c.table, c.origin, c.values[0]) for c in changes_of(g, "3616")}
        assert to_3616 == {
            ("articles", "SIEGE", 1),
            ("articles", "3615", 10),
            ("ventes", "3615", "3615"),
        }
        for code in sites:
            g.answer(code)
        assert g.converged()
        assert (1, "Café", 20.0) in rows(g.sites["3615"].db, "articles")
        assert (10, "par 3615", 1.0) in rows(g.sites["3616"].db, "articles")


def changes_of(g: Group, code: str) -> list[Change]:
    return list(open_package(offered(g, code), g.hq_node.keys()).changes())


def test_rows_queued_as_json_text_make_the_same_line_as_rows_by_value() -> None:
    """The Siège writes its change log's JSON text as it is (spaces and all): the line is
    the one ``write`` makes from the values, so the reader and the bytes are unchanged."""
    kinds = (("id", "int"), ("d", "decimal"), ("s", "text"), ("f", "float"), ("t", "datetime"))
    schema = TableSchema("t", kinds, ("id",))
    rows = [
        (1, Decimal("18.90"), "Café « noir »,  x", 0.1, dt.datetime(2026, 12, 4, 17, 0, 0, 5)),
        (2, None, "", -1e300, None),
        (3, Decimal("-0.00"), '\\"quoted", [x]', float("nan"), dt.datetime(2026, 1, 1)),
    ]
    by_value, by_text = RecordCodec([schema]), RecordCodec([schema])
    for n, row in enumerate(rows, 1):
        by_value.queue(by_value.encode("t", "U", row, "S1", n))
        text = json.dumps([to_json(k, v) for (_, k), v in zip(kinds, row, strict=True)])
        by_text.queue_json("t", "U", text, "S1", n)
    assert by_text.take_line() == by_value.take_line()


def test_the_log_is_encoded_once_per_acknowledged_position_not_once_per_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Siège's work must not grow as sites × rows (issue 15): sites in step share one
    reading of the change log; only a site at another position costs another."""
    from synchro.engine import siege_node

    calls: list[int] = []
    real = siege_node.build_segments

    def counted(state: Any, tables: Any, after: int, store: Any) -> Any:
        calls.append(after)
        return real(state, tables, after, store)

    monkeypatch.setattr(siege_node, "build_segments", counted)
    sites = ["3615", "3616", "3617"]
    with group(tmp_path, sites) as g:
        seed(g)
        g.open_round()
        assert all(r.state is State.OK for r in g.run_all().values())
        assert calls == [0]  # three packages, one reading of the log
        calls.clear()
        published = g.hq_node.publish_group(sites, lambda site: tmp_path / "again" / site)
        assert len(set(calls)) == len(calls) == 1  # all three at the same position again
        assert {code: origins(g, p.path)[code] for code, p in published.items()} == {
            code: 0 for code in sites
        }
        behind = g.hq_node.publish_group(["ZZZZ", *sites], lambda site: tmp_path / site)
        assert sorted(calls[1:]) == [0, calls[0]]  # a site never seen: one more reading
        assert sum(origins(g, behind["ZZZZ"].path).values()) > sum(
            origins(g, behind["3615"].path).values()
        )
