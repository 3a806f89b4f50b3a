"""What a package says about itself: table schemas, changes, manifest, header and trailer.

A package file is laid out as (see ``writer.py`` and ``reader.py`` for the streaming parts)::

    MAGIC (12 bytes)  version (uint16 BE)  header length (uint32 BE)  header (JSON, UTF-8)
    body (a zlib stream of JSON lines of grouped changes, see ``records.py``;
          AES-256-GCM in chunks when keyed, see ``crypto.py``)
    trailer (canonical JSON)  trailer length (uint32 BE)  END_MAGIC (8 bytes)

The header describes the package (origin, sequence, kind, creation time, metadata, table
schemas, compression, encryption). The trailer holds what is only known at the end (counts,
rows, body size and the SHA-256 of every byte before the trailer). This module builds and
checks those two JSON documents; it never touches files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro.db import details as column_details
from synchro.db.base import Column, Table
from synchro.errors import Say, Worded
from synchro.i18n import render
from synchro.values import KINDS, Kind

FORMAT_VERSION = 1  # a package whose table schemas are names and kinds only
DETAILS_VERSION = 2  # the schemas also say what each column can hold (``details``)
READABLE_VERSIONS = (FORMAT_VERSION, DETAILS_VERSION)
# PNG-style: the high byte, CR LF and ^Z catch 7-bit and text-mode (FTP ASCII) transfers.
MAGIC = b"\x89SYNCHRO\r\n\x1a\n"
END_MAGIC = b"\x89FIN\r\n\x1a\n"
PACKAGE_KINDS = ("site", "hq", "local")
OPS = ("U", "D")
MAX_HEADER = 16 * 1024 * 1024
MAX_TRAILER = 16 * 1024 * 1024
MAX_COLUMNS = 4096  # MySQL's limit, the highest of the databases we serve
_SHA_HEX = re.compile(r"[0-9a-f]{64}")


class Invalid(Worded):
    """Internal: a package is not what it claims; ``reason`` is the French user text,
    ``say`` its words as a key of the locales where given (``invalid``)."""

    @property
    def reason(self) -> str:
        return str(self)


def invalid(why: str, **values: Any) -> Invalid:
    """``Invalid`` with the words ``engine.pkg.<why>`` (said in the UI's language)."""
    return Invalid(say=(f"engine.pkg.{why}", values))


def bad_header(part: str) -> Invalid:
    """« en-tête illisible (<part>) », ``part`` a key of ``engine.pkg.part``."""
    return invalid("header", part=[(f"engine.pkg.part.{part}", {})])


@dataclass(frozen=True)
class TableSchema:
    """A table as a package carries it: columns (name, kind) in database order, and key.

    ``details``: the sender's columns with what each can hold (``synchro.db.details``), for
    the receiver's pre-flight check; empty in packages of format 1. Not part of equality.
    """

    name: str
    columns: tuple[tuple[str, Kind], ...]
    key: tuple[str, ...]
    details: tuple[Column, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, table: Table) -> TableSchema:
        columns = tuple((c.name, c.kind) for c in table.columns)
        return cls(table.name, columns, tuple(table.key), tuple(table.columns))

    @property
    def table(self) -> Table:
        """The table this schema describes (with the sender's column details when known)."""
        columns = self.details or tuple(Column(n, k) for n, k in self.columns)
        return Table(self.name, columns, self.key, "primary" if self.key else "")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(kind for _, kind in self.columns)

    @property
    def key_positions(self) -> tuple[int, ...]:
        names = self.column_names
        return tuple(names.index(k) for k in self.key)

    @property
    def key_kinds(self) -> tuple[Kind, ...]:
        kinds = self.kinds
        return tuple(kinds[i] for i in self.key_positions)

    def problem(self) -> Say | None:
        """Why this schema cannot be carried (words of the locales), or None when it is
        fine."""
        if not isinstance(self.name, str) or not self.name:
            return ("engine.pkg.schema.no_name", {})
        table = {"table": self.name}
        names = [n for n, _ in self.columns]
        if not names:
            return ("engine.pkg.schema.no_column", table)
        if len(names) > MAX_COLUMNS:
            return ("engine.pkg.schema.too_many", {**table, "limit": MAX_COLUMNS})
        if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
            return ("engine.pkg.schema.names", table)
        bad = [k for _, k in self.columns if k not in KINDS]
        if bad:
            return ("engine.pkg.schema.kind", {**table, "kind": repr(bad[0])})
        if not self.key or len(set(self.key)) != len(self.key):
            return ("engine.pkg.schema.key", table)
        missing = [k for k in self.key if k not in names]
        if missing:
            return ("engine.pkg.schema.key_column", {**table, "column": repr(missing[0])})
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "columns": [list(c) for c in self.columns],
            "key": list(self.key),
        }
        if self.details:
            data["details"] = [column_details.to_json(c) for c in self.details]
        return data

    @classmethod
    def from_json(cls, data: Any) -> TableSchema:
        base = {"name", "columns", "key"}
        if not isinstance(data, dict) or not base <= set(data) <= base | {"details"}:
            raise bad_header("table_schema")
        columns, key = data["columns"], data["key"]
        if not isinstance(columns, list) or not isinstance(key, list):
            raise bad_header("table_schema")
        if any(not isinstance(c, list) or len(c) != 2 for c in columns):
            raise bad_header("columns")
        schema = cls(data["name"], tuple((c[0], c[1]) for c in columns), tuple(key))
        problem = schema.problem()
        if problem is not None or any(not isinstance(k, str) for k in schema.key):
            raise invalid("header", part=[problem or ("engine.pkg.part.key", {})])
        kinds = tuple((name, Kind(kind)) for name, kind in schema.columns)
        schema = cls(schema.name, kinds, schema.key)
        found = data.get("details")
        if found is None:
            return schema
        if not isinstance(found, list) or len(found) != len(schema.columns):
            raise bad_header("column_details")
        described = tuple(
            column_details.from_json(name, kind, d)
            for (name, kind), d in zip(schema.columns, found, strict=True)
        )
        return cls(schema.name, schema.columns, schema.key, described)


def format_version(tables: Sequence[TableSchema]) -> int:
    """The lowest format that describes these schemas: a package without column details
    stays readable by a Synchro that only knows format 1."""
    return DETAILS_VERSION if any(t.details for t in tables) else FORMAT_VERSION


@dataclass(frozen=True)
class Change:
    """One change: ``U`` upsert (whole row, schema column order) or ``D`` delete (key only)."""

    table: str
    op: str
    values: tuple[Any, ...]
    origin: str = ""  # origin site of this change (HQ's consolidated packages)
    pos: int = 0  # position in HQ's change log
    # read from a package: the values in their JSON form as it carried them (the Siège's
    # change log keeps them so instead of encoding the row again); not part of equality
    sent: list[Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Manifest:
    """Everything a package says about itself, checked against its content.

    ``sha256`` is the SHA-256 (lowercase hex) of every byte before the trailer; ``size`` is
    the size of the whole file in bytes. ``counts`` has every table of ``tables``.
    """

    format: int
    origin: str
    sequence: int
    kind: str
    created: str
    meta: dict[str, Any]
    tables: tuple[TableSchema, ...]
    counts: dict[str, dict[str, int]]
    rows: int
    sha256: str
    size: int
    encrypted: bool = False
    key_id: str = ""  # short id of the group key it was encrypted with (crypto.key_id)


@dataclass(frozen=True)
class Header:
    """The parsed header: what comes before the body."""

    origin: str
    sequence: int
    kind: str
    created: str
    meta: dict[str, Any]
    tables: tuple[TableSchema, ...]
    level: int = 1
    encryption: dict[str, Any] | None = field(default=None)

    def to_bytes(self) -> bytes:
        data = {
            "origin": self.origin,
            "sequence": self.sequence,
            "kind": self.kind,
            "created": self.created,
            "meta": self.meta,
            "tables": [t.to_json() for t in self.tables],
            "compression": {"alg": "zlib", "level": self.level},
            "encryption": self.encryption,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise bad_header("json") from exc
        keys = {"origin", "sequence", "kind", "created", "meta", "tables"}
        keys |= {"compression", "encryption"}
        if not isinstance(data, dict) or set(data) != keys:
            raise bad_header("fields")
        origin, sequence, kind = data["origin"], data["sequence"], data["kind"]
        created, meta, tables = data["created"], data["meta"], data["tables"]
        if not isinstance(origin, str) or not isinstance(created, str):
            raise bad_header("origin_date")
        if type(sequence) is not int or sequence < 0 or kind not in PACKAGE_KINDS:
            raise bad_header("sequence_kind")
        if not isinstance(meta, dict) or not isinstance(tables, list):
            raise bad_header("meta_tables")
        schemas = tuple(TableSchema.from_json(t) for t in tables)
        if len({s.name for s in schemas}) != len(schemas):
            raise bad_header("duplicate_table")
        compression = data["compression"]
        if not isinstance(compression, dict) or compression.get("alg") != "zlib":
            raise bad_header("compression")
        level = compression.get("level")
        encryption = data["encryption"]
        if encryption is not None and not isinstance(encryption, dict):
            raise bad_header("encryption")
        return cls(
            origin,
            sequence,
            kind,
            created,
            meta,
            schemas,
            level if type(level) is int else 1,
            encryption,
        )


@dataclass(frozen=True)
class Trailer:
    """What is known only at the end: counts per table and op, rows, body size, SHA-256."""

    counts: dict[str, dict[str, int]]
    rows: int
    body_size: int
    sha256: str

    def to_bytes(self) -> bytes:
        data = {
            "counts": self.counts,
            "rows": self.rows,
            "body_size": self.body_size,
            "sha256": self.sha256,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Trailer:
        """Parse and demand the canonical bytes back, so no changed byte goes unnoticed."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise invalid("trailer") from exc
        if not isinstance(data, dict) or set(data) != {"counts", "rows", "body_size", "sha256"}:
            raise invalid("trailer")
        counts, rows, size, sha = data["counts"], data["rows"], data["body_size"], data["sha256"]
        if not _valid_counts(counts) or type(rows) is not int or type(size) is not int:
            raise invalid("trailer")
        if not isinstance(sha, str) or not _SHA_HEX.fullmatch(sha):
            raise invalid("trailer")
        trailer = cls(counts, rows, size, sha)
        if trailer.to_bytes() != raw:
            raise invalid("trailer_form")
        return trailer


def _valid_counts(counts: Any) -> bool:
    if not isinstance(counts, dict):
        return False
    for per_op in counts.values():
        if not isinstance(per_op, dict) or set(per_op) != set(OPS):
            return False
        if any(type(n) is not int or n < 0 for n in per_op.values()):
            return False
    return True


def check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``meta`` (what a reader will get back), or ValueError."""
    try:
        copy = json.loads(json.dumps(dict(meta), ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta doit être du JSON simple : {exc}") from exc
    assert isinstance(copy, dict)
    return copy


def check_tables(tables: Sequence[TableSchema]) -> tuple[TableSchema, ...]:
    schemas = tuple(tables)
    for schema in schemas:
        problem = schema.problem()
        if problem is not None:
            raise ValueError(render(problem, "fr"))
    if len({s.name for s in schemas}) != len(schemas):
        raise ValueError("table en double dans le paquet")
    return schemas
