"""Issue 13 spike (a'): the columnar plane of ``spike_columnar.py`` with pyarrow only.

Usage: ``.venv/bin/python bench/spike_arrowonly.py [--rows 1000000] [--receiver siege]``

Needs ``pip install pyarrow adbc-driver-sqlite xxhash`` (spike only); without them it says
so and exits 0. polars is never imported: canonical text with Arrow kernels, XXH3-128 with
python-xxhash over the text column (the same digests as polars-hash), the diff as an Acero
full outer join, filters as Arrow expressions. Same job, same stages, same raw copy and
check as ``spike_columnar.py`` (whose helpers it reuses); digests travel in the package and
the Siège change log holds keys (the cheaper variant there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sync
import spike_columnar as sc

NEEDED = ("pyarrow", "adbc_driver_sqlite", "xxhash")
HASHES = ("h1", "h2")


def missing() -> list[str]:
    import importlib.util

    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def hashed(table: Any) -> Any:
    """``table`` plus h1/h2: the XXH3-128 digest of the canonical text as two int64 halves."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digests = sc.arrow_canonical_hash(table.select(list(sc.COLUMNS)))
    halves = pa.Array.from_buffers(pa.int64(), 2 * len(digests), digests.buffers())
    pairs = pa.FixedSizeListArray.from_arrays(halves, 2)
    table = table.append_column("h1", pc.list_element(pairs, 0))
    return table.append_column("h2", pc.list_element(pairs, 1))


def query(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    cur = conn.cursor()
    cur.execute(sql, parameters=params or None)
    table = cur.fetch_arrow_table()
    cur.close()
    return table


def snapshot_range(state: Any, low: Any, high: Any) -> Any:
    import pyarrow as pa

    where, params = [], ()
    if low is not None:
        where.append("(site, num) > (?, ?)")
        params += low
    if high is not None:
        where.append("(site, num) <= (?, ?)")
        params += high
    sql = "SELECT site, num, h1 AS h1_s, h2 AS h2_s FROM snapshot"
    sql += (" WHERE " + " AND ".join(where)) if where else ""
    types = pa.schema([("site", pa.string()), ("num", pa.int64())])
    types = types.append(pa.field("h1_s", pa.int64())).append(pa.field("h2_s", pa.int64()))
    table = query(state, sql, params)
    return table.cast(types) if table.num_rows else types.empty_table()


def diff(current: Any, snap: Any) -> tuple[Any, Any]:
    import pyarrow.compute as pc

    joined = current.join(snap, keys=list(sc.KEY), join_type="full outer")
    h1, h2, s1, s2 = (pc.field(n) for n in ("h1", "h2", "h1_s", "h2_s"))
    changed = joined.filter(h1.is_valid() & (s1.is_null() | (h1 != s1) | (h2 != s2)))
    deleted = joined.filter(h1.is_null()).select(list(sc.KEY))
    order = [("site", "ascending"), ("num", "ascending")]  # Acero's join does not keep order:
    changed = changed.sort_by(order)  # key order back, or zstd packs the keys far worse
    return changed.select([*sc.COLUMNS, *HASHES]), deleted.sort_by(order)


def with_op(table: Any, op: str) -> Any:
    import pyarrow as pa

    return table.append_column("op", pa.array([op] * table.num_rows, pa.string()))


def zeros(table: Any) -> Any:
    import pyarrow as pa

    for name in HASHES:
        table = table.append_column(name, pa.array([0] * table.num_rows, pa.int64()))
    return table


def phase_export(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa

    st = sc.Stages()
    seq = len(list(work.glob("a-*.arrows"))) + 1
    out = work / f"a-{seq}.arrows"
    counts = {"scanned": 0, "upserts": 0, "deletes": 0}
    start = time.perf_counter()
    with st("connect"):
        src, state = sc.adbc(work / "a.db"), sc.adbc(work / "a-state.db")
        sc.run_sql(state, sc.SNAPSHOT)
        cur = src.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(args.batch_rows)})
        cur.execute("SELECT * FROM ventes ORDER BY site, num")
        reader = cur.fetch_record_batch()
    options = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", 3))
    writer: Any = None
    schema: list[Any] = []
    low = None
    table = None

    def emit(changed: Any, deleted: Any) -> None:
        nonlocal writer
        if changed.num_rows == 0 and deleted.num_rows == 0:
            return
        with st("package (IPC + zstd)"):
            package = pa.concat_tables(
                [with_op(changed, "U"), with_op(deleted, "D")], promote_options="default"
            )
            if writer is None:  # large_string: its offsets pack ~4.5 B/row smaller with zstd
                large = [
                    f.with_type(pa.large_string()) if f.type == pa.string() else f
                    for f in package.schema
                ]
                schema.append(pa.schema(large))
                writer = pa.ipc.new_stream(str(out), schema[0], options=options)
            writer.write_table(package.cast(schema[0]))
        with st("snapshot stage (ingest)"):
            keys = with_op(changed.select([*sc.KEY, *HASHES]), "U")
            gone = with_op(zeros(deleted), "D")
            cur = state.cursor()
            cur.adbc_ingest(
                "snap_stage", pa.concat_tables([keys, gone]), "create_append", temporary=True
            )
            cur.close()
        counts["upserts"] += changed.num_rows
        counts["deletes"] += deleted.num_rows

    while True:
        with st("read (ADBC → Arrow)"):
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
        with st("canonical + hash"):
            table = hashed(pa.Table.from_batches([batch]))
        high = (table["site"][-1].as_py(), table["num"][-1].as_py())
        with st("diff (snapshot read + join)"):
            changed, deleted = diff(table, snapshot_range(state, low, high))
        counts["scanned"] += table.num_rows
        emit(changed, deleted)
        low = high
    with st("diff (snapshot read + join)"):
        tail = snapshot_range(state, low, None).select(list(sc.KEY))
    if table is not None:
        emit(table.select([*sc.COLUMNS, *HASHES]).slice(0, 0), tail)
    with st("package (IPC + zstd)"):
        if writer is not None:
            writer.close()
        digest = sc.file_sha256(out) if out.exists() else ""
        (work / "last.json").write_text(
            json.dumps({"path": str(out), "origin": "A", "seq": seq, "sha256": digest})
        )
    with st("snapshot update (set-wise)"):
        if writer is not None:
            sc.update_snapshot(state, "snap_stage")
        state.commit()
        src.close()
        state.close()
    size = out.stat().st_size if out.exists() else 0
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "stages": st.cpu, "package_bytes": size, **counts}


def split(batch: Any) -> tuple[Any, Any, int]:
    """One package batch: (the batch as a table, the rows to stage — upserts, then deletes
    with zero digests —, how many upserts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = pa.Table.from_batches([batch])
    op = pc.field("op")
    ups = frame.filter(op == "U")
    gone = zeros(frame.filter(op == "D").drop_columns(list(HASHES)))
    return frame, pa.concat_tables([ups, gone.select(ups.column_names)]), ups.num_rows


def checked_package(work: Path, st: Any) -> tuple[dict[str, Any], Path]:
    """The last package's manifest and path, its SHA-256 checked (a stage of its own)."""
    manifest = json.loads((work / "last.json").read_text())
    path = Path(manifest["path"])
    with st("verify package (SHA-256)"):
        if sc.file_sha256(path) != manifest["sha256"]:
            raise SystemExit("package damaged")
    return manifest, path


def phase_import(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa

    st = sc.Stages()
    start = time.perf_counter()
    manifest, path = checked_package(work, st)
    with st("connect"):
        dst, state = sc.adbc(work / "b.db"), sc.adbc(work / "b-state.db")
        sc.run_sql(state, sc.SNAPSHOT, sc.APPLIED)
    upserts = 0
    with pa.ipc.open_stream(pa.OSFile(str(path))) as reader:
        for batch in reader:
            with st("decompress + split"):
                frame, staged, ups = split(batch)
                upserts += ups
            with st("stage rows (ingest, temp table)"):
                cur = dst.cursor()
                cur.adbc_ingest("stage", staged, "create_append", temporary=True)
                cur.close()
            with st("stage snapshot (ingest, temp table)"):
                cur = state.cursor()
                keys = staged.select([*sc.KEY, *HASHES, "op"])
                cur.adbc_ingest("snap_stage", keys, "create_append", temporary=True)
                cur.close()
            if args.receiver == "siege":
                with st("Siège change log (ingest)"):
                    log = frame.select([*sc.KEY, "op"])
                    log = log.append_column("origin", pa.array(["A"] * log.num_rows))
                    log = log.append_column("seq", pa.array([manifest["seq"]] * log.num_rows))
                    cur = state.cursor()
                    cur.adbc_ingest("changelog", log, "create_append")
                    cur.close()
    with st("apply (set-based upsert + delete)"):
        sc.apply_staged(dst)
    with st("verified read-back (join + hash)"):
        checked = verify(dst, args.batch_rows)
        if checked != upserts:
            raise SystemExit(f"{upserts - checked} rows differ after apply")
    with st("commit user database"):
        sc.run_sql(dst, "DROP TABLE temp.stage")
        dst.commit()
        dst.close()
    with st("snapshot update (set-wise) + applied mark"):
        sc.update_snapshot(state, "temp.snap_stage")
        cur = state.cursor()
        cur.execute("INSERT INTO applied VALUES (?, ?)", parameters=("A", manifest["seq"]))
        cur.close()
        state.commit()
        state.close()
    return {"seconds": time.perf_counter() - start, "stages": st.cpu, "rows": upserts}


def verify(dst: Any, batch_rows: int) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    cur = dst.cursor()
    cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
    cur.execute(
        "SELECT s.h1 AS sh1, s.h2 AS sh2, v.* FROM temp.stage s "
        "JOIN ventes v USING (site, num) WHERE s.op = 'U'"
    )
    good = 0
    for batch in cur.fetch_record_batch():
        t = hashed(pa.Table.from_batches([batch]))
        same = pc.and_(pc.equal(t["h1"], t["sh1"]), pc.equal(t["h2"], t["sh2"]))
        good += pc.sum(same.cast("int64")).as_py() or 0
    cur.execute(
        "SELECT COUNT(*) FROM temp.stage s JOIN ventes v USING (site, num) WHERE s.op = 'D'"
    )
    left = cur.fetchone()[0]
    cur.close()
    return int(good) - int(left)


def _stdlib(path: Path) -> Any:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    return conn


def _rows_of(table: Any) -> Any:
    """A table's rows as Python tuples (what stdlib ``executemany`` binds)."""
    return zip(*[column.to_pylist() for column in table.columns], strict=True)


def phase_import_stdlib(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same import with the state database (snapshot, change log) touched through
    stdlib ``sqlite3``, as the product's is, and the user's database through stdlib too
    (``--apply stdlib``: ADBC's driver is a second copy of SQLite in the process, so it may
    not open a file a stdlib connection of the process has open) or through ADBC alone
    (``--apply mixed``: the product would close its own connection to that file first).
    Arrow still carries the package, the digests and the comparison; through stdlib the
    rows reach SQLite and come back as Python values."""
    user_adbc = args.apply == "mixed"
    import pyarrow as pa

    st = sc.Stages()
    start = time.perf_counter()
    manifest, path = checked_package(work, st)
    with st("connect"):
        dst = sc.adbc(work / "b.db") if user_adbc else _stdlib(work / "b.db")
        state = _stdlib(work / "b-state.db")
        state.execute(sc.SNAPSHOT)
        state.execute(sc.APPLIED)
        state.execute(
            "CREATE TABLE IF NOT EXISTS changelog(pos INTEGER PRIMARY KEY, site TEXT, num "
            "INTEGER, op TEXT, origin TEXT, seq INTEGER)"
        )
        stage_cols = [*sc.COLUMNS, *HASHES, "op"]
        if not user_adbc:
            dst.execute(f"CREATE TEMP TABLE stage({', '.join(stage_cols)})")
        state.execute("CREATE TEMP TABLE snap_stage(site, num, h1, h2, op)")
    upserts = 0
    types: dict[str, Any] = {}
    marks = ", ".join("?" for _ in stage_cols)
    with pa.ipc.open_stream(pa.OSFile(str(path))) as reader:
        for batch in reader:
            with st("decompress + split"):
                frame, staged, ups = split(batch)
                types = {f.name: f.type for f in staged.schema}
                upserts += ups
            if user_adbc:
                with st("stage rows (ingest, temp table)"):
                    cur = dst.cursor()
                    cur.adbc_ingest("stage", staged, "create_append", temporary=True)
                    cur.close()
            else:
                with st("stage rows (executemany, temp table)"):
                    dst.executemany(f"INSERT INTO temp.stage VALUES ({marks})", _rows_of(staged))
            with st("stage snapshot (executemany, temp table)"):
                keys = staged.select([*sc.KEY, *HASHES, "op"])
                state.executemany(
                    "INSERT INTO temp.snap_stage VALUES (?, ?, ?, ?, ?)", _rows_of(keys)
                )
            if args.receiver == "siege":
                with st("Siège change log (executemany)"):
                    log = frame.select([*sc.KEY, "op"])
                    origin, seq = "A", manifest["seq"]
                    state.executemany(
                        "INSERT INTO changelog(site, num, op, origin, seq) VALUES (?, ?, ?, ?, ?)",
                        ((*r, origin, seq) for r in _rows_of(log)),
                    )
    with st("apply (set-based upsert + delete)"):
        sc.apply_staged(dst)
    with st("verified read-back (join + hash)"):
        if user_adbc:
            checked = verify(dst, args.batch_rows)
        else:
            checked = verify_stdlib(dst, args.batch_rows, types)
        if checked != upserts:
            raise SystemExit(f"{upserts - checked} rows differ after apply")
    with st("commit user database"):
        sc.run_sql(dst, "DROP TABLE temp.stage")
        if user_adbc:
            dst.commit()
        else:
            dst.execute("COMMIT")
        dst.close()
    with st("snapshot update (set-wise) + applied mark"):
        sc.update_snapshot(state, "temp.snap_stage")
        state.execute("INSERT INTO applied VALUES (?, ?)", ("A", manifest["seq"]))
        state.execute("COMMIT")
        state.close()
    return {"seconds": time.perf_counter() - start, "stages": st.cpu, "rows": upserts}


def verify_stdlib(dst: Any, batch_rows: int, types: dict[str, Any]) -> int:
    """Read the applied rows back through stdlib, build Arrow columns of the package's
    types from them, hash them and compare with the digests the package carried."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = ["sh1", "sh2", *sc.COLUMNS]
    kinds = [pa.int64(), pa.int64(), *(types[c] for c in sc.COLUMNS)]
    cur = dst.execute(
        f"SELECT s.h1, s.h2, {', '.join('v.' + c for c in sc.COLUMNS)} FROM temp.stage s "
        "JOIN ventes v USING (site, num) WHERE s.op = 'U'"
    )
    good = 0
    while rows := cur.fetchmany(batch_rows):
        values = zip(*rows, strict=True)
        columns = [pa.array(list(c), type=k) for c, k in zip(values, kinds, strict=True)]
        t = hashed(pa.Table.from_arrays(columns, names=names))
        same = pc.and_(pc.equal(t["h1"], t["sh1"]), pc.equal(t["h2"], t["sh2"]))
        good += pc.sum(same.cast("int64")).as_py() or 0
    left = dst.execute(
        "SELECT COUNT(*) FROM temp.stage s JOIN ventes v USING (site, num) WHERE s.op = 'D'"
    ).fetchone()[0]
    return int(good) - int(left)


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["--dir", str(args.dir)]
    cmd += ["--rows", str(args.rows), "--receiver", args.receiver]
    cmd += ["--batch-rows", str(args.batch_rows), "--apply", args.apply]
    return bench_sync.run_script_phase(__file__, name, cmd)


def child(args: argparse.Namespace) -> None:
    # adbc_driver_manager.dbapi imports polars whenever it is installed: block it, so the
    # figures (imports, peak RSS) are those of a build without polars.
    sys.modules["polars"] = None  # type: ignore[assignment]
    simple = {
        "generate": bench_sync.phase_generate,
        "raw": bench_sync.phase_raw,
        "mutate": bench_sync.phase_mutate,
        "check": bench_sync.phase_check,
    }
    if args.phase in simple:
        result = simple[args.phase](args.dir, args.rows)
    elif args.phase == "idle":
        import adbc_driver_sqlite.dbapi  # noqa: F401
        import pyarrow.compute  # noqa: F401

        result = {"seconds": 0.0, "polars_loaded": sys.modules.get("polars") is not None}
    else:
        apply = phase_import if args.apply == "adbc" else phase_import_stdlib
        result = {"export": phase_export, "import": apply}[args.phase](args.dir, args)
        result["polars_loaded"] = sys.modules.get("polars") is not None
    print(json.dumps(result))


def report(args: argparse.Namespace, res: dict[str, dict[str, Any]]) -> None:
    raw = res["raw"]["cpu"]
    idle = res["idle"]
    print(
        f"rows {args.rows:,}; receiver {args.receiver}; batch {args.batch_rows:,}; "
        f"pyarrow only; apply through {args.apply}"
    )
    print(f"raw copy: {raw:.2f} CPU s; interpreter + pyarrow + ADBC: {idle['peak_mb']:.0f} MB")
    for p, title in (("1", "full"), ("2", "incremental")):
        exp, imp = res[f"export{p}"], res[f"import{p}"]
        changes = exp["upserts"] + exp["deletes"]
        print(f"\n[{title}] {exp['upserts']:,} upserts, {exp['deletes']:,} deletes; package")
        print(
            f"  {exp['package_bytes']:,} bytes = {exp['package_bytes'] / max(1, changes):.1f} B/row"
        )
        for label, r in (("export", exp), ("import", imp)):
            print(
                f"  {label}: {r['cpu']:.2f} CPU s, peak {r['peak_mb']:.0f} MB, /raw "
                f"{r['cpu'] / raw:.2f}, polars loaded: {r['polars_loaded']}"
            )
            for stage, cpu in r["stages"].items():
                print(f"    {stage:42s} {cpu:6.2f} CPU s")
        total = exp["cpu"] + imp["cpu"]
        print(f"  end to end: {total:.2f} CPU s")
        print(f"  ratio to raw copy: (CPU time ratio {total / raw:.2f})")
    same = res["check1"]["same"] and res["check2"]["same"]
    load = max(r["load"] for r in res.values())
    print(f"\nB equals A after each pass: {same}; load average up to {load:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--receiver", choices=("siege", "serveur"), default="siege")
    parser.add_argument("--batch-rows", type=int, default=sc.BATCH_ROWS)
    parser.add_argument(
        "--apply",
        choices=("adbc", "stdlib", "mixed"),
        default="adbc",
        help="the receiver's databases through ADBC (the spike), stdlib sqlite3 only, or "
        "the user's through ADBC and the state's through stdlib",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lacking = missing()
    if lacking:
        pip = "pip install pyarrow adbc-driver-sqlite xxhash"
        print(f"spike_arrowonly: needs {', '.join(lacking)}: {pip} (spike only)")
        return 0
    if args.phase:
        child(args)
        return 0
    own = args.dir is None
    args.dir = Path(args.dir or tempfile.mkdtemp(prefix="synchro-spike-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        res: dict[str, dict[str, Any]] = {}
        for key in ("idle", "generate", "raw", "export1", "import1", "check1", "mutate"):
            res[key] = run_phase(key.rstrip("12"), args)
        for key in ("export2", "import2", "check2"):
            res[key] = run_phase(key.rstrip("12"), args)
        report(args, res)
    finally:
        if own and not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
