"""The names the group shares, each rule written once.

- **Site code** (*Code établissement*): 1 to 32 letters, digits, ``-`` or ``_``. It is a
  Serveur's FTP account, the folder of its files at the Siège and part of every file name.
- **Address of the Siège** (*Adresse du siège*): ``host`` or ``host:port``; text with
  several ``:`` is an IPv6 address without a port.
- **Table and column names** across nodes (``same_names``): each back end spells a name
  from one DDL script its own way (PostgreSQL folds unquoted names to lower case, MariaDB
  on Windows folds table names, the others keep them), so another node's name stands for
  the local one it equals ignoring case when no other does.
- **File names** of what travels (sequence numbers on 8 digits)::

      3615-00000042.pkg          a package written by 3615 (its outbox, then its /in)
      SIEGE-3615-00000007.pkg    the Siège's package for 3615 (in 3615's /out)
      ACK-3615-00000007.json     3615 applied the Siège's package 7 (into its /in)

Every module that checks a code, splits an address or builds or reads one of these names
calls the functions here, so the rule cannot drift between the settings, the windows, the
token, the FTP server and the engine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from synchro.errors import BadValue

SITE_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
PACKAGE_SUFFIX = ".pkg"
_SEQUENCE = r"(?P<seq>\d{8})"
_PACKAGE = re.compile(rf"(?P<origin>{SITE_CODE.pattern})-{_SEQUENCE}\.pkg")
_ACK = re.compile(rf"ACK-(?P<origin>{SITE_CODE.pattern})-{_SEQUENCE}\.json")


def is_site_code(text: str) -> bool:
    """True when ``text`` is a valid site code (1-32 letters, digits, ``-``, ``_``)."""
    return SITE_CODE.fullmatch(text) is not None


# -- the Siège's address ---------------------------------------------------------------


def split_address(text: str) -> tuple[str, str | None]:
    """``"host:port"`` → ``("host", "port")``; ``"host"`` or an IPv6 address (several
    ``:``) → ``(text, None)``. Blanks around each part are dropped; the port is not checked
    (``parse_address`` does, or a window's own reader, to name the field)."""
    text = text.strip()
    if text.count(":") != 1:
        return text, None
    host, _, port = text.partition(":")
    return host.strip(), port.strip()


def parse_port(text: str) -> int:
    """A TCP port from its text, 1 to 65535. Raises ``BadValue`` (a ValueError with its
    words) otherwise."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise BadValue(say=("config.names.port", {"text": repr(text)}))
    return int(text)


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` from ``host`` or ``host:port``; ``default_port`` when none is given.
    Raises ValueError when the host is empty or the port is not 1 to 65535."""
    host, port = split_address(text)
    if not host:
        raise BadValue(say=("config.names.address", {"text": repr(text)}))
    return host, default_port if port is None else parse_port(port)


# -- table and column names -----------------------------------------------------------


def same_names(theirs: Iterable[str], ours: Iterable[str]) -> dict[str, str]:
    """For each of another node's table (or column) names that stands for one of ours,
    ours: the same name; else the one of ours it equals ignoring case (``casefold``), when
    it is the only one of ours to, none of ours is spelt exactly so, and no other of theirs
    equals it too. A name left out has no counterpart here, or more than one (a database
    that holds ``clients`` and ``Clients`` apart): nothing is guessed."""
    ours, theirs = list(ours), list(theirs)
    exact = set(ours).intersection(theirs)
    found = {name: name for name in exact}
    folded: dict[str, list[str]] = {}
    for name in ours:
        if name not in exact:
            folded.setdefault(name.casefold(), []).append(name)
    asked = Counter(name.casefold() for name in theirs if name not in exact)
    for name in theirs:
        matches = folded.get(name.casefold(), [])
        if name not in exact and len(matches) == 1 and asked[name.casefold()] == 1:
            found[name] = matches[0]
    return found


def spelt_alike(name: str, ours: Iterable[str]) -> list[str]:
    """Ours that equal ``name`` ignoring case (sorted): two or more say why ``same_names``
    guessed none of them."""
    return sorted(n for n in ours if n.casefold() == name.casefold())


# -- file names ------------------------------------------------------------------------


class FileName(NamedTuple):
    """What a package or ack file name says: who wrote it, and its sequence number."""

    origin: str  # the writer's code: a Serveur, or the Siège for the packages it publishes
    sequence: int


def package_name(origin: str, sequence: int) -> str:
    """A package written by ``origin``: ``3615-00000042.pkg``."""
    return f"{origin}-{sequence:08d}{PACKAGE_SUFFIX}"


def package_glob(origin: str) -> str:
    """A glob for every package written by ``origin`` (``package_name``)."""
    return f"{origin}-*{PACKAGE_SUFFIX}"


def published_name(origin: str, site: str, sequence: int) -> str:
    """The Siège ``origin``'s package for ``site``: ``SIEGE-3615-00000007.pkg``."""
    return f"{origin}-{site}-{sequence:08d}{PACKAGE_SUFFIX}"


def published_glob(site: str) -> str:
    """A glob for every package published for ``site`` (whoever the Siège)."""
    return f"*-{site}-*{PACKAGE_SUFFIX}"


def ack_name(site: str, sequence: int) -> str:
    """``site``'s acknowledgement of the Siège's package ``sequence``."""
    return f"ACK-{site}-{sequence:08d}.json"


def read_package_name(name: str) -> FileName | None:
    """``3615-00000042.pkg`` → ``FileName("3615", 42)``; None for any other name."""
    m = _PACKAGE.fullmatch(name)
    return FileName(m["origin"], int(m["seq"])) if m else None


def read_published_name(name: str, site: str) -> FileName | None:
    """``SIEGE-3615-00000007.pkg`` read for site 3615 → ``FileName("SIEGE", 7)``; None when
    it is not a package published for ``site``."""
    m = re.fullmatch(rf"(?P<origin>.+)-{re.escape(site)}-{_SEQUENCE}\.pkg", name)
    return FileName(m["origin"], int(m["seq"])) if m else None


def read_ack_name(name: str) -> FileName | None:
    """``ACK-3615-00000007.json`` → ``FileName("3615", 7)`` (the site that acknowledged,
    the Siège package it applied); None for any other name."""
    m = _ACK.fullmatch(name)
    return FileName(m["origin"], int(m["seq"])) if m else None
