"""The Siège's FTP server at group scale (issue 15 point 4), for real on loopback.

200 sessions at once from one address (all the establishments of a group behind one NAT,
or the benchmark on 127.0.0.1), each logging in, uploading and downloading, none refused;
meanwhile a guesser on 127.0.0.2 is banned after its failed logins. Secrets are checked in
one thread and remembered once matched (``ftp_secrets``).
"""

from __future__ import annotations

import ftplib
import hashlib
import hmac
import io
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from ftp_proxy import alias_available

from synchro.config.model import HQSettings, SiteAccount
from synchro.transport.ftp_secrets import SecretCheck
from synchro.transport.ftp_server import HQServer, session_limit
from synchro.transport.tls import ensure_certificate

SITES = 200


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def _verify(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_hash(secret), stored)


def _secret(code: str) -> str:
    return f"secret-{code}"


CODES = [f"S{n:03d}" for n in range(SITES)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HQServer]:
    cert, key = tmp_path / "hq.pem", tmp_path / "hq.key"
    ensure_certificate(cert, key, "siege.test")
    limit = session_limit(SITES)
    hq = HQServer(
        tmp_path / "ftp",
        {code: _hash(_secret(code)) for code in CODES},
        cert_file=cert,
        key_file=key,
        host="0.0.0.0",  # 127.0.0.1 and 127.0.0.2
        port=0,
        verify=_verify,
        auth_failed_delay_s=0,
        idle_timeout_s=60,
        poll_interval_s=0.05,
        ban_after_failures=5,
        max_connections=max(256, limit),
        max_connections_per_ip=max(16, limit),
    )
    hq.start()
    yield hq
    hq.stop()


def _session(port: int, code: str, secret: str, source: str = "127.0.0.1") -> ftplib.FTP_TLS:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=context, timeout=60, source_address=(source, 0))
    ftp.connect("127.0.0.1", port)
    ftp.auth()
    ftp.login(code, secret)
    ftp.prot_p()
    return ftp


def test_session_limit_lets_every_site_in_at_once_from_one_address(tmp_path: Path) -> None:
    ensure_certificate(tmp_path / "c.pem", tmp_path / "c.key", "siege.test")
    hq = HQSettings(sites=tuple(SiteAccount(c, _hash(_secret(c))) for c in CODES), port=0)
    server = HQServer.from_settings(
        tmp_path / "ftp", hq, cert_file=tmp_path / "c.pem", key_file=tmp_path / "c.key"
    )
    assert server.max_connections_per_ip >= 2 * SITES
    assert server.max_connections >= server.max_connections_per_ip


def test_200_sessions_at_once_none_refused_and_a_guesser_is_banned(server: HQServer) -> None:
    if not alias_available():
        require("127.0.0.2 on loopback (Linux) for the guesser's own address")
    for code in CODES:
        (server.root / code / "out").mkdir(parents=True, exist_ok=True)
        (server.root / code / "out" / "paquet.pkg").write_bytes(code.encode() * 1000)
    all_in = threading.Barrier(SITES + 1, timeout=120)
    errors: list[str] = []
    got: dict[str, bytes] = {}

    def site(code: str) -> None:
        try:
            ftp = _session(server.port, code, _secret(code))
        except Exception as exc:  # any refusal is the failure under test
            errors.append(f"{code}: {exc!r}")
            all_in.abort()
            return
        try:
            all_in.wait()  # every session is open at the same time here
            ftp.storbinary("STOR in/p.pkg.part", io.BytesIO(code.encode() * 500))
            ftp.rename("in/p.pkg.part", "in/p.pkg")
            data = io.BytesIO()
            ftp.retrbinary("RETR out/paquet.pkg", data.write)
            got[code] = data.getvalue()
            ftp.quit()
        except Exception as exc:
            errors.append(f"{code}: {exc!r}")
        finally:
            ftp.close()

    threads = [threading.Thread(target=site, args=(code,)) for code in CODES]
    for t in threads:
        t.start()
    all_in.wait()  # 200 sessions logged in at once; now a guesser from another address
    for _ in range(5):
        with pytest.raises(ftplib.error_perm):
            _session(server.port, "S000", "faux", source="127.0.0.2")
    with pytest.raises(ftplib.Error, match="bloqu"):  # banned: even the right secret
        _session(server.port, "S000", _secret("S000"), source="127.0.0.2")
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert got == {code: code.encode() * 1000 for code in CODES}
    for code in CODES:
        assert (server.root / code / "in" / "p.pkg").read_bytes() == code.encode() * 500
    reasons = [(e.address, e.reason) for e in server.security_events()]
    assert all(address == "127.0.0.2" for address, _ in reasons), reasons
    assert any("bloquée" in reason for _, reason in reasons)


def test_secrets_are_checked_in_one_thread_and_remembered_once_matched() -> None:
    calls: list[tuple[str, int]] = []

    def verify(secret: str, stored: str) -> bool:
        calls.append((secret, threading.get_ident()))
        return _verify(secret, stored)

    check = SecretCheck(verify)
    stored = _hash("bon")
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(check.check("A", "bon", stored)))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20
    assert len({ident for _, ident in calls}) == 1  # one worker thread, whatever the sessions
    before = len(calls)
    assert check.check("A", "bon", stored)  # remembered: no scrypt
    assert len(calls) == before
    assert not check.check("A", "faux", stored)  # a wrong secret is checked every time
    assert not check.check("A", "faux", stored)
    assert len(calls) == before + 2
    assert not check.check("A", "bon", _hash("nouveau"))  # the stored hash changed
    assert check.check("A", "nouveau", _hash("nouveau"))
    assert len(calls) == before + 4
    check.close()
    assert check.check("A", "nouveau", _hash("nouveau"))  # a new worker after close
    check.close()
