"""Transport pieces without a network: token, certificate, retry helper, folder rules, bans.

Plus the server with the real scrypt ``verify_password`` and ``from_settings``.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from synchro.config.model import HQSettings, SiteAccount
from synchro.config.passwords import hash_password
from synchro.errors import (
    Cancelled,
    ConfigError,
    ConnectionTestError,
    DatabaseError,
    TransportError,
)
from synchro.transport.ftp_client import login_check
from synchro.transport.ftp_policy import Guard, Policy
from synchro.transport.ftp_server import HQServer
from synchro.transport.retry import with_retries
from synchro.transport.tls import (
    certificate_fingerprint,
    ensure_certificate,
    fingerprint_of,
    normalize_fingerprint,
)
from synchro.transport.token import ConnectionToken, make_token, new_secret, parse_token

FP = "0123456789abcdef" * 4

# --- token -----------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
    text = make_token("siege.example.fr", 2121, "3615", "s3cr3t-_x", FP, key)
    assert text.startswith("SYNCHRO1-") and "\n" not in text
    assert parse_token(text) == ConnectionToken(
        "siege.example.fr", 2121, "3615", "s3cr3t-_x", FP, key
    )
    assert parse_token(make_token("10.0.0.1", 21, "A", "x", FP)).group_key == ""


def test_token_survives_line_breaks_and_spaces() -> None:
    text = make_token("192.168.0.24", 21, "3615", new_secret(), FP)
    wrapped = "  " + "\n".join(text[i : i + 20] for i in range(0, len(text), 20)) + "\r\n"
    assert parse_token(wrapped) == parse_token(text)


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda t: t[:-10], "coup"),  # truncated: the checksum no longer matches
        (lambda t: t[:30], "coup"),
        (lambda t: t[:12] + ("A" if t[12] != "A" else "B") + t[13:], "somme de contrôle"),
        (lambda t: "SYNCHRO9" + t[8:], "version"),
        (lambda t: "hello world", "pas un jeton"),
        (lambda t: "", "vide"),
        (lambda t: t.split("-")[0] + "-" + t.split("-")[-1], "coup"),
    ],
)
def test_mispasted_token_is_refused_clearly(mangle: object, words: str) -> None:
    text = make_token("siege", 21, "3615", "secret", FP)
    with pytest.raises(ConfigError) as info:
        parse_token(mangle(text))  # type: ignore[operator]
    assert words in str(info.value)
    assert "jeton" in str(info.value)


def test_make_token_refuses_bad_fields() -> None:
    with pytest.raises(ConfigError) as info:
        make_token("", 0, "../x", "", "zz")
    fields = {p.field for p in info.value.problems}
    assert fields == {"adresse du siège", "port", "établissement", "secret", "empreinte"}


def test_token_repr_hides_secrets_and_secrets_are_fresh() -> None:
    token = parse_token(make_token("h", 21, "A", "very-secret", FP, "a2V5"))
    assert "very-secret" not in repr(token) and "a2V5" not in repr(token)
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50 and all(len(s) >= 32 for s in secrets)


# --- certificate -------------------------------------------------------------------------------


def test_certificate_created_once_with_private_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls" / "hq.pem", tmp_path / "tls" / "hq.key"
    fp = ensure_certificate(cert, key, "siege.example.fr")
    assert len(fp) == 64 and fp == normalize_fingerprint(fp)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert fp == fingerprint_of(loaded.public_bytes(serialization.Encoding.DER))
    assert certificate_fingerprint(cert) == fp
    life = loaded.not_valid_after_utc - loaded.not_valid_before_utc
    assert life > dt.timedelta(days=3640)
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert ensure_certificate(cert, key, "other") == fp  # kept: the sites pinned it


def test_normalize_fingerprint_accepts_colon_form() -> None:
    colons = ":".join(FP[i : i + 2].upper() for i in range(0, 64, 2))
    assert normalize_fingerprint(colons) == FP
    with pytest.raises(ValueError):
        normalize_fingerprint("abc")


# --- retry -------------------------------------------------------------------------------------


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_until_success_with_injected_sleep() -> None:
    sleeps: list[float] = []
    attempts: list[tuple[int, str]] = []
    action = Flaky([TransportError("cut 1"), ConnectionTestError("timeout", "slow")])
    result = with_retries(
        action,
        attempts=10,
        delay_s=600,
        sleep=sleeps.append,
        on_attempt=lambda n, e: attempts.append((n, str(e))),
    )
    assert result == "ok" and action.calls == 3
    assert sleeps == [600, 600]
    assert attempts == [(1, "cut 1"), (2, "slow")]


def test_retry_exhausted_raises_the_last_error() -> None:
    action = Flaky([TransportError(f"cut {i}") for i in range(5)])
    with pytest.raises(TransportError, match="cut 2"):
        with_retries(action, attempts=3, delay_s=1, sleep=lambda _: None)
    assert action.calls == 3


@pytest.mark.parametrize("kind", ["auth", "certificate", "quota"])
def test_retry_gives_up_at_once_on_permanent_errors(kind: str) -> None:
    action = Flaky([ConnectionTestError(kind, "no")])
    sleeps: list[float] = []
    with pytest.raises(ConnectionTestError):
        with_retries(action, attempts=10, delay_s=1, sleep=sleeps.append)
    assert action.calls == 1 and sleeps == []


def test_retry_does_not_catch_other_errors() -> None:
    action = Flaky([DatabaseError("not mine")])
    with pytest.raises(DatabaseError):
        with_retries(action, attempts=10, delay_s=1, sleep=lambda _: None)
    assert action.calls == 1


def test_retry_cancelled_during_the_wait() -> None:
    cancel = threading.Event()
    action = Flaky([TransportError("cut")] * 5)
    with pytest.raises(Cancelled):
        with_retries(action, attempts=10, delay_s=600, cancel=cancel, sleep=lambda _: cancel.set())
    assert action.calls == 1


def test_retry_real_wait_is_interrupted_by_cancel() -> None:
    cancel = threading.Event()
    action = Flaky([TransportError("cut")] * 5)
    with pytest.raises(Cancelled):  # without the cancel this would wait an hour
        with_retries(
            action, attempts=3, delay_s=3600, cancel=cancel, on_attempt=lambda n, e: cancel.set()
        )


def test_retry_cancelled_before_start_and_at_least_one_attempt() -> None:
    cancel = threading.Event()
    cancel.set()
    action = Flaky([])
    with pytest.raises(Cancelled):
        with_retries(action, attempts=3, delay_s=1, cancel=cancel)
    assert action.calls == 0
    assert with_retries(Flaky([]), attempts=0, delay_s=1) == "ok"


# --- folder rules and bans ------------------------------------------------------------------


def test_policy_rules(tmp_path: Path) -> None:
    policy = Policy(str(tmp_path))
    home = tmp_path / "A"

    def ok(perm: str, *parts: str) -> bool:
        return policy.refusal("A", perm, str(home.joinpath(*parts))) is None

    assert ok("e") and ok("l") and ok("l", "in") and ok("e", "out")
    assert ok("r", "out", "x.pkg") and ok("l", "out", "x.pkg")
    assert not ok("w", "out", "x.part") and not ok("d", "out", "x.pkg")
    assert ok("w", "in", "x.pkg.part") and ok("a", "in", "x.part") and ok("d", "in", "x.part")
    assert not ok("w", "in", "x.pkg") and not ok("d", "in", "x.pkg") and not ok("r", "in", "x")
    assert ok("f", "in", "x.pkg") and ok("l", "in", "x.pkg")
    assert not ok("m", "in", "sub") and not ok("d", "in") and not ok("M", "out", "x")
    assert not ok("l", "other") and not ok("w", "in", "sub", "x.part")
    assert policy.refusal("A", "l", str(tmp_path / "B" / "out")) is not None
    assert policy.refusal("A", "l", str(tmp_path)) is not None


def test_guard_forgets_old_failures_and_bans_after_the_limit() -> None:
    now = [0.0]
    guard = Guard(ban_after=3, ban_seconds=100, clock=lambda: now[0])
    guard.failed("1.2.3.4", "A", "x")
    guard.failed("1.2.3.4", "A", "x")
    now[0] = 150  # the first two are forgotten
    guard.failed("1.2.3.4", "A", "x")
    assert guard.banned_for("1.2.3.4") == 0
    guard.failed("1.2.3.4", "A", "x")
    guard.failed("1.2.3.4", "A", "x")
    assert guard.banned_for("1.2.3.4") == 100
    assert guard.banned_for("5.6.7.8") == 0
    now[0] = 251
    assert guard.banned_for("1.2.3.4") == 0
    assert [e.action for e in guard.events()][-1] == "connexion"


# --- server with the real password hashes --------------------------------------------------


def test_server_from_settings_with_scrypt_hashes(tmp_path: Path) -> None:
    fp = ensure_certificate(tmp_path / "c.pem", tmp_path / "c.key", "hq")
    hq = HQSettings(
        listen_address="127.0.0.1",
        port=0,
        sites=(SiteAccount("3615", hash_password("bon-secret")), SiteAccount("EMPTY", "")),
    )
    server = HQServer.from_settings(
        tmp_path / "ftp",
        hq,
        cert_file=tmp_path / "c.pem",
        key_file=tmp_path / "c.key",
        auth_failed_delay_s=0,
    )
    with server:
        assert server.fingerprint == fp
        assert login_check("127.0.0.1", server.port, "3615", "bon-secret", fp).secure
        with pytest.raises(ConnectionTestError) as info:
            login_check("127.0.0.1", server.port, "3615", "mauvais", fp)
        assert info.value.code == "auth"
        # an empty stored hash means "ADMIN" for the admin password: never for a site
        with pytest.raises(ConnectionTestError):
            login_check("127.0.0.1", server.port, "EMPTY", "ADMIN", fp)
    assert (tmp_path / "ftp" / "3615" / "in").is_dir()


def test_the_sieges_tls_sessions_give_idle_buffers_back(tmp_path: Path) -> None:
    """With a session per waiting establishment (200 at once), OpenSSL's per-session read
    and write buffers are released while a session is idle (issue 15)."""
    from OpenSSL import SSL

    from synchro.transport.tls import ensure_certificate, server_context

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "SIEGE")
    mode = server_context(cert, key).set_mode(0)  # set_mode returns the mode now in force
    assert mode & SSL.MODE_RELEASE_BUFFERS
