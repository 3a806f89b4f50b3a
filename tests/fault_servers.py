"""The fault suite's world with nodes whose database is on PostgreSQL or MariaDB.

``fault_helpers`` runs whole rounds (real ``python -m synchro`` processes over FTPS on
loopback) with SQLite files only. Here a node's database may be a PostgreSQL or MariaDB
database on 127.0.0.1, reached by the product through the real ODBC driver (the
connection strings of ``tests/backends.py``), e.g. the Siège on PostgreSQL, A on MariaDB,
B on SQLite (``LAYOUT``).

``build_server_template(root, layout)`` makes the group once: a database per server node
(schema of ``fault_helpers.SCHEMA`` in that dialect), ``synchro init --db <connection>``,
a first round that every node applies and that must give ``model.db``: an SQLite file
made from the same SQL apart from any node, which ``expected_after`` starts from.
``ServerWorld.copy(template, folder)`` gives a scenario its own copy: the folders, and
each server database cloned under a new unique name (dropped when the world closes);
``scenario()`` of ``fault_helpers`` runs on it as on the SQLite world.

The rows the nodes change are written and read through pyodbc (``server_dbs``), never
through synchro's adapter (rule 1: a value is not checked only through what wrote it), and
they carry text that stresses the drivers (``RICH``: beyond the BMP, CJK, the characters
MariaDB Connector/ODBC miscounts in UTF-16). Rows are compared in ``canon`` form.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from fault_helpers import (
    BASE,
    NODES,
    SCHEMA,
    TABLES,
    World,
    init_group,
    mutations,
    seed_sql,
    table_rows,
)
from rounds_helpers import sql
from server_dbs import (
    ServerDb,
    canon_rows,
    clone_database,
    create_database,
    drop_database,
    run_sql,
    server_rows,
)

LAYOUT = {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"}
LAYOUT_FILE = "servers.json"  # in a world's root: {node: [kind, database, port]}
DDL = """
CREATE TABLE clients(id INTEGER NOT NULL PRIMARY KEY, nom TEXT NOT NULL, note TEXT){end};
CREATE TABLE commandes(id INTEGER NOT NULL PRIMARY KEY, client_id INTEGER NOT NULL,
    montant DECIMAL(10,2), etat TEXT, FOREIGN KEY (client_id) REFERENCES clients (id)){end};
"""
# Text the drivers get wrong when they get text wrong: beyond the BMP (emoji, a joined
# family, a musical symbol, CJK extension B), CJK and Hangul, the characters whose UTF-16
# low byte is D8-DB (Ø Ú Û, Hebrew ט י, Cyrillic Ә, ヘ), combining marks, a quote, a tab
# and a new line. No ';' (statements are split on it) and no backslash (MariaDB escapes).
RICH = (
    "Zoé à l'hôtel « Ø Ú Û » ÿ",
    "漢字かなカナ ヘ 한국어 中文",
    "😀🚀 👨‍👩‍👧 𝄞 𠀋𡈽",
    "עברית ט י ך כ Әә Ѳ",
    "e\u0301 a\u0308 tab\there\nnew line",
)
RICH_ROWS = 10  # rich clients each node adds per round (ids +900.. of its round's range)


# -- the changes of a round -----------------------------------------------------------------


def rich_mutations(node: str, round_no: int) -> str:
    """``RICH_ROWS`` clients with multilingual names and long notes (ids 900.. of the
    node's range of the round: the next round's ``mutations`` update and delete some);
    from round 2, the rich rows of the round before get more such text appended."""
    base = BASE[node] + round_no * 1000 + 900
    lines = []
    for k in range(RICH_ROWS):
        name = f"{node} {round_no} riche {k} {RICH[k % len(RICH)]}".replace("'", "''")
        note = " | ".join(RICH[(k + j) % len(RICH)] for j in range(k * 20 + 1))
        note = note.replace("'", "''")
        lines.append(f"INSERT INTO clients VALUES ({base + k}, '{name}', '{note}');")
    if round_no > 1:
        prev = base - 1000
        lines.append(
            f"UPDATE clients SET note = note || ' ✓ 😀 ヘ Ø' WHERE id BETWEEN {prev} AND "
            f"{prev + RICH_ROWS - 1};"
        )
    return "\n".join(lines)


def bulk_mutations(node: str, round_no: int, count: int) -> str:
    """``count`` more plain clients of ``node`` in round ``round_no``, in one statement
    (ids 500,000 above the node's base: apart from every other row); '' for none. A bigger
    package makes an apply last long enough to be caught while it writes."""
    if not count:
        return ""
    base = BASE[node] + 500_000 + round_no * 10_000
    values = ", ".join(f"({base + i}, '{node} {round_no} lot {i}', 'lot')" for i in range(count))
    return f"\nINSERT INTO clients VALUES {values};"


# -- the world --------------------------------------------------------------------------------


class ServerWorld(World):
    """``World`` whose nodes named in ``root/servers.json`` have their database on a server;
    the others keep ``data.db``. The databases it cloned are dropped by ``close()``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.servers: dict[str, ServerDb] = {}
        layout = root / LAYOUT_FILE
        if layout.exists():
            saved = json.loads(layout.read_text(encoding="utf-8"))
            self.servers = {n: ServerDb(*where) for n, where in saved.items()}
        self.owned: list[ServerDb] = []
        self.bulk: dict[tuple[str, int], int] = {}  # (node, round) -> more plain rows

    @classmethod
    def copy(cls, template: Path, root: Path, *, hq_address: str = "127.0.0.1") -> ServerWorld:
        world = super().copy(template, root, hq_address=hq_address)
        assert isinstance(world, ServerWorld)
        try:
            for node, source in sorted(world.servers.items()):
                clone = clone_database(source)
                world.owned.append(clone)
                world.point_at(node, clone)
        except BaseException:
            world.close()
            raise
        return world

    def point_at(self, node: str, db: ServerDb) -> None:
        """``node``'s settings (and this world's layout file) name ``db``."""
        from synchro.config.store import load_config, save_config

        path = self.folder(node) / "synchro.toml"
        config = load_config(path)
        database = dataclasses.replace(config.database, connection=db.connection)
        save_config(dataclasses.replace(config, database=database), path)
        self.servers[node] = db
        self.save_layout()

    def save_layout(self) -> None:
        layout = {n: [d.kind, d.name, d.port] for n, d in self.servers.items()}
        (self.root / LAYOUT_FILE).write_text(json.dumps(layout), encoding="utf-8")

    def connection(self, node: str) -> str:
        """What ``synchro init --db`` takes for ``node``."""
        return self.servers[node].connection if node in self.servers else "data.db"

    def mutations(self, node: str, round_no: int) -> str:
        more = bulk_mutations(node, round_no, self.bulk.get((node, round_no), 0))
        return mutations(node, round_no) + "\n" + rich_mutations(node, round_no) + more

    def model(self, template: Path) -> Path:
        return template / "model.db"

    def mutate(self, round_no: int) -> None:
        for node in NODES:
            if node in self.servers:
                # a site's first round refers to clients of the Siège it does not have yet
                checks = round_no > 1 or node == "SIEGE"
                run_sql(self.servers[node], self.mutations(node, round_no), foreign_keys=checks)
            else:
                sql(self.db(node), self.mutations(node, round_no))

    def rows(self, node: str) -> dict[str, set[tuple[Any, ...]]]:
        """``node``'s tables as its own driver reads them (``canon`` form)."""
        if node in self.servers:
            return server_rows(self.servers[node], TABLES)
        return canon_rows(table_rows(self.db(node)))

    def differences(self, expected: dict[str, set[tuple[Any, ...]]]) -> tuple[int, int, list[str]]:
        return super().differences(canon_rows(expected))  # compared in the ``canon`` form

    def close(self) -> None:
        super().close()
        while self.owned:
            drop_database(self.owned.pop())


# -- the template -------------------------------------------------------------------------------


def build_server_template(
    root: Path,
    layout: dict[str, str] | None = None,
    python: str = sys.executable,
    ports: dict[str, int] | None = None,
) -> Path:
    """The group set up with the CLI on ``layout``'s back ends (node -> postgresql, mariadb
    or sqlite) after a first round, and ``model.db``; a kind named in ``ports`` on the
    server of that port (``own_db_servers``), else on the shared one. Its databases are
    dropped by ``drop_template``, also when this fails."""
    layout = layout or LAYOUT
    root.mkdir(parents=True, exist_ok=True)
    world = ServerWorld(root)
    try:
        for node in NODES:
            root.joinpath(node).mkdir()
            kind = layout.get(node, "sqlite")
            seed = seed_sql() if node == "SIEGE" else ""
            if kind == "sqlite":
                sql(world.db(node), SCHEMA + seed)
                continue
            db = create_database(kind, (ports or {}).get(kind, 0))
            world.servers[node] = db
            world.save_layout()
            run_sql(db, DDL.format(end=" ENGINE=InnoDB" if kind == "mariadb" else "") + seed)
        _init_nodes(world, python)
        with world:
            world.mutate(1)
            codes = world.round("sync")
        assert codes == {"A": 0, "B": 0, "SIEGE": 0}, [p.output()[-2000:] for p in world.procs]
        expected = _write_model(world, root / "model.db")
        differ = world.differences(expected)[2]
        assert not differ, f"the first round did not converge: {differ}"
    except BaseException:
        drop_template(root)
        raise
    for log in root.glob("*.log"):
        log.unlink()
    return root


def _init_nodes(world: ServerWorld, python: str) -> None:
    """``synchro init`` of each node on its database, as an administrator would."""

    dbs = {node: world.connection(node) for node in NODES}
    world.port = init_group(world.folder, dbs, python)


def _write_model(world: ServerWorld, path: Path) -> dict[str, set[tuple[Any, ...]]]:
    """The tables the first round must give, made apart from any node: an SQLite file of
    ``SCHEMA`` with the Siège's seed and every node's first changes (``canon`` form)."""
    sql(path, SCHEMA + seed_sql())
    for node in NODES:
        sql(path, world.mutations(node, 1))
    return canon_rows(table_rows(path))


def drop_template(root: Path) -> None:
    """Drop the template's server databases (a world's own clones drop with the world)."""
    for db in ServerWorld(root).servers.values():
        drop_database(db)
