"""A Siège and its establishments on loopback, for the rounds tests.

Each node has its own SQLite file and state; the Siège runs the real FTPS server (port 0)
and the real round service in a thread; sites run real ``SiteRun``s with real clients.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from synchro.config.model import Config, HQSettings, Role, SiteSettings
from synchro.engine.ack import make_ack
from synchro.engine.checksum import checksums
from synchro.engine.hq_deliveries import RoundSettings
from synchro.engine.hq_round import HQService
from synchro.engine.node import Node
from synchro.engine.nodes import build_node
from synchro.engine.site_receive import RunOptions
from synchro.engine.site_run import SiteRun
from synchro.enrolment import add_site, join_with_token
from synchro.names import ack_name
from synchro.package.crypto import decode_key
from synchro.reports import ReportStore, RunRecord, State
from synchro.transport.ftp_client import SiteClient
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import ensure_certificate

SCHEMA = """
CREATE TABLE articles(id INTEGER PRIMARY KEY, nom TEXT NOT NULL, prix DECIMAL(10,2));
CREATE TABLE ventes(site TEXT NOT NULL, num INTEGER NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles(id), qte INTEGER NOT NULL,
    PRIMARY KEY(site, num));
"""


def sql(db: Path, script: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def backup(db: Path, to: Path) -> None:
    """What a backup tool does: SQLite's online backup of the live file."""
    source, target = sqlite3.connect(db), sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


@dataclasses.dataclass
class Member:
    code: str
    folder: Path
    db: Path
    config: Config
    connection: str = ""  # an ODBC connection string instead of the SQLite file

    def node(self) -> Node:
        key = self.config.group_key
        return build_node(
            self.config,
            self.folder / "state.db",
            self.folder / "packages",
            connection=self.connection or str(self.db),
            key=decode_key(key) if key else None,
        )


class Group:
    """``with Group(tmp_path, ["3615", "3616"]) as g:`` — HQ server and service running."""

    def __init__(
        self,
        root: Path,
        sites: list[str],
        *,
        servers: int | None = None,
        max_reception: dt.timedelta = dt.timedelta(seconds=30),
        schema: str = SCHEMA,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        run_service: bool = True,
        passive_ports: tuple[int, int] | None = None,
        connections: dict[str, str] | None = None,
        group_key: str = "",
        require_tls: bool = True,
    ) -> None:
        self.root = root
        self.commands: queue.Queue[str] = queue.Queue()  # for the Siège's loop
        cert, key = root / "hq" / "cert.pem", root / "hq" / "key.pem"
        self.fingerprint = ensure_certificate(cert, key, "SIEGE")
        accounts: dict[str, str] = {}  # code -> secret hash, filled once the port is known
        self.server = HQServer(
            root / "ftp",
            accounts,
            cert_file=cert,
            key_file=key,
            host="127.0.0.1",
            port=0,
            passive_ports=passive_ports,
            require_tls=require_tls,
            on_received=lambda site, path: self.commands.put("wake"),
            auth_failed_delay_s=0,
            poll_interval_s=0.02,
        )
        self.server.start()
        # The Siège enrols its establishments (as ``synchro site add``); each joins with its
        # token (as ``synchro init --token``).
        hq_config = Config(
            role=Role.HQ,
            site="SIEGE",
            group_key=group_key,
            hq=HQSettings(servers=servers or len(sites), port=self.server.port),
        )
        tokens = {}
        for code in sites:
            hq_config, tokens[code] = add_site(hq_config, code, "127.0.0.1", self.fingerprint)
        accounts.update({a.code: a.secret_hash for a in hq_config.hq.sites})
        self.hq = self._member("SIEGE", hq_config, schema)
        self.reports = ReportStore(self.hq.folder / "reports.db")
        self.hq_node = self.hq.node()
        self.service = HQService(
            self.hq_node,
            self.reports,
            root / "ftp",
            RoundSettings(servers or len(sites), max_reception, sites),
            now=now,
        )
        site_settings = SiteSettings(allow_plain_ftp=not require_tls, timeout_s=10)
        self.sites = {
            code: self._member(
                code,
                join_with_token(Config(role=Role.SITE, site_settings=site_settings), token),
                schema,
            )
            for code, token in tokens.items()
        }
        self.secrets = {code: m.config.site_settings.secret for code, m in self.sites.items()}
        for code, connection in (connections or {}).items():
            self.sites[code].connection = connection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if run_service:
            self._thread = threading.Thread(
                target=self.service.run,
                args=(self.commands, lambda: not self._stop.is_set()),
                kwargs={"tick_s": 0.05},
                daemon=True,
            )
            self._thread.start()

    def _member(self, code: str, config: Config, schema: str) -> Member:
        folder = self.root / code
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / f"{code}.db"
        sql(db, schema)
        return Member(code, folder, db, config)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.server.stop()
        self.hq_node.close()
        self.reports.close()

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(
        self,
        code: str,
        *,
        secret: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> Callable[[], SiteClient]:
        def connect() -> SiteClient:
            return SiteClient(
                host,
                port or self.server.port,
                code,
                secret or self.secrets[code],
                self.fingerprint if self.server.require_tls else "",
                timeout=10,
                allow_plain=not self.server.require_tls,
            )

        return connect

    def run(
        self,
        code: str,
        *,
        attempts: int = 100,
        delay_s: float = 0.2,
        poll_s: float = 0.05,
        connect: Callable[[], SiteClient] | None = None,
        **kwargs: Any,
    ) -> RunRecord:
        member = self.sites[code]
        with member.node() as node, ReportStore(member.folder / "reports.db") as reports:
            run = SiteRun(
                node,
                connect or self.client(code),
                reports,
                RunOptions(attempts, delay_s, poll_s),
                **kwargs,
            )
            return run.run()

    def run_all(self, codes: list[str] | None = None, **kwargs: Any) -> dict[str, RunRecord]:
        """Run several sites at once (as at Heure de départ) and wait for all of them."""
        results: dict[str, RunRecord] = {}

        def one(code: str) -> None:
            results[code] = self.run(code, **kwargs)

        threads = [threading.Thread(target=one, args=(c,)) for c in codes or list(self.sites)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results

    def open_round(self) -> None:
        self.commands.put("sync")

    def round_ended(self, timeout: float = 30) -> RunRecord:
        """The last round's row once it is final (the service thread takes the acks)."""
        deadline = time.monotonic() + timeout
        while True:
            last = next(r for r in self.reports.latest() if r.kind == "round")
            if last.state is not State.RUNNING or time.monotonic() > deadline:
                return last
            time.sleep(0.02)

    def deliver(self, code: str) -> None:
        """What a site's run does first, by hand: export and upload its packages."""
        with self.sites[code].node() as node, self.client(code)() as client:
            node.export()
            for _seq, path in node.state.outbox():
                client.upload(path, path.name)

    def all_deliver(self) -> None:
        """A stepped Siège (``stepped``): a round opened, every establishment's packages
        delivered by hand, one step (the round closes, applies and publishes)."""
        assert self.service is not None
        self.service.step("open")
        for code in self.sites:
            self.deliver(code)
        self.service.step()

    def answer(self, code: str, *, ack: bool = True) -> str:
        """What a site's run does once the Siège published, by hand: download the newest
        package offered, apply it and (``ack``) send the acknowledgement. Its name."""
        member = self.sites[code]
        with member.node() as node, self.client(code)() as client:
            name = sorted(n for n in client.list_out() if n.endswith(".pkg"))[-1]
            local = member.folder / "fetched" / name
            local.parent.mkdir(exist_ok=True)
            client.download(name, local)
            node.import_package(local)
        if ack:
            self.acknowledge(code)
        return name

    def acknowledge(self, code: str) -> int | None:
        """Send the site's acknowledgement of the last Siège package it applied (its
        number; None: it applied none)."""
        member = self.sites[code]
        with member.node() as node, self.client(code)() as client:
            made = make_ack(node)
            if made is None:
                return None
            path = member.folder / ack_name(code, made[0].sequence)
            path.write_bytes(made[0].to_bytes())
            client.upload(path, path.name)
            return made[0].sequence

    def checksums(self) -> dict[str, dict[str, tuple[int, str]]]:
        out = {}
        for member in (self.hq, *self.sites.values()):
            with member.node() as node:
                out[member.code] = checksums(node.adapter, node.tables()[0])
        return out

    def converged(self) -> bool:
        sums = self.checksums()
        return len({tuple(sorted(s.items())) for s in sums.values()}) == 1


@contextmanager
def group(root: Path, sites: list[str], **kwargs: Any) -> Iterator[Group]:
    g = Group(root, sites, **kwargs)
    try:
        yield g
    finally:
        g.close()


def stepped(root: Path, sites: list[str], clock: list[dt.datetime]) -> Group:
    """A group whose Siège is stepped by the test (no service thread) on the clock
    ``clock[0]``, with 4 hours of *Temps maximum de réception*."""
    return Group(
        root, sites, run_service=False, now=lambda: clock[0], max_reception=dt.timedelta(hours=4)
    )
