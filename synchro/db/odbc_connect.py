"""Opening an ODBC connection through pyodbc, and saying why it failed.

pyodbc is imported inside functions only: it links the system's unixODBC, and the embedded
SQLite path must work on a machine without it. Also here: the connection string with its
password hidden, and the UTF-8 exchange MariaDB's and SQLite's ODBC drivers need.
"""

from __future__ import annotations

import re
from typing import Any

from synchro.errors import DatabaseError

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
        raise DatabaseError(
            "Le module ODBC (pyodbc) ne peut pas être chargé : installez unixODBC "
            f"(Linux : apt-get install unixodbc) ou utilisez un fichier SQLite. ({exc})"
        ) from exc
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
    if state == "IM002" or "can't open lib" in low or "data source name not found" in low:
        drivers = ", ".join(pyodbc.drivers()) or "aucun"
        sources = ", ".join(pyodbc.dataSources()) or "aucune"
        advice = (
            f"pilote ODBC ou source de données introuvable. Pilotes installés : {drivers} ; "
            f"sources (DSN) : {sources}"
        )
    elif state.startswith("28") or any(w in low for w in ("access denied", "password", "authenti")):
        advice = "identifiants refusés : vérifiez l'utilisateur (UID) et le mot de passe (PWD)"
    elif "does not exist" in low or "unknown database" in low:
        advice = "cette base n'existe pas sur le serveur : vérifiez DATABASE"
    elif state.startswith("08") or "connect" in low or "timeout" in low or "timed out" in low:
        server = re.search(r"(?:SERVER|HOST)\s*=\s*([^;]*)", connection, re.IGNORECASE)
        port = re.search(r"PORT\s*=\s*([^;]*)", connection, re.IGNORECASE)
        address = (server.group(1) if server else "?") + (f":{port.group(1)}" if port else "")
        advice = f"serveur {address} injoignable : vérifiez l'adresse, le port et qu'il est démarré"
    else:
        advice = "vérifiez la chaîne de connexion"
    return DatabaseError(f"Connexion ODBC impossible ({where}) : {advice}. Détail : {text}")


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


def connect(pyodbc: Any, connection: str) -> Any:
    """An autocommit connection, or the ``DatabaseError`` of ``connect_error``."""
    try:
        return pyodbc.connect(connection, autocommit=True, timeout=CONNECT_TIMEOUT)
    except pyodbc.Error as exc:
        raise connect_error(pyodbc, connection, exc) from exc
