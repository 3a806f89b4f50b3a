"""A round with many establishments on loopback: wall time, the Siège's peak memory, failures.

    .venv/bin/python bench/bench_round.py [--sites 50[,200]] [--rows 10000] [--dir DIR]

Each establishment is its own process (``synchro sync``, the real CLI) with its own SQLite
file of ``--rows`` sales; the Siège is one process (``synchro sync``: FTPS server + one
round). Everyone ends with everyone's rows, so each establishment applies
(sites - 1) × rows rows. A one-establishment round is measured first in the same run as the
baseline; the table prints the ratio of the big round to it. Peak memory comes from the
kernel (``os.wait4`` rusage of each process).

``--sites 50,200`` runs a big round of each size in the same run and prints the ratio of
their figures per establishment (issue 15 point 3: ≤ 1.3): the wall time, which on one
machine holds every establishment's work (each applies (sites - 1) × rows rows, so their
sum grows as sites²), and the Siège's CPU time, the part a real group shares.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from synchro.config.model import Config, HQSettings, Role, SiteSettings
from synchro.config.store import save_config
from synchro.db import open_database
from synchro.engine.checksum import checksums
from synchro.enrolment import enrol_site, join_with_token
from synchro.platform.paths import paths_beside

HERE = Path(__file__).resolve().parent
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
    """The Siège enrols every establishment (``synchro site add``: account, group key,
    certificate, token) and each joins with its token (``synchro init --token``)."""
    port = free_port()
    hq_dir = root / "siege"
    hq_paths = paths_beside(hq_dir / "synchro.toml").ensure()
    make_db(hq_dir / "hq.db", "HQ", 0)
    hq = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(
            servers=sites,
            max_reception=dt.timedelta(minutes=30),
            listen_address="127.0.0.1",
            port=port,
        ),
    )
    hq = dataclasses.replace(hq, database=dataclasses.replace(hq.database, connection="hq.db"))
    tokens = {}
    for code in (f"S{n:03d}" for n in range(sites)):
        hq, tokens[code] = enrol_site(hq, hq_paths, code, "127.0.0.1")
    site_dirs = []
    for code, token in tokens.items():
        folder = root / code
        paths = paths_beside(folder / "synchro.toml").ensure()
        make_db(folder / "db.db", code, rows)
        settings = SiteSettings(
            attempts=360, retry_delay=dt.timedelta(seconds=10), auto_sync=False, timeout_s=120
        )
        config = join_with_token(Config(role=Role.SITE, site_settings=settings), token)
        database = dataclasses.replace(config.database, connection="db.db")
        save_config(dataclasses.replace(config, database=database), paths.config_file)
        site_dirs.append(folder)
    return hq_dir, site_dirs


def start(
    folder: Path, *extra: str, trace: Path | None = None, spy: Path | None = None
) -> subprocess.Popen[bytes]:
    """``synchro sync`` in ``folder``; under ``siege_trace.py`` when ``trace`` is given, under
    ``py-spy record`` (raw stacks into ``spy``, 200 samples a second) when ``spy`` is."""
    runner = ["-m", "synchro"] if trace is None else [str(HERE / "siege_trace.py"), str(trace)]
    command = [sys.executable, *runner, "--config", "synchro.toml", "sync", *extra]
    if spy is not None:
        py_spy = Path(sys.executable).with_name("py-spy")
        command = [str(py_spy), "record", "-r", "200", "--format", "raw", "-o", str(spy), "--"]
        command += [sys.executable, *runner, "--config", "synchro.toml", "sync", *extra]
    return subprocess.Popen(
        command,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def wait_rusage(proc: subprocess.Popen[bytes]) -> tuple[int, int, float]:
    """(exit status, peak RSS in kB, CPU seconds) of a child, from the kernel."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


class Watcher:
    """Samples a running process from ``/proc`` (Linux): peak open fds, threads and RSS."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid, self.every_s = pid, every_s
        self.fds = self.threads = self.rss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:  # ended (or not Linux)
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            self.fds = max(self.fds, fds)
            self.threads = max(self.threads, int(fields.get("Threads", "0")))
            self.rss_kb = max(self.rss_kb, int(fields.get("VmRSS", "0 kB").split()[0]))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def table_sums(db: Path) -> str:
    """The engine's per-table checksums of a database (count and sum of row digests)."""
    adapter = open_database(str(db))
    try:
        return json.dumps(checksums(adapter, adapter.tables()), sort_keys=True)
    finally:
        adapter.close()


def traffic(hq_dir: Path, site_dirs: list[Path]) -> tuple[float, float]:
    """Mean over the establishments of (bytes downloaded, rows in the Siège's package to
    them), from their own Rapport and the Siège's."""
    got = []
    for folder in site_dirs:
        db = paths_beside(folder / "synchro.toml").reports_db
        conn = sqlite3.connect(db)
        row = conn.execute(
            "SELECT bytes_received FROM runs WHERE kind = 'run' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        conn.close()
        got.append(row[0] if row else 0)
    conn = sqlite3.connect(paths_beside(hq_dir / "synchro.toml").reports_db)
    sent = [r[0] for r in conn.execute("SELECT rows_sent FROM runs WHERE kind = 'site-in-round'")]
    conn.close()
    return sum(got) / max(1, len(got)), sum(sent) / max(1, len(sent))


def stop_if_running(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to a child that has not exited yet, without reaping it.

    ``Popen.send_signal`` polls first, which reaps a child that already ended (the Siège's
    ``sync`` ends by itself once every establishment is served): ``os.wait4`` would then
    find no child. ``waitid`` with ``WNOWAIT`` looks without reaping. It is given a minute
    to take the last acks and end by itself (a SIGINT then made it exit 130: a failure).
    """
    end = time.monotonic() + 60  # it ends by itself once the last ack is in: let it
    while time.monotonic() < end:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)


def one_round(
    root: Path, sites: int, rows: int, trace: Path | None = None, spy: Path | None = None
) -> dict[str, float]:
    """One round; ``spy``: the first establishment runs under py-spy, its stacks there."""
    hq_dir, site_dirs = setup(root, sites, rows)
    hq = start(hq_dir, "--linger", "3600", trace=trace)  # stopped once every site is done
    watcher = Watcher(hq.pid)
    time.sleep(1.0)
    began = time.monotonic()
    procs = [start(folder, spy=spy if i == 0 else None) for i, folder in enumerate(site_dirs)]
    results = [wait_rusage(p) for p in procs]
    wall = time.monotonic() - began
    stop_if_running(hq)  # ends the linger: the Siège stops cleanly
    hq_status, hq_rss, hq_cpu = wait_rusage(hq)
    watcher.stop()
    failures = sum(1 for code, _, _ in results if code != 0) + (hq_status != 0)
    sums = {
        table_sums(folder / ("hq.db" if folder == hq_dir else "db.db"))
        for folder in [hq_dir, *site_dirs]
    }
    down, sent = traffic(hq_dir, site_dirs)
    return {
        "sites": sites,
        "rows": rows,
        "wall": wall,
        "hq_mb": hq_rss / 1024,
        "site_mb": max(r for _, r, _ in results) / 1024,
        "failures": failures,
        "converged": float(len(sums) == 1),
        "hq_cpu": hq_cpu,
        "sites_cpu": sum(c for _, _, c in results),
        "fds": watcher.fds,
        "threads": watcher.threads,
        "down_kb": down / 1024,
        "sent_rows": sent,
        "others": (sites - 1) * rows,
    }


def split_line(small: dict[str, float], big: dict[str, float]) -> str:
    """An establishment's CPU as a fixed part and a part per row received (the others'
    rows), from the two rounds; and the cost per row the 1.3 ratio allows at that fixed
    part: (F + big × c) / (F + small × c) ≤ 1.3."""
    cpu_small = small["sites_cpu"] / small["sites"]
    cpu_big = big["sites_cpu"] / big["sites"]
    per_row = (cpu_big - cpu_small) / max(1.0, big["others"] - small["others"])
    fixed = cpu_small - small["others"] * per_row
    room = big["others"] - 1.3 * small["others"]
    allowed = 0.3 * fixed / room if room > 0 else float("nan")
    return (
        f"an establishment's CPU: {fixed:.3f} s fixed + {per_row * 1e6:.1f} µs per row "
        f"received; a ratio of 1.3 allows {allowed * 1e6:.1f} µs per row at that fixed part"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sites",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[50],
        help="establishments in the big round; several sizes: 50,200",
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dir", help="working folder (default: a temporary one, removed)")
    parser.add_argument(
        "--tracemalloc",
        metavar="FILE",
        help="run the big round's Siège under tracemalloc; its top allocations go to FILE",
    )
    parser.add_argument(
        "--spy",
        metavar="DIR",
        help="run the first establishment of each big round under py-spy (pip install "
        "py-spy); its raw stacks go to DIR/site-<sites>.txt (the CPU it reports then "
        "includes py-spy's)",
    )
    args = parser.parse_args()
    # The program ships compiled (PyInstaller): each establishment's start must not compile
    # every module again, as it does where PYTHONDONTWRITEBYTECODE is set (~0.15 CPU s a
    # start, 16 % of an establishment's samples at 200 sites).
    compileall.compile_dir(HERE.parent / "synchro", quiet=1)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="synchro-bench-"))
    trace = Path(args.tracemalloc).resolve() if args.tracemalloc else None
    try:
        base = one_round(root / "baseline", 1, args.rows)
        spies = Path(args.spy).resolve() if args.spy else None
        if spies is not None:
            spies.mkdir(parents=True, exist_ok=True)
        bigs = [
            one_round(
                root / f"round-{n}",
                n,
                args.rows,
                trace,
                spies / f"site-{n}.txt" if spies is not None else None,
            )
            for n in args.sites
        ]
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'round':10} {'sites':>5} {'rows/site':>9} {'wall s':>8} {'Siège MB':>9} "
        f"{'max site MB':>11} {'failures':>8} {'converged':>9}"
        f" {'s/site':>7} {'Siège cpu':>9} {'sites cpu':>9} {'fds':>5} {'threads':>7}"
        f" {'kB down/site':>12} {'rows down/site':>14} {'others rows':>11}"
        f" {'Siège cpu/site':>14} {'cpu/site':>8}"
    )
    for name, r in (("baseline", base), *(("big", big) for big in bigs)):
        print(
            f"{name:10} {r['sites']:>5.0f} {r['rows']:>9.0f} {r['wall']:>8.1f} "
            f"{r['hq_mb']:>9.1f} {r['site_mb']:>11.1f} {r['failures']:>8.0f} "
            f"{'yes' if r['converged'] else 'NO':>9}"
            f" {r['wall'] / r['sites']:>7.2f} {r['hq_cpu']:>9.1f} {r['sites_cpu']:>9.1f}"
            f" {r['fds']:>5.0f} {r['threads']:>7.0f} {r['down_kb']:>12.1f}"
            f" {r['sent_rows']:>14.0f} {r['others']:>11.0f}"
            f" {r['hq_cpu'] / r['sites']:>14.3f} {r['sites_cpu'] / r['sites']:>8.3f}"
        )
    big = bigs[-1]
    per_site = big["wall"] / base["wall"] / big["sites"]
    print(
        f"ratio wall(big) / wall(baseline) = {big['wall'] / base['wall']:.1f} "
        f"({per_site:.2f} per establishment)"
    )
    if len(bigs) > 1:
        small = bigs[0]

        def ratio(key: str) -> float:
            return (big[key] / big["sites"]) / (small[key] / small["sites"])

        print(
            f"per establishment, {big['sites']:.0f} sites / {small['sites']:.0f} sites "
            f"(target ≤ 1.3): wall {ratio('wall'):.2f}, Siège CPU {ratio('hq_cpu'):.2f}, "
            f"establishments' CPU {ratio('sites_cpu'):.2f}"
        )
        print(split_line(small, big))
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0 if all(b["failures"] == 0 and b["converged"] for b in bigs) else 1


if __name__ == "__main__":
    sys.exit(main())
