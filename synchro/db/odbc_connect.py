"""Opening an ODBC connection through pyodbc, and saying why it failed.

pyodbc is imported inside functions only: it links the system's unixODBC, and the embedded
SQLite path must work on a machine without it. Also here: the connection string with its
password hidden, the UTF-8 exchange MariaDB's and SQLite's ODBC drivers need, and the
SQLSTATE of a driver error.
"""

from __future__ import annotations

import contextlib
import locale
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from synchro.errors import Cancelled, DatabaseError, Say
from synchro.i18n import render

SQL_DRIVER_NAME = 6
SQL_DBMS_NAME = 17
SQL_DBMS_VER = 18
SQL_DATABASE_NAME = 16
SQL_SERVER_NAME = 13
SQL_IDENTIFIER_QUOTE_CHAR = 29
CONNECT_TIMEOUT = 15

# Driver options that stream results instead of loading them whole (psqlODBC, SQLite ODBC).
# MariaDB Connector/ODBC < 3.1.17 cannot: the dialect pages its scans instead.
STREAMING = {"postgresql": "UseDeclareFetch=1;Fetch=2000", "sqlite": "StepAPI=1"}

_SECRET = re.compile(r"((?:PWD|PASSWORD)\s*=\s*)(\{[^}]*\}|[^;]*)", re.IGNORECASE)


def load_pyodbc() -> Any:
    """The pyodbc module, or a ``DatabaseError`` saying what to install."""
    try:
        import pyodbc
    except ImportError as exc:
        raise DatabaseError(say=("engine.err.no_pyodbc", {"detail": str(exc)})) from exc
    return pyodbc


def hide_secrets(connection: str) -> str:
    """The connection string with its password masked, for messages and logs."""
    return _SECRET.sub(r"\1***", connection)


def connect_error(pyodbc: Any, connection: str, exc: Exception) -> DatabaseError:
    """Say why a connection failed and what to check."""
    state = str(exc.args[0]) if exc.args else ""
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    low = text.lower()
    where = hide_secrets(connection)
    advice: Say
    if state == "IM002" or "can't open lib" in low or "data source name not found" in low:
        none: list[Say] = [("engine.db.none", {})]
        drivers: str | list[Say] = ", ".join(pyodbc.drivers()) or none
        sources: str | list[Say] = ", ".join(pyodbc.dataSources()) or none
        advice = ("engine.db.no_driver", {"drivers": drivers, "sources": sources})
    elif state.startswith("28") or any(w in low for w in ("access denied", "password", "authenti")):
        advice = ("engine.db.refused", {})
    elif "does not exist" in low or "unknown database" in low:
        advice = ("engine.db.no_database", {})
    elif state.startswith("08") or "connect" in low or "timeout" in low or "timed out" in low:
        server = re.search(r"(?:SERVER|HOST)\s*=\s*([^;]*)", connection, re.IGNORECASE)
        port = re.search(r"PORT\s*=\s*([^;]*)", connection, re.IGNORECASE)
        address = (server.group(1) if server else "?") + (f":{port.group(1)}" if port else "")
        advice = ("engine.db.unreachable", {"address": address})
    else:
        advice = ("engine.db.check", {})
    said = {"where": where, "advice": [advice], "text": text}
    return DatabaseError(say=("engine.db.connect", said))


def narrow_utf8(pyodbc: Any, conn: Any) -> None:
    """Make a MariaDB Connector/ODBC connection exchange text as UTF-8 bytes only.

    The driver's UTF-16 conversion (Connector/ODBC 3.1, Debian 12) is wrong both ways:
    fetched as wide characters, a value holding a character whose UTF-16 low byte is
    D8-DB (Ø Ù Ú Û, ט, ヘ...) comes back one character short per such character, or as
    half a code unit that cannot be decoded, and the miscounted lengths write past
    pyodbc's buffers (the ``malloc(): invalid next size`` aborts of an export); bound as
    UTF-16, long values get ``\\0`` or junk appended. Every text column, ``SQL_WCHAR``
    ones included, is therefore fetched as ``SQL_C_CHAR`` in UTF-8 and parameters are
    bound as UTF-8: the driver then copies bytes and converts nothing. The SQLite ODBC
    driver gets the same: read as wide characters in pieces, it splits a surrogate pair
    at the piece boundary (8190 bytes) and the text cannot be decoded.
    """
    conn.setencoding(encoding="utf-8")
    conn.setdecoding(pyodbc.SQL_CHAR, encoding="utf-8")
    conn.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-8", ctype=pyodbc.SQL_CHAR)


def utf8mb4_connection(connection: str) -> str:
    """The MariaDB connection string with ``CHARSET=utf8mb4`` (replacing another one): the
    narrow UTF-8 exchange needs a utf8mb4 session (with ``CHARSET=latin1`` UTF-8 bytes
    were stored double-encoded and read back as "equal" by the same connection), and the
    driver refuses ``SET NAMES``."""
    found = re.search(r"(?i)(^|;)\s*CHARSET\s*=\s*([^;]*)", connection)
    if found is None:
        return connection  # the driver's default is utf8mb4
    if found.group(2).strip().lower() == "utf8mb4":
        return connection
    start, end = found.span(2)
    return connection[:start] + "utf8mb4" + connection[end:]


_DRIVER = re.compile(r"(?i)(?:^|;)\s*DRIVER\s*=\s*(\{[^}]*\}|[^;]*)")
_DSN = re.compile(r"(?i)(?:^|;)\s*DSN\s*=\s*(\{[^}]*\}|[^;]*)")
_CONN_TIMEOUT = re.compile(r"(?i)(?:^|;)\s*CONN_TIMEOUT\s*=")


def bounded_connection(pyodbc: Any, connection: str) -> str:
    """The connection string whose opening waits ``CONNECT_TIMEOUT`` at most.

    psqlODBC and SQLite's driver keep the login timeout pyodbc sets; MariaDB
    Connector/ODBC ignores it and waits for its server as long as the system tries to
    connect: 135 s here when the server's machine does not answer (measured, a port
    whose connection requests are dropped), and a stop cannot cut a connection being
    opened. Its own ``CONN_TIMEOUT`` is added (unless the string sets one) when the
    string names its driver, or a data source of it."""
    if _CONN_TIMEOUT.search(connection):
        return connection
    found = _DRIVER.search(connection)
    if found is not None:
        driver = found.group(1)
    else:
        dsn = _DSN.search(connection)
        name = dsn.group(1).strip("{} ") if dsn is not None else ""
        driver = pyodbc.dataSources().get(name, "") if name else ""
    if "mariadb" not in driver.lower():
        return connection
    return f"{connection.rstrip().rstrip(';')};CONN_TIMEOUT={CONNECT_TIMEOUT}"


def connect(pyodbc: Any, connection: str, stopping: Callable[[], bool] | None = None) -> Any:
    """An autocommit connection, or the ``DatabaseError`` of ``connect_error``, within
    ``CONNECT_TIMEOUT`` (``bounded_connection``). Opened under ``utf8_ctype``
    (``opening``): a narrow connection's statement text must reach the driver as the
    UTF-8 it is. ``stopping``: see ``Opening``."""
    bounded = bounded_connection(pyodbc, connection)

    def open_it() -> Any:
        with opening():
            try:
                return pyodbc.connect(bounded, autocommit=True, timeout=CONNECT_TIMEOUT)
            except pyodbc.Error as exc:
                raise connect_error(pyodbc, connection, exc) from exc

    return open_it() if stopping is None else Opening(open_it).wait(stopping)


class Opening:
    """A connection opened in a thread of its own, so that a stop need not wait for it.

    ``pyodbc.connect`` cannot be cancelled: a database server that hangs (it takes the
    connection, never answers the login) kept a stopping program waiting the whole
    ``CONNECT_TIMEOUT``. ``wait`` looks at ``stopping()`` every ``STEP_S`` and raises
    ``Cancelled`` once it holds; the opening then goes on alone, and the connection it
    makes, if any, is closed at once (never used, never left open on the server)."""

    STEP_S = 0.2

    def __init__(self, open_it: Callable[[], Any]) -> None:
        self._open_it = open_it
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._result: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="odbc-opening", daemon=True).start()

    def _run(self) -> None:
        try:
            conn = self._open_it()
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc
            self._done.set()
            return
        with self._lock:
            if not self._abandoned:
                self._result = conn
                self._done.set()
                return
        with contextlib.suppress(Exception):
            conn.close()

    def wait(self, stopping: Callable[[], bool]) -> Any:
        """The connection, the opening's error, or ``Cancelled`` once ``stopping()``."""
        while not self._done.wait(self.STEP_S):
            if stopping():
                with self._lock:
                    if not self._done.is_set():
                        self._abandoned = True
                        raise Cancelled()
        if self._error is not None:
            raise self._error
        return self._result


# The process's character type is one for all its threads, and psqlODBC sets it from the
# environment on every connection it opens (setlocale(LC_CTYPE, "")): under LC_ALL=C, a
# MariaDB connection opened in one thread while another opened a PostgreSQL one read its
# statement text as Latin-1 (7 of 8,569 connections, the probe caught each one). So ODBC
# connections open one at a time in the process, each just after ``utf8_ctype``.
_OPENING = threading.Lock()


@contextlib.contextmanager
def opening() -> Iterator[None]:
    """Hold the process's ODBC opening (``_OPENING``) with ``LC_CTYPE`` made UTF-8: for
    pyodbc's connections and arrow-odbc's."""
    with _OPENING:
        utf8_ctype()
        yield


# Candidates for a UTF-8 character type, most common first (Debian: C.UTF-8 always exists).
_UTF8_LOCALES = ("C.UTF-8", "C.utf8", "en_US.UTF-8", "fr_FR.UTF-8")


def _utf8_codeset() -> bool:
    return locale.nl_langinfo(locale.CODESET).lower().replace("-", "") == "utf8"


def utf8_ctype() -> None:
    """Make ``LC_CTYPE`` a UTF-8 locale for the rest of the process (POSIX), when it is not.

    unixODBC decides, when a connection opens, in which character set it reads that
    connection's narrow statement text: the locale's. Under ``LC_ALL=C`` (a service, a
    cron job) it read the UTF-8 of ``CREATE TABLE `ÉlèveÚ``` as Latin-1, and MariaDB
    created a table of another name (``Ã?lÃ¨veÃ?``, two control characters); under a
    UTF-8 locale the text goes through as is. Parameters and fetched values are not
    affected (bytes bound as ``SQL_C_CHAR``). Set once and not put back: the character type
    is one for all the threads, and one connecting while another put C back would be cut.
    Python itself runs in UTF-8 mode under C, so nothing of its own changes. Windows'
    driver manager uses the ANSI code page instead (``synchro.spec`` asks for UTF-8);
    ``statement_text_fault`` measures what each connection does.
    """
    if os.name == "nt" or _utf8_codeset():
        return
    for name in _UTF8_LOCALES:
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            return
        except locale.Error:
            continue


# Latin-1 (É) and the euro sign (€, absent from Latin-1) are what a wrong locale or code page
# alters; one character the driver miscounts (Ú, ``mysql_catalog.lead_units``) is what a
# statement may hold. Characters outside the BMP are not probed: MariaDB keeps identifiers
# in utf8mb3, so none can be named with one, and values never go into statement text
# (measured: unixODBC converts statement text through UCS-2 and alters any statement
# holding such a character, whatever the locale).
PROBE_TEXT = "É€Ú"


def statement_text_fault(run_query: Any) -> str:
    """What a narrow connection (MariaDB, SQLite ODBC) does to statement text that is not
    ASCII: "" when it goes through exactly, else what the probe became (in French words,
    ``text_fault_say`` of ``probe_text``)."""
    got = probe_text(run_query)
    return render(text_fault_say(got), "fr") if got else ""


def text_fault_say(got: str) -> Say:
    """Words saying that the probe text reached the server as ``got`` (``probe_text``)."""
    expected = PROBE_TEXT.encode("utf-8").hex().upper()
    return ("engine.err.probe", {"probe": PROBE_TEXT, "got": got, "expected": expected})


def probe_text(run_query: Any) -> str:
    """What a narrow connection (MariaDB, SQLite ODBC) does to statement text that is not
    ASCII: "" when it goes through exactly, else what the probe became (hexadecimal).
    Measured on every new connection: what alters it (the locale on Linux, the ANSI code
    page on Windows) belongs to the machine. ``run_query(sql)`` returns the rows."""
    expected = PROBE_TEXT.encode("utf-8").hex().upper()
    # Its column named in ASCII: the SQLite ODBC driver gives a result column's name with
    # its length in UTF-8 bytes, so a name that is not ASCII comes back with what follows it
    # in memory, which at random is no UTF-16 and fails the statement in pyodbc.
    got = str(run_query(f"SELECT HEX('{PROBE_TEXT}') AS probe")[0][0]).upper()
    return "" if got == expected else got


def sql_state(exc: BaseException) -> str:
    """The SQLSTATE of a pyodbc error ("08S01"...), "" when it has none."""
    args: tuple[Any, ...] = exc.args
    return str(args[0]) if args else ""


# MariaDB Connector/ODBC says a lost connection under SQLSTATE HY000/HY001 on some calls
# (setting autocommit: « Server has gone away (2006) (SQLSetConnectAttr) »; a statement sent
# on a socket the server closed: « Write error: Broken pipe (32) (5014) »): Connector/C's
# CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED, CR_ERR_NET_READ and _WRITE;
# and a server it cannot reach (2002, 2003: down, restarting), where psqlODBC says 08001
_GONE = re.compile(r"\((?:2002|2003|2006|2013|2055|5013|5014)\)")


def connection_lost(exc: BaseException | None) -> bool:
    """Whether a driver error says the connection is gone (SQLSTATE class 08; 57: the
    server's operator ended the session or stopped the server; MariaDB's own codes) or
    cannot be made again (PostgreSQL's 08001, MariaDB's 2002, 2003: the server down a
    moment, restarting after a crash). Not 57014, a statement cancelled (the server's
    ``statement_timeout``, someone's ``pg_cancel_backend``): the session lives on, the
    statement failed like any other — taken for a lost connection, an import whose
    trigger outlasted the limit was made again three times, then failed whole, « connexion
    perdue », every day, where MariaDB's time limit (1969) sets the one row aside."""
    if exc is None:
        return False
    state = sql_state(exc)
    if state == "57014":
        return False
    return state[:2] in ("08", "57") or _GONE.search(str(exc)) is not None


def not_offered(exc: BaseException) -> bool:
    """Whether a driver error says it has no such function or option (IM001 « Driver does
    not support this function »: Access's SQLPrimaryKeys and SQLForeignKeys, mdbtools';
    HYC00 « Optional feature not implemented »). Only then is a catalog function's answer
    « nothing »: any other error (a statement interrupted by the server's time limit, a
    lock, memory) would have read as « no table » or « no key »."""
    return sql_state(exc) in ("IM001", "HYC00")
