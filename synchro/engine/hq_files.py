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
import shutil
from collections.abc import Iterable, Set
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
    code, then sequence); ``skip``: handled ones Windows has not let go yet."""
    found: list[Delivery] = []
    if not ftp_root.exists():
        return found
    for folder in sorted(p for p in ftp_root.iterdir() if p.is_dir()):
        inbox = folder / "in"
        if not inbox.is_dir():
            continue
        for path in inbox.iterdir():
            named = read_package_name(path.name)
            if named and named.origin == folder.name and path not in skip:
                found.append(Delivery(folder.name, named.sequence, path))
    return sorted(found, key=lambda d: (d.site, d.sequence))


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
