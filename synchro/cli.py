"""The command line: a thin edge over the engine, usable with no display and no network.

Every command takes the global ``--config PATH``. Exit codes: 0 success, 1 failure
(one-line reason on stderr), 2 bad usage or bad configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from synchro import __version__
from synchro.errors import ConfigError, SynchroError

Handler = Callable[[argparse.Namespace], int]


def _add_engine_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from synchro import cli_engine

    p = sub.add_parser("init", help="écrire une configuration complète (assistant sans écran)")
    cli_engine.add_init_arguments(p)
    p.set_defaults(handler=cli_engine.cmd_init)

    p = sub.add_parser("export", help="capturer les changements locaux dans un paquet")
    p.add_argument("--out", type=Path, help="fichier paquet à écrire (défaut : la boîte d'envoi)")
    p.set_defaults(handler=cli_engine.cmd_export)

    p = sub.add_parser("import", help="vérifier puis appliquer un paquet (une seule fois)")
    p.add_argument("file", type=Path, help="le paquet à appliquer")
    p.set_defaults(handler=cli_engine.cmd_import)

    p = sub.add_parser("status", help="tables, clés, lignes et changements en attente")
    p.add_argument("--json", action="store_true", help="sortie JSON")
    p.set_defaults(handler=cli_engine.cmd_status)

    p = sub.add_parser(
        "check", help="contrôle du schéma : les colonnes peuvent-elles recevoir les valeurs ?"
    )
    p.add_argument("--json", action="store_true", help="sortie JSON")
    p.set_defaults(handler=cli_engine.cmd_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synchro",
        description="Synchronisation des bases de données entre le siège et ses établissements.",
    )
    parser.add_argument("--version", action="version", version=f"synchro {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="fichier de configuration (défaut : dossier utilisateur)"
    )
    parser.add_argument("--minimized", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMANDE")
    _add_engine_commands(sub)
    from synchro import cli_rounds

    cli_rounds.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from synchro.platform.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts (the Siège: one per FTP session)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return _default(parser, args)
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"synchro : {exc}", file=sys.stderr)
        return 2
    except SynchroError as exc:
        print(f"synchro : {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synchro : interrompu", file=sys.stderr)
        return 130


def _default(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """No command: the tray program (it explains itself when there is no display)."""
    from synchro.gui import main as gui_main

    return gui_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
