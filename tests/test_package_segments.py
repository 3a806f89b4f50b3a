"""Segments: changes encoded once and spliced into several packages (issue 15).

A package assembled from segments must read back exactly as one written change by change,
through the ordinary reader (the file format is unchanged), keyed or not; a site's package
leaves out that site's own segments; a segment read short is refused like any damaged body.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from synchro.errors import PackageError
from synchro.package import PackageWriter, TableSchema, open_package
from synchro.package.body import (
    Segment,
    SegmentBuilder,
    SegmentStore,
    segments_for,
)

VENTES = TableSchema(
    "ventes",
    (("site", "text"), ("num", "int"), ("note", "text"), ("photo", "blob")),
    ("site", "num"),
)
ARTICLES = TableSchema("articles", (("id", "int"), ("nom", "text")), ("id",))
TABLES = [ARTICLES, VENTES]
KEY = bytes(range(32))


def rows_of(origin: str, count: int, start: int = 0) -> list[tuple[str, str, list[Any]]]:
    """(table, op, values) changes of one origin: multilingual text, zero bytes."""
    out: list[tuple[str, str, list[Any]]] = []
    for n in range(start, start + count):
        note = f"{origin} n°{n} « Ωμέγα » 東京 😀 \x00 {'x' * (n % 50)}"
        out.append(("ventes", "U", [origin, n, note, bytes([0, n % 256, 0])]))
    return out


def written(path: Path, changes: list[tuple[str, str, list[Any], str, int]], **kw: Any) -> Path:
    with PackageWriter(path, origin="SIEGE", sequence=1, kind="hq", tables=TABLES, **kw) as w:
        for table, op, values, origin, pos in changes:
            w.write(table, op, values, origin=origin, pos=pos)
    return path


def read_back(path: Path, key: bytes | None = None) -> list[tuple[Any, ...]]:
    return [
        (c.table, c.op, tuple(c.values), c.origin, c.pos) for c in open_package(path, key).changes()
    ]


@pytest.mark.parametrize("key", [None, KEY], ids=["clear", "keyed"])
def test_a_package_of_segments_reads_back_as_one_written_change_by_change(
    tmp_path: Path, key: bytes | None
) -> None:
    # the Siège's log: A's rows, then B's, then the Siège's own, then A again (a later round)
    log = [
        (t, op, v, origin, pos)
        for pos, (origin, (t, op, v)) in enumerate(
            [("A", c) for c in rows_of("A", 700)]  # more than a line: segments span lines
            + [("B", c) for c in rows_of("B", 3)]
            + [("SIEGE", ("articles", "U", [1, "Crème brûlée"]))]
            + [("A", c) for c in rows_of("A", 2, start=900)],
            start=1,
        )
    ]
    with SegmentStore(tmp_path / "segments") as store:
        builder = SegmentBuilder(TABLES, store)
        for table_name in ("articles", "ventes"):
            for t, op, values, origin, pos in log:
                if t == table_name:
                    builder.write(t, op, values, origin, pos)
            builder.cut()  # a new table starts a segment
        segments = builder.close()
        assert [s.origin for s in segments] == ["SIEGE", "A", "B", "A"]
        assert [s.rows for s in segments] == [1, 700, 3, 2]
        for site in ("B", "C"):
            expected = [c for c in log if c[0] == "articles"] + [
                c for c in log if c[0] == "ventes" and c[3] != site
            ]
            reference = written(tmp_path / f"ref-{site}.pkg", expected, key=key)
            path = tmp_path / f"{site}.pkg"
            with PackageWriter(
                path, origin="SIEGE", sequence=1, kind="hq", tables=TABLES, key=key
            ) as writer:
                for segment in segments_for(segments, site):
                    writer.splice(segment, store.read(segment))
                manifest = writer.close()
            got = read_back(path, key)
            assert got == read_back(reference, key)
            assert manifest.rows == len(expected)
            assert manifest.counts["ventes"]["U"] == len(expected) - 1
            assert all(origin != site for _t, _o, _v, origin, _p in got)


def test_changes_written_around_a_segment_keep_their_order(tmp_path: Path) -> None:
    """A package may mix rows written one by one and spliced segments."""
    with SegmentStore(tmp_path / "segments") as store:
        builder = SegmentBuilder(TABLES, store)
        for t, op, values in rows_of("A", 40):
            builder.write(t, op, values, "A", 1)
        (segment,) = builder.close()
        path = tmp_path / "mixed.pkg"
        with PackageWriter(path, origin="SIEGE", sequence=2, kind="hq", tables=TABLES) as w:
            w.write("articles", "U", [1, "avant"], origin="SIEGE", pos=1)
            w.splice(segment, store.read(segment))
            w.write("articles", "U", [2, "après " * 200], origin="SIEGE", pos=2)
            w.splice(segment, store.read(segment))
        got = read_back(path)
    assert [g[2][1] for g in got if g[0] == "articles"] == ["avant", "après " * 200]
    assert len(got) == 82
    assert [g[2][1] for g in got[1:41]] == list(range(40)) == [g[2][1] for g in got[42:]]


def test_a_segment_read_short_is_refused_like_any_damaged_body(tmp_path: Path) -> None:
    with SegmentStore(tmp_path / "segments") as store:
        builder = SegmentBuilder(TABLES, store)
        for t, op, values in rows_of("A", 200):
            builder.write(t, op, values, "A", 1)
        (segment,) = builder.close()
        data = store.read(segment)[:-40]  # a short read of the spill file
        path = tmp_path / "bad.pkg"
        with PackageWriter(path, origin="SIEGE", sequence=3, kind="hq", tables=TABLES) as w:
            w.splice(segment, data)
    with pytest.raises(PackageError):
        read_back(path)


def test_the_store_is_a_file_removed_when_closed(tmp_path: Path) -> None:
    where = tmp_path / "segments"
    blobs = [os.urandom(n) for n in (10, 0, 70_000)]
    with SegmentStore(where) as store:
        offsets = [store.append(b) for b in blobs]
        segments = [Segment("A", o, len(b)) for o, b in zip(offsets, blobs, strict=True)]
        assert [store.read(s) for s in reversed(segments)] == blobs[::-1]
        assert where.exists()
    assert not where.exists()
