"""The one exception tree of Synchro.

Errors from libraries (sqlite3, pyodbc, ftplib, smtplib, ssl, OS) are translated at the
boundary where they happen: ``raise DatabaseError(...) from exc``. Every error a user can
see says what failed, where, and what to do.

    SynchroError
    ├── ConfigError          bad or missing settings (lists every bad field)
    ├── DatabaseError        the user's database refused or is unreachable
    │   └── SchemaError      a table cannot be synchronised as it is (no key, unknown type...)
    ├── StateError           the node's own state database is damaged or locked
    ├── CaptureError         reading the changes of a table failed
    ├── PackageError         a package file is truncated, corrupted, foreign or tampered with
    ├── ApplyError           a package could not be applied (nothing of it was kept)
    ├── TransportError       FTP(S) transfer or login failed
    │   └── ConnectionTestError  the exact reason a connection test failed
    ├── MailError            the report email could not be sent
    ├── PlatformError        autostart, single instance, paths
    └── Cancelled            the user asked to stop (ARRETER); not a failure of the data
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SynchroError(Exception):
    """Base of every error Synchro raises on purpose. ``str(err)`` is the user message."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad configuration field: its name, the value found, and what is expected."""

    field: str
    expected: str
    found: str = ""

    def __str__(self) -> str:
        found = f" (trouvé : {self.found!r})" if self.found else ""
        return f"{self.field} : {self.expected}{found}"


class ConfigError(SynchroError):
    """Settings that cannot be used. ``problems`` names every bad field at once."""

    def __init__(self, problems: Sequence[FieldProblem] | str, source: str = "") -> None:
        if isinstance(problems, str):
            problems = [FieldProblem(field="configuration", expected=problems)]
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        self.source = source
        where = f" dans {source}" if source else ""
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"Configuration invalide{where} : {lines}")


class DatabaseError(SynchroError):
    """The user's database refused an operation or cannot be reached."""


class SchemaError(DatabaseError):
    """A table cannot be synchronised as it is (no key, unsupported column type...)."""


class StateError(SynchroError):
    """The node's own state database is damaged, locked or from a newer version."""


class CaptureError(SynchroError):
    """Reading the changes of a table failed."""


class PackageError(SynchroError):
    """A package file cannot be trusted. Raised before a single row is applied."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"Paquet refusé {path} : {reason}")


class ApplyError(SynchroError):
    """A package could not be applied; its transaction was rolled back."""


class TransportError(SynchroError):
    """An FTP(S) transfer or login failed."""


class ConnectionTestError(TransportError):
    """The exact reason a connection test failed (``kind`` is a stable code)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind  # dns, refused, timeout, tls, certificate, auth, protocol
        super().__init__(message)


class MailError(SynchroError):
    """The report email could not be sent (never turns an OK run into Echec)."""


class PlatformError(SynchroError):
    """Autostart, single instance or folder problems."""


class Cancelled(SynchroError):
    """The user asked to stop (ARRETER). The run ends in state ``Arrêt``."""

    def __init__(self, message: str = "Synchronisation arrêtée par l'utilisateur.") -> None:
        super().__init__(message)
