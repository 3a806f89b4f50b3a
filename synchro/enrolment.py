"""Enrolling an establishment at the Siège, and a Serveur joining with its token.

The one place where an establishment's account is made (a fresh secret, the Siège keeps
only its scrypt hash), where the connection token carrying that secret is built
(``transport.token``) and where a token becomes a Serveur's *Mode serveur* settings. The
CLI (``site add / remove``, ``init --token``), the wizard (through the tray backend), the
demo and the test helpers all call these functions:

    enrolled = enrol_site(config, paths, "3615", "siege.example.com")   # at the Siège
    print(enrolled.token)                                                 # given to 3615
    config = join_with_token(site_config, enrolled.token)                # at 3615

``add_site`` is the part without files (an account in the config, and its token) for a
Siège built in memory; ``enrol_site`` is what ``synchro site add`` does. The group key
(``key rotate / set``) and the Siège's certificate (``trust``) are kept here too: they
are what makes a site one of the group.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

from synchro.config.model import Config, SiteAccount
from synchro.config.passwords import hash_password
from synchro.config.store import check_config, save_config
from synchro.engine.preflight_run import publish_for_site
from synchro.errors import ConfigError, ErrorKind, Say, SynchroError
from synchro.package.crypto import decode_key, encode_key, new_group_key
from synchro.platform.paths import NodePaths, certificate_files
from synchro.transport.ftp_client import fetch_fingerprint
from synchro.transport.tls import ensure_certificate, normalize_fingerprint
from synchro.transport.token import make_token, new_secret, parse_token


class Enrolled(NamedTuple):
    config: Config  # the Siège's settings with the establishment's account
    token: str  # SYNCHRO1-...: holds the site's secret, treat it like a password


class EnrolRefused(SynchroError):
    """Enrolling or removing is not possible; ``reason`` says why, for the front end's words:
    ``not-hq`` (only the Siège has establishments), ``exists``, ``no-host`` (no address to
    give the establishment), ``unknown`` (no such establishment to remove). Its words are
    ``say`` (``config.enrol.<reason>``): ``str()`` the French, ``text_in`` the UI language."""

    default_kind = ErrorKind.CONFIG

    def __init__(self, reason: str, message: str = "", *, say: Say | None = None) -> None:
        if message:
            super().__init__(message)
        else:
            super().__init__(say=say or (f"config.enrol.{reason.replace('-', '_')}", {}))
        self.reason = reason


def add_site(config: Config, code: str, host: str, fingerprint: str) -> Enrolled:
    """In memory: the Siège's ``config`` with ``code``'s new account, and the token that
    tells ``code`` to dial ``host`` on the Siège's port, pinned to the certificate
    ``fingerprint`` ("" = plain FTP), with the group key. Nothing is written."""
    config, secret = _with_account(config, code)
    token = make_token(host, config.hq.port, code, secret, fingerprint, config.group_key)
    return Enrolled(config, token)


def _with_account(config: Config, code: str) -> tuple[Config, str]:
    """``config`` with a new account for ``code``, and that account's fresh secret."""
    secret = new_secret()
    account = SiteAccount(code=code, secret_hash=hash_password(secret))
    hq = dataclasses.replace(config.hq, sites=(*config.hq.sites, account))
    return dataclasses.replace(config, hq=hq), secret


def enrol_site(config: Config, paths: NodePaths, code: str, host: str = "") -> Enrolled:
    """``synchro site add``: at the Siège, create establishment ``code``'s account (and the
    group key, the first time), keep ``host`` as the address given to establishments when
    none is set, make sure the certificate exists, save the settings, publish the Siège's
    schemas into ``code``'s ``/out`` (for ``synchro check``), and return the token.

    ``host`` defaults to the *public address* of the settings. Raises ``EnrolRefused``,
    ``ConfigError`` (a bad code: nothing is saved) or a disk error."""
    if not config.is_hq:
        raise EnrolRefused("not-hq")
    if any(s.code == code for s in config.hq.sites):
        raise EnrolRefused("exists", say=("config.enrol.exists", {"code": code}))
    host = host or config.hq.public_address
    if not host:
        raise EnrolRefused("no-host")
    if not config.group_key:
        config = dataclasses.replace(config, group_key=encode_key(new_group_key()))
    hq = dataclasses.replace(config.hq, public_address=config.hq.public_address or host)
    config = dataclasses.replace(config, hq=hq)
    paths.ensure()
    cert, key = certificate_files(paths)
    fingerprint = "" if config.hq.allow_plain_ftp else ensure_certificate(cert, key, config.site)
    config, secret = _with_account(config, code)
    problems = check_config(config)  # a bad code is named as in the settings file
    if problems:
        raise ConfigError(problems, str(paths.config_file))
    token = make_token(host, config.hq.port, code, secret, fingerprint, config.group_key)
    save_config(config, paths.config_file)
    publish_for_site(config, paths, code)
    return Enrolled(config, token)


def remove_site(config: Config, paths: NodePaths, code: str) -> Config:
    """``synchro site remove``: the account goes (its files stay in the FTP folder); saved.
    Raises ``EnrolRefused("unknown")`` when there is no such establishment."""
    sites = tuple(s for s in config.hq.sites if s.code != code)
    if len(sites) == len(config.hq.sites):
        raise EnrolRefused("unknown", say=("config.enrol.unknown", {"code": code}))
    config = dataclasses.replace(config, hq=dataclasses.replace(config.hq, sites=sites))
    save_config(config, paths.config_file)
    return config


def join_with_token(config: Config, token: str) -> Config:
    """A Serveur's ``config`` pointed at the Siège the token names: site code, address,
    port, secret, certificate fingerprint (plain FTP allowed only when the token has none
    or it already was) and group key (kept when the token has none). Nothing is saved.
    Raises ``ConfigError`` saying what is wrong with the token."""
    t = parse_token(token)
    site = dataclasses.replace(
        config.site_settings,
        hq_address=t.host,
        hq_port=t.port,
        secret=t.secret,
        certificate_fingerprint=t.fingerprint,
        allow_plain_ftp=config.site_settings.allow_plain_ftp or not t.fingerprint,
    )
    return dataclasses.replace(
        config, site=t.site, site_settings=site, group_key=t.group_key or config.group_key
    )


# -- the group key and the Siège's certificate -------------------------------------------


def rotate_group_key(config: Config, grace_days: int) -> Config:
    """Siège ``synchro key rotate``: a new group key; the old one stays accepted for
    ``grace_days``. Nothing is saved."""
    return _rotated(config, encode_key(new_group_key()), grace_days)


def take_group_key(config: Config, text: str, grace_days: int) -> Config:
    """Serveur ``synchro key set``: the key the Siège gave (its text form), the old one
    accepted for ``grace_days``; ``config`` itself when it already is the key. Raises
    ``ConfigError`` when ``text`` is not a key. Nothing is saved."""
    new_key = encode_key(decode_key(text))
    return config if new_key == config.group_key else _rotated(config, new_key, grace_days)


def _rotated(config: Config, new_key: str, grace_days: int) -> Config:
    until = dt.datetime.now() + dt.timedelta(days=grace_days) if config.group_key else None
    return dataclasses.replace(
        config, group_key=new_key, previous_group_key=config.group_key, previous_key_until=until
    )


def siege_fingerprint(config: Config) -> str:
    """The SHA-256 fingerprint of the certificate the Siège presents now (``synchro
    trust``: after the Siège renewed it). Raises ``TransportError`` when unreachable."""
    s = config.site_settings
    return fetch_fingerprint(s.hq_address, s.hq_port)


def same_fingerprint(text: str, fingerprint: str) -> bool:
    """True when ``text`` (``AB:CD:...`` or hex) is ``fingerprint``. Raises ValueError when
    ``text`` is not a SHA-256 fingerprint."""
    return normalize_fingerprint(text) == fingerprint


def trust_fingerprint(config: Config, fingerprint: str) -> Config:
    """A Serveur's ``config`` pinned to the Siège's certificate ``fingerprint``; not saved."""
    site = dataclasses.replace(config.site_settings, certificate_fingerprint=fingerprint)
    return dataclasses.replace(config, site_settings=site)
