"""Security end to end: what a wiretap sees, and where secrets never appear."""

from __future__ import annotations

import dataclasses
import uuid
import zlib
from pathlib import Path

import pytest
from ftp_proxy import LISTEN, FTPProxy, free_port_range
from rounds_helpers import group, rows, sql

from synchro.package.crypto import encode_key, new_group_key
from synchro.reports import State


def readable(stream: bytes, needle: bytes) -> bool:
    """Whether ``needle`` can be read from ``stream`` as is or by inflating any zlib stream
    in it (packages are compressed: a plain search alone would prove nothing)."""
    if needle in stream:
        return True
    start = 0
    while (start := stream.find(b"\x78", start)) != -1:
        inflater = zlib.decompressobj()
        try:
            if needle in inflater.decompress(stream[start:], 50_000_000):
                return True
        except zlib.error:
            pass
        start += 1
    return False


@pytest.mark.parametrize("tls", [True, False], ids=["ftps", "plain-ftp"])
def test_a_relay_sees_none_of_the_rows(tmp_path: Path, tls: bool) -> None:
    """Packages are sealed with the group key: even over plain FTP (allowed explicitly)
    the bytes between an establishment and the Siège hold none of the rows' values."""
    marker = f"COMPTE-CLIENT-{uuid.uuid4().hex}"
    ports = free_port_range(4)
    key = encode_key(new_group_key())
    with group(tmp_path, ["3615"], passive_ports=ports, group_key=key, require_tls=tls) as g:
        sql(g.hq.db, f"INSERT INTO articles VALUES (1, '{marker}-siege', '18.90')")
        sql(g.sites["3615"].db, f"INSERT INTO articles VALUES (2, '{marker}-magasin', '7.10')")
        with FTPProxy(g.server.port, ports) as proxy:
            g.open_round()
            record = g.run("3615", connect=g.client("3615", host=LISTEN))
            seen = bytes(proxy.seen)
        assert record.state is State.OK, record.error
        assert len(rows(g.sites["3615"].db, "articles")) == 2  # the data did cross
        assert len(seen) > 1000
        assert not readable(seen, marker.encode())
        assert key.encode() not in seen
        if tls:
            assert g.secrets["3615"].encode() not in seen


def test_no_secret_in_any_file_output_or_email(tmp_path: Path) -> None:
    """A round through the real CLI, with report emails: the admin password, the site
    secret, the group key and the SMTP password appear in no log, report, settings file,
    command output or email — only in the owner-only secrets files."""
    from pair_helpers import cli_pair, popen, synchro
    from smtp_server import password_authenticator, smtp_server

    from synchro.config.model import EmailSettings, MailSecurity
    from synchro.config.store import load_config, save_config
    from synchro.transport.token import parse_token

    admin, smtp_password = "Adm1n-" + uuid.uuid4().hex, "Smtp-" + uuid.uuid4().hex
    (tmp_path / "admin.txt").write_text(admin, encoding="utf-8")
    outputs: list[str] = []

    def run(*args: str, cwd: Path) -> None:
        done = synchro("--config", "synchro.toml", *args, cwd=cwd, timeout=90)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stdout + done.stderr

    hq, site, token = cli_pair(tmp_path, "--password-file", str(tmp_path / "admin.txt"))
    parsed = parse_token(token)
    with smtp_server(
        authenticator=password_authenticator("compta", smtp_password), auth_require_tls=False
    ) as (inbox, smtp_port):
        config = load_config(site / "synchro.toml")
        email = EmailSettings(
            recipients=("gerant@example.invalid",),
            sender="synchro@example.invalid",
            server="127.0.0.1",
            port=smtp_port,
            security=MailSecurity.NONE,
            login="compta",
            password=smtp_password,
            timeout_s=10,
        )
        save_config(
            dataclasses.replace(config, send_email=True, email=email),
            site / "synchro.toml",
        )
        siege = popen("--config", "synchro.toml", "sync", "--linger", "10", cwd=hq)
        try:
            run("sync", cwd=site)
            out, err = siege.communicate(timeout=90)
            outputs.extend([out, err])
        finally:
            if siege.poll() is None:
                siege.kill()
        run("test-email", cwd=site)
        run("report", "--json", cwd=site)
        run("status", "--json", cwd=hq)
        emails = [m.raw for m in inbox.messages]
    assert len(emails) >= 2  # the run report and the test message
    secrets = {
        "admin": admin,
        "site secret": parsed.secret,
        "group key": parsed.group_key,
        "smtp": smtp_password,
    }
    assert all(secrets.values())
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.endswith("secrets.json") and p.name != "admin.txt"
    ]
    assert any(p.suffix == ".log" for p in files) and any(p.suffix == ".toml" for p in files)
    for label, secret in secrets.items():
        needle = secret.encode()
        for path in files:
            assert needle not in path.read_bytes(), f"{label} found in {path}"
        for text in outputs:
            assert secret not in text, f"{label} found in a command's output"
        for raw in emails:
            assert needle not in raw, f"{label} found in an email"
    for path in tmp_path.rglob("*secrets.json"):
        assert path.stat().st_mode & 0o077 == 0  # only the owner can read them
