"""The engine commands of the CLI: init, export, import, status, and --help everywhere.

Most checks call ``synchro.cli.main`` in this process (fast); the entry point itself
(``python -m synchro``) is run as a real subprocess once per kind of outcome.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from synchro.cli import build_parser, main
from synchro.config.model import Role
from synchro.config.store import load_config


def synchro(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synchro", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def init(config: Path, *extra: str, role: str = "serveur", site: str = "3615") -> int:
    db = str(config.with_suffix(".db"))
    return main(
        ["--config", str(config), "init", "--role", role, "--site", site, "--db", db, *extra]
    )


# -- init ------------------------------------------------------------------------------------


def test_init_writes_a_complete_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "poste.toml"
    done = synchro("--config", str(config), "init", "--role", "serveur", "--site", "3615",
                   "--db", "file.db", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(config) in done.stdout and "3615" in done.stdout
    loaded = load_config(config)
    assert loaded.role is Role.SITE and loaded.site == "3615"
    assert loaded.database.connection == "file.db"
    assert loaded.admin_password_hash == ""  # the manual's default password ADMIN, not stored

    argv = ["--config", str(config), "init", "--role", "siege", "--site", "1", "--db", "x.db"]
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert load_config(config).role is Role.SITE
    assert main([*argv, "--start-time", "06:30", "--force"]) == 0
    loaded = load_config(config)
    assert loaded.role is Role.HQ and loaded.start_time.strftime("%H:%M") == "06:30"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--start-time", "25:00"], "start_time"),
        (["--attempts", "-1"], "site_settings.attempts"),
        (["--site", "a/b"], "site"),
        (["--max-reception", "99:99:99"], "hq.max_reception"),
        (["--retry-delay", "-5"], "site_settings.retry_delay"),
        (["--servers", "0"], "hq.servers"),
        (["--first-sync", "31/02/2025 10:00"], "last_sync"),
        (["--port", "70000"], "hq.port"),
        (["--db", ""], "database.connection"),
    ],
)
def test_init_refuses_a_bad_value_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    config = tmp_path / "poste.toml"
    base = {"--role": "serveur", "--site": "3615", "--db": "f.db"}
    for name, value in zip(args[::2], args[1::2], strict=True):
        base[name] = value
    rest = [a for a in args if a not in base and a not in base.values()]
    argv = ["--config", str(config), "init", *[x for kv in base.items() for x in kv], *rest]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"({field})" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not config.exists()


def test_bad_value_through_the_entry_point(tmp_path: Path) -> None:
    done = synchro("--config", str(tmp_path / "c.toml"), "init", "--role", "serveur",
                   "--site", "3615", "--db", "f.db", "--attempts", "-1")  # fmt: skip
    assert done.returncode == 2
    assert "site_settings.attempts" in done.stderr and "-1" in done.stderr


def test_init_names_every_bad_field_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "poste.toml"
    code = init(config, "--start-time", "25:00", "--attempts", "-1", site="a/b")
    err = capsys.readouterr().err
    assert code == 2
    for field in ("start_time", "site_settings.attempts", "(site)"):
        assert field in err, err


# -- export, import, status ------------------------------------------------------------------

SCHEMA = (
    "CREATE TABLE articles (id INTEGER PRIMARY KEY, nom TEXT NOT NULL, prix DECIMAL(12,2))",
    "CREATE TABLE journal (ligne TEXT)",  # no key: reported, not synchronised
)


def make_db(path: Path, rows: list[tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path)
    for sql in SCHEMA:
        conn.execute(sql)
    conn.executemany("INSERT INTO articles VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()


def articles(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM articles ORDER BY id").fetchall()
    finally:
        conn.close()


def test_export_import_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    make_db(site.with_suffix(".db"), [(1, "Crème brûlée 😀", "4.50"), (2, "Thé", "2.00")])
    make_db(hq.with_suffix(".db"), [])
    assert init(site) == 0
    assert init(hq, role="siege", site="SIEGE") == 0
    capsys.readouterr()

    assert main(["--config", str(site), "status"]) == 0
    out = capsys.readouterr().out
    assert "articles" in out and "journal" in out and "non synchronisée" in out
    assert main(["--config", str(site), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["role"] == "serveur" and status["site"] == "3615"
    assert status["pending"]["articles"]["inserts"] == 2
    assert [s["table"] for s in status["skipped"]] == ["journal"]

    package = tmp_path / "envoi.pkg"
    assert main(["--config", str(site), "export", "--out", str(package)]) == 0
    out = capsys.readouterr().out
    assert "2 changement(s)" in out and "séquence 1" in out and "articles : +2" in out

    assert main(["--config", str(hq), "import", str(package)]) == 0
    assert "appliqué" in capsys.readouterr().out
    assert articles(hq.with_suffix(".db")) == articles(site.with_suffix(".db"))
    assert main(["--config", str(hq), "import", str(package)]) == 0  # a copy: ignored
    assert "déjà appliqué" in capsys.readouterr().out

    assert main(["--config", str(hq), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    [table] = status["tables"]
    assert (table["name"], table["rows"], table["known"]) == ("articles", 2, 2)
    assert status["pending"]["articles"] == {"inserts": 0, "updates": 0, "deletes": 0}


def test_import_failures_exit_non_zero_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    make_db(site.with_suffix(".db"), [(1, "un", "1.00")])
    make_db(hq.with_suffix(".db"), [])
    assert init(site) == 0
    assert init(hq, role="siege", site="SIEGE") == 0
    package = tmp_path / "envoi.pkg"
    assert main(["--config", str(site), "export", "--out", str(package)]) == 0

    cut = tmp_path / "coupe.pkg"
    cut.write_bytes(package.read_bytes()[:-10])
    done = synchro("--config", str(hq), "import", str(cut))
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and str(cut) in done.stderr
    assert articles(hq.with_suffix(".db")) == []

    capsys.readouterr()
    assert main(["--config", str(hq), "import", str(tmp_path / "absent.pkg")]) == 1
    assert "absent.pkg" in capsys.readouterr().err
    assert main(["--config", str(site), "import", str(package)]) == 1
    assert "ce poste" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "rien.toml"), "export"]) == 2
    assert "synchro init" in capsys.readouterr().err

    assert main(["--config", str(hq), "import", str(package)]) == 0
    assert articles(hq.with_suffix(".db")) == [(1, "un", 1)]


def test_site_package_waiting_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    make_db(site.with_suffix(".db"), [(1, "un", "1.00")])
    make_db(hq.with_suffix(".db"), [])
    assert init(site) == 0
    assert init(hq, role="siege", site="SIEGE") == 0
    first, second = tmp_path / "1.pkg", tmp_path / "2.pkg"
    assert main(["--config", str(site), "export", "--out", str(first)]) == 0
    assert main(["--config", str(site), "export", "--out", str(second)]) == 0
    capsys.readouterr()
    assert main(["--config", str(hq), "import", str(second)]) == 1
    assert "non appliqué" in capsys.readouterr().out
    assert main(["--config", str(hq), "import", str(first)]) == 0
    assert main(["--config", str(hq), "import", str(second)]) == 0


# -- --help ----------------------------------------------------------------------------------


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command and sub-command of the parser, as argument lists."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found.extend(command_paths(sub, (*prefix, name)))
    return found


def test_help_on_every_command_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    paths = command_paths(build_parser())
    assert {("init",), ("export",), ("import",), ("status",)} <= set(paths)
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as info:
            main([*path, "--help"])
        assert info.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: synchro"), path


def test_help_through_the_entry_point() -> None:
    done = synchro("import", "--help")
    assert done.returncode == 0 and "paquet" in done.stdout
