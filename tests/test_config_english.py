"""The settings, the connection token, enrolment and the platform say their errors in the
UI language: ``text_in(exc, "en")`` is English, ``str(exc)`` the French of the manual, as
it always was. Real settings files through the real loader, real mangled tokens, a lock
really held by another process, a real control channel, real commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from synchro.config.model import Config, Role
from synchro.config.parsing import parse_duration, parse_time
from synchro.config.store import load_config, save_config
from synchro.enrolment import EnrolRefused, enrol_site, join_with_token, remove_site
from synchro.errors import (
    BadValue,
    ConfigError,
    FieldProblem,
    PlatformError,
    error_details,
    text_in,
)
from synchro.gui import control_handler
from synchro.i18n import render
from synchro.names import parse_address, parse_port
from synchro.platform.paths import paths_beside
from synchro.platform.service import apply_plan, plan_systemd_install, service_action
from synchro.platform.single_instance import ControlServer, InstanceLock, send_command
from synchro.transport.tls import normalize_fingerprint
from synchro.transport.token import make_token, parse_token

LOCALES = Path(__file__).resolve().parents[1] / "synchro" / "locales"
FP = "ab" * 32


def english(exc: BaseException) -> str:
    """The English words of ``exc``, after checking its French words are its ``str()``."""
    assert text_in(exc, "fr") == str(exc)
    return text_in(exc, "en")


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "synchro.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


# -- the words themselves -------------------------------------------------------------------


@pytest.mark.parametrize("area", ["config", "platform", "gui"])
def test_every_key_is_said_in_both_languages_with_the_same_placeholders(area: str) -> None:
    data = json.loads((LOCALES / f"{area}.json").read_text(encoding="utf-8"))
    placeholder = re.compile(r"\{([A-Za-z_]\w*)\}")
    for key, texts in data.items():
        assert key.startswith(f"{area}."), key
        assert texts.get("fr") and texts.get("en"), key
        fr, en = (set(placeholder.findall(texts[lang])) for lang in ("fr", "en"))
        assert fr == en, key


# -- a settings file --------------------------------------------------------------------------


def test_a_bad_settings_file_in_english_and_in_the_french_of_today(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, 'site = "A"\nstart_time = "25:00"\nstrat_time = "1"\n[hq]\nport = 0\n'
    )
    where = str(tmp_path / "synchro.toml")
    assert str(error) == (
        f"Configuration invalide dans {where} : Heure de départ (start_time) : une heure HH:MM "
        "de 00:00 à 23:59, par exemple 23:00 (trouvé : « 25:00 »); strat_time : clé inconnue "
        "(vouliez-vous dire « start_time » ?); Port FTP (hq.port) : un nombre entier de 1 à "
        "65535 (trouvé : « 0 »)"
    )
    assert english(error) == (
        f"Invalid settings in {where}: Start time (start_time): a time HH:MM from 00:00 to "
        '23:59, for example 23:00 (found: "25:00"); strat_time: unknown key (did you mean '
        '"start_time"?); FTP port (hq.port): a whole number from 1 to 65535 (found: "0")'
    )
    # the API others use: every field, its French words, its own English line
    assert [p.field for p in error.problems] == ["start_time", "strat_time", "hq.port"]
    assert error.problems[0].expected.startswith("une heure HH:MM")
    assert (
        error.problems[2].text_in("en")
        == 'FTP port (hq.port): a whole number from 1 to 65535 (found: "0")'
    )


def test_the_rapport_keeps_the_words_and_says_them_in_either_language(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'site = "A"\nlanguage = "de"\nsend_email = 1\n[email]\nbad = 1\n')
    kept = json.loads(json.dumps(error_details(error)))  # what a Rapport row stores
    assert kept["error_kind"] == "config"
    assert render(kept["error_say"], "fr") == str(error)
    assert render(kept["error_say"], "en") == english(error)
    assert "one of the languages: fr, en" in english(error)
    assert "; Send an email (send_email): true or false" in english(error)


def test_file_level_problems(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == (
        f"Configuration invalide dans {missing} : fichier : un fichier de paramètres existant"
    )
    assert english(info.value) == f"Invalid settings in {missing}: file: an existing settings file"

    syntax = load_error(tmp_path, 'site = "A"\n\n[hq]\nport = = 21\n')
    assert syntax.problems[0].field == "ligne 4"
    assert "ligne 4 : une syntaxe TOML valide (" in str(syntax)
    assert ": line 4: valid TOML syntax (" in english(syntax) and ", column 8)" in english(syntax)

    (tmp_path / "latin.toml").write_bytes(b'site = "\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "latin.toml")
    assert english(info.value).endswith("latin.toml: file: UTF-8 text (byte 8)")


def test_a_damaged_secrets_file(tmp_path: Path) -> None:
    (tmp_path / "synchro.toml").write_text('site = "A"\n', encoding="utf-8")
    (tmp_path / "secrets.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "synchro.toml")
    assert str(info.value).endswith('secrets.json : secrets : un objet JSON {"nom": "secret"}')
    assert english(info.value).endswith('secrets.json: secrets: a JSON object {"name": "secret"}')


def test_settings_the_disk_refuses(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    target = tmp_path / "a-file" / "synchro.toml"  # its folder is a file: refused
    with pytest.raises(PlatformError) as info:
        save_config(Config(site="A"), target)
    assert str(info.value).startswith("Impossible d'enregistrer les")
    assert english(info.value).startswith("Cannot save the")
    assert "check the" in english(info.value)


def test_the_shared_parsers() -> None:
    with pytest.raises(ConfigError) as info:
        parse_time("25:00")
    assert str(info.value) == (
        "Configuration invalide : Heure de départ (start_time) : une heure HH:MM de 00:00 à "
        "23:59, par exemple 23:00 (trouvé : « 25:00 »)"
    )
    assert english(info.value) == (
        "Invalid settings: Start time (start_time): a time HH:MM from 00:00 to 23:59, "
        'for example 23:00 (found: "25:00")'
    )
    with pytest.raises(ConfigError) as info:
        parse_duration("4h")
    assert english(info.value).startswith("Invalid settings: Maximum reception time")


def test_config_error_and_field_problem_api() -> None:
    plain = ConfigError("jeton de connexion invalide")  # a text: as before, said as it is
    assert str(plain) == "Configuration invalide : configuration : jeton de connexion invalide"
    assert english(plain) == "Invalid settings: configuration: jeton de connexion invalide"
    worded = FieldProblem("port", ("config.expect.integer", {"low": 1, "high": 9}), "0")
    assert worded.expected == "un nombre entier de 1 à 9"  # .expected stays French text
    assert worded == FieldProblem("port", "un nombre entier de 1 à 9", "0")
    error = ConfigError([worded, FieldProblem("x", "obligatoire")], "hq.toml")
    assert str(error) == (
        "Configuration invalide dans hq.toml : port : un nombre entier de 1 à 9 (trouvé : '0'); "
        "x : obligatoire"
    )
    assert english(error) == (  # a text given as it is stays French
        "Invalid settings in hq.toml: port: a whole number from 1 to 9 (found: '0'); x: obligatoire"
    )
    said = ConfigError(("config.token.cut", {}))  # one Say: a problem of the whole settings
    assert english(said).endswith(
        "configuration: incomplete token: it was probably cut when copied and pasted"
    )
    assert ConfigError([]).problems == ()


# -- the connection token -------------------------------------------------------------------

GOOD = make_token("siege.example.com", 21, "3615", "secret", FP)
TOKENS = [
    ("", "le jeton est vide", "the token is empty; paste the line shown by"),
    ("bonjour", "n'est pas un jeton Synchro", "this text is not a Synchro token"),
    ("SYNCHRO2-abc-def", "version 'SYNCHRO2' inconnue", "token of unknown version 'SYNCHRO2'"),
    (GOOD.split("-")[0] + "-" + GOOD.split("-")[1], "coupé au copier-coller", "cut when copied"),
    (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), "somme de contrôle fausse", "wrong checksum"),
]


@pytest.mark.parametrize(("text", "fr", "en"), TOKENS)
def test_a_mispasted_token_in_english(text: str, fr: str, en: str) -> None:
    with pytest.raises(ConfigError) as info:
        join_with_token(Config(), text)  # what the wizard's backend and `init --token` do
    assert str(info.value).startswith("Configuration invalide : jeton de connexion : ")
    assert fr in str(info.value)
    assert english(info.value).startswith("Invalid settings: connection token: ")
    assert en in english(info.value)


def test_a_token_with_bad_fields_names_them_in_english() -> None:
    with pytest.raises(ConfigError) as info:
        make_token("", 0, "../x", "", "zz", "!!")
    assert str(info.value) == (
        "Configuration invalide dans jeton de connexion : adresse du siège : un nom ou une "
        "adresse IP; port : un nombre entre 1 et 65535 (trouvé : '0'); établissement : lettres, "
        "chiffres, - ou _ (trouvé : '../x'); secret : un secret non vide; empreinte : 64 "
        "chiffres hexadécimaux (trouvé : 'zz'); clé de groupe : du texte base64"
    )
    assert info.value.source == "jeton de connexion"
    assert english(info.value) == (
        "Invalid settings in connection token: headquarters address: a name or an IP address; "
        "port: a number from 1 to 65535 (found: '0'); establishment: letters, digits, - or _ "
        "(found: '../x'); secret: a secret that is not empty; fingerprint: 64 hexadecimal "
        "digits (found: 'zz'); group key: base64 text"
    )
    assert parse_token(GOOD).site == "3615"


def test_values_the_parsers_refuse_are_value_errors_with_words() -> None:
    for call, en in [
        (lambda: parse_port("70000"), "invalid port: '70000' (a number from 1 to 65535)"),
        (lambda: parse_address(":21", 21), "invalid address: ':21' (HOST or HOST:PORT)"),
        (lambda: normalize_fingerprint("zz"), "a SHA-256 fingerprint expected"),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert isinstance(info.value, BadValue)
        assert en in english(info.value)
    with pytest.raises(ValueError, match=r"port invalide : '0' \(un nombre de 1 à 65535\)"):
        parse_port("0")


# -- enrolment ------------------------------------------------------------------------------


def test_enrolment_refusals_keep_their_reason_and_say_it(tmp_path: Path) -> None:
    paths = paths_beside(tmp_path / "synchro.toml").ensure()
    with pytest.raises(EnrolRefused) as info:
        enrol_site(Config(site="A"), paths, "3615", "siege")
    assert info.value.reason == "not-hq"
    assert str(info.value) == "seul le Siège gère les établissements"
    assert english(info.value) == "only the headquarters manages establishments"
    hq = Config(role=Role.HQ, site="SIEGE")
    with pytest.raises(EnrolRefused) as info:
        enrol_site(hq, paths, "3615")
    assert info.value.reason == "no-host"
    assert english(info.value).startswith("the headquarters' address")
    with pytest.raises(EnrolRefused) as info:
        remove_site(hq, paths, "3615")
    assert (info.value.reason, str(info.value)) == ("unknown", "établissement 3615 inconnu")
    assert english(info.value) == "unknown establishment 3615"


# -- one Synchro per configuration, its control channel --------------------------------------

HOLD = (
    "import sys; from pathlib import Path\n"
    "from synchro.platform.single_instance import InstanceLock\n"
    "lock = InstanceLock(Path(sys.argv[1])); assert lock.acquire()\n"
    "print('held', flush=True); sys.stdin.readline(); lock.release()\n"
)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A lock file held by another, real process (released and waited for at the end)."""
    lock_file = tmp_path / "node.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "held"
        yield lock_file
    finally:
        child.stdin.close()
        child.wait(10)


def test_a_second_start_is_refused_in_english(held: Path) -> None:
    with pytest.raises(PlatformError) as info, InstanceLock(held):
        pass
    assert str(info.value) == (f"Synchro est déjà lancé pour cette configuration (verrou {held})")
    assert english(info.value) == f"Synchro is already running for these settings (lock {held})"
    with pytest.raises(PlatformError) as info:
        send_command(held, "status", timeout=2)  # held, but no control channel
    assert str(info.value) == "Synchro n'est pas lancé pour cette configuration"
    assert english(info.value) == "Synchro is not running for these settings"


def test_the_control_channel_passes_the_words_of_a_refusal(tmp_path: Path) -> None:
    """The tray program not set up yet refuses ``synchro status``: the caller gets the
    French text and the words to say it in its own language."""
    lock_file = tmp_path / "node.lock"
    backend = SimpleNamespace(events=None, synchro=None)
    with ControlServer(lock_file, control_handler(backend)):
        reply = send_command(lock_file, "status", timeout=5)
    assert reply["ok"] is False
    assert reply["error"] == "Synchro n'est pas encore paramétré : terminez l'assistant."
    assert render(reply["error_say"], "en") == "Synchro is not set up yet: finish the wizard."
    with pytest.raises(PlatformError) as info:
        send_command(tmp_path, "status")
    assert english(info.value) == f"{tmp_path} is a folder: the lock file was expected"


# -- the service ----------------------------------------------------------------------------


def test_service_errors_in_english(tmp_path: Path) -> None:
    config = tmp_path / "synchro.toml"
    with pytest.raises(PlatformError) as info:
        service_action("restart", config)
    assert str(info.value) == "Action inconnue 'restart' (attendu : install, remove)"
    assert english(info.value) == "Unknown action 'restart' (expected: install, remove)"
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    plan = plan_systemd_install(config, command=["/bin/true"], target_dir=tmp_path / "a-file")
    with pytest.raises(PlatformError) as info:
        apply_plan(plan, run_commands=False)  # its folder is a file: cannot write the unit
    assert str(info.value).startswith("Impossible d'écrire ")
    assert "Run the command as an administrator" in english(info.value)
    plan = plan_systemd_install(config, command=["/bin/true"], target_dir=tmp_path)
    with pytest.raises(PlatformError) as info:
        apply_plan(plan, runner=lambda argv: subprocess.run(["false"], check=False, text=True))
    assert str(info.value).startswith("Échec de « systemctl daemon-reload » (code 1)")
    assert english(info.value).startswith('"systemctl daemon-reload" failed (code 1)')
    assert "Administrator rights are needed" in english(info.value)


def test_hundreds_of_problems_are_joined_as_before() -> None:
    problems = [FieldProblem(f"t{i}", ("config.expect.required", {})) for i in range(3000)]
    error = ConfigError(problems)
    assert str(error) == "Configuration invalide : " + "; ".join(
        f"t{i} : obligatoire" for i in range(3000)
    )
    assert english(error).endswith("; t2998: required; t2999: required")


def test_the_tables_settings_the_group_key_and_a_stop_are_said_in_english(
    tmp_path: Path,
) -> None:
    """The settings checked against the real database's tables (an unknown table, a column
    that is not there), a group key that is not one, and ARRETER: English words, the
    French as before."""
    import sqlite3

    from synchro.config.model import DatabaseSettings, TableRule
    from synchro.db import open_database
    from synchro.engine.tables import select_tables
    from synchro.errors import Cancelled
    from synchro.package.crypto import decode_key

    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ventes(id INTEGER PRIMARY KEY, montant TEXT)")
    conn.close()
    with open_database(str(path)) as db:
        found = db.tables()
    settings = DatabaseSettings(
        connection=str(path),
        include=("ventes", "stocks"),
        tables=(TableRule(name="ventes", key=("num",), modified_column="quand"),),
    )
    with pytest.raises(ConfigError) as caught:
        select_tables(found, settings)
    french, english = str(caught.value), text_in(caught.value, "en")
    assert "une table existante (inconnue : stocks)" in french
    assert "une colonne de la table ventes (trouvé : 'quand')" in french
    assert "des colonnes de la table ventes (trouvé : 'num')" in french
    assert "an existing table (unknown: stocks)" in english
    assert "a column of the table ventes (found: 'quand')" in english
    assert "columns of the table ventes (found: 'num')" in english
    with pytest.raises(ConfigError) as bad_key:
        decode_key("pas une clé")
    assert str(bad_key.value).endswith("Clé du groupe : 32 octets en base64 (44 caractères)")
    assert text_in(bad_key.value, "en").endswith("Group key: 32 bytes in base64 (44 characters)")
    stop = Cancelled()
    assert str(stop) == "Synchronisation arrêtée par l'utilisateur."
    assert text_in(stop, "en") == "Synchronisation stopped by the user."
