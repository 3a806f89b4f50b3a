"""``synchro check`` and the Test buttons: gather both sides' schemas, compare, say it.

At an establishment: this database's synchronised tables against the Siège's: its
``schemas.json`` read over FTP, the header of a Siège package waiting in the inbox, and
the schemas of the last Siège package applied (when ``site_run`` keeps them with
``schema_exchange.remember_received``); this establishment's own schemas are sent to the
Siège on the way. At the Siège: its tables against what each establishment declared
(``/<site>/in/schemas.json`` or its last archived package, the freshest), and
``schemas.json`` is published again for every establishment. With nothing to compare
with, the Siège lists its own columns' limits.

``CheckReport.exit_code``: 0 when everything can travel, 1 when something cannot (or, at
an establishment, when the Siège's schemas could not be had). Bad settings raise
``ConfigError`` (the CLI's exit code 2).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from synchro.config.model import Config
from synchro.config.store import resolve_connection
from synchro.db import open_database
from synchro.db.base import Table
from synchro.engine import schema_exchange as exchange
from synchro.engine.preflight import Finding, compare, local_limits
from synchro.engine.tables import select_tables
from synchro.errors import ConfigError, ErrorKind, SynchroError, text_in
from synchro.i18n import tr
from synchro.platform.paths import NodePaths
from synchro.transport.ftp_client import SiteClient

if TYPE_CHECKING:
    from synchro.engine.node import Node

log = logging.getLogger(__name__)

Connect = Callable[[], SiteClient]


@dataclass
class CheckReport:
    """What one check found, ready to print (``lines``, in the UI language)."""

    site: str
    lines: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    compared: int = 0  # sources compared with
    failed: bool = False  # establishment: the Siège's schemas could not be had

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or any(f.blocking for f in self.findings) else 0


def local_tables(config: Config, paths: NodePaths) -> list[Table]:
    """This node's synchronised tables, with their column details."""
    with open_database(resolve_connection(config, paths)) as adapter:
        return select_tables(adapter.tables(), config.database).synced


def check(config: Config, paths: NodePaths, *, lang: str = "fr") -> CheckReport:
    """The check of this node, Siège or establishment."""
    return (
        check_hq(config, paths, lang=lang) if config.is_hq else check_site(config, paths, lang=lang)
    )


def check_site(
    config: Config,
    paths: NodePaths,
    *,
    lang: str = "fr",
    connect: Connect | None = None,
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> CheckReport:
    """An establishment against the Siège. ``connect``: the FTP client factory (default:
    the Serveur settings, as a run uses them)."""
    tables = local_tables(config, paths)
    report = CheckReport(config.site, [tr("check.title", lang, site=config.site)])
    sources: list[exchange.Declared] = []
    reason = ""
    try:
        declared, sent = _exchange_with_hq(config, paths, tables, connect, now())
        if sent:
            report.lines.append(tr("check.sent", lang))
        if declared is None:
            reason = tr("check.not_published", lang)
        else:
            sources.append(declared)
    except (SynchroError, OSError) as exc:
        reason = text_in(exc, lang) if isinstance(exc, SynchroError) else str(exc)
    for package in (
        exchange.newest_package(paths.packages_dir / "inbox", exclude=config.site),
        exchange.received(paths.packages_dir),
    ):
        if package is not None:
            sources.append(package)
    if not sources:
        report.failed = True
        report.lines.append(tr("check.no_hq", lang, reason=reason))
        _limits(report, tables, lang)
        return report
    if reason:
        report.lines.append(tr("check.hq_file_unread", lang, reason=reason))
    for source in sources:
        report.lines.append(tr("check.compared", lang, source=_source_words(source, "hq", lang)))
        report.compared += 1
        _add(report, compare(tables, source.tables, "hq"))
    _conclude(report, tables, lang)
    return report


def _exchange_with_hq(
    config: Config,
    paths: NodePaths,
    tables: Sequence[Table],
    connect: Connect | None,
    now: dt.datetime,
) -> tuple[exchange.Declared | None, bool]:
    """Read the Siège's ``schemas.json`` (None when it has none yet) and send ours (True
    when sent: a Siège that refuses it does not stop this check)."""
    if connect is None:
        from synchro.engine.site_run import site_connect

        connect = site_connect(config)
    mine = paths.packages_dir / exchange.SCHEMAS_FILE
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(exchange.encode(config.site, "serveur", tables, now))
    with connect() as client:
        raw = client.read_small(exchange.SCHEMAS_FILE, exchange.MAX_SCHEMAS)
        try:
            client.upload(mine, exchange.SCHEMAS_FILE)
            sent = True
        except SynchroError as exc:
            log.warning("Schémas de l'établissement non envoyés au siège : %s", exc)
            sent = False
    if raw is None:
        return None, sent
    try:
        return exchange.decode(raw), sent
    except exchange.Unreadable as exc:
        raise SynchroError(kind=ErrorKind.DATA, say=exc.say) from exc


def check_hq(
    config: Config,
    paths: NodePaths,
    *,
    lang: str = "fr",
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> CheckReport:
    """The Siège against what each establishment declared; publishes ``schemas.json``."""
    tables = local_tables(config, paths)
    sites = [s.code for s in config.hq.sites]
    exchange.publish(config.site, tables, paths.ftp_root, sites, now())
    report = CheckReport(config.site, [tr("check.title.hq", lang, site=config.site)])
    archive = paths.packages_dir / "archive"
    for site in sites:
        sources = exchange.site_declared(paths.ftp_root, archive, site)
        if not sources:
            report.lines.append(tr("check.unknown_site", lang, site=site))
        for source in sources[:1]:  # the freshest: a check's file, else the last package
            report.lines.append(
                tr("check.compared", lang, source=_source_words(source, site, lang))
            )
            report.compared += 1
            _add(report, compare(tables, source.tables, site))
    if not report.compared:
        _limits(report, tables, lang)
        return report
    _conclude(report, tables, lang)
    return report


def _source_words(source: exchange.Declared, side: str, lang: str) -> str:
    if side == "hq":
        if source.package:
            return tr("check.source.hq_package", lang, name=source.package)
        return tr("check.source.hq_file", lang, date=source.created)
    if source.package:
        return tr("check.source.site_package", lang, site=side, name=source.package)
    return tr("check.source.site_file", lang, site=side, date=source.created)


def _add(report: CheckReport, found: list[Finding]) -> None:
    """Add findings once each (two sources often say the same thing)."""
    seen = {(f.table, f.column, f.code, f.side, f.other) for f in report.findings}
    for f in found:
        if (f.table, f.column, f.code, f.side, f.other) not in seen:
            seen.add((f.table, f.column, f.code, f.side, f.other))
            report.findings.append(f)


def _conclude(report: CheckReport, tables: Sequence[Table], lang: str) -> None:
    blocking = [f for f in report.findings if f.blocking]
    if not blocking:
        report.lines.append(tr("check.ok", lang, n=len(tables)))
        return
    report.lines.append(tr("check.problems", lang, n=len(blocking)))
    report.lines += ["  " + f.text(lang) for f in blocking]


def _limits(report: CheckReport, tables: Sequence[Table], lang: str) -> None:
    limits = local_limits(tables)
    report.findings += limits
    if not limits:
        report.lines.append(tr("check.no_limits", lang))
        return
    report.lines.append(tr("check.limits", lang))
    report.lines += ["  " + f.text(lang) for f in limits]


def table_limits(tables: Sequence[Table], lang: str) -> dict[str, str]:
    """The local limits in a few words per table (the wizard's database Test lists one
    entry per table: ``clients — à vérifier : ville : jeu de caractères utf8mb3``)."""
    words: dict[str, list[str]] = {}
    for f in local_limits(tables):
        text = tr(f"check.brief.{f.code}", lang, column=f.column, **f.values)
        words.setdefault(f.table, []).append(text)
    return {t: tr("check.brief", lang, limits=" ; ".join(w)) for t, w in words.items()}


# -- the calls that publish the Siège's schemas (App start, ``synchro site add``) -----------


def publish_hq_schemas(tables: Sequence[Table], config: Config, ftp_root: Path) -> None:
    """Publish ``schemas.json`` for every establishment; never raises (logged)."""
    try:
        exchange.publish(
            config.site, tables, ftp_root, [s.code for s in config.hq.sites], dt.datetime.now()
        )
    except Exception:  # a schema file must never keep the Siège from starting
        log.exception("Publication des schémas du siège impossible")


def publish_for_node(node: Node, config: Config, ftp_root: Path) -> None:
    """The App's call at the Siège's engine start, on its open ``Node`` (its table cache is
    left alone: the first round discovers the tables as before)."""
    try:
        tables = select_tables(node.adapter.tables(), config.database).synced
    except SynchroError as exc:
        log.warning("Schémas du siège non publiés : %s", exc)
        return
    publish_hq_schemas(tables, config, ftp_root)


def publish_for_site(config: Config, paths: NodePaths, site: str) -> None:
    """``synchro site add``: publish ``schemas.json`` for the new establishment at once."""
    try:
        tables = local_tables(config, paths)
        exchange.publish(config.site, tables, paths.ftp_root, [site], dt.datetime.now())
    except (SynchroError, ConfigError, OSError) as exc:
        log.warning("Schémas du siège non publiés pour %s : %s", site, exc)
