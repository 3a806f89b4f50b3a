"""The Siège's disk is full when an establishment sends its package.

A real tmpfs under the Siège's FTP folder, filled. Before, the site's run failed "Transfert
interrompu ... Connection reset by peer" (kind network: "check the Internet connection"),
and the Siège's report said nothing of its disk: the establishment was only « sans
données ». Now the Siège refuses the size up front (``ALLO`` → ``452``) or, when the disk
fills during the transfer, says why it ended it (``426`` with the system's words, read by
the client after the data connection broke); the site's error names the Siège's disk, the
Siège's round lists the refusal, and the next run, room made, sends it in full.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from rounds_helpers import group
from test_faults_lost_transaction import small_disk

from synchro.reports import State
from synchro.transport import ftp_handler


def big_history(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO articles VALUES (?, ?, '1.50')",
        [(100000 + i, f"historique {i:06d} {i * 7919 % 100003}") for i in range(40000)],
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("when", ["before", "during"])
def test_a_full_disk_at_the_siege_is_said_as_such_and_the_upload_made_later(
    when: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``before``: the disk has 20 kB left, the package is bigger: refused at ``ALLO``.
    ``during``: the Siège believes it has room (its free-space figure patched, the only
    fake here), the real write then fails with ENOSPC mid-transfer."""
    real = shutil.disk_usage

    def roomy(path: Any) -> Any:
        usage = real(path)
        return usage._replace(free=usage.free + 10**9)

    with (
        small_disk(tmp_path / "ftp", "16m") as disk,
        group(tmp_path, ["3615"], max_reception=dt.timedelta(seconds=2)) as g,
    ):
        g.service.security_events = g.server.security_events  # as the App wires them
        big_history(g.sites["3615"].db)
        filler = disk / "filler"
        filler.write_bytes(bytes(real(disk).free - 20 * 1024))
        if when == "during":
            monkeypatch.setattr(ftp_handler.shutil, "disk_usage", roomy)
        g.open_round()
        failed = g.run("3615", attempts=2, delay_s=0.1)
        assert failed.state is State.FAILED
        assert "Le disque du siège" in failed.error and "est plein" in failed.error, failed.error
        assert "Connection reset" not in failed.error
        assert failed.details["error_kind"] == "network"  # the other side's trouble
        parts = list((disk / "3615" / "in").glob("*.part"))
        assert bool(parts) is (when == "during")  # refused up front: not a byte written
        refusals = [str(e) for e in g.server.security_events()]
        assert any("disque du siège plein" in e and "3615" in e for e in refusals), refusals
        closed = g.round_ended()  # at its deadline: 3615 delivered nothing
        assert closed.state is State.FAILED
        if when == "before":  # the site's row says why it has nothing
            [row] = [r for r in g.reports.for_round(closed.id) if r.site == "3615"]
            assert row.error.startswith("envoi refusé : disque du siège plein"), row.error
            assert row.details["error_kind"] == "disk"  # not « aucune donnée reçue »
            assert "en échec : 3615" in closed.error, closed.error
        else:  # the partial file took the last bytes: the Siège's own close fails on it
            assert closed.details["error_kind"] == "disk", closed
            assert "No space left on device" in closed.error and "interne" not in closed.error
        filler.unlink()  # room made
        g.open_round()
        done = g.run("3615", attempts=2, delay_s=0.1)
        assert done.state is State.OK, done.error
        assert g.converged()


def test_a_resumed_upload_that_fits_in_the_room_left_is_not_refused(tmp_path: Path) -> None:
    """A cut left most of the package at the Siège (``.part``); the disk has room for the
    rest, not for the whole file: the resume goes through (``ALLO`` counts what is
    already there) and the round is OK."""
    with (
        small_disk(tmp_path / "ftp", "16m") as disk,
        group(tmp_path, ["3615"], max_reception=dt.timedelta(seconds=5)) as g,
    ):
        big_history(g.sites["3615"].db)
        with g.sites["3615"].node() as node:
            node.export()
            [(_seq, package)] = node.state.outbox()
        data = package.read_bytes()
        inbox = disk / "3615" / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        kept = len(data) * 3 // 4
        (inbox / f"{package.name}.part").write_bytes(data[:kept])  # what a cut left
        room = (len(data) - kept) + 64 * 1024  # the rest and a little: not the whole file
        (disk / "filler").write_bytes(bytes(shutil.disk_usage(disk).free - room))
        assert shutil.disk_usage(disk).free < len(data)
        g.open_round()
        done = g.run("3615", attempts=2, delay_s=0.1)
        assert done.state is State.OK, done.error
        assert g.converged()
