"""Engine commands of the CLI: init, export, import, status, check."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from synchro import application
from synchro.cli import fail
from synchro.config.model import Config, HQSettings, Role, SiteSettings
from synchro.config.parsing import parse_datetime_fr, parse_duration, parse_minutes, parse_time
from synchro.config.passwords import hash_password
from synchro.errors import ConfigError, FieldProblem, Say
from synchro.i18n import LANGUAGES, render, tr
from synchro.log import setup_logging
from synchro.names import parse_address
from synchro.platform.paths import NodePaths, resolve_paths

T = TypeVar("T")


def add_init_arguments(p: argparse.ArgumentParser, lang: str = "fr") -> None:
    def words(name: str) -> str:
        return tr(f"cli.help.init.{name}", lang)

    p.add_argument("--role", required=True, choices=["siege", "serveur"], help=words("role"))
    p.add_argument("--site", required=True, help=words("site"))
    p.add_argument("--db", required=True, help=words("db"))
    p.add_argument("--token", help=words("token"))
    p.add_argument("--hq", help=words("hq"))
    p.add_argument("--port", type=int, help=words("port"))
    p.add_argument("--listen", help=words("listen"))
    p.add_argument("--public-address", help=words("public_address"))
    p.add_argument("--first-sync", help=words("first_sync"))
    p.add_argument("--start-time", help=words("start_time"))
    p.add_argument("--servers", type=int, help=words("servers"))
    p.add_argument("--max-reception", help=words("max_reception"))
    p.add_argument("--attempts", type=int, help=words("attempts"))
    p.add_argument("--retry-delay", help=words("retry_delay"))
    p.add_argument("--password-file", type=Path, help=words("password_file"))
    p.add_argument("--allow-plain-ftp", action="store_true", help=words("allow_plain_ftp"))
    p.add_argument("--language", choices=LANGUAGES, help=words("language"))
    p.add_argument("--force", action="store_true", help=words("force"))


class NoConfig(ConfigError):
    """No settings file yet: say to run « synchro init » (in the command line's words)."""

    def __init__(self, config_file: Path) -> None:
        super().__init__(tr("cli.no_config", "fr", path=config_file))
        problem = ("cli.no_config", {"path": str(config_file)})
        self.say = ("cli.no_config.invalid", {"problem": [problem]})


def load(args: argparse.Namespace) -> tuple[Config, NodePaths]:
    from synchro.config.store import load_config

    paths = resolve_paths(args.config)
    if not paths.config_file.exists():
        raise NoConfig(paths.config_file)
    return load_config(paths.config_file), paths


def role_word(config: Config, lang: str) -> str:
    """« Siège » or « Serveur », the manual's names of the two modes."""
    return tr("cli.role.hq" if config.is_hq else "cli.role.site", lang)


def config_from_init(args: argparse.Namespace, now: dt.datetime) -> Config:
    """The Config the scripted first-run wizard writes (every problem reported at once)."""
    problems: list[FieldProblem] = []

    def take(fn: Callable[..., T], *a: Any) -> T | None:
        try:
            return fn(*a)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None

    role = Role.HQ if args.role == "siege" else Role.SITE
    hq = HQSettings()
    site = SiteSettings()
    group_key = ""
    if args.servers is not None:
        hq = dataclasses.replace(hq, servers=args.servers)
    if args.max_reception:
        hq = dataclasses.replace(
            hq, max_reception=take(parse_duration, args.max_reception) or hq.max_reception
        )
    if args.port is not None:
        hq = dataclasses.replace(hq, port=args.port)
        site = dataclasses.replace(site, hq_port=args.port)
    if args.listen:
        hq = dataclasses.replace(hq, listen_address=args.listen)
    if args.public_address:
        hq = dataclasses.replace(hq, public_address=args.public_address)
    if args.allow_plain_ftp:
        hq = dataclasses.replace(hq, allow_plain_ftp=True)
        site = dataclasses.replace(site, allow_plain_ftp=True)
    if args.attempts is not None:
        site = dataclasses.replace(site, attempts=args.attempts)
    if args.retry_delay:
        delay = take(parse_minutes, args.retry_delay)
        if delay is not None:
            site = dataclasses.replace(site, retry_delay=delay)
    if args.token:
        from synchro.enrolment import join_with_token

        joined = take(join_with_token, Config(site=args.site, site_settings=site), args.token)
        if joined is not None:
            if joined.site != args.site:
                expected = ("config.expect.token_site", {"site": joined.site})
                problems.append(FieldProblem("site", expected, args.site))
            site, group_key = joined.site_settings, joined.group_key
    if args.hq:
        try:
            host, port = parse_address(args.hq, site.hq_port)
        except ValueError:
            problems.append(
                FieldProblem("site_settings.hq_address", ("config.expect.host_port", {}), args.hq)
            )
        else:
            site = dataclasses.replace(site, hq_address=host, hq_port=port)
    first = take(parse_datetime_fr, args.first_sync) if args.first_sync else None
    start = take(parse_time, args.start_time) if args.start_time else None
    password_hash = ""
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(FieldProblem("password-file", ("config.expect.readable", {}), str(exc)))
        else:
            if not password:
                problems.append(FieldProblem("password-file", ("config.expect.password", {})))
            else:
                password_hash = hash_password(password)
    from synchro.config.store import check_config

    config = Config(
        role=role,
        site=args.site,
        admin_password_hash=password_hash,
        last_sync=first or now.replace(hour=0, minute=0, second=0, microsecond=0),
        start_time=start or dt.time(23, 0),
        hq=hq,
        site_settings=site,
        group_key=group_key,
        language=args.language or getattr(args, "lang", "fr"),
    )
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, connection=args.db)
    )
    # Validate through the same code as loading a file: every bad field named at once
    # (values that could not even be read were replaced by their defaults above).
    problems += check_config(config)
    if problems:
        raise ConfigError(problems)
    return config


def cmd_init(args: argparse.Namespace) -> int:
    from synchro.config.store import save_config

    paths = resolve_paths(args.config)
    args.lang = lang = args.language or args.lang  # the new settings' language, errors too
    if paths.config_file.exists() and not args.force:
        fail(tr("cli.init.exists", lang, path=paths.config_file), lang)
        return 2
    config = config_from_init(args, dt.datetime.now())
    paths.ensure()
    save_config(config, paths.config_file)
    role = role_word(config, lang)
    print(tr("cli.init.written", lang, path=paths.config_file, role=role, site=config.site))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=False)  # how each table was read, for support
    result = application.export_changes(config, paths, args.out)
    m, lang = result.manifest, config.language
    print(tr("cli.export.done", lang, path=result.path, rows=m.rows, sequence=m.sequence))
    for name, c in result.capture.counts.items():
        if c.inserts or c.updates or c.deletes:
            counts = {"inserts": c.inserts, "updates": c.updates, "deletes": c.deletes}
            print(tr("cli.export.table", lang, table=name, **counts))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=False)
    imported = application.import_package(config, paths, args.file)
    result, refused = imported.result, imported.refused
    m, s, lang = result.manifest, result.stats, config.language
    package = f"{m.origin}#{m.sequence}"
    if result.status != "applied":
        reason = _why(result.say, result.message, lang)
        print(tr("cli.import.not_applied", lang, package=package, reason=reason))
        return 0 if result.status == "duplicate" else 1
    counts = {"upserts": s.upserts, "deletes": s.deletes, "conflicts": s.conflicts}
    print(tr("cli.import.applied", lang, package=package, quarantined=s.quarantined, **counts))
    if s.quarantined:  # never OK with a row not applied exactly (the others stay applied)
        from synchro.reports import unapplied_text

        failed = unapplied_text({"applied": s.quarantined}, lang)
        print(tr("cli.import.failed", lang, reason=failed), file=sys.stderr)
        for q in refused[:50]:
            row = {"table": q["tbl"], "key": q["key_json"], "error": q["error"]}
            print(tr("cli.import.refused_row", lang, **row), file=sys.stderr)
        return 1
    return 0


def _why(say: Say | None, message: str, lang: str) -> str:
    """Why a package was not applied, in the command line's language: the engine's words
    (``ImportResult.say``), else its text."""
    return render(say, lang) if say is not None else message


def cmd_status(args: argparse.Namespace) -> int:
    config, paths = load(args)
    paths.ensure()
    report = application.status(config, paths)
    status, pending = report.status, report.pending
    if args.json:
        data = {
            "role": config.role.value,
            "site": config.site,
            "tables": [dataclasses.asdict(t) for t in status.tables],
            "skipped": [dataclasses.asdict(s) for s in status.skipped],
            "pending": pending,
            "outbox": status.outbox,
            "default_password": not config.admin_password_hash,
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    lang = config.language
    print(tr("cli.status.mode", lang, role=role_word(config, lang), site=config.site))
    if not config.admin_password_hash:
        print(tr("cli.status.default_password", lang))
    table, key, rows = (tr(f"cli.status.{word}", lang) for word in ("table", "key", "rows"))
    print(f"{table:24} {key:20} {rows:>10} {'+':>7} {'~':>7} {'-':>7}")
    for t in status.tables:
        p = pending.get(t.name, {})
        print(
            f"{t.name:24} {','.join(t.key):20} {t.rows:>10} {p.get('inserts', 0):>7} "
            f"{p.get('updates', 0):>7} {p.get('deletes', 0):>7}"
        )
    for s in status.skipped:
        print(f"{s.table:24} " + tr("cli.status.skipped", lang, reason=render(s.say, lang)))
    if status.outbox:
        print(tr("cli.status.outbox", lang, n=status.outbox))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The pre-flight schema check: 0 everything can travel, 1 something cannot."""
    config, paths = load(args)
    paths.ensure()
    report = application.check_schemas(config, paths, lang=config.language)
    if args.json:
        data = {
            "site": report.site,
            "exit_code": report.exit_code,
            "compared": report.compared,
            "findings": [
                {
                    "table": f.table,
                    "column": f.column,
                    "code": f.code,
                    "side": f.side,
                    "other": f.other,
                    "blocking": f.blocking,
                    "text": f.text(config.language),
                }
                for f in report.findings
            ],
            "lines": report.lines,
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines))
    return report.exit_code
