"""The settings of one Synchro node, as frozen dataclasses with the manual's defaults.

The UI words are the manual's: ``Role.HQ`` is *Siège*, ``Role.SITE`` is *Serveur*;
``last_sync`` is *Dernière synchronisation*, ``start_time`` *Heure de départ*,
``send_email`` *Envoi d'un email*, ``start_with_windows`` *Démarrage avec Windows*;
``hq.servers`` *Nombre de serveurs*, ``hq.max_reception`` *Temps maximum de réception*;
``site.attempts`` *Nombre de tentatives*, ``site.retry_delay`` *Temps entre tentatives*,
``site.hq_address`` *Adresse du siège*, ``site.auto_sync`` *Synchronisation automatique*.

Secrets (FTP secrets, SMTP password, group key) live in these objects in memory only;
``synchro.config.store`` keeps them out of the TOML file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    HQ = "siege"
    SITE = "serveur"


class ConflictPolicy(StrEnum):
    HQ_WINS = "hq-wins"
    LATEST_WINS = "latest-wins"
    ORIGIN_OWNS = "origin-owns"


class MailSecurity(StrEnum):
    SSL = "ssl"  # implicit TLS, port 465
    STARTTLS = "starttls"  # port 587
    NONE = "none"


@dataclass(frozen=True)
class TableRule:
    """Per-table settings. ``key`` names a key when the database has none to offer."""

    name: str
    conflict: ConflictPolicy = ConflictPolicy.HQ_WINS
    key: tuple[str, ...] = ()
    modified_column: str = ""  # optional pre-filter and latest-wins clock
    owner_column: str = ""  # origin-owns: the column holding the owning site code


@dataclass(frozen=True)
class DatabaseSettings:
    """``connection``: a path to an SQLite file (embedded default) or an ODBC string/DSN."""

    connection: str = "synchro.db"
    include: tuple[str, ...] = ()  # empty = every table with a key
    exclude: tuple[str, ...] = ()
    tables: tuple[TableRule, ...] = ()  # as written; the engine asks TableSelection.rule
    modified_overlap: dt.timedelta = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class SiteAccount:
    """An establishment known to the Siège (``synchro site add CODE``)."""

    code: str
    secret_hash: str  # scrypt hash of the FTP secret; the secret itself is only in the token
    label: str = ""


@dataclass(frozen=True)
class HQSettings:
    """Mode siège."""

    servers: int = 1  # Nombre de serveurs
    max_reception: dt.timedelta = dt.timedelta(hours=4)  # Temps maximum de réception
    listen_address: str = "0.0.0.0"
    port: int = 21
    passive_ports: tuple[int, int] | None = None
    masquerade_address: str = ""
    public_address: str = ""  # what connection tokens tell the sites to dial
    allow_plain_ftp: bool = False
    max_upload_mb: int = 2048
    ban_after_failures: int = 5
    ban_minutes: int = 15
    idle_timeout_s: int = 300
    sites: tuple[SiteAccount, ...] = ()


@dataclass(frozen=True)
class SiteSettings:
    """Mode serveur."""

    attempts: int = 10  # Nombre de tentatives
    retry_delay: dt.timedelta = dt.timedelta(minutes=10)  # Temps entre tentatives
    hq_address: str = ""  # Adresse du siège
    hq_port: int = 21
    auto_sync: bool = True  # Synchronisation automatique
    secret: str = ""  # FTP secret of this site (secret: never written to the TOML file)
    certificate_fingerprint: str = ""  # SHA-256 of the Siège's certificate, pinned
    allow_plain_ftp: bool = False
    timeout_s: int = 60


@dataclass(frozen=True)
class EmailSettings:
    """The EMAIL dialog: the manual's five fields plus port, security and timeout."""

    recipients: tuple[str, ...] = ()  # Adresse email du destinataire
    sender: str = ""  # Votre adresse email
    server: str = ""  # Serveur de mail
    port: int = 587
    security: MailSecurity = MailSecurity.STARTTLS
    login: str = ""  # Nom de connexion
    password: str = ""  # Mot de passe (secret)
    timeout_s: int = 30


@dataclass(frozen=True)
class Config:
    role: Role = Role.SITE
    site: str = ""  # site code (Etablissement), e.g. "3615"; the Siège has one too
    language: str = "fr"
    admin_password_hash: str = ""  # empty means the default password ADMIN
    last_sync: dt.datetime | None = None  # Dernière synchronisation
    start_time: dt.time = dt.time(23, 0)  # Heure de départ
    send_email: bool = False  # Envoi d'un email
    start_with_windows: bool = False  # Démarrage avec Windows
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    hq: HQSettings = field(default_factory=HQSettings)
    site_settings: SiteSettings = field(default_factory=SiteSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    group_key: str = ""  # base64 AES-256 key of the group (secret)
    # Key rotation: the previous key is still accepted (and used to answer the sites that
    # still send with it) until ``previous_key_until``, then refused.
    previous_group_key: str = ""  # (secret)
    previous_key_until: dt.datetime | None = None

    @property
    def is_hq(self) -> bool:
        return self.role is Role.HQ
