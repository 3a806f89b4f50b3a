"""Issue 13 spike (a): bench_sync's 1M-row SQLite → SQLite job through a columnar data plane.

Usage: ``.venv/bin/python bench/spike_columnar.py [--rows 1000000] [--receiver siege]``

Needs the spike-only packages (not in requirements): ``pip install pyarrow polars polars-hash
adbc-driver-sqlite``; without them it says so and exits 0. Nothing in ``synchro/`` is used
except ``synchro.values.canonical`` in the fidelity phase (the per-row canonical text the
vectorised one must equal).

The plane, per phase (each in a fresh interpreter, peak RSS and CPU from ``os.wait4``):

- **export** (node A): the table is read in key order as Arrow record batches (ADBC SQLite
  driver, 64k rows a batch); per batch, the canonical text of every row is built with polars
  string kernels and hashed with xxh3-128 (``polars-hash``: the standard XXH3, stable across
  versions and machines; ``--hash xxhash-loop``: Arrow kernels and python-xxhash, the same
  digests without polars); the snapshot rows of the same key range are read from the state
  database as Arrow and the diff is one full join; changed rows (op ``U``) and deleted keys
  (op ``D``) go into an Arrow IPC stream compressed with zstd; their keys and hashes are bulk
  ingested into a staging table of the state database, which updates the snapshot with one
  ``INSERT … ON CONFLICT`` and one ``DELETE … IN (SELECT …)`` after the package is written.
  Memory stays bounded by the batch size: one key range at a time.
- **import** (node B): SHA-256 of the package checked, the IPC stream bulk ingested into a
  temporary staging table of B's database, then one set-based upsert and one delete; rows
  read back by a join with the staging table and hashed again (the verified read-back); the
  snapshot updated set-wise; at the Siège, every change appended to a change log table
  (``adbc_ingest``, origin and sequence added as columns); one commit per database, the
  user database first, as the current intent record requires.

Per-stage CPU seconds are ``time.process_time`` deltas inside the child (all threads);
the raw copy of bench_sync is measured in the same run and is the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sync

NEEDED = ("pyarrow", "polars", "polars_hash", "adbc_driver_sqlite")
KEY = ("site", "num")
COLUMNS = ("site", "num", "article_id", "qte", "montant", "quand", "note")
BATCH_ROWS = 65_536
SEP = "\x1f"
NULL = "\x00N"
SNAPSHOT = """
CREATE TABLE IF NOT EXISTS snapshot(
    site TEXT NOT NULL, num INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL,
    PRIMARY KEY (site, num)) WITHOUT ROWID
"""
APPLIED = "CREATE TABLE IF NOT EXISTS applied(origin TEXT, seq INTEGER, PRIMARY KEY (origin, seq))"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file read in 1 MB blocks (memory stays flat)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def missing() -> list[str]:
    import importlib.util

    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


class Stages:
    """CPU seconds (all threads of the process) per named stage."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, float] = {}  # MB of peak RSS first reached in that stage

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.process_time()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        try:
            yield
        finally:
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - start
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if peak > before:
                self.peak[name] = max(peak, self.peak.get(name, 0.0))


# ----------------------------------------------------------------------------- the plane


def canonical_expr() -> Any:
    """The canonical text of a ``ventes`` row, as ``synchro.values.canonical`` writes it.

    Kinds: site text, num/article_id/qte int, montant decimal (SQLite hands a REAL or an
    INTEGER: read as float64, whose shortest text is Python's ``repr``; ``.0`` dropped as
    ``Decimal.normalize`` does), quand datetime (SQLite keeps the text; seconds only in
    this table), note text. NULL is ``\\x00N``. Each value is followed by ``\\x1f``.
    """
    import polars as pl

    def text(name: str) -> Any:
        return pl.col(name).fill_null(NULL)

    def integer(name: str) -> Any:
        return pl.col(name).cast(pl.String).fill_null(NULL)

    montant = pl.col("montant").cast(pl.String).str.replace(r"\.0$", "").fill_null(NULL)
    parts = [
        text("site"),
        integer("num"),
        integer("article_id"),
        integer("qte"),
        montant,
        text("quand"),
        text("note"),
        pl.lit(""),
    ]
    return pl.concat_str(parts, separator=SEP)


def with_hash(frame: Any, engine: str) -> Any:
    """``frame`` plus ``h1``/``h2``: the 128-bit row digest as two signed 64-bit ints."""
    import polars as pl
    import polars_hash  # noqa: F401  (registers the .nchash namespace)

    if engine == "polars-hash-rows":  # for timing only: not stable across polars versions
        digest = frame.select(COLUMNS).hash_rows(seed=0)
        return frame.with_columns(h1=digest.reinterpret(signed=True), h2=pl.lit(0, pl.Int64))
    if engine == "xxhash-loop":  # what a plane without polars would pay: Arrow text + loop
        import pyarrow as pa

        digests = arrow_canonical_hash(frame.select(COLUMNS).to_arrow())
        halves = pa.Array.from_buffers(pa.int64(), 2 * len(digests), digests.buffers())
        ints = pl.from_arrow(halves)  # each digest as two little-endian int64 halves
        return frame.with_columns(h1=ints.gather_every(2), h2=ints.gather_every(2, 1))
    x = canonical_expr().nchash.xxh3_128()
    hi = (x // (2**64)).cast(pl.UInt64).reinterpret(signed=True)
    lo = (x % (2**64)).cast(pl.UInt64).reinterpret(signed=True)
    return frame.with_columns(h1=hi, h2=lo)


def adbc(path: Path) -> Any:
    import adbc_driver_sqlite.dbapi as dbapi

    return dbapi.connect(str(path))


def arrow_query(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """A polars frame of a query, read as Arrow by the ADBC driver."""
    import polars as pl

    cur = conn.cursor()
    cur.execute(sql, parameters=params or None)
    table = cur.fetch_arrow_table()
    cur.close()
    return pl.from_arrow(table)


def snapshot_range(state: Any, low: tuple[Any, ...] | None, high: tuple[Any, ...] | None) -> Any:
    where, params = [], ()
    if low is not None:
        where.append("(site, num) > (?, ?)")
        params += low
    if high is not None:
        where.append("(site, num) <= (?, ?)")
        params += high
    sql = "SELECT site, num, h1, h2 FROM snapshot"
    if where:
        sql += " WHERE " + " AND ".join(where)
    import polars as pl

    types = {"site": pl.String, "num": pl.Int64, "h1": pl.Int64, "h2": pl.Int64}
    return arrow_query(state, sql, params).cast(types)  # an empty result has no types


def diff(current: Any, snap: Any) -> tuple[Any, Any]:
    """(changed rows with their hashes, deleted keys) of one key range: one full join."""
    import polars as pl

    joined = current.join(snap, on=list(KEY), how="full", coalesce=True, suffix="_s")
    changed = joined.filter(
        pl.col("h1").is_not_null()
        & (
            pl.col("h1_s").is_null()
            | (pl.col("h1") != pl.col("h1_s"))
            | (pl.col("h2") != pl.col("h2_s"))
        )
    )
    deleted = joined.filter(pl.col("h1").is_null()).select(KEY)
    return changed.select([*COLUMNS, "h1", "h2"]), deleted


def package_frame(changed: Any, deleted: Any, ship_hash: bool) -> Any:
    """Rows of the package: upserts with every column, deletes with their key only; with
    ``ship_hash`` the sender's digest travels too (the receiver then does not hash)."""
    import polars as pl

    extra = ["h1", "h2"] if ship_hash else []
    ups = changed.select([*COLUMNS, *extra]).with_columns(op=pl.lit("U"))
    dels = deleted.with_columns(op=pl.lit("D"))
    return pl.concat([ups, dels], how="diagonal_relaxed").select([*COLUMNS, *extra, "op"])


def ingest(conn: Any, table: str, frame: Any, *, temporary: bool = False) -> None:
    cur = conn.cursor()
    cur.adbc_ingest(table, frame.to_arrow(), mode="create_append", temporary=temporary)
    cur.close()


def run_sql(conn: Any, *statements: str) -> None:
    cur = conn.cursor()
    for sql in statements:
        cur.execute(sql)
    cur.close()


def apply_staged(dst: Any) -> None:
    """The staged rows into ``ventes``: one upsert, one delete (set-wise). ``dst``: an ADBC
    or a stdlib connection (both have ``cursor().execute``)."""
    cols = ", ".join(COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in KEY)
    run_sql(
        dst,
        f"INSERT INTO ventes ({cols}) SELECT {cols} FROM temp.stage WHERE op = 'U' "
        f"ON CONFLICT (site, num) DO UPDATE SET {sets}",
        "DELETE FROM ventes WHERE (site, num) IN (SELECT site, num FROM temp.stage WHERE op = 'D')",
    )


def update_snapshot(state: Any, stage: str) -> None:
    """The snapshot as the package leaves it: one upsert, one delete (set-wise)."""
    run_sql(
        state,
        f"INSERT INTO snapshot SELECT site, num, h1, h2 FROM {stage} WHERE op = 'U' "
        "ON CONFLICT (site, num) DO UPDATE SET h1 = excluded.h1, h2 = excluded.h2",
        f"DELETE FROM snapshot WHERE (site, num) IN (SELECT site, num FROM {stage} WHERE op = 'D')",
        f"DROP TABLE {stage}",
    )


def phase_export(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl
    import pyarrow as pa

    st = Stages()
    zero = pl.lit(0, pl.Int64)
    seq = len(list(work.glob("a-*.arrows"))) + 1
    out = work / f"a-{seq}.arrows"
    counts = {"scanned": 0, "upserts": 0, "deletes": 0}
    start = time.perf_counter()
    with st("connect"):
        src, state = adbc(work / "a.db"), adbc(work / "a-state.db")
        run_sql(state, SNAPSHOT)
        cur = src.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(args.batch_rows)})
        cur.execute("SELECT * FROM ventes ORDER BY site, num")
        reader = cur.fetch_record_batch()
    options = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", args.zstd_level))
    writer: Any = None
    schema: list[Any] = []
    low: tuple[Any, ...] | None = None

    def emit(changed: Any, deleted: Any) -> None:
        nonlocal writer
        if changed.height == 0 and deleted.height == 0:
            return
        with st("package (IPC + zstd)"):
            table = package_frame(changed, deleted, args.ship_hash).to_arrow()
            if writer is None:
                schema.append(table.schema)
                writer = pa.ipc.new_stream(str(out), table.schema, options=options)
            writer.write_table(table.cast(schema[0]))
        with st("snapshot stage (ingest)"):
            keys = changed.select([*KEY, "h1", "h2"]).with_columns(op=pl.lit("U"))
            gone = deleted.with_columns(h1=zero, h2=zero, op=pl.lit("D"))
            ingest(state, "snap_stage", pl.concat([keys, gone]), temporary=True)
        counts["upserts"] += changed.height
        counts["deletes"] += deleted.height

    while True:
        with st("read (ADBC → Arrow)"):
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
        with st("canonical + hash"):
            frame = with_hash(pl.from_arrow(batch), args.hash)
        high = (frame["site"][-1], frame["num"][-1])
        with st("diff (snapshot read + join)"):
            changed, deleted = diff(frame, snapshot_range(state, low, high))
        counts["scanned"] += frame.height
        emit(changed, deleted)
        low = high
    with st("diff (snapshot read + join)"):
        tail = snapshot_range(state, low, None).select(KEY)
    emit(pl.DataFrame(schema=frame.schema).select([*COLUMNS, "h1", "h2"]), tail)
    with st("package (IPC + zstd)"):
        if writer is not None:
            writer.close()
        digest = file_sha256(out) if out.exists() else ""
        manifest = {"origin": "A", "seq": seq, "sha256": digest, **counts}
        (work / "last.json").write_text(json.dumps({"path": str(out), **manifest}))
    with st("snapshot update (set-wise)"):
        if writer is not None:
            update_snapshot(state, "snap_stage")
        state.commit()
        src.close()
        state.close()
    size = out.stat().st_size if out.exists() else 0
    return {
        "seconds": time.perf_counter() - start,
        "stages": st.cpu,
        "peaks": st.peak,
        "package_bytes": size,
        **counts,
    }


def phase_import(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl
    import pyarrow as pa

    st = Stages()
    zero = pl.lit(0, pl.Int64)
    manifest = json.loads((work / "last.json").read_text())
    path = Path(manifest["path"])
    start = time.perf_counter()
    with st("verify package (SHA-256)"):
        if file_sha256(path) != manifest["sha256"]:
            raise SystemExit("package damaged")
    with st("connect"):
        dst, state = adbc(work / "b.db"), adbc(work / "b-state.db")
        run_sql(state, SNAPSHOT, APPLIED)
        done = arrow_query(
            state,
            "SELECT COUNT(*) AS n FROM applied WHERE origin = ? AND seq = ?",
            ("A", manifest["seq"]),
        )
        if done["n"][0]:
            return {"seconds": 0.0, "stages": {}, "peaks": {}, "rows": 0}
    rows = upserts = 0
    with pa.ipc.open_stream(pa.OSFile(str(path))) as reader:  # a path would be mapped
        for batch in reader:
            with st("decompress + hash of the received rows"):
                frame = pl.from_arrow(batch)
                ups = frame.filter(pl.col("op") == "U")
                if "h1" not in frame.columns:
                    ups = with_hash(ups, args.hash)
                gone = frame.filter(pl.col("op") == "D").with_columns(h1=zero, h2=zero)
                staged = pl.concat([ups, gone], how="diagonal_relaxed")
                rows += frame.height
                upserts += ups.height
            with st("stage rows (ingest, temp table)"):
                ingest(dst, "stage", staged, temporary=True)
            with st("stage snapshot (ingest, temp table)"):
                ingest(state, "snap_stage", staged.select([*KEY, "h1", "h2", "op"]), temporary=True)
            if args.receiver == "siege":
                with st("Siège change log (ingest)"):
                    log = frame if args.log == "rows" else frame.select([*KEY, "op"])
                    log = log.with_columns(origin=pl.lit("A"), seq=pl.lit(manifest["seq"]))
                    ingest(state, "changelog", log)
    with st("apply (set-based upsert + delete)"):
        apply_staged(dst)
    with st("verified read-back (join + hash)"):
        checked = verify(dst, args.hash, args.batch_rows)
        if checked != upserts:
            raise SystemExit(f"{upserts - checked} rows differ after apply")
    with st("commit user database"):
        run_sql(dst, "DROP TABLE temp.stage")
        dst.commit()
        dst.close()
    with st("snapshot update (set-wise) + applied mark"):
        update_snapshot(state, "temp.snap_stage")
        cur = state.cursor()
        cur.execute("INSERT INTO applied VALUES (?, ?)", parameters=("A", manifest["seq"]))
        cur.close()
        state.commit()
        state.close()
    return {
        "seconds": time.perf_counter() - start,
        "stages": st.cpu,
        "peaks": st.peak,
        "rows": rows,
    }


def verify(dst: Any, engine: str, batch_rows: int) -> int:
    """Rows read back by key in batches, hashed, compared with the hashes sent: how many match.

    Deleted keys still present count against the result too."""
    import polars as pl

    cur = dst.cursor()
    cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
    cur.execute(
        "SELECT s.h1 AS sh1, s.h2 AS sh2, v.* FROM temp.stage s "
        "JOIN ventes v USING (site, num) WHERE s.op = 'U'"
    )
    good = 0
    for batch in cur.fetch_record_batch():
        frame = with_hash(pl.from_arrow(batch), engine)
        same = (pl.col("h1") == pl.col("sh1")) & (pl.col("h2") == pl.col("sh2"))
        good += frame.select(same.sum()).item()
    cur.execute(
        "SELECT COUNT(*) FROM temp.stage s JOIN ventes v USING (site, num) WHERE s.op = 'D'"
    )
    left = cur.fetchone()[0]
    cur.close()
    return int(good) - int(left)


def arrow_canonical_hash(table: Any) -> Any:
    """pyarrow-only variant: canonical text with Arrow kernels, xxh3-128 in a Python loop
    (pyarrow has no row-hash kernel); the digests as a ``fixed_size_binary(16)`` array."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import xxhash

    def text(name: str) -> Any:
        return pc.fill_null(pc.cast(table[name], pa.string()), NULL)

    montant = pc.replace_substring_regex(text("montant"), r"\.0$", "")
    parts = [text(c) if c != "montant" else montant for c in COLUMNS]
    empty = pa.array([""] * table.num_rows, pa.string())
    joined = pc.binary_join_element_wise(*parts, empty, SEP)
    digest = xxhash.xxh3_128_digest
    raw = b"".join([digest(v) for v in pc.cast(joined, pa.binary()).to_pylist()])
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), table.num_rows, [None, pa.py_buffer(raw)]
    )


def phase_engines(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """CPU seconds of the vectorised candidates on the whole table (read once, in memory)."""
    import polars as pl
    import pyarrow as pa

    table = adbc(work / "a.db").cursor()
    table.execute("SELECT * FROM ventes ORDER BY site, num")
    arrow = table.fetch_arrow_table()
    frame = pl.from_arrow(arrow)
    out: dict[str, float] = {}

    def clock(label: str, fn: Any) -> Any:
        start = time.process_time()
        result = fn()
        out[label] = time.process_time() - start
        return result

    hashed = clock(
        "polars canonical text + xxh3-128 (polars-hash)", lambda: with_hash(frame, "xxh3-128")
    )
    clock("polars hash_rows on typed columns (not stable)", lambda: frame.hash_rows(seed=0))
    ah = clock(
        "pyarrow canonical text + xxhash loop in Python", lambda: arrow_canonical_hash(arrow)
    )
    snap = hashed.select([*KEY, "h1", "h2"]).sample(fraction=0.99, seed=1)
    clock("polars full join 1 table × snapshot", lambda: diff(hashed, snap))
    at = pa.table({"site": arrow["site"], "num": arrow["num"], "h": ah})
    asnap = at.slice(0, int(at.num_rows * 0.99))
    clock(
        "pyarrow (Acero) full outer join, same",
        lambda: at.join(asnap, keys=list(KEY), join_type="full outer", right_suffix="_s"),
    )
    h1, h2 = hashed["h1"].to_list(), hashed["h2"].to_list()
    same = sum(
        1
        for a, b, d in zip(h1, h2, ah.to_pylist(), strict=True)
        if a.to_bytes(8, "big", signed=True) + b.to_bytes(8, "big", signed=True) == d
    )
    return {"seconds": 0.0, "engines": out, "rows": arrow.num_rows, "same_digests": same}


def phase_fidelity(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The vectorised canonical text against ``synchro.values.canonical``, row by row."""

    from synchro.values import canonical

    kinds = ("text", "int", "int", "int", "decimal", "datetime", "text")
    n = args.fidelity_rows
    conn = sqlite3.connect(work / "a.db")
    rows = conn.execute(f"SELECT * FROM ventes ORDER BY site, num LIMIT {n}").fetchall()
    conn.close()
    expected = [
        "".join(canonical(k, v).decode() + SEP for k, v in zip(kinds, row, strict=True))
        for row in rows
    ]
    frame = arrow_query(adbc(work / "a.db"), f"SELECT * FROM ventes ORDER BY site, num LIMIT {n}")
    got = frame.select(canonical_expr().alias("c"))["c"].to_list()
    differ = sum(1 for a, b in zip(expected, got, strict=True) if a != b)
    sample = next(((a, b) for a, b in zip(expected, got, strict=True) if a != b), None)
    return {"compared": len(rows), "differ": differ, "first_difference": sample, "seconds": 0.0}


# ----------------------------------------------------------------------------- driver


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["--dir", str(args.dir)]
    cmd += ["--rows", str(args.rows), "--receiver", args.receiver, "--hash", args.hash]
    cmd += ["--zstd-level", str(args.zstd_level), "--fidelity-rows", str(args.fidelity_rows)]
    cmd += ["--batch-rows", str(args.batch_rows), "--log", args.log] + (
        ["--ship-hash"] if args.ship_hash else []
    )
    return bench_sync.run_script_phase(__file__, name, cmd)


def child(args: argparse.Namespace) -> None:
    work: Path = args.dir
    simple = {
        "generate": bench_sync.phase_generate,
        "raw": bench_sync.phase_raw,
        "mutate": bench_sync.phase_mutate,
        "check": bench_sync.phase_check,
    }
    if args.phase in simple:
        result = simple[args.phase](work, args.rows)
    elif args.phase == "idle":
        import polars  # noqa: F401
        import pyarrow  # noqa: F401

        result = {"seconds": 0.0}
    else:
        phases = {"export": phase_export, "import": phase_import, "fidelity": phase_fidelity}
        phases["engines"] = phase_engines
        result = phases[args.phase](work, args)
    print(json.dumps(result))


def report(args: argparse.Namespace, res: dict[str, dict[str, Any]]) -> None:
    raw = res["raw"]["cpu"]
    idle, fid = res["idle"], res["fidelity"]
    print(f"rows {args.rows:,}; hash {args.hash}; receiver {args.receiver}; zstd {args.zstd_level}")
    print(f"digests shipped: {args.ship_hash}; log: {args.log}; batch {args.batch_rows:,}")
    print(f"raw copy: {raw:.2f} CPU s, {res['raw']['seconds']:.2f} s wall")
    print(f"interpreter + pyarrow + polars: {idle['peak_mb']:.0f} MB, {idle['cpu']:.2f} CPU s")
    same = fid["compared"] - fid["differ"]
    print(f"canonical text = synchro.values.canonical: {same:,}/{fid['compared']:,} rows")
    if fid["differ"]:
        print(f"  first difference: {fid['first_difference']}")
    eng = res["engines"]
    print(f"\nvectorised candidates on {eng['rows']:,} rows in memory (CPU s, all threads):")
    for label, cpu in eng["engines"].items():
        print(f"  {label:50s} {cpu:6.2f}")
    print(f"  polars-hash xxh3-128 = python-xxhash xxh3-128: {eng['same_digests']:,} rows")
    for p, title in (("1", "full"), ("2", "incremental")):
        exp, imp = res[f"export{p}"], res[f"import{p}"]
        changes = exp["upserts"] + exp["deletes"]
        print(f"\n[{title}] {exp['upserts']:,} upserts, {exp['deletes']:,} deletes; package")
        print(
            f"  {exp['package_bytes']:,} bytes = {exp['package_bytes'] / max(1, changes):.1f} B/row"
        )
        for label, r in (("export", exp), ("import", imp)):
            staged = sum(r["stages"].values())
            print(
                f"  {label}: {r['cpu']:.2f} CPU s (process; stages {staged:.2f}), "
                f"{r['seconds']:.2f} s wall, peak {r['peak_mb']:.0f} MB, /raw {r['cpu'] / raw:.2f}"
            )
            for stage, cpu in r["stages"].items():
                peak = r["peaks"].get(stage)
                grew = f"  peak → {peak:.0f} MB" if peak else ""
                print(f"    {stage:42s} {cpu:6.2f} CPU s  /raw {cpu / raw:.2f}{grew}")
        total = exp["cpu"] + imp["cpu"]
        wall = exp["seconds"] + imp["seconds"]
        ratio = wall / res["raw"]["seconds"]
        print(f"  end to end: {total:.2f} CPU s; {args.rows / wall:,.0f} rows/s wall")
        print(f"  ratio to raw copy: {ratio:.2f} (CPU time ratio {total / raw:.2f})")
    same_ab = res["check1"]["same"] and res["check2"]["same"]
    load = max(r["load"] for r in res.values())
    print(f"\nB equals A after each pass: {same_ab}; load average up to {load:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--receiver", choices=("siege", "serveur"), default="siege")
    parser.add_argument(
        "--hash", choices=("xxh3-128", "xxhash-loop", "polars-hash-rows"), default="xxh3-128"
    )
    parser.add_argument("--zstd-level", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--ship-hash", action="store_true", help="digests travel in the package")
    parser.add_argument(
        "--log",
        choices=("rows", "keys"),
        default="rows",
        help="Siège change log: whole rows, or key + op + origin + seq (publish reads the table)",
    )
    parser.add_argument("--fidelity-rows", type=int, default=200_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lacking = missing()
    if lacking:
        print(
            f"spike_columnar: needs {', '.join(lacking)}: "
            "pip install pyarrow polars polars-hash adbc-driver-sqlite (spike only)"
        )
        return 0
    if args.phase:
        child(args)
        return 0
    own = args.dir is None
    args.dir = Path(args.dir or tempfile.mkdtemp(prefix="synchro-spike-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        res: dict[str, dict[str, Any]] = {}
        for key in (
            "idle",
            "generate",
            "raw",
            "fidelity",
            "engines",
            "export1",
            "import1",
            "check1",
            "mutate",
            "export2",
            "import2",
            "check2",
        ):
            started = time.perf_counter()
            res[key] = run_phase(key.rstrip("12"), args)
            print(f"  {key:9s} {time.perf_counter() - started:7.1f} s", file=sys.stderr)
        report(args, res)
    finally:
        if own and not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
