"""Run inside a network namespace of its own (``unshare --net``, see
test_stop_unanswered.py): a real Siège FTPS server on the namespace's loopback whose
passive port drops every packet (``tc`` ingress filter), and a real ``SiteClient`` that
lists ``/out`` over it — the control connection answers, the data connection never does,
as when a firewall leaves the passive ports closed.

``python passive_probe.py FOLDER STOP_AFTER TIMEOUT`` prints one JSON line: what the
listing raised and how long it took; ``STOP_AFTER`` > 0 sets the client's ``cancel`` (a
stop) that many seconds after the listing began.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from synchro.transport.ftp_client import SiteClient
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import ensure_certificate

SECRET = "secret-de-A"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def drop_port(port: int) -> None:
    """Every TCP packet to ``port`` on this namespace's loopback is dropped: it is sent to
    an ``htb`` class whose queue holds nothing (``pfifo limit 0``); the rest of the traffic
    goes to a class as fast as loopback. (Built-in qdiscs only: no module can be loaded
    in a container, and ``netem`` and tc's drop action are modules.)"""
    lo = ("dev", "lo")
    _run("ip", "link", "set", "lo", "up")
    _run("tc", "qdisc", "add", *lo, "root", "handle", "1:", "htb", "default", "10", "r2q", "100000")
    for band in ("10", "20"):
        _run("tc", "class", "add", *lo, "parent", "1:", "classid", f"1:{band}", "htb", "rate",
             "10gbit")  # fmt: skip
    _run("tc", "qdisc", "add", *lo, "parent", "1:20", "handle", "20:", "pfifo", "limit", "0")
    match = ("match", "ip", "protocol", "6", "0xff", "match", "ip", "dport", str(port), "0xffff")
    _run("tc", "filter", "add", *lo, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
         *match, "flowid", "1:20")  # fmt: skip


def _root(exc: BaseException) -> BaseException:
    """The first error of the chain: what the wait really ended with."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def main(folder: Path, stop_after: float, timeout: float) -> dict[str, object]:
    passive = _free_port()
    drop_port(passive)
    fingerprint = ensure_certificate(folder / "hq.pem", folder / "hq.key", "siege.test")
    account = {"A": "sha256:" + hashlib.sha256(SECRET.encode()).hexdigest()}
    server = HQServer(
        folder / "ftp",
        account,
        cert_file=folder / "hq.pem",
        key_file=folder / "hq.key",
        host="127.0.0.1",
        port=0,
        passive_ports=(passive, passive),
        verify=lambda secret, stored: stored == account["A"] and secret == SECRET,
        auth_failed_delay_s=0,
        poll_interval_s=0.02,
    )
    server.start()
    cancel = threading.Event()
    hq = SiteClient(
        "127.0.0.1", server.port, "A", SECRET, fingerprint, timeout=timeout, cancel=cancel
    )
    try:
        hq.connect()  # the control connection answers
        if stop_after > 0:
            threading.Timer(stop_after, cancel.set).start()
        started = time.monotonic()
        try:
            hq.list_out()
            raised, root = "", None
        except Exception as exc:  # what the listing ended with is the result
            raised = f"{type(exc).__name__}: {exc}"
            root = _root(exc)
        return {"raised": raised, "root": type(root).__name__, "took": time.monotonic() - started}
    finally:
        hq.close()
        server.stop()


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
    print(json.dumps(result))
