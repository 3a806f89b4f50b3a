"""Issue 13 spike (b): the best per-row data plane within the current design's shape.

Usage: ``.venv/bin/python bench/spike_rowwise.py [--rows 1000000] [--step-rows 200000]``

Needs the spike-only packages (not in requirements): ``pip install xxhash msgspec zstandard``;
without them it says so and exits 0.

1. **steps**: on ``--step-rows`` rows of bench_sync's table, in one process, the CPU µs per
   row of each per-row step done the current engine's way (``synchro.values`` prepared
   functions, blake2b-16, stdlib json, zlib-1, ``key_json`` snapshot rows) and the faster
   way (xxh3-128, msgspec, zstd-3, a typed ``WITHOUT ROWID`` snapshot).
2. **pipeline**: bench_sync's job (full pass, then 1 % updated / 0.1 % deleted) written
   row by row with every faster step: ordered scan merged with the ordered snapshot,
   ``row_normaliser``, canonical text (``synchro.values``' generated joiner) hashed with
   xxh3-128, rows as msgpack arrays of their JSON form in zstd frames, snapshot written with
   ``executemany``; import decodes, normalises, hashes, upserts with ``executemany``
   (``ON CONFLICT``), reads the rows back by key 500 at a time and compares the hashes,
   writes the snapshot and (Siège) a change log row per change. Each phase runs in a fresh
   interpreter (CPU and peak RSS from ``os.wait4``), with the raw copy in the same run.

Uses ``synchro.values.hashing._text_joiner``/``_text_canon`` (private) to hash the very canonical
text of the engine with another digest: a measurement, not an API.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sync

NEEDED = ("xxhash", "msgspec", "zstandard")
KINDS = ("text", "int", "int", "int", "decimal", "datetime", "text")
COLUMNS = ("site", "num", "article_id", "qte", "montant", "quand", "note")
FETCH = 5000
CHUNK = 512  # rows per encoded package record, as records.py's lines
SNAPSHOT = """CREATE TABLE IF NOT EXISTS snapshot(site TEXT NOT NULL, num INTEGER NOT NULL,
    h BLOB NOT NULL, PRIMARY KEY (site, num)) WITHOUT ROWID"""
CHANGELOG = """CREATE TABLE IF NOT EXISTS changelog(pos INTEGER PRIMARY KEY, origin TEXT,
    seq INTEGER, op TEXT, site TEXT, num INTEGER, row BLOB)"""


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


def canonical_text() -> Callable[[Any], str]:
    """The engine's canonical text of a row (what ``values.row_hasher`` feeds blake2b)."""
    from synchro.values import hashing

    texts = tuple(hashing._text_canon(k) for k in KINDS)
    return hashing._text_joiner(KINDS, texts)


def xxh3_hasher() -> Callable[[Any], bytes]:
    import xxhash

    text_of = canonical_text()
    digest = xxhash.xxh3_128_digest

    def h(row: Any) -> bytes:
        return digest(text_of(row).encode("utf-8", "surrogatepass"))

    return h


def binder() -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Python values to what stdlib sqlite3 binds (as the engine's SQLite adapter does)."""

    def bind(row: tuple[Any, ...]) -> tuple[Any, ...]:
        s, n, a, q, m, w, t = row
        return (s, n, a, q, str(m) if type(m) is Decimal else m, w.isoformat(" "), t)

    return bind


# ----------------------------------------------------------------------------- 1. steps


class Clock:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.lines: list[tuple[str, float, str]] = []

    def run(self, label: str, fn: Callable[[], Any], note: str = "") -> Any:
        start = time.process_time()
        out = fn()
        self.lines.append((label, (time.process_time() - start) / self.rows * 1e6, note))
        return out


def phase_steps(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import msgspec
    import xxhash
    import zstandard

    from synchro import values
    from synchro.state import key_json

    n = args.step_rows
    c = Clock(n)
    conn = sqlite3.connect(work / "a.db")

    def scan() -> list[Any]:
        cur = conn.execute(f"SELECT * FROM ventes ORDER BY site, num LIMIT {n}")
        out: list[Any] = []
        while batch := cur.fetchmany(FETCH):
            out.extend(batch)
        return out

    rows = c.run("read: sqlite3 ordered scan (fetchmany)", scan)
    norm = values.row_normaliser(KINDS)
    rows = c.run("normalise (values.row_normaliser)", lambda: [norm(r) for r in rows])
    blake = values.row_hasher(KINDS)
    digests = c.run("hash now: canonical text + blake2b-16", lambda: [blake(r) for r in rows])
    text_of = canonical_text()
    texts = c.run("  of which canonical text alone", lambda: [text_of(r) for r in rows])
    b2 = hashlib.blake2b
    c.run("  of which blake2b-16 alone", lambda: [b2(t.encode(), digest_size=16) for t in texts])
    x3 = xxhash.xxh3_128_digest
    c.run("  xxh3-128 alone (instead of blake2b)", lambda: [x3(t.encode()) for t in texts])
    fast = xxh3_hasher()
    c.run("hash alt: canonical text + xxh3-128", lambda: [fast(r) for r in rows])
    to_json = values.row_to_json(KINDS)
    jrows = c.run("JSON form (values.row_to_json)", lambda: [to_json(r) for r in rows])
    chunks = [jrows[i : i + CHUNK] for i in range(0, len(jrows), CHUNK)]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
    jtext = c.run("encode now: stdlib json", lambda: [dumps.encode(g).encode() for g in chunks])
    c.run("encode alt: msgspec.json", lambda: [msgspec.json.encode(g) for g in chunks])
    packed = c.run(
        "encode alt: msgspec.msgpack", lambda: [msgspec.msgpack.encode(g) for g in chunks]
    )
    nchunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
    typed = c.run(
        "encode alt: msgspec.msgpack of the Python rows",
        lambda: [msgspec.msgpack.encode(g) for g in nchunks],
        "no JSON form: Decimal as text, datetime as timestamp",
    )
    row_type = tuple[str, int, int, int, Decimal, dt.datetime, str | None]
    typed_dec = msgspec.msgpack.Decoder(list[row_type])  # type: ignore[valid-type]
    c.run(
        "decode alt: msgspec.msgpack typed (no normalise)",
        lambda: [typed_dec.decode(p) for p in typed],
    )
    z1 = c.run("compress now: zlib-1 (JSON)", lambda: zlib_all(jtext, 1))
    c.lines[-1] = (*c.lines[-1][:2], f"{len(z1) / n:.1f} B/row")
    zc = zstandard.ZstdCompressor(level=3)
    zj = c.run("compress alt: zstd-3 (JSON)", lambda: zc.compress(b"".join(jtext)))
    c.lines[-1] = (*c.lines[-1][:2], f"{len(zj) / n:.1f} B/row")
    zm = c.run("compress alt: zstd-3 (msgpack)", lambda: zc.compress(b"".join(packed)))
    c.lines[-1] = (*c.lines[-1][:2], f"{len(zm) / n:.1f} B/row")
    c.run("decode now: json.loads", lambda: [json.loads(t) for t in jtext])
    c.run("decode alt: msgspec.msgpack", lambda: [msgspec.msgpack.decode(p) for p in packed])
    c.run("parse JSON form back (row_normaliser)", lambda: [norm(tuple(r)) for r in jrows])
    snap = sqlite3.connect(work / "steps-state.db")
    snap.execute("CREATE TABLE IF NOT EXISTS s1(k TEXT PRIMARY KEY, h BLOB NOT NULL)")
    snap.execute(SNAPSHOT)

    def snap_now() -> None:
        with snap:
            snap.executemany(
                "INSERT OR REPLACE INTO s1 VALUES (?, ?)",
                ((key_json([r[0], r[1]]), d) for r, d in zip(rows, digests, strict=True)),
            )

    def snap_alt() -> None:
        with snap:
            snap.executemany(
                "INSERT OR REPLACE INTO snapshot VALUES (?, ?, ?)",
                ((r[0], r[1], d) for r, d in zip(rows, digests, strict=True)),
            )

    c.run("snapshot now: (key_json, h) executemany", snap_now)
    c.run("snapshot alt: (site, num, h) WITHOUT ROWID", snap_alt)
    dst = sqlite3.connect(work / "steps-dst.db")
    dst.execute(bench_sync.SCHEMA)
    bind = binder()
    sets = ", ".join(f"{col} = excluded.{col}" for col in COLUMNS[2:])

    def upsert() -> None:
        with dst:
            dst.executemany(
                "INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (site, num) DO UPDATE SET {sets}",
                (bind(r) for r in rows),
            )

    c.run("apply: bind + executemany upsert (empty table)", upsert)
    for db in (snap, dst, conn):
        db.close()
    return {"lines": c.lines, "rows": n, "seconds": 0.0}


def zlib_all(parts: list[bytes], level: int) -> bytes:
    import zlib

    z = zlib.compressobj(level)
    return b"".join([*(z.compress(p) for p in parts), z.flush()])


# ----------------------------------------------------------------------------- 2. pipeline


def frames(path: Path) -> Iterator[bytes]:
    """The msgpack records of a package: zstd stream of length-prefixed records."""
    import zstandard

    with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as z:
        while head := z.read(4):
            (size,) = struct.unpack("<I", head)
            yield z.read(size)


def phase_export(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import msgspec
    import zstandard

    from synchro import values

    start = time.perf_counter()
    seq = len(list(work.glob("a-*.pkg"))) + 1
    out = work / f"a-{seq}.pkg"
    src = sqlite3.connect(work / "a.db")
    state = sqlite3.connect(work / "a-state.db")
    state.execute("PRAGMA journal_mode=WAL")
    state.execute(SNAPSHOT)
    state.commit()
    reader = sqlite3.connect(work / "a-state.db")
    norm, hasher, to_json = values.row_normaliser(KINDS), xxh3_hasher(), values.row_to_json(KINDS)
    enc = msgspec.msgpack.Encoder()
    counts = {"scanned": 0, "upserts": 0, "deletes": 0}
    puts: list[tuple[Any, ...]] = []
    drops: list[tuple[Any, ...]] = []
    records: list[Any] = []
    with out.open("wb") as fh, zstandard.ZstdCompressor(level=3).stream_writer(fh) as z:

        def flush(final: bool = False) -> None:
            if records and (final or len(records) >= CHUNK):
                data = enc.encode(records)
                z.write(struct.pack("<I", len(data)) + data)
                records.clear()
            if puts and (final or len(puts) >= FETCH):
                state.executemany("INSERT OR REPLACE INTO snapshot VALUES (?, ?, ?)", puts)
                puts.clear()
            if drops and (final or len(drops) >= FETCH):
                state.executemany("DELETE FROM snapshot WHERE site = ? AND num = ?", drops)
                drops.clear()

        snaps = reader.execute("SELECT site, num, h FROM snapshot ORDER BY site, num")
        s = next(snaps, None)
        cur = src.execute("SELECT * FROM ventes ORDER BY site, num")
        while batch := cur.fetchmany(FETCH):
            for raw in batch:
                row = norm(raw)
                key = (row[0], row[1])
                while s is not None and (s[0], s[1]) < key:
                    records.append(["D", s[0], s[1]])
                    drops.append((s[0], s[1]))
                    counts["deletes"] += 1
                    s = next(snaps, None)
                digest = hasher(row)
                if s is not None and (s[0], s[1]) == key:
                    same = s[2] == digest
                    s = next(snaps, None)
                    if same:
                        continue
                records.append(["U", *to_json(row)])
                puts.append((key[0], key[1], digest))
                counts["upserts"] += 1
                flush()
            counts["scanned"] += len(batch)
        while s is not None:
            records.append(["D", s[0], s[1]])
            drops.append((s[0], s[1]))
            counts["deletes"] += 1
            s = next(snaps, None)
        flush(final=True)
    state.commit()
    for db in (src, state, reader):
        db.close()
    digest = file_sha256(out)
    (work / "last.json").write_text(json.dumps({"path": str(out), "seq": seq, "sha256": digest}))
    return {
        "seconds": time.perf_counter() - start,
        "package_bytes": out.stat().st_size,
        **counts,
    }


def phase_import(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import msgspec

    from synchro import values

    start = time.perf_counter()
    meta = json.loads((work / "last.json").read_text())
    path = Path(meta["path"])
    if file_sha256(path) != meta["sha256"]:
        raise SystemExit("package damaged")
    dst = sqlite3.connect(work / "b.db")
    state = sqlite3.connect(work / "b-state.db")
    state.execute(SNAPSHOT)
    state.execute(CHANGELOG)
    norm, hasher, bind = values.row_normaliser(KINDS), xxh3_hasher(), binder()
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    sets = ", ".join(f"{col} = excluded.{col}" for col in COLUMNS[2:])
    upsert = "INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, num) DO UPDATE"
    upsert += f" SET {sets}"
    siege = args.receiver == "siege"
    rows = bad = 0
    for frame in frames(path):
        ups: list[tuple[Any, ...]] = []
        gone: list[tuple[Any, ...]] = []
        for rec in dec.decode(frame):
            if rec[0] == "U":
                ups.append(norm(rec[1:]))
            else:
                gone.append((rec[1], rec[2]))
        digests = [hasher(r) for r in ups]
        dst.executemany(upsert, [bind(r) for r in ups])
        dst.executemany("DELETE FROM ventes WHERE site = ? AND num = ?", gone)
        bad += read_back(dst, ups, digests, norm, hasher)
        state.executemany(
            "INSERT OR REPLACE INTO snapshot VALUES (?, ?, ?)",
            [(r[0], r[1], d) for r, d in zip(ups, digests, strict=True)],
        )
        state.executemany("DELETE FROM snapshot WHERE site = ? AND num = ?", gone)
        if siege:
            log = [("A", meta["seq"], "U", r[0], r[1], enc.encode(r[2:])) for r in ups]
            log += [("A", meta["seq"], "D", k[0], k[1], None) for k in gone]
            state.executemany("INSERT INTO changelog VALUES (NULL, ?, ?, ?, ?, ?, ?)", log)
        rows += len(ups) + len(gone)
    if bad:
        raise SystemExit(f"{bad} rows differ after apply")
    dst.commit()
    state.commit()
    dst.close()
    state.close()
    return {"seconds": time.perf_counter() - start, "rows": rows}


def read_back(
    dst: sqlite3.Connection,
    ups: list[tuple[Any, ...]],
    digests: list[bytes],
    norm: Callable[[Any], tuple[Any, ...]],
    hasher: Callable[[Any], bytes],
) -> int:
    """Rows read back by key (500 keys a query, through a temporary key table: SQLite does
    not use the primary key for ``(a, b) IN (VALUES ...)``), hashed: how many differ."""
    dst.execute("CREATE TEMP TABLE IF NOT EXISTS back(site TEXT, num INTEGER)")
    want = {(r[0], r[1]): d for r, d in zip(ups, digests, strict=True)}
    keys = list(want)
    bad = 0
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        dst.execute("DELETE FROM temp.back")
        dst.executemany("INSERT INTO temp.back VALUES (?, ?)", part)
        seen = 0
        for raw in dst.execute("SELECT v.* FROM temp.back JOIN ventes v USING (site, num)"):
            row = norm(raw)
            seen += 1
            if hasher(row) != want[(row[0], row[1])]:
                bad += 1
        bad += len(part) - seen
    return bad


# ----------------------------------------------------------------------------- driver


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["--dir", str(args.dir)]
    cmd += ["--rows", str(args.rows), "--receiver", args.receiver]
    cmd += ["--step-rows", str(args.step_rows)]
    return bench_sync.run_script_phase(__file__, name, cmd)


def child(args: argparse.Namespace) -> None:
    simple = {
        "generate": bench_sync.phase_generate,
        "raw": bench_sync.phase_raw,
        "mutate": bench_sync.phase_mutate,
        "check": bench_sync.phase_check,
    }
    if args.phase in simple:
        result = simple[args.phase](args.dir, args.rows)
    else:
        phases = {"steps": phase_steps, "export": phase_export, "import": phase_import}
        result = phases[args.phase](args.dir, args)
    print(json.dumps(result, default=str))


def report(args: argparse.Namespace, res: dict[str, dict[str, Any]]) -> None:
    raw = res["raw"]["cpu"]
    print(f"rows {args.rows:,}; receiver {args.receiver}; raw copy {raw:.2f} CPU s")
    steps = res["steps"]
    print(f"\nsteps on {steps['rows']:,} rows (CPU µs per row):")
    for label, us, note in steps["lines"]:
        print(f"  {label:50s} {us:6.2f}  {note}")
    for p, title in (("1", "full"), ("2", "incremental")):
        exp, imp = res[f"export{p}"], res[f"import{p}"]
        changes = exp["upserts"] + exp["deletes"]
        print(f"\n[{title}] {exp['upserts']:,} upserts, {exp['deletes']:,} deletes; package")
        print(
            f"  {exp['package_bytes']:,} bytes = {exp['package_bytes'] / max(1, changes):.1f} B/row"
        )
        for label, r in (("export", exp), ("import", imp)):
            print(
                f"  {label}: {r['cpu']:.2f} CPU s, {r['seconds']:.2f} s wall, "
                f"peak {r['peak_mb']:.0f} MB, /raw {r['cpu'] / raw:.2f}"
            )
        total = exp["cpu"] + imp["cpu"]
        wall = exp["seconds"] + imp["seconds"]
        print(f"  end to end: {total:.2f} CPU s; {args.rows / wall:,.0f} rows/s wall")
        ratio = wall / res["raw"]["seconds"]
        print(f"  ratio to raw copy: {ratio:.2f} (CPU time ratio {total / raw:.2f})")
    same = res["check1"]["same"] and res["check2"]["same"]
    load = max(r["load"] for r in res.values())
    print(f"\nB equals A after each pass: {same}; load average up to {load:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--step-rows", type=int, default=200_000)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--receiver", choices=("siege", "serveur"), default="siege")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lacking = missing()
    if lacking:
        print(f"spike_rowwise: needs {', '.join(lacking)}: pip install xxhash msgspec zstandard")
        return 0
    if args.phase:
        child(args)
        return 0
    own = args.dir is None
    args.dir = Path(args.dir or tempfile.mkdtemp(prefix="synchro-spike-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        res: dict[str, dict[str, Any]] = {}
        order = ("generate", "raw", "steps", "export1", "import1", "check1", "mutate")
        for key in (*order, "export2", "import2", "check2"):
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
