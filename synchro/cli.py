"""The command line: a thin edge over the engine, usable with no display and no network.

Every command takes the global ``--config PATH``. Exit codes: 0 success, 1 failure
(one-line reason on stderr), 2 bad usage or bad configuration, 130 interrupted.
Everything it prints (help included) is in the language ``cli_language`` decides, in the
words of ``locales/cli.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from synchro import __version__
from synchro.errors import ConfigError, SynchroError, text_in
from synchro.i18n import system_language, tr

Handler = Callable[[argparse.Namespace], int]


def cli_language(config_arg: str | None) -> str:
    """The language of the command line: the settings' (``language``) when a configuration
    file is there and readable, else the system's (``i18n.system_language``: before
    ``synchro init``, or when the settings are what cannot be read)."""
    from synchro.config.store import language_of
    from synchro.platform.paths import resolve_paths

    try:
        config_file = resolve_paths(config_arg).config_file
    except Exception:  # (a path that cannot be used: the command itself says why)
        return system_language()
    return language_of(config_file)


def config_argument(argv: Sequence[str]) -> str | None:
    """``--config PATH`` (or ``--config=PATH``) of a command line not parsed yet: the
    language of the parser's help texts depends on it."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


def fail(text: str, lang: str) -> None:
    """One line on stderr: « synchro : text » (in ``lang``'s typography)."""
    print(tr("cli.error", lang, error=text), file=sys.stderr)


def _add_engine_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], lang: str
) -> None:
    from synchro import cli_engine

    def add(name: str, key: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=tr(key, lang))

    p = add("init", "cli.help.init")
    cli_engine.add_init_arguments(p, lang)
    p.set_defaults(handler=cli_engine.cmd_init)

    p = add("export", "cli.help.export")
    p.add_argument("--out", type=Path, help=tr("cli.help.export.out", lang))
    p.set_defaults(handler=cli_engine.cmd_export)

    p = add("import", "cli.help.import")
    p.add_argument("file", type=Path, help=tr("cli.help.import.file", lang))
    p.set_defaults(handler=cli_engine.cmd_import)

    p = add("status", "cli.help.status")
    p.add_argument("--json", action="store_true", help=tr("cli.help.json", lang))
    p.set_defaults(handler=cli_engine.cmd_status)

    p = add("check", "cli.help.check")
    p.add_argument("--json", action="store_true", help=tr("cli.help.json", lang))
    p.set_defaults(handler=cli_engine.cmd_check)


def build_parser(lang: str = "fr") -> argparse.ArgumentParser:
    """Every command, its help texts in ``lang``."""
    parser = argparse.ArgumentParser(prog="synchro", description=tr("cli.help.description", lang))
    parser.add_argument("--version", action="version", version=f"synchro {__version__}")
    parser.add_argument("--config", metavar="PATH", help=tr("cli.help.config", lang))
    parser.add_argument("--minimized", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar=tr("cli.metavar.command", lang))
    _add_engine_commands(sub, lang)
    from synchro import cli_rounds

    cli_rounds.add_commands(sub, lang)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from synchro.platform.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts (the Siège: one per FTP session)
    argv = list(sys.argv[1:] if argv is None else argv)
    lang = cli_language(config_argument(argv))
    parser = build_parser(lang)
    args = parser.parse_args(argv)
    args.lang = lang
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return _default(parser, args)
    try:
        return handler(args)
    except ConfigError as exc:
        fail(text_in(exc, args.lang), args.lang)
        return 2
    except SynchroError as exc:
        fail(text_in(exc, args.lang), args.lang)
        return 1
    except KeyboardInterrupt:
        fail(tr("cli.interrupted", args.lang), args.lang)
        return 130


def _default(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """No command: the tray program (it explains itself when there is no display)."""
    from synchro.gui import main as gui_main

    return gui_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
