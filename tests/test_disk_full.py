"""Synchro's own files (state database, Rapport) on a disk that is full: a real tmpfs.

Before, opening the state database there said "Base d'état illisible ... Restaurez-la depuis
une sauvegarde, ou renommez-la : la prochaine synchronisation repartira de zéro" — advice
that throws away a sound state (every row then compared as a conflict) when the only
trouble is a full disk. Now the error is of kind disk and says to free some room.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_faults_lost_transaction import small_disk

from synchro.errors import DISK_ADVICE, ErrorKind, StateError
from synchro.reports import ReportStore
from synchro.state import StateDB


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    filler.write_bytes(bytes(shutil.disk_usage(disk).free))
    return filler


def test_state_and_rapport_on_a_full_disk_say_disk_not_damaged(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        filler = fill(disk)
        for open_it in (StateDB, ReportStore):
            with pytest.raises(StateError) as err:
                open_it(disk / f"{open_it.__name__}.db")
            text = str(err.value)
            assert err.value.kind is ErrorKind.DISK, text
            assert DISK_ADVICE in text and "Restaurez" not in text and "illisible" not in text
        filler.unlink()
        StateDB(disk / "StateDB.db").close()  # room made: the same file opens
        ReportStore(disk / "ReportStore.db").close()


def test_a_state_write_on_a_full_disk_is_said_and_the_state_usable_after(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        state = StateDB(disk / "state.db")
        try:
            filler = fill(disk)
            with pytest.raises(StateError) as err, state.transaction():
                state.set_meta("big", "x" * 200_000)
            assert err.value.kind is ErrorKind.DISK and DISK_ADVICE in str(err.value)
            filler.unlink()
            with state.transaction():
                state.set_meta("big", "y")
            assert state.get_meta("big") == "y"
        finally:
            state.close()
