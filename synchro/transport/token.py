"""The one-line connection token a Siège gives to each establishment.

``synchro site add CODE`` prints it at the Siège; the site pastes it into its wizard or
``synchro init --token``. It carries everything a site needs to reach the Siège safely:

    SYNCHRO1-<base64url(JSON), no padding>-<CRC-32 of that text, 8 hex digits>

The JSON holds ``h`` (host), ``p`` (port), ``s`` (site code), ``k`` (FTP secret), ``f``
(certificate SHA-256 fingerprint) and optionally ``g`` (group key, base64). The checksum makes
a truncated or mistyped token fail with a clear message instead of a confusing login error
later. Whitespace (line breaks added by an email program) is ignored when parsing.

The token holds secrets: treat it like a password.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Any

from synchro.errors import ConfigError, FieldProblem, Say
from synchro.names import is_site_code
from synchro.transport.tls import normalize_fingerprint

PREFIX = "SYNCHRO1"
FIELD = "jeton de connexion"  # the French of NAME
NAME: Say = ("config.token.name", {})


@dataclass(frozen=True)
class ConnectionToken:
    host: str
    port: int
    site: str
    secret: str
    fingerprint: str  # SHA-256 of the Siège's certificate, 64 hex digits ("" = plain FTP)
    group_key: str = ""  # base64 AES-256 key of the group, when packages are encrypted

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return (
            f"ConnectionToken(host={self.host!r}, port={self.port}, site={self.site!r}, "
            f"fingerprint={self.fingerprint!r}, secret=***, group_key="
            f"{'***' if self.group_key else ''!r})"
        )


def new_secret() -> str:
    """A fresh FTP secret for a site (192 random bits, URL-safe text)."""
    return secrets.token_urlsafe(24)


def make_token(
    host: str, port: int, site: str, secret: str, fingerprint: str, group_key: str = ""
) -> str:
    """Build the token text. Raises ConfigError when a field cannot be used."""
    token = _checked(host, port, site, secret, fingerprint, group_key)
    fields: dict[str, Any] = {
        "h": token.host,
        "p": token.port,
        "s": token.site,
        "k": token.secret,
        "f": token.fingerprint,
    }
    if token.group_key:
        fields["g"] = token.group_key
    raw = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode("utf-8")
    body = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return f"{PREFIX}-{body}-{_crc(body)}"


def parse_token(text: str) -> ConnectionToken:
    """Read a pasted token. Raises ConfigError saying what is wrong with it."""
    compact = re.sub(r"\s", "", text or "")
    if not compact:
        raise _bad("empty")
    head, _, rest = compact.partition("-")
    if not head.upper().startswith("SYNCHRO"):
        raise _bad("not_token")
    if head != PREFIX:
        raise _bad("version", version=repr(head))
    body, sep, crc = rest.rpartition("-")
    if not sep or not body:
        raise _bad("cut")
    if crc.lower() != _crc(body):
        raise _bad("damaged")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        fields = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise _bad("unreadable") from exc
    if not isinstance(fields, dict):
        raise _bad("unreadable")
    try:
        return _checked(
            str(fields["h"]),
            int(fields["p"]),
            str(fields["s"]),
            str(fields["k"]),
            str(fields["f"]),
            str(fields.get("g", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad("field", detail=str(exc)) from exc


def _checked(
    host: str, port: int, site: str, secret: str, fingerprint: str, group_key: str
) -> ConnectionToken:
    problems: list[FieldProblem] = []
    if not host or any(c.isspace() for c in host):
        problems.append(_problem("adresse du siège", "host", host))
    if not 0 < port < 65536:
        problems.append(_problem("port", "port", str(port)))
    if not is_site_code(site):
        problems.append(_problem("établissement", "site", site))
    if not secret:
        problems.append(_problem("secret", "secret"))
    if fingerprint:
        try:
            fingerprint = normalize_fingerprint(fingerprint)
        except ValueError:
            problems.append(_problem("empreinte", "fingerprint", fingerprint))
    if group_key:
        try:
            base64.b64decode(group_key, validate=True)
        except binascii.Error:
            problems.append(_problem("clé de groupe", "group_key"))
    if problems:
        raise ConfigError(problems, source=NAME)
    return ConnectionToken(host, port, site, secret, fingerprint, group_key)


def _crc(body: str) -> str:
    return f"{zlib.crc32(body.encode('utf-8')):08x}"


def _problem(field: str, word: str, found: str = "") -> FieldProblem:
    """A bad field of a token: ``field`` its French name, ``word`` the last part of its
    keys in the locales (``config.token.<word>`` its name, ``config.token.expect_<word>``
    what it should be)."""
    expected: Say = (f"config.token.expect_{word}", {})
    return FieldProblem(field, expected, found, name=(f"config.token.{word}", {}))


def _bad(reason: str, **values: str) -> ConfigError:
    """What is wrong with a pasted token: ``reason`` names its words
    (``config.token.<reason>``)."""
    said: Say = (f"config.token.{reason}", dict(values))
    return ConfigError([FieldProblem(FIELD, said, name=NAME)])
