"""A Siège and one Serveur on loopback, set up two ways: through the App's own settings
(``app_pair``) or through the CLI as an administrator would (``cli_pair``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ftp_proxy import claim, ephemeral_low

from synchro.config.model import Config, HQSettings, Role, SiteSettings
from synchro.config.store import load_config, save_config
from synchro.enrolment import enrol_site, join_with_token
from synchro.platform.paths import NodePaths, paths_beside, resolve_paths
from synchro.state import StateDB

SCHEMA = "CREATE TABLE articles(id INTEGER PRIMARY KEY, nom TEXT NOT NULL, prix DECIMAL(10,2));"


def free_port(host: str = "127.0.0.1") -> int:
    """A free port for a server a test starts, and may start again later on the same port:
    chosen below the kernel's range for outgoing connections, so that no connection of
    this machine can take it as its own port meanwhile (a Siège started again for the next
    round failed once with « Address already in use » on a port from that range), and never
    one another test of this process was given (``ftp_proxy.claim``)."""
    low = ephemeral_low()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        if claim(range(port, port + 1)):  # not one another test of this process holds
            return port
    with socket.socket() as s:  # (a machine whose range starts too low)
        s.bind((host, 0))
        found: int = s.getsockname()[1]
        return found


def make_db(path: Path, rows: str = "") -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA + rows)
    conn.commit()
    conn.close()


def _node(root: Path, name: str, config: Config, rows: str) -> NodePaths:
    paths = paths_beside(root / name / "synchro.toml").ensure()
    db = root / name / "data.db"
    make_db(db, rows)
    database = dataclasses.replace(config.database, connection=str(db))
    save_config(dataclasses.replace(config, database=database), paths.config_file)
    return paths


def app_pair(root: Path) -> tuple[NodePaths, NodePaths]:
    """Siège (port free on 127.0.0.1) that enrolled Serveur 3615 (``enrol_site``, as
    ``synchro site add`` does), and 3615 set up from its token."""
    hq = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(
            servers=1,
            listen_address="127.0.0.1",
            port=free_port(),
            max_reception=dt.timedelta(seconds=30),
        ),
    )
    hq_paths = _node(root, "hq", hq, "INSERT INTO articles VALUES (1, 'Café', '18.90');")
    _hq, token = enrol_site(load_config(hq_paths.config_file), hq_paths, "3615", "127.0.0.1")
    site = Config(
        role=Role.SITE,
        last_sync=dt.datetime(2026, 1, 1),
        site_settings=SiteSettings(
            attempts=3, retry_delay=dt.timedelta(seconds=1), auto_sync=False, timeout_s=10
        ),
    )
    site = join_with_token(site, token)
    return hq_paths, _node(root, "site", site, "INSERT INTO articles VALUES (2, 'Thé', '7.50');")


def synchro(
    *args: str, cwd: Path, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``synchro *args`` as a process under a UTF-8 locale; ``env`` adds or overrides
    variables (``LC_ALL=C``: a service's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "synchro", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "LANG": "C.UTF-8", **(env or {})},
    )


def popen(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``synchro *args`` started in the background; ``env`` adds variables (failpoints)."""
    return subprocess.Popen(
        [sys.executable, "-m", "synchro", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )


def cli_site_and_siege(folder: Path, site: Path, hq: Path, hq_connection: str) -> None:
    """``synchro init`` of a Serveur ``A`` on the SQLite file beside its config ``site``
    (``site.db``), and of a Siège ``SIEGE`` on ``hq_connection``, config ``hq``."""
    for config, role, code, connection in (
        (site, "serveur", "A", str(site.with_suffix(".db"))),
        (hq, "siege", "SIEGE", hq_connection),
    ):
        made = synchro("--config", str(config), "init", "--role", role, "--site", code,
                       "--db", connection, cwd=folder)  # fmt: skip
        assert made.returncode == 0, made.stderr


def cli_export(config: Path, package: Path) -> Path:
    """``synchro export --out package`` of the node of ``config``; returns ``package``."""
    sent = synchro("--config", str(config), "export", "--out", str(package), cwd=package.parent)
    assert sent.returncode == 0, sent.stderr
    return package


def set_aside(config: Path) -> list[dict[str, object]]:
    """The package rows the node of ``config`` holds set aside (its quarantine)."""
    state = StateDB(resolve_paths(str(config)).state_db)
    try:
        return state.pending()
    finally:
        state.close()


def cli_pair(root: Path, *init_args: str) -> tuple[Path, Path, str]:
    """Siège and Serveur set up with the CLI only: ``init``, ``site add``, ``init --token``.
    ``init_args`` go to both ``init`` calls. Returns (siège folder, serveur folder, token)."""
    hq, site = root / "siege", root / "magasin"
    hq.mkdir()
    site.mkdir()
    make_db(hq / "hq.db", "INSERT INTO articles VALUES (1, 'Café', '18.90');")
    make_db(site / "m.db", "INSERT INTO articles VALUES (10, 'Thé', '7.50');")
    done = synchro(
        "--config",
        "synchro.toml",
        "init",
        "--role",
        "siege",
        "--site",
        "SIEGE",
        "--db",
        "hq.db",
        "--port",
        str(free_port()),
        "--listen",
        "127.0.0.1",
        "--max-reception",
        "00:01:00",
        *init_args,
        cwd=hq,
    )
    assert done.returncode == 0, done.stderr
    added = synchro(
        "--config", "synchro.toml", "site", "add", "3615", "--host", "127.0.0.1", cwd=hq
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    done = synchro(
        "--config",
        "synchro.toml",
        "init",
        "--role",
        "serveur",
        "--site",
        "3615",
        "--db",
        "m.db",
        "--token",
        token,
        "--attempts",
        "30",
        "--retry-delay",
        "00:00:01",
        *init_args,
        cwd=site,
    )
    assert done.returncode == 0, done.stderr
    return hq, site, token


def cli_group(
    root: Path, sites: list[str], *, attempts: int = 4, retry_delay: str = "00:00:05"
) -> tuple[Path, dict[str, Path]]:
    """A Siège expecting ``sites`` (Nombre de serveurs = all of them) and one Serveur per
    code, set up with the CLI only; the Siège holds article 1, the sites nothing yet.
    Returns (siège folder, {code: serveur folder})."""
    hq = root / "siege"
    hq.mkdir()
    make_db(hq / "hq.db", "INSERT INTO articles VALUES (1, 'Café', '18.90');")
    done = synchro(
        "--config", "synchro.toml", "init", "--role", "siege", "--site", "SIEGE",
        "--db", "hq.db", "--port", str(free_port()), "--listen", "127.0.0.1",
        "--servers", str(len(sites)), "--max-reception", "00:02:00",
        cwd=hq,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folders: dict[str, Path] = {}
    for code in sites:
        added = synchro(
            "--config", "synchro.toml", "site", "add", code, "--host", "127.0.0.1", cwd=hq
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1]
        folder = root / code
        folder.mkdir()
        make_db(folder / "m.db")
        done = synchro(
            "--config", "synchro.toml", "init", "--role", "serveur", "--site", code,
            "--db", "m.db", "--token", token, "--attempts", str(attempts),
            "--retry-delay", retry_delay,
            cwd=folder,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        folders[code] = folder
    return hq, folders


def cli_nodes(
    root: Path, connections: Mapping[str, str], edit: Callable[[Path], None] | None = None
) -> dict[str, Path]:
    """The Siège (``SIEGE``) expecting the other nodes of ``connections`` (code → its
    database), each set up with the CLI only in ``root/<code>``; ``edit``, when given, is
    then called with each node's settings file (a setting written by hand)."""
    folders = {code: root / code for code in connections}
    for folder in folders.values():
        folder.mkdir()
    sites = [code for code in connections if code != "SIEGE"]
    _cli_init(
        folders["SIEGE"], "--role", "siege", "--site", "SIEGE", "--db", connections["SIEGE"],
        "--port", str(free_port()), "--listen", "127.0.0.1", "--servers", str(len(sites)),
        "--max-reception", "00:02:00",
    )  # fmt: skip
    for code in sites:
        added = synchro(
            "--config", "synchro.toml", "site", "add", code, "--host", "127.0.0.1",
            cwd=folders["SIEGE"],
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1]
        _cli_init(
            folders[code], "--role", "serveur", "--site", code, "--db", connections[code],
            "--token", token, "--attempts", "20", "--retry-delay", "00:00:01",
        )  # fmt: skip
    if edit is not None:
        for folder in folders.values():
            edit(folder / "synchro.toml")
    return folders


def _cli_init(folder: Path, *args: str) -> None:
    done = synchro("--config", "synchro.toml", "init", *args, cwd=folder)
    assert done.returncode == 0, done.stderr + done.stdout


def cli_round(folders: Mapping[str, Path]) -> dict[str, tuple[str, str]]:
    """Every node of ``cli_nodes`` runs ``sync`` at once (the Siège lingers for the
    others); each must end 0. Their outputs (stdout, stderr) by code."""
    procs = {
        code: popen("--config", "synchro.toml", "sync", *(["--linger", "600"] * (code == "SIEGE")),
                    cwd=folder)
        for code, folder in folders.items()
    }  # fmt: skip
    try:
        outs = {code: p.communicate(timeout=120) for code, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = {code: outs[code] for code, p in procs.items() if p.returncode != 0}
    assert not failed, failed
    return outs
