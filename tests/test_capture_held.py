"""A row holding a value that cannot travel is set aside; the others go out.

SQLite lets any column hold any type: text in a BLOB column cannot be sent as it is (it
would arrive as bytes, i.e. changed). That row goes to the quarantine with the reason, is
tried again at every capture, and goes out once corrected.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from engine_helpers import db, make_node
from rounds_helpers import group, sql

from synchro.config.model import Role, TableRule
from synchro.mail.message import build_report_message
from synchro.reports import State
from synchro.state import HELD

SCHEMA = "CREATE TABLE docs (id INTEGER PRIMARY KEY, nom TEXT, fichier BLOB, maj DATETIME)"


def make_dbs(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for path in (a, b):
        db(path, SCHEMA)
    db(a, "INSERT INTO docs VALUES (1, 'bon', X'0102', '2026-01-01 10:00:00')")
    db(a, "INSERT INTO docs VALUES (2, 'mauvais', 'du texte', '2026-01-01 10:00:00')")
    db(a, "INSERT INTO docs VALUES (3, 'bon aussi', NULL, '2026-01-01 10:00:00')")
    return a, b


def test_a_row_that_cannot_travel_is_set_aside_and_sent_once_corrected(tmp_path: Path) -> None:
    a, b = make_dbs(tmp_path)
    with (
        make_node(tmp_path, "A", str(a)) as site,
        make_node(tmp_path, "B", str(b), hq=True) as hq,
    ):
        first = site.export()
        assert first.capture.held == 1
        assert first.manifest.rows == 2
        held = site.state.quarantined(HELD)
        assert [(h["tbl"], h["key_json"]) for h in held] == [("docs", "[2]")]
        assert "fichier" in held[0]["error"]
        assert hq.import_package(first.path).status == "applied"
        assert [r[0] for r in db(b, "SELECT id FROM docs ORDER BY id")] == [1, 3]
        again = site.export()  # still wrong: set aside again, nothing else to send
        assert (again.capture.held, again.manifest.rows) == (1, 0)
        assert len(site.state.quarantined(HELD)) == 1
        assert hq.import_package(again.path).status == "applied"
        db(a, "UPDATE docs SET fichier = CAST(fichier AS BLOB) WHERE id = 2")
        fixed = site.export()
        assert (fixed.capture.held, fixed.manifest.rows) == (0, 1)
        assert site.state.quarantined(HELD) == []
        assert hq.import_package(fixed.path).status == "applied"
        assert db(b, "SELECT * FROM docs ORDER BY id") == db(a, "SELECT * FROM docs ORDER BY id")
        assert site.export().manifest.rows == 0


def test_a_set_aside_row_is_tried_again_by_a_capture_limited_to_modified_rows(
    tmp_path: Path,
) -> None:
    a, b = make_dbs(tmp_path)
    rule = TableRule("docs", modified_column="maj")
    with (
        make_node(tmp_path, "A", str(a), rules=[rule]) as site,
        make_node(tmp_path, "B", str(b), hq=True) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
        assert len(site.state.quarantined(HELD)) == 1
        # corrected without touching the modification date: the pre-filter alone would
        # never look at it again
        db(a, "UPDATE docs SET fichier = CAST(fichier AS BLOB) WHERE id = 2")
        later = site.export(since=dt.datetime(2026, 6, 1))
        assert (later.capture.held, later.manifest.rows) == (0, 1)
        assert site.state.quarantined(HELD) == []
        assert hq.import_package(later.path).status == "applied"
        assert db(b, "SELECT * FROM docs ORDER BY id") == db(a, "SELECT * FROM docs ORDER BY id")


def test_a_site_with_a_row_set_aside_still_synchronises_and_reports_it(tmp_path: Path) -> None:
    schema = SCHEMA + ";"
    with group(tmp_path, ["3615"], schema=schema) as g:
        sql(g.sites["3615"].db, "INSERT INTO docs VALUES (1, 'bon', X'01', NULL);")
        sql(g.sites["3615"].db, "INSERT INTO docs VALUES (2, 'mauvais', 'texte', NULL);")
        g.open_round()
        record = g.run("3615")
        # the other row went out, but the run is never OK with a row not sent
        assert record.state is State.FAILED  # (the Contrôle also names the table)
        assert record.error.startswith("1 ligne non envoyée — voir le rapport")
        assert record.details["not_applied"] == {"applied": 0, "sent": 1}
        assert (record.rows_sent, record.quarantined) == (1, 1)
        assert [q["key_json"] for q in record.details["quarantined"]] == ["[2]"]
        assert db(g.hq.db, "SELECT id FROM docs") == [(1,)]
    # The report email lists the row with why, in the UI's language (it was French).
    mails = {
        lang: build_report_message(
            [record], site="3615", role=Role.SITE, lang=lang, now=dt.datetime(2026, 12, 6)
        ).text
        for lang in ("fr", "en")
    }
    assert "table docs, clé [2] : valeur non transportable dans docs.fichier" in mails["fr"]
    assert "table docs, key [2]: value that cannot travel in docs.fichier" in mails["en"]
    assert "non transportable" not in mails["en"]
