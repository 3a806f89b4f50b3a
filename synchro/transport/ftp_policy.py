"""Who may do what on the Siège's FTP server: accounts, folder rules, bans, security events.

Plain objects, no pyftpdlib in here except the ``AuthenticationFailed`` it expects, so the
rules read (and are tested) on their own. ``ftp_server`` plugs them into pyftpdlib.

Folder rules for the site whose code is ``S`` (home = ``root/S``, shown to it as ``/``):

    /            list, enter
    /in, /out    list, enter
    /out/<f>     list, read (size, checksum)
    /in/<f>      list (size, checksum); write, append and delete only ``<f>.part``;
                 rename ``<f>.part`` → ``<g>`` (the final name)
    anything else (deeper paths, other sites, MKD, RMD, SITE CHMOD, MFMT): refused

Paths are checked after resolving symbolic links, so a link cannot lead outside the home.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyftpdlib.exceptions import AuthenticationFailed

from synchro.names import is_site_code
from synchro.transport.files import PART
from synchro.transport.ftp_secrets import SecretCheck

log = logging.getLogger("synchro.transport.server")

INBOX, OUTBOX = "in", "out"

# A well-formed scrypt hash of no real secret: unknown site codes are checked against it so
# that they take as long to refuse as a wrong secret (no guessing which codes exist).
DUMMY_HASH = (
    "scrypt$16384$8$1$Sc2mta5umQ8b7a+whfLMag==$eJn3VLPDawK+FO4c+BZ07QxLMfRxLcEQMD4w6JLW+2s="
)

Accounts = Mapping[str, str] | Callable[[str], str | None]
Verify = Callable[[str, str], bool]


@dataclass(frozen=True)
class SecurityEvent:
    """One refusal worth showing to the Siège's administrator."""

    when: float  # epoch seconds
    address: str  # remote IP
    user: str  # site code tried ("" before USER)
    action: str  # e.g. "PASS", "RETR /B/out/x", "connexion"
    reason: str  # French, for the report


HQ_DISK_FULL = "disque du siège plein"  # in the event of every upload refused for room


def disk_full(detail: str) -> str:
    """How the Siège's report says an upload its disk had no room for."""
    return f"{HQ_DISK_FULL} ({detail}) : libérez de la place, l'envoi reprendra"


class Guard:
    """Failed-login counting, address bans and the bounded list of security events.

    Thread-safe: every connection runs in its own thread. ``clock`` is injected for tests.
    """

    def __init__(
        self,
        *,
        ban_after: int = 5,
        ban_seconds: float = 15 * 60,
        clock: Callable[[], float] = time.time,
        max_events: int = 500,
    ) -> None:
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._events: deque[SecurityEvent] = deque(maxlen=max_events)

    def banned_for(self, address: str) -> float:
        """Seconds left on the ban of ``address`` (0 = not banned)."""
        with self._lock:
            until = self._banned_until.get(address, 0.0)
            left = until - self.clock()
            if until and left <= 0:
                del self._banned_until[address]
            return max(0.0, left)

    def failed(self, address: str, user: str, reason: str) -> None:
        """Count a failed login; ban the address when it reaches ``ban_after`` failures."""
        self.event(address, user, "PASS", reason)
        if self.ban_after <= 0:
            return
        with self._lock:
            now = self.clock()
            recent = [t for t in self._failures.get(address, []) if now - t < self.ban_seconds]
            recent.append(now)
            self._failures[address] = recent
            banned = len(recent) >= self.ban_after
            if banned:
                self._banned_until[address] = now + self.ban_seconds
                del self._failures[address]
        if banned:
            minutes = round(self.ban_seconds / 60)
            self.event(
                address,
                user,
                "connexion",
                f"adresse bloquée {minutes} min après {self.ban_after} échecs de connexion",
            )

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def event(self, address: str, user: str, action: str, reason: str) -> None:
        """Record a refusal: logged at WARNING and kept for the Siège's report."""
        log.warning("FTP refusé : %s (%s) %s : %s", user or "?", address, action, reason)
        with self._lock:
            self._events.append(SecurityEvent(self.clock(), address, user, action, reason))

    def events(self) -> list[SecurityEvent]:
        with self._lock:
            return list(self._events)


class Policy:
    """The folder rules of the module docstring, for homes under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def home(self, site: str) -> str:
        return os.path.join(self.root, site)

    def parts(self, site: str, path: str) -> tuple[str, ...] | None:
        """``path`` relative to the site's home as parts, or None when outside it."""
        home = os.path.realpath(self.home(site))
        real = os.path.realpath(path)
        if real != home and not real.startswith(home + os.sep):
            return None
        rel = os.path.relpath(real, home)
        return () if rel == "." else tuple(rel.split(os.sep))

    def refusal(self, site: str, perm: str, path: str) -> str | None:
        """Why ``site`` may not use permission ``perm`` on ``path`` (None = allowed).

        ``perm`` is pyftpdlib's letter: e (enter), l (list), r (read), w (write), a (append),
        d (delete), f (rename), m (mkdir), M (chmod), T (set time).
        """
        parts = self.parts(site, path)
        if parts is None:
            return "chemin hors du dossier de l'établissement"
        if perm in "mMT":
            return "commande non autorisée sur ce serveur"
        if len(parts) <= 1:
            if parts and parts[0] not in (INBOX, OUTBOX):
                return "seuls les dossiers /in et /out existent"
            return None if perm in "el" else "opération non autorisée sur un dossier"
        if len(parts) > 2:
            return "seuls les fichiers directement dans /in ou /out sont accessibles"
        folder, name = parts
        if folder == OUTBOX:
            return None if perm in "lr" else "/out est en lecture seule"
        if folder != INBOX:
            return "seuls les dossiers /in et /out existent"
        if perm == "l" or perm == "f":
            return None
        if perm in "wad":
            return None if name.endswith(PART) else "seuls les fichiers .part sont modifiables"
        return "/in est en écriture seule"


class SiteAuthorizer:
    """pyftpdlib authorizer (duck-typed): one account per site code, secrets checked with
    ``verify(secret, stored_hash)`` (through ``SecretCheck``: one scrypt thread, matched
    secrets remembered), refusals counted by the ``Guard``."""

    def __init__(self, accounts: Accounts, verify: Verify, policy: Policy, guard: Guard) -> None:
        self._accounts = accounts
        self.secrets = SecretCheck(verify)
        self.policy = policy
        self.guard = guard

    def stored_hash(self, site: str) -> str | None:
        if callable(self._accounts):
            return self._accounts(site)
        return self._accounts.get(site)

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        address = str(getattr(handler, "remote_ip", ""))
        left = self.guard.banned_for(address)
        if left:
            self.guard.event(address, username, "PASS", "adresse bloquée")
            raise AuthenticationFailed(f"adresse bloquée, réessayez dans {int(left) + 1} s.")
        if username.lower() in ("anonymous", "ftp"):
            self.guard.failed(address, username, "accès anonyme refusé")
            raise AuthenticationFailed("accès anonyme refusé.")
        stored = self.stored_hash(username) if is_site_code(username) else None
        if not stored:
            self.secrets.slow(password, DUMMY_HASH)
            self.guard.failed(address, username, "établissement inconnu")
            raise AuthenticationFailed("établissement ou secret incorrect.")
        if not self.secrets.check(username, password, stored):
            self.guard.failed(address, username, "secret incorrect")
            raise AuthenticationFailed("établissement ou secret incorrect.")
        self.guard.succeeded(address)

    def get_home_dir(self, username: str) -> str:
        home = self.policy.home(username)
        for folder in (INBOX, OUTBOX):
            os.makedirs(os.path.join(home, folder), exist_ok=True)
        return home

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if path is None:
            return False
        return self.policy.refusal(username, perm, path) is None

    def get_perms(self, username: str) -> str:
        return "elradfw"

    def get_msg_login(self, username: str) -> str:
        return f"Bienvenue, établissement {username}."

    def get_msg_quit(self, username: str) -> str:
        return "Au revoir."

    def impersonate_user(self, username: str, password: str) -> None:
        """No OS-level impersonation: every site is confined by ``Policy`` instead."""

    def terminate_impersonation(self, username: str) -> None:
        """See ``impersonate_user``."""
