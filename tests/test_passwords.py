"""Administrator password: scrypt hashes, the ADMIN default, the login delay."""

from __future__ import annotations

import base64

import pytest

from synchro.config.passwords import (
    LoginGuard,
    hash_password,
    is_default_password,
    is_password_hash,
    verify_password,
)


def test_hash_has_the_documented_form() -> None:
    stored = hash_password("s3cret")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert is_password_hash(stored)


def test_verify_right_and_wrong_password() -> None:
    stored = hash_password("Caisse 3615 é")
    assert verify_password("Caisse 3615 é", stored)
    assert not verify_password("caisse 3615 é", stored)
    assert not verify_password("", stored)


def test_same_password_gets_a_new_salt_each_time() -> None:
    assert hash_password("x") != hash_password("x")


def test_empty_hash_means_the_manual_default_admin() -> None:
    assert verify_password("ADMIN", "")
    assert not verify_password("admin", "")
    assert not verify_password("", "")
    assert is_default_password("")
    assert not is_default_password(hash_password("other"))
    assert is_default_password(hash_password("ADMIN"))


@pytest.mark.parametrize(
    "stored",
    [
        "plain-text",
        "scrypt$16384$8$1$@@@$AAAA",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n not a power of two
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n absurdly large
        "bcrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "scrypt$16384$8$1$AAAA",
    ],
)
def test_malformed_hash_matches_nothing(stored: str) -> None:
    assert not is_password_hash(stored)
    assert not verify_password("ADMIN", stored)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_login_guard_delays_grow_and_cap() -> None:
    assert [LoginGuard.delay_after(n) for n in range(8)] == [0, 0, 1, 2, 4, 8, 16, 32]
    assert LoginGuard.delay_after(9) == 60
    assert LoginGuard.delay_after(1000) == 60


def test_login_guard_waits_after_wrong_passwords() -> None:
    clock = Clock()
    guard = LoginGuard(now=clock)
    assert guard.check() == 0
    guard.record(False)
    assert guard.check() == 0
    guard.record(False)
    assert guard.check() == 1
    clock.t += 0.25
    assert guard.check() == 0.75
    clock.t += 0.75
    assert guard.check() == 0
    guard.record(False)
    assert guard.check() == 2
    assert guard.failures == 3


def test_login_guard_resets_on_success() -> None:
    clock = Clock()
    guard = LoginGuard(now=clock)
    for _ in range(20):
        guard.record(False)
    assert guard.check() == 60
    clock.t += 60
    guard.record(True)
    assert guard.failures == 0
    assert guard.check() == 0
    guard.record(False)
    assert guard.check() == 0
