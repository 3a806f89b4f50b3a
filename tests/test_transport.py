"""The Siège's FTPS server and the site client, for real on 127.0.0.1 (port 0, real TLS).

Clients are SiteClient, stdlib ftplib and raw sockets. Network cuts go through
tests/ftp_proxy.py. No test waits for a timer: bans use an injected clock.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import hashlib
import hmac
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from ftp_proxy import FTPProxy, alias_available, free_port_range
from smtp_server import unanswered_port

from synchro.errors import Cancelled, ConnectionTestError, TransportError
from synchro.transport import ftp_server
from synchro.transport.ftp_client import SiteClient, fetch_fingerprint, login_check
from synchro.transport.ftp_server import SESSION_POLL_S, HQServer
from synchro.transport.retry import is_permanent
from synchro.transport.tls import ensure_certificate

SECRETS = {"A": "secret-de-A", "B": "secret-de-B"}


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def _verify(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_hash(secret), stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("cert")
    fp = ensure_certificate(folder / "hq.pem", folder / "hq.key", "siege.test")
    return folder / "hq.pem", folder / "hq.key", fp


@pytest.fixture
def received() -> list[tuple[str, Path]]:
    return []


@pytest.fixture
def make_server(
    tmp_path: Path, cert: tuple[Path, Path, str], received: list[tuple[str, Path]]
) -> Iterator[Callable[..., HQServer]]:
    servers: list[HQServer] = []

    def make(**overrides: Any) -> HQServer:
        options: dict[str, Any] = {
            "cert_file": cert[0],
            "key_file": cert[1],
            "host": "127.0.0.1",
            "port": 0,
            "verify": _verify,
            "on_received": lambda site, path: received.append((site, path)),
            "auth_failed_delay_s": 0,
            "idle_timeout_s": 30,
            "poll_interval_s": 0.02,
        }
        options.update(overrides)
        accounts = {code: _hash(secret) for code, secret in SECRETS.items()}
        server = HQServer(tmp_path / "ftp", accounts, **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., HQServer]) -> HQServer:
    return make_server()


def client(server: HQServer, site: str = "A", **kw: Any) -> SiteClient:
    kw.setdefault("timeout", 10)
    return SiteClient(
        "127.0.0.1", server.port, site, kw.pop("secret", SECRETS[site]), server.fingerprint, **kw
    )


def raw_tls(server: HQServer, site: str | None = "A", secret: str | None = None) -> ftplib.FTP_TLS:
    """A stdlib FTPS session (no pinning: these tests attack the server, not the client)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=context, timeout=10)
    ftp.connect("127.0.0.1", server.port)
    ftp.auth()
    if site is not None:
        ftp.login(site, secret if secret is not None else SECRETS[site])
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
    return ftp


def payload(size: int, seed: int = 1) -> bytes:
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


# --- round trip ----------------------------------------------------------------------------


def test_upload_then_download_round_trip(
    server: HQServer, tmp_path: Path, received: list[tuple[str, Path]]
) -> None:
    data = payload(300_000)
    source = tmp_path / "A-000001.pkg"
    source.write_bytes(data)
    progress: list[tuple[int, int]] = []
    with client(server, on_progress=lambda done, total: progress.append((done, total))) as hq:
        hq.upload(source, "A-000001.pkg")
        assert hq.list_in() == ["A-000001.pkg"]
        final = server.root / "A" / "in" / "A-000001.pkg"
        assert final.read_bytes() == data
        assert received == [("A", final)]
        assert progress[-1] == (len(data), len(data))

        published = server.root / "A" / "out" / "hq-000007.pkg"
        published.write_bytes(payload(200_000, seed=2))
        (server.root / "A" / "out" / "hq-000008.pkg.part").write_bytes(b"not yet")
        assert hq.list_out() == ["hq-000007.pkg"]
        target = tmp_path / "got" / "hq-000007.pkg"
        hq.download("hq-000007.pkg", target)
    assert target.read_bytes() == published.read_bytes()
    assert not target.with_name("hq-000007.pkg.part").exists()


def test_upload_replaces_an_existing_final_file(server: HQServer, tmp_path: Path) -> None:
    source = tmp_path / "p.pkg"
    with client(server) as hq:
        for content in (b"first version", b"second, longer version"):
            source.write_bytes(content)
            hq.upload(source, "p.pkg")
    assert (server.root / "A" / "in" / "p.pkg").read_bytes() == b"second, longer version"


def test_test_connection_reports_ok_and_fetch_fingerprint(server: HQServer) -> None:
    found = login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint)
    assert found.secure  # FTPS with the pinned certificate
    assert fetch_fingerprint("127.0.0.1", server.port) == server.fingerprint


def test_test_connection_counts_only_the_packages_waiting_in_out(server: HQServer) -> None:
    """tour.json, schemas.json and a package still being written are not waiting files."""
    out = server.root / "A" / "out"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tour.json", "schemas.json", "SIEGE-A-00000002.pkg.part"):
        (out / name).write_bytes(b"{}")
    assert login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint).waiting == 0
    (out / "SIEGE-A-00000001.pkg").write_bytes(b"x")
    assert login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint).waiting == 1


def test_xsha256_answers_the_checksum_of_a_file(server: HQServer) -> None:
    (server.root / "A" / "out").mkdir(parents=True, exist_ok=True)
    (server.root / "A" / "out" / "x").write_bytes(b"abc")
    ftp = raw_tls(server)
    try:
        assert ftp.sendcmd("XSHA256 out/x") == "213 " + hashlib.sha256(b"abc").hexdigest()
        with pytest.raises(ftplib.error_perm):
            ftp.sendcmd("XSHA256 out/missing")
    finally:
        ftp.close()


# --- network cuts and resume ------------------------------------------------------------------


@pytest.fixture
def proxied(make_server: Callable[..., HQServer]) -> Iterator[tuple[HQServer, FTPProxy]]:
    if not alias_available():
        require("the loopback alias 127.0.0.2 (tests/ftp_proxy.py relays through it)")
    ports = free_port_range(4)
    server = make_server(passive_ports=ports)
    with FTPProxy(server.port, ports) as proxy:
        yield server, proxy


def via_proxy(server: HQServer, proxy: FTPProxy) -> SiteClient:
    return SiteClient(proxy.host, proxy.control_port, "A", SECRETS["A"], server.fingerprint)


def test_cut_upload_resumes_with_rest(
    proxied: tuple[HQServer, FTPProxy], tmp_path: Path, received: list[tuple[str, Path]]
) -> None:
    server, proxy = proxied
    data = payload(3_000_000)
    source = tmp_path / "big.pkg"
    source.write_bytes(data)
    inbox = server.root / "A" / "in"

    proxy.cut_next_data_after(2_000_000)
    with pytest.raises(TransportError), via_proxy(server, proxy) as hq:
        hq.upload(source, "big.pkg")
    part = inbox / "big.pkg.part"
    assert not (inbox / "big.pkg").exists()  # never visible under its final name
    assert part.exists()  # the server may still be writing what it had buffered
    assert data.startswith(part.read_bytes())
    assert received == []

    proxy.data_bytes.clear()
    with via_proxy(server, proxy) as hq:
        assert "big.pkg.part" in hq.list_in() and "big.pkg" not in hq.list_in()
        hq.upload(source, "big.pkg")
    assert (inbox / "big.pkg").read_bytes() == data
    assert not part.exists()
    assert received == [("A", inbox / "big.pkg")]
    # resumed: the second transfer carried less than the file (a full one carries the file
    # plus TLS overhead)
    assert max(proxy.data_bytes) < len(data)


def test_cut_download_resumes_with_rest(proxied: tuple[HQServer, FTPProxy], tmp_path: Path) -> None:
    server, proxy = proxied
    data = payload(3_000_000, seed=3)
    (server.root / "A" / "out").mkdir(parents=True)
    (server.root / "A" / "out" / "hq.pkg").write_bytes(data)
    target = tmp_path / "hq.pkg"

    proxy.cut_next_data_after(2_000_000)
    with pytest.raises(TransportError), via_proxy(server, proxy) as hq:
        hq.download("hq.pkg", target)
    part = tmp_path / "hq.pkg.part"
    assert not target.exists()
    kept = part.stat().st_size
    assert 0 < kept < len(data)

    proxy.data_bytes.clear()
    with via_proxy(server, proxy) as hq:
        hq.download("hq.pkg", target)
    assert target.read_bytes() == data
    assert not part.exists()
    assert len(data) - kept <= max(proxy.data_bytes) < len(data) - kept + 50_000


def test_control_cut_inside_a_character_of_the_banner_is_a_cut(
    proxied: tuple[HQServer, FTPProxy],
) -> None:
    """The link cut between the two bytes of the banner's « è » (ftplib reads replies as
    UTF-8 text): a cut connection, retried like any other, never an internal error (seed
    145 of the ``cutctl`` campaign: A's sync ended « Echec (erreur interne :
    UnicodeDecodeError(...)) » at once, its package not delivered that round)."""
    server, proxy = proxied
    proxy.cut_control_at(len(b"220 Synchro : serveur du si\xc3"))
    with pytest.raises(ConnectionTestError) as caught:
        via_proxy(server, proxy).connect()
    assert bytes(proxy.seen).endswith(b"du si\xc3"), bytes(proxy.seen)  # cut inside « è »
    assert caught.value.code == "protocol" and not is_permanent(caught.value)
    with via_proxy(server, proxy) as hq:  # the next attempt
        assert hq.list_out() == []


def test_corrupt_partial_upload_is_detected_and_sent_again(
    server: HQServer, tmp_path: Path
) -> None:
    data = payload(100_000)
    source = tmp_path / "c.pkg"
    source.write_bytes(data)
    inbox = server.root / "A" / "in"
    inbox.mkdir(parents=True)
    (inbox / "c.pkg.part").write_bytes(b"X" * 50_000)  # wrong bytes, right prefix length
    with client(server) as hq:
        with pytest.raises(TransportError, match="SHA-256"):
            hq.upload(source, "c.pkg")
        assert hq.list_in() == []
        hq.upload(source, "c.pkg")
    assert (inbox / "c.pkg").read_bytes() == data


# --- connection failures, each with its exact kind -------------------------------------------


def kind_of(call: Callable[[], object]) -> str:
    with pytest.raises(ConnectionTestError) as info:
        call()
    return info.value.code


def test_wrong_secret_is_auth(server: HQServer) -> None:
    def call() -> object:
        return login_check("127.0.0.1", server.port, "A", "faux", server.fingerprint)

    assert kind_of(call) == "auth"


def test_unknown_host_is_dns(server: HQServer) -> None:
    def call() -> object:
        # A leading "-" makes the resolver refuse the name itself: no query leaves the machine.
        return login_check("-siege.invalid", 21, "A", "x", server.fingerprint, timeout=5)

    assert kind_of(call) == "dns"


def test_closed_port_is_refused(server: HQServer) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert kind_of(lambda: login_check("127.0.0.1", port, "A", "x", server.fingerprint)) == (
        "refused"
    )


def test_silent_server_is_timeout(server: HQServer) -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)  # accepts TCP (kernel backlog), never says a word
        port = mute.getsockname()[1]

        def call() -> object:
            return login_check("127.0.0.1", port, "A", "x", server.fingerprint, timeout=0.3)

        assert kind_of(call) == "timeout"


def test_a_stop_gives_up_a_connection_the_siege_never_answers(server: HQServer) -> None:
    """The Siège's machine drops the connection request (a firewall, the link down
    beyond the router): the connection waits up to the timeout, unless the program stops,
    which ends the wait at once (``Cancelled``: the stop's words, not a timeout)."""
    with unanswered_port() as port:

        def call() -> object:
            return login_check("127.0.0.1", port, "A", "x", server.fingerprint, timeout=0.3)

        assert kind_of(call) == "timeout"
        cancel = threading.Event()
        threading.Timer(0.5, cancel.set).start()
        started = time.monotonic()
        hq = SiteClient("127.0.0.1", port, "A", "x", server.fingerprint, timeout=20, cancel=cancel)
        with pytest.raises(Cancelled):
            hq.connect()
        took = time.monotonic() - started
        hq.close()
    assert took < 10, took  # (the bound of a hang: the timeout is 20 s)


def test_wrong_fingerprint_is_certificate_and_the_secret_is_never_sent(server: HQServer) -> None:
    def call() -> object:
        return login_check("127.0.0.1", server.port, "A", SECRETS["A"], "ab" * 32)

    assert kind_of(call) == "certificate"
    assert server.security_events() == []  # no login was even attempted
    with pytest.raises(ConnectionTestError, match="synchro trust"):
        call()


def test_plain_client_against_tls_server_is_tls(server: HQServer) -> None:
    def call() -> object:
        return login_check("127.0.0.1", server.port, "A", SECRETS["A"], "", allow_plain=True)

    assert kind_of(call) == "tls"


def test_missing_or_malformed_fingerprint_is_certificate(server: HQServer) -> None:
    for fingerprint in ("", "not-a-fingerprint"):

        def call(fingerprint: str = fingerprint) -> object:
            return login_check("127.0.0.1", server.port, "A", "x", fingerprint)

        assert kind_of(call) == "certificate"


# --- what the server refuses --------------------------------------------------------------------


def test_plain_ftp_login_refused_when_tls_required(server: HQServer) -> None:
    ftp = ftplib.FTP(timeout=10)
    ftp.connect("127.0.0.1", server.port)
    try:
        with pytest.raises(ftplib.error_perm, match="SSL/TLS required"):
            ftp.login("A", SECRETS["A"])
    finally:
        ftp.close()
    assert any("chiffr" in e.reason for e in server.security_events())


def test_anonymous_refused(server: HQServer) -> None:
    ftp = raw_tls(server, site=None)
    try:
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login()  # anonymous
    finally:
        ftp.close()
    assert any("anonyme" in e.reason for e in server.security_events())


def test_plain_server_when_allowed(make_server: Callable[..., HQServer], tmp_path: Path) -> None:
    server = make_server(cert_file=None, key_file=None, require_tls=False)
    source = tmp_path / "p.pkg"
    source.write_bytes(b"plain")
    with SiteClient("127.0.0.1", server.port, "A", SECRETS["A"], "", allow_plain=True) as hq:
        hq.upload(source, "p.pkg")
    assert (server.root / "A" / "in" / "p.pkg").read_bytes() == b"plain"


def refused(ftp: ftplib.FTP, command: str) -> bool:
    try:
        ftp.sendcmd(command)
    except ftplib.error_perm:
        return True
    return False


def refused_transfer(ftp: ftplib.FTP, command: str) -> bool:
    try:
        if command.startswith("STOR"):
            ftp.storbinary(command, _Bytes(b"intrus"))
        else:
            ftp.retrbinary(command, lambda _: None)
    except ftplib.error_perm:
        return True
    return False


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        out, self.data = self.data, b""
        return out


def test_site_cannot_reach_another_site(server: HQServer) -> None:
    raw_tls(server, "B").close()  # B's folders exist
    secret_file = server.root / "B" / "out" / "b-only.pkg"
    secret_file.write_bytes(b"B's data")
    ftp = raw_tls(server, "A")
    try:
        for listing in ("../B/out", "/../B/out", "/B", "../../ftp/B/out"):
            with pytest.raises(ftplib.error_perm):
                ftp.nlst(listing)
        assert refused(ftp, "CWD ../B")
        for path in ("../B/out/b-only.pkg", "/../B/out/b-only.pkg", "../../ftp/B/out/b-only.pkg"):
            assert refused_transfer(ftp, f"RETR {path}")
            assert refused(ftp, f"SIZE {path}")
            assert refused(ftp, f"XSHA256 {path}")
        assert refused_transfer(ftp, "STOR ../B/in/x.pkg.part")
        assert refused_transfer(ftp, "STOR /../../B/in/x.pkg.part")
    finally:
        ftp.close()
    assert not (server.root / "B" / "in" / "x.pkg.part").exists()
    assert not (server.root / "A" / "B").exists()
    assert len(server.security_events()) >= 5


def test_path_traversal_and_absolute_paths_refused(server: HQServer) -> None:
    ftp = raw_tls(server, "A")
    try:
        for path in ("/etc/passwd", "../../../../etc/passwd", "in/../../../etc/passwd"):
            assert refused_transfer(ftp, f"RETR {path}")
        assert refused_transfer(ftp, "STOR ../../evil.part")
        assert refused_transfer(ftp, "STOR /tmp/evil.part")
    finally:
        ftp.close()
    assert not (server.root / "evil.part").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_out_of_the_home_is_refused(server: HQServer, tmp_path: Path) -> None:
    raw_tls(server, "B").close()
    (server.root / "B" / "out" / "b.pkg").write_bytes(b"B")
    raw_tls(server, "A").close()
    os.symlink(server.root / "B" / "out" / "b.pkg", server.root / "A" / "out" / "link.pkg")
    os.symlink(tmp_path, server.root / "A" / "out" / "dir")
    ftp = raw_tls(server, "A")
    try:
        assert refused_transfer(ftp, "RETR out/link.pkg")
        assert refused(ftp, "CWD out/dir")
    finally:
        ftp.close()


def test_only_in_part_files_are_writable(server: HQServer) -> None:
    ftp = raw_tls(server, "A")
    (server.root / "A" / "out" / "hq.pkg").write_bytes(b"HQ")
    try:
        assert refused_transfer(ftp, "STOR in/final.pkg")  # must go through .part
        assert refused_transfer(ftp, "STOR out/x.part")
        assert refused_transfer(ftp, "STOR x.part")
        assert refused(ftp, "DELE out/hq.pkg")
        assert refused(ftp, "RMD in")
        assert refused(ftp, "RMD /")
        assert refused(ftp, "MKD in/sub")
        assert refused(ftp, "MKD /new")
        assert refused(ftp, "SITE CHMOD 777 out/hq.pkg")
        assert refused(ftp, "MFMT 20200101000000 out/hq.pkg")
        assert refused(ftp, "RNFR out/hq.pkg")
        assert refused(ftp, "STOU")
        assert refused_transfer(ftp, "RETR in/anything")  # /in is write-only
        ftp.storbinary("STOR in/ok.pkg.part", _Bytes(b"fine"))
        assert refused(ftp, "RNFR in/nothing.pkg")  # does not exist
        ftp.sendcmd("DELE in/ok.pkg.part")  # its own partial file: allowed
    finally:
        ftp.close()
    assert (server.root / "A" / "out" / "hq.pkg").read_bytes() == b"HQ"


def test_upload_limit(make_server: Callable[..., HQServer], tmp_path: Path) -> None:
    server = make_server(max_upload_bytes=10_000)
    source = tmp_path / "big.pkg"
    source.write_bytes(payload(50_000))
    with client(server) as hq, pytest.raises(ConnectionTestError) as info:
        hq.upload(source, "big.pkg")
    assert info.value.code == "quota"
    ftp = raw_tls(server, "A")  # a client that skips ALLO is stopped while writing
    try:
        with pytest.raises((ftplib.Error, OSError)):
            ftp.storbinary("STOR in/big.pkg.part", _Bytes(payload(50_000)))
    finally:
        ftp.close()
    assert not (server.root / "A" / "in" / "big.pkg.part").exists()
    assert any("taille" in e.reason for e in server.security_events())


def test_five_failed_logins_ban_the_address_until_the_period_ends(
    make_server: Callable[..., HQServer],
) -> None:
    clock = Clock()
    server = make_server(clock=clock, ban_after_failures=5, ban_seconds=900)
    for _ in range(5):
        with pytest.raises(ConnectionTestError) as info:
            login_check("127.0.0.1", server.port, "A", "faux", server.fingerprint)
        assert info.value.code == "auth"
    with pytest.raises(ConnectionTestError, match="bloque") as info:  # even the right secret
        login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint)
    assert info.value.code == "auth"
    assert any("bloquée" in e.reason for e in server.security_events())
    clock.now += 901
    assert login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint).secure


def test_success_resets_the_failure_count(make_server: Callable[..., HQServer]) -> None:
    server = make_server(clock=Clock(), ban_after_failures=3)
    for _ in range(2):
        with pytest.raises(ConnectionTestError):
            login_check("127.0.0.1", server.port, "A", "faux", server.fingerprint)
    login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint)
    for _ in range(2):
        with pytest.raises(ConnectionTestError):
            login_check("127.0.0.1", server.port, "A", "faux", server.fingerprint)
    login_check("127.0.0.1", server.port, "A", SECRETS["A"], server.fingerprint)


def test_on_received_once_per_completed_upload(
    server: HQServer, tmp_path: Path, received: list[tuple[str, Path]]
) -> None:
    for site, name in (("A", "a1.pkg"), ("A", "a2.pkg"), ("B", "b1.pkg")):
        source = tmp_path / name
        source.write_bytes(name.encode())
        with client(server, site) as hq:
            hq.upload(source, name)
    assert received == [
        ("A", server.root / "A" / "in" / "a1.pkg"),
        ("A", server.root / "A" / "in" / "a2.pkg"),
        ("B", server.root / "B" / "in" / "b1.pkg"),
    ]


def test_two_servers_share_no_settings_and_stop_independently(
    make_server: Callable[..., HQServer], tmp_path: Path
) -> None:
    first, second = make_server(max_upload_bytes=10), make_server()
    source = tmp_path / "p.pkg"
    source.write_bytes(b"x" * 100)
    with client(second) as hq:
        hq.upload(source, "p.pkg")
    with client(first) as hq, pytest.raises(ConnectionTestError, match="trop gros"):
        hq.upload(source, "p.pkg")
    first.stop()
    assert login_check("127.0.0.1", second.port, "A", SECRETS["A"], second.fingerprint).secure


def test_pyftpdlib_never_logs_to_stderr_by_itself(server: HQServer) -> None:
    handlers = logging.getLogger("pyftpdlib").handlers
    assert not any(type(h) is logging.StreamHandler for h in handlers)


def test_port_in_use_is_a_clear_error(server: HQServer, tmp_path: Path) -> None:
    other = HQServer(
        tmp_path / "other",
        {},
        cert_file=server.cert_file,
        key_file=server.cert_file.with_suffix(".key") if server.cert_file else None,
        host="127.0.0.1",
        port=server.port,
        verify=_verify,
    )
    with pytest.raises(TransportError, match="port"):
        other.start()


def test_passive_reply_names_the_masquerade_address(
    make_server: Callable[..., HQServer],
) -> None:
    server = make_server(masquerade_address="10.9.8.7")
    ftp = raw_tls(server)
    try:
        assert "10,9,8,7" in ftp.sendcmd("PASV")  # never dialled: ftplib uses the peer address
    finally:
        ftp.close()


def test_refusals_are_logged_with_who_what_why(
    server: HQServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="synchro.transport")
    ftp = raw_tls(server, "A")
    try:
        assert refused(ftp, "MKD /x")
    finally:
        ftp.close()
    line = next(r.getMessage() for r in caplog.records if "MKD" in r.getMessage())
    assert "A" in line and "127.0.0.1" in line and "non autorisée" in line
    event = server.security_events()[-1]
    assert (event.user, event.address, event.action) == ("A", "127.0.0.1", "MKD")


def test_pinned_client_against_a_server_without_ftps_is_tls(
    make_server: Callable[..., HQServer], cert: tuple[Path, Path, str]
) -> None:
    server = make_server(cert_file=None, key_file=None, require_tls=False)

    def call() -> object:
        return login_check("127.0.0.1", server.port, "A", SECRETS["A"], cert[2])

    assert kind_of(call) == "tls"


def test_cancel_stops_an_upload_between_blocks_and_the_next_one_resumes(
    server: HQServer, tmp_path: Path
) -> None:
    data = payload(2_000_000)
    source = tmp_path / "c.pkg"
    source.write_bytes(data)
    cancel = threading.Event()
    with pytest.raises(Cancelled), client(server, cancel=cancel) as hq:
        hq.on_progress = lambda done, total: cancel.set()
        hq.upload(source, "c.pkg")
    assert not (server.root / "A" / "in" / "c.pkg").exists()
    cancel.clear()
    with client(server, cancel=cancel) as hq:
        hq.upload(source, "c.pkg")
    assert (server.root / "A" / "in" / "c.pkg").read_bytes() == data


def test_stop_closes_idle_sessions_at_once_not_at_their_next_poll(
    make_server: Callable[..., HQServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle sessions' threads wake only every SESSION_POLL_S (CPU: bench_ftp_idle.py);
    stopping still ends them because their sockets are shut down. Here they would not
    wake for an hour, and stop() waits half a second per thread: a session thread still
    alive after stop() is one the stop did not wake."""
    monkeypatch.setattr(ftp_server._Server, "poll_timeout", 3600.0)
    monkeypatch.setattr(ftp_server._Server, "join_timeout", 0.5)
    assert SESSION_POLL_S < 3600.0
    server = make_server()
    before = set(threading.enumerate())
    sessions = [raw_tls(server, site) for site in ("A", "A", "B", "B", "A")]
    for ftp in sessions:
        ftp.voidcmd("NOOP")  # logged in, now idle
    new = set(threading.enumerate()) - before  # the sessions' (and the secrets checker's)
    session_threads = {t for t in new if not t.name.startswith("synchro-")}
    assert len(session_threads) == len(sessions)
    server.stop()
    assert [t.name for t in session_threads if t.is_alive()] == []
    for ftp in sessions:
        with pytest.raises((EOFError, OSError, ftplib.Error)):
            ftp.voidcmd("NOOP")
        ftp.close()


def test_idle_connection_is_closed_after_the_idle_timeout(
    make_server: Callable[..., HQServer],
) -> None:
    server = make_server(idle_timeout_s=0.2)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        assert reader.readline().startswith(b"421 ")  # said nothing: shown the door
        assert reader.readline() == b""


def test_server_stopped_mid_upload_then_restarted_the_upload_resumes(
    make_server: Callable[..., HQServer], tmp_path: Path, received: list[tuple[str, Path]]
) -> None:
    first = make_server()
    data = payload(3_000_000)
    source = tmp_path / "s.pkg"
    source.write_bytes(data)
    with pytest.raises(TransportError), client(first) as hq:
        hq.on_progress = lambda done, total: first.stop()  # VALIDER restarts the server
        hq.upload(source, "s.pkg")
    inbox = first.root / "A" / "in"
    assert not (inbox / "s.pkg").exists() and received == []
    second = make_server()  # same root folder, new port
    with client(second) as hq:
        hq.upload(source, "s.pkg")
    assert (inbox / "s.pkg").read_bytes() == data
    assert received == [("A", inbox / "s.pkg")]


def test_upload_reports_what_the_siege_holds_at_its_start_and_size_check(
    server: HQServer, tmp_path: Path
) -> None:
    """``on_confirmed`` says what the Siège holds of an upload (its ``.part`` size), where an
    attempt starts and at its size check: the site counts an attempt as progress by it, since
    bytes written to a socket are not bytes received when the link is cut."""
    data = payload(300_000, seed=5)
    source = tmp_path / "p.pkg"
    source.write_bytes(data)
    inbox = server.root / "A" / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "p.pkg.part").write_bytes(data[:120_000])  # what an earlier, cut attempt left
    seen: list[tuple[int, int]] = []
    with client(server) as hq:
        hq.on_confirmed = lambda size, total: seen.append((size, total))
        hq.upload(source, "p.pkg")
    assert seen == [(120_000, 300_000), (300_000, 300_000)]
    assert (inbox / "p.pkg").read_bytes() == data


def test_the_siege_s_date_of_a_file_and_whether_this_attempt_wrote_it(
    server: HQServer, tmp_path: Path
) -> None:
    """``remote_time`` is the Siège's own date of a file (MDTM, UTC); ``upload`` says
    whether it wrote the file now: a file an earlier attempt had sent whole keeps that
    attempt's date, which must not be read as the Siège's clock (``engine.clocks``)."""
    source = tmp_path / "p.pkg"
    source.write_bytes(payload(50_000, seed=9))
    with client(server) as hq:
        assert hq.upload(source, "p.pkg") is True
        when = hq.remote_time("in/p.pkg")
        assert when is not None and abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 5
        assert hq.remote_time("in/absent.pkg") is None  # (and the session goes on)
        inbox = server.root / "A" / "in"
        (inbox / "q.pkg.part").write_bytes(source.read_bytes())  # sent whole, then cut
        hours_ago = time.time() - 3 * 3600
        os.utime(inbox / "q.pkg.part", (hours_ago, hours_ago))
        assert hq.upload(source, "q.pkg") is False
        stale = hq.remote_time("in/q.pkg")
        assert stale is not None and (dt.datetime.now(dt.UTC) - stale).total_seconds() > 3 * 3500
