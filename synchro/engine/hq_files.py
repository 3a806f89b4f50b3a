"""The Siège's files in its FTP area: deliveries waiting in ``/<site>/in`` and the round file
``/<site>/out/tour.json``.

Windows refuses to move or remove a file the FTP server has open (a site downloading its
previous package): such a file is left where it is and dealt with at a later step, never
offered again meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from pathlib import Path

from synchro.config.atomic import atomic_write
from synchro.names import read_package_name

ROUND_FILE = "tour.json"  # in each /<site>/out: is a round open, until when (UTC)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    site: str
    sequence: int
    path: Path


def list_deliveries(ftp_root: Path, skip: Set[Path] = frozenset()) -> list[Delivery]:
    """Complete packages waiting in the establishments' upload folders, in order (site
    code, then sequence); ``skip``: handled ones Windows has not let go yet.

    The round loop calls this at every step, for every establishment: it reads each folder
    once with ``os.scandir`` and makes a ``Path`` only for what it keeps (issue 15: with
    pathlib, 200 sites' folders cost the Siège seconds of CPU per round)."""
    found: list[Delivery] = []
    for site, entries in inboxes(ftp_root):
        for name, where in entries:
            named = read_package_name(name)
            if named and named.origin == site:
                path = Path(where)
                if path not in skip:
                    found.append(Delivery(site, named.sequence, path))
    return sorted(found, key=lambda d: (d.site, d.sequence))


def inboxes(ftp_root: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(site, [(file name, path text), ...]) for each establishment folder that has an
    ``in`` folder, in site order."""
    try:
        with os.scandir(ftp_root) as top:
            sites = sorted(e.name for e in top if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for site in sites:
        try:
            with os.scandir(os.path.join(ftp_root, site, "in")) as inbox:
                entries = [(e.name, e.path) for e in inbox]
        except (FileNotFoundError, NotADirectoryError):
            continue
        yield site, entries


def identity(path: Path) -> tuple[str, int, int]:
    """A delivered file as it is now (a copy sent again replaces it: another identity)."""
    try:
        st = path.stat()
    except OSError:
        return (path.name, 0, 0)
    return (path.name, st.st_ino, st.st_mtime_ns)


def remove_old(path: Path) -> None:
    """Remove a package the site no longer needs. On Windows a file the FTP server is
    sending cannot be removed: it is left for the next publication to remove."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.info("%s sera supprimé au prochain envoi : %s", path.name, exc)


def move_file(path: Path, folder: Path) -> bool:
    """Move a handled delivery out of the upload area; False when the system refuses
    (Windows: the FTP server still has it open)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(str(path), folder / path.name)
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("%s non déplacé pour l'instant : %s", path, exc)
        return False
    return True


def round_state(deadline: dt.datetime | None, servers: int, *, closing: bool) -> bytes:
    """``tour.json``: ``{"ouvert": false}``, or open until ``deadline`` (UTC) waiting for
    ``servers`` establishments; ``closing``: applied and published now (« integration »)."""
    state: dict[str, object] = {"ouvert": deadline is not None}
    if deadline is not None:
        if closing:
            state["etat"] = "integration"
        if deadline.tzinfo is None:
            deadline = deadline.astimezone()  # the Siège's local time
        state["fin"] = deadline.astimezone(dt.UTC).isoformat()
        state["attendus"] = servers
    return json.dumps(state).encode()


def write_round_file(ftp_root: Path, sites: Iterable[str], data: bytes) -> None:
    """The same ``tour.json`` in every establishment's ``/out``."""
    for site in sites:
        folder = ftp_root / site / "out"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / ROUND_FILE, data)
        except OSError as exc:  # Windows: being read right now; the next one will do
            log.info("%s non mis à jour pour %s : %s", ROUND_FILE, site, exc)


def announce(
    ftp_root: Path,
    sites: Iterable[str],
    servers: int,
    deadline: dt.datetime | None,
    closing: bool,
) -> None:
    """Tell the establishments (``/out/tour.json``) whether a round is open and until
    when, so one that delivered keeps waiting while the Siège waits for the others
    instead of giving up after its own attempts × delay. While the closed round is
    applied and published (``closing``) it still says open, « intégration », with one
    more *Temps maximum de réception* as its bound: only the published answer ends it."""
    write_round_file(ftp_root, sites, round_state(deadline, servers, closing=closing))
