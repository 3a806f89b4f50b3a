"""The one exception tree of Synchro, and the kind every error carries.

Errors from libraries (sqlite3, pyodbc, ftplib, smtplib, ssl, OS) are translated at the
boundary where they happen: ``raise DatabaseError(...) from exc``. Every error a user can
see says what failed, where, and what to do.

Every error also carries an :class:`ErrorKind` (``err.kind``): what sort of trouble it is,
so the email, the Rapport and the windows explain it in the UI language without reading the
(French) message. Each class has a default kind; a raise site whose trouble is of another
kind says so (``TransportError(..., kind=ErrorKind.DISK)``).

    class                    default kind  what
    SynchroError             internal      base (a bare one should name its kind)
    ├── ConfigError          config        bad or missing settings (lists every bad field)
    ├── DatabaseError        database      the user's database refused or is unreachable
    │   └── SchemaError      database      a table cannot be synchronised as it is
    ├── TransactionLost      database      the database ended the whole transaction itself
    │   └── CommitInDoubt    database      the connection lost during a commit: kept or not
    ├── StateError           disk          the node's own state or report file is damaged
    ├── CaptureError         database      reading the changes of a table failed
    ├── PackageError         data          a package is truncated, corrupted, foreign
    ├── ApplyError           data          a package could not be applied (nothing kept)
    ├── TransportError       network       FTP(S) transfer failed or was cut
    │   └── ConnectionTestError  from code reaching or logging in failed (``code``: dns...)
    ├── MailError            network       the report email could not be sent
    ├── PlatformError        config        autostart, single instance, paths
    └── Cancelled            stopped       the user asked to stop (ARRETER)
"""

from __future__ import annotations

import dataclasses
import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard, cast

from synchro.i18n import render


class ErrorKind(StrEnum):
    """What sort of trouble an error is; its value is stored in a Rapport row's details
    (``error_kind``) and names the words of the email and the windows."""

    NETWORK = "network"  # the other side cannot be reached, or a transfer was cut
    AUTH = "auth"  # a login or secret was refused (FTP or SMTP)
    TLS = "tls"  # TLS negotiation failed, or a certificate is not the expected one
    DATABASE = "database"  # the user's database refused an operation or cannot be opened
    DISK = "disk"  # a local file or folder cannot be written or read (full, read-only...)
    DATA = "data"  # a package or a value cannot be trusted or applied; tables differ
    DELETES = "deletes"  # mass deletes held until a person starts a synchronisation
    RESTORED = "restored"  # the database went back to an older copy: held the same way
    COPY = "copy"  # a package number reused with other contents: two machines, one put back
    TWIN = "twin"  # an establishment whose package the Siège did not take: held, kept
    CONFIG = "config"  # the settings cannot be used as they are
    STOPPED = "stopped"  # the user asked to stop (ARRETER): not a failure
    INTERNAL = "internal"  # a fault of the program itself (an unexpected exception)


# OS error numbers that mean "this machine's disk": full, read-only, no right to write
# (EPERM is left out: a firewall refusing a connection says it too).
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EIO})
# sqlite3 errors (``sqlite_errorname``) that mean the same of a local SQLite file.
_SQLITE_DISK = frozenset({"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN"})


Say = tuple[str, dict[str, Any]]  # a message's key in the locales, and its values


class SynchroError(Exception):
    """Base of every error Synchro raises on purpose. ``str(err)`` is the user message,
    ``err.kind`` its :class:`ErrorKind` (the class's default unless the raise site gives
    one). ``say``: the message as a key of the locales and its values (``i18n.render``),
    so that it is shown in the UI language too; ``str(err)`` is then its French words."""

    default_kind = ErrorKind.INTERNAL

    def __init__(
        self, *args: object, kind: ErrorKind | None = None, say: Say | None = None
    ) -> None:
        if say is not None and not args:
            args = (render(say, "fr"),)
        super().__init__(*args)
        self._kind = kind
        self.say = say

    @property
    def kind(self) -> ErrorKind:
        """The kind given at the raise site; else ``DISK`` when raised ``from`` an OS error
        on this machine's disk (full, read-only, no right); else the class's default."""
        if self._kind is not None:
            return self._kind
        if _disk_cause(self.__cause__):
            return ErrorKind.DISK
        return self.default_kind


def sqlite_error(exc: BaseException | None) -> str:
    """The primary error of a ``sqlite3`` error ("SQLITE_IOERR" for "SQLITE_IOERR_WRITE"),
    "" for any other exception."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    return "_".join(name.split("_")[:2]) if name.startswith("SQLITE_") else ""


def _is_disk(exc: BaseException | None) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS


# MariaDB's words for a disk with no room under a table: « The table 't' is full »
# (1114), « Disk full » (1021), and the system's own (errno 28) in « Error writing file »
# (1026) or « Got error 28 from storage engine » (1030).
_SERVER_DISK_FULL = ("(1114)", "(1021)", "No space left on device")
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


def server_disk_full(exc: BaseException | None) -> bool:
    """A database server's error (pyodbc: SQLSTATE, message) saying the disk under the
    table has no room: PostgreSQL's ``disk_full`` (53100), MariaDB's words for it. No row's
    fault: every row would meet it, so the whole transaction ends."""
    if exc is None or len(exc.args) != 2 or not _SQLSTATE.fullmatch(str(exc.args[0])):
        return False  # not a driver's error: an FTP reply's words are not the database's
    if exc.args[0] == "53100":
        return True
    return any(words in str(exc.args[1]) for words in _SERVER_DISK_FULL)


def _disk_cause(exc: BaseException | None) -> bool:
    """``exc`` or what caused it is this machine's disk: an OS error (full, read-only, no
    right), SQLite saying so of a local file (also through its ODBC driver), a database
    server saying its disk is full (``server_disk_full``)."""
    for _ in range(8):  # a chain of causes is short; never loop on a cycle
        if exc is None:
            return False
        if _is_disk(exc) or sqlite_error(exc) in _SQLITE_DISK:
            return True
        if server_disk_full(exc):
            return True
        if any("database or disk is full" in str(a) for a in exc.args):  # SQLite ODBC
            return True
        exc = exc.__cause__
    return False


def kind_of(exc: BaseException) -> ErrorKind:
    """The kind of any exception: a Synchro error's own; an OS error on this machine's disk
    (full, read-only, no right), or SQLite saying so of a local file, is ``DISK``; anything
    else is a fault of the program."""
    if isinstance(exc, SynchroError):
        return exc.kind
    if _is_disk(exc) or sqlite_error(exc) in _SQLITE_DISK:
        return ErrorKind.DISK
    return ErrorKind.INTERNAL


# What to do when this machine's disk refuses a write of Synchro's own files (state,
# Rapport): never "restore it from a backup", nothing is damaged. A value of an error's
# words (``{advice}``), so it is said in the UI's language with them.
DISK_SAY: Say = ("engine.disk.advice", {})
STOPPED_SAY: Say = ("engine.round.stopped", {})  # what ARRETER ends with (``Cancelled``)


class Worded(Exception):
    """An internal error (not shown as it is: a caller turns it into a Synchro error) whose
    text may be words of the locales: ``say`` kept, ``str()`` the French (one mechanism for
    the binders' refusals, the package's reasons and the values that cannot travel)."""

    def __init__(self, text: str = "", say: Say | None = None) -> None:
        super().__init__(render(say, "fr") if say is not None else text)
        self.say = say


class BadValue(Worded, ValueError):
    """A value a parser refuses (a ``ValueError``, what its callers catch) with its words:
    ``str()`` the French, ``text_in`` the UI language (a port, a fingerprint...)."""


def disk_advice(lang: str = "fr") -> str:
    return render(DISK_SAY, lang)


def error_details(exc: BaseException) -> dict[str, Any]:
    """What a Rapport row keeps of the error that ended it besides its text: its kind
    (``error_kind``) and, where it gave them, its words (``error_say``: shown in the UI
    language, ``reports.error_in``)."""
    details: dict[str, Any] = {"error_kind": str(kind_of(exc))}
    if isinstance(exc, SynchroError) and exc.say is not None:
        details["error_say"] = [exc.say[0], exc.say[1]]
    return details


def text_in(exc: BaseException, lang: str) -> str:
    """What to show of ``exc`` in the UI language: the words an error gave as a key of the
    locales (``SynchroError.say``, ``Worded.say``: a ``BadValue`` a parser raised), else its
    text (``error_text``: French)."""
    if isinstance(exc, SynchroError | Worded) and exc.say is not None:
        return render(exc.say, lang)
    return error_text(exc)


def error_text(exc: BaseException) -> str:
    """What a Rapport row says of ``exc``: a Synchro error's own message; an error of this
    machine's disk as the system says it; anything else as an internal error."""
    if isinstance(exc, SynchroError) or kind_of(exc) is ErrorKind.DISK:
        return str(exc)
    return f"erreur interne : {exc!r}"


@dataclass(frozen=True, init=False)
class FieldProblem:
    """One bad configuration field: its name, what is expected, and the value found.

    ``expected`` is French text or words of the locales (a ``Say``): then ``expected`` holds
    their French and ``expected_say`` the words. ``name``: the field's name as words of the
    locales when ``field`` is itself words (``"fichier"``), so that it is said in the UI
    language too. ``str()`` is the French line; ``say`` the line as words (``text_in``)."""

    field: str
    expected: str
    found: str = ""
    expected_say: Say | None = dataclasses.field(default=None, compare=False)
    name: Say | None = dataclasses.field(default=None, compare=False)

    def __init__(
        self, field: str, expected: str | Say, found: str = "", *, name: Say | None = None
    ) -> None:
        said = None if isinstance(expected, str) else expected
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "expected", render(said, "fr") if said else expected)
        object.__setattr__(self, "found", found)
        object.__setattr__(self, "expected_say", said)
        object.__setattr__(self, "name", name)

    def shown_name(self) -> object:
        """The field's name as a value of ``say``: its words, else the field itself."""
        return [self.name] if self.name is not None else self.field

    def shown_expected(self) -> object:
        return [self.expected_say] if self.expected_say is not None else self.expected

    @property
    def say(self) -> Say:
        """The whole line as words of the locales (French: ``str()``)."""
        values: dict[str, Any] = {"field": self.shown_name(), "expected": self.shown_expected()}
        if not self.found:
            return ("config.problem", values)
        return ("config.problem.found", {**values, "found": repr(self.found)})

    def text_in(self, lang: str) -> str:
        return render(self.say, lang)

    def __str__(self) -> str:
        return self.text_in("fr")


def is_say(value: object) -> TypeGuard[Say]:
    """``value`` is a ``Say`` (a key of the locales and its values), not text or a list."""
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], dict)
    )


def _joined(lines: Sequence[Say]) -> Say:
    """Lines joined with « ; » as the French message always was (``render`` joins a list
    with « ; »): ``config.err.join`` of halves, so that hundreds of lines (a table check)
    nest only a few levels deep."""
    if len(lines) == 1:
        return lines[0]
    half = len(lines) // 2
    return ("config.err.join", {"first": [_joined(lines[:half])], "rest": [_joined(lines[half:])]})


class ConfigError(SynchroError):
    """Settings that cannot be used. ``problems`` names every bad field at once.

    ``problems`` may also be one text or one ``Say``: a problem of the field
    ``configuration``. ``source`` (the file, or what was read) is text or a ``Say``; the
    attribute ``source`` is its French. ``say`` is the whole message, so ``text_in`` says it
    in the UI language; ``str()`` is its French: « Configuration invalide dans … : … »."""

    default_kind = ErrorKind.CONFIG

    def __init__(
        self,
        problems: Sequence[FieldProblem] | str | Say,
        source: str | Say = "",
        *,
        kind: ErrorKind | None = None,
    ) -> None:
        if isinstance(problems, str) or is_say(problems):
            problems = [FieldProblem(field="configuration", expected=problems)]
        self.problems: tuple[FieldProblem, ...] = tuple(cast(Sequence[FieldProblem], problems))
        source_say = source if is_say(source) else None
        self.source = render(source_say, "fr") if source_say else str(source)
        lines = [p.say for p in self.problems]
        values: dict[str, Any] = {"problems": [_joined(lines)] if lines else ""}
        if self.source:
            values["source"] = [source_say] if source_say else self.source
        key = "config.err.invalid_in" if self.source else "config.err.invalid"
        super().__init__(kind=kind, say=(key, values))


class DatabaseError(SynchroError):
    """The user's database refused an operation or cannot be reached."""

    default_kind = ErrorKind.DATABASE


class SchemaError(DatabaseError):
    """A table cannot be synchronised as it is (no key, unsupported column type...)."""


class TransactionLost(SynchroError):
    """The database ended the whole transaction itself (SQLite after a full disk or an I/O
    error, MariaDB after a deadlock, a connection lost): nothing of it is kept and nothing
    more may run in it. Never a row's fault, so not a ``DatabaseError``: the handlers that
    set a refused row aside let it through, and the whole apply is undone and redone by
    the next run. ``DISK`` when the database said its disk is full."""

    default_kind = ErrorKind.DATABASE


class CommitInDoubt(TransactionLost):
    """The connection was lost while the database committed: the transaction may have been
    kept or not, and nothing on this side can tell. Made again like a lost transaction
    (``engine.lost``), but not known undone: an apply keeps its intent (``engine.node``),
    so that it is made again — applying is idempotent — before anything is captured; the
    rows it may have kept are never taken for this node's own changes."""


class StateError(SynchroError):
    """The node's own state database (or the Rapport file) is damaged, locked or from a
    newer version."""

    default_kind = ErrorKind.DISK


class CaptureError(SynchroError):
    """Reading the changes of a table failed."""

    default_kind = ErrorKind.DATABASE


class PackageError(SynchroError):
    """A package file cannot be trusted. Raised before a single row is applied."""

    default_kind = ErrorKind.DATA

    def __init__(
        self, path: str, reason: str = "", *, kind: ErrorKind | None = None, say: Say | None = None
    ) -> None:
        """``say``: the reason as a key of the locales and its values (instead of
        ``reason``), so that the whole message is said in the UI language too."""
        self.path = path
        self.reason_say = say  # the reason alone (a row set aside keeps it)
        self.reason = render(say, "fr") if say is not None else reason
        whole = ("engine.err.package", {"path": path, "reason": [say]}) if say else None
        super().__init__(f"Paquet refusé {path} : {self.reason}", kind=kind, say=whole)


class ApplyError(SynchroError):
    """A package could not be applied; its transaction was rolled back."""

    default_kind = ErrorKind.DATA


class TransportError(SynchroError):
    """An FTP(S) transfer or login failed."""

    default_kind = ErrorKind.NETWORK


# ConnectionTestError codes -> kinds (the code says exactly what failed, the kind what sort)
CONNECTION_CODE_KINDS = {
    "dns": ErrorKind.NETWORK,
    "refused": ErrorKind.NETWORK,
    "timeout": ErrorKind.NETWORK,
    "protocol": ErrorKind.NETWORK,
    "tls": ErrorKind.TLS,
    "certificate": ErrorKind.TLS,
    "auth": ErrorKind.AUTH,
    "quota": ErrorKind.CONFIG,  # the Siège's maximum upload size
    "hq-disk": ErrorKind.NETWORK,  # the Siège's disk is full: the other side's trouble
}


class ConnectionTestError(TransportError):
    """The exact reason reaching or logging in to the Siège failed: ``code`` is a stable
    code (dns, refused, timeout, tls, certificate, auth, quota, protocol), ``kind`` its
    :class:`ErrorKind`."""

    def __init__(self, code: str, message: str = "", *, say: Say | None = None) -> None:
        self.code = code
        kind = CONNECTION_CODE_KINDS.get(code, ErrorKind.NETWORK)
        if message:
            super().__init__(message, kind=kind)
        else:
            super().__init__(kind=kind, say=say)


class MailError(SynchroError):
    """The report email could not be sent (never turns an OK run into Echec)."""

    default_kind = ErrorKind.NETWORK


class PlatformError(SynchroError):
    """Autostart, single instance or folder problems."""

    default_kind = ErrorKind.CONFIG


class Cancelled(SynchroError):
    """The user asked to stop (ARRETER). The run ends in state ``Arrêt``."""

    default_kind = ErrorKind.STOPPED

    def __init__(self, message: str = "") -> None:
        if message:
            super().__init__(message)
        else:  # « Synchronisation arrêtée par l'utilisateur. »
            super().__init__(say=STOPPED_SAY)
