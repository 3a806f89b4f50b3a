"""Sync N rows of ``ventes`` from node A to node B on SQLite files, and time it.

Usage: ``.venv/bin/python bench/bench_sync.py [--rows 1000000] [--dir DIR] [--receiver siege]``

Every phase runs in a fresh subprocess (``--phase NAME``); the parent reads that child's own
peak memory with ``os.wait4`` (the per-child form of ``RUSAGE_CHILDREN.ru_maxrss``) and the
child reports the time of its work (interpreter start-up and imports excluded). Phases:

1. ``generate``  A's database with N rows (not a figure, just set-up);
2. ``raw``       the reference: stdlib sqlite3 ``SELECT *`` → ``executemany`` into a fresh
                 file, one transaction (DESIGN.md §5 measured ~350k rows/s);
3. ``export``    Node A: capture + package (full first pass);
4. ``import``    Node B: verify + apply; then ``import_other``: the same package into a
                 fresh database C of the other role (Siège / Serveur: issue 13 asks the
                 Siège's import to cost at most 1.2× a Serveur's);
5. ``mutate``    A: 1 % of rows updated, 0.1 % deleted (set-up);
6. ``export``/``import`` again: the incremental pass (full scan, few changes).

After each import the two tables are compared (``EXCEPT`` both ways): the bench fails if B
differs from A. Figures are printed as one table, then issue 13's targets, each OK or MISS
(exit status 1 when one is missed); nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE ventes(
    site TEXT NOT NULL,
    num INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    qte INTEGER NOT NULL,
    montant DECIMAL(12, 2) NOT NULL,
    quand DATETIME NOT NULL,
    note TEXT,
    PRIMARY KEY (site, num)
)
"""
SITES = 8
# Issue 13's targets (the CPU ratio is the figure; wall rates need an idle machine).
TARGET_ROWS_S = 150_000
TARGET_CPU_RATIO = 2.0
TARGET_SIEGE = 1.2  # Siège import / Serveur import of the same package, CPU
TARGET_INCREMENTAL = 0.2  # incremental pass / full pass, CPU end to end
TARGET_BYTES = 30  # package bytes per row (~100-byte rows)
TARGET_MB = 200


# ----------------------------------------------------------------------------- phases


def _rows(n: int) -> Any:
    """About 100 bytes per row once stored (key, amounts, a date and a short note)."""
    per_site = -(-n // SITES)
    for s in range(SITES):
        site = f"S{s + 1:03d}"
        for num in range(1, min(per_site, n - s * per_site) + 1):
            i = s * per_site + num
            yield (
                site,
                num,
                1 + i % 5000,
                1 + i % 9,
                f"{(i * 37) % 100000 / 100:.2f}",
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{i % 59:02d}",
                f"vente n°{i} caisse {i % 7} — client {i % 9973:05d}",
            )


def phase_generate(work: Path, rows: int) -> dict[str, Any]:
    for name in ("a.db", "b.db"):
        conn = sqlite3.connect(work / name)
        conn.execute(SCHEMA)
        conn.close()
    conn = sqlite3.connect(work / "a.db")
    with conn:
        conn.executemany("INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)", _rows(rows))
    conn.close()
    return {"bytes": (work / "a.db").stat().st_size}


def phase_raw(work: Path, rows: int) -> dict[str, Any]:
    """The reference copy: SELECT * → executemany into a fresh file, one transaction."""
    target = work / "raw.db"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    src = sqlite3.connect(work / "a.db")
    dst = sqlite3.connect(target)
    dst.execute(SCHEMA)
    with dst:
        dst.executemany(
            "INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)", src.execute("SELECT * FROM ventes")
        )
    src.close()
    dst.close()
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _node(work: Path, name: str, role: str) -> Any:
    from synchro.config.model import Config, Role
    from synchro.engine.nodes import build_node

    config = Config(role=Role(role), site=name.upper())
    return build_node(
        config,
        work / f"{name}.state",
        work / f"{name}-packages",
        connection=str(work / f"{name}.db"),
    )


def phase_export(work: Path, rows: int) -> dict[str, Any]:
    start = time.perf_counter()
    with _node(work, "a", "serveur") as node:
        result = node.export()
    seconds = time.perf_counter() - start
    (work / "last.pkg").write_text(str(result.path))
    counts = result.capture.counts["ventes"]
    return {
        "seconds": seconds,
        "rows": result.manifest.rows,
        "scanned": counts.scanned,
        "inserts": counts.inserts,
        "updates": counts.updates,
        "deletes": counts.deletes,
        "package_bytes": result.path.stat().st_size,
    }


def phase_import(work: Path, rows: int, receiver: str, name: str = "b") -> dict[str, Any]:
    path = Path((work / "last.pkg").read_text())
    if name != "b":  # a fresh database and state, with the schema only
        conn = sqlite3.connect(work / f"{name}.db")
        conn.execute(SCHEMA)
        conn.close()
    start = time.perf_counter()
    with _node(work, name, receiver) as node:
        result = node.import_package(path)
    seconds = time.perf_counter() - start
    if result.status != "applied":
        raise SystemExit(f"import: {result.status} {result.message}")
    return {"seconds": seconds, "rows": result.stats.rows, "unchanged": result.stats.unchanged}


def phase_mutate(work: Path, rows: int) -> dict[str, Any]:
    """1 % of the rows updated, 0.1 % deleted, spread over the whole table."""
    conn = sqlite3.connect(work / "a.db")
    with conn:
        updated = conn.execute(
            "UPDATE ventes SET qte = qte + 1, note = 'corrigée' WHERE num % 100 = 42"
        ).rowcount
        deleted = conn.execute("DELETE FROM ventes WHERE num % 1000 = 7").rowcount
    conn.close()
    return {"updated": updated, "deleted": deleted}


def phase_check(work: Path, rows: int) -> dict[str, Any]:
    conn = sqlite3.connect(work / "a.db")
    conn.execute("ATTACH ? AS b", (str(work / "b.db"),))
    diff = conn.execute(
        "SELECT (SELECT COUNT(*) FROM (SELECT * FROM main.ventes EXCEPT SELECT * FROM b.ventes)),"
        " (SELECT COUNT(*) FROM (SELECT * FROM b.ventes EXCEPT SELECT * FROM main.ventes)),"
        " (SELECT COUNT(*) FROM main.ventes), (SELECT COUNT(*) FROM b.ventes)"
    ).fetchone()
    conn.close()
    only_a, only_b, count_a, count_b = diff
    return {"same": only_a == only_b == 0 and count_a == count_b, "rows_a": count_a}


def phase_idle(work: Path, rows: int) -> dict[str, Any]:
    """Interpreter + engine imports only: the floor of every phase's peak memory."""
    import synchro.engine.node  # noqa: F401

    return {"seconds": 0.0}


# ----------------------------------------------------------------------------- driver


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its result plus its own peak RSS in MB."""
    extra = ["--dir", str(args.dir), "--rows", str(args.rows), "--receiver", args.receiver]
    if args.profile and name in ("export", "import"):
        extra += ["--profile-to", str(args.dir / f"{name}-{args.pass_no}.prof")]
    return run_script_phase(__file__, name, extra)


def run_script_phase(script: str, name: str, extra: list[str]) -> dict[str, Any]:
    """``script --phase name *extra`` in a fresh interpreter (the synchro beside this
    folder), as every bench script here runs its phases: the JSON of its last output line,
    with its own peak RSS (MB) and CPU seconds from the kernel, and the load average then."""
    cmd = [sys.executable, script, "--phase", name, *extra]
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))  # the synchro beside this script
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=root, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    result["cpu"] = usage.ru_utime + usage.ru_stime  # start-up included (~0.3 s)
    result["load"] = os.getloadavg()[0]  # other work on the machine slows the wall clock
    return result


def paired_runs(
    doc: str,
    phases: dict[str, Any],
    generate: Any,
    one_pair: Any,
    prefix: str,
) -> tuple[argparse.Namespace, list[float]] | None:
    """The frame of the scripts that compare two variants in pairs (``bench_parents``,
    ``bench_deferred``): ``--rows``, ``--pairs``; run as ``--phase NAME --dir D --name N``
    (by ``run_script_phase``) it prints the phase's JSON and returns None. Else
    ``generate(seed, rows)`` once, then for each pair a copy of the seed given to
    ``one_pair(work, args)``, which returns that pair's ratio; the arguments and ratios."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--changed", action="store_true")
    parser.add_argument("--phase", default="")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phases[args.phase](args.dir, args.name)))
        return None
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (base / "seed").mkdir()
        generate(base / "seed", args.rows)
        ratios = []
        for pair in range(args.pairs):
            work = base / f"p{pair}"
            shutil.copytree(base / "seed", work)
            ratios.append(one_pair(work, args))
            shutil.rmtree(work)
        return args, ratios
    finally:
        shutil.rmtree(base)


def child(args: argparse.Namespace) -> None:
    work: Path = args.dir
    phases = {
        "generate": phase_generate,
        "raw": phase_raw,
        "export": phase_export,
        "mutate": phase_mutate,
        "check": phase_check,
        "idle": phase_idle,
    }
    if args.phase == "import":
        work_fn: Any = lambda w, r: phase_import(w, r, args.receiver)  # noqa: E731
    elif args.phase == "import_other":
        other = "serveur" if args.receiver == "siege" else "siege"
        work_fn = lambda w, r: phase_import(w, r, other, name="c")  # noqa: E731
    else:
        work_fn = phases[args.phase]
    if args.profile_to:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
        result = profiler.runcall(work_fn, work, args.rows)
        profiler.dump_stats(args.profile_to)
    else:
        result = work_fn(work, args.rows)
    print(json.dumps(result))


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def report(args: argparse.Namespace, res: dict[str, dict[str, Any]]) -> bool:
    """Print the table; True when every target is met."""
    n = args.rows
    raw = res["raw"]
    lines: list[tuple[str, ...]] = []

    def add(label: str, rows: int, seconds: float, cpu: float, peak: float) -> None:
        lines.append(
            (
                label,
                f"{rows:,}",
                f"{seconds:,.2f}",
                _rate(rows, seconds),
                f"{cpu:,.2f}",
                f"{peak:,.0f}",
            )
        )

    title = "raw copy (sqlite3 SELECT * → executemany)"
    add(title, n, raw["seconds"], raw["cpu"], raw["peak_mb"])
    ok = True
    for p in ("1", "2"):
        exp, imp = res[f"export{p}"], res[f"import{p}"]
        title = "full" if p == "1" else "incremental"
        add(f"[{title}] export = capture + package", n, exp["seconds"], exp["cpu"], exp["peak_mb"])
        add(f"[{title}] import = verify + apply", n, imp["seconds"], imp["cpu"], imp["peak_mb"])
        total = exp["seconds"] + imp["seconds"]
        cpu = exp["cpu"] + imp["cpu"]
        add(f"[{title}] end to end", n, total, cpu, max(exp["peak_mb"], imp["peak_mb"]))
    head = ("phase", "rows", "seconds", "rows/s", "cpu s", "peak MB")
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "| " + " | ".join(cells) + " |"

    print(fmt(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in lines:
        print(fmt(row))
    e1, i1 = res["export1"], res["import1"]
    e2, i2 = res["export2"], res["import2"]
    total = e1["seconds"] + i1["seconds"]
    ratio = total / raw["seconds"]
    cpu_ratio = (e1["cpu"] + i1["cpu"]) / raw["cpu"]
    peak = max(r["peak_mb"] for k, r in res.items() if k[:6] in ("export", "import"))
    rate = n / total
    incremental = (e2["cpu"] + i2["cpu"]) / (e1["cpu"] + i1["cpu"])
    siege, serveur = (i1, res["other1"]) if args.receiver == "siege" else (res["other1"], i1)
    siege_ratio = siege["cpu"] / serveur["cpu"]
    per_row = e1["package_bytes"] / max(1, e1["rows"])
    print()
    print(
        f"rows {n:,}; database {res['generate']['bytes'] / n:.0f} bytes/row; package "
        f"{e1['package_bytes'] / max(1, e1['rows']):.1f} bytes/row; receiver {args.receiver}; "
        f"interpreter + imports alone {res['idle']['peak_mb']:.0f} MB; "
        f"load average up to {max(r['load'] for r in res.values()):.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"incremental pass: {e2['updates']:,} updates, {e2['deletes']:,} deletes, "
        f"{e2['inserts']:,} inserts in a package of {e2['package_bytes']:,} bytes; "
        f"capture scanned {e2['scanned']:,} rows at {_rate(e2['scanned'], e2['seconds'])} rows/s"
    )
    checks = [
        (f"end to end ≥ {TARGET_ROWS_S:,} rows/s", rate >= TARGET_ROWS_S, f"{rate:,.0f}"),
        (
            f"ratio to raw copy ≤ {TARGET_CPU_RATIO} in CPU time",
            cpu_ratio <= TARGET_CPU_RATIO,
            f"{ratio:.2f} (CPU time ratio {cpu_ratio:.2f})",
        ),
        (
            f"Siège import ≤ {TARGET_SIEGE}× a Serveur import of the same package",
            siege_ratio <= TARGET_SIEGE,
            f"{siege_ratio:.3f} ({siege['cpu']:.2f} / {serveur['cpu']:.2f} CPU s, "
            "start-up included)",
        ),
        (
            f"incremental pass ≤ {TARGET_INCREMENTAL}× the full pass (CPU)",
            incremental <= TARGET_INCREMENTAL,
            f"{incremental:.3f}",
        ),
        (f"package ≤ {TARGET_BYTES} bytes per row", per_row <= TARGET_BYTES, f"{per_row:.1f}"),
        (f"peak memory < {TARGET_MB} MB", peak < TARGET_MB, f"{peak:,.0f} MB"),
        ("B equals A after each pass", res["check1"]["same"] and res["check2"]["same"], ""),
    ]
    print()
    for label, good, value in checks:
        ok = ok and good
        print(f"  {'OK  ' if good else 'MISS'} {label}: {value}".rstrip(": "))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--receiver",
        choices=("siege", "serveur"),
        default="siege",
        help="role of node B (siege also writes its change log, as in a real round)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile export/import")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--pass-no", default="1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return 0
    own_dir = args.dir is None
    args.dir = Path(args.dir or tempfile.mkdtemp(prefix="synchro-bench-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    if any(args.dir.iterdir()):
        raise SystemExit(f"{args.dir} is not empty")
    try:
        res: dict[str, dict[str, Any]] = {}
        for key, phase in [
            ("idle", "idle"),
            ("generate", "generate"),
            ("raw", "raw"),
            ("export1", "export"),
            ("import1", "import"),
            ("other1", "import_other"),
            ("check1", "check"),
            ("mutate", "mutate"),
            ("export2", "export"),
            ("import2", "import"),
            ("check2", "check"),
        ]:
            args.pass_no = key[-1] if key[-1].isdigit() else "0"
            started = time.perf_counter()
            res[key] = run_phase(phase, args)
            print(f"  {key:9s} {time.perf_counter() - started:7.1f} s", file=sys.stderr)
        ok = report(args, res)
    finally:
        if own_dir and not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
