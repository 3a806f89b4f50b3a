"""Round commands of the CLI: serve, sync, report, raz, stop, site, trust, tests, demo."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synchro.application import Event, Progress, Status, Synchro
from synchro.cli_engine import load
from synchro.errors import ConnectionTestError, SynchroError
from synchro.reports import State, format_date

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def add_commands(sub: Sub) -> None:
    p = sub.add_parser(
        "serve", help="faire tourner Siège ou Serveur sans écran (Ctrl-C pour arrêter)"
    )
    p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("sync", help="une synchronisation maintenant (MANUELLE), au premier plan")
    p.add_argument(
        "--linger",
        type=float,
        default=120.0,
        metavar="SECONDES",
        help="Siège : après le tour, garder le serveur FTP ouvert (et intégrer les envois en "
        "retard) jusqu'à ce que chaque établissement servi ait confirmé avoir intégré ses "
        "données (accusé de réception), au plus SECONDES (défaut 120)",
    )
    p.add_argument(
        "--reprendre",
        action="store_true",
        help="Serveur dont la base a été restaurée : reprendre les données du groupe (rien de "
        "la base restaurée n'est envoyé, le siège renvoie tout, les lignes de ce poste comprises)",
    )
    p.add_argument(
        "--envoyer",
        action="store_true",
        help="base restaurée : l'envoyer telle quelle, elle devient la référence du groupe",
    )
    p.set_defaults(handler=cmd_sync)
    p = sub.add_parser("report", help="le Rapport des synchronisations")
    p.add_argument("--json", action="store_true", help="sortie JSON")
    p.add_argument("--limit", type=int, default=50, help="nombre de lignes (défaut 50)")
    p.set_defaults(handler=cmd_report)
    for name, text in (
        ("raz", "RAZ du tour en cours (service lancé)"),
        ("stop", "ARRETER la synchronisation en cours (service lancé)"),
    ):
        p = sub.add_parser(name, help=text)
        p.set_defaults(handler=cmd_control, control=name)
    p = sub.add_parser("test-connection", help="tester la connexion au siège (bouton Test)")
    p.set_defaults(handler=cmd_test_connection)
    p = sub.add_parser("test-email", help="envoyer un email de test")
    p.set_defaults(handler=cmd_test_email)
    p = sub.add_parser("site", help="établissements connus du siège")
    site_sub = p.add_subparsers(dest="site_command", metavar="add|list|remove", required=True)
    q = site_sub.add_parser("add", help="créer le compte d'un établissement et afficher son jeton")
    q.add_argument("code")
    q.add_argument(
        "--host", help="adresse du siège vue d'Internet (défaut : réglage public_address)"
    )
    q.set_defaults(handler=cmd_site_add)
    q = site_sub.add_parser("list", help="lister les établissements")
    q.set_defaults(handler=cmd_site_list)
    q = site_sub.add_parser("remove", help="supprimer le compte d'un établissement")
    q.add_argument("code")
    q.set_defaults(handler=cmd_site_remove)
    p = sub.add_parser("key", help="clé de groupe : rotation (siège), nouvelle clé (serveur)")
    key_sub = p.add_subparsers(dest="key_command", metavar="rotate|set", required=True)
    q = key_sub.add_parser(
        "rotate", help="Siège : nouvelle clé ; l'ancienne reste acceptée un temps"
    )
    q.add_argument("--grace-days", type=int, default=14, help="jours d'acceptation de l'ancienne")
    q.set_defaults(handler=cmd_key_rotate)
    q = key_sub.add_parser("set", help="Serveur : prendre la nouvelle clé donnée par le siège")
    q.add_argument("--key-file", type=Path, required=True, help="fichier contenant la clé")
    q.add_argument("--grace-days", type=int, default=14, help="jours d'acceptation de l'ancienne")
    q.set_defaults(handler=cmd_key_set)
    p = sub.add_parser("autostart", help="Démarrage avec Windows (ou la session) : on|off|status")
    p.add_argument("action", choices=["on", "off", "status"])
    p.set_defaults(handler=cmd_autostart)
    p = sub.add_parser("service", help="démarrer « serve » avec la machine : install|remove")
    p.add_argument("action", choices=["install", "remove"])
    p.add_argument("--dry-run", action="store_true", help="montrer sans rien changer")
    p.set_defaults(handler=cmd_service)
    p = sub.add_parser("trust", help="accepter le nouveau certificat du siège (renouvelé)")
    p.add_argument("--fingerprint", help="empreinte SHA-256 attendue (vérifiée avant d'accepter)")
    p.set_defaults(handler=cmd_trust)
    p = sub.add_parser("demo", help="démonstration complète : un siège, deux serveurs, un tour")
    p.add_argument("--dir", help="dossier de travail (défaut : dossier temporaire)")
    p.add_argument("--smtp", help="HOTE:PORT d'un serveur SMTP local pour les emails du rapport")
    p.add_argument("--keep", action="store_true", help="garder le dossier de la démonstration")
    p.set_defaults(handler=cmd_demo)


class ProgressPrinter:
    """The CLI consumer of engine events: a bar with rows and bytes on a terminal."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Progress) and self.tty:
                size = f"{event.bytes / 1e6:.1f} Mo" if event.bytes else ""
                rows = f"{event.rows:,}".replace(",", " ") + " lignes" if event.rows else ""
                text = " · ".join(
                    x for x in (rows, size, f"{event.site} : {event.phase}", event.detail) if x
                )
                self.stream.write("\r\x1b[K" + text[:120])
                self.stream.flush()
            elif isinstance(event, Status) and event.message != "show":
                self.stream.write(("\r\x1b[K" if self.tty else "") + event.line() + "\n")
                self.stream.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    from synchro.log import setup_logging
    from synchro.platform.single_instance import ControlServer, InstanceLock

    stop = threading.Event()  # a stop asked during start-up is honoured once started
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=True)
    lock = InstanceLock(paths.lock_file)
    if not lock.acquire():
        print("synchro : déjà lancé pour cette configuration", file=sys.stderr)
        return 1
    node = Synchro.open(config, paths, listeners=(ProgressPrinter(),))
    try:
        node.serve()
        with ControlServer(paths.lock_file, node.control):
            while not stop.wait(0.5):
                pass
    finally:
        node.close()
        lock.release()
    print("Synchro arrêté proprement.", file=sys.stderr)
    return 0


def _exit_code(state: State) -> int:
    return {State.OK: 0, State.STOPPED: 3}.get(state, 1)


def cmd_sync(args: argparse.Namespace) -> int:
    from synchro.log import setup_logging
    from synchro.platform.single_instance import InstanceLock, send_command

    config, paths = load(args)
    paths.ensure()
    setup_logging(paths.log_dir, console=False)
    lock = InstanceLock(paths.lock_file)
    if not lock.acquire():
        asked = {"take_back": args.reprendre, "send": args.envoyer}
        reply = send_command(paths, "sync", args=asked)
        print(
            "Synchronisation demandée au service déjà lancé."
            if reply.get("ok")
            else f"synchro : {reply.get('error')}"
        )
        return 0 if reply.get("ok") else 1
    node = Synchro.open(config, paths, listeners=(ProgressPrinter(),))
    signal.signal(signal.SIGINT, lambda *_: node.interrupt())
    signal.signal(signal.SIGTERM, lambda *_: node.interrupt())
    try:
        record = node.sync_once(linger_s=args.linger, take_back=args.reprendre, send=args.envoyer)
    finally:
        node.close()
        lock.release()
    print(
        f"{record.site} {format_date(record.started)} {format_date(record.ended)} "
        f"{record.state.value}" + (f" : {record.error}" if record.error else "")
    )
    return _exit_code(record.state)


def cmd_report(args: argparse.Namespace) -> int:
    from synchro.reports import ReportStore

    _config, paths = load(args)
    paths.ensure()
    with ReportStore(paths.reports_db) as store:
        rows = store.latest(args.limit)
    if args.json:
        print(
            json.dumps(
                [dataclasses.asdict(r) for r in rows], default=str, ensure_ascii=False, indent=2
            )
        )
        return 0
    print(
        f"{'Etablissement':14} {'Début':19} {'Fin':19} {'Etat':11} {'Env.':>7} {'Reçues':>7}  "
        "Erreur"
    )
    for r in rows:
        print(
            f"{r.site:14} {format_date(r.started):19} {format_date(r.ended):19} "
            f"{r.state.value:11} {r.rows_sent:>7} {r.rows_received:>7}  {r.error}"
        )
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    from synchro.platform.single_instance import send_command

    _config, paths = load(args)
    reply = send_command(paths, args.control)
    if not reply.get("ok"):
        print(f"synchro : {reply.get('error')}", file=sys.stderr)
        return 1
    print("Commande transmise au service.")
    return 0


def cmd_test_connection(args: argparse.Namespace) -> int:
    from synchro.application import test_connection

    config, paths = load(args)
    if config.is_hq:
        print("synchro : le test de connexion se fait depuis un Serveur", file=sys.stderr)
        return 2
    try:
        print(test_connection(config, paths).text)
    except ConnectionTestError as exc:
        print(f"synchro : échec ({exc.code}) : {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_test_email(args: argparse.Namespace) -> int:
    from synchro.mail import send_test

    config, _paths = load(args)
    print(send_test(config.email, config.language, site=config.site))
    return 0


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
        refused = {
            "not-hq": "seuls le Siège gère les établissements",
            "exists": f"l'établissement {args.code} existe déjà",
            "no-host": "indiquez --host (adresse du siège vue des établissements)",
        }
        print(f"synchro : {refused.get(exc.reason, exc)}", file=sys.stderr)
        return 2
    print(
        f"Etablissement {args.code} ajouté. Jeton de connexion (à coller dans l'assistant ou "
        "« synchro init --token ») :"
    )
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
        print(f"synchro : {exc}", file=sys.stderr)
        return 1
    print(f"Etablissement {args.code} supprimé (ses fichiers restent dans le dossier FTP).")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    from synchro.enrolment import same_fingerprint, siege_fingerprint, trust_fingerprint

    config, _paths = load(args)
    current = siege_fingerprint(config)
    if args.fingerprint and not same_fingerprint(args.fingerprint, current):
        print(
            f"synchro : le siège présente l'empreinte {current}, différente de celle donnée ; "
            "rien n'est changé",
            file=sys.stderr,
        )
        return 1
    if not args.fingerprint:
        print(f"Empreinte présentée par le siège : {current}")
        answer = input("Vérifiez-la auprès du siège. L'accepter ? [o/N] ").strip().lower()
        if answer not in {"o", "oui", "y", "yes"}:
            print("Rien n'est changé.")
            return 1
    _save(args, trust_fingerprint(config, current))
    print("Nouveau certificat du siège accepté.")
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from synchro.enrolment import rotate_group_key

    config, _paths = load(args)
    if not config.is_hq:
        print("synchro : la rotation de la clé se fait au Siège", file=sys.stderr)
        return 2
    config = rotate_group_key(config, args.grace_days)
    new_key = config.group_key
    _save(args, config)
    print(
        "Nouvelle clé de groupe créée. Donnez-la à chaque établissement (« synchro key set "
        "--key-file FICHIER ») ; l'ancienne reste acceptée jusqu'au "
        f"{format_date(config.previous_key_until)}."
    )
    print(new_key)
    return 0


def cmd_key_set(args: argparse.Namespace) -> int:
    from synchro.enrolment import take_group_key

    config, _paths = load(args)
    try:
        text = args.key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"synchro : clé illisible : {exc}", file=sys.stderr)
        return 2
    taken = take_group_key(config, text, args.grace_days)
    if taken is config:
        print("Cette clé est déjà la clé de groupe.")
        return 0
    _save(args, taken)
    print("Nouvelle clé de groupe enregistrée.")
    return 0


def cmd_autostart(args: argparse.Namespace) -> int:
    from synchro.platform.autostart import autostart_action

    config, paths = load(args)
    print(autostart_action(args.action, config=str(paths.config_file)))
    if args.action != "status" and config.start_with_windows != (args.action == "on"):
        _save(args, dataclasses.replace(config, start_with_windows=args.action == "on"))
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from synchro.platform.service import service_action

    _config, paths = load(args)
    print(service_action(args.action, paths.config_file, dry_run=args.dry_run))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from synchro.demo import run_demo

    try:
        return run_demo(args.dir, smtp=args.smtp, keep=args.keep, printer=ProgressPrinter())
    except SynchroError as exc:
        print(f"synchro : la démonstration a échoué : {exc}", file=sys.stderr)
        return 1


__all__ = ["add_commands"]
