"""``synchro demo``: a Siège and two Serveurs of a small business, two rounds over FTPS.

Everything happens in a temporary folder on loopback: three SQLite databases (articles,
clients, ventes, paiements), three configurations written and read back like real ones,
the Siège's FTPS server with one account per establishment, connection tokens, and two
rounds — the first distributes the Siège's data and collects each shop's sales, the second
carries updates, a delete and a conflict. Then the report is printed and the per-table
checksums of the three databases are compared: they must be identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from synchro.application import Event, Synchro, node_checksums
from synchro.config.model import (
    Config,
    EmailSettings,
    HQSettings,
    MailSecurity,
    Role,
    SiteSettings,
)
from synchro.config.store import load_config, save_config
from synchro.enrolment import enrol_site, join_with_token
from synchro.errors import ErrorKind, SynchroError, kind_of
from synchro.i18n import tr
from synchro.log import setup_logging
from synchro.names import parse_port, split_address
from synchro.platform.paths import NodePaths, paths_beside
from synchro.reports import RunRecord, State, error_in, format_date, state_label

SCHEMA = """
CREATE TABLE articles(id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, nom TEXT NOT NULL,
    prix DECIMAL(10,2) NOT NULL, actif BOOLEAN NOT NULL DEFAULT 1, maj DATETIME);
CREATE TABLE clients(id INTEGER PRIMARY KEY, nom TEXT NOT NULL, ville TEXT, email TEXT);
CREATE TABLE ventes(site TEXT NOT NULL, num INTEGER NOT NULL,
    client_id INTEGER REFERENCES clients(id), article_id INTEGER NOT NULL REFERENCES articles(id),
    qte INTEGER NOT NULL, montant DECIMAL(12,2) NOT NULL, quand DATETIME NOT NULL,
    PRIMARY KEY(site, num));
CREATE TABLE paiements(site TEXT NOT NULL, num INTEGER NOT NULL, vente_num INTEGER NOT NULL,
    mode TEXT NOT NULL, montant DECIMAL(12,2) NOT NULL, recu BLOB,
    PRIMARY KEY(site, num), FOREIGN KEY(site, vente_num) REFERENCES ventes(site, num));
"""

ARTICLES = [
    (1, "CAF-01", "Café en grains 1 kg", "18.90"),
    (2, "THE-02", "Thé vert 250 g", "7.50"),
    (3, "CHO-03", "Chocolat noir 70 %", "3.20"),
    (4, "CRO-04", "Croissant pur beurre", "1.10"),
    (5, "PAN-05", "Pain de campagne", "2.80"),
    (6, "JUS-06", "Jus d'orange pressé 🍊", "4.00"),
]
CLIENTS = [
    (1, "Dupont Élise", "Lyon", "elise@example.invalid"),
    (2, "Martin Noël", "Grenoble", None),
    (3, "Garçon Zoé", "Annecy", "zoe@example.invalid"),
]
HQ, SHOPS = "SIEGE", ("3615", "3616")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _exec(db: Path, sql: str, params: list[tuple[object, ...]] | None = None) -> None:
    conn = sqlite3.connect(db)
    try:
        if params is None:
            conn.executescript(sql)
        else:
            conn.executemany(sql, params)
        conn.commit()
    finally:
        conn.close()


def _sales(
    site: str, start: int, count: int
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    ventes: list[tuple[object, ...]] = []
    paiements: list[tuple[object, ...]] = []
    for n in range(start, start + count):
        article = 1 + n % len(ARTICLES)
        qte = 1 + n % 3
        montant = f"{float(ARTICLES[article - 1][3]) * qte:.2f}"
        quand = f"2026-11-2{n % 9} {8 + n % 10:02d}:{n % 60:02d}:00"
        ventes.append((site, n, 1 + n % len(CLIENTS), article, qte, montant, quand))
        paiements.append((site, n, n, "CB" if n % 2 else "Espèces", montant, bytes([n % 256]) * 4))
    return ventes, paiements


@dataclasses.dataclass
class DemoNode:
    name: str
    paths: NodePaths
    db: Path

    def config(self) -> Config:
        return load_config(self.paths.config_file)


def _setup(root: Path, smtp: str | None, lang: str) -> tuple[DemoNode, list[DemoNode]]:
    port = _free_port()
    email = EmailSettings()
    if smtp:
        host, port_text = split_address(smtp)
        email = EmailSettings(
            recipients=("gerant@example.invalid",),
            sender="synchro@example.invalid",
            server=host or "127.0.0.1",
            port=parse_port(port_text or "25"),
            security=MailSecurity.NONE,
            timeout_s=10,
        )
    hq_dir = root / "siege"
    hq = DemoNode(HQ, paths_beside(hq_dir / "synchro.toml"), hq_dir / "siege.db")
    hq.paths.ensure()
    _exec(hq.db, SCHEMA)
    _exec(
        hq.db,
        "INSERT INTO articles(id, ref, nom, prix, actif, maj) VALUES (?,?,?,?,1,"
        "'2026-11-01 09:00:00')",
        list(ARTICLES),
    )
    _exec(hq.db, "INSERT INTO clients VALUES (?,?,?,?)", list(CLIENTS))
    hq_config = Config(
        role=Role.HQ,
        site=HQ,
        language=lang,
        last_sync=dt.datetime(2026, 11, 1),
        send_email=bool(smtp),
        email=email,
        hq=HQSettings(
            servers=len(SHOPS),
            max_reception=dt.timedelta(seconds=60),
            listen_address="127.0.0.1",
            port=port,
            public_address="127.0.0.1",
        ),
    )
    hq_config = dataclasses.replace(
        hq_config, database=dataclasses.replace(hq_config.database, connection=hq.db.name)
    )
    shops = []
    for code in SHOPS:
        folder = root / f"magasin-{code}"
        node = DemoNode(code, paths_beside(folder / "synchro.toml"), folder / f"{code}.db")
        node.paths.ensure()
        _exec(node.db, SCHEMA)
        hq_config, token = enrol_site(hq_config, hq.paths, code)  # like « synchro site add »
        config = Config(
            role=Role.SITE,
            language=lang,
            last_sync=dt.datetime(2026, 11, 1),
            send_email=bool(smtp),
            email=email,
            site_settings=SiteSettings(
                attempts=5,
                retry_delay=dt.timedelta(seconds=1),
                auto_sync=False,
                timeout_s=10,
            ),
        )
        config = dataclasses.replace(
            join_with_token(config, token),
            database=dataclasses.replace(config.database, connection=node.db.name),
        )
        save_config(config, node.paths.config_file)
        shops.append(node)
    return hq, shops


def _round(
    siege: Synchro, shops: list[DemoNode], printer: Callable[[Event], None]
) -> list[RunRecord]:
    """Open a round at the Siège and run both shops at once, like at Heure de départ."""
    siege.run_now()
    results: list[RunRecord] = []
    errors: list[BaseException] = []

    def run(shop: DemoNode) -> None:
        try:
            node = Synchro.open(shop.config(), shop.paths, listeners=(printer,), poll_s=0.2)
            try:
                results.append(node.sync_once())
            finally:
                node.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,), name=f"demo-{s.name}") for s in shops]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        say = ("cli.demo.shop_failed", {"error": repr(errors[0])})
        raise SynchroError(kind=kind_of(errors[0]), say=say)
    return results


def _wait_round_closed(siege: Synchro, count: int, timeout: float = 60) -> None:
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while dt.datetime.now() < deadline:
        rounds = [r for r in siege.report(50) if r.kind == "round"]
        if len(rounds) >= count and all(r.state is not State.RUNNING for r in rounds):
            return
        threading.Event().wait(0.1)
    raise SynchroError(kind=ErrorKind.INTERNAL, say=("cli.demo.round_late", {}))


def run_demo(
    folder: str | None,
    *,
    smtp: str | None,
    keep: bool,
    printer: Callable[[Event], None],
    lang: str = "fr",
) -> int:
    """The whole demonstration, told in ``lang``; 0 when the three bases end identical."""
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="synchro-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    print(tr("cli.demo.folder", lang, folder=root))
    setup_logging(root / "journaux", console=False)
    hq, shops = _setup(root, smtp, lang)
    siege = Synchro.open(hq.config(), hq.paths, listeners=(printer,))
    siege.serve()
    try:
        print("\n" + tr("cli.demo.round1", lang))
        for i, shop in enumerate(shops):
            v, p = _sales(shop.name, 1, 40 + 10 * i)
            _exec(shop.db, "INSERT INTO ventes VALUES (?,?,?,?,?,?,?)", v)
            _exec(shop.db, "INSERT INTO paiements VALUES (?,?,?,?,?,?)", p)
        _round(siege, shops, printer)
        _wait_round_closed(siege, 1)
        print("\n" + tr("cli.demo.round2", lang))
        _exec(
            hq.db,
            "UPDATE articles SET prix = '19.50', maj = '2026-11-28 10:00:00' "
            "WHERE id = 1;"
            "INSERT INTO articles(id, ref, nom, prix) VALUES (7, 'BRI-07', "
            "'Brioche tressée', '4.60')",
        )
        _exec(
            shops[0].db,
            "UPDATE articles SET prix = '3.40' WHERE id = 3;"
            "UPDATE clients SET ville = 'Villeurbanne' WHERE id = 1;"
            "DELETE FROM paiements WHERE site = '3615' AND num = 1;"
            "DELETE FROM ventes WHERE site = '3615' AND num = 1;",
        )
        _exec(
            shops[1].db,
            "UPDATE articles SET prix = '3.60' WHERE id = 3;"
            "UPDATE articles SET prix = '18.00' WHERE id = 1;",
        )
        v, p = _sales(shops[1].name, 100, 5)
        _exec(shops[1].db, "INSERT INTO ventes VALUES (?,?,?,?,?,?,?)", v)
        _exec(shops[1].db, "INSERT INTO paiements VALUES (?,?,?,?,?,?)", p)
        _round(siege, shops, printer)
        _wait_round_closed(siege, 2)
        return _conclude(hq, shops, siege, lang)
    finally:
        siege.close()
        if not keep and not folder:
            shutil.rmtree(root, ignore_errors=True)


def _conclude(hq: DemoNode, shops: list[DemoNode], siege: Synchro, lang: str) -> int:
    print("\n" + tr("cli.demo.report", lang))
    site, start, end, state, received, sent, error = (
        tr(f"cli.report.{word}", lang)
        for word in ("site", "started", "ended", "state", "received", "sent_long", "error")
    )
    print(f"  {site:14} {start:19} {end:19} {state:11} {received:>7} {sent:>8}  {error}")
    for r in reversed(siege.report(50)):
        print(
            f"  {r.site:14} {format_date(r.started):19} {format_date(r.ended):19} "
            f"{state_label(r.state, lang):11} {r.rows_received:>7} {r.rows_sent:>8}  "
            f"{error_in(r, lang)}"
        )
    sums = {}
    for node in (hq, *shops):
        sums[node.name], kept = node_checksums(node.config(), node.paths)
        if node is hq:
            conflicts = kept
    print("\n" + tr("cli.demo.checksums", lang))
    same = True
    for table in sums[HQ]:
        values = {name: s[table] for name, s in sums.items()}
        ok = len({v for v in values.values()}) == 1
        same = same and ok
        count, digest = values[HQ]
        verdict = tr("cli.demo.same", lang) if ok else tr("cli.demo.different", lang, sums=values)
        row = {"table": f"{table:10}", "rows": f"{count:>5}", "digest": digest[:16]}
        print(tr("cli.demo.checksum", lang, verdict=verdict, **row))
    print("\n" + tr("cli.demo.conflicts", lang, n=len(conflicts)))
    for c in conflicts:
        who = {"winner": c["winner"], "loser": c["loser"], "policy": c["policy"]}
        print(tr("cli.demo.conflict", lang, table=c["tbl"], key=c["key_json"], **who))
    rounds = [r for r in siege.report(50) if r.kind == "round"]
    ok_rounds = all(r.state is State.OK for r in rounds)
    if same and ok_rounds:
        print("\n" + tr("cli.demo.succeeded", lang))
        return 0
    print("\n" + tr("cli.demo.failed_end", lang))
    return 1
