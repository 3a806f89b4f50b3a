"""Package write/read speed and size against a CSV + zlib baseline measured in the same run.

    .venv/bin/python bench/bench_package.py [--rows 1000000] [--level 1]

Rows look like ``ventes(site, num, article_id, qte, montant, quand, note)``, ~100 bytes.
Baseline: ``csv.writer`` into zlib at the same level, and ``csv.reader`` back (strings
only, no check). Ours: typed values, SHA-256, and on reading a full verification pass
before the changes are streamed (both passes are timed). Wall and CPU seconds are shown:
on a shared machine CPU time is the steadier figure. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from synchro.package import PackageWriter, TableSchema, open_package
from synchro.package.crypto import new_group_key

VENTES = TableSchema(
    "ventes",
    (
        ("site", "text"),
        ("num", "int"),
        ("article_id", "int"),
        ("qte", "int"),
        ("montant", "decimal"),
        ("quand", "datetime"),
        ("note", "text"),
    ),
    ("site", "num"),
)
POOL = 1000
MONTANTS = [Decimal(f"{(i * 37) % 100000 / 100:.2f}") for i in range(POOL)]
START = dt.datetime(2026, 1, 1, 8, 0, 0)
QUAND = [START + dt.timedelta(seconds=i * 61, microseconds=i * 7) for i in range(POOL)]
NOTES = [f"vente comptoir caisse {i % 7} ticket" for i in range(POOL)]


def ventes(count: int) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        k = i % POOL
        yield ("3615", i, (i * 7919) % 5000, 1 + i % 9, MONTANTS[k], QUAND[k], NOTES[k])


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def best(repeat: int, func: Callable[[], Any]) -> tuple[Timer, Any]:
    """The fastest of ``repeat`` runs (wall and CPU each), and the last result."""
    fastest: Timer | None = None
    result = None
    for _ in range(repeat):
        with Timer() as timer:
            result = func()
        if fastest is None:
            fastest = timer
        fastest.wall = min(fastest.wall, timer.wall)
        fastest.cpu = min(fastest.cpu, timer.cpu)
    assert fastest is not None
    return fastest, result


def baseline_write(path: Path, count: int, level: int) -> None:
    packer = zlib.compressobj(level)
    with open(path, "wb") as out:
        text = io.StringIO()
        writer = csv.writer(text)
        for n, row in enumerate(ventes(count), 1):
            writer.writerow(row)
            if n % 512 == 0:
                out.write(packer.compress(text.getvalue().encode()))
                text.seek(0)
                text.truncate()
        out.write(packer.compress(text.getvalue().encode()))
        out.write(packer.flush())


def baseline_read(path: Path) -> int:
    unpacker = zlib.decompressobj()
    rows = 0
    pending = b""
    with open(path, "rb") as src:
        while block := src.read(256 * 1024):
            data = pending + unpacker.decompress(block)
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            for _ in csv.reader(data[:cut].decode().splitlines()):
                rows += 1
    return rows


def package_write(path: Path, count: int, level: int, key: bytes | None) -> None:
    with PackageWriter(
        path, origin="3615", sequence=1, kind="site", tables=[VENTES], key=key, level=level
    ) as writer:
        write = writer.write
        for row in ventes(count):
            write("ventes", "U", row)


def package_read(path: Path, key: bytes | None) -> int:
    rows = 0
    for _ in open_package(path, key).changes():
        rows += 1
    return rows


def line(name: str, rows: int, timer: Timer, size: int, base: Timer | None = None) -> str:
    ratio = f"{base.wall / timer.wall:6.2f}× wall {base.cpu / timer.cpu:6.2f}× cpu" if base else ""
    return (
        f"{name:<34} {rows / timer.wall:>10,.0f} rows/s wall {rows / timer.cpu:>10,.0f} rows/s cpu"
        f" {size / rows:6.1f} B/row  {ratio}"
    )


def run(rows: int, level: int, repeat: int) -> None:
    key = new_group_key()
    with tempfile.TemporaryDirectory() as folder:
        base_path = Path(folder) / "base.csv.z"
        plain = Path(folder) / "plain.pkg"
        sealed = Path(folder) / "sealed.pkg"
        gen, _ = best(repeat, lambda: sum(1 for _ in ventes(rows)))
        writes: list[tuple[str, Callable[[], Any], Path]] = [
            ("baseline csv.writer+zlib", lambda: baseline_write(base_path, rows, level), base_path),
            ("package write", lambda: package_write(plain, rows, level, None), plain),
            ("package write (chiffré)", lambda: package_write(sealed, rows, level, key), sealed),
        ]
        base: Timer | None = None
        for name, func, path in writes:
            timer, _ = best(repeat, func)
            timer.wall -= gen.wall  # producing the rows is the caller's cost, not ours
            timer.cpu -= gen.cpu
            print(line(name, rows, timer, path.stat().st_size, base))
            base = base or timer
        print(f"(row generation, subtracted above: {gen.wall:.2f} s)")
        base_read, count = best(repeat, lambda: baseline_read(base_path))
        assert count == rows
        print(line("baseline zlib+csv.reader", rows, base_read, base_path.stat().st_size))
        reads = (("package read", plain, None), ("package read (chiffré)", sealed, key))
        for name, path, k in reads:
            verify, _ = best(repeat, lambda: open_package(path, k))  # noqa: B023
            timer, count = best(repeat, lambda: package_read(path, k))  # noqa: B023
            assert count == rows
            size = path.stat().st_size
            print(line(f"{name} (vérif + flux)", rows, timer, size, base_read))
            print(line("  dont vérification seule", rows, verify, size, base_read))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    print(
        f"{args.rows:,} rows, zlib level {args.level}, best of {args.repeat}; "
        "ratio = baseline time / our time (>1: we are faster)"
    )
    run(args.rows, args.level, args.repeat)


if __name__ == "__main__":
    main()
