"""A round with many establishments on loopback: wall time, the Siège's peak memory, failures.

    .venv/bin/python bench/bench_round.py [--sites 50] [--rows 10000] [--dir DIR]

Each establishment is its own process (``synchro sync``, the real CLI) with its own SQLite
file of ``--rows`` sales; the Siège is one process (``synchro sync``: FTPS server + one
round). Everyone ends with everyone's rows, so each establishment applies
(sites - 1) × rows rows. A one-establishment round is measured first in the same run as the
baseline; the table prints the ratio of the big round to it. Peak memory comes from the
kernel (``os.wait4`` rusage of each process).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synchro.config.model import Config, HQSettings, Role, SiteAccount, SiteSettings
from synchro.config.passwords import hash_password
from synchro.config.store import save_config
from synchro.platform.paths import paths_beside
from synchro.transport.tls import ensure_certificate

SCHEMA = """CREATE TABLE ventes(site TEXT NOT NULL, num INTEGER NOT NULL, article_id INTEGER,
    qte INTEGER, montant DECIMAL(12,2), quand DATETIME, note TEXT, PRIMARY KEY(site, num));"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_db(path: Path, site: str, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                site,
                n,
                n % 500,
                1 + n % 5,
                f"{(n % 997) / 10:.2f}",
                f"2026-11-{1 + n % 28:02d} {n % 24:02d}:{n % 60:02d}:00",
                f"vente {n} ticket {site}",
            )
            for n in range(rows)
        ),
    )
    conn.commit()
    conn.close()


def setup(root: Path, sites: int, rows: int) -> tuple[Path, list[Path]]:
    port = free_port()
    codes = [f"S{n:03d}" for n in range(sites)]
    secrets = {c: f"secret-{c}-{os.urandom(8).hex()}" for c in codes}
    hq_dir = root / "siege"
    hq_paths = paths_beside(hq_dir / "synchro.toml").ensure()
    make_db(hq_dir / "hq.db", "HQ", 0)
    fingerprint = ensure_certificate(
        hq_paths.data_dir / "siege-cert.pem", hq_paths.data_dir / "siege-key.pem", "SIEGE"
    )
    hq = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(
            servers=sites,
            max_reception=dt.timedelta(minutes=30),
            listen_address="127.0.0.1",
            port=port,
            sites=tuple(SiteAccount(c, hash_password(s)) for c, s in secrets.items()),
        ),
    )
    save_config(
        dataclasses.replace(hq, database=dataclasses.replace(hq.database, connection="hq.db")),
        hq_paths.config_file,
    )
    site_dirs = []
    for code in codes:
        folder = root / code
        paths = paths_beside(folder / "synchro.toml").ensure()
        make_db(folder / "db.db", code, rows)
        config = Config(
            role=Role.SITE,
            site=code,
            site_settings=SiteSettings(
                attempts=360,
                retry_delay=dt.timedelta(seconds=10),
                hq_address="127.0.0.1",
                hq_port=port,
                secret=secrets[code],
                certificate_fingerprint=fingerprint,
                auto_sync=False,
                timeout_s=120,
            ),
        )
        save_config(
            dataclasses.replace(
                config, database=dataclasses.replace(config.database, connection="db.db")
            ),
            paths.config_file,
        )
        site_dirs.append(folder)
    return hq_dir, site_dirs


def start(folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "synchro", "--config", "synchro.toml", "sync", *extra],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def wait_rusage(proc: subprocess.Popen[bytes]) -> tuple[int, int]:
    """(exit status, peak RSS in kB) of a child, from the kernel."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def ended(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a child has exited, without reaping it (``os.wait4`` reads its rusage)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def stop_if_running(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to a child that has not exited yet, without reaping it.

    ``Popen.send_signal`` polls first, which reaps a child that already ended (the Siège's
    ``sync`` ends by itself once every establishment is served): ``os.wait4`` would then
    find no child. ``waitid`` with ``WNOWAIT`` looks without reaping.
    """
    if not ended(proc):
        os.kill(proc.pid, signal.SIGINT)


def one_round(root: Path, sites: int, rows: int) -> dict[str, float]:
    hq_dir, site_dirs = setup(root, sites, rows)
    hq = start(hq_dir, "--linger", "3600")  # stopped below once every site is done
    time.sleep(1.0)
    began = time.monotonic()
    procs = [start(folder) for folder in site_dirs]
    results = [wait_rusage(p) for p in procs]
    wall = time.monotonic() - began
    end_of_linger = time.monotonic() + 30  # it ends by itself once every ack is in
    while time.monotonic() < end_of_linger and not ended(hq):
        time.sleep(0.05)
    stop_if_running(hq)  # ends the linger: the Siège stops cleanly
    hq_status, hq_rss = wait_rusage(hq)
    failures = sum(1 for code, _ in results if code != 0) + (hq_status != 0)
    sums = set()
    for folder in [hq_dir, *site_dirs[:3]]:
        conn = sqlite3.connect(folder / ("hq.db" if folder == hq_dir else "db.db"))
        sums.add(conn.execute("SELECT COUNT(*), SUM(num), SUM(montant) FROM ventes").fetchone())
        conn.close()
    return {
        "sites": sites,
        "rows": rows,
        "wall": wall,
        "hq_mb": hq_rss / 1024,
        "site_mb": max(r for _, r in results) / 1024,
        "failures": failures,
        "converged": float(len(sums) == 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dir", help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="synchro-bench-"))
    try:
        base = one_round(root / "baseline", 1, args.rows)
        big = one_round(root / "round", args.sites, args.rows)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'round':10} {'sites':>5} {'rows/site':>9} {'wall s':>8} {'Siège MB':>9} "
        f"{'max site MB':>11} {'failures':>8} {'converged':>9}"
    )
    for name, r in (("baseline", base), ("big", big)):
        print(
            f"{name:10} {r['sites']:>5.0f} {r['rows']:>9.0f} {r['wall']:>8.1f} "
            f"{r['hq_mb']:>9.1f} {r['site_mb']:>11.1f} {r['failures']:>8.0f} "
            f"{'yes' if r['converged'] else 'NO':>9}"
        )
    per_site = big["wall"] / base["wall"] / big["sites"]
    print(
        f"ratio wall(big) / wall(baseline) = {big['wall'] / base['wall']:.1f} "
        f"({per_site:.2f} per establishment)"
    )
    return 0 if big["failures"] == 0 and big["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
