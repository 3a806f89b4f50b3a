"""The Siège's round service survives what Windows and bad luck throw at it.

Windows refuses to remove or move a file another thread has open (the FTP server sending a
site its previous package); Linux does not, so those refusals are injected here, on exactly
the calls Windows would refuse. An unexpected error (a full disk) is injected the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rounds_helpers import Group, group, rows, sql

from synchro.engine import hq_files, hq_round, siege_node
from synchro.engine.ack import IDENTICAL
from synchro.engine.hq_round import HQService
from synchro.engine.siege_node import SiegeNode
from synchro.names import package_name, published_name
from synchro.reports import State


def seed(g: Group) -> None:
    sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90');")
    for n, code in enumerate(g.sites):
        sql(g.sites[code].db, f"INSERT INTO articles VALUES ({10 + n}, 'local {code}', '1.00');")


def rounds(g: Group) -> list[Any]:
    return [r for r in g.reports.latest() if r.kind == "round"]


def disk_full_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The Siège's first publication fails (a full disk); the list counts the attempts."""
    real_publish = SiegeNode.publish_group
    calls: list[int] = []

    def publish_group(self: SiegeNode, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real_publish(self, *args, **kwargs)

    monkeypatch.setattr(SiegeNode, "publish_group", publish_group)
    return calls


def test_old_package_windows_keeps_open_is_removed_at_the_next_publication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_unlink = Path.unlink
    refused: list[str] = []

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent.name == "out" and self.suffix == ".pkg" and not refused:  # being sent
            refused.append(self.name)
            raise PermissionError(13, "The process cannot access the file", str(self))
        real_unlink(self, missing_ok=missing_ok)

    with group(tmp_path, ["3615", "3616"]) as g:
        seed(g)
        g.open_round()
        assert {r.state for r in g.run_all().values()} == {State.OK}
        monkeypatch.setattr(Path, "unlink", unlink)
        sql(g.hq.db, "UPDATE articles SET prix = '19.90' WHERE id = 1")
        g.open_round()
        assert {r.state for r in g.run_all().values()} == {State.OK}
        assert refused, "the old package was never removed, so the refusal was not exercised"
        g.round_ended()  # OK once the service thread has taken the sites' acks
        assert [r.state for r in rounds(g)] == [State.OK, State.OK]
        site = refused[0].split("-")[1]
        left = tmp_path / "ftp" / site / "out" / refused[0]
        assert left.exists()  # left behind, not an error
        g.open_round()
        assert {r.state for r in g.run_all().values()} == {State.OK}
        assert not left.exists()  # removed by the next publication
        assert len(list((tmp_path / "ftp" / site / "out").glob("*.pkg"))) == 1
        assert g.converged()


def test_unexpected_error_while_closing_ends_the_round_echec_and_the_service_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    calls = disk_full_once(monkeypatch)
    with group(tmp_path, ["3615"], run_service=False, now=lambda: clock[0]) as g:
        seed(g)
        g.service.step("open")
        with g.sites["3615"].node() as node, g.client("3615")() as client:
            node.export()
            for _seq, path in node.state.outbox():
                client.upload(path, path.name)
        g.service.step()  # closes the round: the publication fails
        first = rounds(g)[0]
        assert first.state is State.FAILED
        assert "No space left on device" in first.error
        assert g.service.round is None
        assert g.service.paused_until == clock[0] + hq_round.RETRY_AFTER
        g.service.step()  # within the pause: nothing is tried again
        assert len(calls) == 1
        clock[0] += hq_round.RETRY_AFTER
        g.service.step()  # a minute later: the publication is made
        assert len(calls) == 2
        assert g.service.owed == []
        assert len(list((tmp_path / "ftp" / "3615" / "out").glob("*.pkg"))) == 1


def test_a_publication_an_error_cut_short_reaches_a_site_that_delivered_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3616 sent nothing this round; the close applied 3615's package and the publication
    failed. A minute later every establishment is published again (``owed``), not only
    those whose delivery was applied: 3616 gets 3615's rows without waiting a day."""
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    disk_full_once(monkeypatch)
    with group(tmp_path, ["3615", "3616"], run_service=False, now=lambda: clock[0]) as g:
        seed(g)
        g.service.step("open")
        g.deliver("3615")
        g.service.step()
        clock[0] += g.service.settings.max_reception + dt.timedelta(seconds=1)
        g.service.step()  # the close: 3615 applied, the publication fails
        assert rounds(g)[0].state is State.FAILED
        assert not list((tmp_path / "ftp" / "3616" / "out").glob("*.pkg"))
        clock[0] += hq_round.RETRY_AFTER
        g.service.step()
        assert len(list((tmp_path / "ftp" / "3616" / "out").glob("*.pkg"))) == 1
        g.answer("3616")
        assert {r[0] for r in rows(g.sites["3616"].db, "articles")} >= {10}  # 3615's row


def test_site_waiting_through_an_hq_error_gets_its_data_in_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = disk_full_once(monkeypatch)
    monkeypatch.setattr(hq_round, "RETRY_AFTER", dt.timedelta(seconds=0.3))
    with group(tmp_path, ["3615", "3616"]) as g:
        seed(g)
        g.open_round()
        results = g.run_all()
        assert {r.state for r in results.values()} == {State.OK}
        assert len(calls) >= 2
        assert [r.state for r in rounds(g)] == [State.FAILED]
        assert "No space left on device" in rounds(g)[0].error
        assert g.converged()
        g.open_round()  # and the next round is a normal one
        assert {r.state for r in g.run_all().values()} == {State.OK}
        g.round_ended()  # OK once the service thread has taken the sites' acks
        assert [r.state for r in rounds(g)] == [State.OK, State.FAILED]


def test_delivery_windows_will_not_move_is_not_applied_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_move = shutil.move
    refused: list[str] = []

    def move(src: str, dst: Any) -> Any:
        if Path(src).parent.name == "in" and len(refused) < 3:
            refused.append(src)
            raise PermissionError(13, "The process cannot access the file", src)
        return real_move(src, dst)

    monkeypatch.setattr(hq_files.shutil, "move", move)
    with group(tmp_path, ["3615"], run_service=False) as g:
        seed(g)
        with g.sites["3615"].node() as node, g.client("3615")() as client:
            node.export()
            for _seq, path in node.state.outbox():
                client.upload(path, path.name)
        published = SiegeNode.publish_group
        calls: list[int] = []

        def counting(self: SiegeNode, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return published(self, *args, **kwargs)

        monkeypatch.setattr(SiegeNode, "publish_group", counting)
        for _ in range(5):
            g.service.step()  # outside a round: processed at once, once
        assert len(calls) == 1
        assert len(refused) == 3  # tried again on each step until the system lets go
        inbox = tmp_path / "ftp" / "3615" / "in"
        assert not list(inbox.glob("*.pkg"))
        assert len(list((g.hq.folder / "packages" / "archive" / "3615").glob("*.pkg"))) == 1
        assert g.service.stuck == {}


def test_a_punctual_site_keeps_waiting_while_the_siege_waits_for_a_late_one(
    tmp_path: Path,
) -> None:
    """3615 delivers at once; its own budget (3 × 0.2 s) runs out long before 3616 comes.
    The Siège's ``/out/tour.json`` says the round is open: 3615 waits on and ends OK."""
    with group(tmp_path, ["3615", "3616"], max_reception=dt.timedelta(seconds=30)) as g:
        seed(g)
        g.open_round()
        events: list[Any] = []
        results: dict[str, Any] = {}
        punctual = threading.Thread(
            target=lambda: results.update(
                first=g.run("3615", attempts=3, delay_s=0.2, emit=events.append)
            )
        )
        punctual.start()
        longer = "engine.wait.longer"  # said once its own budget has run out
        deadline = time.monotonic() + 60
        while not any(getattr(e, "key", "") == longer for e in events):
            assert punctual.is_alive(), results  # it must not end before 3616 comes
            assert time.monotonic() < deadline, "3615 never said it waits longer"
            time.sleep(0.05)
        assert punctual.is_alive()  # past its budget, still waiting for the round
        assert g.run("3616").state is State.OK
        punctual.join(30)
        assert results["first"].state is State.OK
        assert g.converged()
        state = json.loads((tmp_path / "ftp" / "3615" / "out" / "tour.json").read_text())
        assert state == {"ouvert": False}


@pytest.mark.parametrize(
    "announced",
    [None, b"{not json", {"ouvert": False}, {"ouvert": True, "fin": "2020-01-01T00:00:00+00:00"}],
)
def test_without_an_open_round_the_site_gives_up_after_its_own_budget(
    tmp_path: Path, announced: Any
) -> None:
    """No round file, a broken one, a closed round, a deadline passed: no extension."""
    with group(tmp_path, ["3615"], run_service=False) as g:  # nobody answers at the Siège
        seed(g)
        out = tmp_path / "ftp" / "3615" / "out"
        out.mkdir(parents=True, exist_ok=True)
        if announced is not None:
            data = announced if isinstance(announced, bytes) else json.dumps(announced).encode()
            (out / "tour.json").write_bytes(data)
        events: list[Any] = []
        record = g.run("3615", attempts=3, delay_s=0.2, emit=events.append)
        assert record.state is State.FAILED
        assert "attente de 0 min dépassée" in record.error  # its own 0.6 s budget
        assert not [e for e in events if getattr(e, "key", "") == "engine.wait.longer"]


def test_tour_file_says_integration_until_the_answers_are_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed, the round is applied and published before ``tour.json`` says it is over: a
    waiting establishment whose own budget ran out meanwhile keeps waiting for its answer."""
    seen: list[dict[str, Any]] = []
    real_publish = SiegeNode.publish_group

    def publish_group(self: SiegeNode, *args: Any, **kwargs: Any) -> Any:
        seen.append(json.loads((tmp_path / "ftp" / "3615" / "out" / "tour.json").read_text()))
        return real_publish(self, *args, **kwargs)

    monkeypatch.setattr(SiegeNode, "publish_group", publish_group)
    with group(tmp_path, ["3615"], max_reception=dt.timedelta(seconds=30)) as g:
        seed(g)
        g.open_round()
        assert g.run("3615").state is State.OK
        assert seen and seen[0]["ouvert"] is True and seen[0]["etat"] == "integration"
        assert dt.datetime.fromisoformat(seen[0]["fin"]) > dt.datetime.now(dt.UTC)
        state = json.loads((tmp_path / "ftp" / "3615" / "out" / "tour.json").read_text())
        assert state == {"ouvert": False}


def test_a_publication_cut_between_its_record_and_the_sites_folder_is_finished_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Siège records a package as offered before the site can see it (so a site never
    acknowledges a package the Siège cannot check). Cut there, the next start puts the
    recorded package in the site's folder; a package written but not recorded is deleted."""
    real_link = siege_node._link_or_copy

    def power_cut(source: Path, target: Path) -> None:
        raise OSError(5, "Input/output error")  # the process goes no further

    with group(tmp_path, ["3615"], run_service=False) as g:
        seed(g)
        g.deliver("3615")
        monkeypatch.setattr(siege_node, "_link_or_copy", power_cut)
        g.service.step()  # applies 3615's package, records its answer, cannot link it
        out = tmp_path / "ftp" / "3615" / "out"
        staging = g.hq.folder / "packages" / "publish"
        assert not list(out.glob("*.pkg"))
        offered = g.hq_node.state.site("3615").out_seq
        assert offered and g.hq_node.published_sums(offered) is not None
        orphan = staging / package_name("SIEGE", offered + 1)  # written, never recorded
        orphan.write_bytes(b"cut")
        monkeypatch.setattr(siege_node, "_link_or_copy", real_link)
        restarted = HQService(g.hq_node, g.reports, tmp_path / "ftp", g.service.settings)
        restarted.step()
        assert [p.name for p in out.glob("*.pkg")] == [published_name("SIEGE", "3615", offered)]
        assert not list(staging.glob("*.pkg"))
        assert g.answer("3615") == published_name("SIEGE", "3615", offered)
        restarted.step()  # takes the ack: the package it answers is one the Siège can check
        ack = json.loads(g.hq_node.state.get_meta("ack:3615") or "{}")
        assert ack["sequence"] == offered and ack["controle"] == IDENTICAL
        assert g.converged()
