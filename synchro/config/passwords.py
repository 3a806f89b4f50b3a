"""The administrator password (and any other secret kept only as a hash).

The manual: "Le mot de passe, par défaut, de l'administrateur est ADMIN." A fresh
configuration stores an empty hash, which means exactly that default; setting a password
stores a salted scrypt hash, encoded on one line so it fits in the TOML file::

    scrypt$16384$8$1$<base64 salt>$<base64 hash>

``LoginGuard`` slows down guessing at the password prompt: after each wrong password the
next attempt has to wait longer (0, 0, 1, 2, 4, 8 ... seconds, at most 60). It is pure:
the clock is injected, nothing sleeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable

DEFAULT_PASSWORD = "ADMIN"
SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds accepted when reading a stored hash, so a hand-edited file cannot make a login
# allocate gigabytes or spin for minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` in the one-line ``scrypt$...`` form."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join((SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; an empty ``stored`` means ``ADMIN``.

    Comparisons are constant-time. A malformed ``stored`` value matches nothing.
    """
    if not stored:
        return hmac.compare_digest(password.encode("utf-8"), DEFAULT_PASSWORD.encode("utf-8"))
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    actual = _scrypt(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)


def is_default_password(stored: str) -> bool:
    """True while the administrator still has the default password ``ADMIN``."""
    return verify_password(DEFAULT_PASSWORD, stored)


def is_password_hash(stored: str) -> bool:
    """True when ``stored`` is a well-formed ``scrypt$...`` hash (used to validate config)."""
    return _parse(stored) is not None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL needs about 128 * r * (n + p + 2) bytes; give it that plus a margin.
    maxmem = 128 * r * (n + p + 2) + 2**20
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    power_of_two = n > 1 and n & (n - 1) == 0
    if not (power_of_two and n <= _MAX_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class LoginGuard:
    """Growing delay between wrong passwords at the login prompt.

    ``check()`` says how many seconds the prompt must still wait before accepting another
    attempt (0.0 = go ahead); ``record(ok)`` is called with the outcome of each attempt.
    A right password resets the count.
    """

    MAX_DELAY = 60.0

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._failures = 0
        self._last_failure = 0.0

    @property
    def failures(self) -> int:
        """Wrong passwords since the last right one."""
        return self._failures

    @staticmethod
    def delay_after(failures: int) -> float:
        """Seconds to wait after ``failures`` wrong passwords: 0, 0, 1, 2, 4, 8 ... 60."""
        if failures < 2:
            return 0.0
        return min(LoginGuard.MAX_DELAY, 2.0 ** min(failures - 2, 16))

    def check(self) -> float:
        """Seconds still to wait before the next attempt may be checked."""
        if self._failures == 0:
            return 0.0
        ready_at = self._last_failure + self.delay_after(self._failures)
        return max(0.0, ready_at - self._now())

    def record(self, ok: bool) -> None:
        """Note the outcome of one attempt."""
        if ok:
            self._failures = 0
            return
        self._failures += 1
        self._last_failure = self._now()
