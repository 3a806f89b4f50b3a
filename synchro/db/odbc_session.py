"""The session an ``OdbcAdapter`` sets up on a server when it connects: MariaDB's strict
``sql_mode`` and READ COMMITTED, the default schema of PostgreSQL and SQL Server, and a
mark a trigger can read (``_marked``)."""

from __future__ import annotations

from synchro.db.doing import act
from synchro.db.odbc_discovery import OdbcDiscovery
from synchro.errors import DatabaseError


class OdbcSession(OdbcDiscovery):
    """The session settings of ``OdbcAdapter`` (called from its ``_session``)."""

    def _strict(self) -> None:
        """MariaDB: refuse, never alter, a value a column cannot hold. Without a strict
        ``sql_mode`` the server stores '?' for a character its charset lacks, clamps 70000
        to 32767 in a SMALLINT and cuts long text, with a mere warning."""
        (mode,) = self._query("SELECT @@SESSION.sql_mode")[0]
        if "STRICT_ALL_TABLES" not in str(mode).upper().split(","):
            self._run(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''),"
                " 'STRICT_ALL_TABLES')",
                [],
                act("open"),
            ).close()

    def _read_committed(self) -> None:
        """MariaDB: transactions in READ COMMITTED, as PostgreSQL's always are. In InnoDB's
        REPEATABLE READ a locking read locks every row its plan scans and the gaps next to
        the keys it does not find: the apply's read of a batch (500 keys) held a whole
        small table, and a shop's program writing rows the package never touched met
        « Deadlock found » (``bench/soak_live.py --layout maria-pg``). A server that logs
        statements (``binlog_format`` STATEMENT, for its replicas or its backups) refuses
        InnoDB's writes in READ COMMITTED (1665): this session's changes are then logged
        as the server's default does (MIXED: as rows where a statement would not replay
        the same), when the user may (SUPER, BINLOG ADMIN); if not, REPEATABLE READ."""
        (log_bin, logged) = self._query("SELECT @@log_bin, @@binlog_format")[0]
        if str(log_bin) == "1" and str(logged).upper() == "STATEMENT":
            try:
                self._run("SET SESSION binlog_format = 'MIXED'", [], act("open")).close()
            except DatabaseError:  # 1227 « Access denied »: the server's own way, then
                return
        level = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
        self._run(level, [], act("open")).close()

    def _marked(self) -> None:
        """A mark on the session that a trigger can read, to leave alone what Synchro
        writes (a stock decremented by a sale's trigger where the sale was made, not again
        at every node the sale reaches): PostgreSQL ``current_setting('synchro.session',
        true) = 'on'``, MariaDB ``@synchro_session = 1`` (``README.md``, triggers)."""
        mark = {
            "postgresql": "SELECT set_config('synchro.session', 'on', false)",
            "mysql": "SET @synchro_session = 1",
        }.get(self.dialect)
        if mark is not None:
            self._run(mark, [], act("open")).close()

    def _default_schema(self) -> str | None:
        sql = {"postgresql": "SELECT current_schema()", "mssql": "SELECT SCHEMA_NAME()"}
        if self.dialect not in sql:
            return None
        return str(self._query(sql[self.dialect])[0][0])
