"""``kill -9`` during an apply whose database is PostgreSQL or MariaDB, and its session
cut on the server (rule 3 on the server back ends; ``test_faults_kill.py`` proves whole
rounds on SQLite files).

A real ``python`` process imports an establishment's package into a Siège whose database
is on the server (through its ODBC driver) and dies by SIGKILL: at each named point of
the apply (``SYNCHRO_KILL_AT``), or by PID from this test at a moment it does not choose,
while the rows are being written. A new process is started on the same state and
database, as the service would be. Or the server ends the import's session once it has
written rows (a server restart, a cut network): the import undoes the apply whole and
makes it again on a new connection (``engine.lost``), or fails and is started again.
Then the database holds exactly the establishment's rows (its checksums, read through
the server's driver, equal the sender's), the package
counts as applied once (a third import is a ``duplicate``), the Siège's change log holds
each row once (nothing applied twice), no intent is left and nothing is quarantined.
Before the restart, what the killed process left is all or nothing: the server rolled
back the transaction it never committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import Db, checksums, make_node

TESTS = Path(__file__).resolve().parent
ROWS = 3000  # six batches of 500: ``apply.batch:3`` dies in the middle
PID_ROWS = 20000  # ~1 s of writing (0.2 s for 3,000): the kill by PID lands inside it
WAIT_S = 120.0
DDL = {
    "sqlite": "CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(200), amount DECIMAL(12,2),"
    " day DATE, at DATETIME, data BLOB)",
    "postgresql": "CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(200), amount"
    " DECIMAL(12,2), day DATE, at TIMESTAMP(6), data BYTEA)",
    "mysql": "CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(200), amount DECIMAL(12,2),"
    " day DATE, at DATETIME(6), data LONGBLOB) ENGINE=InnoDB",
}
TEXTS = ("Zoé à l'hôtel", "日本語のテキスト", "Ελληνικά 😀", "עברית", "x\ty\nz", "")

# The child: the Siège's node imports one package and says how, or which error (and its
# kind, what the Rapport and the email say) it met.
CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from engine_helpers import make_node
from pathlib import Path
from synchro.errors import kind_of
node = make_node(Path(sys.argv[2]), "HQ", sys.argv[3], hq=True)
try:
    result = node.import_package(Path(sys.argv[4]))
    done = {"status": result.status, "rows": result.stats.rows, "attempts": result.attempts}
    print(json.dumps(done))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "kind": str(kind_of(exc)), "text": str(exc)}))
finally:
    node.close()
"""

POINTS = (
    "node.import.intent",  # intent recorded, nothing written
    "apply.batch:3",  # two batches written, uncommitted
    "node.apply.before_db_commit",  # every row written, uncommitted
    "node.apply.db_committed",  # the database committed, the state not yet
    "node.apply.committed",  # both committed, the conflicts journal not yet dropped
)


def sample_rows(count: int) -> list[tuple[object, ...]]:
    rng = random.Random(13)
    rows: list[tuple[object, ...]] = []
    for i in range(1, count + 1):
        year = rng.choice((1, 1899, 1969, 1970, 2038, 2039, 9999))
        rows.append(
            (
                i,
                f"{TEXTS[i % len(TEXTS)]} n°{i}",
                Decimal(rng.randint(-(10**9), 10**9)).scaleb(-2),
                dt.date(year, 1 + i % 12, 1 + i % 28).isoformat(),
                dt.datetime(
                    year, 1 + i % 12, 1 + i % 28, i % 24, i % 60, i % 59, i % 1000 * 997
                ).isoformat(" "),
                bytes([0, i % 256, 0, 255]) * (i % 5),
            )
        )
    return rows


def package(tmp_path: Path, count: int) -> tuple[Path, str]:
    """An establishment on a SQLite file exports ``count`` rows: (package, its database)."""
    tmp_path = tmp_path / f"site{count}"
    tmp_path.mkdir()
    db = tmp_path / "site.db"
    conn = sqlite3.connect(db)
    conn.execute(DDL["sqlite"])
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
        [(r[0], r[1], float(str(r[2])), *r[3:]) for r in sample_rows(count)],
    )
    conn.commit()
    conn.close()
    node = make_node(tmp_path, "S1", str(db))
    try:
        path = node.export().path
    finally:
        node.close()
    return path, str(db)


def start(home: Path, connection: str, path: Path, kill: str = "") -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHRO_KILL_AT"}
    if kill:
        env["SYNCHRO_KILL_AT"] = kill
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(TESTS), str(home), connection, str(path)],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the import hung for {WAIT_S:.0f} s: {err[-2000:]}")
    return proc.returncode, out, err


def while_applying(home: Path, proc: subprocess.Popen[str], rng: random.Random) -> None:
    """Return once the intent is recorded (the rows are being written), after a delay this
    test does not tie to any step."""
    state = home / "node-HQ" / "state.db"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
            try:
                found = conn.execute("SELECT count(*) FROM intent").fetchone()[0]
            except sqlite3.OperationalError:  # the schema is not there yet
                found = 0
            finally:
                conn.close()
            if found:
                time.sleep(rng.uniform(0.0, 0.05))
                return
        time.sleep(0.005)


def cut_while_writing(backend: Backend, proc: subprocess.Popen[str]) -> int:
    """Once a session of the import holds a transaction that has written rows, end it on
    the server (as a server restart or a cut network would): how many were ended."""
    if backend.dialect == "postgresql":
        writing = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        end = "SELECT pg_terminate_backend(?)"
    else:
        writing = (
            "SELECT p.id FROM information_schema.PROCESSLIST p JOIN"
            " information_schema.INNODB_TRX x ON x.trx_mysql_thread_id = p.id"
            " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() AND x.trx_rows_modified > 0"
        )
        end = "KILL CONNECTION ?"
    # InnoDB refreshes what INNODB_TRX shows only when it was not read for 0.1 s: a
    # quicker poll would keep reading the cache of before the import's transaction.
    pause = 0.005 if backend.dialect == "postgresql" else 0.12
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        sessions = backend.query(writing)
        if sessions:
            for (ident,) in sessions:
                backend.execute(end.replace("?", str(int(ident))))
            return len(sessions)
        time.sleep(pause)
    return 0


def log_count(home: Path) -> int:
    conn = sqlite3.connect(home / "node-HQ" / "state.db")
    try:
        return int(conn.execute("SELECT count(*) FROM changelog WHERE tbl = 't'").fetchone()[0])
    finally:
        conn.close()


def one_kill(
    make_backend: Callable[[str], Backend],
    name: str,
    root: Path,
    path: Path,
    expected: dict[str, tuple[int, str]],
    kill: str,
) -> list[str]:
    """One scenario on a fresh server database; what went wrong (empty: nothing)."""
    rows = expected["t"][0]
    backend = make_backend(name)
    backend.execute(DDL[backend.dialect])
    home = root / kill.replace(":", "-").replace(".", "-")
    home.mkdir()
    if kill == "pid":
        proc = start(home, backend.connection, path)
        while_applying(home, proc, random.Random(7))
        os.kill(proc.pid, signal.SIGKILL)
    elif kill == "cut":
        proc = start(home, backend.connection, path)
        if not cut_while_writing(backend, proc):
            return [f"{kill}: the import ended before any of its sessions was cut"]
    else:
        proc = start(home, backend.connection, path, kill)
    code, out, err = finish(proc)
    problems = []
    said = json.loads(out or "{}")
    if kill == "cut" and (code != 0 or not ("error" in said or said.get("attempts", 1) > 1)):
        # the cut import fails, or connects again and makes the apply again (engine.lost)
        return [f"{kill}: the import's cut went unnoticed ({code}, {said}): {err[-1500:]}"]
    if kill != "cut" and code != -signal.SIGKILL:
        return [f"{kill}: not killed (exit {code}): {err[-1500:]}"]
    with Db(backend.connection) as db:
        left = len(db.rows("t"))
    if left not in (0, rows):
        problems.append(f"{kill}: the killed import left {left} rows (all or nothing)")
    code, out, err = finish(start(home, backend.connection, path))
    if code != 0 or "error" in json.loads(out or "{}"):
        return [*problems, f"{kill}: the restarted import failed ({code}): {out} {err[-2000:]}"]
    if json.loads(out)["status"] not in ("applied", "duplicate"):
        problems.append(f"{kill}: restarted import said {out.strip()}")
    if checksums(backend.connection, ["t"]) != expected:
        problems.append(f"{kill}: the server database differs from the establishment's")
    if log_count(home) != rows:
        problems.append(f"{kill}: change log holds {log_count(home)} entries for {rows} rows")
    node = make_node(home, "HQ", backend.connection, hq=True)
    try:
        if node.state.intent() is not None:
            problems.append(f"{kill}: an intent is left")
        if node.state.quarantined():
            problems.append(f"{kill}: quarantined {node.state.quarantined()}")
        again = node.import_package(path)
        if again.status != "duplicate":
            problems.append(f"{kill}: a third import said {again.status}")
    finally:
        node.close()
    return problems


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
def test_a_siege_on_a_server_database_survives_kill_9_anywhere_in_the_apply(
    name: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    problems: list[str] = []
    for count, kills in ((ROWS, POINTS), (PID_ROWS, ("pid", "cut"))):
        path, site_db = package(tmp_path, count)
        expected = checksums(site_db, ["t"])
        assert expected["t"][0] == count
        for kill in kills:
            problems += one_kill(make_backend, name, tmp_path, path, expected, kill)
    assert problems == [], "\n".join(problems)
