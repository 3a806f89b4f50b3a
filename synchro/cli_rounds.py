"""Round commands of the CLI: serve, sync, report, raz, stop, site, trust, tests, demo."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synchro.application import Event, Progress, Status, Synchro
from synchro.cli import fail
from synchro.cli_engine import load
from synchro.errors import ConnectionTestError, SynchroError, text_in
from synchro.i18n import render, tr
from synchro.reports import State, error_in, format_date, state_label

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def reply_error(reply: dict[str, Any], lang: str) -> str:
    """Why the running instance refused a command, in ``lang``: its words (``error_say``)
    when it gave them, else its text."""
    said = reply.get("error_say")
    if isinstance(said, list) and len(said) == 2:
        return render(said, lang)
    return str(reply.get("error"))


def add_commands(sub: Sub, lang: str = "fr") -> None:
    def add(parent: Sub, name: str, key: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=tr(f"cli.help.{key}", lang))

    def words(key: str) -> str:
        return tr(f"cli.help.{key}", lang)

    add(sub, "serve", "serve").set_defaults(handler=cmd_serve)
    p = add(sub, "sync", "sync")
    seconds = tr("cli.metavar.seconds", lang)
    p.add_argument("--linger", type=float, default=120.0, metavar=seconds, help=words("linger"))
    p.add_argument("--reprendre", action="store_true", help=words("reprendre"))
    p.add_argument("--envoyer", action="store_true", help=words("envoyer"))
    p.set_defaults(handler=cmd_sync)
    p = add(sub, "report", "report")
    p.add_argument("--json", action="store_true", help=words("json"))
    p.add_argument("--limit", type=int, default=50, help=words("limit"))
    p.set_defaults(handler=cmd_report)
    for name in ("raz", "stop"):
        add(sub, name, name).set_defaults(handler=cmd_control, control=name)
    add(sub, "test-connection", "test_connection").set_defaults(handler=cmd_test_connection)
    add(sub, "test-email", "test_email").set_defaults(handler=cmd_test_email)
    p = add(sub, "site", "site")
    site_sub = p.add_subparsers(dest="site_command", metavar="add|list|remove", required=True)
    q = add(site_sub, "add", "site.add")
    q.add_argument("code")
    q.add_argument("--host", help=words("site.host"))
    q.set_defaults(handler=cmd_site_add)
    add(site_sub, "list", "site.list").set_defaults(handler=cmd_site_list)
    q = add(site_sub, "remove", "site.remove")
    q.add_argument("code")
    q.set_defaults(handler=cmd_site_remove)
    p = add(sub, "key", "key")
    key_sub = p.add_subparsers(dest="key_command", metavar="rotate|set", required=True)
    q = add(key_sub, "rotate", "key.rotate")
    q.add_argument("--grace-days", type=int, default=14, help=words("key.grace_days"))
    q.set_defaults(handler=cmd_key_rotate)
    q = add(key_sub, "set", "key.set")
    q.add_argument("--key-file", type=Path, required=True, help=words("key.key_file"))
    q.add_argument("--grace-days", type=int, default=14, help=words("key.grace_days"))
    q.set_defaults(handler=cmd_key_set)
    p = add(sub, "autostart", "autostart")
    p.add_argument("action", choices=["on", "off", "status"])
    p.set_defaults(handler=cmd_autostart)
    p = add(sub, "service", "service")
    p.add_argument("action", choices=["install", "remove"])
    p.add_argument("--dry-run", action="store_true", help=words("dry_run"))
    p.set_defaults(handler=cmd_service)
    p = add(sub, "trust", "trust")
    p.add_argument("--fingerprint", help=words("fingerprint"))
    p.set_defaults(handler=cmd_trust)
    p = add(sub, "demo", "demo")
    p.add_argument("--dir", help=words("demo.dir"))
    p.add_argument("--smtp", help=words("demo.smtp"))
    p.add_argument("--keep", action="store_true", help=words("demo.keep"))
    p.set_defaults(handler=cmd_demo)


class ProgressPrinter:
    """The CLI consumer of engine events: a bar with rows and bytes on a terminal, the
    status lines in ``lang``."""

    def __init__(self, stream: Any = None, lang: str = "fr") -> None:
        self.stream = stream or sys.stderr
        self.lang = lang
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Progress) and self.tty:
                self.stream.write("\r\x1b[K" + self.bar(event)[:120])
                self.stream.flush()
            elif isinstance(event, Status) and event.message != "show":
                when = f"{event.at:%m/%d %H:%M:%S}"
                line = tr("cli.progress.status", self.lang, at=when, text=event.text(self.lang))
                self.stream.write(("\r\x1b[K" if self.tty else "") + line + "\n")
                self.stream.flush()

    def bar(self, event: Progress) -> str:
        """« 1 234 lignes · 2.5 Mo · 3615 : capture » (phase as the engine names it)."""
        lang = self.lang
        size = tr("cli.progress.size", lang, mb=f"{event.bytes / 1e6:.1f}") if event.bytes else ""
        count = f"{event.rows:,}".replace(",", " " if lang == "fr" else ",")
        rows = tr("cli.progress.rows", lang, rows=count) if event.rows else ""
        where = tr("cli.progress.phase", lang, site=event.site, phase=event.phase)
        return " · ".join(x for x in (rows, size, where, event.detail) if x)


def cmd_serve(args: argparse.Namespace) -> int:
    from synchro.log import setup_logging
    from synchro.platform import stop_signals as stops
    from synchro.platform.single_instance import ControlServer, InstanceLock

    signals = stops.StopSignals().install()  # a stop asked during start-up is honoured later
    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=True)
    lock = InstanceLock(paths.lock_file)
    lang = config.language
    if not lock.acquire():
        fail(tr("cli.serve.running", lang), lang)
        return 1
    node = Synchro.open(config, paths, listeners=(ProgressPrinter(lang=lang),))
    control: ControlServer | None = None
    ended = False
    try:
        node.serve()
        control = ControlServer(paths.lock_file, node.control).start()
        signals.wait()
    finally:
        with stops.stacks_if_stuck():  # a stop that hangs says where it waits
            if control is not None:
                control.close()
            ended = node.close()
        if not ended:  # the work stuck where no stop reaches: end as a kill would (rule 3)
            said = text_in(stops.StopNotHonoured(stops.GIVE_UP_S), lang)
            stops.end_now(said, _exit_code(State.STOPPED))
        lock.release()
    print(tr("cli.serve.stopped", lang), file=sys.stderr)
    return 0


def _exit_code(state: State) -> int:
    return {State.OK: 0, State.STOPPED: 3}.get(state, 1)


def cmd_sync(args: argparse.Namespace) -> int:
    from synchro.log import setup_logging
    from synchro.platform import stop_signals as stops
    from synchro.platform.single_instance import InstanceLock, send_command

    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=False)
    lang = config.language
    lock = InstanceLock(paths.lock_file)
    if not lock.acquire():
        asked = {"take_back": args.reprendre, "send": args.envoyer}
        reply = send_command(paths, "sync", args=asked)
        error = tr("cli.error", lang, error=reply_error(reply, lang))
        print(tr("cli.sync.asked", lang) if reply.get("ok") else error)
        return 0 if reply.get("ok") else 1
    signals = stops.StopSignals().install()
    node = Synchro.open(config, paths, listeners=(ProgressPrinter(lang=lang),))
    try:  # the run on a thread of its own: a stop is seen while it waits in C (socket, SQLite)
        record = stops.run_stoppable(
            lambda: node.sync_once(
                linger_s=args.linger, take_back=args.reprendre, send=args.envoyer
            ),
            node.interrupt,
            signals,
        )
    except stops.StopNotHonoured as exc:  # the run stuck where no stop reaches: end as a
        stops.end_now(text_in(exc, lang), _exit_code(State.STOPPED))  # kill would (rule 3)
    finally:
        node.close()
        lock.release()
    error = tr("cli.sync.error", lang, error=error_in(record, lang)) if record.error else ""
    print(
        f"{record.site} {format_date(record.started)} {format_date(record.ended)} "
        f"{state_label(record.state, lang)}{error}"
    )
    return _exit_code(record.state)


def cmd_report(args: argparse.Namespace) -> int:
    from synchro.reports import ReportStore

    config, paths = load(args)
    paths.ensure()
    lang = config.language
    with ReportStore(paths.reports_db) as store:
        rows = store.latest(args.limit)
    if args.json:
        print(
            json.dumps(
                [dataclasses.asdict(r) for r in rows], default=str, ensure_ascii=False, indent=2
            )
        )
        return 0
    site, start, end, state, sent, received, error = (
        tr(f"cli.report.{word}", lang)
        for word in ("site", "started", "ended", "state", "sent", "received", "error")
    )
    print(f"{site:14} {start:19} {end:19} {state:11} {sent:>7} {received:>7}  {error}")
    for r in rows:
        print(
            f"{r.site:14} {format_date(r.started):19} {format_date(r.ended):19} "
            f"{state_label(r.state, lang):11} {r.rows_sent:>7} {r.rows_received:>7}  "
            f"{error_in(r, lang)}"
        )
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    from synchro.platform.single_instance import send_command

    config, paths = load(args)
    reply = send_command(paths, args.control)
    if not reply.get("ok"):
        fail(reply_error(reply, config.language), config.language)
        return 1
    print(tr("cli.control.sent", config.language))
    return 0


def cmd_test_connection(args: argparse.Namespace) -> int:
    from synchro.application import test_connection

    config, paths = load(args)
    lang = config.language
    if config.is_hq:
        fail(tr("cli.test.from_site", lang), lang)
        return 2
    try:
        print(test_connection(config, paths).text)
    except ConnectionTestError as exc:
        fail(tr("cli.test.failed", lang, code=exc.code, error=text_in(exc, lang)), lang)
        return 1
    return 0


def cmd_test_email(args: argparse.Namespace) -> int:
    from synchro.mail import send_test

    config, _paths = load(args)
    print(send_test(config.email, config.language, site=config.site))
    return 0


def _refused(exc: SynchroError, code: str, lang: str) -> str:
    """Why a site cannot be added or removed (``EnrolRefused.reason``), in ``lang``."""
    reason = str(getattr(exc, "reason", ""))
    key = f"cli.site.refused.{reason}"
    return tr(key, lang, code=code) if tr(key, lang) != key else text_in(exc, lang)


def _save(args: argparse.Namespace, config: Any) -> None:
    from synchro.config.store import save_config

    _c, paths = load(args)
    save_config(config, paths.config_file)


def cmd_site_add(args: argparse.Namespace) -> int:
    from synchro.enrolment import EnrolRefused, enrol_site

    config, paths = load(args)
    try:
        token = enrol_site(config, paths, args.code, args.host or "").token
    except EnrolRefused as exc:
        fail(_refused(exc, args.code, config.language), config.language)
        return 2
    print(tr("cli.site.added", config.language, code=args.code))
    print(token)
    return 0


def cmd_site_list(args: argparse.Namespace) -> int:
    config, _paths = load(args)
    for s in config.hq.sites:
        print(s.code + (f"  {s.label}" if s.label else ""))
    return 0


def cmd_site_remove(args: argparse.Namespace) -> int:
    from synchro.enrolment import EnrolRefused, remove_site

    config, paths = load(args)
    try:
        remove_site(config, paths, args.code)
    except EnrolRefused as exc:
        fail(_refused(exc, args.code, config.language), config.language)
        return 1
    print(tr("cli.site.removed", config.language, code=args.code))
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    from synchro.enrolment import same_fingerprint, siege_fingerprint, trust_fingerprint

    config, _paths = load(args)
    lang = config.language
    current = siege_fingerprint(config)
    if args.fingerprint and not same_fingerprint(args.fingerprint, current):
        fail(tr("cli.trust.different", lang, fingerprint=current), lang)
        return 1
    if not args.fingerprint:
        print(tr("cli.trust.presented", lang, fingerprint=current))
        answer = input(tr("cli.trust.ask", lang)).strip().lower()
        if answer not in {"o", "oui", "y", "yes"}:
            print(tr("cli.trust.unchanged", lang))
            return 1
    _save(args, trust_fingerprint(config, current))
    print(tr("cli.trust.accepted", lang))
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from synchro.enrolment import rotate_group_key

    config, _paths = load(args)
    lang = config.language
    if not config.is_hq:
        fail(tr("cli.key.rotate_at_hq", lang), lang)
        return 2
    config = rotate_group_key(config, args.grace_days)
    new_key = config.group_key
    _save(args, config)
    print(tr("cli.key.rotated", lang, until=format_date(config.previous_key_until)))
    print(new_key)
    return 0


def cmd_key_set(args: argparse.Namespace) -> int:
    from synchro.enrolment import take_group_key

    config, _paths = load(args)
    lang = config.language
    try:
        text = args.key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        fail(tr("cli.key.unreadable", lang, error=exc), lang)
        return 2
    taken = take_group_key(config, text, args.grace_days)
    if taken is config:
        print(tr("cli.key.same", lang))
        return 0
    _save(args, taken)
    print(tr("cli.key.taken", lang))
    return 0


def cmd_autostart(args: argparse.Namespace) -> int:
    from synchro.platform.autostart import autostart_action

    config, paths = load(args)
    print(autostart_action(args.action, config=str(paths.config_file), lang=config.language))
    if args.action != "status" and config.start_with_windows != (args.action == "on"):
        _save(args, dataclasses.replace(config, start_with_windows=args.action == "on"))
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from synchro.platform.service import service_action

    config, paths = load(args)
    print(
        service_action(args.action, paths.config_file, dry_run=args.dry_run, lang=config.language)
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from synchro.demo import run_demo

    lang = args.lang
    printer = ProgressPrinter(lang=lang)
    try:
        return run_demo(args.dir, smtp=args.smtp, keep=args.keep, printer=printer, lang=lang)
    except SynchroError as exc:
        fail(tr("cli.demo.failed", lang, error=text_in(exc, lang)), lang)
        return 1


__all__ = ["add_commands"]
