"""The command line speaks the configured language (``language`` of the settings, else the
system's): the real ``python -m synchro`` in a subprocess, with its own home and settings,
on real SQLite databases; English where the settings say ``en``, the manual's French
otherwise, word for word as before."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import socket
import string
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_engine import articles, make_db

from synchro.application import Progress, Status
from synchro.cli import cli_language, config_argument
from synchro.cli_rounds import ProgressPrinter
from synchro.config.store import load_config
from synchro.i18n import system_language

ENGLISH, FRENCH = "en_US.UTF-8", "C.UTF-8"


def synchro(
    home: Path, *args: str, lang: str = FRENCH, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m synchro ARGS`` with the system locale ``lang`` and ``home`` as the
    user's folders (no settings of the machine's user are ever read)."""
    env = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    env.update(
        LANG=lang,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return subprocess.run(
        [sys.executable, "-m", "synchro", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or home,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def init(home: Path, name: str, role: str, site: str, *extra: str) -> str:
    """``synchro init`` of ``home/name.toml`` on ``home/name.db``; its stdout."""
    config = home / f"{name}.toml"
    done = synchro(home, "--config", str(config), "init", "--role", role, "--site", site,
                   "--db", str(home / f"{name}.db"), *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_an_english_config_speaks_english(tmp_path: Path) -> None:
    """French system, settings in English: every line of init, status, export, import and
    their errors in English (the settings decide, not the system)."""
    site, hq = tmp_path / "site.toml", tmp_path / "hq.toml"
    make_db(tmp_path / "site.db", [(1, "Crème brûlée", "4.50"), (2, "Thé", "2.00")])
    make_db(tmp_path / "hq.db", [])
    out = init(tmp_path, "site", "serveur", "3615", "--language", "en")
    assert out == f"Configuration written: {site} (Server mode, establishment 3615)\n"
    assert load_config(site).language == "en"
    out = init(tmp_path, "hq", "siege", "SIEGE", "--language", "en")
    assert out == f"Configuration written: {hq} (Headquarters mode, establishment SIEGE)\n"

    done = synchro(tmp_path, "--config", str(site), "status")
    assert done.returncode == 0, done.stderr
    status = lines(done.stdout)
    assert status[:2] == [
        "Server mode, establishment 3615",
        "WARNING: the administrator password is still ADMIN; change it.",
    ]
    assert status[2].split() == ["Table", "Key", "Rows", "+", "~", "-"]
    assert status[3].split() == ["articles", "id", "2", "2", "0", "0"]
    assert status[4].startswith("journal") and "not synchronised: " in status[4]
    assert status[4].endswith(
        "not synchronised: no primary key or unique index: it is not "
        "synchronised (add a primary key or name a key in the "
        "configuration)"
    )

    package = tmp_path / "envoi.pkg"
    done = synchro(tmp_path, "--config", str(site), "export", "--out", str(package))
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [
        f"Package {package}: 2 change(s), sequence 1",
        "  articles: +2 ~0 -0",
    ]
    done = synchro(tmp_path, "--config", str(hq), "import", str(package))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "Package 3615#1 applied: 2 written, 0 deleted, 0 conflict(s), 0 quarantined\n"
    )
    assert articles(tmp_path / "hq.db") == articles(tmp_path / "site.db")
    done = synchro(tmp_path, "--config", str(hq), "import", str(package))
    assert (done.returncode, done.stdout) == (0, "Package 3615#1 not applied: already applied\n")

    done = synchro(tmp_path, "--config", str(hq), "import", str(tmp_path / "absent.pkg"))
    assert done.returncode == 1
    assert done.stderr.startswith("synchro: Package refused ") and "absent.pkg" in done.stderr
    done = synchro(tmp_path, "--config", str(hq), "status", "--json")
    assert json.loads(done.stdout)["pending"]["articles"]["inserts"] == 0  # JSON: no words


def test_a_french_config_speaks_the_manuals_french(tmp_path: Path) -> None:
    """English system, settings in French: today's French, byte for byte."""
    site, hq = tmp_path / "site.toml", tmp_path / "hq.toml"
    make_db(tmp_path / "site.db", [(1, "Crème brûlée", "4.50"), (2, "Thé", "2.00")])
    make_db(tmp_path / "hq.db", [])
    assert init(tmp_path, "site", "serveur", "3615", "--language", "fr") == (
        f"Configuration écrite : {site} (mode Serveur, établissement 3615)\n"
    )
    assert init(tmp_path, "hq", "siege", "SIEGE", "--language", "fr") == (
        f"Configuration écrite : {hq} (mode Siège, établissement SIEGE)\n"
    )
    done = synchro(tmp_path, "--config", str(site), "status", lang=ENGLISH)
    status = lines(done.stdout)
    assert status[:3] == [
        "Mode Serveur, établissement 3615",
        "ATTENTION : le mot de passe administrateur est encore ADMIN ; changez-le.",
        f"{'Table':24} {'Clé':20} {'Lignes':>10} {'+':>7} {'~':>7} {'-':>7}",
    ]
    assert status[4].startswith(f"{'journal':24} non synchronisée : ")

    package = tmp_path / "envoi.pkg"
    done = synchro(tmp_path, "--config", str(site), "export", "--out", str(package), lang=ENGLISH)
    assert lines(done.stdout) == [
        f"Paquet {package} : 2 changement(s), séquence 1",
        "  articles : +2 ~0 -0",
    ]
    done = synchro(tmp_path, "--config", str(hq), "import", str(package), lang=ENGLISH)
    assert done.stdout == (
        "Paquet 3615#1 appliqué : 2 écrite(s), 0 supprimée(s), 0 conflit(s), 0 en quarantaine\n"
    )
    done = synchro(tmp_path, "--config", str(hq), "import", str(package), lang=ENGLISH)
    assert done.stdout == "Paquet 3615#1 non appliqué : déjà appliqué\n"
    done = synchro(tmp_path, "--config", str(hq), "import", "absent.pkg", lang=ENGLISH)
    assert done.stderr.startswith("synchro : Paquet refusé absent.pkg : ")

    done = synchro(tmp_path, "--config", str(site), "init", "--role", "serveur", "--site", "1",
                   "--db", "x.db", lang=ENGLISH)  # fmt: skip
    assert (done.returncode, done.stderr) == (
        2,
        f"synchro : une configuration existe déjà ({site}) ; --force pour la remplacer\n",
    )


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (ENGLISH, "synchro: no configuration in {path}: run 'synchro init' first\n"),
        (
            FRENCH,
            "synchro : Configuration invalide : configuration : aucune configuration dans "
            "{path} : lancez d'abord « synchro init »\n",
        ),
    ],
)
def test_no_config_yet_in_the_systems_language(tmp_path: Path, lang: str, expected: str) -> None:
    config = tmp_path / "rien.toml"
    done = synchro(tmp_path, "--config", str(config), "export", lang=lang)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == expected.format(path=config)


def test_init_takes_the_systems_language(tmp_path: Path) -> None:
    """No --language: the wizard's rule, the system's language, written in the settings."""
    french = init(tmp_path, "francais", "serveur", "3615")  # a French system (C.UTF-8)
    assert french.startswith("Configuration écrite : ")
    assert load_config(tmp_path / "francais.toml").language == "fr"
    config = tmp_path / "anglais.toml"
    done = synchro(tmp_path, "--config", str(config), "init", "--role", "siege", "--site", "S",
                   "--db", "x.db", lang=ENGLISH)  # fmt: skip
    assert done.stdout == f"Configuration written: {config} (Headquarters mode, establishment S)\n"
    assert load_config(config).language == "en"


def test_a_bad_value_or_token_is_refused_in_the_language(tmp_path: Path) -> None:
    """Errors go through ``errors.text_in``: the « synchro: » line in the language (the
    words of a ConfigError itself are the config area's), exit code 2, nothing written."""
    config = tmp_path / "c.toml"
    for system, language, prefix in ((FRENCH, "en", "synchro: "), (ENGLISH, "fr", "synchro : ")):
        done = synchro(tmp_path, "--config", str(config), "init", "--role", "serveur",
                       "--site", "3615", "--db", "f.db", "--token", "pas-un-jeton",
                       "--language", language, lang=system)  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.startswith(prefix) and len(lines(done.stderr)) == 1, done.stderr
        assert not config.exists()
    done = synchro(tmp_path, "--config", str(config), "init", "--role", "serveur",
                   "--site", "3615", "--db", "f.db", "--hq", "siege:abc", "--language", "en",
                   lang=FRENCH)  # fmt: skip
    assert done.returncode == 2 and "HOST[:PORT] (found: 'siege:abc')" in done.stderr, done.stderr
    assert not config.exists()


def test_help_in_the_language(tmp_path: Path) -> None:
    """--help needs no settings: the system's language; with --config, the settings'."""
    english = synchro(tmp_path, "--help", lang=ENGLISH)
    assert english.returncode == 0
    assert "capture the local changes into a package" in english.stdout
    english = synchro(tmp_path, "export", "--help", lang=ENGLISH)
    assert "package file to write (default: the outbox)" in english.stdout
    french = synchro(tmp_path, "--help", lang=FRENCH)
    assert french.returncode == 0
    assert "Synchronisation des bases de données entre le siège" in french.stdout
    assert "COMMANDE" in french.stdout and "capturer les changements locaux" in french.stdout

    init(tmp_path, "site", "serveur", "3615", "--language", "en")
    done = synchro(tmp_path, "--config", str(tmp_path / "site.toml"), "sync", "--help")
    assert done.returncode == 0 and "--linger SECONDS" in done.stdout
    done = synchro(tmp_path, f"--config={tmp_path / 'site.toml'}", "--help")
    assert "COMMAND" in done.stdout and "COMMANDE" not in done.stdout


def test_the_language_is_decided_in_one_place(tmp_path: Path) -> None:
    assert config_argument(["--config", "a.toml", "status"]) == "a.toml"
    assert config_argument(["--config=b.toml", "status"]) == "b.toml"
    assert config_argument(["status", "--", "--config", "c.toml"]) is None
    assert config_argument(["--config"]) is None
    broken = tmp_path / "broken.toml"
    broken.write_text("language = ", encoding="utf-8")
    assert cli_language(str(broken)) == system_language()  # unreadable: the system's
    assert cli_language(str(tmp_path / "absent.toml")) == system_language()


def test_every_word_in_both_languages() -> None:
    """locales/cli.json: each text in French and English, with the same {values}."""
    path = Path(__file__).resolve().parents[1] / "synchro" / "locales" / "cli.json"
    words = json.loads(path.read_text(encoding="utf-8"))
    assert all(key.startswith("cli.") for key in words)

    def names(text: str) -> set[str]:
        return {n for _, n, _, _ in string.Formatter().parse(text) if n}

    for key, texts in words.items():
        assert set(texts) == {"fr", "en"} and all(texts.values()), key
        assert names(texts["fr"]) == names(texts["en"]), key
        assert not re.search(r"%[a-z(]", texts["en"] + texts["fr"]), key  # argparse's %


def test_the_progress_printer_speaks_the_language() -> None:
    """``sync``/``serve``/``demo`` lines: an engine status line in the language, French as
    the engine words it; the terminal bar's units too."""
    at = dt.datetime(2026, 12, 6, 17, 39, 2)
    event = Status(
        "Serveur FTP démarré sur le port 2121.", at, "engine.ftp.started", {"port": 2121}
    )
    shown: dict[str, str] = {}
    for lang in ("fr", "en"):
        stream = io.StringIO()
        ProgressPrinter(stream, lang)(event)
        shown[lang] = stream.getvalue()
    assert shown == {
        "fr": "12/06 17:39:02 : Serveur FTP démarré sur le port 2121.\n",
        "en": "12/06 17:39:02: FTP server started on port 2121.\n",
    }
    progress = Progress("capture", "3615", rows=12345, bytes=2_500_000)
    assert ProgressPrinter(io.StringIO(), "fr").bar(progress) == (
        "12 345 lignes · 2.5 Mo · 3615 : capture"
    )
    assert ProgressPrinter(io.StringIO(), "en").bar(progress) == (
        "12,345 rows · 2.5 MB · 3615: capture"
    )


@pytest.mark.parametrize(
    ("language", "failed", "heading"),
    [
        ("en", "Failed: ", ["Establishment", "Start", "End", "State", "Sent", "Recv.", "Error"]),
        ("fr", "Echec : ", ["Etablissement", "Début", "Fin", "Etat", "Env.", "Reçues", "Erreur"]),
    ],
)
def test_sync_and_report_in_the_language(
    tmp_path: Path, language: str, failed: str, heading: list[str]
) -> None:
    """A Serveur whose Siège does not answer: the run's line and the Rapport in the
    settings' language (state words, headings, the error's words)."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_db(tmp_path / "site.db", [(1, "un", "1.00")])
    init(tmp_path, "site", "serveur", "3615", "--attempts", "1", "--hq", f"127.0.0.1:{port}",
         "--allow-plain-ftp", "--language", language)  # fmt: skip
    config = str(tmp_path / "site.toml")
    done = synchro(tmp_path, "--config", config, "sync", lang=ENGLISH)
    assert done.returncode == 1, done.stderr
    date = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"3615 {date} {date} {failed}.*{port}.*\n", done.stdout), done.stdout
    report = lines(synchro(tmp_path, "--config", config, "report", lang=ENGLISH).stdout)
    assert report[0].split() == heading
    assert report[1].startswith("3615") and f" {failed.split()[0].rstrip(':')} " in report[1]


def test_a_refusal_of_the_running_program_is_said_in_the_language(tmp_path: Path) -> None:
    """``synchro stop`` / ``raz`` talk to the running program over its control channel
    (here a real one whose program is not set up yet): its refusal comes back with its
    words and is printed in the settings' language."""
    from types import SimpleNamespace

    from synchro.gui import control_handler
    from synchro.platform.paths import paths_beside
    from synchro.platform.single_instance import ControlServer

    make_db(tmp_path / "site.db", [(1, "un", "1.00")])
    init(tmp_path, "site", "serveur", "3615", "--hq", "127.0.0.1:2121", "--allow-plain-ftp",
         "--language", "en")  # fmt: skip
    config = tmp_path / "site.toml"
    lock_file = paths_beside(config).lock_file
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    backend = SimpleNamespace(events=None, synchro=None)
    with ControlServer(lock_file, control_handler(backend)):
        done = synchro(tmp_path, "--config", str(config), "stop", lang=FRENCH)
    assert done.returncode == 1
    assert done.stderr == "synchro: Synchro is not set up yet: finish the wizard.\n", done.stderr
