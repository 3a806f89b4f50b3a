"""How each side learns the other's table schemas before the first synchronisation.

- The Siège writes ``schemas.json`` (its synchronised tables with their column details)
  into every establishment's ``/<site>/out/`` folder: when its engine starts
  (``App._hq_loop``), when an establishment is enrolled (``synchro site add``) and at each
  ``synchro check`` at the Siège. The establishment reads it with its FTP client
  (``SiteClient.read_small``).
- An establishment's ``synchro check`` (and the Test button) uploads its own
  ``schemas.json`` to ``/<site>/in/`` (the Siège's round ignores any file that is not a
  package), so the Siège's ``synchro check`` can compare in the other direction.
- Packages carry the same schemas in their header (format 2): a Siège package waiting in
  an establishment's inbox, or an establishment's last package archived at the Siège, is a
  second source (its header only is read, not its changes).

``schemas.json``: ``{"format": 1, "origin", "role", "created", "tables": [TableSchema
JSON with "details"]}``, UTF-8, written atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synchro.config.atomic import atomic_write
from synchro.db.base import Table
from synchro.errors import Say, Worded
from synchro.package import stream
from synchro.package.manifest import Invalid, Manifest, TableSchema

log = logging.getLogger(__name__)

SCHEMAS_FILE = "schemas.json"
SCHEMAS_FORMAT = 1
RECEIVED_FILE = "schemas-siege-recus.json"  # establishment: the last Siège package's schemas
MAX_SCHEMAS = 16 * 1024 * 1024


@dataclass(frozen=True)
class Declared:
    """The tables one side declared, and where that was read (for the report)."""

    origin: str
    tables: tuple[Table, ...]
    created: str = ""  # ISO time of a schemas.json
    package: str = ""  # file name when read from a package header
    modified: float = 0.0  # the file's modification time (which source is the freshest)


def encode(
    origin: str, role: str, tables: Sequence[Table], now: dt.datetime, package: str = ""
) -> bytes:
    data = {
        "format": SCHEMAS_FORMAT,
        "origin": origin,
        "role": role,
        "created": now.isoformat(timespec="seconds"),
        "tables": [TableSchema.of(t).to_json() for t in tables],
    }
    if package:
        data["package"] = package
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


class Unreadable(Worded, ValueError):
    """A ``schemas.json`` or a package that cannot be read: a ValueError whose French
    text is its words (``say``), said in the UI language where it reaches a user."""


def _unreadable(name: str, detail: str | Invalid) -> Unreadable:
    """``name`` cannot be read: ``detail`` the library's words, or the package's own."""
    said: str | list[Say] = str(detail)
    if isinstance(detail, Invalid) and detail.say is not None:
        said = [detail.say]
    return Unreadable(say=("engine.schemas.unreadable", {"name": name, "detail": said}))


def decode(raw: bytes) -> Declared:
    """A ``schemas.json`` read back; ``Unreadable`` (a ValueError) when it is not one."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(SCHEMAS_FILE, str(exc)) from exc
    if not isinstance(data, dict) or data.get("format") != SCHEMAS_FORMAT:
        raise Unreadable(say=("engine.schemas.format", {"name": SCHEMAS_FILE}))
    tables = data.get("tables")
    if not isinstance(tables, list):
        raise Unreadable(say=("engine.schemas.no_tables", {"name": SCHEMAS_FILE}))
    try:
        schemas = tuple(TableSchema.from_json(t) for t in tables)
    except Invalid as exc:
        raise _unreadable(SCHEMAS_FILE, exc) from exc
    return Declared(
        str(data.get("origin", "")),
        tuple(s.table for s in schemas),
        str(data.get("created", "")),
        str(data.get("package", "")),
    )


def remember_received(packages_dir: Path, manifest: Manifest, now: dt.datetime) -> None:
    """Keep the schemas of the last package received from the Siège (``RECEIVED_FILE``),
    for the establishment's next check: call it once such a package is applied. A package
    without column details (format 1) is not kept. Never raises (logged)."""
    if not any(s.details for s in manifest.tables):
        return
    name = f"{manifest.origin}#{manifest.sequence}"
    data = encode(manifest.origin, "siege", [s.table for s in manifest.tables], now, name)
    try:
        atomic_write(packages_dir / RECEIVED_FILE, data, mode=0o644)
    except OSError as exc:
        log.warning("%s non écrit : %s", RECEIVED_FILE, exc)


def received(packages_dir: Path) -> Declared | None:
    """What ``remember_received`` kept, or None."""
    path = packages_dir / RECEIVED_FILE
    try:
        return decode(path.read_bytes()) if path.is_file() else None
    except (OSError, ValueError) as exc:
        log.info("%s ignoré : %s", RECEIVED_FILE, exc)
        return None


def publish(
    origin: str, tables: Sequence[Table], ftp_root: Path, sites: Sequence[str], now: dt.datetime
) -> list[str]:
    """Write the Siège's ``schemas.json`` into each ``/<site>/out``; the sites written.

    A folder that cannot be written (Windows: the file is being sent right now) is logged
    and skipped: the next start or check writes it again.
    """
    data = encode(origin, "siege", tables, now)
    done: list[str] = []
    for site in sites:
        folder = ftp_root / site / "out"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / SCHEMAS_FILE, data, mode=0o644)
        except OSError as exc:
            log.warning("%s non écrit pour l'établissement %s : %s", SCHEMAS_FILE, site, exc)
        else:
            done.append(site)
    return done


def package_tables(path: Path) -> Declared:
    """The schemas in a package's header (its changes are neither read nor checked);
    ValueError when the file is not a readable package."""
    try:
        with open(path, "rb") as fh:
            trailer_start = stream.frame(fh, os.fstat(fh.fileno()).st_size)[1]
            header, _ = stream.read_header(stream.Source(fh, trailer_start))
    except OSError as exc:
        raise _unreadable(path.name, exc.strerror or str(exc)) from exc
    except Invalid as exc:
        raise _unreadable(path.name, exc) from exc
    tables = tuple(s.table for s in header.tables)
    return Declared(header.origin, tables, package=path.name, modified=path.stat().st_mtime)


def newest_package(folder: Path, origin: str = "", exclude: str = "") -> Declared | None:
    """The schemas of the newest readable package in ``folder`` (by modification time)
    whose origin is ``origin`` (any when empty) and not ``exclude``."""
    if not folder.is_dir():
        return None
    found = sorted(folder.glob("*.pkg"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        try:
            declared = package_tables(path)
        except ValueError as exc:
            log.info("%s", exc)
            continue
        if (not origin or declared.origin == origin) and declared.origin != exclude:
            return declared
    return None


def site_declared(ftp_root: Path, archive: Path, site: str) -> list[Declared]:
    """What establishment ``site`` declared, the freshest first: its uploaded
    ``schemas.json`` and the header of its last package archived at the Siège (either may
    be missing)."""
    found: list[Declared] = []
    path = ftp_root / site / "in" / SCHEMAS_FILE
    try:
        if path.is_file() and path.stat().st_size <= MAX_SCHEMAS:
            declared = decode(path.read_bytes())
            found.append(dataclasses.replace(declared, modified=path.stat().st_mtime))
    except (OSError, ValueError) as exc:
        log.info("%s de %s ignoré : %s", SCHEMAS_FILE, site, exc)
    package = newest_package(archive / site, origin=site)
    if package is not None:
        found.append(package)
    return sorted(found, key=lambda d: d.modified, reverse=True)
