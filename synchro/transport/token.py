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

from synchro.errors import ConfigError, FieldProblem
from synchro.names import is_site_code
from synchro.transport.tls import normalize_fingerprint

PREFIX = "SYNCHRO1"
FIELD = "jeton de connexion"


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
        raise _bad("le jeton est vide ; collez la ligne affichée par « synchro site add »")
    head, _, rest = compact.partition("-")
    if not head.upper().startswith("SYNCHRO"):
        raise _bad("ce texte n'est pas un jeton Synchro (il doit commencer par SYNCHRO1-)")
    if head != PREFIX:
        raise _bad(f"jeton de version {head!r} inconnue ; mettez Synchro à jour sur ce poste")
    body, sep, crc = rest.rpartition("-")
    if not sep or not body:
        raise _bad("jeton incomplet : il a sans doute été coupé au copier-coller")
    if crc.lower() != _crc(body):
        raise _bad("jeton abîmé (somme de contrôle fausse) : recopiez-le en entier")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        fields = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise _bad("jeton illisible : recopiez-le en entier") from exc
    if not isinstance(fields, dict):
        raise _bad("jeton illisible : recopiez-le en entier")
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
        raise _bad(f"champ manquant ou invalide dans le jeton ({exc})") from exc


def _checked(
    host: str, port: int, site: str, secret: str, fingerprint: str, group_key: str
) -> ConnectionToken:
    problems: list[FieldProblem] = []
    if not host or any(c.isspace() for c in host):
        problems.append(FieldProblem("adresse du siège", "un nom ou une adresse IP", host))
    if not 0 < port < 65536:
        problems.append(FieldProblem("port", "un nombre entre 1 et 65535", str(port)))
    if not is_site_code(site):
        problems.append(FieldProblem("établissement", "lettres, chiffres, - ou _", site))
    if not secret:
        problems.append(FieldProblem("secret", "un secret non vide"))
    if fingerprint:
        try:
            fingerprint = normalize_fingerprint(fingerprint)
        except ValueError:
            problems.append(FieldProblem("empreinte", "64 chiffres hexadécimaux", fingerprint))
    if group_key:
        try:
            base64.b64decode(group_key, validate=True)
        except binascii.Error:
            problems.append(FieldProblem("clé de groupe", "du texte base64"))
    if problems:
        raise ConfigError(problems, source=FIELD)
    return ConnectionToken(host, port, site, secret, fingerprint, group_key)


def _crc(body: str) -> str:
    return f"{zlib.crc32(body.encode('utf-8')):08x}"


def _bad(reason: str) -> ConfigError:
    return ConfigError([FieldProblem(FIELD, reason)])
