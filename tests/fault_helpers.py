"""The fault-injection suite's world: a Siège and two establishments (A, B) set up with the
CLI only, each in its own folder, run as real ``python -m synchro`` processes on loopback.

``build_template(root)`` does the slow part once (init, site add, a first round that every
node applies); ``World.copy(template, folder)`` gives each test its own copy on a new port.
A process is killed either by itself (``SYNCHRO_KILL_AT``, see ``synchro/faults.py``) or by
PID from the test. ``scenario()`` runs one round with one kill, restarts the victim, and
says how the group recovered: that is what the tests assert and ``bench_faults`` tabulates.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pair_helpers
from ftp_proxy import LISTEN, FTPProxy, free_port_range
from rounds_helpers import sql

SITES = ("A", "B")
NODES = ("SIEGE", *SITES)
BASE = {"SIEGE": 0, "A": 1_000_000, "B": 2_000_000}  # each node's own range of ids
SCHEMA = """
CREATE TABLE clients(id INTEGER PRIMARY KEY, nom TEXT NOT NULL, note TEXT);
CREATE TABLE commandes(id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(id), montant DECIMAL(10,2), etat TEXT);
"""
TABLES = ("clients", "commandes")
# rows inserted by each node per round, and the size of their notes (A's package is big
# enough for several 256 KiB upload blocks; the Siège's for several download records)
INSERTS = {"SIEGE": (40, 4000), "A": (130, 3000), "B": (30, 100)}
ATTEMPTS, RETRY_DELAY = 45, "00:00:01"  # a budget (45 s) longer than a reception (40 s)
WAIT_S = 90.0  # the longest any process of a scenario may run (a hang fails the test)


def free_port(host: str = "127.0.0.1") -> int:
    return pair_helpers.free_port(host)


def table_rows(db: Path) -> dict[str, set[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {t: set(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    finally:
        conn.close()


def mutations(node: str, round_no: int) -> str:
    """What ``node`` changes in round ``round_no``: inserts (children referring to new and
    shared parents), updates and deletes of its own rows of the round before. Ids never
    overlap between nodes, so the expected result is the same SQL applied in any order."""
    count, size = INSERTS[node]
    rng = random.Random(f"{node}-{round_no}")
    base = BASE[node] + round_no * 1000
    prev = BASE[node] + (round_no - 1) * 1000
    lines = []
    for i in range(count):
        note = base64.b64encode(rng.randbytes(size * 3 // 4)).decode()
        lines.append(f"INSERT INTO clients VALUES ({base + i}, '{node} {round_no} {i}', '{note}');")
    for i in range(count // 2):
        parent = base + i if i % 3 else 1 + i % 20  # some refer to the Siège's first clients
        lines.append(
            f"INSERT INTO commandes VALUES ({base + i}, {parent}, '{i}.{round_no:02d}', 'neuve');"
        )
    if round_no > 1:
        lines.append(
            f"UPDATE clients SET nom = nom || ' maj' WHERE id BETWEEN {prev} AND "
            f"{prev + 999} AND id % 3 = 0;"
        )
        lines.append(
            f"UPDATE commandes SET etat = 'livrée' WHERE id BETWEEN {prev} AND "
            f"{prev + 999} AND id % 2 = 1;"
        )
        lines.append(
            f"DELETE FROM commandes WHERE id BETWEEN {prev} AND {prev + 999} AND id % 4 = 0;"
        )
        lines.append(
            f"DELETE FROM clients WHERE id BETWEEN {prev + count // 2} AND "
            f"{prev + 999} AND id % 5 = 0;"
        )
    return "\n".join(lines)


def seed_sql() -> str:
    return "\n".join(
        f"INSERT INTO clients VALUES ({i}, 'client {i}', 'note {i}');" for i in range(1, 101)
    )


@dataclasses.dataclass
class Proc:
    node: str
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log: Path
    kill: str = ""
    started: float = dataclasses.field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.node} {' '.join(self.args)} still running after {timeout} s:\n"
                + self.output()[-3000:]
            ) from None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class World:
    """One copy of the group: folders ``SIEGE``, ``A``, ``B`` under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []
        self._logs = 0
        self.port = 0
        self.listen = "127.0.0.1"
        self.prefix: dict[str, list[str]] = {}  # a node's command prefix (ip netns exec ...)
        self.env: dict[str, str] = {}  # more environment for every process started

    # -- set-up ---------------------------------------------------------------------------

    @classmethod
    def copy(cls, template: Path, root: Path, *, hq_address: str = "127.0.0.1") -> World:
        shutil.copytree(template, root, ignore=shutil.ignore_patterns("*.lock*", "logs"))
        world = cls(root)
        world.set_port(free_port(), hq_address=hq_address)
        return world

    def set_port(
        self,
        port: int,
        *,
        hq_address: str = "127.0.0.1",
        passive: tuple[int, int] | None = None,
        listen: str = "127.0.0.1",
        addresses: dict[str, str] | None = None,
    ) -> None:
        """The Siège on ``listen:port`` (passive ports ``passive``); each site dials
        ``addresses[site]`` (default ``hq_address``) on the same port."""
        from synchro.config.store import load_config, save_config

        hq_file = self.folder("SIEGE") / "synchro.toml"
        hq = load_config(hq_file)
        hq_settings = dataclasses.replace(
            hq.hq, port=port, passive_ports=passive, listen_address=listen
        )
        save_config(dataclasses.replace(hq, hq=hq_settings), hq_file)
        for site in SITES:
            path = self.folder(site) / "synchro.toml"
            config = load_config(path)
            host = (addresses or {}).get(site, hq_address)
            s = dataclasses.replace(config.site_settings, hq_port=port, hq_address=host)
            save_config(dataclasses.replace(config, site_settings=s), path)
        self.port = port
        self.listen = listen

    def set_attempts(self, site: str, attempts: int) -> None:
        """``Nombre de tentatives`` of one establishment."""
        from synchro.config.store import load_config, save_config

        path = self.folder(site) / "synchro.toml"
        config = load_config(path)
        s = dataclasses.replace(config.site_settings, attempts=attempts)
        save_config(dataclasses.replace(config, site_settings=s), path)

    def folder(self, node: str) -> Path:
        return self.root / node

    def db(self, node: str) -> Path:
        return self.folder(node) / "data.db"

    def reports_db(self, node: str) -> Path:
        return self.folder(node) / "data" / "reports.db"

    # -- processes ------------------------------------------------------------------------

    def start(self, node: str, *args: str, kill: str = "") -> Proc:
        env = {k: v for k, v in os.environ.items() if k != "SYNCHRO_KILL_AT"}
        env["LANG"] = "C.UTF-8"
        env.update(self.env)
        if kill:
            env["SYNCHRO_KILL_AT"] = kill
        self._logs += 1
        log = self.root / f"{self._logs:03d}-{node}-{args[0]}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [
                    *self.prefix.get(node, []),
                    sys.executable,
                    "-m",
                    "synchro",
                    "--config",
                    "synchro.toml",
                    *args,
                ],
                cwd=self.folder(node),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        proc = Proc(node, args, popen, log, kill)
        self.procs.append(proc)
        return proc

    def siege(
        self, mode: str, *, kill: str = "", linger: float = 30, open_round: bool = True
    ) -> Proc:
        """The Siège in ``mode``: ``sync`` (a MANUELLE round, then linger) or ``serve``
        (the service; a round is opened with the control channel, as MANUELLE does)."""
        if mode == "sync":
            proc = self.start("SIEGE", "sync", "--linger", str(linger), kill=kill)
            self._listening(proc)
            return proc
        proc = self.start("SIEGE", "serve", kill=kill)
        self._listening(proc)
        if open_round:
            self.open_round(proc)
        return proc

    def _listening(self, proc: Proc) -> None:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if proc.popen.poll() is not None:
                return  # died (a kill point at start-up): the caller sees it
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.listen, self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise AssertionError("the Siège does not listen:\n" + proc.output()[-3000:])

    def open_round(self, serve: Proc) -> None:
        """MANUELLE against a running ``serve`` (its control channel)."""
        end = time.monotonic() + 20
        while time.monotonic() < end and serve.popen.poll() is None:
            done = subprocess.run(
                [sys.executable, "-m", "synchro", "--config", "synchro.toml", "sync"],
                cwd=self.folder("SIEGE"),
                capture_output=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode == 0 and b"demand" in done.stdout:
                return
            time.sleep(0.2)

    def stop(self, proc: Proc) -> int:
        """SIGTERM (a ``serve``'s clean stop) once it listens to it, then wait."""
        control = self.folder(proc.node) / "data" / "synchro.lock.control"
        end = time.monotonic() + 20
        while time.monotonic() < end and proc.popen.poll() is None:
            with contextlib.suppress(OSError):
                if control.stat().st_mtime >= proc.started:
                    break
            time.sleep(0.05)
        time.sleep(0.3)  # the handlers are set just after the control file is written
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
        return stop_wait(proc, 30)

    def close(self) -> None:
        """Every process this world started and that still runs is killed (by PID)."""
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(10)

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rounds ---------------------------------------------------------------------------

    def mutate(self, round_no: int) -> None:
        for node in NODES:
            sql(self.db(node), self.mutations(node, round_no))

    def mutations(self, node: str, round_no: int) -> str:
        """The SQL of ``node``'s changes in round ``round_no`` (a subclass may add rows)."""
        return mutations(node, round_no)

    def model(self, template: Path) -> Path:
        """An SQLite file of the template's converged tables (``expected_after``'s start)."""
        return template / "SIEGE" / "data.db"

    def round(self, mode: str) -> dict[str, int]:
        """One whole round, nothing killed: the return codes by node."""
        hq = self.siege(mode)
        sites = [self.start(s, "sync") for s in SITES]
        codes = {p.node: p.wait() for p in sites}
        codes["SIEGE"] = hq.wait() if mode == "sync" else self.stop(hq)
        return codes

    # -- checks ---------------------------------------------------------------------------

    def rows(self, node: str) -> dict[str, set[tuple[Any, ...]]]:
        """``node``'s tables, read from its SQLite file."""
        return table_rows(self.db(node))

    def differences(self, expected: dict[str, set[tuple[Any, ...]]]) -> tuple[int, int, list[str]]:
        """(rows lost, rows extra, nodes that differ) against the expected tables."""
        lost = extra = 0
        differ = []
        for node in NODES:
            got = self.rows(node)
            node_lost = sum(len(expected[t] - got[t]) for t in TABLES)
            node_extra = sum(len(got[t] - expected[t]) for t in TABLES)
            if node_lost or node_extra:
                differ.append(f"{node}: {node_lost} manquantes, {node_extra} en trop")
            lost += node_lost
            extra += node_extra
        return lost, extra, differ

    def round_ended(self) -> dt.datetime | None:
        """When the Siège's first round of this world ended (its ``sync`` ends with it)."""
        conn = sqlite3.connect(self.reports_db("SIEGE"))
        try:
            rows = conn.execute(
                "SELECT ended FROM runs WHERE kind = 'round' AND ended IS NOT NULL "
                "AND COALESCE(error, '') NOT LIKE 'interrompu%' ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        return dt.datetime.fromisoformat(rows[-1][0]) if rows else None

    def running_rows(self, node: str) -> list[tuple[int, str]]:
        return [(i, k) for i, k, s, _e in self.report(node) if s == "En cours..."]

    def report(self, node: str) -> list[tuple[int, str, str, str]]:
        path = self.reports_db(node)
        if not path.exists():
            return []
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT id, kind, state, error FROM runs ORDER BY id").fetchall()
        finally:
            conn.close()


def _delivered_or_ended(proc: Proc, timeout: float = WAIT_S) -> None:
    """Until ``proc`` (a site's ``sync``) said it delivered, or ended (killed there)."""
    end = time.monotonic() + timeout
    while proc.popen.poll() is None and "Données envoyées au siège" not in proc.output():
        if time.monotonic() > end:
            raise AssertionError(f"{proc.node} never delivered:\n{proc.output()[-2000:]}")
        time.sleep(0.05)


def expected_after(world: World, template: Path, round_no: int) -> dict[str, set[tuple[Any, ...]]]:
    """The template's (converged) tables with every node's changes of ``round_no``."""
    model = world.root / "expected.db"
    shutil.copyfile(world.model(template), model)
    for node in NODES:
        sql(model, world.mutations(node, round_no))
    return table_rows(model)


def expected_rounds(
    world: World, template: Path, rounds: Iterable[int]
) -> dict[str, set[tuple[Any, ...]]]:
    """The template's tables with every node's changes of ``rounds``, in order."""
    model = world.root / "expected-n.db"
    shutil.copyfile(world.model(template), model)
    for round_no in rounds:
        for node in NODES:
            sql(model, world.mutations(node, round_no))
    return table_rows(model)


def run_cli(folder: Path, *args: str, python: str = sys.executable) -> str:
    """``synchro --config synchro.toml ARGS`` run in ``folder`` as an administrator would;
    it must succeed. Its output."""
    done = subprocess.run(
        [python, "-m", "synchro", "--config", "synchro.toml", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def init_group(folder: Callable[[str], Path], dbs: dict[str, str], python: str) -> int:
    """``synchro init`` of each node in ``folder(node)`` on its database ``dbs[node]``, as
    an administrator would: the Siège, then each establishment enrolled with its token.
    The Siège's port."""
    port = free_port()
    hq = ("--port", str(port), "--listen", "127.0.0.1", "--servers", str(len(SITES)))
    siege = ("--role", "siege", "--site", "SIEGE", "--db", dbs["SIEGE"], *hq)
    run_cli(folder("SIEGE"), "init", *siege, "--max-reception", "00:00:40", python=python)
    for site in SITES:
        added = run_cli(folder("SIEGE"), "site", "add", site, "--host", "127.0.0.1", python=python)
        token = added.strip().splitlines()[-1]
        serveur = ("--role", "serveur", "--site", site, "--db", dbs[site], "--token", token)
        tries = ("--attempts", str(ATTEMPTS), "--retry-delay", RETRY_DELAY)
        run_cli(folder(site), "init", *serveur, *tries, python=python)
    return port


def build_template(root: Path, python: str = sys.executable) -> Path:
    """The group set up with the CLI (as an administrator would) after a first round."""
    root.mkdir(parents=True, exist_ok=True)
    for node in NODES:
        root.joinpath(node).mkdir()
        sql(root / node / "data.db", SCHEMA + (seed_sql() if node == "SIEGE" else ""))

    port = init_group(lambda node: root / node, {n: "data.db" for n in NODES}, python)
    world = World(root)
    world.port = port
    with world:
        world.mutate(1)
        codes = world.round("sync")
    assert codes == {"A": 0, "B": 0, "SIEGE": 0}, [p.output()[-2000:] for p in world.procs]
    sums = {n: table_rows(world.db(n)) for n in NODES}
    assert sums["A"] == sums["B"] == sums["SIEGE"], "the template's first round did not converge"
    for log in root.glob("*.log"):
        log.unlink()
    return root


@dataclasses.dataclass
class Outcome:
    """What one scenario did and how the group recovered."""

    name: str
    killed: bool = False
    restarted_ok: bool = False
    others_ok: bool = True
    recovered_in: int = 0  # 1: that round (with the restart), 2: the next round, 0: never
    lost: int = 0
    extra: int = 0
    differ: list[str] = dataclasses.field(default_factory=list)
    interrupted_closed: bool = True  # every row the killed process left open now says so
    left_running: list[str] = dataclasses.field(default_factory=list)
    recovery_s: float = 0.0  # from the kill to the end of the restarted round
    cuts: int = 0  # data connections the proxy cut
    control_cuts: int = 0  # control connections the proxy cut
    notes: list[str] = dataclasses.field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        if not self.killed:
            out.append("kill point never reached")
        if not self.recovered_in:
            out.append("nodes still differ after the next round: " + "; ".join(self.differ))
        if self.lost or self.extra:
            out.append(f"{self.lost} rows lost, {self.extra} rows extra")
        if not self.interrupted_closed:
            out.append("the killed run's row is not closed as 'interrompu'")
        if self.left_running:
            out.append("rows left 'En cours...': " + ", ".join(self.left_running))
        if not self.restarted_ok:
            out.append("the restarted process did not end OK")
        if not self.others_ok:
            out.append("a process that was not killed did not end OK")
        return out + self.notes if out else []


Trigger = Callable[[World, dict[str, Proc]], None]


STUCK_AFTER_S = 8.0  # a process not ended that long after its SIGTERM has its stacks dumped
PY_SPY = Path(sys.executable).with_name("py-spy")


def stacks(pid: int) -> str:
    """Every thread's stack of the live process ``pid`` by ``py-spy dump`` (when installed
    beside the interpreter: ``.venv/bin/pip install py-spy``), or why there is none."""
    if not PY_SPY.exists():
        return f"(no stacks: {PY_SPY} is not installed)"
    try:
        done = subprocess.run(
            [str(PY_SPY), "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stacks: py-spy {type(exc).__name__}: {exc})"
    return (done.stdout + done.stderr).strip()


def stop_wait(proc: Proc, timeout: float) -> int:
    """Wait for ``proc`` after its SIGTERM. Not ended ``STUCK_AFTER_S`` later: its stacks
    (``stacks``) are kept beside its log (``<log>.stacks.txt``) and, should it not end
    within ``timeout``, lead the failure's message: a hang is caught with where it waits."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        return proc.popen.wait(min(STUCK_AFTER_S, timeout))
    dump = stacks(proc.pid)
    proc.log.with_name(proc.log.name + ".stacks.txt").write_text(dump, encoding="utf-8")
    try:
        return proc.popen.wait(max(0.0, timeout - STUCK_AFTER_S))
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"{proc.node} {' '.join(proc.args)} still running {timeout} s after SIGTERM; "
            f"its stacks {STUCK_AFTER_S:.0f} s after it:\n{dump[:6000]}\n--- its log:\n"
            + proc.output()[-1500:]
        ) from None


def is_stopped(proc: Proc) -> bool:
    """Whether ``proc`` is stopped now (it stopped itself: ``SYNCHRO_STOP_AT``)."""
    try:
        text = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] == "T"


def sigkill(popen: subprocess.Popen[bytes]) -> bool:
    """SIGKILL a process started here, by PID; True when the kill landed, i.e. its exit
    status says SIGKILL: it may end on its own between ``poll`` and ``kill`` (the caller's
    thread waits for the GIL meanwhile; a process already exiting ignores SIGKILL)."""
    if popen.poll() is not None:  # reaped: ended on its own
        return False
    os.kill(popen.pid, signal.SIGKILL)  # not reaped yet: the pid is still its own
    return popen.wait() == -signal.SIGKILL


def scenario(
    world: World,
    template: Path,
    mode: str,
    victim: str,
    kill: str = "",
    *,
    trigger: Trigger | None = None,
    name: str = "",
    again: Callable[[Proc], bool] | None = None,
) -> Outcome:
    """Round 2 with ``victim`` killed (at the failpoint ``kill``, or by ``trigger`` which
    kills a process by PID), the victim restarted at once, then a catch-up round if the
    nodes still differ. ``again``: given the restarted victim, kills it too (True when it
    did), and it is restarted once more. Nothing is asserted here: the Outcome says what
    happened."""
    out = Outcome(name or f"{mode}:{victim}:{kill}")
    world.mutate(2)
    expected = expected_after(world, template, 2)
    procs: dict[str, Proc] = {}
    procs["SIEGE"] = world.siege(mode, kill=kill if victim == "SIEGE" else "")
    waits = kill == "site.wait" and victim in SITES
    for site in sorted(SITES, key=lambda s: s != victim) if waits else SITES:
        procs[site] = world.start(site, "sync", kill=kill if victim == site else "")
        if waits and site == victim:  # it must wait for its answer: the others deliver after
            _delivered_or_ended(procs[site])
    if trigger is not None:
        trigger(world, procs)
    first = procs[victim]
    code = first.wait()
    killed_at = time.monotonic()
    out.killed = code == -signal.SIGKILL
    if not out.killed:
        out.notes.append(f"{victim} ended {code} without being killed:\n{first.output()[-1500:]}")
    left_open = world.running_rows(victim)
    first_open = left_open
    # a site restarted after the Siège's ``sync`` ended (it had everything it waited for)
    # cannot reach it: that restart is judged by the next round instead
    restarted_at = dt.datetime.now()
    _restart(world, mode, victim, procs)
    last_open = left_open  # what the last killed process left open
    if again is not None and again(procs[victim]):
        out.notes.append("killed again while it recovered")
        seen = {i for i, _k in left_open}
        last_open = [r for r in world.running_rows(victim) if r[0] not in seen]
        left_open = left_open + last_open
        restarted_at = dt.datetime.now()
        _restart(world, mode, victim, procs)
    codes = {s: procs[s].wait() for s in SITES}
    codes["SIEGE"] = procs["SIEGE"].wait() if mode == "sync" else world.stop(procs["SIEGE"])
    out.recovery_s = time.monotonic() - killed_at
    out.restarted_ok = codes[victim] == 0
    if victim == "SIEGE" and mode == "sync" and (not last_open or not first_open):
        # a killed ``sync`` had made its round final: running it again opens a new round
        # that no establishment delivers to, which ends Echec « sans données » (so does a
        # third run after a second killed in that new round: kill2 seed 342)
        nobody = "sans données" in procs["SIEGE"].output()
        out.restarted_ok = codes["SIEGE"] == 0 or (codes["SIEGE"] == 1 and nobody)
        out.notes.append("the killed Siège had finished its round: its re-run is a new round")
    out.others_ok = all(c == 0 for n, c in codes.items() if n != victim)
    for n, c in codes.items():
        if c != 0:
            out.notes.append(f"{n} ended {c}:\n{procs[n].output()[-1500:]}")
    out.lost, out.extra, out.differ = world.differences(expected)
    out.recovered_in = 0 if out.differ else 1
    ended = world.round_ended()
    # refused: nothing listened when it tried, i.e. the Siège's ``sync`` had ended (the
    # Siège is not the victim here, so that is the only way)
    refused = victim != "SIEGE" and "refuse la connexion" in procs[victim].output()
    siege_gone = (
        mode == "sync"
        and victim != "SIEGE"
        and ended is not None
        and (ended <= restarted_at + dt.timedelta(seconds=0.5) or refused)
    )
    later = siege_gone and not out.restarted_ok
    if out.differ or later:
        next_codes = world.round(mode)
        out.lost, out.extra, out.differ = world.differences(expected)
        out.recovered_in = 0 if out.differ else (out.recovered_in or 2)
        if later:
            out.restarted_ok = all(c == 0 for c in next_codes.values())
            out.notes.append(
                f"{victim} restarted after the Siège's sync ended; next round: {next_codes}"
            )
    final = {i: (s, e) for i, _k, s, e in world.report(victim)}
    out.interrupted_closed = all(
        final.get(i, ("", ""))[0] == "Echec" and "interrompu" in final[i][1] for i, _ in left_open
    )
    out.left_running = [f"{n}#{i}" for n in NODES for i, _k in world.running_rows(n)]
    return out


def _restart(world: World, mode: str, victim: str, procs: dict[str, Proc]) -> None:
    """The killed ``victim`` started again, into ``procs``."""
    if victim == "SIEGE":  # a restarted service just carries on; MANUELLE is run again
        procs["SIEGE"] = world.siege(mode, open_round=False)
    else:
        procs[victim] = world.start(victim, "sync")


def two_kills_scenario(
    world: World,
    template: Path,
    mode: str,
    delays: dict[str, float],
    landed: dict[str, bool],
    *,
    name: str = "",
) -> Outcome:
    """Round 2 with each node of ``delays`` (two different ones) SIGKILLed by PID that many
    seconds after every node started, each from its own thread, and started again at once;
    ``landed`` tells which kills found their victim running. Judged as ``scenario`` judges
    one victim: a Siège's ``sync`` killed after its round was final may end its re-run
    Echec « sans données »; a site restarted after the Siège's ``sync`` had ended is judged
    by the next round."""
    out = Outcome(name or f"{mode}:{'+'.join(delays)}", killed=True, restarted_ok=True)
    world.mutate(2)
    expected = expected_after(world, template, 2)
    procs = {"SIEGE": world.siege(mode)}
    for site in SITES:
        procs[site] = world.start(site, "sync")
    started = time.monotonic()
    restarting = threading.Lock()  # World.start is not thread-safe (its log numbers)
    left_open: dict[str, list[tuple[int, str]]] = {}
    restarted_at: dict[str, dt.datetime] = {}
    killed_at: list[float] = []

    def kill(node: str) -> None:
        time.sleep(max(0.0, started + delays[node] - time.monotonic()))
        landed[node] = sigkill(procs[node].popen)
        if landed[node]:
            killed_at.append(time.monotonic())
            left_open[node] = world.running_rows(node)
            with restarting:
                restarted_at[node] = dt.datetime.now()
                _restart(world, mode, node, procs)

    threads = [threading.Thread(target=kill, args=(n,), daemon=True) for n in delays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = {s: procs[s].wait() for s in SITES}
    codes["SIEGE"] = procs["SIEGE"].wait() if mode == "sync" else world.stop(procs["SIEGE"])
    out.recovery_s = time.monotonic() - min(killed_at, default=started)
    ended = world.round_ended()
    half = dt.timedelta(seconds=0.5)  # as ``scenario`` allows
    later = []  # sites restarted after the Siège's ``sync`` had ended: the next round judges
    for n, c in codes.items():
        if c == 0:
            continue
        nobody = "sans données" in procs[n].output()
        if n == "SIEGE" and mode == "sync" and c == 1 and not left_open.get(n, [0]) and nobody:
            out.notes.append("the killed Siège had finished its round: its re-run is a new round")
            continue
        refused = "refuse la connexion" in procs[n].output()
        gone = n in restarted_at and ended is not None and ended <= restarted_at[n] + half
        if n in left_open and mode == "sync" and (refused or gone):
            later.append(n)
            continue
        out.notes.append(f"{n} ended {c}:\n{procs[n].output()[-1500:]}")
        if n in left_open:
            out.restarted_ok = False
        else:
            out.others_ok = False
    out.lost, out.extra, out.differ = world.differences(expected)
    out.recovered_in = 0 if out.differ else 1
    if out.differ or later:
        next_codes = world.round(mode)
        out.lost, out.extra, out.differ = world.differences(expected)
        out.recovered_in = 0 if out.differ else (out.recovered_in or 2)
        if later:
            out.restarted_ok = out.restarted_ok and all(c == 0 for c in next_codes.values())
            out.notes.append(f"{later} restarted after the Siège's sync ended; next: {next_codes}")
    for node, rows in left_open.items():
        final = {i: (s, e) for i, _k, s, e in world.report(node)}
        out.interrupted_closed = out.interrupted_closed and all(
            final.get(i, ("", ""))[0] == "Echec" and "interrompu" in final[i][1] for i, _ in rows
        )
    out.left_running = [f"{n}#{i}" for n in NODES for i, _k in world.running_rows(n)]
    return out


# -- the kill points of the suite: (Siège mode, victim, SYNCHRO_KILL_AT) --------------------

SITE_POINTS = (
    "site.run.start",
    "capture.table",
    "capture.deletes",
    "package.before_rename",
    "node.export.written",
    "node.export.committed",
    "client.send@1",  # after the first 256 KiB block of the upload (of two)
    "client.upload.sent",  # every byte sent, not yet verified nor renamed
    "client.upload.renamed",
    "site.uploaded",
    "site.wait",
    "client.recv@65536",  # the download a quarter done
    "client.download.verified",
    "site.downloaded",
    "node.import.intent",
    "apply.batch",
    "node.apply.db_committed",  # the database committed, the state not yet
    "site.applied",  # applied, not yet acknowledged
    "site.ack.written",
    "site.ack.sent",
    "site.report",
)
SITE_POINTS_SERVE = (  # the same against a Siège on ``serve``: a sample
    "package.before_rename",
    "client.send@1",
    "client.upload.renamed",
    "client.recv@65536",
    "node.import.intent",
    "node.apply.db_committed",
    "site.ack.written",
    "site.report",
)
HQ_POINTS = (
    "hq.round.opened",
    "server.receive@100000",  # A's upload a third received
    "server.renamed",  # A's package complete, the Siège not yet told
    "hq.round.closing",
    "capture.table",  # the Siège's own capture
    "node.export.committed",
    "hq.exported",
    "hq.apply.before",
    "node.import.intent",
    "apply.batch",
    "node.apply.before_db_commit",
    "node.apply.db_committed",
    "hq.apply.before_archive",
    "hq.apply.done",
    "hq.publish.before",
    "node.publish.segments",  # the changes encoded once in the spill file, no package yet
    "node.publish.written",
    "node.publish.recorded",  # the Siège knows it offered the package; the site cannot see it
    "node.publish.linked",
    "node.publish.compacting",  # the change log's superseded entries dropped, not committed
    "hq.report.round",
    "hq.round.closed",
    "server.sent",  # a site's package sent whole, not yet verified by the site
)
HQ_POINTS_SERVE = (
    "hq.round.opened",
    "server.receive@100000",
    "server.renamed",
    "hq.apply.before",
    "node.apply.db_committed",
    "node.publish.recorded",
    "node.publish.linked",
    "hq.report.round",
    "server.sent",
)


def kill_points() -> list[tuple[str, str, str]]:
    return (
        [("sync", "A", p) for p in SITE_POINTS]
        + [("serve", "A", p) for p in SITE_POINTS_SERVE]
        + [("sync", "SIEGE", p) for p in HQ_POINTS]
        + [("serve", "SIEGE", p) for p in HQ_POINTS_SERVE]
    )


# -- cut links --------------------------------------------------------------------------------


P = TypeVar("P", bound=FTPProxy)


class CuttingProxy(FTPProxy):
    """``FTPProxy`` that cuts every data connection reaching ``at`` relayed bytes, ``times``
    times in all (small transfers such as listings never reach it). ``arm()`` may be called
    while transfers run: the next data connection takes the new setting."""

    def __init__(self, control_port: int, data_ports: tuple[int, int]) -> None:
        super().__init__(control_port, data_ports)
        self.at = 0
        self.times = 0
        self.armed: list[int] = []  # every ``at`` armed so far (an upload's, a download's)

    def arm(self, at: int, times: int = 1) -> None:
        with self._lock:
            self.at, self.times = at, times
            if at:  # (0: disarmed)
                self.armed.append(at)

    def cuts(self) -> int:
        """Data connections cut, by this arming or an earlier one."""
        return sum(1 for n in list(self.data_bytes) if n in self.armed)

    @property  # type: ignore[override]
    def _cut_after(self) -> int | None:  # read by FTPProxy for each new data connection
        made = sum(1 for n in list(self.data_bytes) if n == self.at)
        return self.at if self.at and made < self.times else None

    @_cut_after.setter
    def _cut_after(self, value: int | None) -> None:
        pass  # FTPProxy's one-shot reset: the count of cuts decides instead


def proxied(world: World, kind: type[P] = CuttingProxy) -> P:  # type: ignore[assignment]
    """Site A dials the Siège through a proxy of ``kind`` (cutting; ``stop_helpers``'
    stalling one) on 127.0.0.2 (same port numbers); B dials it directly. Returns the
    started proxy (the caller stops it).

    A range found free may be taken before the proxy binds it (scenarios run side by
    side; CI once failed so, « Address already in use »): another range is taken then."""
    for _ in range(10):
        low, high = free_port_range(9)
        proxy = kind(low, (low + 1, high))
        try:
            proxy.start()
        except OSError:
            proxy.stop()
            continue
        world.set_port(low, passive=(low + 1, high), addresses={"A": LISTEN, "B": "127.0.0.1"})
        return proxy
    raise RuntimeError("no port range on 127.0.0.2 could be bound for the proxy")


def when_file(path_glob: Path, action: Callable[[], None], timeout: float = 60) -> None:
    """Run ``action`` (in a thread) as soon as a new file matches ``path_glob``."""

    before = set(path_glob.parent.glob(path_glob.name))  # only a file that appears later

    def watch() -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if set(path_glob.parent.glob(path_glob.name)) - before:
                action()
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()


def cut_scenario(
    world: World,
    template: Path,
    mode: str,
    proxy: CuttingProxy | None,
    *,
    upload: tuple[int, int] | None = None,
    download: tuple[int, int] | None = None,
    name: str = "",
    control: tuple[int, ...] = (),
) -> Outcome:
    """Round 2 with A's upload and/or download cut (``(at bytes, times)``) and its control
    connection cut at the ``control`` offsets (``FTPProxy.cut_control_at``): every process
    must end OK in that round, with the expected rows everywhere."""
    out = Outcome(name or f"{mode}:cut", killed=True, restarted_ok=True)
    world.mutate(2)
    expected = expected_after(world, template, 2)
    if upload and proxy:
        proxy.arm(*upload)
    if control and proxy:
        proxy.cut_control_at(*control)
    hq = world.siege(mode)
    if download and proxy:
        archived = world.folder("SIEGE") / "data" / "packages" / "archive" / "A" / "A-*.pkg"
        when_file(archived, lambda: proxy.arm(*download))  # after A's upload
    started = time.monotonic()
    procs = {s: world.start(s, "sync") for s in SITES}
    codes = {s: p.wait() for s, p in procs.items()}
    codes["SIEGE"] = hq.wait() if mode == "sync" else world.stop(hq)
    out.recovery_s = time.monotonic() - started
    wanted = (upload or (0, 0))[1] + (download or (0, 0))[1]
    if proxy and proxy.cuts() < min(wanted, 1):
        out.notes.append(f"no cut happened (data connections: {proxy.data_bytes})")
    # A applied the Siège's answer, the Siège's ``sync`` took A's ack and ended OK, and A
    # never heard so (its session cut before the reply): as for a site restarted after the
    # Siège's ``sync`` ended (``scenario``), the next round judges A (cutctl seed 360)
    unconfirmed = (
        mode == "sync"
        and codes["A"] != 0
        and codes["SIEGE"] == 0
        and "Données du siège appliquées" in procs["A"].output()
    )
    out.others_ok = all(c == 0 for n, c in codes.items() if not (unconfirmed and n == "A"))
    for n, c in codes.items():
        if c != 0:
            out.notes.append(f"{n} ended {c}:\n{(procs.get(n) or hq).output()[-1500:]}")
    if unconfirmed:
        if proxy:  # nothing more is cut
            proxy.cut_control_at()
            proxy.arm(0, 0)
        next_codes = world.round(mode)
        out.others_ok = out.others_ok and all(c == 0 for c in next_codes.values())
        out.notes.append(f"A's ack unconfirmed, the Siège's sync gone; next round: {next_codes}")
    out.lost, out.extra, out.differ = world.differences(expected)
    out.recovered_in = 0 if out.differ else 1
    out.left_running = [f"{n}#{i}" for n in NODES for i, _k in world.running_rows(n)]
    return out


# -- a slow link: network namespace + veth + tc ------------------------------------------------

NETNS_NET = "10.213.77"  # link n uses 10.213.77.(4n+1) here and .(4n+2) in its namespace


def netns_problem() -> str:
    """Why a network namespace with a rate-limited veth link cannot be made here ('' if it
    can): it needs root, ``ip`` and ``tc``."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"'{tool}' (iproute2) is not installed"
    return ""


def _ip(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")


@dataclasses.dataclass
class SlowLink:
    ns: str
    host_if: str
    peer_if: str
    host: str  # this side's address (the Siège listens there)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns]

    def down_for(self, seconds: float) -> None:
        """The link goes down (a cable pulled) for ``seconds``, then up again."""
        _ip("ip", "link", "set", self.host_if, "down")
        time.sleep(seconds)
        _ip("ip", "link", "set", self.host_if, "up")


@contextlib.contextmanager
def slow_link(rate: str = "2mbit", index: int = 0) -> Iterator[SlowLink]:
    """A namespace joined to this one by a veth pair limited to ``rate`` both ways
    (``tc tbf``); ``index`` (0..60) tells links made at the same time apart. Everything
    it creates is deleted on exit (deleting the namespace deletes the pair)."""
    tag = f"{os.getpid() % 10000}x{index}"
    host, peer = f"{NETNS_NET}.{4 * index + 1}", f"{NETNS_NET}.{4 * index + 2}"
    link = SlowLink(f"synfx{tag}", f"sfx{tag}a", f"sfx{tag}b", host)
    _ip("ip", "netns", "add", link.ns)
    try:
        _ip("ip", "link", "add", link.host_if, "type", "veth", "peer", "name", link.peer_if)
        _ip("ip", "link", "set", link.peer_if, "netns", link.ns)
        _ip("ip", "addr", "add", f"{host}/30", "dev", link.host_if)
        _ip("ip", "link", "set", link.host_if, "up")
        inside = ("ip", "netns", "exec", link.ns)
        _ip(*inside, "ip", "addr", "add", f"{peer}/30", "dev", link.peer_if)
        _ip(*inside, "ip", "link", "set", link.peer_if, "up")
        _ip(*inside, "ip", "link", "set", "lo", "up")
        tbf = ("root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms")
        _ip("tc", "qdisc", "add", "dev", link.host_if, *tbf)
        _ip(*inside, "tc", "qdisc", "add", "dev", link.peer_if, *tbf)
        yield link
    finally:
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            _ip("ip", "link", "del", link.host_if)
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            _ip("ip", "netns", "del", link.ns)


def behind_slow_link(world: World, link: SlowLink) -> None:
    """A runs in the namespace and dials the Siège across the slow link; the Siège listens
    on its end of the link; B dials the same address from here (no limit)."""
    world.set_port(free_port(link.host), listen=link.host, hq_address=link.host)
    world.prefix["A"] = link.prefix()


# -- the table of issue 12, point 5 ---------------------------------------------------------


def summary(kills: list[Outcome], cuts: list[Outcome]) -> str:
    every = kills + cuts
    identical = sum(1 for o in every if o.recovered_in)
    same_round = sum(1 for o in every if o.recovered_in == 1)
    worst = max((o.recovery_s for o in every), default=0.0)
    rows = [
        ("kill points tried", f"{len(kills)} ({sum(o.killed for o in kills)} reached)"),
        ("cuts tried", f"{len(cuts)} scenarios, {sum(o.cuts for o in cuts)} connections cut"),
        ("rows lost", str(sum(o.lost for o in every))),
        ("rows duplicated (extra)", str(sum(o.extra for o in every))),
        (
            "nodes identical after recovery",
            f"{identical}/{len(every)} scenarios ({same_round} within the same round)",
        ),
        ("scenarios with no problem", f"{sum(1 for o in every if not o.problems())}/{len(every)}"),
        ("worst recovery time", f"{worst:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def line(o: Outcome) -> str:
    problems = o.problems()
    state = "ok" if not problems else "FAIL: " + problems[0].splitlines()[0][:80]
    rec = {1: "same round", 2: "next round", 0: "never"}[o.recovered_in]
    return f"{o.name:44} {rec:10} {o.recovery_s:6.1f} s  {state}"


# -- many scenarios at once ------------------------------------------------------------------

Job = Callable[[Path], Outcome]


def run_all(jobs: dict[str, Job], root: Path, workers: int = 4) -> dict[str, Outcome]:
    """Every job in its own folder under ``root``, ``workers`` at a time (they mostly wait
    on their processes). A job that raises gives an Outcome that says so."""

    def safe(name: str, job: Job, folder: Path) -> Outcome:
        try:
            return job(folder)
        except Exception as exc:  # its first line kept: a long message fills the tail
            out = Outcome(name)
            first = f"{type(exc).__name__}: {str(exc)[:300]}"
            out.notes.append(
                f"the scenario itself failed: {first}\n{traceback.format_exc()[-3000:]}"
            )
            return out

    root.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {
            name: pool.submit(safe, name, job, root / f"s{n:03d}")
            for n, (name, job) in enumerate(jobs.items())
        }
        return {name: f.result() for name, f in futures.items()}


def kill_job(
    template: Path, mode: str, victim: str, point: str, env: dict[str, str] | None = None
) -> Job:
    """``env``: more environment for every process of the scenario."""

    def job(folder: Path) -> Outcome:
        with World.copy(template, folder) as world:
            world.env.update(env or {})
            return scenario(
                world, template, mode, victim, point, name=kill_name(mode, victim, point)
            )

    return job


def kill_name(mode: str, victim: str, point: str) -> str:
    return f"{mode}-{victim}-{point}"


def cut_job(
    template: Path,
    mode: str,
    upload: tuple[int, int] | None,
    download: tuple[int, int] | None,
    name: str,
    attempts: int = 0,
    control: tuple[int, ...] = (),
) -> Job:
    """A's upload and/or download cut, its control connection at the ``control`` offsets;
    ``attempts``: A's ``Nombre de tentatives``."""

    def job(folder: Path) -> Outcome:
        with World.copy(template, folder) as world:
            if attempts:
                world.set_attempts("A", attempts)
            proxy = proxied(world)
            try:
                out = cut_scenario(
                    world,
                    template,
                    mode,
                    proxy,
                    upload=upload,
                    download=download,
                    name=name,
                    control=control,
                )
            finally:
                proxy.stop()
            out.cuts = proxy.cuts()
            out.control_cuts = len(proxy.control_cuts)
            return out

    return job


def slow_link_job(template: Path, mode: str, stall: float, index: int, name: str) -> Job:
    """A behind a 2 Mbit/s link; with ``stall`` the link goes down that long while A
    downloads the Siège's package."""

    def job(folder: Path) -> Outcome:
        with slow_link("2mbit", index) as link, World.copy(template, folder) as world:
            behind_slow_link(world, link)
            if stall:
                archived = world.folder("SIEGE") / "data" / "packages" / "archive" / "A" / "A-*.pkg"
                when_file(archived, lambda: link.down_for(stall))
            return cut_scenario(world, template, mode, None, name=name)

    return job


def print_table(request: Any, outcomes: dict[str, Outcome], kind: str) -> None:
    """At the end of a module: one line per scenario and the summary, on pytest's terminal
    (shown with ``-q`` too), so a CI log carries the figures."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not outcomes:
        return
    every = list(outcomes.values())
    reporter.write_line("")
    reporter.write_line(f"fault suite ({kind}):")
    for o in every:
        reporter.write_line("  " + line(o))
    kills, cuts = (every, []) if kind == "kills" else ([], every)
    for row in summary(kills, cuts).splitlines():
        reporter.write_line("  " + row)
