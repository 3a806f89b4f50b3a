"""Run inside a network and mount namespace of its own (``unshare --net --mount``, see
test_stop_unanswered.py): the name of the Siège is looked up from a name server
that never answers — this namespace's ``/etc/resolv.conf`` (bound over the machine's, in
this mount namespace only) names a UDP port on its loopback that a socket holds and never
reads — and a ``SiteClient`` connects to that name.

``python resolver_probe.py FOLDER STOP_AFTER`` prints one JSON line: what the connection
raised, the first error of its chain and how long it took; ``STOP_AFTER`` > 0 sets the
client's ``cancel`` that many seconds in. The resolver waits 5 s, twice (10 s) by itself.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from synchro.transport.ftp_client import SiteClient

NAME = "siege.synchro-test.example"  # looked up only from the silent name server


def silent_name_server(folder: Path) -> socket.socket:
    """Port 53 of this namespace's loopback held and never read; the resolver sent there."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=20)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    conf = folder / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
    subprocess.run(["mount", "--bind", str(conf), "/etc/resolv.conf"], check=True, timeout=20)
    return server


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def main(folder: Path, stop_after: float) -> dict[str, object]:
    server = silent_name_server(folder)
    cancel = threading.Event()
    hq = SiteClient(NAME, 21, "A", "secret", "ab" * 32, timeout=20, cancel=cancel)
    if stop_after > 0:
        threading.Timer(stop_after, cancel.set).start()
    started = time.monotonic()
    try:
        hq.connect()
        raised, root = "", ""
    except Exception as exc:  # what the connection ended with is the result
        raised, root = f"{type(exc).__name__}: {exc}", type(_root(exc)).__name__
    finally:
        hq.close()
        server.close()
    return {"raised": raised, "root": root, "took": time.monotonic() - started}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), float(sys.argv[2]))))
