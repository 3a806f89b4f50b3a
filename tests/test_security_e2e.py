"""Security end to end: what a wiretap sees, and where secrets never appear."""

from __future__ import annotations

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
